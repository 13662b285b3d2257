//! Compiles `csrc/reattach.c`, the C frame that takes the GIL back after a
//! blocking wait (see that file and `src/gil.rs`), for Unix targets built
//! natively and for every Linux target. Cross type-checks of other
//! systems (FreeBSD, Windows, from Linux) need no C cross compiler: they
//! take the GIL back through PyO3, as before.

use std::env;

fn main() {
    println!("cargo::rerun-if-changed=csrc/reattach.c");
    println!("cargo::rustc-check-cfg=cfg(c_reattach)");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let unix = var("CARGO_CFG_TARGET_FAMILY")
        .split(',')
        .any(|f| f == "unix");
    let linux = var("CARGO_CFG_TARGET_OS") == "linux";
    let native = var("HOST") == var("TARGET");
    if unix && (linux || native) {
        cc::Build::new()
            .file("csrc/reattach.c")
            // The jump-buffer form of pthread_cleanup_push, which does not
            // depend on unwind tables (reattach.c).
            .flag_if_supported("-fno-exceptions")
            .warnings(true)
            .compile("selectors2_reattach");
        println!("cargo::rustc-cfg=c_reattach");
    }
}

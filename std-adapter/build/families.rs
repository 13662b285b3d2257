//! The mechanism families of the target, named once as cfgs, so that the
//! sources say `#[cfg(has_kqueue)]` instead of repeating the list of target
//! OSes. Used by this crate's build script, and read (`#[path]`) by the
//! conformance suite's, which needs the same cfgs: a build script cannot
//! hand settings to the crates that depend on it without `links`, and
//! `links` would forbid two versions of `selectors2` in one program.

/// Prints the `cargo::rustc-cfg` lines (and their `rustc-check-cfg`
/// declarations) for the target cargo is building for.
pub fn emit() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let apple = matches!(
        os.as_str(),
        "macos" | "ios" | "tvos" | "watchos" | "visionos"
    );
    let epoll = matches!(os.as_str(), "linux" | "android");
    let kqueue = apple || matches!(os.as_str(), "freebsd" | "netbsd" | "openbsd" | "dragonfly");
    for (cfg, on) in [
        ("has_epoll", epoll),
        ("has_kqueue", kqueue),
        ("apple", apple),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if on {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}

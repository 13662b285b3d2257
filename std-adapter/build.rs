//! Names the mechanism families once, as cfgs, so that the sources say
//! `#[cfg(has_kqueue)]` instead of repeating the list of target OSes.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_epoll)");
    println!("cargo::rustc-check-cfg=cfg(has_kqueue)");
    println!("cargo::rustc-check-cfg=cfg(apple)");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let apple = matches!(
        os.as_str(),
        "macos" | "ios" | "tvos" | "watchos" | "visionos"
    );
    let epoll = matches!(os.as_str(), "linux" | "android");
    let kqueue = apple || matches!(os.as_str(), "freebsd" | "netbsd" | "openbsd" | "dragonfly");
    if epoll {
        println!("cargo::rustc-cfg=has_epoll");
    }
    if kqueue {
        println!("cargo::rustc-cfg=has_kqueue");
    }
    // For the build scripts of the crates that depend on this one
    // (DEP_SELECTORS2_HAS_EPOLL, DEP_SELECTORS2_HAS_KQUEUE).
    println!("cargo::metadata=has_epoll={epoll}");
    println!("cargo::metadata=has_kqueue={kqueue}");
    if apple {
        println!("cargo::rustc-cfg=apple");
    }
}

//! Every conformance case on every backend this host has. Run one backend
//! alone with a filter, e.g. `cargo test -p selectors2-tests --test conformance poll::`.

#[cfg(has_epoll)]
selectors2_tests::suite!(epoll, selectors2::sys::Epoll);
#[cfg(has_kqueue)]
selectors2_tests::suite!(kqueue, selectors2::sys::Kqueue);
selectors2_tests::suite!(poll, selectors2::sys::Poll, without_fd);
selectors2_tests::suite!(select, selectors2::sys::Select, without_fd);
selectors2_tests::suite!(default, selectors2::sys::Auto);

/// `DefaultSelector` picks the first mechanism that works and can be told
/// which to try (CPython's patched-module tests, without patching).
#[test]
fn default_selector_order_and_fallback() {
    use selectors2::{BackendKind, DefaultSelector};
    // It opens fds: never under a number a case running alone has freed.
    let _fds = selectors2_tests::low_fds();
    let best = DefaultSelector::<usize>::with_fixed_capacity(8).unwrap();
    assert_eq!(best.backend_kind(), BackendKind::available()[0]);
    let only_select = DefaultSelector::<usize>::with_backends(&[BackendKind::Select]).unwrap();
    assert_eq!(only_select.backend_kind(), BackendKind::Select);
    // A kind this platform lacks is skipped, not fatal.
    let skip = DefaultSelector::<usize>::with_backends(&[
        BackendKind::Kqueue,
        BackendKind::Epoll,
        BackendKind::Poll,
    ])
    .unwrap();
    #[cfg(unix)]
    assert!(matches!(
        skip.backend_kind(),
        BackendKind::Kqueue | BackendKind::Epoll
    ));
    // Windows has neither: WSAPoll.
    #[cfg(windows)]
    assert_eq!(skip.backend_kind(), BackendKind::Poll);
    assert!(DefaultSelector::<usize>::with_backends(&[]).is_err());
}

/// A few hundred seeded random sequences: every backend gives the same
/// results and the same ready sets at every step.
#[test]
fn backends_agree_on_random_sequences() {
    let seeds: u64 = std::env::var("DIFF_SEQUENCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    // Every backend must be able to watch every source (select needs fds
    // below FD_SETSIZE), and `Op::Close` frees registered fd numbers that
    // another test must not take meanwhile: run alone.
    let _alone = selectors2_tests::many_fds_alone();
    for seed in 0..seeds {
        let mut sels = selectors2_tests::differential::all_backends();
        selectors2_tests::differential::run_sequence(seed, 60, &mut sels);
    }
}

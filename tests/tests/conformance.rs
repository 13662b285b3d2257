//! Every conformance case on every backend this host has. Run one backend
//! alone with a filter, e.g. `cargo test -p selectors2-tests --test conformance poll::`.

#[cfg(any(target_os = "linux", target_os = "android"))]
selectors2_tests::suite!(epoll, selectors2::sys::Epoll);
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
selectors2_tests::suite!(kqueue, selectors2::sys::Kqueue);
selectors2_tests::suite!(poll, selectors2::sys::Poll);
selectors2_tests::suite!(select, selectors2::sys::Select);
selectors2_tests::suite!(default, selectors2::sys::Auto);

/// `DefaultSelector` picks the first mechanism that works and can be told
/// which to try (CPython's patched-module tests, without patching).
#[test]
fn default_selector_order_and_fallback() {
    use selectors2::{AnyCapacity, BackendKind, DefaultSelector};
    let best = DefaultSelector::<usize, 8>::new().unwrap();
    assert_eq!(best.backend_kind(), BackendKind::available()[0]);
    let only_select = DefaultSelector::<usize, 8>::with_backends(&[BackendKind::Select]).unwrap();
    assert_eq!(only_select.backend_kind(), BackendKind::Select);
    // A kind this platform lacks is skipped, not fatal.
    let skip = DefaultSelector::<usize, 8>::with_backends(&[
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
    assert!(DefaultSelector::<usize, 8>::with_backends(&[]).is_err());
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

/// Found by the `pure` fuzz target (issue 5), fixed in d310ea4. `select`'s
/// timeout must be a `timespec` of whole microseconds, saturating at the
/// largest one, `(i64::MAX s, 999_999_000 ns)`. It used to saturate at
/// `(i64::MAX s, 999_999_999 ns)`, for any timeout from `i64::MAX` s plus
/// 999,999,001 ns up (`Duration::MAX` included). On Linux rustix hands the
/// `timespec` to `pselect6` as it is, which accepts it; rustix's libc
/// backend (macOS, the BSDs) converts it to a `timeval` first, rounding
/// the nanoseconds up: 1,000,000 µs carried into `tv_sec`, which
/// overflowed, and `select` failed with `EINVAL` instead of waiting the
/// longest it can.
#[cfg(unix)]
#[test]
fn select_timeout_saturates_at_whole_micros() {
    use selectors2::__fuzz::to_micros_timespec;
    use std::time::Duration;
    let limit = i64::MAX as u64;
    for t in [
        Duration::new(limit, 999_999_001),
        Duration::new(limit + 1, 0),
        Duration::MAX,
    ] {
        let ts = to_micros_timespec(t);
        let (sec, nsec) = (ts.tv_sec, ts.tv_nsec);
        // What rustix's libc backend does before select(2) (`to_sec_usec`):
        // round up to whole µs and carry; an overflow there is EINVAL.
        let usec = (nsec + 999) / 1000;
        assert!(
            usec < 1_000_000 || sec.checked_add(1).is_some(),
            "{t:?} -> ({sec}, {nsec}): rustix's timeval conversion overflows (EINVAL)"
        );
        assert_eq!((sec, nsec), (i64::MAX, 999_999_000), "{t:?}");
    }
}

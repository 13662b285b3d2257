//! The one conversion from a `Duration` timeout to what each system call
//! takes, and the retry loop (EINTR, spurious wake-ups) that honours one
//! deadline.

use std::time::{Duration, Instant};

#[cfg(unix)]
use rustix::event::Timespec;

/// Milliseconds for `epoll_wait` and `poll`: `-1` blocks, zero polls, and a
/// positive timeout rounds **up** (1 ns waits 1 ms, never 0) and saturates
/// at `i32::MAX` ms (about 24.8 days) instead of overflowing.
#[inline]
pub fn to_millis(timeout: Option<Duration>) -> i32 {
    let Some(t) = timeout else { return -1 };
    let whole = t.as_millis();
    let ms = if t.subsec_nanos() % 1_000_000 != 0 {
        whole.saturating_add(1)
    } else {
        whole
    };
    i32::try_from(ms).unwrap_or(i32::MAX)
}

/// A `timespec` of whole microseconds for `select`, rounded up, saturating
/// at the largest whole-microsecond value a 64-bit `time_t` holds (so that
/// a `timeval` conversion, as rustix's libc backend makes, cannot carry
/// into an overflow and fail with `EINVAL`).
#[cfg(unix)]
#[inline]
pub fn to_micros_timespec(t: Duration) -> Timespec {
    let mut secs = t.as_secs();
    let mut micros = t.subsec_nanos().div_ceil(1_000);
    if micros == 1_000_000 {
        secs = secs.saturating_add(1);
        micros = 0;
    }
    timespec(secs, micros * 1_000, 999_999_000)
}

/// A `timespec` for `kevent` (nanosecond resolution), saturating.
#[cfg(unix)]
#[inline]
#[cfg_attr(not(has_kqueue), allow(dead_code))] // kqueue's; tested on every unix
pub fn to_nanos_timespec(t: Duration) -> Timespec {
    timespec(t.as_secs(), t.subsec_nanos(), 999_999_999)
}

/// The `timespec` equal to `ms` milliseconds (for epoll and poll through
/// rustix, which takes a `timespec` but waits in whole milliseconds).
#[cfg(unix)]
#[cfg_attr(not(has_epoll), allow(dead_code))] // unit-tested on every unix
#[inline]
pub fn millis_timespec(ms: i32) -> Option<Timespec> {
    u32::try_from(ms)
        .ok()
        .map(|ms| timespec(u64::from(ms / 1000), (ms % 1000) * 1_000_000, 0))
}

/// `secs` and `nanos` as a `timespec`; beyond `i64::MAX` seconds, the
/// largest one: `i64::MAX` seconds and `max_nanos`.
#[cfg(unix)]
#[inline]
fn timespec(secs: u64, nanos: u32, max_nanos: i64) -> Timespec {
    match i64::try_from(secs) {
        Ok(tv_sec) => Timespec {
            tv_sec,
            tv_nsec: nanos.into(),
        },
        Err(_) => Timespec {
            tv_sec: i64::MAX,
            tv_nsec: max_nanos as _,
        },
    }
}

/// A `TIMEVAL` for Winsock `select`: whole microseconds, rounded up like
/// [`to_micros_timespec`], saturating at `i32::MAX` seconds (68 years), the
/// most its `i32` fields hold.
#[cfg(windows)]
#[inline]
pub fn to_timeval(t: Duration) -> windows_sys::Win32::Networking::WinSock::TIMEVAL {
    let mut secs = t.as_secs();
    let mut micros = t.subsec_nanos().div_ceil(1_000);
    if micros == 1_000_000 {
        secs = secs.saturating_add(1);
        micros = 0;
    }
    let (tv_sec, tv_usec) = match i32::try_from(secs) {
        Ok(s) => (s, micros as i32),
        Err(_) => (i32::MAX, 999_999),
    };
    windows_sys::Win32::Networking::WinSock::TIMEVAL { tv_sec, tv_usec }
}

/// The timeout of a `select`'s first wait: zero for a positive `timeout`
/// (poll first), else `timeout` itself.
///
/// A positive timeout needs a deadline (one clock reading) before any wait
/// that may block, so that a signal can be retried with the time left
/// ([`retry`]). To spare that when something is already ready (a busy event
/// loop, where the clock was most of what a timed wait cost beyond the
/// system call), `select` polls first: if the poll finds something, that is
/// the answer and no clock was read; otherwise [`retry`] reads the clock
/// and waits the whole timeout. The poll did not wait, so the total still
/// never exceeds the timeout.
///
/// Polling first beats both ways of reading the clock first (`Instant::now()`
/// and the cheaper `CLOCK_MONOTONIC_COARSE`), and even raw epoll with a
/// positive timeout: the kernel reads its own clock for a positive
/// `epoll_wait` timeout before it looks for events, and a zero timeout
/// spares that too (benches/README.md, "Polling first", has the numbers).
/// The price: one more system call (a non-blocking wait) when nothing is
/// ready, just before a wait that blocks anyway. The coarse clock would
/// still be a clock call on every select, and it ticks every few
/// milliseconds, so the time left after a signal could be overestimated by
/// a tick and a wait overrun its deadline unless a tick were taken off
/// every retry.
#[inline]
pub(crate) fn first_wait(timeout: Option<Duration>) -> Option<Duration> {
    match timeout {
        Some(t) if !t.is_zero() => Some(Duration::ZERO),
        t => t,
    }
}

/// The longest timeout handed to `kevent`, and to `select` on Apple
/// platforms: XNU's `select` refuses a `timeval` of more than 10^8 seconds
/// with `EINVAL` (`itimerfix`); its `kevent` takes up to `INT32_MAX`
/// seconds and the BSDs more, but 10^8 s (over three years) is the longest
/// wait anyone needs, and it fits a 32-bit `time_t`. Longer timeouts wait
/// this long, then report nothing.
#[cfg(unix)]
#[cfg_attr(not(has_kqueue), allow(dead_code))] // unit-tested on every unix
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(100_000_000);

/// `timeout`, capped at [`MAX_TIMEOUT`].
#[cfg(unix)]
#[cfg_attr(not(has_kqueue), allow(dead_code))] // unit-tested on every unix
#[inline]
pub(crate) fn clamp_timeout(timeout: Duration) -> Duration {
    timeout.min(MAX_TIMEOUT)
}

/// Runs `wait` with `timeout`, and again with the time left until one
/// deadline (computed once, before the first call) for as long as it
/// answers `Ok(None)`: "ended early, nothing to report" (a signal,
/// `EINTR`, PEP 475; or a wake-up for a registration the backend has since
/// dropped). The total never exceeds the timeout.
///
/// Returns `Ok(None)` when the deadline has passed before `wait` had
/// anything: the caller reports no events. `None` (block) and zero (poll)
/// need no clock: they are retried as they are.
#[inline]
pub(crate) fn retry<T, E>(
    timeout: Option<Duration>,
    wait: impl FnMut(Option<Duration>) -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    let deadline = match timeout {
        Some(t) if !t.is_zero() => Instant::now().checked_add(t),
        _ => None,
    };
    retry_until(timeout, deadline, wait)
}

/// [`retry`] with the deadline given: `timeout` is the first wait's, and
/// each retry waits what is left until `deadline` (`None`: the same
/// `timeout` again). For `select_until`, whose caller names the instant.
#[inline]
pub(crate) fn retry_until<T, E>(
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    mut wait: impl FnMut(Option<Duration>) -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    let mut next = timeout;
    loop {
        if let Some(v) = wait(next)? {
            return Ok(Some(v));
        }
        if let Some(deadline) = deadline {
            match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => next = Some(left),
                _ => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    const MS: Duration = Duration::from_millis(1);

    #[cfg(unix)]
    #[test]
    fn the_xnu_cap() {
        assert_eq!(clamp_timeout(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            clamp_timeout(Duration::from_nanos(1)),
            Duration::from_nanos(1)
        );
        assert_eq!(clamp_timeout(MAX_TIMEOUT), MAX_TIMEOUT);
        assert_eq!(clamp_timeout(Duration::MAX), MAX_TIMEOUT);
        let ts = to_nanos_timespec(clamp_timeout(Duration::MAX));
        assert_eq!((ts.tv_sec, ts.tv_nsec), (100_000_000, 0));
        assert!(i32::try_from(ts.tv_sec).is_ok(), "fits a 32-bit time_t");
    }

    #[test]
    fn millis_round_up_and_saturate() {
        assert_eq!(to_millis(None), -1);
        assert_eq!(to_millis(Some(Duration::ZERO)), 0);
        assert_eq!(to_millis(Some(Duration::from_nanos(1))), 1);
        assert_eq!(to_millis(Some(Duration::from_nanos(999_999))), 1);
        assert_eq!(to_millis(Some(MS)), 1);
        assert_eq!(to_millis(Some(Duration::from_nanos(1_000_001))), 2);
        assert_eq!(
            to_millis(Some(Duration::from_millis(i32::MAX as u64))),
            i32::MAX
        );
        assert_eq!(
            to_millis(Some(Duration::from_millis(i32::MAX as u64 + 1))),
            i32::MAX
        );
        assert_eq!(to_millis(Some(Duration::MAX)), i32::MAX);
    }

    #[cfg(windows)]
    #[test]
    fn timeval_rounds_up_and_saturates() {
        let tv = |d| {
            let t = to_timeval(d);
            (t.tv_sec, t.tv_usec)
        };
        assert_eq!(tv(Duration::ZERO), (0, 0));
        assert_eq!(tv(Duration::from_nanos(1)), (0, 1));
        assert_eq!(tv(Duration::from_nanos(999_999_999)), (1, 0));
        assert_eq!(tv(Duration::from_secs(i32::MAX as u64)), (i32::MAX, 0));
        assert_eq!(
            tv(Duration::from_secs(i32::MAX as u64 + 1)),
            (i32::MAX, 999_999)
        );
        assert_eq!(tv(Duration::MAX), (i32::MAX, 999_999));
    }

    #[cfg(unix)]
    #[test]
    fn micros_round_up_and_saturate() {
        let ts = |d| {
            let t = to_micros_timespec(d);
            (t.tv_sec, t.tv_nsec)
        };
        assert_eq!(ts(Duration::ZERO), (0, 0));
        assert_eq!(ts(Duration::from_nanos(1)), (0, 1_000));
        assert_eq!(ts(Duration::from_nanos(999_999)), (0, 1_000_000));
        assert_eq!(ts(MS), (0, 1_000_000));
        assert_eq!(ts(Duration::from_nanos(999_999_999)), (1, 0));
        assert_eq!(
            ts(Duration::from_millis(i32::MAX as u64)),
            (2_147_483, 647_000_000)
        );
        assert_eq!(ts(Duration::MAX), (i64::MAX, 999_999_000));
        // The largest in range rounds up into the next second: saturate.
        assert_eq!(
            ts(Duration::new(i64::MAX as u64, 999_999_001)),
            (i64::MAX, 999_999_000)
        );
        assert_eq!(
            ts(Duration::new(i64::MAX as u64 + 1, 0)),
            (i64::MAX, 999_999_000)
        );
    }

    #[cfg(unix)]
    #[test]
    fn nanos_are_exact_and_saturate() {
        let t = to_nanos_timespec(Duration::from_nanos(1));
        assert_eq!((t.tv_sec, t.tv_nsec), (0, 1));
        let t = to_nanos_timespec(Duration::from_nanos(999_999));
        assert_eq!((t.tv_sec, t.tv_nsec), (0, 999_999));
        let t = to_nanos_timespec(Duration::MAX);
        assert_eq!((t.tv_sec, t.tv_nsec), (i64::MAX, 999_999_999));
    }

    #[cfg(unix)]
    #[test]
    fn millis_timespec_matches() {
        assert!(millis_timespec(-1).is_none());
        let t = millis_timespec(0).unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (0, 0));
        let t = millis_timespec(1_001).unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1, 1_000_000));
        let t = millis_timespec(i32::MAX).unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (2_147_483, 647_000_000));
    }

    /// What the selector's `wait` closure answers for a signal.
    fn again<T>() -> io::Result<Option<T>> {
        Ok(None)
    }

    #[test]
    fn a_positive_timeout_polls_first() {
        assert_eq!(first_wait(None), None);
        assert_eq!(first_wait(Some(Duration::ZERO)), Some(Duration::ZERO));
        assert_eq!(first_wait(Some(MS)), Some(Duration::ZERO));
        assert_eq!(first_wait(Some(Duration::MAX)), Some(Duration::ZERO));
    }

    #[test]
    fn retries_with_less_time_each_call() {
        let mut seen = Vec::new();
        let r = retry(Some(Duration::from_secs(10)), |t| {
            seen.push(t.unwrap());
            std::thread::sleep(MS);
            if seen.len() < 3 { again() } else { Ok(Some(7)) }
        });
        assert_eq!(r.unwrap(), Some(7));
        assert_eq!(seen.len(), 3);
        assert!(seen[1] < seen[0] && seen[2] < seen[1], "{seen:?}");
    }

    #[test]
    fn a_retry_after_the_deadline_returns_nothing() {
        let mut calls = 0;
        let r: io::Result<Option<()>> = retry(Some(MS), |_| {
            calls += 1;
            std::thread::sleep(2 * MS);
            again()
        });
        assert_eq!(r.unwrap(), None);
        assert_eq!(calls, 1);
    }

    #[test]
    fn with_no_timeout_or_zero_retries_the_same() {
        for timeout in [None, Some(Duration::ZERO)] {
            let mut seen = Vec::new();
            let r = retry(timeout, |t| {
                seen.push(t);
                if seen.len() < 4 {
                    again()
                } else {
                    Ok(Some(()))
                }
            });
            assert_eq!(r.unwrap(), Some(()));
            assert_eq!(seen, vec![timeout; 4]);
        }
    }

    #[test]
    fn errors_pass_through() {
        // EBADF on unix (any OS error code would do).
        let r: io::Result<Option<()>> = retry(None, |_| Err(io::Error::from_raw_os_error(9)));
        assert_eq!(r.unwrap_err().raw_os_error(), Some(9));
    }

    /// Found by the `pure` fuzz target: `select`'s timeout must be a
    /// `timespec` of whole microseconds, saturating at the largest one,
    /// `(i64::MAX s, 999_999_000 ns)`. It used to saturate at
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
}

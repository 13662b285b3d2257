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
pub fn to_nanos_timespec(t: Duration) -> Timespec {
    timespec(t.as_secs(), t.subsec_nanos(), 999_999_999)
}

/// The `timespec` equal to `ms` milliseconds (for epoll and poll through
/// rustix, which takes a `timespec` but waits in whole milliseconds).
#[cfg(unix)]
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
    mut wait: impl FnMut(Option<Duration>) -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    let deadline = match timeout {
        Some(t) if !t.is_zero() => Instant::now().checked_add(t),
        _ => None,
    };
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
}

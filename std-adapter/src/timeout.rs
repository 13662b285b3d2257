//! The one conversion from a `Duration` timeout to what each system call
//! takes, and the EINTR retry loop that honours one deadline.

use std::io;
use std::time::{Duration, Instant};

use rustix::event::Timespec;

use crate::Error;

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
#[inline]
pub fn to_nanos_timespec(t: Duration) -> Timespec {
    timespec(t.as_secs(), t.subsec_nanos(), 999_999_999)
}

/// The `timespec` equal to `ms` milliseconds (for epoll and poll through
/// rustix, which takes a `timespec` but waits in whole milliseconds).
#[inline]
pub fn millis_timespec(ms: i32) -> Option<Timespec> {
    u32::try_from(ms)
        .ok()
        .map(|ms| timespec(u64::from(ms / 1000), (ms % 1000) * 1_000_000, 0))
}

/// `secs` and `nanos` as a `timespec`; beyond `i64::MAX` seconds, the
/// largest one: `i64::MAX` seconds and `max_nanos`.
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

/// Runs `wait` (one wait for events with the given timeout) and retries
/// it on `EINTR` with the time left until one deadline, computed once
/// before the first call (PEP 475), so the total never exceeds the timeout.
///
/// After each `EINTR`, `on_eintr` runs first (a host runtime's signal
/// handlers); its error ends the wait as `Error::Io`. Returns `Ok(None)`
/// when a retry finds the deadline passed: the caller reports no events.
/// Never returns an `Interrupted` error. `None` (block) and zero (poll)
/// need no clock: they are retried as they are.
#[inline]
pub(crate) fn retry_eintr<T>(
    timeout: Option<Duration>,
    mut wait: impl FnMut(Option<Duration>) -> Result<T, Error>,
    mut on_eintr: impl FnMut() -> io::Result<()>,
) -> Result<Option<T>, Error> {
    let deadline = match timeout {
        Some(t) if !t.is_zero() => Instant::now().checked_add(t),
        _ => None,
    };
    let mut next = timeout;
    loop {
        match wait(next) {
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {
                on_eintr().map_err(Error::Io)?;
                if let Some(deadline) = deadline {
                    match deadline.checked_duration_since(Instant::now()) {
                        Some(left) if !left.is_zero() => next = Some(left),
                        _ => return Ok(None),
                    }
                }
            }
            other => return other.map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn nanos_are_exact_and_saturate() {
        let t = to_nanos_timespec(Duration::from_nanos(1));
        assert_eq!((t.tv_sec, t.tv_nsec), (0, 1));
        let t = to_nanos_timespec(Duration::from_nanos(999_999));
        assert_eq!((t.tv_sec, t.tv_nsec), (0, 999_999));
        let t = to_nanos_timespec(Duration::MAX);
        assert_eq!((t.tv_sec, t.tv_nsec), (i64::MAX, 999_999_999));
    }

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

    fn eintr<T>() -> Result<T, Error> {
        Err(Error::Io(io::Error::from_raw_os_error(libc::EINTR)))
    }

    fn go_on() -> io::Result<()> {
        Ok(())
    }

    #[test]
    fn eintr_retries_with_less_time_each_call() {
        let mut seen = Vec::new();
        let r = retry_eintr(
            Some(Duration::from_secs(10)),
            |t| {
                seen.push(t.unwrap());
                std::thread::sleep(MS);
                if seen.len() < 3 { eintr() } else { Ok(7) }
            },
            go_on,
        );
        assert_eq!(r.unwrap(), Some(7));
        assert_eq!(seen.len(), 3);
        assert!(seen[1] < seen[0] && seen[2] < seen[1], "{seen:?}");
    }

    #[test]
    fn eintr_after_the_deadline_returns_nothing() {
        let mut calls = 0;
        let r: Result<Option<()>, Error> = retry_eintr(
            Some(MS),
            |_| {
                calls += 1;
                std::thread::sleep(2 * MS);
                eintr()
            },
            go_on,
        );
        assert_eq!(r.unwrap(), None);
        assert_eq!(calls, 1);
    }

    #[test]
    fn eintr_with_no_timeout_or_zero_retries_the_same() {
        for timeout in [None, Some(Duration::ZERO)] {
            let mut seen = Vec::new();
            let r = retry_eintr(
                timeout,
                |t| {
                    seen.push(t);
                    if seen.len() < 4 { eintr() } else { Ok(()) }
                },
                go_on,
            );
            assert_eq!(r.unwrap(), Some(()));
            assert_eq!(seen, vec![timeout; 4]);
        }
    }

    #[test]
    fn other_errors_pass_through() {
        let r: Result<Option<()>, Error> = retry_eintr(
            None,
            |_| Err(io::Error::from_raw_os_error(libc::EBADF).into()),
            go_on,
        );
        assert!(matches!(r, Err(Error::Io(e)) if e.raw_os_error() == Some(libc::EBADF)));
    }

    #[test]
    fn the_hook_runs_on_each_eintr_and_its_error_ends_the_wait() {
        let hooks = std::cell::Cell::new(0);
        let r = retry_eintr(
            None,
            |_| if hooks.get() < 2 { eintr() } else { Ok(()) },
            || {
                hooks.set(hooks.get() + 1);
                Ok(())
            },
        );
        assert_eq!(r.unwrap(), Some(()));
        assert_eq!(hooks.get(), 2);

        let mut waits = 0;
        let r: Result<Option<()>, Error> = retry_eintr(
            Some(Duration::from_secs(10)),
            |_| {
                waits += 1;
                eintr()
            },
            || Err(io::Error::other("handler raised")),
        );
        assert!(matches!(r, Err(Error::Io(e)) if e.to_string() == "handler raised"));
        assert_eq!(waits, 1, "no retry after the hook failed");
    }

    #[test]
    fn the_hook_runs_even_after_the_deadline() {
        // CPython runs the signal handlers before it looks at the clock.
        let mut hooks = 0;
        let r: Result<Option<()>, Error> = retry_eintr(
            Some(MS),
            |_| {
                std::thread::sleep(2 * MS);
                eintr()
            },
            || {
                hooks += 1;
                Ok(())
            },
        );
        assert_eq!(r.unwrap(), None);
        assert_eq!(hooks, 1);
    }
}

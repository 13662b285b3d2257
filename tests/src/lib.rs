//! The conformance suite of selectors2: every case is a generic function
//! over the backend ([`cases`]), and `tests/conformance.rs` runs each of
//! them on every backend this host has, through [`suite!`].
//!
//! Helpers keep each case a few lines: [`pair`], [`pipe`], [`ready_set`],
//! [`expect_ready`].
#![allow(unsafe_code)] // tests poke the OS directly: dup2, signals, rlimits

pub mod cases;
pub mod differential;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use selectors2::sys::OsBackend;
use selectors2::{Events, Ready, Selector};

/// Generous upper bound for "returns promptly" on a shared, noisy machine.
pub const PROMPT: Duration = Duration::from_secs(2);

/// A connected, non-blocking socket pair.
pub fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// A non-blocking pipe: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    assert_eq!(r, 0, "pipe2");
    // SAFETY: pipe2 just returned these two fresh fds, owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Writes one byte to `s`.
pub fn poke(mut s: &UnixStream) {
    s.write_all(b"x").unwrap();
}

/// Reads everything pending on `s`.
pub fn drain(mut s: &UnixStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

/// Selects once and returns `fd → events` (asserting one entry per fd).
pub fn ready_set<B: OsBackend, D: Clone, const N: usize>(
    sel: &mut Selector<B, D, N>,
    timeout: Option<Duration>,
) -> BTreeMap<RawFd, Events> {
    let mut ready: Ready<D, 256> = Ready::new();
    let n = sel.select(&mut ready, timeout).expect("select");
    assert_eq!(n, ready.len());
    let mut set = BTreeMap::new();
    for (key, events) in &ready {
        assert!(!events.is_empty(), "empty events for fd {}", key.fd);
        assert!(
            key.events.contains(events),
            "fd {} got {events:?} beyond {:?}",
            key.fd,
            key.events
        );
        assert!(
            set.insert(key.fd, events).is_none(),
            "fd {} reported twice",
            key.fd
        );
    }
    set
}

/// Selects with a zero timeout and asserts exactly `expected` is ready.
#[track_caller]
pub fn expect_ready<B: OsBackend, D: Clone, const N: usize>(
    sel: &mut Selector<B, D, N>,
    expected: &[(RawFd, Events)],
) {
    let want: BTreeMap<_, _> = expected.iter().copied().collect();
    assert_eq!(
        ready_set(sel, Some(Duration::ZERO)),
        want,
        "on {}",
        sel.backend_kind()
    );
}

/// How long `f` takes.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let v = f();
    (v, start.elapsed())
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns it.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let want = lim.rlim_max.min(1 << 20);
    if lim.rlim_cur < want {
        lim.rlim_cur = want;
        // SAFETY: `lim` is a valid in-pointer; failure just leaves the limit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
    // SAFETY: as above.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    lim.rlim_cur
}

/// `dup2(from, to)`, returning an owned `to`. `to` must be an fd the caller
/// owns and gives up (from `into_raw_fd`): dup2 closes it atomically.
pub fn dup2(from: &impl AsRawFd, to: RawFd) -> OwnedFd {
    // SAFETY: dup2 on a live fd over one the caller relinquished.
    let r = unsafe { libc::dup2(from.as_raw_fd(), to) };
    assert_eq!(r, to, "dup2: {}", std::io::Error::last_os_error());
    // SAFETY: `to` was just made a duplicate owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(to) }
}

/// Whether `fd` is open in this process.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Whether `fd` is close-on-exec.
pub fn is_cloexec(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    flags != -1 && flags & libc::FD_CLOEXEC != 0
}

/// How many fds this process has open.
pub fn open_fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

// Shared by the cases that need low fd numbers, taken alone by the one that
// holds thousands: see `low_fds`.
static FD_NUMBERS: RwLock<()> = RwLock::new(());

/// For a case that needs its fds below `FD_SETSIZE`: shares the process's
/// fd numbers with the other such cases, never with [`cases::many_fds`].
/// That case holds thousands of fds at once, so every fd opened meanwhile
/// gets a number above `FD_SETSIZE`, where the select backend rightly
/// answers `InvalidFd`: a select case or a differential sequence running
/// beside it would fail for a reason that is not its own (seen under
/// AddressSanitizer, where `many_fds` is slow: the differential test's
/// select said `InvalidFd(2053)` where epoll said `NotRegistered`).
pub fn low_fds() -> RwLockReadGuard<'static, ()> {
    // A panicking case poisons the lock; the fd table is still fine.
    FD_NUMBERS.read().unwrap_or_else(PoisonError::into_inner)
}

/// For a case that holds thousands of fds: runs alone, while no
/// [`low_fds`] guard is held.
pub fn many_fds_alone() -> RwLockWriteGuard<'static, ()> {
    FD_NUMBERS.write().unwrap_or_else(PoisonError::into_inner)
}

/// Instantiates every case of [`cases`] as a `#[test]` in a module named
/// `$name`, on backend `$backend`. Most cases share the fd numbers
/// ([`low_fds`]); those that hold thousands of fds or free a registered fd
/// number (which another test could take) run alone ([`many_fds_alone`]).
#[macro_export]
macro_rules! suite {
    ($name:ident, $backend:ty) => {
        mod $name {
            $crate::suite!(@cases $backend;
                register_returns_the_key,
                register_validates_in_python_order,
                register_twice_is_refused,
                register_beyond_capacity_is_full,
                selectable_forms_name_the_same_fd,
                unregister_returns_the_key,
                unregister_twice_and_unknown_are_not_registered,
                unregister_after_close_succeeds,
                unregister_after_fd_reuse_succeeds,
                modify_changes_events_and_data,
                modify_data_only_keeps_the_registration,
                modify_validates_and_changes_nothing_on_failure,
                failed_modify_keeps_old_key_and_registration,
                get_key_and_get_map,
                select_write_ready,
                select_read_after_write,
                select_read_write_is_one_merged_entry,
                select_masks_by_interest,
                same_fd_in_two_selectors,
                select_many_events,
                level_triggered_until_consumed,
                unregistered_fd_is_not_reported,
                no_starvation_with_small_ready,
                peer_closed_is_read_and_write,
                pipe_read_and_write_ends,
                pipe_reader_closed_wakes_writer,
                regular_file_is_atomic,
                empty_select_sleeps_the_timeout,
                timeout_zero_returns_at_once,
                timeout_none_returns_when_ready,
                timeout_waits_at_least_as_asked,
                tiny_timeout_rounds_up_not_down,
                huge_timeout_does_not_overflow,
                eintr_without_event_waits_the_full_timeout,
                eintr_with_event_returns_the_event,
                waker_from_another_thread,
                fileno_and_cloexec,
                no_fd_leak_over_many_selectors,
                stale_registration_of_reused_fd_number,
                errors_convert_to_io_kinds,

                eintr_hook_resumes_or_stops,
                backends_called_directly_do_not_panic,
            );

            $crate::suite!(@alone $backend;
                many_fds,
                closed_fd_does_not_hide_the_others,
                registration_outliving_its_fd_is_harmless,
                same_file_back_under_the_same_number,
            );
        }
    };
    (@alone $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let _alone = $crate::many_fds_alone();
                $crate::cases::$case::<$backend>();
            }
        )*
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let _fds = $crate::low_fds();
                $crate::cases::$case::<$backend>();
            }
        )*
    };
}

//! The conformance suite of selectors2: every case is a generic function
//! over the backend ([`cases`]), and `tests/conformance.rs` runs each of
//! them on every backend this host has, through [`suite!`].
//!
//! Helpers keep each case a few lines: [`pair`], [`pipe`], [`ready_set`],
//! [`expect_ready`].
//!
//! On Windows the sockets are loopback TCP pairs (no socketpair, and no
//! pipes: WSAPoll and select watch sockets only), and [`AsRawFd`] names a
//! socket as the selector's fd, so the cases read the same on both.
#![allow(unsafe_code)] // tests poke the OS directly: dup2, signals, rlimits

pub mod cases;
pub mod differential;

/// The Rust snippets of the repository's README, compiled and run as
/// doctests so that they cannot rot. Here, not in `selectors2`: a published
/// crate cannot include a file from outside its package.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct RepositoryReadme;

use std::collections::BTreeMap;
use std::io::{Read, Write};
#[cfg(unix)]
pub use std::os::fd::AsRawFd;
#[cfg(unix)]
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use selectors2::sys::OsBackend;
use selectors2::{Events, RawFd, Ready, Selector};

/// Generous upper bound for "returns promptly" on a shared, noisy machine.
pub const PROMPT: Duration = Duration::from_secs(2);

/// The connected sockets the cases use: a unix socketpair's ends.
#[cfg(unix)]
pub type Stream = std::os::unix::net::UnixStream;

/// The connected sockets the cases use: loopback TCP (Windows has no
/// socketpair that WSAPoll accepts).
#[cfg(windows)]
pub type Stream = std::net::TcpStream;

/// A connected, non-blocking socket pair.
#[cfg(unix)]
pub fn pair() -> (Stream, Stream) {
    let (a, b) = Stream::pair().expect("socketpair");
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// A connected, non-blocking loopback TCP pair, Nagle off (a poke arrives
/// at once).
#[cfg(windows)]
pub fn pair() -> (Stream, Stream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = Stream::connect(listener.local_addr().unwrap()).expect("connect");
    let (b, _) = listener.accept().expect("accept");
    for s in [&a, &b] {
        s.set_nonblocking(true).unwrap();
        s.set_nodelay(true).unwrap();
    }
    (a, b)
}

/// The selector's fd for a socket (Windows): what `&T: AsRawSocket`
/// registers as, so that the cases compare keys with `x.as_raw_fd()` as
/// they do on unix.
#[cfg(windows)]
pub trait AsRawFd {
    /// The socket handle as the core's fd.
    fn as_raw_fd(&self) -> RawFd;
}

#[cfg(windows)]
impl<T: std::os::windows::io::AsRawSocket + ?Sized> AsRawFd for T {
    fn as_raw_fd(&self) -> RawFd {
        selectors2::Selectable::raw_fd(&self)
    }
}

/// `as_fd()` on Windows: the borrowed socket, so that the cases pass the
/// borrowed form of `Selectable` as they do on unix.
#[cfg(windows)]
pub trait AsFd {
    /// `AsSocket::as_socket`.
    fn as_fd(&self) -> std::os::windows::io::BorrowedSocket<'_>;
}

#[cfg(windows)]
impl<T: std::os::windows::io::AsSocket + ?Sized> AsFd for T {
    fn as_fd(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        self.as_socket()
    }
}

/// A non-blocking pipe: (read end, write end).
#[cfg(unix)]
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    #[cfg(not(target_vendor = "apple"))]
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    // macOS has no pipe2: the flags follow (no other thread execs here).
    // SAFETY: as above, for pipe; fcntl on the fresh fds only.
    #[cfg(target_vendor = "apple")]
    let r = unsafe {
        let r = libc::pipe(fds.as_mut_ptr());
        for fd in fds {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
        }
        r
    };
    assert_eq!(r, 0, "pipe2");
    // SAFETY: pipe2 just returned these two fresh fds, owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Writes one byte to `s`.
pub fn poke(mut s: &Stream) {
    s.write_all(b"x").unwrap();
}

/// Reads everything pending on `s`.
pub fn drain(mut s: &Stream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

/// Selects once and returns `fd → events` (asserting one entry per fd).
pub fn ready_set<B: OsBackend, D: Clone>(
    sel: &mut Selector<B, D>,
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
pub fn expect_ready<B: OsBackend, D: Clone>(
    sel: &mut Selector<B, D>,
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

/// The process out of fds, until dropped: the soft `RLIMIT_NOFILE` just
/// above the highest fd in use, and every number below it taken by a
/// duplicate of `fd`. Dropping it closes them and puts the limit back. For
/// a case that runs alone (every other open fails meanwhile).
#[cfg(unix)]
#[derive(Debug)]
pub struct OutOfFds {
    fillers: Vec<OwnedFd>,
    saved: rustix::process::Rlimit,
}

#[cfg(unix)]
impl OutOfFds {
    /// Uses up the fd table with duplicates of `fd`.
    pub fn new(fd: std::os::fd::BorrowedFd<'_>) -> OutOfFds {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let saved = getrlimit(Resource::Nofile);
        let highest = std::fs::read_dir("/proc/self/fd")
            .expect("/proc/self/fd")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .max()
            .unwrap_or(2);
        let limit = Rlimit {
            current: Some(highest + 4),
            maximum: saved.maximum,
        };
        setrlimit(Resource::Nofile, limit).expect("lower RLIMIT_NOFILE");
        let mut fillers = Vec::new();
        loop {
            match rustix::io::fcntl_dupfd_cloexec(fd, 0) {
                Ok(f) => fillers.push(f),
                Err(rustix::io::Errno::MFILE) => break,
                Err(e) => panic!("dup: {e}"),
            }
        }
        OutOfFds { fillers, saved }
    }
}

#[cfg(unix)]
impl Drop for OutOfFds {
    fn drop(&mut self) {
        self.fillers.clear();
        let _ = rustix::process::setrlimit(rustix::process::Resource::Nofile, self.saved);
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (capped at 2^20) and
/// returns the soft limit now in force. The one copy for the conformance
/// cases, the benchmarks and their tools.
#[cfg(unix)]
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    let want = lim.maximum.unwrap_or(u64::MAX).min(1 << 20);
    if lim.current.is_some_and(|cur| cur < want) {
        let raised = Rlimit {
            current: Some(want),
            maximum: lim.maximum,
        };
        // Failure leaves the limit as it was, which the caller reads below.
        let _ = setrlimit(Resource::Nofile, raised);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// `dup2(from, to)`, returning an owned `to`. `to` must be an fd the caller
/// owns and gives up (from `into_raw_fd`): dup2 closes it atomically.
#[cfg(unix)]
pub fn dup2(from: &impl AsRawFd, to: RawFd) -> OwnedFd {
    dup2_raw(from.as_raw_fd(), to)
}

/// [`dup2`] from a number: `from` must be open (a selector's `fileno()`).
#[cfg(unix)]
pub fn dup2_raw(from: RawFd, to: RawFd) -> OwnedFd {
    // SAFETY: dup2 on a live fd over one the caller relinquished.
    let r = unsafe { libc::dup2(from, to) };
    assert_eq!(r, to, "dup2: {}", std::io::Error::last_os_error());
    // SAFETY: `to` was just made a duplicate owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(to) }
}

/// Whether `fd` is open in this process.
#[cfg(unix)]
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Whether `fd` is close-on-exec.
#[cfg(unix)]
pub fn is_cloexec(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    flags != -1 && flags & libc::FD_CLOEXEC != 0
}

/// Whether socket `fd` is kept from child processes (the Windows form of
/// close-on-exec: its handle is not inheritable).
#[cfg(windows)]
pub fn is_cloexec(fd: RawFd) -> bool {
    use windows_sys::Win32::Foundation::{GetHandleInformation, HANDLE_FLAG_INHERIT};
    let mut flags = 0u32;
    // SAFETY: reads the flags of a handle into a valid out-pointer; a bad
    // handle fails the call.
    let ok = unsafe { GetHandleInformation(fd as usize as _, &mut flags) };
    ok != 0 && flags & HANDLE_FLAG_INHERIT == 0
}

/// Whether `fd` names an open handle in this process (Windows).
#[cfg(windows)]
pub fn is_open(fd: RawFd) -> bool {
    let mut flags = 0u32;
    // SAFETY: reads the flags of a handle into a valid out-pointer; a bad
    // handle fails the call.
    unsafe {
        windows_sys::Win32::Foundation::GetHandleInformation(fd as usize as _, &mut flags) != 0
    }
}

/// Whether an OS error means "nothing is open under that number" (`EBADF`;
/// on Windows `WSAENOTSOCK`, which Wine says for a closed socket).
pub fn is_closed_error(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    return e.raw_os_error() == Some(libc::EBADF);
    #[cfg(windows)]
    return e.raw_os_error() == Some(windows_sys::Win32::Networking::WinSock::WSAENOTSOCK);
}

/// How many fds this process has open.
#[cfg(unix)]
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

include!(concat!(env!("OUT_DIR"), "/suite_cases.rs"));

/// Instantiates every case of [`cases`] as a `#[test]` in a module named
/// `$name`, on backend `$backend`. The list is generated from `cases.rs`
/// itself (`tests/build.rs`), so each case is named once: every
/// `pub fn NAME<B: OsBackend>()` there is a case, under the `#[cfg]` it is
/// defined with (the top of [`cases`] says why a case is skipped on
/// Windows). Most cases share the fd numbers ([`low_fds`]); those whose
/// docs say "Runs alone" (they hold thousands of fds, or free a registered
/// fd number another test could take) run alone ([`many_fds_alone`]).
/// Those whose docs say "Needs the selector's fd" are ignored (the harness
/// counts them) in a suite marked `without_fd`, for a backend that has no
/// fd of its own (poll, select).
#[macro_export]
macro_rules! suite {
    ($name:ident, $backend:ty) => {
        mod $name {
            $crate::__suite_cases!(with_fd, $backend);
        }
    };
    ($name:ident, $backend:ty, without_fd) => {
        mod $name {
            $crate::__suite_cases!(without_fd, $backend);
        }
    };
}

//! The readiness mechanisms, one file each. This is the only place with
//! `unsafe` code in the crate: each block is small and carries a
//! `// SAFETY:` proof.
//!
//! You rarely name these types: the selector aliases do
//! (`PollSelector` is [`Selector<sys::Poll, D>`](crate::Selector)).
//! On Windows `Poll` is WSAPoll (`wsapoll.rs`) and `Select` is Winsock
//! `select` (`winsock_select.rs`), sharing `winsock.rs`.
//!
//! # Backend contract
//!
//! Each type implements [`selectors2_core::Backend`] with
//! `Error = std::io::Error`, as that trait's docs specify, and:
//!
//! * every fd it opens is close-on-exec and closed on drop;
//! * `wait` is one system call and makes no heap allocation; a signal
//!   ends it with an `Interrupted` error, which the adapter's
//!   `Selector::select` retries against one deadline (see `timeout.rs`);
//!   called directly, a backend hands that error to its caller;
//! * a backend called directly (the types are public) answers an fd it
//!   cannot watch with an error, never a panic;
//! * `register`, `modify` and `unregister` are O(1) and allocation-free
//!   (buffers are sized at construction from the key-table capacity).

use std::io;

use selectors2_core::Backend;

use crate::{BackendKind, RawFd};

mod auto;
#[cfg(has_epoll)]
mod epoll;
#[cfg(any(unix, windows))]
mod indices;
#[cfg(has_kqueue)]
mod kqueue;
#[cfg(unix)]
mod kqueue_plan;
#[cfg(unix)]
mod poll;
#[cfg(unix)]
mod select;
mod table;
#[cfg(windows)]
mod winsock;
#[cfg(windows)]
mod winsock_select;
#[cfg(windows)]
mod wsapoll;

pub use auto::Auto;
#[cfg(has_epoll)]
pub use epoll::Epoll;
#[cfg(has_kqueue)]
pub use kqueue::Kqueue;
#[cfg(unix)]
pub use poll::Poll;
#[cfg(unix)]
pub use select::{FD_SETSIZE, Select};
pub(crate) use table::{slots_for, zeroed_table};
#[cfg(windows)]
pub(crate) use winsock::set_no_inherit;
#[cfg(windows)]
pub use winsock_select::{FD_SETSIZE, Select};
#[cfg(windows)]
pub use wsapoll::Poll;

mod sealed {
    /// Private to the crate: what the adapter's `Selector` needs of a
    /// backend beyond the core's `Backend` trait.
    pub trait Sealed: Sized {
        /// Opens the mechanism, sized for a key table of `capacity` keys.
        /// Only the crate's selectors call it: a backend is reached through
        /// a [`Selector`](crate::Selector), which validates what the
        /// backend is given.
        fn open(capacity: usize) -> std::io::Result<Self>;

        /// Whether a wait since the last call met reports that belong to no
        /// key, after which the backend dropped them (epoll's rebuild): a
        /// `select` that found nothing then waits again for the time left.
        /// Cleared by the call, and only by it (a `select` that found keys
        /// does not ask, so one later empty `select` may wait once more
        /// than it needed: never past its timeout).
        #[inline]
        fn take_spurious_wakeup(&mut self) -> bool {
            false
        }

        /// Makes room for a key table of `capacity` keys, more than the
        /// backend was opened for, keeping every registration: what a
        /// [`Selector`](crate::Selector) that grows its table needs of a backend
        /// whose buffers are sized from the capacity (epoll's and kqueue's
        /// event buffers, poll's arrays). Allocates; an allocation that
        /// fails is `OutOfMemory`, leaving every registration as it was.
        #[inline]
        fn reserve_keys(&mut self, capacity: usize) -> std::io::Result<()> {
            let _ = capacity;
            Ok(())
        }
    }
}
pub(crate) use sealed::Sealed;

/// A readiness mechanism of the operating system that a
/// [`Selector`](crate::Selector) can be built on. Sealed: implemented by
/// the types of this module only.
pub trait OsBackend: Backend<Error = io::Error> + Sealed + Sized {
    /// Which mechanism this is.
    fn kind(&self) -> BackendKind;
    /// The mechanism's own fd (epoll and kqueue), as Python's `fileno()`;
    /// `None` for the stateless ones (poll, select), which have none.
    #[inline]
    fn fileno(&self) -> Option<RawFd> {
        None
    }
}

/// `BorrowedFd` for a caller's raw fd, for the duration of one system call.
///
/// The fd number comes from the user and may even be closed: that is part
/// of the API (Python's `unregister` of a closed fd). The borrowed fd is
/// only handed to the kernel, which validates the number and answers
/// `EBADF` for a closed one; nothing is read from or written to it here,
/// and it does not outlive the call. A negative number is answered with
/// `EBADF` here, as the kernel would, without making the call: the backends
/// are public, and one called directly must not panic.
#[cfg(unix)]
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn with_fd<R>(
    fd: RawFd,
    f: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> rustix::io::Result<R>,
) -> io::Result<R> {
    if fd < 0 {
        return Err(bad_fd());
    }
    // SAFETY: `fd` is not negative (checked above), so it is not -1, the
    // one bit pattern `BorrowedFd` forbids; see above for why handing a
    // possibly-closed number to the kernel for one call is sound.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    f(borrowed).map_err(io::Error::from)
}

#[cfg(unix)]
#[cold]
fn bad_fd() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

/// The error of an allocation that failed: `OutOfMemory`, what the
/// selectors return where the standard library would abort the process.
#[cold]
pub(crate) fn out_of_memory(_: std::collections::TryReserveError) -> io::Error {
    io::Error::from(io::ErrorKind::OutOfMemory)
}

/// An empty `Vec` with room for `capacity` elements, or `OutOfMemory`.
pub(crate) fn vec_with_capacity<T>(capacity: usize) -> io::Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(capacity).map_err(out_of_memory)?;
    Ok(v)
}

/// Room in `v` for `capacity` elements in all, or `OutOfMemory` (`v`
/// unchanged).
pub(crate) fn reserve_total<T>(v: &mut Vec<T>, capacity: usize) -> io::Result<()> {
    v.try_reserve_exact(capacity.saturating_sub(v.len()))
        .map_err(out_of_memory)
}

/// `len` uninitialised elements (a buffer the kernel writes into), or
/// `OutOfMemory`.
#[cfg(any(has_epoll, has_kqueue))]
pub(crate) fn uninit_slice<T>(len: usize) -> io::Result<Box<[std::mem::MaybeUninit<T>]>> {
    let mut v = vec_with_capacity(len)?;
    v.resize_with(len, std::mem::MaybeUninit::uninit);
    Ok(v.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use selectors2_core::{BackendSlot, Events, Tag};

    use super::*;

    /// A backend handed an fd the selector would have
    /// refused (negative, beyond `FD_SETSIZE`) or a wrong slot answers with
    /// an error, never a panic. Outside this crate only a `Selector` can
    /// open one (opening is in the crate-private `Sealed` trait).
    fn refuses_without_panicking<B: OsBackend>() {
        let mut b = B::open(4).unwrap();
        let kind = b.kind();
        for fd in [-1, -2, i32::MIN, 1024, 5000, i32::MAX] {
            // poll takes any number (it ignores negative ones); the others
            // refuse what they cannot watch. (Windows select limits how many
            // sockets, not their numbers: it refuses only negative ones.)
            let tag = Tag::from_bits(1);
            let registered = b.register(fd, Events::READ, tag);
            let must_refuse = match kind {
                BackendKind::Poll => false,
                BackendKind::Select if cfg!(windows) => fd < 0,
                _ => true,
            };
            if must_refuse {
                assert!(registered.is_err(), "{kind} registered fd {fd}");
            }
            let slot = registered.unwrap_or(BackendSlot::NONE);
            let wrong = BackendSlot::new(9999);
            let _ = b.modify(fd, slot, Events::READ, Events::WRITE, tag);
            let _ = b.unregister(fd, slot, Events::WRITE);
            let _ = b.unregister(fd, wrong, Events::READ);
            let _ = b.modify(fd, wrong, Events::READ, Events::WRITE, tag);
        }
        b.wait(4, Some(Duration::ZERO), |_, _, _| {}).unwrap();
        // No selector asks for 0 reports (a `Ready` holds at least one): an
        // error (epoll's EINVAL) or nothing, never a panic.
        let _ = b.wait(0, Some(Duration::ZERO), |_, _, _| {});
    }

    /// `Backend::may_report_twice`: a backend that says `false` (the
    /// selector then skips its merge check) reports each fd at most once
    /// per wait, here with every socket both readable and writable, which
    /// kqueue and select report as two events; and each backend says what
    /// its mechanism does (`Auto` what the one it chose does).
    #[cfg(unix)]
    fn reports_each_fd_once_when_it_says_so<B: OsBackend>() {
        use std::collections::BTreeMap;
        use std::io::Write;
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;

        let mut b = B::open(64).unwrap();
        let pairs: Vec<_> = (0..8).map(|_| UnixStream::pair().unwrap()).collect();
        for (i, (a, peer)) in pairs.iter().enumerate() {
            (&*peer).write_all(b"x").unwrap();
            b.register(a.as_raw_fd(), Events::all(), Tag::from_bits(i as u32 + 1))
                .unwrap();
        }
        let mut reports = BTreeMap::<RawFd, usize>::new();
        b.wait(64, Some(Duration::ZERO), |fd, _, _| {
            *reports.entry(fd).or_default() += 1;
        })
        .unwrap();
        assert_eq!(reports.len(), pairs.len(), "{}", b.kind());
        let most = reports.values().copied().max().unwrap_or(0);
        let twice = b.may_report_twice();
        if !twice {
            assert_eq!(most, 1, "{} said once, reported {reports:?}", b.kind());
        }
        let expected = match b.kind() {
            BackendKind::Epoll | BackendKind::Poll => false,
            BackendKind::Kqueue | BackendKind::Select => true,
        };
        assert_eq!(twice, expected, "{}", b.kind());
        if twice {
            // What makes the check worth its cost for these.
            assert_eq!(most, 2, "{} reports read and write apart", b.kind());
        }
    }

    #[cfg(unix)]
    #[test]
    fn backends_say_whether_they_report_an_fd_twice() {
        #[cfg(has_epoll)]
        reports_each_fd_once_when_it_says_so::<Epoll>();
        #[cfg(has_kqueue)]
        reports_each_fd_once_when_it_says_so::<Kqueue>();
        reports_each_fd_once_when_it_says_so::<Poll>();
        reports_each_fd_once_when_it_says_so::<Select>();
        reports_each_fd_once_when_it_says_so::<Auto>();
    }

    #[test]
    fn backends_refuse_bad_fds_without_panicking() {
        #[cfg(has_epoll)]
        refuses_without_panicking::<Epoll>();
        #[cfg(has_kqueue)]
        refuses_without_panicking::<Kqueue>();
        refuses_without_panicking::<Poll>();
        refuses_without_panicking::<Select>();
        refuses_without_panicking::<Auto>();
    }
}

#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(unix))]
compile_error!("selectors2 supports unix targets (epoll, kqueue, poll, select)");

mod selector;
pub mod sys;
mod timeout;
mod waker;

/// The timeout conversions, exposed for the fuzz targets only. Not a
/// stable API.
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::timeout::{millis_timespec, to_micros_timespec, to_millis, to_nanos_timespec};
}

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

pub use selectors2_core::{
    EVENT_READ, EVENT_WRITE, Events, KeyMap, RawFd, Readiness, Ready, SelectorKey,
};

#[cfg(has_epoll)]
pub use selector::EpollSelector;
#[cfg(has_kqueue)]
pub use selector::KqueueSelector;
pub use selector::{AnyCapacity, DefaultSelector, PollSelector, SelectSelector, Selector};
pub use waker::Waker;

/// The Rust snippets of the repository's README, compiled and run as
/// doctests so that they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct RepositoryReadme;

/// The key-table capacity of a selector when `N` is not given: 4096 keys.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Something that names a file descriptor: a [`RawFd`], a [`BorrowedFd`],
/// or a reference to anything that is [`AsRawFd`] (`&TcpStream`,
/// `&UnixStream`, `&OwnedFd`, `&File`...). Python's "file object".
///
/// ```
/// use selectors2::Selectable;
/// use std::os::fd::AsFd;
/// use std::os::unix::net::UnixStream;
///
/// let (a, _b) = UnixStream::pair().unwrap();
/// let fd = (&a).raw_fd();
/// assert_eq!(a.as_fd().raw_fd(), fd);
/// assert_eq!(fd.raw_fd(), fd);
/// ```
pub trait Selectable {
    /// The file descriptor number.
    fn raw_fd(&self) -> RawFd;
}

impl Selectable for RawFd {
    #[inline]
    fn raw_fd(&self) -> RawFd {
        *self
    }
}

impl Selectable for BorrowedFd<'_> {
    #[inline]
    fn raw_fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

impl<T: AsRawFd + ?Sized> Selectable for &T {
    #[inline]
    fn raw_fd(&self) -> RawFd {
        (**self).as_raw_fd()
    }
}

/// Why a [`Selector`] call failed. Every variant but `Io` carries the
/// offending value; a failed call changes nothing.
///
/// Converts into [`io::Error`] (so `?` works in functions returning
/// `io::Result`) with these kinds: `InvalidFd` and `InvalidEvents` →
/// `InvalidInput`; `AlreadyRegistered` → `AlreadyExists`; `NotRegistered` →
/// `NotFound`; `Full` → `QuotaExceeded` (a fixed quota of keys was reached,
/// which is neither an OS resource limit nor an allocation failure);
/// `Io` → the error itself.
///
/// ```
/// use selectors2::{DefaultSelector, EVENT_READ, Error};
/// use std::io;
///
/// let mut sel: DefaultSelector = DefaultSelector::new()?;
/// assert!(matches!(sel.register(-1, EVENT_READ, 0), Err(Error::InvalidFd(-1))));
/// let err: io::Error = sel.unregister(42).unwrap_err().into();
/// assert_eq!(err.kind(), io::ErrorKind::NotFound);
/// # Ok::<(), io::Error>(())
/// ```
#[derive(Debug)]
pub enum Error {
    /// The fd is negative, or `>= FD_SETSIZE` on a select backend.
    InvalidFd(RawFd),
    /// The events are empty or hold bits other than `READ | WRITE`.
    InvalidEvents(u8),
    /// The fd is already registered.
    AlreadyRegistered(RawFd),
    /// The fd is not registered.
    NotRegistered(RawFd),
    /// The key table is full.
    Full {
        /// Its capacity, `N`.
        capacity: usize,
    },
    /// The operating system refused.
    Io(io::Error),
}

impl From<selectors2_core::Error<io::Error>> for Error {
    #[inline]
    fn from(e: selectors2_core::Error<io::Error>) -> Self {
        use selectors2_core::Error as E;
        match e {
            E::InvalidFd(fd) => Error::InvalidFd(fd),
            E::InvalidEvents(bits) => Error::InvalidEvents(bits),
            E::AlreadyRegistered(fd) => Error::AlreadyRegistered(fd),
            E::NotRegistered(fd) => Error::NotRegistered(fd),
            E::Full { capacity } => Error::Full { capacity },
            E::Backend(e) => Error::Io(e),
        }
    }
}

impl From<io::Error> for Error {
    #[inline]
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The core words every message but the OS's own.
        use selectors2_core::Error as E;
        let core: E<std::convert::Infallible> = match *self {
            Error::Io(ref e) => return e.fmt(f),
            Error::InvalidFd(fd) => E::InvalidFd(fd),
            Error::InvalidEvents(bits) => E::InvalidEvents(bits),
            Error::AlreadyRegistered(fd) => E::AlreadyRegistered(fd),
            Error::NotRegistered(fd) => E::NotRegistered(fd),
            Error::Full { capacity } => E::Full { capacity },
        };
        core.fmt(f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e {
            Error::Io(e) => return e,
            Error::InvalidFd(_) | Error::InvalidEvents(_) => io::ErrorKind::InvalidInput,
            Error::AlreadyRegistered(_) => io::ErrorKind::AlreadyExists,
            Error::NotRegistered(_) => io::ErrorKind::NotFound,
            Error::Full { .. } => io::ErrorKind::QuotaExceeded,
        };
        io::Error::new(kind, e)
    }
}

/// Which readiness mechanism a selector uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Linux and Android `epoll`.
    Epoll,
    /// BSD and Apple `kqueue`.
    Kqueue,
    /// POSIX `poll`.
    Poll,
    /// POSIX `select`, limited to fds below `FD_SETSIZE`.
    Select,
}

impl BackendKind {
    /// The mechanisms this platform has, in the order `DefaultSelector`
    /// tries them (CPython's: kqueue, epoll, poll, select).
    pub const fn available() -> &'static [BackendKind] {
        #[cfg(has_epoll)]
        {
            &[BackendKind::Epoll, BackendKind::Poll, BackendKind::Select]
        }
        #[cfg(has_kqueue)]
        {
            &[BackendKind::Kqueue, BackendKind::Poll, BackendKind::Select]
        }
        #[cfg(not(any(has_epoll, has_kqueue)))]
        {
            &[BackendKind::Poll, BackendKind::Select]
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Epoll => "epoll",
            BackendKind::Kqueue => "kqueue",
            BackendKind::Poll => "poll",
            BackendKind::Select => "select",
        })
    }
}

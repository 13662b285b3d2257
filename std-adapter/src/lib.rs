#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[cfg(not(any(unix, windows)))]
compile_error!(
    "selectors2 supports unix (epoll, kqueue, poll, select) and Windows (WSAPoll, select)"
);

mod selector;
pub mod sys;
mod timeout;
#[cfg(unix)]
mod waker;
#[cfg(windows)]
#[path = "waker_windows.rs"]
mod waker;

/// The timeout conversions, for the fuzz targets only: present with the
/// `fuzzing` feature, which `fuzz/` turns on. Not a stable API.
#[cfg(all(unix, feature = "fuzzing"))]
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::timeout::{millis_timespec, to_micros_timespec, to_millis, to_nanos_timespec};
}

use std::fmt;
use std::io;

pub use selectors2_core::{EVENT_READ, EVENT_WRITE, KeyIter, RawFd, ReadyIter};

/// What a backend observed on an fd (the core's type). A std program never
/// needs it: [`Selector::select`] turns it into [`Events`]. Kept under this
/// name because the design's adapter API re-exports it (code written
/// against that contract keeps compiling), and hidden from these docs
/// because it is for backend writers; they find it in
/// `selectors2_core`.
#[doc(hidden)]
pub use selectors2_core::Readiness;

/// The events a key is watched for, and a ready key reports: `READ`,
/// `WRITE` or both (bitflags; [`EVENT_READ`] and [`EVENT_WRITE`] are
/// Python's names for the two flags).
///
/// ```
/// use selectors2::{EVENT_READ, EVENT_WRITE, Events};
///
/// let both: Events = EVENT_READ | EVENT_WRITE;
/// assert!(both.contains(Events::READ));
/// assert_eq!(both.bits(), 3); // Python's 1 | 2
/// assert_eq!(both - EVENT_WRITE, EVENT_READ);
/// ```
pub type Events = selectors2_core::Events;

/// One registration, as [`Selector::register`] returns it and
/// [`Selector::select`] reports it: Python's `SelectorKey`, without
/// `fileobj` (keep your object, or a token for it, in `data`).
///
/// ```
/// use selectors2::{DefaultSelector, EVENT_READ, Selectable, SelectorKey};
/// use std::net::TcpListener;
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let mut sel = DefaultSelector::new()?;
/// let key: SelectorKey<&str> = *sel.register(&listener, EVENT_READ, "listener")?;
/// assert_eq!(key, SelectorKey { fd: (&listener).raw_fd(), events: EVENT_READ, data: "listener" });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type SelectorKey<D> = selectors2_core::SelectorKey<D>;

/// The caller's buffer for what one [`Selector::select`] found: up to `M`
/// `(key, events)` entries, reused from call to call (no allocation).
/// `select` clears it, then fills it with one entry per ready fd; when more
/// fds are ready than `M`, the next calls return the others (none starves).
/// Each entry holds a clone of the key, so `D` must be `Clone` to `select`:
/// keep a token (an index, an enum) in `data`, not the socket itself.
///
/// ```
/// use selectors2::{DefaultSelector, EVENT_WRITE, Ready};
/// use std::net::{TcpListener, TcpStream};
/// use std::time::Duration;
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let stream = TcpStream::connect(listener.local_addr()?)?;
/// let mut sel = DefaultSelector::new()?;
/// sel.register(&stream, EVENT_WRITE, 1)?;
///
/// let mut ready: Ready<usize, 64> = Ready::new(); // on the stack, reused
/// sel.select(&mut ready, Some(Duration::from_secs(5)))?;
/// for (key, events) in &ready {
///     assert_eq!((key.data, events), (1, EVENT_WRITE));
/// }
/// assert_eq!(ready.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Ready<D, const M: usize> = selectors2_core::Ready<D, M>;

/// The read-only key table of a [`Selector`], as [`Selector::get_map`]
/// returns it: Python's `get_map()`, a mapping from fd to [`SelectorKey`].
/// The core's [`KeyMap`](selectors2_core::KeyMap), its size chosen at run
/// time.
///
/// Lookups are O(1); iteration yields the keys in registration order until
/// a key is removed (removal moves the last key into its place).
///
/// ```
/// use selectors2::{DefaultSelector, EVENT_READ, EVENT_WRITE};
/// use std::os::unix::net::UnixStream;
///
/// let (a, b) = UnixStream::pair()?;
/// let mut sel = DefaultSelector::new()?;
/// sel.register(&a, EVENT_READ, "a")?;
/// sel.register(&b, EVENT_WRITE, "b")?;
/// let map = sel.get_map();
/// assert_eq!(map.len(), 2);
/// assert_eq!(map.get(&b).map(|k| k.data), Some("b")); // as sel.get_key(&b)
/// assert!(map.contains_key(&a));
/// assert_eq!(map.iter().filter(|k| k.events == EVENT_READ).count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type KeyMap<D> = selectors2_core::KeyMap<D>;

#[cfg(has_epoll)]
pub use selector::EpollSelector;
#[cfg(has_kqueue)]
pub use selector::KqueueSelector;
pub use selector::{DefaultSelector, PollSelector, SelectSelector, Selector};
pub use waker::Waker;

/// How many keys [`Selector::new`] reserves room for: 4096. A selector
/// grows past it as keys are registered (see [`Selector`]).
pub const DEFAULT_CAPACITY: usize = 4096;

/// Something that names a file descriptor: a [`RawFd`], a `BorrowedFd`,
/// or a reference to anything that is `AsRawFd` (`&TcpStream`,
/// `&UnixStream`, `&OwnedFd`, `&File`...). Python's "file object".
///
/// On Windows it names a socket instead: a `RawSocket`, a
/// `BorrowedSocket` or a reference to anything that is `AsRawSocket`
/// (`&TcpStream`, `&UdpSocket`, `&TcpListener`, `&Waker`...). The core
/// keeps fds as `i32`; Windows keeps socket handles 32-bit significant
/// (so that 32- and 64-bit processes can share them), so they fit, and
/// the conversion is checked: a handle that does not fit (`INVALID_SOCKET`
/// among them) becomes `-1`, which `register` refuses with
/// [`Error::InvalidFd`]. A plain [`RawFd`] is taken as the socket handle
/// of that number.
///
/// ```
/// use selectors2::Selectable;
/// # #[cfg(unix)] {
/// use std::os::fd::AsFd;
/// use std::os::unix::net::UnixStream;
///
/// let (a, _b) = UnixStream::pair().unwrap();
/// let fd = (&a).raw_fd();
/// assert_eq!(a.as_fd().raw_fd(), fd);
/// assert_eq!(fd.raw_fd(), fd);
/// # }
/// # #[cfg(windows)] {
/// # use std::os::windows::io::{AsRawSocket, AsSocket};
/// # let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// # let fd = (&l).raw_fd();
/// # assert_eq!(l.as_socket().raw_fd(), fd);
/// # assert_eq!(l.as_raw_socket().raw_fd(), fd);
/// # assert_eq!(fd.raw_fd(), fd);
/// # }
/// ```
///
/// The trait lives in `selectors2-core` (behind its `std` feature, which
/// this crate turns on), so that the core's key table takes the same
/// arguments: `sel.get_map().get(&conn)` as `sel.get_key(&conn)`.
pub use selectors2_core::Selectable;

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
/// Why a second enum beside the core's `Error<E>`: `impl From<core Error>
/// for io::Error` cannot be written here (neither type is this crate's),
/// and `?` into `io::Result` is what std users need. The two carry the
/// same values and one wording (this one's `Display` is the core's). Both
/// are `#[non_exhaustive]`: new variants (a backend's own refusals) are
/// not breaking changes; match with a `_` arm.
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
#[non_exhaustive]
pub enum Error {
    /// The fd is negative, or `>= FD_SETSIZE` on a unix select backend
    /// (on Windows: a socket handle that does not fit in an `i32`, as -1).
    InvalidFd(RawFd),
    /// The events are empty or hold bits other than `READ | WRITE`.
    InvalidEvents(u8),
    /// The fd is already registered.
    AlreadyRegistered(RawFd),
    /// The fd is not registered.
    NotRegistered(RawFd),
    /// The key table is full (or, on Windows' select backend, its
    /// `FD_SETSIZE` sockets are in use: then `capacity` is `FD_SETSIZE`).
    Full {
        /// How many keys it holds: its capacity, or the mechanism's limit.
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
            // Both enums are `#[non_exhaustive]`: a variant the core adds
            // before this crate learns it still reaches the caller, worded.
            other => Error::Io(io::Error::other(other.to_string())),
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
            // Transparent, as its message is the OS error's own: a reporter
            // walking the chain says it once.
            Error::Io(e) => e.source(),
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
#[non_exhaustive]
pub enum BackendKind {
    /// Linux and Android `epoll`.
    Epoll,
    /// BSD and Apple `kqueue`.
    Kqueue,
    /// POSIX `poll`; `WSAPoll` on Windows.
    Poll,
    /// POSIX `select`, limited to fds below `FD_SETSIZE`; Winsock `select`
    /// on Windows, limited to `FD_SETSIZE` (512) sockets at once.
    Select,
}

impl BackendKind {
    /// The mechanisms this platform has, in the order `DefaultSelector`
    /// tries them (CPython's: kqueue, epoll, poll, select; on Windows
    /// WSAPoll, then select).
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

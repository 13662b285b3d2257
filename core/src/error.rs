//! The one error type of the core.

use core::fmt;

use crate::RawFd;

/// Why a [`Selector`](crate::Selector) call failed.
///
/// Every variant carries the offending value. A failed call never changes
/// the key table or the backend's registrations.
///
/// ```
/// use selectors2_core::{Error, Events, Selector, SimBackend};
///
/// let mut sel: Selector<SimBackend, (), 4> = Selector::new(SimBackend::new());
/// assert_eq!(sel.register(-1, Events::READ, ()), Err(Error::InvalidFd(-1)));
/// assert_eq!(
///     sel.register(3, Events::from_bits_retain(4), ()),
///     Err(Error::InvalidEvents(4))
/// );
/// assert_eq!(sel.unregister(3), Err(Error::NotRegistered(3)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error<E> {
    /// The fd is negative, or at or above what the backend can watch
    /// ([`Backend::fd_limit`](crate::Backend::fd_limit): `FD_SETSIZE` for
    /// select, the number of sources for a board's [`Fixed`](crate::Fixed)).
    InvalidFd(RawFd),
    /// The interest mask is empty or holds bits other than `READ | WRITE`
    /// (the raw bits are given).
    InvalidEvents(u8),
    /// The fd is already in the key table (Python's `KeyError`).
    AlreadyRegistered(RawFd),
    /// The fd is not in the key table (Python's `KeyError`).
    NotRegistered(RawFd),
    /// The key table holds `capacity` keys already.
    Full {
        /// How many keys the selector holds at most: its table's
        /// capacity, or the backend's lower limit
        /// ([`Backend::key_limit`](crate::Backend::key_limit)).
        capacity: usize,
    },
    /// The backend refused: the operating system's error, or a board
    /// backend's own.
    Backend(E),
}

impl<E> Error<E> {
    /// Applies `f` to the backend error, keeping every other variant.
    #[inline]
    pub fn map_backend<F, G: FnOnce(E) -> F>(self, f: G) -> Error<F> {
        match self {
            Error::InvalidFd(fd) => Error::InvalidFd(fd),
            Error::InvalidEvents(bits) => Error::InvalidEvents(bits),
            Error::AlreadyRegistered(fd) => Error::AlreadyRegistered(fd),
            Error::NotRegistered(fd) => Error::NotRegistered(fd),
            Error::Full { capacity } => Error::Full { capacity },
            Error::Backend(e) => Error::Backend(f(e)),
        }
    }
}

/// A backend's error as the core's: what lets `?` carry
/// [`Selector::select`](crate::Selector::select)'s error, which is the
/// backend's alone, into a function that returns [`Error`].
impl<E> From<E> for Error<E> {
    #[inline]
    fn from(e: E) -> Self {
        Error::Backend(e)
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidFd(fd) => write!(
                f,
                "invalid fd or source number {fd}: negative, or at or above the backend's limit (FD_SETSIZE for select, the number of sources on a board)"
            ),
            Error::InvalidEvents(bits) => {
                write!(
                    f,
                    "invalid events: {bits:#x} (expected READ, WRITE or both)"
                )
            }
            Error::AlreadyRegistered(fd) => write!(f, "fd {fd} is already registered"),
            Error::NotRegistered(fd) => write!(f, "fd {fd} is not registered"),
            Error::Full { capacity } => {
                write!(f, "selector is full (capacity {capacity})")
            }
            // Transparent: the backend's own message, and its source
            // below (an error reporter walking the chain says it once).
            Error::Backend(e) => e.fmt(f),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Backend(e) => e.source(),
            _ => None,
        }
    }
}

//! [`Selectable`]: what names a file descriptor, for the selector and its
//! key table alike.

use crate::RawFd;

/// Something that names a file descriptor: Python's "file object". The
/// core implements it for [`RawFd`]; with the `std` feature (which the
/// `selectors2` crate turns on), also for `BorrowedFd`, `&T` and `&mut T`
/// where `T: AsRawFd` on Unix, and `RawSocket`, `BorrowedSocket`, `&T` and
/// `&mut T` where `T: AsRawSocket` on Windows.
///
/// ```
/// use selectors2_core::Selectable;
///
/// assert_eq!(7.raw_fd(), 7);
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

#[cfg(all(feature = "std", unix))]
mod unix {
    use std::os::fd::{AsRawFd, BorrowedFd};

    use super::Selectable;
    use crate::RawFd;

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

    /// `&mut T` too, so that a connection borrowed mutably (from
    /// `HashMap::get_mut`, say) can be unregistered or modified as it is.
    impl<T: AsRawFd + ?Sized> Selectable for &mut T {
        #[inline]
        fn raw_fd(&self) -> RawFd {
            (**self).as_raw_fd()
        }
    }
}

#[cfg(all(feature = "std", windows))]
mod windows {
    use std::os::windows::io::{AsRawSocket, BorrowedSocket, RawSocket};

    use super::Selectable;
    use crate::RawFd;

    /// A socket handle as the core's fd (`i32`), or `-1` (which the
    /// selector refuses with `InvalidFd`) for one that does not fit,
    /// `INVALID_SOCKET` among them. Windows keeps socket handles 32-bit
    /// significant so that 32- and 64-bit processes can share them, so
    /// real ones fit.
    #[inline]
    fn fd_of_socket(socket: RawSocket) -> RawFd {
        RawFd::try_from(socket).unwrap_or(-1)
    }

    impl Selectable for RawSocket {
        #[inline]
        fn raw_fd(&self) -> RawFd {
            fd_of_socket(*self)
        }
    }

    impl Selectable for BorrowedSocket<'_> {
        #[inline]
        fn raw_fd(&self) -> RawFd {
            fd_of_socket(self.as_raw_socket())
        }
    }

    impl<T: AsRawSocket + ?Sized> Selectable for &T {
        #[inline]
        fn raw_fd(&self) -> RawFd {
            fd_of_socket((**self).as_raw_socket())
        }
    }

    impl<T: AsRawSocket + ?Sized> Selectable for &mut T {
        #[inline]
        fn raw_fd(&self) -> RawFd {
            fd_of_socket((**self).as_raw_socket())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::fd_of_socket;

        #[test]
        fn socket_handles_convert_checked() {
            assert_eq!(fd_of_socket(0x1234), 0x1234);
            assert_eq!(fd_of_socket(i32::MAX as u64), i32::MAX);
            assert_eq!(fd_of_socket(i32::MAX as u64 + 1), -1);
            assert_eq!(fd_of_socket(u64::MAX), -1, "INVALID_SOCKET");
        }
    }
}

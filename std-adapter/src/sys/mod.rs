//! The readiness mechanisms, one file each. This is the only place with
//! `unsafe` code in the crate: each block is small and carries a
//! `// SAFETY:` proof.
//!
//! You rarely name these types: the selector aliases do
//! (`PollSelector` is [`Selector<sys::Poll, D, N>`](crate::Selector)).
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
#![allow(unsafe_code)]

use std::alloc::Layout;
use std::io;

use selectors2_core::Backend;

use crate::{BackendKind, RawFd};

mod auto;
#[cfg(has_epoll)]
mod epoll;
#[cfg(has_kqueue)]
mod kqueue;
mod kqueue_flags;
mod poll;
mod select;

pub use auto::Auto;
#[cfg(has_epoll)]
pub use epoll::Epoll;
#[cfg(has_kqueue)]
pub use kqueue::Kqueue;
pub use poll::Poll;
pub use select::{FD_SETSIZE, Select};

mod sealed {
    /// Private to the crate: what the adapter's `Selector` needs of a
    /// backend beyond the core's `Backend` trait.
    pub trait Sealed {
        /// Whether the last `select` woke only for reports that belong to
        /// no key, after which the backend dropped them (epoll's rebuild):
        /// the selector then waits again for the time left. Cleared by the
        /// call.
        #[inline]
        fn take_spurious_wakeup(&mut self) -> bool {
            false
        }
    }
}
pub(crate) use sealed::Sealed;

/// A readiness mechanism of the operating system that a
/// [`Selector`](crate::Selector) can be built on. Sealed: implemented by
/// the types of this module only.
pub trait OsBackend: Backend<Error = io::Error> + Sealed + Sized {
    /// Opens the mechanism, sized for a key table of `capacity` keys.
    fn open(capacity: usize) -> io::Result<Self>;
    /// Which mechanism this is.
    fn kind(&self) -> BackendKind;
    /// The mechanism's own fd (epoll and kqueue), as Python's `fileno()`.
    fn fileno(&self) -> Option<RawFd>;
}

/// `selectors2_core::Selector::new(backend)`, boxed without passing through
/// the stack: a 4096-key table is over 100 KiB, and debug builds would copy
/// it through several stack frames on its way into a `Box`.
pub(crate) fn boxed_selector<B: Backend, D, const N: usize>(
    backend: B,
) -> Box<selectors2_core::Selector<B, D, N>> {
    // What `Selector::new` would check: a capacity heapless can index.
    let () = selectors2_core::Selector::<B, D, N>::CAPACITY_CHECK;
    // SAFETY: `BACKEND_OFFSET` is the offset of the core selector's
    // `backend` field, of type `B`; the core documents (and tests under
    // Miri) that all-zero bytes plus a valid backend there are the same as
    // `Selector::new(backend)`.
    unsafe {
        boxed_zeroed_with(
            selectors2_core::Selector::<B, D, N>::BACKEND_OFFSET,
            backend,
        )
    }
}

/// Builds `T` on the heap with every byte zero except for `value`, written
/// at byte `offset`, without `T` ever passing through the stack.
///
/// # Safety
///
/// `offset` must be the offset of a field of type `V` in `T`, and a `T`
/// whose bytes are all zero except for a valid `V` in that field must be a
/// valid `T`.
unsafe fn boxed_zeroed_with<T, V>(offset: usize, value: V) -> Box<T> {
    const { assert!(size_of::<T>() != 0) };
    let layout = Layout::new::<T>();
    debug_assert!(offset + size_of::<V>() <= layout.size());
    // SAFETY: `layout` has a non-zero size (asserted above).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: the caller promises `offset` is a `V` field of `T`, so the
    // pointer is in bounds of the allocation and aligned for `V`.
    unsafe { ptr.cast::<u8>().add(offset).cast::<V>().write(value) };
    // SAFETY: `ptr` was allocated by the global allocator with `T`'s layout,
    // and the caller promises zero bytes plus this `V` make a valid `T`.
    unsafe { Box::from_raw(ptr) }
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
#[inline]
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

#[cold]
fn bad_fd() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

/// The errno of an I/O error that means "the fd is already gone".
#[inline]
pub(crate) fn is_gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBADF) | Some(libc::ENOENT))
}

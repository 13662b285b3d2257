//! select (every unix): the `fd_set`s are kept between calls; each select
//! copies only the words below the highest registered fd. Fds at or above
//! `FD_SETSIZE` are refused at `register` (the selector checks
//! [`Backend::fd_limit`]), never written out of bounds.

use std::io;
use std::time::Duration;

use rustix::event::{
    FdSetElement, FdSetIter, fd_set_bound, fd_set_insert, fd_set_num_elements, fd_set_remove,
};
use selectors2_core::{Backend, Events, Readiness};

use super::{OsBackend, Sealed, with_fd};
use crate::timeout::to_micros_timespec;
use crate::{BackendKind, RawFd};

/// `FD_SETSIZE`: the select backend watches fds `0..FD_SETSIZE` only.
pub const FD_SETSIZE: RawFd = libc::FD_SETSIZE as RawFd;

/// The select backend of [`SelectSelector`](crate::SelectSelector).
pub struct Select {
    read: Box<[FdSetElement]>,
    write: Box<[FdSetElement]>,
    read_out: Box<[FdSetElement]>,
    write_out: Box<[FdSetElement]>,
    tags: Box<[u32]>,
    /// One more than the highest registered fd.
    nfds: RawFd,
}

impl std::fmt::Debug for Select {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Select")
            .field("nfds", &self.nfds)
            .finish_non_exhaustive()
    }
}

impl Sealed for Select {}

impl OsBackend for Select {
    fn open(_capacity: usize) -> io::Result<Self> {
        let words = fd_set_num_elements(FD_SETSIZE as usize, FD_SETSIZE);
        let set = || vec![FdSetElement::default(); words].into_boxed_slice();
        Ok(Select {
            read: set(),
            write: set(),
            read_out: set(),
            write_out: set(),
            tags: vec![0; FD_SETSIZE as usize].into_boxed_slice(),
            nfds: 0,
        })
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Select
    }

    fn fileno(&self) -> Option<RawFd> {
        None
    }
}

impl Select {
    #[inline]
    fn set(&mut self, fd: RawFd, interest: Events, tag: u32) {
        if interest.contains(Events::READ) {
            fd_set_insert(&mut self.read, fd);
        } else {
            fd_set_remove(&mut self.read, fd);
        }
        if interest.contains(Events::WRITE) {
            fd_set_insert(&mut self.write, fd);
        } else {
            fd_set_remove(&mut self.write, fd);
        }
        self.tags[fd as usize] = tag;
    }

    /// The words of a set that cover fds `0..nfds`.
    #[inline]
    fn words(&self) -> usize {
        fd_set_num_elements(self.nfds as usize, self.nfds)
    }

    /// After `EBADF`: report each registered fd that is no longer open as
    /// invalid, as `poll` does with `POLLNVAL`, instead of failing the whole
    /// call without saying which fd is at fault.
    #[cold]
    fn report_closed(&self, report: &mut impl FnMut(RawFd, u32, Readiness)) {
        let words = self.words();
        let mut closed = |fd: RawFd| {
            let gone = with_fd(fd, |f| rustix::io::fcntl_getfd(f))
                .is_err_and(|e| e == rustix::io::Errno::BADF);
            if gone {
                report(fd, self.tags[fd as usize], Readiness::INVALID);
            }
        };
        FdSetIter::new(&self.read[..words]).for_each(&mut closed);
        FdSetIter::new(&self.write[..words]).for_each(&mut closed);
    }
}

impl Backend for Select {
    type Error = io::Error;

    #[inline]
    fn fd_limit(&self) -> Option<RawFd> {
        Some(FD_SETSIZE)
    }

    #[inline]
    fn register(&mut self, fd: RawFd, interest: Events, tag: u32) -> io::Result<u32> {
        self.set(fd, interest, tag);
        self.nfds = self.nfds.max(fd + 1);
        Ok(0)
    }

    #[inline]
    fn modify(&mut self, fd: RawFd, _: u32, _: Events, new: Events, tag: u32) -> io::Result<()> {
        self.set(fd, new, tag);
        Ok(())
    }

    #[inline]
    fn unregister(&mut self, fd: RawFd, _: u32, _: Events) -> io::Result<()> {
        fd_set_remove(&mut self.read, fd);
        fd_set_remove(&mut self.write, fd);
        if fd + 1 == self.nfds {
            self.nfds = fd_set_bound(&self.read).max(fd_set_bound(&self.write));
        }
        Ok(())
    }

    #[inline]
    fn wait<F: FnMut(RawFd, u32, Readiness)>(
        &mut self,
        _max: usize,
        timeout: Option<Duration>,
        mut report: F,
    ) -> io::Result<()> {
        let words = self.words();
        let nfds = self.nfds;
        let (read, write) = (&self.read[..words], &self.write[..words]);
        let (read_out, write_out) = (&mut self.read_out[..words], &mut self.write_out[..words]);
        read_out.copy_from_slice(read);
        write_out.copy_from_slice(write);
        // XNU's select, like its kevent, rejects timeouts above 10^8 s
        // with EINVAL (itimerfix): wait the longest it accepts instead.
        #[cfg(apple)]
        let timeout = timeout.map(super::kqueue_flags::clamp_timeout);
        let ts = timeout.map(to_micros_timespec);
        // SAFETY: both sets hold `words` elements, enough for fds below
        // `nfds` (the number of elements is computed from `nfds` by
        // rustix itself). Every fd in them was registered by the caller;
        // `select` only tests them, and a closed one yields EBADF, which
        // is handled below.
        let got = unsafe {
            rustix::event::select(nfds, Some(read_out), Some(write_out), None, ts.as_ref())
        };
        let n = match got {
            Ok(n) => n,
            Err(e) if e == rustix::io::Errno::BADF => {
                self.report_closed(&mut report);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if n <= 0 {
            return Ok(());
        }
        for fd in FdSetIter::new(&self.read_out[..words]) {
            report(fd, self.tags[fd as usize], Readiness::READABLE);
        }
        for fd in FdSetIter::new(&self.write_out[..words]) {
            report(fd, self.tags[fd as usize], Readiness::WRITABLE);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfds_tracks_the_highest_fd() {
        let mut s = Select::open(8).unwrap();
        s.register(3, Events::READ, 1).unwrap();
        s.register(700, Events::WRITE, 2).unwrap();
        s.register(64, Events::all(), 3).unwrap();
        assert_eq!(s.nfds, 701);
        s.unregister(700, 0, Events::WRITE).unwrap();
        assert_eq!(s.nfds, 65);
        s.modify(64, 0, Events::all(), Events::READ, 3).unwrap();
        assert_eq!(s.nfds, 65);
        s.unregister(64, 0, Events::READ).unwrap();
        s.unregister(3, 0, Events::READ).unwrap();
        assert_eq!(s.nfds, 0);
        assert_eq!(s.fd_limit(), Some(FD_SETSIZE));
    }
}

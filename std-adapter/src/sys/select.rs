//! select (every unix): the `fd_set`s are kept between calls; each select
//! copies only the words below the highest registered fd. Fds at or above
//! `FD_SETSIZE` are refused at `register` (the selector checks
//! [`Backend::fd_limit`]), never written out of bounds.
#![allow(unsafe_code)] // system calls; each block has its SAFETY proof

use std::io;
use std::time::Duration;

use rustix::event::{
    FdSetElement, FdSetIter, fd_set_bound, fd_set_insert, fd_set_num_elements, fd_set_remove,
};
use selectors2_core::{Backend, BackendSlot, Events, Readiness, Tag};

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
    tags: Box<[Tag]>,
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

impl Sealed for Select {
    fn open(_capacity: usize) -> io::Result<Self> {
        let words = fd_set_num_elements(FD_SETSIZE as usize, FD_SETSIZE);
        let set = || vec![FdSetElement::default(); words].into_boxed_slice();
        Ok(Select {
            read: set(),
            write: set(),
            read_out: set(),
            write_out: set(),
            tags: vec![Tag::NONE; FD_SETSIZE as usize].into_boxed_slice(),
            nfds: 0,
        })
    }
}

impl OsBackend for Select {
    fn kind(&self) -> BackendKind {
        BackendKind::Select
    }
}

impl Select {
    /// `fd` as an index into the sets, or the error for a number `select`
    /// cannot watch. The selector never passes one (it checks
    /// [`Backend::fd_limit`]); the check is here too because the backends
    /// are public, and a direct call must not index out of bounds.
    #[inline]
    fn index(fd: RawFd) -> io::Result<usize> {
        if (0..FD_SETSIZE).contains(&fd) {
            Ok(fd as usize)
        } else {
            Err(out_of_range(fd))
        }
    }

    #[inline]
    fn set(&mut self, fd: RawFd, interest: Events, tag: Tag) -> io::Result<()> {
        let i = Self::index(fd)?;
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
        self.tags[i] = tag;
        Ok(())
    }

    /// The words of a set that cover fds `0..nfds`.
    #[inline]
    fn words(&self) -> usize {
        fd_set_num_elements(self.nfds as usize, self.nfds)
    }

    /// One `select` over the output sets as they are (the caller fills
    /// them): the count of ready fds.
    #[inline]
    fn select(&mut self, words: usize, timeout: Option<Duration>) -> io::Result<i32> {
        // XNU's select, like its kevent, rejects timeouts above 10^8 s
        // with EINVAL (itimerfix): wait the longest it accepts instead.
        #[cfg(apple)]
        let timeout = timeout.map(crate::timeout::clamp_timeout);
        let ts = timeout.map(to_micros_timespec);
        let (read_out, write_out) = (&mut self.read_out[..words], &mut self.write_out[..words]);
        // SAFETY: both sets hold `words` elements, enough for fds below
        // `nfds` (the number of elements is computed from `nfds` by rustix
        // itself). Every fd in them was registered by the caller; `select`
        // only tests them, and a closed one yields EBADF, which the caller
        // handles.
        let n = unsafe {
            rustix::event::select(
                self.nfds,
                Some(read_out),
                Some(write_out),
                None,
                ts.as_ref(),
            )
        };
        n.map_err(io::Error::from)
    }

    /// Reports the first `ready` bits of the output sets, in fd order: the
    /// `ready` bits the kernel set. Linux cuts `nfds` down to the size of
    /// the process's fd table and leaves the sets' words above it as they
    /// were, so a registered number beyond the table (never opened) keeps
    /// the interest bit copied in; every such number is above every fd
    /// the kernel looked at, so counting in fd order stops before them.
    #[inline]
    fn report_ready(
        &self,
        words: usize,
        ready: usize,
        report: &mut impl FnMut(RawFd, Tag, Readiness),
    ) {
        let mut reads = FdSetIter::new(&self.read_out[..words]).peekable();
        let mut writes = FdSetIter::new(&self.write_out[..words]).peekable();
        for _ in 0..ready {
            let (fd, readiness) = match (reads.peek().copied(), writes.peek().copied()) {
                (Some(r), Some(w)) if w < r => (writes.next(), Readiness::WRITABLE),
                (Some(_), _) => (reads.next(), Readiness::READABLE),
                (None, Some(_)) => (writes.next(), Readiness::WRITABLE),
                (None, None) => return,
            };
            if let Some(fd) = fd {
                report(fd, self.tags[fd as usize], readiness);
            }
        }
    }

    /// `select` failed with `EBADF`: a registered fd was closed without
    /// being unregistered. Report each closed one as invalid, as `poll`
    /// reports `POLLNVAL`, and what the others have ready right now: a
    /// closed fd must never hide the other keys' readiness. The
    /// closed fds are ready, so this does not block, as `poll` does not.
    #[cold]
    #[inline(never)]
    fn wait_around_closed(
        &mut self,
        words: usize,
        report: &mut impl FnMut(RawFd, Tag, Readiness),
    ) -> io::Result<()> {
        // Another thread may close one more fd between the check and the
        // call: try again then, a few times.
        let mut tries = 0;
        loop {
            self.read_out[..words].copy_from_slice(&self.read[..words]);
            self.write_out[..words].copy_from_slice(&self.write[..words]);
            let watched =
                FdSetIter::new(&self.read[..words]).chain(FdSetIter::new(&self.write[..words]));
            for fd in watched {
                let closed = with_fd(fd, |f| rustix::io::fcntl_getfd(f))
                    .is_err_and(|e| e.raw_os_error() == Some(libc::EBADF));
                if closed {
                    // Reported once per set it is in; the selector merges.
                    report(fd, self.tags[fd as usize], Readiness::INVALID);
                    fd_set_remove(&mut self.read_out, fd);
                    fd_set_remove(&mut self.write_out, fd);
                }
            }
            match self.select(words, Some(Duration::ZERO)) {
                Ok(n) => {
                    self.report_ready(words, usize::try_from(n).unwrap_or(0), report);
                    return Ok(());
                }
                Err(e) if e.raw_os_error() == Some(libc::EBADF) && tries < 3 => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cold]
fn out_of_range(fd: RawFd) -> io::Error {
    let errno = if fd < 0 { libc::EBADF } else { libc::EINVAL };
    io::Error::from_raw_os_error(errno)
}

impl Backend for Select {
    type Error = io::Error;

    #[inline]
    fn fd_limit(&self) -> Option<RawFd> {
        Some(FD_SETSIZE)
    }

    #[inline]
    fn register(&mut self, fd: RawFd, interest: Events, tag: Tag) -> io::Result<BackendSlot> {
        self.set(fd, interest, tag)?;
        self.nfds = self.nfds.max(fd + 1);
        Ok(BackendSlot::NONE)
    }

    #[inline]
    fn modify(
        &mut self,
        fd: RawFd,
        _: BackendSlot,
        _: Events,
        new: Events,
        tag: Tag,
    ) -> io::Result<()> {
        self.set(fd, new, tag)
    }

    #[inline]
    fn unregister(&mut self, fd: RawFd, _: BackendSlot, _: Events) -> io::Result<()> {
        Self::index(fd)?;
        fd_set_remove(&mut self.read, fd);
        fd_set_remove(&mut self.write, fd);
        if fd + 1 == self.nfds {
            self.nfds = fd_set_bound(&self.read).max(fd_set_bound(&self.write));
        }
        Ok(())
    }

    /// One `select` call. A signal ends it with `Interrupted` (the
    /// adapter's `Selector::select` retries with the time left).
    #[inline(always)]
    fn wait<F: FnMut(RawFd, Tag, Readiness)>(
        &mut self,
        _max: usize,
        timeout: Option<Duration>,
        mut report: F,
    ) -> io::Result<()> {
        let words = self.words();
        self.read_out[..words].copy_from_slice(&self.read[..words]);
        self.write_out[..words].copy_from_slice(&self.write[..words]);
        match self.select(words, timeout) {
            Ok(n) => {
                self.report_ready(words, usize::try_from(n).unwrap_or(0), &mut report);
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
                self.wait_around_closed(words, &mut report)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfds_tracks_the_highest_fd() {
        let mut s = Select::open(8).unwrap();
        s.register(3, Events::READ, Tag::from_bits(1)).unwrap();
        s.register(700, Events::WRITE, Tag::from_bits(2)).unwrap();
        s.register(64, Events::all(), Tag::from_bits(3)).unwrap();
        assert_eq!(s.nfds, 701);
        s.unregister(700, BackendSlot::NONE, Events::WRITE).unwrap();
        assert_eq!(s.nfds, 65);
        s.modify(
            64,
            BackendSlot::NONE,
            Events::all(),
            Events::READ,
            Tag::from_bits(3),
        )
        .unwrap();
        assert_eq!(s.nfds, 65);
        s.unregister(64, BackendSlot::NONE, Events::READ).unwrap();
        s.unregister(3, BackendSlot::NONE, Events::READ).unwrap();
        assert_eq!(s.nfds, 0);
        assert_eq!(s.fd_limit(), Some(FD_SETSIZE));
    }
}

//! WSAPoll (Windows Vista and later; docs/backends.md says which versions
//! we support): the `WSAPOLLFD` array is kept between calls and updated in
//! place, O(1) per change.
//!
//! Unlike `poll.rs`, the array has no holes: Windows documents that an
//! entry whose socket is `INVALID_SOCKET` is ignored, but an array that
//! holds only such entries is still a call with nothing to watch, and
//! WSAPoll with zero sockets fails with `WSAEINVAL`. So the array stays
//! dense: a removed entry is replaced by the last one, and each
//! registration's `slot` (which the selector hands back) finds its entry
//! through `pos`, while `owner` says which slot each entry belongs to.
//! Both are sized from the key table's capacity, and grow with it. An
//! empty array sleeps the timeout instead of calling WSAPoll.
//!
//! WSAPoll refuses `POLLPRI` with `WSAEINVAL`; we ask for `POLLRDNORM` and
//! `POLLWRNORM` only. A non-blocking `connect` that the peer refuses is
//! reported as `POLLERR` (and `POLLHUP`) since Windows 10 version 2004;
//! older versions reported nothing, which is why those are not supported.
#![allow(unsafe_code)] // system calls; each block has its SAFETY proof

use std::io;
use std::time::Duration;

use selectors2_core::{Backend, BackendSlot, Events, Readiness, Tag};
use windows_sys::Win32::Networking::WinSock::{
    POLLERR, POLLHUP, POLLNVAL, POLLRDBAND, POLLRDNORM, POLLWRNORM, SOCKET_ERROR, WSAENOTSOCK,
    WSAGetLastError, WSAPOLLFD,
};

use super::indices::IndexPool;
use super::winsock::{check_socket, is_socket, sleep, socket_of_fd, startup};
use super::{OsBackend, Sealed};
use crate::timeout::to_millis;
use crate::{BackendKind, RawFd};

/// The WSAPoll backend of [`PollSelector`](crate::PollSelector) on Windows.
pub struct Poll {
    /// The array WSAPoll scans: exactly the registered sockets.
    fds: Vec<WSAPOLLFD>,
    /// `tags[i]`: the tag of `fds[i]`.
    tags: Vec<Tag>,
    /// `owner[i]`: the slot `fds[i]` was registered under.
    owner: Vec<u32>,
    /// `pos[slot]`: where that slot's entry is in `fds`.
    pos: Box<[u32]>,
    /// Slots not in use, reused first.
    indices: IndexPool,
}

impl std::fmt::Debug for Poll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poll")
            .field("registered", &self.fds.len())
            .finish_non_exhaustive()
    }
}

#[inline]
pub(crate) fn poll_events(interest: Events) -> i16 {
    let mut e = 0;
    if interest.contains(Events::READ) {
        e |= POLLRDNORM;
    }
    if interest.contains(Events::WRITE) {
        e |= POLLWRNORM;
    }
    e
}

/// What WSAPoll reported, as `Readiness`.
#[inline]
pub(crate) fn readiness(revents: i16) -> Readiness {
    let mut r = Readiness::empty();
    r.set(
        Readiness::READABLE,
        revents & (POLLRDNORM | POLLRDBAND) != 0,
    );
    r.set(Readiness::WRITABLE, revents & POLLWRNORM != 0);
    r.set(Readiness::ERROR, revents & POLLERR != 0);
    r.set(Readiness::HANGUP, revents & POLLHUP != 0);
    r.set(Readiness::INVALID, revents & POLLNVAL != 0);
    let known = POLLRDNORM | POLLRDBAND | POLLWRNORM | POLLERR | POLLHUP | POLLNVAL;
    if revents & !known != 0 && r.is_empty() {
        r |= Readiness::ERROR;
    }
    r
}

impl Sealed for Poll {
    fn open(capacity: usize) -> io::Result<Self> {
        startup()?;
        let capacity = capacity.max(1);
        let mut pos = super::vec_with_capacity(capacity)?;
        pos.resize(capacity, 0);
        Ok(Poll {
            fds: super::vec_with_capacity(capacity)?,
            tags: super::vec_with_capacity(capacity)?,
            owner: super::vec_with_capacity(capacity)?,
            pos: pos.into_boxed_slice(),
            indices: IndexPool::new(capacity)?,
        })
    }

    /// Room for `capacity` slots: the arrays, the slot-to-index table and
    /// the slot pool grow; every slot handed out so far keeps its number
    /// and its place.
    fn reserve_keys(&mut self, capacity: usize) -> io::Result<()> {
        super::reserve_total(&mut self.fds, capacity)?;
        super::reserve_total(&mut self.tags, capacity)?;
        super::reserve_total(&mut self.owner, capacity)?;
        if capacity > self.pos.len() {
            let mut pos = super::vec_with_capacity(capacity)?;
            pos.extend_from_slice(&self.pos);
            pos.resize(capacity, 0);
            self.pos = pos.into_boxed_slice();
        }
        self.indices.grow(capacity)
    }
}

impl OsBackend for Poll {
    fn kind(&self) -> BackendKind {
        BackendKind::Poll
    }
}

impl Poll {
    /// The index in `fds` of `slot`, checked against `fd`.
    #[inline]
    fn index(&self, fd: RawFd, slot: u32) -> io::Result<usize> {
        let i = self.pos.get(slot as usize).map(|&i| i as usize);
        match i {
            Some(i)
                if i < self.fds.len()
                    && self.owner[i] == slot
                    && self.fds[i].fd == socket_of_fd(fd) =>
            {
                Ok(i)
            }
            // The selector hands back the slot `register` returned; anything
            // else is a bug, reported rather than acted on.
            _ => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
}

impl Backend for Poll {
    type Error = io::Error;

    /// One `WSAPOLLFD` per key: a socket comes at most once per `WSAPoll`.
    #[inline]
    fn may_report_twice(&self) -> bool {
        false
    }

    #[inline]
    fn register(&mut self, fd: RawFd, interest: Events, tag: Tag) -> io::Result<BackendSlot> {
        let socket = check_socket(fd)?;
        let slot = self.indices.take()?;
        self.pos[slot as usize] = self.fds.len() as u32;
        self.fds.push(WSAPOLLFD {
            fd: socket,
            events: poll_events(interest),
            revents: 0,
        });
        self.tags.push(tag);
        self.owner.push(slot);
        Ok(BackendSlot::new(slot))
    }

    #[inline]
    fn modify(
        &mut self,
        fd: RawFd,
        slot: BackendSlot,
        _: Events,
        new: Events,
        tag: Tag,
    ) -> io::Result<()> {
        let slot = slot.get();
        let i = self.index(fd, slot)?;
        self.fds[i].events = poll_events(new);
        self.tags[i] = tag;
        Ok(())
    }

    #[inline]
    fn unregister(&mut self, fd: RawFd, slot: BackendSlot, _: Events) -> io::Result<()> {
        let slot = slot.get();
        let i = self.index(fd, slot)?;
        self.fds.swap_remove(i);
        self.tags.swap_remove(i);
        self.owner.swap_remove(i);
        if let Some(&moved) = self.owner.get(i) {
            self.pos[moved as usize] = i as u32;
        }
        self.indices.give_back(slot);
        Ok(())
    }

    #[inline]
    fn wait<F: FnMut(RawFd, Tag, Readiness)>(
        &mut self,
        _max: usize,
        timeout: Option<Duration>,
        mut report: F,
    ) -> io::Result<()> {
        if self.fds.is_empty() {
            // WSAPoll with no socket fails with WSAEINVAL.
            sleep(timeout);
            return Ok(());
        }
        match wsapoll(&mut self.fds, to_millis(timeout)) {
            Ok(_) => {}
            // Windows marks a closed socket POLLNVAL; Wine fails the whole
            // call instead. Then do as Windows does.
            Err(e) if e.raw_os_error() == Some(WSAENOTSOCK) => self.poll_around_closed()?,
            Err(e) => return Err(e),
        }
        // Every entry is scanned, whatever the count: Wine's leaves out the
        // entries it marks POLLNVAL (it may even be 0), so it cannot end the
        // scan early.
        for (p, &tag) in self.fds.iter().zip(&self.tags) {
            if p.revents != 0 {
                // Registered sockets fit in an fd (the selector checked).
                report(p.fd as RawFd, tag, readiness(p.revents));
            }
        }
        Ok(())
    }
}

impl Poll {
    /// After `WSAENOTSOCK`: moves the entries that are no longer sockets
    /// (closed while registered) to the end of the array, marks them
    /// `POLLNVAL`, and polls the others without waiting (something is to
    /// be reported already), as WSAPoll itself would have: a closed socket
    /// hides no other.
    #[cold]
    fn poll_around_closed(&mut self) -> io::Result<()> {
        let mut live = self.fds.len();
        loop {
            let mut i = 0;
            while i < live {
                if is_socket(self.fds[i].fd) {
                    i += 1;
                } else {
                    live -= 1;
                    self.swap(i, live);
                    self.fds[live].revents = POLLNVAL;
                }
            }
            if live == 0 {
                return Ok(());
            }
            match wsapoll(&mut self.fds[..live], 0) {
                Ok(_) => return Ok(()),
                // Another one closed meanwhile: sort again.
                Err(e) if e.raw_os_error() == Some(WSAENOTSOCK) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Swaps entries `i` and `j`, keeping each slot's `pos` right.
    fn swap(&mut self, i: usize, j: usize) {
        self.fds.swap(i, j);
        self.tags.swap(i, j);
        self.owner.swap(i, j);
        self.pos[self.owner[i] as usize] = i as u32;
        self.pos[self.owner[j] as usize] = j as u32;
    }
}

/// `WSAPoll` over the whole (non-empty) array.
#[inline]
pub(crate) fn wsapoll(fds: &mut [WSAPOLLFD], timeout_ms: i32) -> io::Result<usize> {
    // The array never holds more entries than the key table's capacity,
    // far below `u32::MAX`; the check stands in for a truncating cast.
    let len = u32::try_from(fds.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: the pointer and length describe `fds`, a live, exclusively
    // borrowed array of `WSAPOLLFD`s that WSAPoll only writes `revents` of.
    let n = unsafe {
        windows_sys::Win32::Networking::WinSock::WSAPoll(fds.as_mut_ptr(), len, timeout_ms)
    };
    if n == SOCKET_ERROR {
        // SAFETY: no preconditions; reads this thread's last error.
        Err(io::Error::from_raw_os_error(unsafe { WSAGetLastError() }))
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation() {
        assert_eq!(poll_events(Events::READ), POLLRDNORM);
        assert_eq!(poll_events(Events::all()), POLLRDNORM | POLLWRNORM);
        assert_eq!(readiness(POLLRDNORM), Readiness::READABLE);
        assert_eq!(readiness(POLLNVAL), Readiness::INVALID);
        assert_eq!(
            readiness(POLLHUP | POLLERR),
            Readiness::HANGUP | Readiness::ERROR
        );
    }

    #[test]
    fn slots_are_stable_and_the_array_dense() {
        let mut p = Poll::open(4).unwrap();
        let (_sockets, fds) = super::super::winsock::test_sockets(4);
        let [f0, f1, f2, f3] = fds[..] else {
            unreachable!()
        };
        let a = p.register(f0, Events::READ, Tag::from_bits(1)).unwrap();
        let b = p.register(f1, Events::READ, Tag::from_bits(2)).unwrap();
        let c = p.register(f2, Events::WRITE, Tag::from_bits(3)).unwrap();
        assert_eq!((a.get(), b.get(), c.get()), (0, 1, 2));
        p.unregister(f1, b, Events::READ).unwrap();
        assert_eq!(p.fds.len(), 2, "no hole");
        assert_eq!(
            p.fds[1].fd,
            socket_of_fd(f2),
            "the last entry moved into the gap"
        );
        let d = p.register(f3, Events::READ, Tag::from_bits(4)).unwrap();
        assert_eq!(d.get(), 1, "the slot is reused");
        assert!(
            p.modify(f2, b, Events::WRITE, Events::READ, Tag::from_bits(3))
                .is_err(),
            "wrong slot is refused"
        );
        p.modify(f2, c, Events::WRITE, Events::READ, Tag::from_bits(3))
            .unwrap();
        assert_eq!(p.fds[p.pos[c.get() as usize] as usize].events, POLLRDNORM);
        for (fd, slot) in [(f0, a), (f2, c), (f3, d)] {
            p.unregister(fd, slot, Events::READ).unwrap();
        }
        assert!(p.fds.is_empty() && p.indices.is_empty() && p.indices.high_water() == 0);
        assert!(p.fds.capacity() >= 4);
    }

    /// A handle that is not a socket is refused, and nothing changes.
    #[test]
    fn register_refuses_what_is_not_a_socket() {
        let mut p = Poll::open(4).unwrap();
        let err = p
            .register(0x7fff_fff0, Events::READ, Tag::from_bits(1))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(WSAENOTSOCK), "{err}");
        assert!(p.fds.is_empty() && p.indices.high_water() == 0);
    }
}

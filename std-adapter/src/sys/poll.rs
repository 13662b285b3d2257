//! poll (every unix): the `pollfd` array is kept between calls and updated
//! in place, O(1) per change.
//!
//! Each registration owns one slot of the array for its whole life (the
//! slot number goes back and forth through the selector), so nothing moves
//! when another fd is removed; a freed slot gets fd -1, which `poll`
//! ignores, and is reused by the next registration. Slots are therefore at
//! most the key table's capacity, allocated once.
#![allow(unsafe_code)] // system calls; each block has its SAFETY proof

use std::io;
use std::time::Duration;

use selectors2_core::{Backend, BackendSlot, Events, Readiness, Tag};

use super::indices::IndexPool;
use super::{OsBackend, Sealed};
use crate::timeout::to_millis;
use crate::{BackendKind, RawFd};

/// The poll backend of [`PollSelector`](crate::PollSelector).
#[derive(Debug)]
pub struct Poll {
    /// Indexed by slot; an unregistered slot is a [`HOLE`] until reused.
    fds: Vec<libc::pollfd>,
    tags: Vec<Tag>,
    indices: IndexPool,
}

const HOLE: libc::pollfd = libc::pollfd {
    fd: -1,
    events: 0,
    revents: 0,
};

#[inline]
pub(crate) fn poll_events(interest: Events) -> libc::c_short {
    let mut e = 0;
    if interest.contains(Events::READ) {
        e |= libc::POLLIN;
    }
    if interest.contains(Events::WRITE) {
        e |= libc::POLLOUT;
    }
    e
}

/// What `poll` reported, as `Readiness`.
#[inline]
pub(crate) fn readiness(revents: libc::c_short) -> Readiness {
    // The six bits as the kernel wrote them where `Readiness` has this
    // system's layout (Linux, the BSDs, macOS, illumos: decided at compile
    // time); otherwise flag by flag.
    let mut r = if SAME_BITS {
        Readiness::from_bits_retain((revents & KNOWN) as u8)
    } else {
        let mut r = Readiness::empty();
        r.set(Readiness::READABLE, revents & libc::POLLIN != 0);
        r.set(Readiness::WRITABLE, revents & libc::POLLOUT != 0);
        r.set(Readiness::ERROR, revents & libc::POLLERR != 0);
        r.set(Readiness::HANGUP, revents & libc::POLLHUP != 0);
        r.set(Readiness::INVALID, revents & libc::POLLNVAL != 0);
        r.set(Readiness::PRIORITY, revents & libc::POLLPRI != 0);
        r
    };
    // Other bits (POLLRDNORM, POLLWRBAND...) count like an error would:
    // Python's rule is "anything but POLLOUT means readable", and so on.
    if revents & !KNOWN != 0 && r.is_empty() {
        r |= Readiness::ERROR;
    }
    r
}

/// The poll bits [`readiness`] knows by name.
const KNOWN: libc::c_short =
    libc::POLLIN | libc::POLLOUT | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL | libc::POLLPRI;

/// Whether this system's poll bits are `Readiness`'s.
const SAME_BITS: bool = libc::POLLIN as u8 == Readiness::READABLE.bits()
    && libc::POLLPRI as u8 == Readiness::PRIORITY.bits()
    && libc::POLLOUT as u8 == Readiness::WRITABLE.bits()
    && libc::POLLERR as u8 == Readiness::ERROR.bits()
    && libc::POLLHUP as u8 == Readiness::HANGUP.bits()
    && libc::POLLNVAL as u8 == Readiness::INVALID.bits()
    && KNOWN == 0x3f;

// Linux, the BSDs and macOS take the masking path: their values are known.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "macos"
))]
const _: () = assert!(SAME_BITS, "poll's bits here are Readiness's");

impl Sealed for Poll {
    fn open(capacity: usize) -> io::Result<Self> {
        let capacity = capacity.max(1);
        Ok(Poll {
            fds: super::vec_with_capacity(capacity)?,
            tags: super::vec_with_capacity(capacity)?,
            indices: IndexPool::new(capacity)?,
        })
    }

    /// Room for `capacity` slots: the arrays and the slot pool grow, and
    /// every slot handed out so far keeps its number.
    fn reserve_keys(&mut self, capacity: usize) -> io::Result<()> {
        super::reserve_total(&mut self.fds, capacity)?;
        super::reserve_total(&mut self.tags, capacity)?;
        self.indices.grow(capacity)
    }
}

impl OsBackend for Poll {
    fn kind(&self) -> BackendKind {
        BackendKind::Poll
    }
}

impl Poll {
    #[inline]
    fn slot(&mut self, fd: RawFd, slot: BackendSlot) -> io::Result<&mut libc::pollfd> {
        match self.fds.get_mut(slot.get() as usize) {
            Some(p) if p.fd == fd => Ok(p),
            // The selector hands back the slot `register` returned; anything
            // else is a bug, reported rather than acted on.
            _ => Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
    }
}

impl Backend for Poll {
    type Error = io::Error;

    /// One `pollfd` per key: an fd comes at most once per `poll`.
    #[inline]
    fn may_report_twice(&self) -> bool {
        false
    }

    #[inline]
    fn register(&mut self, fd: RawFd, interest: Events, tag: Tag) -> io::Result<BackendSlot> {
        let p = libc::pollfd {
            fd,
            events: poll_events(interest),
            revents: 0,
        };
        let slot = self.indices.take()?;
        let i = slot as usize;
        if i < self.fds.len() {
            // A hole left by an unregister.
            (self.fds[i], self.tags[i]) = (p, tag);
        } else {
            // The next fresh slot: one past the end. Never beyond the
            // capacity reserved in `open` (the pool's limit).
            self.fds.push(p);
            self.tags.push(tag);
        }
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
        self.slot(fd, slot)?.events = poll_events(new);
        self.tags[slot.get() as usize] = tag;
        Ok(())
    }

    #[inline]
    fn unregister(&mut self, fd: RawFd, slot: BackendSlot, _: Events) -> io::Result<()> {
        *self.slot(fd, slot)? = HOLE;
        if self.indices.give_back(slot.get()) {
            // Every slot is free: start over, so `poll` scans nothing.
            self.fds.clear();
            self.tags.clear();
        }
        Ok(())
    }

    #[inline(always)]
    fn wait<F: FnMut(RawFd, Tag, Readiness)>(
        &mut self,
        _max: usize,
        timeout: Option<Duration>,
        mut report: F,
    ) -> io::Result<()> {
        let mut left = poll(&mut self.fds, to_millis(timeout))?;
        // `poll` sees every ready fd; the selector picks fairly if there
        // are more than the caller's `Ready` holds. It counted the entries
        // with events, so the scan stops after the last one.
        for (p, &tag) in self.fds.iter().zip(&self.tags) {
            if left == 0 {
                break;
            }
            if p.revents != 0 {
                left -= 1;
                report(p.fd, tag, readiness(p.revents));
            }
        }
        Ok(())
    }
}

/// `poll(2)` over the whole array.
#[inline]
fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: the pointer and length describe `fds`, a live, exclusively
    // borrowed array of `pollfd`s that `poll` only writes `revents` of.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation() {
        assert_eq!(poll_events(Events::READ), libc::POLLIN);
        assert_eq!(poll_events(Events::all()), libc::POLLIN | libc::POLLOUT);
        assert_eq!(readiness(libc::POLLIN), Readiness::READABLE);
        assert_eq!(readiness(libc::POLLNVAL), Readiness::INVALID);
        assert_eq!(
            readiness(libc::POLLHUP | libc::POLLIN),
            Readiness::HANGUP | Readiness::READABLE
        );
    }

    /// Every combination of the six named bits, alone and with a bit poll
    /// has no name for here, against the rule written out flag by flag
    /// (on Linux through the masking path: checked at compile time).
    #[test]
    fn translation_of_every_combination() {
        let named = [
            (libc::POLLIN, Readiness::READABLE),
            (libc::POLLOUT, Readiness::WRITABLE),
            (libc::POLLERR, Readiness::ERROR),
            (libc::POLLHUP, Readiness::HANGUP),
            (libc::POLLNVAL, Readiness::INVALID),
            (libc::POLLPRI, Readiness::PRIORITY),
        ];
        for mask in 0..1u32 << named.len() {
            for extra in [0, libc::POLLRDNORM, libc::POLLWRBAND] {
                let mut revents = extra;
                let mut want = Readiness::empty();
                for (i, &(bit, r)) in named.iter().enumerate() {
                    if mask & 1 << i != 0 {
                        revents |= bit;
                        want |= r;
                    }
                }
                if extra != 0 && want.is_empty() {
                    want = Readiness::ERROR;
                }
                assert_eq!(readiness(revents), want, "{revents:#x}");
            }
        }
    }

    #[test]
    fn slots_are_stable_and_reused() {
        let mut p = Poll::open(4).unwrap();
        let a = p.register(10, Events::READ, Tag::from_bits(1)).unwrap();
        let b = p.register(11, Events::READ, Tag::from_bits(2)).unwrap();
        let c = p.register(12, Events::WRITE, Tag::from_bits(3)).unwrap();
        assert_eq!((a.get(), b.get(), c.get()), (0, 1, 2));
        p.unregister(11, b, Events::READ).unwrap();
        assert_eq!(p.fds[1].fd, -1, "a hole, nothing moved");
        assert_eq!(p.fds[2].fd, 12);
        let d = p.register(13, Events::READ, Tag::from_bits(4)).unwrap();
        assert_eq!(d.get(), 1, "the hole is reused");
        assert!(
            p.modify(12, b, Events::WRITE, Events::READ, Tag::from_bits(3))
                .is_err(),
            "wrong slot is refused"
        );
        p.modify(12, c, Events::WRITE, Events::READ, Tag::from_bits(3))
            .unwrap();
        assert_eq!(p.fds[2].events, libc::POLLIN);
        for (fd, slot) in [(10, a), (12, c), (13, d)] {
            p.unregister(fd, slot, Events::READ).unwrap();
        }
        assert!(p.fds.is_empty() && p.indices.is_empty());
        assert!(p.fds.capacity() >= 4);
    }
}

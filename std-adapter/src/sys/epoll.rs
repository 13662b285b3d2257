//! epoll (Linux, Android): level-triggered, one `epoll_wait` per
//! [`Backend::wait`] (the adapter's timed `select` polls first, see
//! `timeout::first_wait`), each registration tagged with its generation in
//! `epoll_data`.
//!
//! epoll watches open files, not fd numbers: a registration outlives its fd
//! when a duplicate (`dup`, `try_clone`, a child process) keeps the file
//! open, and then no `epoll_ctl` can name it. Its reports carry a tag the
//! selector does not own; the selector then calls [`Backend::rebuild`],
//! which moves every live registration to a fresh epoll instance, and the
//! adapter waits again for the time left. The first instance stays open
//! under its number, for `fileno()`: it watches the instance waited on, so
//! an outer event loop that watches `fileno()` keeps hearing every live
//! key (and, until its file is closed, a leftover the first instance
//! holds, which makes it readable, as CPython's epoll is then; a leftover
//! a later instance holds goes with it at the next rebuild). The same file
//! registered again under the same number meets the leftover registration
//! (`EEXIST`): `register` takes it over with `EPOLL_CTL_MOD`.
#![allow(unsafe_code)] // the event buffer's Send/Sync proof

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use rustix::event::epoll;
use selectors2_core::{Backend, BackendSlot, Events, Readiness, Registration, Tag};

use super::{OsBackend, Sealed, with_fd};
use crate::timeout::{millis_timespec, to_millis};
use crate::{BackendKind, RawFd};

/// The `epoll_wait` output buffer: one event per key, so that one select
/// can return every ready key, as Python's `select()` does (CPython's own
/// `test_above_fd_setsize` expects all of them from one call). Allocated
/// once and never initialised: the kernel writes what it returns, so only
/// the pages a wait has written become resident (a selector whose waits
/// return a few keys keeps one page of it, not the whole buffer).
struct EventBuffer(Box<[MaybeUninit<epoll::Event>]>);

// SAFETY: `epoll::Event` is `!Send`/`!Sync` only because `epoll_data` may
// hold a pointer. This backend only ever stores integers (fd and generation)
// in it, and the buffer is plain memory the kernel writes into during a
// `&mut self` call, so moving or sharing it across threads is sound.
unsafe impl Send for EventBuffer {}
// SAFETY: as above; `&EventBuffer` exposes no interior mutability.
unsafe impl Sync for EventBuffer {}

/// The epoll backend of [`EpollSelector`](crate::EpollSelector).
pub struct Epoll {
    /// The instance waited on and changed.
    epfd: OwnedFd,
    /// After a rebuild: the first instance, whose number `fileno()` keeps
    /// naming. It watches `epfd` (and still holds the leftover).
    nest: Option<OwnedFd>,
    events: EventBuffer,
    /// Set by `rebuild`; taken by the next `select` that finds nothing
    /// (see `Sealed::take_spurious_wakeup`), which then waits again for its
    /// time left. A `select` that found live keys leaves it set, so a later
    /// one that finds nothing waits once more for nothing: at most one
    /// extra wait per rebuild (which is rare), where clearing it in `wait`
    /// cost a store on every select.
    spurious: bool,
}

impl std::fmt::Debug for Epoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoll")
            .field("epfd", &self.epfd.as_raw_fd())
            .field("nest", &self.nest.as_ref().map(|fd| fd.as_raw_fd()))
            .finish_non_exhaustive()
    }
}

/// `epoll_data`: the generation in the high half, the fd in the low half.
#[inline]
fn data(fd: RawFd, tag: Tag) -> epoll::EventData {
    epoll::EventData::new_u64(u64::from(tag.to_bits()) << 32 | u64::from(fd as u32))
}

/// The fd and tag that [`data`] packed.
#[inline]
fn unpack(data: u64) -> (RawFd, Tag) {
    (data as u32 as RawFd, Tag::from_bits((data >> 32) as u32))
}

/// What a registration with `interest` asks epoll for: `IN` for `READ`,
/// `OUT` for `WRITE`, by one load from [`FLAGS`] (cheaper than a test per
/// flag).
#[inline]
fn flags(interest: Events) -> epoll::EventFlags {
    epoll::EventFlags::from_bits_retain(FLAGS[usize::from(interest.bits() & 3)])
}

/// [`flags`] for each interest mask, indexed by its bits (`READ` is 1,
/// `WRITE` 2, checked below; 0 is never asked for).
const FLAGS: [u32; 4] = {
    use epoll::EventFlags as F;
    assert!(Events::READ.bits() == 1 && Events::WRITE.bits() == 2);
    [0, F::IN.bits(), F::OUT.bits(), F::IN.union(F::OUT).bits()]
};

/// What `epoll_wait` reported, as `Readiness`: the low byte of the flags
/// as it is, with no table and no test per flag on the path of every
/// report. Its bits 0 to 4 (`IN`, `PRI`, `OUT`, `ERR`, `HUP`) have
/// `Readiness`'s values, which are poll's (checked at compile time below).
/// Nothing else comes: the kernel reports what a registration asked for
/// ([`flags`]: `IN`, `OUT`) plus `ERR` and `HUP`, which it always adds
/// (`ep_insert`, `ep_modify`), so neither `RDNORM` and `RDBAND` (bits 6
/// and 7) nor `RDHUP` (bit 13, cut off) ever do, and `EPOLLNVAL` (bit 5)
/// is poll's and never reported by epoll. (Were one of bits 5 to 7 to
/// come, it would read as `INVALID` or an unnamed bit, which
/// `Readiness::to_events` counts as both events, like an error.)
#[inline]
pub(crate) fn readiness(f: epoll::EventFlags) -> Readiness {
    Readiness::from_bits_retain(f.bits() as u8)
}

// `readiness` keeps epoll's bits as they are: they must be `Readiness`'s.
const _: () = {
    use epoll::EventFlags as F;
    assert!(F::IN.bits() == Readiness::READABLE.bits() as u32);
    assert!(F::PRI.bits() == Readiness::PRIORITY.bits() as u32);
    assert!(F::OUT.bits() == Readiness::WRITABLE.bits() as u32);
    assert!(F::ERR.bits() == Readiness::ERROR.bits() as u32);
    assert!(F::HUP.bits() == Readiness::HANGUP.bits() as u32);
};

impl AsFd for Epoll {
    /// The epoll instance's fd: readable when a key is ready. The same
    /// open instance for the backend's whole life, a rebuild included
    /// (see the module docs), so that an outer loop watching it keeps
    /// hearing this one.
    #[inline]
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.nest.as_ref().unwrap_or(&self.epfd).as_fd()
    }
}

impl Sealed for Epoll {
    fn open(capacity: usize) -> io::Result<Self> {
        let epfd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        Ok(Epoll {
            epfd,
            nest: None,
            events: EventBuffer(super::uninit_slice(capacity.max(1))?),
            spurious: false,
        })
    }

    #[inline]
    fn take_spurious_wakeup(&mut self) -> bool {
        std::mem::take(&mut self.spurious)
    }

    /// A wait returns at most one event per key: the buffer grows to the
    /// new capacity (the old one held nothing between waits).
    fn reserve_keys(&mut self, capacity: usize) -> io::Result<()> {
        if capacity > self.events.0.len() {
            self.events = EventBuffer(super::uninit_slice(capacity)?);
        }
        Ok(())
    }
}

impl Epoll {
    /// `EPOLL_CTL_ADD` found a registration of this very file under this
    /// fd number that the selector does not hold: one that outlived an
    /// earlier fd of the file (see the module docs). Take it over.
    #[cold]
    #[inline(never)]
    fn take_over(&mut self, fd: RawFd, interest: Events, tag: Tag) -> io::Result<BackendSlot> {
        with_fd(fd, |src| {
            epoll::modify(&self.epfd, src, data(fd, tag), flags(interest))
        })?;
        Ok(BackendSlot::NONE)
    }
}

impl OsBackend for Epoll {
    fn kind(&self) -> BackendKind {
        BackendKind::Epoll
    }

    fn fileno(&self) -> Option<RawFd> {
        Some(self.as_fd().as_raw_fd())
    }
}

impl Backend for Epoll {
    type Error = io::Error;

    /// epoll's ready list holds each registration once, and one key has
    /// one registration: an fd comes at most once per `epoll_wait`.
    #[inline]
    fn may_report_twice(&self) -> bool {
        false
    }

    #[inline(always)]
    fn register(&mut self, fd: RawFd, interest: Events, tag: Tag) -> io::Result<BackendSlot> {
        match with_fd(fd, |src| {
            epoll::add(&self.epfd, src, data(fd, tag), flags(interest))
        }) {
            Ok(()) => Ok(BackendSlot::NONE),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => self.take_over(fd, interest, tag),
            Err(e) => Err(e),
        }
    }

    #[inline(always)]
    fn modify(
        &mut self,
        fd: RawFd,
        _: BackendSlot,
        _: Events,
        new: Events,
        tag: Tag,
    ) -> io::Result<()> {
        with_fd(fd, |src| {
            epoll::modify(&self.epfd, src, data(fd, tag), flags(new))
        })
    }

    #[inline(always)]
    fn unregister(&mut self, fd: RawFd, _: BackendSlot, _: Events) -> io::Result<()> {
        with_fd(fd, |src| epoll::delete(&self.epfd, src))
    }

    /// `EPOLL_CTL_DEL` of a number the selector holds a key for fails only
    /// when that number no longer names the registered file, which was
    /// closed without `unregister`: `EBADF` (nothing open there),
    /// `ENOENT` (another file that this instance does not watch, or the
    /// kernel already dropped the registration), `EPERM` (a file epoll
    /// cannot watch, such as a regular file, a directory or `/dev/null`:
    /// `register` would have refused it) and `EINVAL` (this selector's own
    /// epoll instance, say a fresh one a rebuild created, or a duplicate of
    /// `fileno()`: `register` refuses that too). Each means there is
    /// nothing under this number to remove, so the key goes, as Python's
    /// `EpollSelector.unregister` (which ignores every `OSError`) does.
    #[inline]
    fn is_gone(&self, e: &io::Error) -> bool {
        matches!(
            e.raw_os_error(),
            Some(libc::EBADF | libc::ENOENT | libc::EPERM | libc::EINVAL)
        )
    }

    #[inline(always)]
    fn wait<F: FnMut(RawFd, Tag, Readiness)>(
        &mut self,
        max: usize,
        timeout: Option<Duration>,
        mut report: F,
    ) -> io::Result<()> {
        let buf = &mut self.events.0;
        // The kernel rotates level-triggered entries it returned to the back
        // of its ready list, so asking for at most `max` keeps every fd in
        // turn (no starvation) without a second pass here.
        // `max` is at least 1 from a selector (a `Ready` holds at least
        // one entry) and the buffer at least 1 long (`open`); a direct call
        // with 0 gets the kernel's EINVAL. (`clamp` would add a panic
        // check for a buffer shorter than 1.)
        let max = max.min(buf.len());
        let ts = millis_timespec(to_millis(timeout));
        let (got, _) = epoll::wait(self.epfd.as_fd(), &mut buf[..max], ts.as_ref())?;
        // The first report apart from the loop over the rest: a select
        // with one ready fd (the common case of a busy server's loop) runs
        // straight through, without the loop's set-up and exit.
        let mut each = |ev: &epoll::Event| {
            let (fd, tag) = unpack(ev.data.u64());
            report(fd, tag, readiness(ev.flags));
        };
        if let Some((first, rest)) = got.split_first() {
            each(first);
            rest.iter().for_each(each);
        }
        Ok(())
    }

    /// Moves every live registration to a fresh epoll instance, waited on
    /// from now on. The first instance stays open under its number for
    /// `fileno()` and watches the fresh one (it keeps the leftovers, which
    /// nothing can name; the live keys are taken out of it); a later
    /// rebuild's instance replaces the previous one there. epoll watches
    /// files, so a registration moves only while its number still names
    /// the file it was made for: a key whose file was closed without
    /// `unregister` has nothing left to watch (the kernel drops a closed
    /// file's registration too) and is skipped, even when another file has
    /// taken its number since (watching that one instead would report a
    /// file nobody registered, which neither this instance nor CPython's
    /// does). Rare: only after a report that no key owns. On an error (out
    /// of fds, say) nothing has changed; a selector whose `fileno()` is
    /// watched at the kernel's nesting limit (four levels) always fails
    /// here with `ELOOP`, as the fresh instance would be a fifth.
    #[cold]
    #[inline(never)]
    fn rebuild(&mut self, live: impl Iterator<Item = Registration> + Clone) -> io::Result<()> {
        let fresh = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        for r in live.clone() {
            // Does the instance waited on still hold this number's file?
            // `EPOLL_CTL_MOD` with what it already has finds out and
            // changes nothing: `ENOENT` for another file (or none) there
            // now, `EBADF` for a closed number, `EPERM` and `EINVAL` for a
            // file epoll refuses (which `register` would have refused).
            let held = with_fd(r.fd, |src| {
                epoll::modify(&self.epfd, src, data(r.fd, r.tag), flags(r.interest))
            });
            match held {
                Ok(()) => {}
                Err(e) if self.is_gone(&e) => continue,
                Err(e) => return Err(e),
            }
            let added = with_fd(r.fd, |src| {
                epoll::add(&fresh, src, data(r.fd, r.tag), flags(r.interest))
            });
            match added {
                Ok(()) => {}
                // Closed (EBADF), or the number now names a file epoll
                // refuses (EPERM): the key's registration is gone either way.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBADF | libc::EPERM)) => {}
                Err(e) => return Err(e),
            }
        }
        // The instance `fileno()` names watches the fresh one: readable
        // when a live key is. Level-triggered, and never waited on here.
        let nest = self.nest.as_ref().unwrap_or(&self.epfd);
        epoll::add(
            nest,
            &fresh,
            epoll::EventData::new_u64(0),
            epoll::EventFlags::IN,
        )?;
        match &self.nest {
            // The previous fresh instance closes, and leaves `nest` with it.
            Some(_) => self.epfd = fresh,
            None => {
                let first = std::mem::replace(&mut self.epfd, fresh);
                // Only the leftovers stay in it: a live key there would wake
                // an outer loop with the interest it had at the rebuild, and
                // after its unregister. (A failure leaves a spurious wake-up
                // for an outer loop, not a wrong report: best effort.)
                for r in live {
                    let _ = with_fd(r.fd, |src| epoll::delete(&first, src));
                }
                self.nest = Some(first);
            }
        }
        self.spurious = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One select returns every ready key, however many, when `Ready`
    /// holds them (Python's semantics; CPython's `test_above_fd_setsize`
    /// checks ~10,000 at once).
    #[test]
    fn one_select_returns_every_ready_key() {
        use crate::{EVENT_WRITE, EpollSelector, Ready};
        use std::collections::BTreeSet;
        use std::os::unix::net::UnixStream;

        let pairs: Vec<_> = (0..300).map(|_| UnixStream::pair().unwrap()).collect();
        let mut sel = EpollSelector::<usize>::with_capacity(1024).unwrap();
        let mut all = BTreeSet::new();
        for (a, b) in &pairs {
            for s in [a, b] {
                sel.register(s, EVENT_WRITE, 0).unwrap();
                all.insert(s.as_raw_fd());
            }
        }
        let mut ready: Ready<usize, 1024> = Ready::new();
        assert_eq!(
            sel.select(&mut ready, Some(Duration::ZERO)).unwrap(),
            all.len()
        );
        let seen: BTreeSet<_> = ready.iter().map(|(k, _)| k.fd).collect();
        assert_eq!(seen, all);
    }

    /// A fresh user's finding: a register on a full table that the OS
    /// refused (epoll refuses regular files with `EPERM`) left the table
    /// grown. A failed register changes nothing, capacity included, and
    /// the keys it moved are back where they were.
    #[test]
    fn a_register_the_os_refuses_does_not_grow_the_table() {
        use crate::{EVENT_READ, EpollSelector, Error, Ready};
        use std::io::Write;
        use std::os::unix::net::UnixStream;

        let (a, mut a_peer) = UnixStream::pair().unwrap();
        let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        for fixed in [false, true] {
            let mut sel = if fixed {
                EpollSelector::<u32>::with_fixed_capacity(1).unwrap()
            } else {
                EpollSelector::<u32>::with_capacity(1).unwrap()
            };
            sel.register(&a, EVENT_READ, 1).unwrap();
            let refused = sel.register(&file, EVENT_READ, 2);
            match refused {
                Err(Error::Io(e)) if !fixed => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
                Err(Error::Full { capacity: 1 }) if fixed => {}
                other => panic!("{other:?}"),
            }
            assert_eq!((sel.len(), sel.capacity()), (1, 1));
            let keys: Vec<_> = sel.get_map().iter().map(|k| (k.fd, k.data)).collect();
            assert_eq!(keys, [(a.as_raw_fd(), 1)]);
            a_peer.write_all(b"x").unwrap();
            let mut ready: Ready<u32, 4> = Ready::new();
            assert_eq!(sel.select(&mut ready, Some(Duration::ZERO)).unwrap(), 1);
            std::io::Read::read_exact(&mut &a, &mut [0]).unwrap();
            // The next register that the OS accepts grows it as ever.
            let (b, _b_peer) = UnixStream::pair().unwrap();
            if !fixed {
                sel.register(&b, EVENT_READ, 3).unwrap();
                assert_eq!((sel.len(), sel.capacity()), (2, 2));
            }
        }
    }

    /// Found by the Python module's differential test against CPython's
    /// selectors: a rebuild re-registered a key's fd number after another
    /// file had taken it, so the selector began to report a file nobody
    /// registered (and `modify` succeeded where CPython's fails with
    /// `ENOENT`). Key N is registered for file B after a leftover of file
    /// A under N; B is closed without `unregister` and file C, readable,
    /// takes N; A's leftover then forces a rebuild. C must not be
    /// reported, before or after the rebuild.
    #[test]
    fn a_rebuild_moves_files_not_numbers() {
        use crate::{EVENT_READ, EpollSelector, Ready};
        use std::io::Write;
        use std::os::unix::net::UnixStream;

        let mut sel = EpollSelector::<usize>::with_capacity(16).unwrap();
        let mut ready: Ready<usize, 4> = Ready::new();
        let (a, mut a_peer) = UnixStream::pair().unwrap();
        let keep_a = a.try_clone().unwrap(); // file A stays open
        let mut n: OwnedFd = a.into();
        let num = n.as_raw_fd();
        sel.register(num, EVENT_READ, 1).unwrap();
        // B takes N (A's number there closes, A stays open: a leftover).
        let (b, _b_peer) = UnixStream::pair().unwrap();
        rustix::io::dup2(&b, &mut n).unwrap();
        drop(b);
        sel.unregister(num).unwrap(); // ENOENT: B was never registered
        sel.register(num, EVENT_READ, 2).unwrap(); // key N is B's now
        // C, readable, takes N: B's only fd closes, and its registration.
        let (c, mut c_peer) = UnixStream::pair().unwrap();
        c_peer.write_all(b"c").unwrap();
        rustix::io::dup2(&c, &mut n).unwrap();
        drop(c);
        assert_eq!(sel.select(&mut ready, Some(Duration::ZERO)).unwrap(), 0);
        // A readable: its leftover reports a tag no key has: a rebuild.
        a_peer.write_all(b"a").unwrap();
        let t = std::time::Instant::now();
        assert_eq!(
            sel.select(&mut ready, Some(Duration::from_millis(50)))
                .unwrap(),
            0,
            "reported {:?}",
            ready.iter().collect::<Vec<_>>()
        );
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(sel.select(&mut ready, Some(Duration::ZERO)).unwrap(), 0);
        // Key N's registration is gone, as in CPython: modify fails with
        // ENOENT (and changes nothing), unregister succeeds.
        let e = sel.modify(num, crate::EVENT_WRITE, 3).unwrap_err();
        assert_eq!(io::Error::from(e).raw_os_error(), Some(libc::ENOENT));
        assert_eq!(sel.unregister(num).unwrap().data, 2);
        drop(keep_a);
    }

    #[test]
    fn data_round_trips_fd_and_tag() {
        for (fd, tag) in [(0, 0), (5, 1), (i32::MAX, u32::MAX), (1023, 0x8000_0000)] {
            let tag = Tag::from_bits(tag);
            assert_eq!(unpack(data(fd, tag).u64()), (fd, tag));
        }
    }

    #[test]
    fn flag_translation() {
        use epoll::EventFlags as F;
        assert_eq!(flags(Events::READ), F::IN);
        assert_eq!(flags(Events::WRITE), F::OUT);
        assert_eq!(flags(Events::all()), F::IN | F::OUT);
        assert_eq!(readiness(F::IN), Readiness::READABLE);
        assert_eq!(
            readiness(F::OUT | F::ERR),
            Readiness::WRITABLE | Readiness::ERROR
        );
        assert_eq!(readiness(F::HUP), Readiness::HANGUP);
        assert_eq!(readiness(F::PRI), Readiness::PRIORITY);
        assert_eq!(readiness(F::ET | F::ONESHOT), Readiness::empty());
        // RDHUP is not looked at: it is reported only when asked for, and
        // nothing asks for it (nor for anything beyond IN and OUT).
        assert_eq!(readiness(F::RDHUP), Readiness::empty());
        for interest in [Events::READ, Events::WRITE, Events::all()] {
            assert!((F::IN | F::OUT).contains(flags(interest)));
        }
        // Every combination of the flags that can come, against the rule
        // written out flag by flag.
        let known = [F::IN, F::OUT, F::ERR, F::HUP, F::PRI];
        for mask in 0..1u32 << known.len() {
            let mut f = F::empty();
            for (i, &k) in known.iter().enumerate() {
                if mask & 1 << i != 0 {
                    f |= k;
                }
            }
            let mut want = Readiness::empty();
            want.set(Readiness::READABLE, f.contains(F::IN));
            want.set(Readiness::WRITABLE, f.contains(F::OUT));
            want.set(Readiness::ERROR, f.contains(F::ERR));
            want.set(Readiness::HANGUP, f.contains(F::HUP));
            want.set(Readiness::PRIORITY, f.contains(F::PRI));
            assert_eq!(readiness(f), want, "{f:?}");
        }
    }
}

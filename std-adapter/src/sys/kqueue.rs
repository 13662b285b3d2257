//! kqueue (macOS, iOS, FreeBSD, NetBSD, OpenBSD, DragonFly): one
//! level-triggered filter per event, every change checked through its
//! `EV_RECEIPT`, one `kevent` per select, each registration's generation
//! tag in `udata`.
//!
//! The decisions (filters, change lists, receipts, undo, readiness) are
//! pure functions in `kqueue_plan.rs`, unit-tested on every unix; this
//! file only makes the system calls.
#![allow(unsafe_code)] // system calls; each block has its SAFETY proof

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr;
use std::time::Duration;

use rustix::event::Timespec;
use rustix::event::kqueue::{self, Event, EventFilter, EventFlags};
use rustix::io::{FdFlags, fcntl_setfd};
use selectors2_core::{Backend, BackendSlot, Events, Readiness, Tag};

use super::kqueue_plan::{self as kf, Action, Change, Changes, Filter, Mark, Receipt};
use super::{OsBackend, Sealed, Token};
use crate::timeout::to_nanos_timespec;
use crate::{BackendKind, RawFd};

/// The kqueue backend of [`KqueueSelector`](crate::KqueueSelector).
///
/// READ is an `EVFILT_READ` filter and WRITE an `EVFILT_WRITE` one, both
/// level-triggered; an fd ready both ways is reported twice by the kernel
/// and merged into one entry by the selector. `register` and `modify` are
/// atomic: if the kernel refuses one filter, the other change is undone.
///
/// The write end of a pipe whose read end is closed cannot get a write
/// filter on FreeBSD, DragonFly or older macOS (`EPIPE`). It is registered
/// anyway and reported writable and hung up by every `select` until it is
/// unregistered (as current macOS, poll and epoll report it): a write to it
/// fails at once.
pub struct Kqueue {
    kq: OwnedFd,
    /// The `kevent` output buffer, allocated once: one event per key.
    events: EventBuffer,
    /// Registered fds whose write filter was refused as a broken pipe,
    /// with their tags: reported by every wait without the kernel.
    /// Allocated once (one entry per key at most); almost always empty.
    broken: Vec<(RawFd, Tag)>,
}

impl std::fmt::Debug for Kqueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kqueue")
            .field("kq", &self.kq.as_raw_fd())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// The `kevent` output buffer: `Send` and `Sync` by the proof below, which
/// is about this buffer only, so that a field added to [`Kqueue`] later is
/// checked by the compiler.
struct EventBuffer(Box<[Event]>);

// SAFETY: `Event` is `!Send`/`!Sync` only because `udata` is a pointer
// field. This backend only ever stores integers (generation tags) in it,
// never dereferenced by anyone, and the buffer is plain memory the kernel
// writes into during a `&mut self` call, so moving or sharing the buffer
// across threads is sound.
unsafe impl Send for EventBuffer {}
// SAFETY: as above; `&EventBuffer` exposes no interior mutability.
unsafe impl Sync for EventBuffer {}

impl std::ops::Deref for EventBuffer {
    type Target = [Event];
    #[inline]
    fn deref(&self) -> &[Event] {
        &self.0
    }
}

impl std::ops::DerefMut for EventBuffer {
    #[inline]
    fn deref_mut(&mut self) -> &mut [Event] {
        &mut self.0
    }
}

/// The kevent for one change of `fd`'s filters, tagged with `tag`.
#[inline]
fn event(fd: RawFd, change: Change, tag: Tag) -> Event {
    let filter = match change.filter {
        Filter::Read => EventFilter::Read(fd),
        Filter::Write => EventFilter::Write(fd),
    };
    let action = match change.action {
        Action::Add => EventFlags::ADD,
        Action::Delete => EventFlags::DELETE,
    };
    // The tag is an integer in a pointer-sized field, never dereferenced.
    let udata = ptr::without_provenance_mut(kf::udata(tag));
    Event::new(filter, action | EventFlags::RECEIPT, udata)
}

/// A placeholder kevent, to fill buffers with before the kernel writes them.
#[inline]
fn blank() -> Event {
    Event::new(EventFilter::Read(0), EventFlags::empty(), ptr::null_mut())
}

/// Which filter of which fd a kevent is about (`None` for filters this
/// backend never installs).
#[inline]
fn filter_of(ev: &Event) -> Option<(RawFd, Filter)> {
    match ev.filter() {
        EventFilter::Read(fd) => Some((fd, Filter::Read)),
        EventFilter::Write(fd) => Some((fd, Filter::Write)),
        _ => None,
    }
}

/// `kevent` with a change list and no wait: every change carries
/// `EV_RECEIPT`, so each is answered in `receipts` (which must be as long
/// as `changes`) and no pending event is taken.
#[inline]
fn kevent_changes(
    kq: BorrowedFd<'_>,
    changes: &[Event],
    receipts: &mut [Event],
) -> io::Result<usize> {
    debug_assert_eq!(changes.len(), receipts.len());
    let zero = to_nanos_timespec(Duration::ZERO);
    // SAFETY: rustix asks that the fds named by the changes stay valid
    // while the kqueue holds them. That is I/O safety, not memory safety:
    // every kqueue platform documents that closing an fd removes the
    // filters that reference it, so a filter can never act on a later file
    // that reuses the number, and a report already queued for it is
    // dropped by its generation tag. `udata` holds an integer that neither
    // the kernel nor we dereference, and rustix passes `receipts` as a
    // live, exclusively borrowed buffer with its true length.
    let n = unsafe { kqueue::kevent_timespec(kq, changes, &mut *receipts, Some(&zero)) }?;
    Ok(n)
}

/// `kevent` with no change list: waits up to `timeout` (`None`: forever)
/// for events, written to `events`.
#[inline]
fn kevent_wait(
    kq: BorrowedFd<'_>,
    events: &mut [Event],
    timeout: Option<&Timespec>,
) -> io::Result<usize> {
    // SAFETY: the change list is empty, so no fd is handed to the kernel;
    // rustix passes `events` as a live, exclusively borrowed buffer with
    // its true length, and the kernel writes at most that many.
    let n = unsafe { kqueue::kevent_timespec(kq, &[], &mut *events, timeout) }?;
    Ok(n)
}

/// Whether an `EV_DELETE` error means the fd's filters are already gone.
#[inline]
fn is_gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBADF | libc::ENOENT))
}

impl Kqueue {
    /// Applies `changes` to `fd`'s filters in one `kevent` call and reads
    /// each one's receipt (`receipts[i]` answers `changes[i]`).
    #[inline]
    fn apply(&self, fd: RawFd, tag: Tag, changes: &Changes) -> io::Result<[Receipt; 2]> {
        let changes = changes.as_slice();
        let mut list = [blank(); 2];
        let mut out = [blank(); 2];
        for (slot, &change) in list.iter_mut().zip(changes) {
            *slot = event(fd, change, tag);
        }
        let n = changes.len();
        let got = kevent_changes(self.kq.as_fd(), &list[..n], &mut out[..n])?;
        // Receipts are the `EV_ERROR` events. Every change gets one, but a
        // kernel that ignored `EV_RECEIPT` would answer only the refused
        // changes that way (and fill the rest with pending events): either
        // way, a change without a receipt went through.
        let mut receipts = [Receipt::Applied; 2];
        for ev in &out[..got.min(n)] {
            if !ev.flags().contains(EventFlags::ERROR) {
                continue;
            }
            let Some((_, filter)) = filter_of(ev) else {
                continue;
            };
            if let Some(i) = changes.iter().position(|c| c.filter == filter) {
                receipts[i] = kf::receipt(changes[i], ev.data());
            }
        }
        Ok(receipts)
    }

    /// Applies `changes` atomically: if the kernel refuses one, the others
    /// are undone and its error returned.
    #[inline]
    fn change(&mut self, fd: RawFd, tag: Tag, changes: &Changes) -> io::Result<()> {
        let receipts = self.apply(fd, tag, changes)?;
        let receipts = &receipts[..changes.len()];
        if let Some(errno) = kf::first_failure(receipts) {
            return Err(self.undo(fd, tag, changes, receipts, errno));
        }
        self.mark(fd, tag, kf::mark(changes.as_slice(), receipts));
        Ok(())
    }

    /// Reverses what went through of a refused change list, and returns
    /// the refusal. Best effort: putting a filter back can itself fail
    /// only for want of kernel memory, and then nothing better can be done.
    #[cold]
    fn undo(
        &mut self,
        fd: RawFd,
        tag: Tag,
        changes: &Changes,
        receipts: &[Receipt],
        errno: i32,
    ) -> io::Error {
        let undo = kf::undo(changes.as_slice(), receipts);
        if undo.len() > 0
            && let Ok(receipts) = self.apply(fd, tag, &undo)
        {
            // Restoring a write filter may now meet a broken pipe.
            let mark = kf::mark(undo.as_slice(), &receipts[..undo.len()]);
            self.mark(fd, tag, mark);
        }
        io::Error::from_raw_os_error(errno)
    }

    /// Lists or unlists `fd` as a broken pipe.
    #[inline]
    fn mark(&mut self, fd: RawFd, tag: Tag, mark: Mark) {
        match mark {
            Mark::Keep => {}
            Mark::Set => self.set_broken(fd, tag),
            Mark::Clear => self.clear_broken(fd),
        }
    }

    #[cold]
    fn set_broken(&mut self, fd: RawFd, tag: Tag) {
        match self.broken.iter_mut().find(|(f, _)| *f == fd) {
            Some(entry) => entry.1 = tag,
            // Within the capacity reserved in `open`: one entry per key.
            None => self.broken.push((fd, tag)),
        }
    }

    /// O(number of broken pipes registered), which is almost always 0.
    #[inline]
    fn clear_broken(&mut self, fd: RawFd) {
        if let Some(i) = self.broken.iter().position(|&(f, _)| f == fd) {
            self.broken.swap_remove(i);
        }
    }
}

impl AsFd for Kqueue {
    /// The kqueue's fd.
    #[inline]
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.kq.as_fd()
    }
}

impl Sealed for Kqueue {
    /// The event buffer holds a wait's reports (see `buffer_len`) and
    /// `broken` one entry per key: both grow to the new capacity.
    fn reserve_keys(&mut self, capacity: usize) {
        let len = kf::buffer_len(capacity);
        if len > self.events.0.len() {
            self.events = EventBuffer(vec![blank(); len].into_boxed_slice());
        }
        self.broken
            .reserve(capacity.saturating_sub(self.broken.len()));
    }
}

impl OsBackend for Kqueue {
    fn open(capacity: usize, _: Token) -> io::Result<Self> {
        let kq = kqueue::kqueue()?;
        // `kqueue()` has no close-on-exec flag (FreeBSD's `kqueuex` and
        // NetBSD's `kqueue1` are not everywhere). A kqueue is not inherited
        // across `fork` anyway, so the window before this call leaks
        // nothing into a child; the flag keeps the rule "every fd we open
        // is close-on-exec" true all the same.
        fcntl_setfd(&kq, FdFlags::CLOEXEC)?;
        Ok(Kqueue {
            kq,
            events: EventBuffer(vec![blank(); kf::buffer_len(capacity)].into_boxed_slice()),
            broken: Vec::with_capacity(capacity.max(1)),
        })
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Kqueue
    }

    fn fileno(&self) -> Option<RawFd> {
        Some(self.kq.as_raw_fd())
    }
}

impl Backend for Kqueue {
    type Error = io::Error;

    #[inline]
    fn register(&mut self, fd: RawFd, interest: Events, tag: Tag) -> io::Result<BackendSlot> {
        self.change(fd, tag, &kf::change_list(interest, Events::empty()))?;
        Ok(BackendSlot::NONE)
    }

    #[inline]
    fn modify(
        &mut self,
        fd: RawFd,
        _: BackendSlot,
        old: Events,
        new: Events,
        tag: Tag,
    ) -> io::Result<()> {
        let (adds, deletes) = kf::changes(old, new);
        self.change(fd, tag, &kf::change_list(adds, deletes))
    }

    #[inline]
    fn unregister(&mut self, fd: RawFd, _: BackendSlot, interest: Events) -> io::Result<()> {
        let changes = kf::change_list(Events::empty(), interest);
        let result = self.apply(fd, Tag::NONE, &changes).and_then(|r| {
            match kf::first_failure(&r[..changes.len()]) {
                Some(errno) => Err(io::Error::from_raw_os_error(errno)),
                None => Ok(()),
            }
        });
        // Forget the fd unless the selector keeps its key: that is, on
        // success or when the fd is gone (closed: EBADF). On another error
        // the key stays, and a retry tolerates the filters already deleted
        // (ENOENT).
        let forget = match &result {
            Ok(()) => true,
            Err(e) => is_gone(e),
        };
        if forget {
            self.clear_broken(fd);
        }
        result
    }

    /// `EV_DELETE` of a number the selector holds a key for fails only
    /// when the registered fd was closed without `unregister` (closing an
    /// fd deletes its kevents, kevent(2)): `EBADF` (nothing open there) or
    /// `ENOENT` (another file, without this queue's filters).
    #[inline]
    fn is_gone(&self, e: &io::Error) -> bool {
        is_gone(e)
    }

    #[inline]
    fn wait<F: FnMut(RawFd, Tag, Readiness)>(
        &mut self,
        max: usize,
        timeout: Option<Duration>,
        mut report: F,
    ) -> io::Result<()> {
        // A broken pipe is always ready: do not sleep while there is one.
        let timeout = if self.broken.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        let kq = self.kq.as_fd();
        // Level-triggered knotes still active go back to the end of the
        // kernel's queue once returned, so asking for at most `max` events
        // reaches every ready fd in turn (no starvation; see `kf::batch`).
        // Broken pipes are reported beside the kernel's events: leave room.
        let n = kf::batch(max.saturating_sub(self.broken.len()), self.events.len());
        let buf = &mut self.events[..n];
        let ts = timeout.map(|t| to_nanos_timespec(crate::timeout::clamp_timeout(t)));
        let got = kevent_wait(kq, buf, ts.as_ref())?;
        for &(fd, tag) in &self.broken {
            report(fd, tag, kf::BROKEN);
        }
        for ev in &self.events[..got.min(n)] {
            let Some((fd, filter)) = filter_of(ev) else {
                continue;
            };
            let flags = ev.flags();
            let readiness = kf::readiness(
                filter,
                flags.contains(EventFlags::EOF),
                flags.contains(EventFlags::ERROR),
            );
            report(fd, kf::tag(ev.udata().addr()), readiness);
        }
        Ok(())
    }
}

// These need a real kqueue: they type-check here (`cargo clippy
// --all-targets --target x86_64-unknown-freebsd`) and run on macOS and the
// BSDs. The decisions they exercise are unit-tested on every unix in
// `kqueue_plan.rs`.
#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    use super::*;

    const ZERO: Duration = Duration::ZERO;
    const R: Events = Events::READ;
    const W: Events = Events::WRITE;

    /// No slot: kqueue keeps none.
    const S: BackendSlot = BackendSlot::NONE;

    fn t(bits: u32) -> Tag {
        Tag::from_bits(bits)
    }

    /// Every report of one wait as (fd, tag bits, readiness), sorted.
    fn reports(kq: &mut Kqueue, timeout: Duration) -> Vec<(RawFd, u32, Readiness)> {
        let mut got = Vec::new();
        kq.wait(64, Some(timeout), |fd, tag, r| {
            got.push((fd, tag.to_bits(), r))
        })
        .unwrap();
        got.sort_by_key(|&(fd, tag, r)| (fd, tag, r.bits()));
        got
    }

    #[test]
    fn is_send_sync_cloexec_and_sized_by_keys() {
        fn check<T: Send + Sync>() {}
        check::<Kqueue>();
        let kq = Kqueue::open(4, Token).unwrap();
        assert!(
            rustix::io::fcntl_getfd(&kq.kq)
                .unwrap()
                .contains(FdFlags::CLOEXEC)
        );
        assert_eq!(kq.fileno(), Some(kq.kq.as_raw_fd()));
        assert_eq!(kq.events.len(), 4);
        assert_eq!(Kqueue::open(0, Token).unwrap().events.len(), 1);
    }

    #[test]
    fn reports_each_filter_with_its_tag_level_triggered() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let fd = b.as_raw_fd();
        let mut kq = Kqueue::open(4, Token).unwrap();
        kq.register(fd, R | W, t(7)).unwrap();
        assert_eq!(reports(&mut kq, ZERO), [(fd, 7, Readiness::WRITABLE)]);
        a.write_all(b"x").unwrap();
        let both = [(fd, 7, Readiness::READABLE), (fd, 7, Readiness::WRITABLE)];
        assert_eq!(reports(&mut kq, ZERO), both);
        assert_eq!(reports(&mut kq, ZERO), both, "level-triggered");
        kq.modify(fd, S, R | W, R, t(7)).unwrap();
        assert_eq!(reports(&mut kq, ZERO), [(fd, 7, Readiness::READABLE)]);
        kq.modify(fd, S, R, W, t(7)).unwrap();
        assert_eq!(reports(&mut kq, ZERO), [(fd, 7, Readiness::WRITABLE)]);
        kq.unregister(fd, S, W).unwrap();
        assert!(reports(&mut kq, ZERO).is_empty());
    }

    #[test]
    fn hang_up_is_reported() {
        let (a, b) = UnixStream::pair().unwrap();
        let fd = b.as_raw_fd();
        let mut kq = Kqueue::open(4, Token).unwrap();
        kq.register(fd, R, t(1)).unwrap();
        drop(a);
        let got = reports(&mut kq, Duration::from_secs(5));
        assert_eq!(got, [(fd, 1, Readiness::READABLE | Readiness::HANGUP)]);
    }

    #[test]
    fn an_empty_kqueue_sleeps_for_the_timeout() {
        for capacity in [0, 4] {
            let mut kq = Kqueue::open(capacity, Token).unwrap();
            let start = Instant::now();
            assert!(reports(&mut kq, Duration::from_millis(50)).is_empty());
            assert!(start.elapsed() >= Duration::from_millis(50));
        }
    }

    #[test]
    fn unregister_after_close_succeeds_or_is_gone() {
        let (_a, b) = UnixStream::pair().unwrap();
        let fd = b.as_raw_fd();
        let mut kq = Kqueue::open(4, Token).unwrap();
        kq.register(fd, R | W, t(1)).unwrap();
        drop(b);
        // EBADF, or nothing to delete (ENOENT, tolerated) if another test
        // thread got the number meanwhile.
        if let Err(e) = kq.unregister(fd, S, R | W) {
            assert!(kq.is_gone(&e), "{e}");
        }
    }

    #[test]
    fn a_pipe_whose_reader_is_gone_is_writable_and_hung_up() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        drop(r);
        let fd = w.as_raw_fd();
        let mut kq = Kqueue::open(4, Token).unwrap();
        kq.register(fd, W, t(3)).unwrap();
        let start = Instant::now();
        assert_eq!(
            reports(&mut kq, Duration::from_secs(5)),
            [(fd, 3, kf::BROKEN)]
        );
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(reports(&mut kq, ZERO), [(fd, 3, kf::BROKEN)]);
        kq.unregister(fd, S, W).unwrap();
        assert!(kq.broken.is_empty());
        assert!(reports(&mut kq, ZERO).is_empty());
    }

    #[test]
    fn refused_changes_are_rolled_back() {
        // A kqueue fd takes EVFILT_READ (readable while it holds events)
        // and refuses EVFILT_WRITE with EINVAL.
        let mut inner = Kqueue::open(4, Token).unwrap();
        let ifd = inner.fileno().unwrap();
        let (_a, b) = UnixStream::pair().unwrap();
        inner.register(b.as_raw_fd(), W, t(1)).unwrap();
        let mut kq = Kqueue::open(4, Token).unwrap();

        // register(READ|WRITE): the read filter went in, and was taken back.
        assert!(kq.register(ifd, R | W, t(1)).is_err());
        assert!(reports(&mut kq, ZERO).is_empty());

        kq.register(ifd, R, t(2)).unwrap();
        assert_eq!(reports(&mut kq, ZERO), [(ifd, 2, Readiness::READABLE)]);
        // modify(READ -> WRITE): the read filter was deleted, and restored.
        assert!(kq.modify(ifd, S, R, W, t(2)).is_err());
        assert_eq!(reports(&mut kq, ZERO), [(ifd, 2, Readiness::READABLE)]);
        kq.unregister(ifd, S, R).unwrap();
    }
}

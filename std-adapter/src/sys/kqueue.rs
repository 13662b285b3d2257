//! kqueue (macOS, iOS, FreeBSD, NetBSD, OpenBSD, DragonFly): one
//! level-triggered filter per event, every change checked through its
//! `EV_RECEIPT`, one `kevent` per select, each registration's generation
//! tag in `udata`.
//!
//! The decisions (filters, change lists, receipts, undo, readiness, how a
//! wait is shared between the kernel and the fds reported without it, the
//! fork guard) live in `kqueue_plan.rs`, unit-tested on every unix and
//! run against a kernel model on Linux; this file only makes the system
//! calls.
#![allow(unsafe_code)] // system calls; each block has its SAFETY proof

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr;
use std::time::Duration;

use rustix::event::kqueue::{self, Event, EventFilter, EventFlags};
use rustix::io::{FdFlags, fcntl_setfd};
use selectors2_core::{Backend, BackendSlot, Events, Readiness, Registration, Tag};

use super::kqueue_plan::{
    self as kf, Action, Change, Changes, Filter, Ledger, ProcessFd, Receipt, Returned,
};
use super::{OsBackend, Sealed};
use crate::timeout::to_nanos_timespec;
use crate::{BackendKind, RawFd};

/// The kqueue backend of [`KqueueSelector`](crate::KqueueSelector).
///
/// READ is an `EVFILT_READ` filter and WRITE an `EVFILT_WRITE` one, both
/// level-triggered; an fd ready both ways is reported twice by the kernel
/// and merged into one entry by the selector. `register` and `modify` are
/// atomic: if the kernel refuses one filter, the other change is undone.
///
/// EOF is per direction: a read report with `EV_EOF` (the peer shut its
/// side or closed) is READ, a write report with `EV_EOF` (our own
/// `shutdown(SHUT_WR)`, or a pipe whose reader is gone) is WRITE, as epoll
/// and CPython's `KqueueSelector` report them; a socket error that comes
/// with it counts as both.
///
/// The write end of a pipe whose read end is closed cannot get a write
/// filter on FreeBSD, DragonFly or older macOS (`EPIPE`), and on FreeBSD
/// a write filter installed before the reader closed is reported once and
/// then dropped by the kernel. Such an fd is registered anyway and reported
/// writable by every `select` until WRITE is unregistered, as current
/// macOS, poll and epoll report it: a write to it fails at once.
///
/// # After `fork`
///
/// A child does not inherit a kqueue (FreeBSD skips it when copying the fd
/// table; macOS marks it close-on-fork), so in a child the selector's fd
/// number is free and may soon name another file, even the child's own new
/// selector. A `Kqueue` therefore remembers the process that opened it, and
/// in any other process it acts closed, as CPython's kqueue objects do:
/// `register`, `modify` and `select` fail with `EBADF`, `unregister` only
/// forgets the key (`EBADF` is what a closed fd's answer looks like),
/// [`fileno`](OsBackend::fileno) is `None`, and drop closes nothing.
/// Open a new selector in the child (re-registering what it needs);
/// through [`AsFd`] the number is still given out, but it does not name
/// this kqueue there.
pub struct Kqueue {
    kq: ProcessFd,
    /// The `kevent` output buffer, allocated once: two events per key.
    events: EventBuffer,
    /// The key count and the fds reported without the kernel (broken
    /// pipes, filters the kernel dropped). Allocated once (one entry per
    /// key at most); almost always empty.
    ledger: Ledger,
}

impl std::fmt::Debug for Kqueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kqueue")
            .field("kq", &self.kq.borrow_any().as_raw_fd())
            .field("ledger", &self.ledger)
            .finish_non_exhaustive()
    }
}

/// The `kevent` output buffer, left uninitialised: the kernel writes what a
/// wait returns, and a page no wait reached costs no memory. `Send` and
/// `Sync` by the proof below, which is about this buffer only, so that a
/// field added to [`Kqueue`] later is checked by the compiler.
struct EventBuffer(Box<[MaybeUninit<libc::kevent>]>);

impl EventBuffer {
    fn new(len: usize) -> io::Result<EventBuffer> {
        Ok(EventBuffer(super::uninit_slice(len)?))
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

// SAFETY: `kevent` is `!Send`/`!Sync` only because `udata` is a pointer
// field. This backend only ever stores integers (generation tags) in it,
// never dereferenced by anyone, and the buffer is plain memory the kernel
// writes into during a `&mut self` call, so moving or sharing the buffer
// across threads is sound.
unsafe impl Send for EventBuffer {}
// SAFETY: as above; `&EventBuffer` exposes no interior mutability.
unsafe impl Sync for EventBuffer {}

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
#[inline(always)]
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
/// for events, written to `events`; returns those it wrote.
///
/// Through libc, not rustix: rustix's `Event` does not give out `fflags`,
/// where a socket's error comes with `EV_EOF`.
#[inline(always)]
fn kevent_wait<'a>(
    kq: BorrowedFd<'_>,
    events: &'a mut [MaybeUninit<libc::kevent>],
    timeout: Option<&libc::timespec>,
) -> io::Result<&'a [libc::kevent]> {
    let capacity = events.len().min(i32::MAX as usize);
    let ts = timeout.map_or(ptr::null(), ptr::from_ref);
    // SAFETY: the change list is empty, so no fd is handed to the kernel;
    // `events` is a live, exclusively borrowed buffer of at least
    // `capacity` entries (`MaybeUninit<kevent>` has `kevent`'s layout), and
    // the kernel writes at most that many; `ts` is null or points to a
    // timespec that outlives the call.
    let got = unsafe {
        libc::kevent(
            kq.as_raw_fd(),
            ptr::null(),
            0,
            events.as_mut_ptr().cast::<libc::kevent>(),
            capacity as _,
            ts,
        )
    };
    let Ok(got) = usize::try_from(got) else {
        return Err(io::Error::last_os_error());
    };
    let got = got.min(capacity);
    // SAFETY: the kernel initialised the first `got` entries, and they
    // stay borrowed from `events`.
    Ok(unsafe { std::slice::from_raw_parts(events.as_ptr().cast::<libc::kevent>(), got) })
}

/// What a kevent returned by a wait says, as `kqueue_plan` reads it
/// (`None` for filters this backend never installs).
#[inline]
fn returned(ev: &libc::kevent) -> Option<Returned> {
    let filter = if ev.filter == libc::EVFILT_READ {
        Filter::Read
    } else if ev.filter == libc::EVFILT_WRITE {
        Filter::Write
    } else {
        return None;
    };
    let fd = RawFd::try_from(ev.ident).ok()?;
    let has = |flag| ev.flags & flag != 0;
    Some(Returned {
        fd,
        filter,
        tag: kf::tag(ev.udata.addr()),
        eof: has(libc::EV_EOF),
        error: has(libc::EV_ERROR),
        oneshot: has(libc::EV_ONESHOT),
        fflags: ev.fflags,
    })
}

/// The wait's timeout as libc takes it: clamped to what every kqueue
/// kernel accepts (see `timeout.rs`), so it fits any `time_t`.
#[inline]
fn timespec(t: Duration) -> libc::timespec {
    let ts = to_nanos_timespec(crate::timeout::clamp_timeout(t));
    libc::timespec {
        tv_sec: ts.tv_sec as _,
        tv_nsec: ts.tv_nsec as _,
    }
}

/// Whether an `EV_DELETE` error means the fd's filters are already gone.
#[inline]
fn is_gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBADF | libc::ENOENT))
}

impl Kqueue {
    /// Applies `changes` to `fd`'s filters in one `kevent` call and reads
    /// each one's receipt (`receipts[i]` answers `changes[i]`).
    #[inline(always)]
    fn apply(&self, fd: RawFd, tag: Tag, changes: &Changes) -> io::Result<[Receipt; 2]> {
        let changes = changes.as_slice();
        let mut list = [blank(); 2];
        let mut out = [blank(); 2];
        for (slot, &change) in list.iter_mut().zip(changes) {
            *slot = event(fd, change, tag);
        }
        let n = changes.len();
        let got = kevent_changes(self.kq.get()?, &list[..n], &mut out[..n])?;
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
    /// are undone and its error returned. On success, the receipts.
    #[inline(always)]
    fn change(&mut self, fd: RawFd, tag: Tag, changes: &Changes) -> io::Result<[Receipt; 2]> {
        let receipts = self.apply(fd, tag, changes)?;
        let done = &receipts[..changes.len()];
        if let Some(errno) = kf::first_failure(done) {
            return Err(self.undo(fd, tag, changes, done, errno));
        }
        Ok(receipts)
    }

    /// Reverses what went through of a refused change list, and returns
    /// the refusal; or, when the undo could not put everything back (XNU
    /// may lack the memory to re-add a filter a `modify` deleted), an error
    /// that says the registration no longer matches its key.
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
        if undo.len() == 0 {
            return io::Error::from_raw_os_error(errno);
        }
        let result = self.apply(fd, tag, &undo);
        if let Ok(receipts) = &result {
            // Restoring a write filter may now meet a broken pipe.
            self.ledger
                .changed(fd, tag, undo.as_slice(), &receipts[..undo.len()]);
        }
        let result = match &result {
            Ok(receipts) => Ok(&receipts[..undo.len()]),
            Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
        };
        match kf::not_undone(result) {
            None => io::Error::from_raw_os_error(errno),
            Some(undo_errno) => not_undone(errno, undo_errno),
        }
    }
}

/// The error of a change list that was refused and could not be undone.
#[cold]
fn not_undone(errno: i32, undo_errno: i32) -> io::Error {
    io::Error::other(format!(
        "kevent refused a change ({}), and putting the fd's filters back failed too ({}): \
         its registration no longer matches its key; unregister it and register it again",
        io::Error::from_raw_os_error(errno),
        io::Error::from_raw_os_error(undo_errno),
    ))
}

impl AsFd for Kqueue {
    /// The kqueue's fd (in a child after `fork`, a number that no longer
    /// names it: see [`Kqueue`]).
    #[inline]
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.kq.borrow_any()
    }
}

impl Sealed for Kqueue {
    fn open(capacity: usize) -> io::Result<Self> {
        let kq = kqueue::kqueue().map_err(refused)?;
        // `kqueue()` has no close-on-exec flag everywhere (FreeBSD's
        // `kqueuex` is 14.0 and later, NetBSD's `kqueue1` NetBSD only). A
        // kqueue is never inherited across `fork`, so a fork+exec in
        // another thread leaks nothing; a plain `execve` by another thread
        // before this call would keep it, on FreeBSD, NetBSD and OpenBSD
        // (macOS makes every kqueue close-on-exec and close-on-fork
        // itself). The flag keeps the rule "every fd we open is
        // close-on-exec" true from here on.
        fcntl_setfd(&kq, FdFlags::CLOEXEC)?;
        Ok(Kqueue {
            kq: ProcessFd::new(kq),
            events: EventBuffer::new(kf::buffer_len(capacity))?,
            ledger: Ledger::with_capacity(capacity)?,
        })
    }

    /// After `rebuild` dropped an entry of the ledger: the wait that
    /// reported it did not sleep for it.
    #[inline]
    fn take_spurious_wakeup(&mut self) -> bool {
        self.ledger.take_dropped()
    }

    /// The event buffer holds a wait's reports (see `buffer_len`) and
    /// the ledger one entry per key: both grow to the new capacity.
    fn reserve_keys(&mut self, capacity: usize) -> io::Result<()> {
        let len = kf::buffer_len(capacity);
        if len > self.events.len() {
            self.events = EventBuffer::new(len)?;
        }
        self.ledger.reserve(capacity)
    }
}

impl OsBackend for Kqueue {
    fn kind(&self) -> BackendKind {
        BackendKind::Kqueue
    }

    /// `None` in a child after `fork`, where the number is not this
    /// kqueue's (see [`Kqueue`]).
    fn fileno(&self) -> Option<RawFd> {
        self.kq.get().ok().map(|fd| fd.as_raw_fd())
    }
}

/// What a refused `kqueue()` becomes. FreeBSD answers `ENOMEM` for one
/// reason only, the per-user kqueue limit (`RLIMIT_KQUEUES`: `ulimit -k`,
/// login.conf, rctl), which is a rule of the system, not a passing
/// shortage: say so, without the errno, so that `DefaultSelector` falls
/// back to poll, as CPython's does.
#[cold]
fn refused(e: rustix::io::Errno) -> io::Error {
    #[cfg(target_os = "freebsd")]
    if e == rustix::io::Errno::NOMEM {
        return io::Error::new(
            io::ErrorKind::QuotaExceeded,
            "kqueue(): the per-user kqueue limit (RLIMIT_KQUEUES) is reached",
        );
    }
    e.into()
}

impl Backend for Kqueue {
    type Error = io::Error;

    #[inline(always)]
    fn register(&mut self, fd: RawFd, interest: Events, tag: Tag) -> io::Result<BackendSlot> {
        let changes = kf::change_list(interest, Events::empty());
        let receipts = self.change(fd, tag, &changes)?;
        self.ledger
            .registered(fd, tag, changes.as_slice(), &receipts[..changes.len()]);
        Ok(BackendSlot::NONE)
    }

    #[inline(always)]
    fn modify(
        &mut self,
        fd: RawFd,
        _: BackendSlot,
        old: Events,
        new: Events,
        tag: Tag,
    ) -> io::Result<()> {
        let (adds, deletes) = kf::changes(old, new);
        let changes = kf::change_list(adds, deletes);
        let receipts = self.change(fd, tag, &changes)?;
        self.ledger
            .changed(fd, tag, changes.as_slice(), &receipts[..changes.len()]);
        Ok(())
    }

    #[inline(always)]
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
            self.ledger.unregistered(fd);
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

    #[inline(always)]
    fn wait<F: FnMut(RawFd, Tag, Readiness)>(
        &mut self,
        max: usize,
        timeout: Option<Duration>,
        report: F,
    ) -> io::Result<()> {
        let kq = self.kq.get()?;
        // An fd the backend reports itself is always ready: do not sleep
        // while there is one.
        let timeout = if self.ledger.reports_own() {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        let ts = timeout.map(timespec);
        let events = &mut self.events.0;
        let len = events.len();
        // The ledger decides how many events to ask for (every filter when
        // every fd fits in the caller's `Ready`, else at most `max` reports
        // in all, so that the kernel's rotation reaches every fd: see
        // `kf::plan`) and adds the fds it reports itself.
        self.ledger.wait(
            max,
            len,
            |n| {
                let buf = events.get_mut(..n.min(len)).unwrap_or_default();
                let got = kevent_wait(kq, buf, ts.as_ref())?;
                Ok(got.iter().filter_map(returned))
            },
            report,
        )
    }

    /// Drops what the ledger reports for registrations the selector no
    /// longer holds (there should be none: deleting or closing an fd
    /// removes its filters, and `unregister` its entry), so that such an
    /// entry cannot turn every wait into a poll. The kernel holds nothing
    /// the selector cannot remove.
    fn rebuild(&mut self, live: impl Iterator<Item = Registration> + Clone) -> io::Result<()> {
        if self.ledger.reports_own() {
            self.ledger.retain_live(live.map(|r| (r.fd, r.tag)));
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
        let kq = Kqueue::open(4).unwrap();
        assert!(
            rustix::io::fcntl_getfd(kq.kq.get().unwrap())
                .unwrap()
                .contains(FdFlags::CLOEXEC)
        );
        assert_eq!(kq.fileno(), Some(kq.as_fd().as_raw_fd()));
        // Two filters per key.
        assert_eq!(kq.events.len(), 8);
        assert_eq!(Kqueue::open(0).unwrap().events.len(), 1);
    }

    #[test]
    fn reports_each_filter_with_its_tag_level_triggered() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let fd = b.as_raw_fd();
        let mut kq = Kqueue::open(4).unwrap();
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
    fn a_peer_close_is_reported_readable() {
        let (a, b) = UnixStream::pair().unwrap();
        let fd = b.as_raw_fd();
        let mut kq = Kqueue::open(4).unwrap();
        kq.register(fd, R, t(1)).unwrap();
        drop(a);
        let got = reports(&mut kq, Duration::from_secs(5));
        assert_eq!(got, [(fd, 1, Readiness::READABLE)]);
    }

    /// Fills `s`'s send buffer (the peer reads nothing).
    fn fill(mut s: &UnixStream) {
        s.set_nonblocking(true).unwrap();
        let chunk = [0u8; 4096];
        while s.write(&chunk).is_ok() {}
    }

    /// `EV_EOF` is per direction: the peer's half-close is READ only (with
    /// our send buffer full, a write would block), our own
    /// `shutdown(SHUT_WR)` WRITE only (nothing to read).
    #[test]
    fn eof_is_reported_for_its_direction_only() {
        use std::net::Shutdown;
        let (a, b) = UnixStream::pair().unwrap();
        let fd = b.as_raw_fd();
        let mut kq = Kqueue::open(4).unwrap();
        kq.register(fd, R | W, t(1)).unwrap();
        fill(&b);
        assert!(reports(&mut kq, ZERO).is_empty());
        a.shutdown(Shutdown::Write).unwrap();
        let got = reports(&mut kq, Duration::from_secs(5));
        assert_eq!(got, [(fd, 1, Readiness::READABLE)], "peer's half-close");

        let (_a, b) = UnixStream::pair().unwrap();
        let fd = b.as_raw_fd();
        let mut kq = Kqueue::open(4).unwrap();
        kq.register(fd, R | W, t(2)).unwrap();
        b.shutdown(Shutdown::Write).unwrap();
        let got = reports(&mut kq, Duration::from_secs(5));
        assert_eq!(got, [(fd, 2, Readiness::WRITABLE)], "our own shutdown");
    }

    #[test]
    fn an_empty_kqueue_sleeps_for_the_timeout() {
        for capacity in [0, 4] {
            let mut kq = Kqueue::open(capacity).unwrap();
            let start = Instant::now();
            assert!(reports(&mut kq, Duration::from_millis(50)).is_empty());
            assert!(start.elapsed() >= Duration::from_millis(50));
        }
    }

    #[test]
    fn unregister_after_close_succeeds_or_is_gone() {
        let (_a, b) = UnixStream::pair().unwrap();
        let fd = b.as_raw_fd();
        let mut kq = Kqueue::open(4).unwrap();
        kq.register(fd, R | W, t(1)).unwrap();
        drop(b);
        // EBADF, or nothing to delete (ENOENT, tolerated) if another test
        // thread got the number meanwhile.
        if let Err(e) = kq.unregister(fd, S, R | W) {
            assert!(kq.is_gone(&e), "{e}");
        }
    }

    #[test]
    fn a_pipe_whose_reader_is_gone_is_writable() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        drop(r);
        let fd = w.as_raw_fd();
        let mut kq = Kqueue::open(4).unwrap();
        kq.register(fd, W, t(3)).unwrap();
        let start = Instant::now();
        assert_eq!(
            reports(&mut kq, Duration::from_secs(5)),
            [(fd, 3, kf::BROKEN)]
        );
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(reports(&mut kq, ZERO), [(fd, 3, kf::BROKEN)]);
        kq.unregister(fd, S, W).unwrap();
        assert_eq!(kq.ledger.own_len(), 0);
        assert!(reports(&mut kq, ZERO).is_empty());
    }

    /// A pipe's writer registered before its reader closes is reported
    /// writable by every wait after the close: FreeBSD drops the write
    /// filter after one `EV_EOF | EV_ONESHOT` report, and the backend keeps
    /// reporting it; macOS reports it level-triggered by itself. A WRITE
    /// deleted by `modify` (the kernel's delete finds nothing on FreeBSD)
    /// ends it.
    #[test]
    fn a_pipe_writer_stays_writable_after_the_reader_closes() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let fd = w.as_raw_fd();
        let mut kq = Kqueue::open(4).unwrap();
        kq.register(fd, W, t(5)).unwrap();
        assert_eq!(reports(&mut kq, ZERO), [(fd, 5, Readiness::WRITABLE)]);
        drop(r);
        for _ in 0..3 {
            let got = reports(&mut kq, Duration::from_secs(5));
            assert_eq!(got, [(fd, 5, Readiness::WRITABLE)]);
        }
        kq.modify(fd, S, W, R, t(5)).unwrap();
        assert_eq!(kq.ledger.own_len(), 0);
        kq.unregister(fd, S, R).unwrap();
        assert!(reports(&mut kq, ZERO).is_empty());
    }

    /// One wait returns both filters of every key when the caller's
    /// `Ready` holds every key.
    #[test]
    fn one_wait_returns_every_filter_of_every_key() {
        let pairs: Vec<_> = (0..40).map(|_| UnixStream::pair().unwrap()).collect();
        let mut kq = Kqueue::open(64).unwrap();
        for (i, (a, b)) in pairs.iter().enumerate() {
            (&*a).write_all(b"x").unwrap();
            kq.register(b.as_raw_fd(), R | W, t(i as u32 + 1)).unwrap();
        }
        let mut n = 0;
        kq.wait(64, Some(ZERO), |_, _, _| n += 1).unwrap();
        assert_eq!(n, 80);
    }

    /// In a child after `fork`, the inherited kqueue acts closed: calls
    /// fail with EBADF, `fileno` is `None`, and drop leaves alone the file
    /// the child put under its number. The child makes only
    /// async-signal-safe calls (no allocation) and leaves with `_exit`.
    #[test]
    fn a_child_after_fork_neither_uses_nor_closes_the_number() {
        let (_a, b) = UnixStream::pair().unwrap();
        let mut kq = Kqueue::open(4).unwrap();
        let number = kq.as_fd().as_raw_fd();
        let other = b.as_raw_fd();
        // SAFETY: see the doc comment: the child only makes
        // async-signal-safe calls and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let mut code = 0;
            let ebadf =
                |r: io::Result<()>| r.err().and_then(|e| e.raw_os_error()) == Some(libc::EBADF);
            if !ebadf(kq.register(other, R, t(1)).map(|_| ())) {
                code |= 1;
            }
            if !ebadf(kq.wait(4, Some(ZERO), |_, _, _| {})) {
                code |= 2;
            }
            if kq.fileno().is_some() {
                code |= 4;
            }
            // The child's next file takes the number (FreeBSD: it is free;
            // macOS: closed on fork); make it so, then drop the selector.
            // SAFETY: dup2 and fcntl on numbers, no memory involved.
            if unsafe { libc::dup2(other, number) } != number {
                code |= 8;
            }
            let Kqueue { kq, events, ledger } = kq;
            drop(kq);
            // Freeing memory is not async-signal-safe: leave it.
            std::mem::forget((events, ledger));
            // SAFETY: as above.
            if unsafe { libc::fcntl(number, libc::F_GETFD) } == -1 {
                code |= 16;
            }
            // SAFETY: leaves the child at once.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked, into a local.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status));
        assert_eq!(libc::WEXITSTATUS(status), 0, "bits: see the child");
        // The parent's is untouched.
        assert_eq!(kq.fileno(), Some(number));
        kq.register(other, R, t(1)).unwrap();
    }

    #[test]
    fn refused_changes_are_rolled_back() {
        // A kqueue fd takes EVFILT_READ (readable while it holds events)
        // and refuses EVFILT_WRITE with EINVAL.
        let mut inner = Kqueue::open(4).unwrap();
        let ifd = inner.fileno().unwrap();
        let (_a, b) = UnixStream::pair().unwrap();
        inner.register(b.as_raw_fd(), W, t(1)).unwrap();
        let mut kq = Kqueue::open(4).unwrap();

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

//! The kqueue backend's decisions: which filters an interest needs, which
//! changes `register`, `modify` and `unregister` submit and how a
//! half-applied list is undone, what each change's receipt means, what a
//! returned kevent reports, how a wait is shared between the kernel and
//! the fds the backend reports itself ([`Ledger`]), and which process owns
//! the kqueue ([`ProcessFd`], for `fork`).
//!
//! No kqueue types: this module builds, and its tests run, on every unix
//! (Linux included), where a model of the kernel over `SimBackend` checks
//! the wait logic end to end, while `kqueue.rs`, which exists only where
//! kqueue does, turns these decisions into `kevent` calls.

// Everything here serves `kqueue.rs`; elsewhere only the tests use it.
#![cfg_attr(not(has_kqueue), allow(dead_code))]

use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use selectors2_core::{Events, RawFd, Readiness, Tag};

/// A kqueue filter. One per event: `EVFILT_READ` for READ, `EVFILT_WRITE`
/// for WRITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Filter {
    /// `EVFILT_READ`.
    Read,
    /// `EVFILT_WRITE`.
    Write,
}

/// What a change does to its filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// `EV_ADD`: install the filter (level-triggered: no `EV_CLEAR`, no
    /// `EV_ONESHOT`).
    Add,
    /// `EV_DELETE`: remove it.
    Delete,
}

/// One entry of a change list, for the fd at hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) action: Action,
    pub(crate) filter: Filter,
}

impl Change {
    const fn new(action: Action, filter: Filter) -> Change {
        Change { action, filter }
    }

    /// The change that reverses this one.
    const fn inverse(self) -> Change {
        let action = match self.action {
            Action::Add => Action::Delete,
            Action::Delete => Action::Add,
        };
        Change::new(action, self.filter)
    }
}

/// What one `kevent` call submits: at most one change per filter, so at
/// most two. Kept on the stack: `register`, `modify` and `unregister`
/// allocate nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Changes {
    items: [Change; 2],
    len: usize,
}

impl Changes {
    const fn new() -> Changes {
        let filler = Change::new(Action::Add, Filter::Read);
        Changes {
            items: [filler; 2],
            len: 0,
        }
    }

    #[inline]
    fn push(&mut self, change: Change) {
        // One change per filter, two filters: never more than two, and a
        // bug here must not write out of bounds.
        debug_assert!(self.len < self.items.len());
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = change;
            self.len += 1;
        }
    }

    /// The changes, in submission order.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[Change] {
        &self.items[..self.len]
    }

    /// How many changes there are (0, 1 or 2).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// The filters `interest` needs, `EVFILT_READ`'s first.
#[inline]
pub(crate) fn filters(interest: Events) -> impl Iterator<Item = Filter> {
    [(Events::READ, Filter::Read), (Events::WRITE, Filter::Write)]
        .into_iter()
        .filter(move |&(event, _)| interest.contains(event))
        .map(|(_, filter)| filter)
}

/// What `modify(old → new)` must change: `(adds, deletes)`, the events
/// whose filters to add and to delete. An event in both `old` and `new`
/// keeps its filter untouched (the generation tag does not change across
/// a `modify`, so its `udata` is still right).
#[inline]
pub(crate) fn changes(old: Events, new: Events) -> (Events, Events) {
    (new.difference(old), old.difference(new))
}

/// The change list that adds the filters of `adds` and deletes those of
/// `deletes` (adds first; each change is applied and answered on its own).
#[inline]
pub(crate) fn change_list(adds: Events, deletes: Events) -> Changes {
    let mut list = Changes::new();
    for filter in filters(adds) {
        list.push(Change::new(Action::Add, filter));
    }
    for filter in filters(deletes) {
        list.push(Change::new(Action::Delete, filter));
    }
    list
}

/// What the receipt of one change says. With `EV_RECEIPT`, `kevent`
/// answers every change with an `EV_ERROR` event whose `data` is 0 (done)
/// or the errno the change failed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Receipt {
    /// The change was applied.
    Applied,
    /// An `EVFILT_WRITE` add refused with `EPIPE`: the fd is the write end
    /// of a pipe whose read end is closed. FreeBSD, DragonFly and older
    /// macOS releases refuse the filter and install nothing (current XNU
    /// installs it and reports `EV_EOF` at once). The state is final: a
    /// write fails at once with `EPIPE`, which is what "writable" promises,
    /// and the reader cannot come back. So the registration is accepted and
    /// the backend reports the fd writable and hung up by itself, as
    /// current macOS does, and as poll (`POLLHUP`) and epoll (`EPOLLERR`)
    /// report such a pipe.
    Broken,
    /// A delete found no filter (`ENOENT`): it was never installed (see
    /// [`Broken`](Self::Broken)), the kernel dropped it after a last
    /// report (see [`Ledger`]), or the fd was closed, which removes its
    /// filters, and the number reused. Nothing left to remove.
    Absent,
    /// The change was refused with this errno.
    Failed(i32),
}

/// Reads the receipt (`data`: 0 or an errno) of `change`. Tolerated
/// errors become [`Receipt::Broken`] (`EPIPE` on a write add) and
/// [`Receipt::Absent`] (`ENOENT` on a delete).
#[inline]
pub(crate) fn receipt(change: Change, data: i64) -> Receipt {
    if data == 0 {
        return Receipt::Applied;
    }
    let errno = i32::try_from(data).unwrap_or(libc::EINVAL);
    match (change.action, change.filter) {
        (Action::Add, Filter::Write) if errno == libc::EPIPE => Receipt::Broken,
        (Action::Delete, _) if errno == libc::ENOENT => Receipt::Absent,
        _ => Receipt::Failed(errno),
    }
}

/// The errno of the first change that was refused, if any.
#[inline]
pub(crate) fn first_failure(receipts: &[Receipt]) -> Option<i32> {
    receipts.iter().find_map(|r| match *r {
        Receipt::Failed(errno) => Some(errno),
        _ => None,
    })
}

/// What puts the filters back after a change list failed part-way: the
/// inverse of every change that was applied (a broken write add or an
/// absent delete changed nothing, so there is nothing to reverse).
#[cold]
pub(crate) fn undo(changes: &[Change], receipts: &[Receipt]) -> Changes {
    let mut list = Changes::new();
    for (change, receipt) in changes.iter().zip(receipts) {
        if *receipt == Receipt::Applied {
            list.push(change.inverse());
        }
    }
    list
}

/// Whether an undo left the filters other than they were: the errno that
/// kept it from putting everything back, from its receipts (`Ok`) or from
/// the whole call (`Err`). `None` when it restored everything, or when the
/// fd was closed meanwhile (`EBADF`), which removed its filters: then
/// nothing is left behind either way.
#[cold]
pub(crate) fn not_undone(undo: Result<&[Receipt], i32>) -> Option<i32> {
    let errno = match undo {
        Ok(receipts) => first_failure(receipts)?,
        Err(errno) => errno,
    };
    (errno != libc::EBADF).then_some(errno)
}

/// What a kevent returned by a wait says, in plain values (`kqueue.rs`
/// reads them off the kernel's `struct kevent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Returned {
    /// The fd (`ident`).
    pub(crate) fd: RawFd,
    /// Which of our filters reported.
    pub(crate) filter: Filter,
    /// The registration's tag, from `udata`.
    pub(crate) tag: Tag,
    /// `EV_EOF`: this filter's direction is shut (see [`readiness`]).
    pub(crate) eof: bool,
    /// `EV_ERROR`.
    pub(crate) error: bool,
    /// `EV_ONESHOT`, which this backend never asks for: the kernel
    /// detached the filter and dropped it with this report (see
    /// [`Ledger::wait`]).
    pub(crate) oneshot: bool,
    /// `fflags`: with `EV_EOF` on a socket, its pending error (`so_error`).
    pub(crate) fflags: u32,
}

/// What a returned kevent reports: its filter's event, plus `ERROR` for
/// `EV_ERROR` or for `EV_EOF` with a socket error in `fflags`.
///
/// `EV_EOF` alone is not a hang-up: it says that *this filter's*
/// direction is shut. On `EVFILT_READ` the receive side (the peer's
/// `shutdown(SHUT_WR)` or close: a read returns 0, which READ promises);
/// on `EVFILT_WRITE` the send side (our own `shutdown(SHUT_WR)`, or a
/// pipe's reader gone: a write fails at once, which WRITE promises).
/// Mapping it to `HANGUP`, which counts as both events, would report WRITE
/// after a peer's half-close (a write may block) and READ after our own
/// shutdown (nothing to read), where epoll (no `EPOLLRDHUP` asked for),
/// poll and CPython's `KqueueSelector` report the one direction.
#[inline]
pub(crate) fn readiness(ev: &Returned) -> Readiness {
    let mut r = match ev.filter {
        Filter::Read => Readiness::READABLE,
        Filter::Write => Readiness::WRITABLE,
    };
    r.set(Readiness::ERROR, ev.error || (ev.eof && ev.fflags != 0));
    r
}

/// What a broken pipe ([`Receipt::Broken`]) reports on every wait: what
/// the kernels' `EVFILT_WRITE` reports for it (`EV_EOF`, no error), as
/// current macOS does by itself.
pub(crate) const BROKEN: Readiness = Readiness::WRITABLE;

/// The `udata` of a registration: its generation tag. A pointer-sized
/// integer holds a `u32` on every target, 32-bit ones included.
#[inline]
pub(crate) const fn udata(tag: Tag) -> usize {
    tag.to_bits() as usize
}

/// The generation tag back from a returned kevent's `udata`.
#[inline]
pub(crate) const fn tag(udata: usize) -> Tag {
    Tag::from_bits(udata as u32)
}

/// The event buffer's length for a key table of `capacity` keys: two
/// events per key, one per filter, so that one wait can return every
/// filter of every key (see [`plan`]), never 0.
#[inline]
pub(crate) fn buffer_len(capacity: usize) -> usize {
    capacity.saturating_mul(2).max(1)
}

/// How one wait is shared between the kernel and the reports the backend
/// makes itself ([`Ledger`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// How many events to ask the kernel for; 0: make no `kevent` call
    /// (only when there are reports of our own, which end the wait anyway).
    pub(crate) kernel: usize,
    /// How many reports the wait may make in all, the kernel's included;
    /// `usize::MAX`: no bound.
    pub(crate) room: usize,
}

/// How one wait is shared, for a caller that takes `max` fds, with `keys`
/// registrations, `own` entries the backend reports itself and a buffer of
/// `buffer_len` events; `turn` alternates between waits (see below).
///
/// * `max >= keys`: every fd fits in the caller's `Ready`, so nothing
///   overflows and the selector's fair pick never runs: ask for every
///   filter (two per key), so that one wait returns every ready key, as
///   Python's `select` and CPython's `KqueueSelector` (which sizes its
///   request by filters) do. Asking for `max` events here would return
///   only `max / 2` keys that are ready both ways.
/// * Otherwise at most `max` reports in all, so that a wait yields at most
///   `max` fds and rotation alone reaches every fd: the kernel moves each
///   level-triggered knote it returned to the back of its queue, and
///   rotating the backend's own entries likewise. A wait that yielded more
///   than `max` fds would hand the choice to the selector's fair pick,
///   which then cycles in step with the rotation over the same few fds and
///   starves the others (`SimBackend::set_kernel_batches` models it).
///   The backend's own entries get up to half of `max` (at least one),
///   the kernel the rest; with `max == 1` they take turns, wait by wait.
///   Room the kernel leaves unused goes to them too.
/// * Never a request for 0 events otherwise: a zero-length event list makes
///   `kevent` return at once, so an empty selector would not sleep.
#[inline]
pub(crate) fn plan(max: usize, keys: usize, own: usize, buffer_len: usize, turn: bool) -> Plan {
    let buffer_len = buffer_len.max(1);
    if max >= keys {
        return Plan {
            kernel: keys.saturating_mul(2).clamp(1, buffer_len),
            room: usize::MAX,
        };
    }
    let kernel = if own == 0 {
        max
    } else if max >= 2 {
        max - own.min(max / 2)
    } else if turn {
        return Plan {
            kernel: 0,
            room: max,
        };
    } else {
        max
    };
    Plan {
        kernel: kernel.clamp(1, buffer_len),
        room: max,
    }
}

/// One fd the backend reports by itself, without the kernel: a write
/// filter refused as a broken pipe ([`Receipt::Broken`]), or a filter the
/// kernel detached and dropped after its last report ([`Returned::oneshot`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Own {
    fd: RawFd,
    tag: Tag,
    /// What the read filter would report (empty: the kernel's filter, or
    /// none, serves READ).
    read: Readiness,
    /// The same for the write filter.
    write: Readiness,
}

/// The bookkeeping beside the kernel's filters: how many keys there are
/// and which fds the backend reports itself, and the wait that merges those
/// with the kernel's events ([`Ledger::wait`]).
///
/// Why it reports fds itself: the level-triggered contract says an fd that
/// stays ready is reported by every wait, and on two paths the kernel
/// stops. FreeBSD, DragonFly and older macOS refuse a write filter on a
/// pipe whose reader is gone (`EPIPE`); and when a pipe's reader closes
/// later, FreeBSD clears the writer's knote list, which marks the write
/// filter `EV_EOF | EV_ONESHOT`: it is reported once and then dropped (any
/// object that clears its knote list while our fd stays open does the
/// same). In both cases the state is final (the reader cannot come back),
/// so the backend goes on reporting what the kernel last said, as poll,
/// epoll and macOS do, until `modify` or `unregister` deletes that filter.
#[derive(Debug)]
pub(crate) struct Ledger {
    /// Registrations held: `register` adds one, an `unregister` that
    /// forgets the fd removes one.
    keys: usize,
    /// Allocated once: at most one entry per key.
    own: Vec<Own>,
    /// Where the next wait starts reporting `own` (rotation).
    cursor: usize,
    /// Alternates between waits while `own` and the kernel share a
    /// one-fd `Ready` (see [`plan`]).
    turn: bool,
    /// [`retain_live`](Self::retain_live) dropped an entry since the last
    /// [`take_dropped`](Self::take_dropped): the wait that met it did not
    /// sleep for it.
    dropped: bool,
}

impl Ledger {
    /// A ledger with room for `capacity` keys' entries.
    pub(crate) fn with_capacity(capacity: usize) -> std::io::Result<Ledger> {
        Ok(Ledger {
            keys: 0,
            own: super::vec_with_capacity(capacity.max(1))?,
            cursor: 0,
            turn: false,
            dropped: false,
        })
    }

    /// Makes room for a key table of `capacity` keys (allocates;
    /// `OutOfMemory` if that fails).
    pub(crate) fn reserve(&mut self, capacity: usize) -> std::io::Result<()> {
        super::reserve_total(&mut self.own, capacity)
    }

    /// Whether the backend has fds to report itself: then a wait must not
    /// sleep.
    #[inline]
    pub(crate) fn reports_own(&self) -> bool {
        !self.own.is_empty()
    }

    /// How many fds the backend reports itself.
    #[cfg(test)]
    pub(crate) fn own_len(&self) -> usize {
        self.own.len()
    }

    /// How many registrations it counts.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> usize {
        self.keys
    }

    /// `fd` was registered with `changes`, answered by `receipts` (none
    /// refused): a new key, and whatever an earlier registration of the
    /// number left here is stale.
    #[inline]
    pub(crate) fn registered(
        &mut self,
        fd: RawFd,
        tag: Tag,
        changes: &[Change],
        receipts: &[Receipt],
    ) {
        self.keys = self.keys.saturating_add(1);
        if self.reports_own() {
            self.forget_own(fd);
        }
        self.changed(fd, tag, changes, receipts);
    }

    /// `changes` to `fd`'s filters were answered by `receipts`: a filter
    /// deleted or installed afresh is the kernel's again, and a broken
    /// pipe's write filter becomes the backend's to report. Refused
    /// changes count for nothing: a failed change list is undone, and the
    /// undo's receipts are passed here in turn.
    #[inline]
    pub(crate) fn changed(
        &mut self,
        fd: RawFd,
        tag: Tag,
        changes: &[Change],
        receipts: &[Receipt],
    ) {
        for (change, receipt) in changes.iter().zip(receipts) {
            match (change.action, receipt) {
                (Action::Add, Receipt::Broken) => self.set_own(fd, tag, change.filter, BROKEN),
                (Action::Add, Receipt::Applied)
                | (Action::Delete, Receipt::Applied | Receipt::Absent)
                    if self.reports_own() =>
                {
                    self.clear_own(fd, change.filter);
                }
                _ => {}
            }
        }
    }

    /// `fd`'s key is gone (unregistered, or its fd closed).
    #[inline]
    pub(crate) fn unregistered(&mut self, fd: RawFd) {
        self.keys = self.keys.saturating_sub(1);
        if self.reports_own() {
            self.forget_own(fd);
        }
    }

    /// Keeps only the entries of live registrations: what `rebuild` does
    /// when the selector met a report no key owns, which an entry left
    /// by a registration the selector no longer holds would make on every
    /// wait (and every wait would then be a poll).
    pub(crate) fn retain_live(&mut self, live: impl Iterator<Item = (RawFd, Tag)> + Clone) {
        let before = self.own.len();
        self.own
            .retain(|e| live.clone().any(|(fd, tag)| fd == e.fd && tag == e.tag));
        self.dropped |= self.own.len() != before;
    }

    /// Whether [`retain_live`](Self::retain_live) dropped an entry since
    /// the last call: the wait that reported it did not sleep (the backend
    /// never sleeps while it has entries), so a `select` that found nothing
    /// then waits again for the time left.
    pub(crate) fn take_dropped(&mut self) -> bool {
        std::mem::take(&mut self.dropped)
    }

    #[cold]
    fn set_own(&mut self, fd: RawFd, tag: Tag, filter: Filter, r: Readiness) {
        let i = match self.own.iter().position(|e| e.fd == fd) {
            Some(i) => i,
            None => {
                // Within the capacity reserved: one entry per key.
                self.own.push(Own {
                    fd,
                    tag,
                    read: Readiness::empty(),
                    write: Readiness::empty(),
                });
                self.own.len() - 1
            }
        };
        let Some(e) = self.own.get_mut(i) else {
            return;
        };
        if e.tag != tag {
            // Left by an earlier registration of the number.
            *e = Own {
                fd,
                tag,
                read: Readiness::empty(),
                write: Readiness::empty(),
            };
        }
        match filter {
            Filter::Read => e.read = r,
            Filter::Write => e.write = r,
        }
    }

    /// O(entries), which is almost always 0.
    #[cold]
    fn clear_own(&mut self, fd: RawFd, filter: Filter) {
        if let Some(i) = self.own.iter().position(|e| e.fd == fd) {
            if let Some(e) = self.own.get_mut(i) {
                match filter {
                    Filter::Read => e.read = Readiness::empty(),
                    Filter::Write => e.write = Readiness::empty(),
                }
                if !(e.read.is_empty() && e.write.is_empty()) {
                    return;
                }
            }
            self.own.swap_remove(i);
        }
    }

    #[cold]
    fn forget_own(&mut self, fd: RawFd) {
        if let Some(i) = self.own.iter().position(|e| e.fd == fd) {
            self.own.swap_remove(i);
        }
    }

    /// One wait: asks `kernel(n)` for at most `n` events (it makes the
    /// `kevent` call, or the model's equivalent), reports each, then the
    /// backend's own entries in rotation, all within [`plan`]'s bounds for
    /// a caller that takes `max` fds. A returned event that carries
    /// `EV_ONESHOT` is reported and becomes the backend's own to report
    /// from then on (see [`Ledger`]).
    #[inline(always)]
    pub(crate) fn wait<I, E, F>(
        &mut self,
        max: usize,
        buffer_len: usize,
        kernel: impl FnOnce(usize) -> Result<I, E>,
        mut report: F,
    ) -> Result<(), E>
    where
        I: IntoIterator<Item = Returned>,
        F: FnMut(RawFd, Tag, Readiness),
    {
        let own = self.own.len();
        if own > 0 {
            self.turn = !self.turn;
        }
        let plan = plan(max, self.keys, own, buffer_len, self.turn);
        let mut got = 0usize;
        if plan.kernel > 0 {
            for ev in kernel(plan.kernel)? {
                got += 1;
                let r = readiness(&ev);
                if ev.oneshot {
                    self.set_own(ev.fd, ev.tag, ev.filter, r);
                }
                report(ev.fd, ev.tag, r);
            }
        }
        if self.reports_own() {
            self.report_own(plan.room.saturating_sub(got), &mut report);
        }
        Ok(())
    }

    /// Reports up to `room` of the backend's own entries, from where the
    /// last wait stopped.
    #[cold]
    fn report_own(&mut self, room: usize, report: &mut impl FnMut(RawFd, Tag, Readiness)) {
        let n = self.own.len();
        let take = room.min(n);
        let start = self.cursor % n.max(1);
        for k in 0..take {
            if let Some(e) = self.own.get((start + k) % n) {
                report(e.fd, e.tag, e.read | e.write);
            }
        }
        self.cursor = (start + take) % n.max(1);
    }
}

/// Which process a kqueue was opened in, to tell a child after `fork`.
///
/// Neither kernel gives a child the kqueue: FreeBSD's `fdcopy` skips it
/// (it is not passable) and XNU marks it close-on-fork. In the child its
/// number is free, and the next `open`, `socket` or `kqueue` takes it. A
/// selector the child inherited would then wait on, register into, or on
/// drop close whatever owns that number (a file the child opened, the
/// child's own new selector). So a kqueue remembers the process it was
/// born in and, anywhere else, acts closed: calls fail with `EBADF` and
/// drop leaves the number alone (CPython does the same since 3.12.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Born {
    /// The count of forks that led to this process, as the `pthread_atfork`
    /// child hook keeps it: a load of an atomic to check.
    Forks(u64),
    /// The process id, where the hook could not be installed (a check
    /// costs `getpid`, a system call on some kernels).
    Pid(u32),
}

/// Bumped in every child by the `pthread_atfork` hook: how many forks led
/// from the process that first opened a kqueue to this one.
static FORKS: AtomicU64 = AtomicU64::new(0);
/// Whether the hook is installed: one of the `HOOK_*` states.
static HOOK: AtomicU8 = AtomicU8::new(HOOK_NONE);
const HOOK_NONE: u8 = 0;
const HOOK_INSTALLING: u8 = 1;
const HOOK_INSTALLED: u8 = 2;
const HOOK_FAILED: u8 = 3;

/// The `pthread_atfork` child hook: only an atomic increment, which is
/// async-signal-safe, as a child of a multi-threaded process requires.
extern "C" fn count_fork() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// This process, as a kqueue opened now records it.
#[inline]
pub(crate) fn born() -> Born {
    if HOOK.load(Ordering::Acquire) == HOOK_INSTALLED {
        return Born::Forks(FORKS.load(Ordering::Relaxed));
    }
    install_hook()
}

/// Installs the hook once, without a lock: a child forked while another
/// thread held one would never see it released. A thread that finds the
/// hook being installed, or its installation failed, goes by the pid.
#[cold]
#[allow(unsafe_code)]
fn install_hook() -> Born {
    let won = HOOK
        .compare_exchange(
            HOOK_NONE,
            HOOK_INSTALLING,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok();
    if won {
        // SAFETY: registers a child handler that only increments an
        // atomic (see `count_fork`); no prepare or parent handler. The
        // function lives as long as the program.
        let ok = unsafe { libc::pthread_atfork(None, None, Some(count_fork)) } == 0;
        let state = if ok { HOOK_INSTALLED } else { HOOK_FAILED };
        HOOK.store(state, Ordering::Release);
        if ok {
            return Born::Forks(FORKS.load(Ordering::Relaxed));
        }
    }
    Born::Pid(std::process::id())
}

/// Whether a kqueue `born` there belongs to this process, given this
/// process's fork count and pid (injected by the tests; the pid is asked
/// only for [`Born::Pid`]).
#[inline]
pub(crate) fn same_process(born: Born, forks: u64, pid: impl FnOnce() -> u32) -> bool {
    match born {
        Born::Forks(n) => n == forks,
        Born::Pid(p) => p == pid(),
    }
}

/// An fd owned by the process that opened it, and by no other: in a child
/// after `fork` (see [`Born`]) it is unusable (`EBADF`) and dropping it
/// does not close the number, which the kernel did not copy and which may
/// name another file by then.
#[derive(Debug)]
pub(crate) struct ProcessFd {
    /// Closed by drop only where it is ours.
    fd: ManuallyDrop<OwnedFd>,
    born: Born,
}

impl ProcessFd {
    /// `fd`, owned by this process.
    pub(crate) fn new(fd: OwnedFd) -> ProcessFd {
        ProcessFd::born_in(fd, born())
    }

    /// `fd`, owned by the process `born` says (a test's stand-in for a
    /// parent).
    pub(crate) fn born_in(fd: OwnedFd, born: Born) -> ProcessFd {
        ProcessFd {
            fd: ManuallyDrop::new(fd),
            born,
        }
    }

    /// Whether this process owns the fd.
    #[inline]
    pub(crate) fn is_ours(&self) -> bool {
        same_process(self.born, FORKS.load(Ordering::Relaxed), std::process::id)
    }

    /// The fd, or `EBADF` in a process that does not own it.
    #[inline]
    pub(crate) fn get(&self) -> std::io::Result<BorrowedFd<'_>> {
        if self.is_ours() {
            Ok(self.fd.as_fd())
        } else {
            Err(closed())
        }
    }

    /// The fd, owned or not: for `AsFd`, which cannot fail (in a child it
    /// names whatever holds the number now, or nothing).
    #[inline]
    pub(crate) fn borrow_any(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for ProcessFd {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: `fd` is taken once, here, and never used again: `self`
        // is being dropped.
        let fd = unsafe { ManuallyDrop::take(&mut self.fd) };
        if self.is_ours() {
            drop(fd);
        } else {
            // Not ours: forget the number without closing it.
            let _ = fd.into_raw_fd();
        }
    }
}

/// What a call on a kqueue this process does not own fails with.
#[cold]
fn closed() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::EBADF)
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, FromRawFd};

    use super::*;

    const R: Events = Events::READ;
    const W: Events = Events::WRITE;
    const RW: Events = Events::READ.union(Events::WRITE);
    const NONE: Events = Events::empty();

    const ADD_R: Change = Change::new(Action::Add, Filter::Read);
    const ADD_W: Change = Change::new(Action::Add, Filter::Write);
    const DEL_R: Change = Change::new(Action::Delete, Filter::Read);
    const DEL_W: Change = Change::new(Action::Delete, Filter::Write);

    #[test]
    fn kqueue_one_filter_per_event() {
        let f = |e| filters(e).collect::<Vec<_>>();
        assert_eq!(f(R), [Filter::Read]);
        assert_eq!(f(W), [Filter::Write]);
        assert_eq!(f(RW), [Filter::Read, Filter::Write]);
        assert_eq!(f(NONE), []);
    }

    #[test]
    fn kqueue_modify_changes_only_what_differs() {
        let cases = [
            (R, W, W, R),
            (W, R, R, W),
            (R, RW, W, NONE),
            (W, RW, R, NONE),
            (RW, R, NONE, W),
            (RW, W, NONE, R),
        ];
        for (old, new, adds, deletes) in cases {
            assert_eq!(changes(old, new), (adds, deletes), "{old:?} -> {new:?}");
        }
        // Never called with old == new, but harmless: nothing to do.
        assert_eq!(changes(RW, RW), (NONE, NONE));
    }

    #[test]
    fn kqueue_change_lists() {
        assert_eq!(change_list(RW, NONE).as_slice(), [ADD_R, ADD_W]);
        assert_eq!(change_list(NONE, RW).as_slice(), [DEL_R, DEL_W]);
        let (adds, deletes) = changes(R, W);
        assert_eq!(change_list(adds, deletes).as_slice(), [ADD_W, DEL_R]);
        let (adds, deletes) = changes(RW, R);
        assert_eq!(change_list(adds, deletes).as_slice(), [DEL_W]);
        assert!(change_list(NONE, NONE).as_slice().is_empty());
    }

    #[test]
    fn kqueue_receipts() {
        for c in [ADD_R, ADD_W, DEL_R, DEL_W] {
            assert_eq!(receipt(c, 0), Receipt::Applied);
            assert_eq!(receipt(c, libc::EBADF.into()), Receipt::Failed(libc::EBADF));
        }
        assert_eq!(receipt(ADD_W, libc::EPIPE.into()), Receipt::Broken);
        assert_eq!(
            receipt(ADD_R, libc::EPIPE.into()),
            Receipt::Failed(libc::EPIPE)
        );
        assert_eq!(
            receipt(DEL_W, libc::EPIPE.into()),
            Receipt::Failed(libc::EPIPE)
        );
        assert_eq!(receipt(DEL_R, libc::ENOENT.into()), Receipt::Absent);
        assert_eq!(receipt(DEL_W, libc::ENOENT.into()), Receipt::Absent);
        assert_eq!(
            receipt(ADD_R, libc::ENOENT.into()),
            Receipt::Failed(libc::ENOENT)
        );
        assert_eq!(receipt(ADD_R, i64::MAX), Receipt::Failed(libc::EINVAL));

        let ok = [Receipt::Applied, Receipt::Broken, Receipt::Absent];
        assert_eq!(first_failure(&ok), None);
        let bad = [
            Receipt::Applied,
            Receipt::Failed(libc::ENOMEM),
            Receipt::Failed(libc::EBADF),
        ];
        assert_eq!(first_failure(&bad), Some(libc::ENOMEM));
    }

    #[test]
    fn kqueue_undo_reverses_only_what_was_applied() {
        use Receipt::*;
        // register(READ|WRITE): the write add failed, the read add is undone.
        let undone = undo(&[ADD_R, ADD_W], &[Applied, Failed(libc::EINVAL)]);
        assert_eq!(undone.as_slice(), [DEL_R]);
        // modify(READ -> WRITE): the add failed, the deleted read filter is restored.
        let undone = undo(&[ADD_W, DEL_R], &[Failed(libc::ENOMEM), Applied]);
        assert_eq!(undone.as_slice(), [ADD_R]);
        // modify(WRITE -> READ): the delete failed, the new read filter goes again.
        let undone = undo(&[ADD_R, DEL_W], &[Applied, Failed(libc::ENOMEM)]);
        assert_eq!(undone.as_slice(), [DEL_R]);
        // Nothing was changed by a broken add or an absent delete.
        let undone = undo(&[ADD_W, DEL_R], &[Broken, Failed(libc::ENOMEM)]);
        assert!(undone.as_slice().is_empty());
        let undone = undo(&[ADD_R, DEL_W], &[Failed(libc::EINVAL), Absent]);
        assert!(undone.as_slice().is_empty());
    }

    #[test]
    fn kqueue_an_undo_that_failed_is_told() {
        use Receipt::*;
        assert_eq!(not_undone(Ok(&[Applied])), None);
        assert_eq!(not_undone(Ok(&[Applied, Absent, Broken])), None);
        // XNU short of memory to re-add the filter a modify deleted.
        assert_eq!(not_undone(Ok(&[Failed(libc::ENOMEM)])), Some(libc::ENOMEM));
        assert_eq!(not_undone(Err(libc::ENOMEM)), Some(libc::ENOMEM));
        // Closed meanwhile: its filters are gone, nothing is left behind.
        assert_eq!(not_undone(Ok(&[Failed(libc::EBADF)])), None);
        assert_eq!(not_undone(Err(libc::EBADF)), None);
    }

    const TAG: Tag = Tag::from_bits(9);

    fn ev(fd: RawFd, filter: Filter) -> Returned {
        Returned {
            fd,
            filter,
            tag: TAG,
            eof: false,
            error: false,
            oneshot: false,
            fflags: 0,
        }
    }

    /// What a ledger reports by itself in one wait with a kernel that has
    /// nothing, `max` fds taken.
    fn own_reports(ledger: &mut Ledger, max: usize) -> Vec<(RawFd, Readiness)> {
        let mut got = Vec::new();
        ledger
            .wait(
                max,
                64,
                |_| Ok::<_, ()>(std::iter::empty()),
                |fd, _, r| got.push((fd, r)),
            )
            .unwrap();
        got.sort_by_key(|&(fd, r)| (fd, r.bits()));
        got
    }

    #[test]
    fn kqueue_ledger_tracks_broken_pipes_and_keys() {
        use Receipt::*;
        let mut l = Ledger::with_capacity(4).unwrap();
        l.registered(3, TAG, &[ADD_R, ADD_W], &[Applied, Applied]);
        assert_eq!((l.keys(), l.own_len()), (1, 0));
        // A write add refused as a broken pipe: reported by the backend.
        l.registered(4, TAG, &[ADD_R, ADD_W], &[Applied, Broken]);
        assert_eq!((l.keys(), l.own_len()), (2, 1));
        assert_eq!(own_reports(&mut l, 8), [(4, BROKEN)]);
        assert_eq!(own_reports(&mut l, 8), [(4, BROKEN)], "every wait");
        // Refused changes count for nothing.
        l.changed(4, TAG, &[DEL_W], &[Failed(libc::EBADF)]);
        assert_eq!(l.own_len(), 1);
        l.changed(4, TAG, &[DEL_R], &[Absent]);
        assert_eq!(l.own_len(), 1, "the read filter is the kernel's");
        // Deleting the write filter (found absent: never installed) ends it.
        l.changed(4, TAG, &[ADD_R, DEL_W], &[Applied, Absent]);
        assert_eq!(l.own_len(), 0);
        l.changed(4, TAG, &[ADD_W, DEL_R], &[Broken, Applied]);
        assert_eq!(l.own_len(), 1);
        // Undoing a register whose read add failed: the write add is taken back.
        l.changed(4, TAG, &[DEL_W], &[Applied]);
        assert_eq!(l.own_len(), 0);
        l.changed(4, TAG, &[ADD_W], &[Broken]);
        l.unregistered(4);
        assert_eq!((l.keys(), l.own_len()), (1, 0));
        l.unregistered(3);
        l.unregistered(3);
        assert_eq!(l.keys(), 0, "never below zero");
    }

    /// FreeBSD: a pipe's write filter comes back `EV_EOF | EV_ONESHOT` when
    /// the reader closes, and is gone. The ledger reports it from then on,
    /// until the filter is deleted; a new registration of the number starts
    /// clean.
    #[test]
    fn kqueue_a_one_shot_report_is_kept() {
        use Receipt::*;
        let mut l = Ledger::with_capacity(4).unwrap();
        l.registered(5, TAG, &[ADD_W], &[Applied]);
        let last = Returned {
            eof: true,
            oneshot: true,
            ..ev(5, Filter::Write)
        };
        let mut got = Vec::new();
        l.wait(8, 64, |_| Ok::<_, ()>([last]), |fd, _, r| got.push((fd, r)))
            .unwrap();
        assert_eq!(got[0], (5, Readiness::WRITABLE));
        assert_eq!(own_reports(&mut l, 8), [(5, Readiness::WRITABLE)]);
        assert_eq!(own_reports(&mut l, 8), [(5, Readiness::WRITABLE)]);
        // modify(WRITE -> READ): the delete finds nothing (ENOENT).
        l.changed(5, TAG, &[ADD_R, DEL_W], &[Applied, Absent]);
        assert!(own_reports(&mut l, 8).is_empty());
        // Without EV_ONESHOT nothing is kept: the kernel reports it again.
        let level = Returned {
            eof: true,
            ..ev(5, Filter::Read)
        };
        l.wait(8, 64, |_| Ok::<_, ()>([level]), |_, _, _| {})
            .unwrap();
        assert!(own_reports(&mut l, 8).is_empty());
        // A stale entry (earlier registration of the number) is dropped.
        l.wait(8, 64, |_| Ok::<_, ()>([last]), |_, _, _| {})
            .unwrap();
        l.unregistered(5);
        l.registered(5, Tag::from_bits(10), &[ADD_W], &[Applied]);
        assert!(own_reports(&mut l, 8).is_empty());
        // rebuild: entries no live registration owns go.
        let stale = last;
        let last = Returned {
            tag: Tag::from_bits(10),
            ..last
        };
        l.wait(8, 64, |_| Ok::<_, ()>([last]), |_, _, _| {})
            .unwrap();
        l.retain_live([(5, Tag::from_bits(10))].into_iter());
        assert_eq!(l.own_len(), 1);
        l.wait(8, 64, |_| Ok::<_, ()>([stale]), |_, _, _| {})
            .unwrap();
        assert_eq!(own_reports(&mut l, 8), [(5, Readiness::WRITABLE)]);
        l.retain_live([(5, TAG)].into_iter());
        assert_eq!(l.own_len(), 1);
        assert!(!l.take_dropped());
        l.retain_live([(6, TAG)].into_iter());
        assert_eq!(l.own_len(), 0);
        assert!(l.take_dropped());
        assert!(!l.take_dropped(), "cleared by the call");
    }

    /// `EV_EOF` is per direction, not a hang-up; an error is `EV_ERROR` or
    /// `EV_EOF` with a socket error in `fflags`.
    #[test]
    fn kqueue_readiness() {
        use Readiness as Rd;
        let read = ev(3, Filter::Read);
        let write = ev(3, Filter::Write);
        assert_eq!(readiness(&read), Rd::READABLE);
        assert_eq!(readiness(&write), Rd::WRITABLE);
        // The peer's half-close: READ only, as epoll reports it.
        let half_closed = Returned { eof: true, ..read };
        assert_eq!(readiness(&half_closed), Rd::READABLE);
        assert_eq!(readiness(&half_closed).to_events(RW), R);
        // Our own shutdown(SHUT_WR): WRITE only.
        let shut = Returned { eof: true, ..write };
        assert_eq!(readiness(&shut), Rd::WRITABLE);
        assert_eq!(readiness(&shut).to_events(RW), W);
        // A reset: EV_EOF with the socket error: both, as an error is.
        let reset = Returned {
            eof: true,
            fflags: libc::ECONNRESET as u32,
            ..read
        };
        assert_eq!(readiness(&reset), Rd::READABLE | Rd::ERROR);
        assert_eq!(readiness(&reset).to_events(RW), RW);
        // fflags without EV_EOF is not an error.
        assert_eq!(readiness(&Returned { fflags: 1, ..read }), Rd::READABLE);
        let error = Returned {
            error: true,
            ..write
        };
        assert_eq!(readiness(&error), Rd::WRITABLE | Rd::ERROR);
        assert_eq!(BROKEN, readiness(&shut));
        assert_eq!(BROKEN.to_events(W), W);
        assert_eq!(BROKEN.to_events(R), Events::empty());
        assert_eq!(readiness(&read).to_events(RW), R);
    }

    #[test]
    fn kqueue_udata_round_trips_the_tag() {
        for t in [0, 1, 0x8000_0000, u32::MAX].map(Tag::from_bits) {
            assert_eq!(tag(udata(t)), t);
        }
    }

    #[test]
    fn kqueue_buffer_holds_every_filter_and_is_never_zero() {
        assert_eq!(buffer_len(0), 1);
        assert_eq!(buffer_len(64), 128);
        assert_eq!(buffer_len(4096), 8192);
        assert_eq!(buffer_len(usize::MAX), usize::MAX);
    }

    #[test]
    fn kqueue_plan_asks_for_every_filter_when_every_fd_fits() {
        let len = buffer_len(64);
        let all = |kernel| Plan {
            kernel,
            room: usize::MAX,
        };
        // 40 keys, a Ready of 64: every filter of every key.
        assert_eq!(plan(64, 40, 0, len, false), all(80));
        assert_eq!(plan(64, 64, 0, len, false), all(128));
        assert_eq!(plan(1000, 64, 3, len, true), all(128));
        // No key: still one event, so that the wait sleeps.
        assert_eq!(plan(1, 0, 0, len, false), all(1));
        // More keys counted than the buffer holds: the buffer bounds it.
        assert_eq!(plan(usize::MAX, 100, 0, len, false), all(128));
    }

    #[test]
    fn kqueue_plan_bounds_the_reports_by_max_otherwise() {
        let len = buffer_len(64);
        let p = |kernel, room| Plan { kernel, room };
        // Nothing of our own: `max` events.
        assert_eq!(plan(1, 64, 0, len, false), p(1, 1));
        assert_eq!(plan(16, 64, 0, len, true), p(16, 16));
        assert_eq!(plan(0, 64, 0, len, false), p(1, 0));
        assert_eq!(plan(100, 1000, 0, 8, false), p(8, 100));
        // Our own entries take up to half, the kernel the rest.
        assert_eq!(plan(16, 64, 3, len, false), p(13, 16));
        assert_eq!(plan(16, 64, 30, len, false), p(8, 16));
        assert_eq!(plan(2, 64, 5, len, false), p(1, 2));
        assert_eq!(plan(3, 64, 5, len, false), p(2, 3));
        // A Ready of one: they take turns.
        assert_eq!(plan(1, 64, 1, len, false), p(1, 1));
        assert_eq!(plan(1, 64, 1, len, true), p(0, 1));
    }

    /// The kqueue backend's logic (change lists, receipts, [`Ledger`])
    /// over a `SimBackend` that behaves like the kernel: bounded batches
    /// that rotate, one report per filter, filters that report once and
    /// vanish (FreeBSD's `EV_ONESHOT` on a pipe whose reader closed), and
    /// pipes whose write filter is refused (`EPIPE`).
    struct Model {
        kernel: selectors2_core::SimBackend,
        ledger: Ledger,
        buffer_len: usize,
        /// Write ends whose reader is gone: adding a write filter fails
        /// with `EPIPE`.
        broken_pipes: Vec<RawFd>,
    }

    impl Model {
        fn new(capacity: usize) -> Model {
            let mut kernel = selectors2_core::SimBackend::new();
            kernel.set_kernel_batches(Some(|max| max));
            kernel.set_split_reports(true);
            Model {
                kernel,
                ledger: Ledger::with_capacity(capacity).unwrap(),
                buffer_len: buffer_len(capacity),
                broken_pipes: Vec::new(),
            }
        }

        /// What the kernel answers each of `changes` with.
        fn receipts(&self, fd: RawFd, changes: &Changes) -> [Receipt; 2] {
            let mut out = [Receipt::Applied; 2];
            let gone = self.kernel.vanished(fd);
            for (r, &c) in out.iter_mut().zip(changes.as_slice()) {
                let event = match c.filter {
                    Filter::Read => R,
                    Filter::Write => W,
                };
                *r = match c.action {
                    Action::Add if c.filter == Filter::Write && self.broken_pipes.contains(&fd) => {
                        receipt(c, libc::EPIPE.into())
                    }
                    Action::Delete if gone.contains(event) => receipt(c, libc::ENOENT.into()),
                    _ => Receipt::Applied,
                };
            }
            out
        }
    }

    impl selectors2_core::Backend for Model {
        type Error = selectors2_core::SimError;

        fn register(
            &mut self,
            fd: RawFd,
            interest: Events,
            tag: Tag,
        ) -> Result<selectors2_core::BackendSlot, Self::Error> {
            let changes = change_list(interest, NONE);
            let receipts = self.receipts(fd, &changes);
            self.kernel.register(fd, interest, tag)?;
            self.ledger
                .registered(fd, tag, changes.as_slice(), &receipts[..changes.len()]);
            Ok(selectors2_core::BackendSlot::NONE)
        }

        fn modify(
            &mut self,
            fd: RawFd,
            slot: selectors2_core::BackendSlot,
            old: Events,
            new: Events,
            tag: Tag,
        ) -> Result<(), Self::Error> {
            let (adds, deletes) = changes(old, new);
            let list = change_list(adds, deletes);
            let receipts = self.receipts(fd, &list);
            self.kernel.modify(fd, slot, old, new, tag)?;
            self.ledger
                .changed(fd, tag, list.as_slice(), &receipts[..list.len()]);
            Ok(())
        }

        fn unregister(
            &mut self,
            fd: RawFd,
            slot: selectors2_core::BackendSlot,
            interest: Events,
        ) -> Result<(), Self::Error> {
            let result = self.kernel.unregister(fd, slot, interest);
            if result.as_ref().is_ok_and(|()| true)
                || result.as_ref().is_err_and(|e| self.kernel.is_gone(e))
            {
                self.ledger.unregistered(fd);
            }
            result
        }

        fn is_gone(&self, e: &Self::Error) -> bool {
            self.kernel.is_gone(e)
        }

        fn wait<F: FnMut(RawFd, Tag, Readiness)>(
            &mut self,
            max: usize,
            timeout: Option<std::time::Duration>,
            report: F,
        ) -> Result<(), Self::Error> {
            let kernel = &mut self.kernel;
            self.ledger.wait(
                max,
                self.buffer_len,
                |n| {
                    let mut reports = Vec::new();
                    kernel.wait(n, timeout, |fd, tag, r| reports.push((fd, tag, r)))?;
                    let events = reports.into_iter().map(|(fd, tag, r)| {
                        let (filter, event) = if r.contains(Readiness::READABLE) {
                            (Filter::Read, R)
                        } else {
                            (Filter::Write, W)
                        };
                        let oneshot = kernel.vanished(fd).contains(event);
                        Returned {
                            oneshot,
                            tag,
                            ..ev(fd, filter)
                        }
                    });
                    Ok(events.collect::<Vec<_>>())
                },
                report,
            )
        }

        fn rebuild(
            &mut self,
            live: impl Iterator<Item = selectors2_core::Registration> + Clone,
        ) -> Result<(), Self::Error> {
            self.ledger.retain_live(live.map(|r| (r.fd, r.tag)));
            Ok(())
        }
    }

    type ModelSelector<const N: usize> = selectors2_core::Selector<Model, i32, N>;

    fn model<const N: usize>() -> ModelSelector<N> {
        selectors2_core::Selector::new(Model::new(N))
    }

    fn select<const N: usize, const M: usize>(
        sel: &mut ModelSelector<N>,
        ready: &mut selectors2_core::Ready<i32, M>,
    ) -> Vec<(RawFd, Events)> {
        sel.select(ready, Some(std::time::Duration::ZERO)).unwrap();
        let mut got: Vec<_> = ready.iter().map(|(k, e)| (k.fd, e)).collect();
        got.sort_by_key(|&(fd, _)| fd);
        got
    }

    /// Kqueue's batches reach every ready fd when they
    /// cannot all fit in one `Ready`: with read-only interests, `2 * max`
    /// events were `2 * max` fds and two of four fds starved at `M = 1`.
    #[test]
    fn kqueue_batches_starve_no_fd() {
        for interest in [R, W, RW] {
            let mut sel = model::<16>();
            for fd in 3..7 {
                sel.register(fd, interest, fd).unwrap();
                sel.backend_mut()
                    .kernel
                    .set_readiness(fd, Readiness::READABLE | Readiness::WRITABLE);
            }
            let mut ready = selectors2_core::Ready::<i32, 1>::new();
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..8 {
                seen.extend(select(&mut sel, &mut ready).into_iter().map(|(fd, _)| fd));
            }
            assert_eq!(seen, (3..7).collect(), "interest {interest:?}");
        }
    }

    /// One select returns every ready key that `Ready` holds, however many
    /// are ready both ways (a capacity of 64 and 40 keys: it returned 32
    /// when a wait asked for 64 events).
    #[test]
    fn kqueue_one_select_returns_every_ready_key() {
        let mut sel = model::<64>();
        for fd in 10..50 {
            sel.register(fd, RW, fd).unwrap();
            sel.backend_mut()
                .kernel
                .set_readiness(fd, Readiness::READABLE | Readiness::WRITABLE);
        }
        let mut ready = selectors2_core::Ready::<i32, 64>::new();
        let got = select(&mut sel, &mut ready);
        assert_eq!(got.len(), 40);
        assert!(got.iter().all(|&(_, e)| e == RW));
        // A smaller Ready: at most 16 fds a select, every fd in turn.
        let mut small = selectors2_core::Ready::<i32, 16>::new();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..5 {
            let got = select(&mut sel, &mut small);
            assert!(got.len() <= 16);
            seen.extend(got.into_iter().map(|(fd, _)| fd));
        }
        assert_eq!(seen, (10..50).collect());
    }

    /// Broken pipes reported beside the kernel's events starve no fd: one
    /// broken pipe (fd 3), fds 5 and 7 readable, a `Ready` of one. Reporting
    /// every broken pipe on every wait, beyond `max`, returned 3, 7, 3, 7...
    /// and never 5.
    #[test]
    fn kqueue_broken_pipes_starve_no_fd() {
        for (broken, readable, m) in [(&[3][..], &[5, 7][..], 1), (&[3, 4], &[5, 7, 9], 2)] {
            let mut sel = model::<16>();
            sel.backend_mut().broken_pipes.extend_from_slice(broken);
            for &fd in broken {
                sel.register(fd, W, fd).unwrap();
            }
            for &fd in readable {
                sel.register(fd, R, fd).unwrap();
                sel.backend_mut()
                    .kernel
                    .set_readiness(fd, Readiness::READABLE);
            }
            let mut seen = std::collections::BTreeMap::<RawFd, usize>::new();
            for _ in 0..20 {
                let got = if m == 1 {
                    select(&mut sel, &mut selectors2_core::Ready::<i32, 1>::new())
                } else {
                    select(&mut sel, &mut selectors2_core::Ready::<i32, 2>::new())
                };
                assert!(got.len() <= m);
                for (fd, e) in got {
                    let expected = if broken.contains(&fd) { W } else { R };
                    assert_eq!(e, expected);
                    *seen.entry(fd).or_default() += 1;
                }
            }
            let all: Vec<RawFd> = broken.iter().chain(readable).copied().collect();
            for fd in all {
                assert!(seen.get(&fd).is_some_and(|&n| n >= 3), "fd {fd}: {seen:?}");
            }
        }
    }

    /// FreeBSD drops a pipe's write filter after one `EV_EOF | EV_ONESHOT`
    /// report when the reader closes: the key is still reported writable
    /// by every select, as poll, epoll and macOS report it, until the
    /// interest drops WRITE.
    #[test]
    fn kqueue_a_filter_the_kernel_dropped_stays_reported() {
        let mut sel = model::<16>();
        sel.register(4, W, 4).unwrap();
        sel.register(6, RW, 6).unwrap();
        for fd in [4, 6] {
            let kernel = &mut sel.backend_mut().kernel;
            kernel.set_readiness(fd, Readiness::READABLE | Readiness::WRITABLE);
            kernel.set_one_shot(fd, W);
        }
        let mut ready = selectors2_core::Ready::<i32, 4>::new();
        for _ in 0..4 {
            assert_eq!(select(&mut sel, &mut ready), [(4, W), (6, RW)]);
        }
        assert_eq!(sel.backend().kernel.vanished(4), W, "the kernel's is gone");
        // WRITE dropped (the kernel's delete finds nothing): no more WRITE.
        sel.modify(6, R, 6).unwrap();
        sel.modify(4, R, 4).unwrap();
        assert_eq!(select(&mut sel, &mut ready), [(4, R), (6, R)]);
        // Asked again: a fresh filter, the kernel's.
        sel.modify(4, W, 4).unwrap();
        assert_eq!(select(&mut sel, &mut ready), [(4, W), (6, R)]);
        assert_eq!(sel.backend().ledger.own_len(), 0);
        sel.unregister(4).unwrap();
        sel.unregister(6).unwrap();
        assert!(select(&mut sel, &mut ready).is_empty());
    }

    #[test]
    fn kqueue_fork_guard_compares_generations() {
        assert!(same_process(Born::Forks(3), 3, || unreachable!()));
        assert!(!same_process(Born::Forks(3), 4, || unreachable!()));
        assert!(same_process(Born::Pid(77), 9, || 77));
        assert!(!same_process(Born::Pid(77), 0, || 78));
        // This process is the one a kqueue opened now records, twice over.
        let now = born();
        assert!(ProcessFd::born_in(rustix::pipe::pipe().unwrap().0, now).is_ours());
        assert_eq!(born(), now);
    }

    /// A non-blocking pipe: (read end, write end).
    fn pipe() -> (OwnedFd, OwnedFd) {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let flags = rustix::fs::fcntl_getfl(&r).unwrap();
        rustix::fs::fcntl_setfl(&r, flags | rustix::fs::OFlags::NONBLOCK).unwrap();
        (r, w)
    }

    /// Whether the pipe's only write end is closed: its reader sees EOF.
    fn writer_closed(r: &OwnedFd) -> bool {
        matches!(rustix::io::read(r, &mut [0u8; 1]), Ok(0))
    }

    /// With an injected generation: an fd opened in "another process"
    /// answers EBADF and is left open by drop; one of this process is
    /// usable and closed by drop.
    #[test]
    #[allow(unsafe_code)]
    fn kqueue_fork_guard_leaves_a_parents_fd_alone() {
        let (r, w) = pipe();
        let theirs = ProcessFd::born_in(w, Born::Forks(u64::MAX));
        assert!(!theirs.is_ours());
        let e = theirs.get().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
        let number = theirs.borrow_any().as_raw_fd();
        drop(theirs);
        assert!(!writer_closed(&r), "drop closed a number it does not own");
        // SAFETY: the guard forgot `number` without closing it: it is still
        // the pipe's write end, and nothing else owns it.
        drop(unsafe { OwnedFd::from_raw_fd(number) });
        assert!(writer_closed(&r));

        let (r, w) = pipe();
        let ours = ProcessFd::new(w);
        assert!(ours.get().is_ok());
        drop(ours);
        assert!(writer_closed(&r));
    }

    /// A real `fork`: in the child, the guard made in the parent refuses
    /// and leaves the fd open (it is a pipe, which the child does inherit,
    /// so a close would show); the parent's stays usable. The child makes
    /// only async-signal-safe calls, as the child of a threaded test
    /// harness must.
    #[test]
    #[allow(unsafe_code)]
    fn kqueue_fork_guard_in_a_real_child() {
        let (_r, w) = pipe();
        let guard = ProcessFd::new(w);
        assert!(guard.get().is_ok());
        let number = guard.borrow_any().as_raw_fd();
        // SAFETY: the child makes only async-signal-safe calls (an atomic
        // load, getpid, fcntl) and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let refused = guard.get().is_err();
            drop(guard);
            // SAFETY: fcntl on a number, no memory involved.
            let open = unsafe { libc::fcntl(number, libc::F_GETFD) } != -1;
            let code = if refused && open {
                0
            } else {
                1 + i32::from(refused)
            };
            // SAFETY: leaves the child at once, running nothing of the parent's.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked, into a local.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status));
        assert_eq!(libc::WEXITSTATUS(status), 0, "1: not refused; 2: closed");
        assert!(guard.get().is_ok(), "the parent's stays usable");
    }
}

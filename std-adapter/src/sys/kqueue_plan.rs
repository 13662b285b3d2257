//! The pure half of the kqueue backend: which filters an interest needs,
//! which changes `register`, `modify` and `unregister` submit and how a
//! half-applied list is undone, what each change's receipt means, and what
//! a returned kevent reports.
//!
//! Plain enums and integers only, no kqueue types: this module builds, and
//! its tests run, on every unix (Linux included), while `kqueue.rs`, which
//! exists only where kqueue does, turns these decisions into `kevent` calls.

// Everything here serves `kqueue.rs`; elsewhere only the tests use it.
#![cfg_attr(not(has_kqueue), allow(dead_code))]

use selectors2_core::{Events, Readiness, Tag};

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
    /// [`Broken`](Self::Broken)), or the fd was closed, which removes its
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

/// How applied changes move the fd in or out of the backend's list of
/// broken pipes (fds reported writable by the backend itself; see
/// [`Receipt::Broken`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Not affected.
    Keep,
    /// A write add came back broken: list the fd.
    Set,
    /// The write filter was deleted (or found absent): unlist the fd.
    Clear,
}

/// The [`Mark`] for `changes` answered by `receipts`. Refused changes
/// count for nothing: a failed change list is undone, and the undo's own
/// receipts are marked in turn.
#[inline]
pub(crate) fn mark(changes: &[Change], receipts: &[Receipt]) -> Mark {
    let mut mark = Mark::Keep;
    for (change, receipt) in changes.iter().zip(receipts) {
        if change.filter != Filter::Write {
            continue;
        }
        mark = match (change.action, receipt) {
            (Action::Add, Receipt::Broken) => Mark::Set,
            (Action::Delete, Receipt::Applied | Receipt::Absent) => Mark::Clear,
            _ => mark,
        };
    }
    mark
}

/// What a kevent returned by the wait reports: its filter's event, plus
/// `HANGUP` for `EV_EOF` (peer closed, or a pipe's other end gone) and
/// `ERROR` for `EV_ERROR`.
#[inline]
pub(crate) fn readiness(filter: Filter, eof: bool, error: bool) -> Readiness {
    let mut r = match filter {
        Filter::Read => Readiness::READABLE,
        Filter::Write => Readiness::WRITABLE,
    };
    r.set(Readiness::HANGUP, eof);
    r.set(Readiness::ERROR, error);
    r
}

/// What a broken pipe ([`Receipt::Broken`]) reports on every wait: what
/// current XNU's `EVFILT_WRITE` reports for it.
pub(crate) const BROKEN: Readiness = Readiness::WRITABLE.union(Readiness::HANGUP);

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

/// The event buffer's length for a key table of `capacity` keys: one
/// event per key, so that one wait can return every ready key (Python's
/// semantics), never 0.
#[inline]
pub(crate) fn buffer_len(capacity: usize) -> usize {
    capacity.max(1)
}

/// How many events one wait asks for when the caller takes `max` fds:
/// `max`, at most the buffer, and never 0 (a zero-length event list makes
/// `kevent` return at once, so an empty selector would not sleep).
///
/// Not `2 * max` for the read and write filters: the kernel moves each
/// level-triggered knote it returned to the back of its queue, and the
/// selector's fair pick among more than `max` fds would then cycle with
/// that rotation over the same few fds and starve the others (issue 9;
/// `SimBackend::set_kernel_batches` models it). With at most `max` events a
/// wait yields at most `max` fds, and the kernel's rotation alone reaches
/// every one.
#[inline]
pub(crate) fn batch(max: usize, buffer_len: usize) -> usize {
    max.min(buffer_len).max(1)
}

#[cfg(test)]
mod tests {
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
    fn kqueue_broken_pipe_marks() {
        use Receipt::*;
        assert_eq!(mark(&[ADD_R, ADD_W], &[Applied, Applied]), Mark::Keep);
        assert_eq!(mark(&[ADD_R, ADD_W], &[Applied, Broken]), Mark::Set);
        assert_eq!(mark(&[ADD_W, DEL_R], &[Broken, Applied]), Mark::Set);
        assert_eq!(mark(&[ADD_R, DEL_W], &[Applied, Absent]), Mark::Clear);
        assert_eq!(mark(&[DEL_R, DEL_W], &[Applied, Applied]), Mark::Clear);
        assert_eq!(mark(&[DEL_W], &[Failed(libc::EBADF)]), Mark::Keep);
        assert_eq!(mark(&[DEL_R], &[Absent]), Mark::Keep);
        // Undoing a register whose read add failed: the write add is taken back.
        assert_eq!(mark(&[DEL_W], &[Applied]), Mark::Clear);
    }

    #[test]
    fn kqueue_readiness() {
        use Readiness as Rd;
        assert_eq!(readiness(Filter::Read, false, false), Rd::READABLE);
        assert_eq!(readiness(Filter::Write, false, false), Rd::WRITABLE);
        assert_eq!(
            readiness(Filter::Read, true, false),
            Rd::READABLE | Rd::HANGUP
        );
        assert_eq!(
            readiness(Filter::Write, true, false),
            Rd::WRITABLE | Rd::HANGUP
        );
        assert_eq!(
            readiness(Filter::Write, false, true),
            Rd::WRITABLE | Rd::ERROR
        );
        assert_eq!(
            readiness(Filter::Read, true, true),
            Rd::READABLE | Rd::HANGUP | Rd::ERROR
        );
        assert_eq!(BROKEN, readiness(Filter::Write, true, false));
        // A read report wakes readers only; EOF wakes both, as in epoll.
        assert_eq!(readiness(Filter::Read, false, false).to_events(RW), R);
        assert_eq!(readiness(Filter::Read, true, false).to_events(RW), RW);
        assert_eq!(BROKEN.to_events(W), W);
    }

    #[test]
    fn kqueue_udata_round_trips_the_tag() {
        for t in [0, 1, 0x8000_0000, u32::MAX].map(Tag::from_bits) {
            assert_eq!(tag(udata(t)), t);
        }
    }

    #[test]
    fn kqueue_buffer_and_batch_are_never_zero() {
        assert_eq!(buffer_len(0), 1);
        assert_eq!(buffer_len(64), 64);
        assert_eq!(buffer_len(4096), 4096);
        assert_eq!(buffer_len(usize::MAX), usize::MAX);
        let len = buffer_len(64);
        assert_eq!(batch(0, len), 1);
        assert_eq!(batch(1, len), 1);
        assert_eq!(batch(64, len), 64);
        assert_eq!(batch(1000, len), 64);
        assert_eq!(batch(usize::MAX, len), 64);
        assert_eq!(batch(5, 1), 1);
    }

    /// issue 9, item 3: kqueue's batch, run through a `SimBackend` that
    /// behaves like the kernel (bounded batches that rotate, one report per
    /// filter), reaches every ready fd: with read-only interests, `2 * max`
    /// events were `2 * max` fds and two of four fds starved at `M = 1`.
    #[test]
    fn kqueue_batches_starve_no_fd() {
        use selectors2_core::{Ready, Selector, SimBackend};
        for interest in [R, W, RW] {
            let mut sel: Selector<SimBackend, i32, 16> = Selector::new(SimBackend::new());
            sel.backend_mut()
                .set_kernel_batches(Some(|max| batch(max, buffer_len(16))));
            sel.backend_mut().set_split_reports(true);
            for fd in 3..7 {
                sel.register(fd, interest, fd).unwrap();
                sel.backend_mut()
                    .set_readiness(fd, Readiness::READABLE | Readiness::WRITABLE);
            }
            let mut ready: Ready<i32, 1> = Ready::new();
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..8 {
                sel.select(&mut ready, Some(std::time::Duration::ZERO))
                    .unwrap();
                seen.extend(ready.iter().map(|(k, _)| k.fd));
            }
            assert_eq!(seen, (3..7).collect(), "interest {interest:?}");
        }
    }
}

//! [`Selector`] and [`SelectorInner`]: the key table and its state machine
//! over a [`Backend`].

use core::borrow::BorrowMut;
use core::marker::PhantomData;
use core::time::Duration;

use crate::key_map::{Entry, Probe, Slot};
use crate::{Backend, Error, Events, KeyMap, RawFd, Ready, Registration, SelectorKey, Tag};

/// Python's `selectors.BaseSelector`, allocation-free: register fds with an
/// interest and some data, then [`select`](SelectorInner::select) returns
/// the ready keys.
///
/// `B` is the readiness mechanism, `D` the user data kept with each key, and
/// `N` the fixed capacity of the key table, stored inline (any number of
/// keys in `1..=65536`, checked when the program is built). Every operation
/// is O(1) in the number of keys, and none allocates. [`Selector::new`] is
/// a `const fn` and the new selector is all-zero bytes but for the backend:
/// in a `static` it costs no flash for its table (it lands in `.bss`).
///
/// This is [`SelectorInner`] with an inline table; the methods are
/// documented there. Every failed call leaves the table and the backend as
/// they were.
///
/// ```
/// use core::time::Duration;
/// use selectors2_core::{EVENT_READ, EVENT_WRITE, Readiness, Ready, Selector, SimBackend};
///
/// let mut sel: Selector<SimBackend, &str, 64> = Selector::new(SimBackend::new());
/// sel.register(4, EVENT_READ, "listener").unwrap();
/// sel.register(5, EVENT_READ | EVENT_WRITE, "client").unwrap();
///
/// sel.backend_mut().set_readiness(4, Readiness::READABLE);
/// sel.backend_mut().set_readiness(5, Readiness::WRITABLE);
///
/// let mut ready: Ready<&str, 32> = Ready::new();
/// let n = sel.select(&mut ready, Some(Duration::from_secs(1))).unwrap();
/// assert_eq!(n, 2);
/// for (key, events) in &ready {
///     match key.data {
///         "listener" => assert_eq!(events, EVENT_READ),
///         "client" => assert_eq!(events, EVENT_WRITE),
///         _ => unreachable!(),
///     }
/// }
///
/// let old = sel.unregister(4).unwrap();
/// assert_eq!(old.data, "listener");
/// ```
///
/// A capacity outside `1..=65536` does not build:
///
/// ```compile_fail
/// use selectors2_core::{Selector, SimBackend};
/// let sel: Selector<SimBackend, u8, 0> = Selector::new(SimBackend::new());
/// ```
pub type Selector<B, D, const N: usize> = SelectorInner<B, D, KeyMap<D, [Slot<D>; N]>>;

/// The selector over any key-table storage `T`: the one body of code
/// behind [`Selector`] (an inline table of `N` slots) and behind a table
/// whose size is chosen at run time, in storage the caller provides: a
/// `&'static mut KeyMap<D, [Slot<D>; N]>`, any `&mut KeyMap<D>`, or the
/// std adapter's `Box<KeyMap<D>>` (allocated zeroed, so its pages become
/// resident only as keys are stored). `T` is anything that lends a
/// [`KeyMap<D>`](KeyMap); the core never allocates.
///
/// ```
/// use selectors2_core::{Events, KeyMap, SelectorInner, SimBackend, Slot};
///
/// // A table the caller owns (a `static` on a board, here a local).
/// let mut table: KeyMap<u8, [Slot<u8>; 64]> = KeyMap::new();
/// let mut sel = SelectorInner::with_table(SimBackend::new(), &mut table);
/// sel.register(3, Events::READ, 1).unwrap();
/// assert_eq!((sel.len(), sel.capacity()), (1, 64));
/// ```
pub struct SelectorInner<B: Backend, D, T> {
    map: T,
    /// The generation handed to the last registration (0: none yet, so
    /// that a new selector is zero bytes).
    last_tag: u32,
    /// Where the next overflowing `select` starts picking fds (fairness).
    cursor: RawFd,
    backend: B,
    _data: PhantomData<D>,
}

impl<B: Backend, D, const N: usize> SelectorInner<B, D, KeyMap<D, [Slot<D>; N]>> {
    /// An empty selector over `backend`, its key table of `N` keys stored
    /// inline (no allocation; it can live in a `static`, where its table
    /// takes `.bss`, not flash).
    pub const fn new(backend: B) -> Self {
        SelectorInner {
            map: KeyMap::new(),
            last_tag: 0,
            cursor: 0,
            backend,
            _data: PhantomData,
        }
    }
}

impl<B: Backend, D, T: BorrowMut<KeyMap<D>>> SelectorInner<B, D, T> {
    /// An empty selector over `backend`, its key table in `table` (emptied
    /// first, in O(keys it held)): see the type's docs.
    pub fn with_table(backend: B, mut table: T) -> Self {
        table.borrow_mut().clear();
        SelectorInner {
            map: table,
            last_tag: 0,
            cursor: 0,
            backend,
            _data: PhantomData,
        }
    }

    #[inline(always)]
    fn map(&self) -> &KeyMap<D> {
        self.map.borrow()
    }

    #[inline(always)]
    fn map_mut(&mut self) -> &mut KeyMap<D> {
        self.map.borrow_mut()
    }

    /// Starts watching `fd` for `events`, keeping `data` with it, and returns
    /// the new key.
    ///
    /// Checks, in Python's order: `events` is `READ`, `WRITE` or both
    /// ([`Error::InvalidEvents`]); `fd >= 0` and within the backend's limit
    /// ([`Error::InvalidFd`]); `fd` is not registered yet
    /// ([`Error::AlreadyRegistered`]); the table has room ([`Error::Full`]:
    /// its capacity, or the backend's [`key_limit`](Backend::key_limit) if
    /// lower). Then the backend registers it; if it refuses
    /// ([`Error::Backend`]), nothing changes.
    //
    // The hot paths (register, unregister, modify, select) are made inline
    // into the caller, so that the backend's system call is issued in the
    // caller's own frame: on some machines the first return from a frame
    // entered before a system call is far dearer than anything else on
    // the path (the kernel empties the return-stack buffer). Their common
    // case (the fd in its home slot) is inline too; the rare work (a walk
    // along a cluster, closing a gap, building an error) is out of line.
    // Making the common case's validation and bookkeeping calls of their
    // own instead cost more than it saved (the benches' docs).
    #[inline(always)]
    pub fn register(
        &mut self,
        fd: RawFd,
        events: Events,
        data: D,
    ) -> Result<&SelectorKey<D>, Error<B::Error>> {
        // One probe of the table for the whole call: the vacant slot is
        // where the key goes once the backend has accepted it.
        let at = self.place(fd, events)?;
        // Never zero (see `Entry::tag`): after `u32::MAX` comes 1.
        let tag = match self.last_tag.wrapping_add(1) {
            0 => 1,
            t => t,
        };
        let slot = match self.backend.register(fd, events, Tag::from_bits(tag)) {
            Ok(slot) => slot,
            Err(e) => return Err(Error::Backend(e)),
        };
        self.insert(at, SelectorKey { fd, events, data }, tag, slot)
    }

    /// The bookkeeping of `register`, after the backend accepted the key.
    #[inline(always)]
    fn insert(
        &mut self,
        at: usize,
        key: SelectorKey<D>,
        tag: u32,
        slot: crate::BackendSlot,
    ) -> Result<&SelectorKey<D>, Error<B::Error>> {
        self.last_tag = tag;
        let map = self.map.borrow_mut();
        let capacity = map.capacity();
        match map.insert_at(at, Entry::new(key, tag, slot)) {
            Some(entry) => Ok(&entry.key),
            // Cannot happen (the slot was vacant); no panic path.
            None => Err(full(capacity)),
        }
    }

    /// What [`register`](Self::register) would refuse before asking the
    /// backend, in the same order and with the same error: for a caller
    /// that acts first on `Full` (the std adapter grows its table).
    ///
    /// ```
    /// use selectors2_core::{Error, Events, Selector, SimBackend};
    ///
    /// let mut sel: Selector<SimBackend, (), 1> = Selector::new(SimBackend::new());
    /// assert_eq!(sel.check_register(3, Events::READ), Ok(()));
    /// sel.register(3, Events::READ, ()).unwrap();
    /// assert_eq!(sel.check_register(3, Events::READ), Err(Error::AlreadyRegistered(3)));
    /// assert_eq!(sel.check_register(4, Events::READ), Err(Error::Full { capacity: 1 }));
    /// ```
    pub fn check_register(&self, fd: RawFd, events: Events) -> Result<(), Error<B::Error>> {
        self.place(fd, events).map(drop)
    }

    /// Validation and the probe of `register`: the free slot for `fd`.
    #[inline(always)]
    fn place(&self, fd: RawFd, events: Events) -> Result<usize, Error<B::Error>> {
        self.check(fd, events)?;
        let map = self.map();
        let at = match map.probe(fd) {
            Probe::Found(_) => return Err(already_registered(fd)),
            Probe::Full => return Err(full(map.capacity())),
            // A table limited below its slots may have a vacant slot and
            // no room.
            Probe::Vacant(_) if map.len() >= map.capacity() => {
                return Err(full(map.capacity()));
            }
            Probe::Vacant(at) => at,
        };
        // A backend that watches fewer keys than the table holds (Windows
        // select) is full at its own limit.
        if let Some(limit) = self.backend.key_limit()
            && limit < map.capacity()
            && map.len() >= limit
        {
            return Err(full(limit));
        }
        Ok(at)
    }

    /// Stops watching `fd` and returns its key.
    ///
    /// If the backend says the fd is already gone
    /// ([`Backend::is_gone`]: it was closed before being unregistered,
    /// `EBADF`, and its number may since name another file, `ENOENT`, or
    /// for epoll one it cannot watch, `EPERM`/`EINVAL`), the key is still
    /// removed and returned, as in Python. Any other backend error leaves
    /// the key in place.
    #[inline(always)]
    pub fn unregister(&mut self, fd: RawFd) -> Result<SelectorKey<D>, Error<B::Error>> {
        let (at, slot, events) = self.locate(fd)?;
        if let Err(e) = self.backend.unregister(fd, slot, events)
            && !self.backend.is_gone(&e)
        {
            return Err(Error::Backend(e));
        }
        self.remove(at, fd)
    }

    /// Where `fd`'s key is, with what the backend needs to drop it.
    #[inline(always)]
    fn locate(&self, fd: RawFd) -> Result<(usize, crate::BackendSlot, Events), Error<B::Error>> {
        if fd < 0 {
            return Err(invalid_fd(fd));
        }
        let map = self.map();
        let Probe::Found(at) = map.probe(fd) else {
            return Err(not_registered(fd));
        };
        match map.entry(at) {
            Some(entry) => Ok((at, entry.slot, entry.key.events)),
            None => Err(not_registered(fd)),
        }
    }

    /// The bookkeeping of `unregister`, after the backend let go.
    #[inline(always)]
    fn remove(&mut self, at: usize, fd: RawFd) -> Result<SelectorKey<D>, Error<B::Error>> {
        match self.map_mut().remove_at(at) {
            Some(key) => Ok(key),
            None => Err(not_registered(fd)),
        }
    }

    /// Changes the events and data of a registered `fd`, and returns the
    /// new key.
    ///
    /// Validates like [`register`](Self::register) before touching
    /// anything, then: with new events it re-arms the backend registration;
    /// with the same events it only replaces the data, without calling the
    /// backend. A failed `modify` changes nothing: the old key and the old
    /// backend registration stay.
    #[inline(always)]
    pub fn modify(
        &mut self,
        fd: RawFd,
        events: Events,
        data: D,
    ) -> Result<&SelectorKey<D>, Error<B::Error>> {
        let (at, old, slot, tag) = self.locate_for_modify(fd, events)?;
        if old != events
            && let Err(e) = self.backend.modify(fd, slot, old, events, tag)
        {
            return Err(Error::Backend(e));
        }
        match self.update(at, events, data) {
            Some(key) => Ok(key),
            // Cannot happen (`at` holds the key); no panic path.
            None => Err(not_registered(fd)),
        }
    }

    /// Validation and the lookup of `modify`: where `fd`'s key is, with its
    /// interest and what the backend needs to re-arm it.
    #[inline(always)]
    fn locate_for_modify(
        &self,
        fd: RawFd,
        events: Events,
    ) -> Result<(usize, Events, crate::BackendSlot, Tag), Error<B::Error>> {
        self.check(fd, events)?;
        let map = self.map();
        let found = map.position(fd).and_then(|at| Some((at, map.entry(at)?)));
        match found {
            Some((at, e)) => Ok((at, e.key.events, e.slot, e.backend_tag())),
            None => Err(not_registered(fd)),
        }
    }

    /// The bookkeeping of `modify`, after the backend re-armed (or was not
    /// asked to: same events).
    #[inline(always)]
    fn update(&mut self, at: usize, events: Events, data: D) -> Option<&SelectorKey<D>> {
        let entry = self.map_mut().entry_mut(at)?;
        entry.key.events = events;
        entry.key.data = data;
        Some(&entry.key)
    }

    /// The key registered for `fd`, if any (Python raises `KeyError`; an
    /// `Option` says the same).
    #[inline]
    pub fn get_key(&self, fd: RawFd) -> Option<&SelectorKey<D>> {
        self.map().get(fd)
    }

    /// The read-only key table.
    #[inline]
    pub fn get_map(&self) -> &KeyMap<D> {
        self.map()
    }

    /// How many keys are registered.
    #[inline]
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no key is registered.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    /// How many keys the table holds (`N` for a [`Selector`]).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.map().capacity()
    }

    /// The backend.
    #[inline]
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, mutably (to drive a [`SimBackend`](crate::SimBackend),
    /// say). Changing registrations behind the selector's back breaks its
    /// guarantees.
    #[inline]
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Consumes the selector and returns its backend.
    #[inline]
    pub fn into_backend(self) -> B {
        self.backend
    }

    /// Moves every key into `table` (emptied first), over the same
    /// backend, and returns the table the keys were in, now empty: a
    /// selector whose table is full grows into a bigger one (the std
    /// adapter allocates it; the core never does).
    ///
    /// Each key keeps its fd, events, data and generation tag, so reports
    /// the backend makes afterwards reach the same keys, and reports left
    /// from earlier registrations of the same fd number are still dropped;
    /// iteration keeps its order; the fairness cursor carries over. The
    /// backend is not called: one with per-capacity parts of its own
    /// (buffers sized for the table) must be made ready by the caller.
    /// O(len) moves.
    ///
    /// Fails, changing nothing and handing `table` back, when it cannot
    /// hold every key.
    ///
    /// ```
    /// use selectors2_core::{Events, KeyMap, SelectorInner, SimBackend, Slot};
    ///
    /// let mut small: KeyMap<&str, [Slot<&str>; 2]> = KeyMap::new();
    /// let mut big: KeyMap<&str, [Slot<&str>; 16]> = KeyMap::new();
    /// let mut sel = SelectorInner::with_table(SimBackend::new(), &mut small as &mut KeyMap<&str>);
    /// sel.register(3, Events::READ, "a").unwrap();
    /// sel.register(9, Events::WRITE, "b").unwrap();
    /// assert!(sel.register(5, Events::READ, "c").is_err()); // Full
    ///
    /// let old = sel.replace_table(&mut big).unwrap();
    /// assert!(old.is_empty());
    /// sel.register(5, Events::READ, "c").unwrap();
    /// assert_eq!((sel.len(), sel.capacity()), (3, 16));
    /// assert_eq!(sel.get_key(9).unwrap().data, "b");
    /// ```
    #[cold]
    pub fn replace_table(&mut self, mut table: T) -> Result<T, T> {
        let to = table.borrow_mut();
        to.clear();
        if !self.map.borrow_mut().move_into(to) {
            return Err(table);
        }
        Ok(core::mem::replace(&mut self.map, table))
    }

    /// Waits until a registered fd is ready or `timeout` passes, then fills
    /// `ready` with one `(key, events)` entry per ready fd and returns how
    /// many there are.
    ///
    /// `ready` is cleared first. `events` is never empty and never holds an
    /// event the key did not ask for; an error or hang-up counts as both
    /// `READ` and `WRITE` (see [`Readiness::to_events`](crate::Readiness::to_events)).
    /// Reports the backend makes several times for one fd merge into one
    /// entry (a backend whose [`may_report_twice`](Backend::may_report_twice)
    /// says `false` promises not to make them, and is not checked); reports
    /// for fds not in the table, or from an earlier registration of the
    /// same fd number, are dropped.
    ///
    /// Level-triggered: an fd that stays ready is returned again. When more
    /// fds are ready than `ready` holds, the following calls return the
    /// others: each ready fd is returned within `ceil(ready_fds / M)` calls
    /// when the backend makes one report per fd, and within
    /// `ceil(reports / M)` when it makes several and bounds its batches to
    /// `M` reports (kqueue reports reading and writing separately: up to
    /// `ceil(2 * ready_fds / M)` calls).
    ///
    /// `timeout`: `None` blocks, zero polls, a positive one returns when
    /// something is ready or once that long has passed (rounded up to the
    /// backend's resolution, never down to zero). One exception: a wait
    /// that ended only for readiness no key owns (a registration the
    /// backend kept after its fd was closed, see
    /// [`Backend::rebuild`]) returns 0 early, whatever the timeout, after
    /// the backend has rebuilt. A caller that needs the whole wait waits
    /// again for the time left (the std adapter's `select` does).
    ///
    /// # Errors
    ///
    /// Only the backend's: `Err(e)` is what its [`wait`](Backend::wait)
    /// returned, and `ready` is left empty. So with a backend that cannot
    /// fail (`type Error = Infallible`, as a board's usually is) the result
    /// is used without `unwrap`, and no panic path is linked:
    ///
    /// ```
    /// use core::time::Duration;
    /// use selectors2_core::{Events, Fixed, Readiness, Ready, Selector, Sources};
    ///
    /// struct Button(bool);
    /// impl Sources for Button {
    ///     type Error = core::convert::Infallible;
    ///     fn readiness(&mut self, _: usize, _: Events) -> Readiness {
    ///         if self.0 { Readiness::READABLE } else { Readiness::empty() }
    ///     }
    ///     fn now(&mut self) -> Duration { Duration::ZERO }
    ///     fn sleep(&mut self, _: Option<Duration>) -> Result<(), Self::Error> { Ok(()) }
    /// }
    ///
    /// let mut sel: Selector<Fixed<Button, 1>, (), 1> = Selector::new(Fixed::new(Button(true)));
    /// sel.register(0, Events::READ, ()).unwrap();
    /// let mut ready: Ready<(), 1> = Ready::new();
    /// let Ok(n) = sel.select(&mut ready, None);
    /// assert_eq!(n, 1);
    /// ```
    ///
    /// Where the other calls' [`Error`] is wanted, `?` turns the backend's
    /// error into [`Error::Backend`].
    #[inline(always)]
    pub fn select<const M: usize>(
        &mut self,
        ready: &mut Ready<D, M>,
        timeout: Option<Duration>,
    ) -> Result<usize, B::Error>
    where
        D: Clone,
    {
        ready.clear();
        // Read only when `ready` overflows (by reference, so that the
        // common path does not load it).
        let cursor = &self.cursor;
        let map = self.map.borrow_mut();
        let merge = self.backend.may_report_twice();
        // What the wait met beyond the common case: a report no key owns
        // (`FOREIGN`), more ready keys than `ready` holds (`OVERFLOW`). One
        // word, so that the common case tests once after the wait.
        let mut cold = 0u8;
        let flags = &mut cold;
        let out = &mut *ready;
        // Inlined into the backend's loop over its events, in every arm of
        // a backend that dispatches (the std adapter's `DefaultSelector`):
        // a call per report costs more than the report.
        #[allow(clippy::inline_always)]
        let result = self.backend.wait(
            M,
            timeout,
            // `move`: `merge` is a copy, a constant once inlined for a
            // backend that always answers the same.
            #[inline(always)]
            move |fd, tag, readiness| {
                let Some(entry) = map.get_reported_mut(fd, tag) else {
                    *flags |= FOREIGN;
                    return;
                };
                let events = readiness.to_events(entry.key.events);
                if events.is_empty() {
                    return;
                }
                // A second report of an fd this call already put in `ready`
                // finds its key where `pos` says (the table does not change
                // during a wait, so the fd names this very entry, and `ready`
                // holds one entry per fd); a `pos` left by an earlier call
                // points past the end or at another fd. Once `ready` has
                // overflowed, entries have moved: then the search below finds it.
                if merge
                    && let Some(slot) = out.entries.get_mut(entry.pos as usize)
                    && slot.0.fd == fd
                {
                    slot.1 |= events;
                    return;
                }
                let len = out.entries.len();
                if len < M {
                    // Cannot fail: not full (and pushed before `pos` is
                    // written, so that the push's own check folds into ours).
                    // `fd` is the key's (the lookup compared them): the
                    // copy takes it from the register it is in.
                    let key = SelectorKey {
                        fd,
                        events: entry.key.events,
                        data: entry.key.data.clone(),
                    };
                    let _ = out.entries.push((key, events));
                    if merge {
                        entry.pos = len as u32;
                    }
                    return;
                }
                // Full (it stays full from here on): the fair pick, cold.
                if *flags & OVERFLOW == 0 {
                    *flags |= OVERFLOW;
                    farthest_last(&mut out.entries, *cursor);
                }
                admit_fairly(out, &entry.key, events, *cursor);
            },
        );
        if let Err(e) = result {
            ready.clear();
            return Err(e);
        }
        if cold != 0 {
            self.after_cold_wait(cold, ready);
        }
        Ok(ready.len())
    }

    /// The end of a `select` whose wait met a report no key owns (the
    /// backend rebuilds) or more ready keys than `ready` holds (the next
    /// call starts after the last fd admitted).
    #[cold]
    #[inline(never)]
    fn after_cold_wait<const M: usize>(&mut self, cold: u8, ready: &Ready<D, M>) {
        if cold & FOREIGN != 0 {
            self.rebuild_backend();
        }
        if cold & OVERFLOW != 0
            && let Some((last, _)) = ready.entries.last()
        {
            self.cursor = last.fd.wrapping_add(1);
        }
    }

    /// A wait reported something no key owns: let the backend drop what
    /// it holds beyond the table (see [`Backend::rebuild`]). A failure
    /// changes nothing and is not the select's: the live keys' reports are
    /// returned, and the next wait that meets the leftover asks again.
    #[cold]
    #[inline(never)]
    fn rebuild_backend(&mut self) {
        let map: &KeyMap<D> = self.map.borrow();
        let live = map.entries().map(|e| Registration {
            fd: e.key.fd,
            interest: e.key.events,
            tag: e.backend_tag(),
            slot: e.slot,
        });
        // Out of fds or memory now, say: the backend is as it was, and its
        // leftover is reported (and dropped) again by the next wait.
        let _ = self.backend.rebuild(live);
    }

    /// The one place that checks an interest mask and an fd.
    #[inline]
    fn check(&self, fd: RawFd, events: Events) -> Result<(), Error<B::Error>> {
        if !events.is_valid_interest() {
            return Err(invalid_events(events));
        }
        if fd < 0 || self.backend.fd_limit().is_some_and(|limit| fd >= limit) {
            return Err(invalid_fd(fd));
        }
        Ok(())
    }
}

impl<B, D, T> core::fmt::Debug for SelectorInner<B, D, T>
where
    B: Backend + core::fmt::Debug,
    D: core::fmt::Debug,
    T: BorrowMut<KeyMap<D>>,
{
    /// The backend, the capacity and the keys (not the table's slots).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Selector")
            .field("backend", &self.backend)
            .field("capacity", &self.capacity())
            .field("keys", &self.map())
            .finish_non_exhaustive()
    }
}

/// [`Selector::select`]'s wait met a report no key owns.
const FOREIGN: u8 = 1;
/// [`Selector::select`]'s wait met more ready keys than `ready` holds.
const OVERFLOW: u8 = 2;

/// Cyclic distance from the fairness cursor: the overflowing `select` keeps
/// the `M` ready fds closest after the cursor, then moves the cursor past
/// the last one kept, so successive calls sweep the whole ready set.
#[inline]
fn distance(cursor: RawFd, fd: RawFd) -> u32 {
    (fd as u32).wrapping_sub(cursor as u32)
}

/// `ready` just filled up, or its last entry was just replaced: move the
/// entry farthest from the cursor last, where [`admit_fairly`] compares
/// with it and the cursor update after the wait finds it. A linear scan
/// and one swap: `ready` need not be sorted, only its maximum known.
#[cold]
fn farthest_last<D>(entries: &mut [(SelectorKey<D>, Events)], cursor: RawFd) {
    let Some((last, rest)) = entries.split_last_mut() else {
        return;
    };
    let mut far_d = distance(cursor, last.0.fd);
    let mut far = None;
    for e in rest {
        let d = distance(cursor, e.0.fd);
        if d > far_d {
            (far_d, far) = (d, Some(e));
        }
    }
    if let Some(e) = far {
        core::mem::swap(e, last);
    }
}

/// More fds are ready than `ready` holds (and its farthest entry is last):
/// keep the `M` closest to the cursor.
///
/// A report of an fd already in `ready` merges into its entry (entries may
/// have moved since they were pushed: found by a search). One this call
/// turned away or pushed out before is turned away again: the farthest
/// distance kept only shrinks while `ready` overflows, and distances are
/// distinct.
#[cold]
fn admit_fairly<D: Clone, const M: usize>(
    ready: &mut Ready<D, M>,
    key: &SelectorKey<D>,
    events: Events,
    cursor: RawFd,
) {
    if let Some(slot) = ready
        .position(key.fd)
        .and_then(|p| ready.entries.get_mut(p))
    {
        slot.1 |= events;
        return;
    }
    let Some(last) = ready.entries.last_mut() else {
        return;
    };
    if distance(cursor, last.0.fd) <= distance(cursor, key.fd) {
        return;
    }
    // The farthest makes way, in place: no entry moves but by the swap.
    *last = (key.clone(), events);
    farthest_last(&mut ready.entries, cursor);
}

#[cold]
fn invalid_fd<E>(fd: RawFd) -> Error<E> {
    Error::InvalidFd(fd)
}

#[cold]
fn invalid_events<E>(events: Events) -> Error<E> {
    Error::InvalidEvents(events.bits())
}

#[cold]
fn already_registered<E>(fd: RawFd) -> Error<E> {
    Error::AlreadyRegistered(fd)
}

#[cold]
fn not_registered<E>(fd: RawFd) -> Error<E> {
    Error::NotRegistered(fd)
}

#[cold]
fn full<E>(capacity: usize) -> Error<E> {
    Error::Full { capacity }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{ReportOrder, SimError};
    use crate::{BackendSlot, Readiness, SimBackend};
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::{vec, vec::Vec};

    const R: Events = Events::READ;
    const W: Events = Events::WRITE;
    const RW: Events = Events::all();
    const ZERO: Option<Duration> = Some(Duration::ZERO);

    type Sim<const N: usize> = Selector<SimBackend, u32, N>;

    fn sim<const N: usize>() -> Sim<N> {
        Selector::new(SimBackend::new())
    }

    fn key_of(fd: RawFd, events: Events, data: u32) -> SelectorKey<u32> {
        SelectorKey { fd, events, data }
    }

    fn entries<const M: usize>(ready: &Ready<u32, M>) -> Vec<(RawFd, Events, u32)> {
        let mut v: Vec<_> = ready.iter().map(|(k, e)| (k.fd, e, k.data)).collect();
        v.sort();
        v
    }

    /// A backend that reports exactly what the test scripts, with the tag
    /// each fd was last registered with, plus raw reports for stale tags.
    #[derive(Default)]
    struct Script {
        tags: BTreeMap<RawFd, Tag>,
        ready: Vec<(RawFd, Readiness)>,
        raw: Vec<(RawFd, Tag, Readiness)>,
        max_seen: Vec<usize>,
        /// What `may_report_twice` answers: `true` (the default) unless set.
        twice: Option<bool>,
    }

    impl Backend for Script {
        type Error = ();
        fn may_report_twice(&self) -> bool {
            self.twice.unwrap_or(true)
        }
        fn register(&mut self, fd: RawFd, _: Events, tag: Tag) -> Result<BackendSlot, ()> {
            self.tags.insert(fd, tag);
            Ok(BackendSlot::new(fd as u32 * 10))
        }
        fn modify(
            &mut self,
            fd: RawFd,
            slot: BackendSlot,
            _: Events,
            _: Events,
            tag: Tag,
        ) -> Result<(), ()> {
            assert_eq!(slot.get(), fd as u32 * 10, "slot handed back");
            assert_eq!(self.tags.get(&fd), Some(&tag));
            Ok(())
        }
        fn unregister(&mut self, fd: RawFd, slot: BackendSlot, _: Events) -> Result<(), ()> {
            assert_eq!(slot.get(), fd as u32 * 10, "slot handed back");
            self.tags.remove(&fd).map(drop).ok_or(())
        }
        fn wait<F: FnMut(RawFd, Tag, Readiness)>(
            &mut self,
            max: usize,
            _: Option<Duration>,
            mut report: F,
        ) -> Result<(), ()> {
            self.max_seen.push(max);
            for &(fd, r) in &self.ready {
                report(fd, self.tags.get(&fd).copied().unwrap_or(Tag::NONE), r);
            }
            for &(fd, tag, r) in &self.raw {
                report(fd, tag, r);
            }
            Ok(())
        }
    }

    #[test]
    fn register_checks_in_python_order() {
        let mut sel: Sim<2> = sim();
        // Events are checked before the fd...
        assert_eq!(
            sel.register(-1, Events::empty(), 0),
            Err(Error::InvalidEvents(0))
        );
        assert_eq!(
            sel.register(-1, Events::from_bits_retain(4), 0),
            Err(Error::InvalidEvents(4))
        );
        assert_eq!(
            sel.register(-1, Events::from_bits_retain(7), 0),
            Err(Error::InvalidEvents(7))
        );
        // ...the fd before duplicates...
        assert_eq!(sel.register(-5, R, 0), Err(Error::InvalidFd(-5)));
        assert_eq!(
            sel.register(crate::sim::SIM_FD_LIMIT, R, 0),
            Err(Error::InvalidFd(1024))
        );
        sel.register(1, R, 0).unwrap();
        assert_eq!(sel.register(1, W, 0), Err(Error::AlreadyRegistered(1)));
        // ...and duplicates before fullness.
        sel.register(2, R, 0).unwrap();
        assert_eq!(sel.register(1, W, 0), Err(Error::AlreadyRegistered(1)));
        assert_eq!(sel.register(3, W, 0), Err(Error::Full { capacity: 2 }));
        assert_eq!(sel.len(), 2);
        assert_eq!(
            sel.backend().calls().register,
            2,
            "invalid input never reaches the backend"
        );
        assert_eq!(sel.backend().registered(3), None);
    }

    #[test]
    fn register_returns_the_key_and_fills_to_capacity() {
        let mut sel: Sim<4> = sim();
        for fd in 0..4 {
            let key = sel.register(fd, RW, fd as u32 + 100).unwrap();
            assert_eq!(
                *key,
                SelectorKey {
                    fd,
                    events: RW,
                    data: fd as u32 + 100
                }
            );
        }
        assert_eq!(sel.len(), 4);
        assert_eq!(sel.capacity(), 4);
        assert_eq!(sel.get_map().capacity(), 4);
        assert!(!sel.is_empty());
        assert_eq!(sel.register(9, R, 0), Err(Error::Full { capacity: 4 }));
        // Freeing one slot makes room again.
        sel.unregister(0).unwrap();
        sel.register(9, R, 9).unwrap();
        assert_eq!(sel.get_key(9).map(|k| k.data), Some(9));
    }

    #[test]
    fn refused_register_changes_nothing() {
        let mut sel: Sim<4> = sim();
        sel.backend_mut().fail_next();
        assert_eq!(
            sel.register(3, R, 1),
            Err(Error::Backend(SimError::Injected))
        );
        assert!(sel.is_empty());
        assert_eq!(sel.get_key(3), None);
        assert_eq!(sel.backend().registered(3), None);
        // The fd can still be registered afterwards.
        sel.register(3, R, 1).unwrap();
        assert_eq!(sel.backend().registered(3), Some(R));
    }

    #[test]
    fn unregister_returns_the_key() {
        let mut sel: Sim<4> = sim();
        sel.register(3, RW, 7).unwrap();
        assert_eq!(sel.unregister(3), Ok(key_of(3, RW, 7)));
        assert_eq!(sel.backend().registered(3), None);
        assert_eq!(sel.unregister(3), Err(Error::NotRegistered(3)));
        assert_eq!(sel.unregister(-3), Err(Error::InvalidFd(-3)));
        assert_eq!(sel.unregister(99), Err(Error::NotRegistered(99)));
    }

    #[test]
    fn unregister_of_a_closed_fd_succeeds() {
        let mut sel: Sim<4> = sim();
        sel.register(3, R, 7).unwrap();
        sel.backend_mut().close(3);
        assert_eq!(sel.unregister(3).map(|k| k.data), Ok(7));
        assert!(sel.is_empty());
    }

    #[test]
    fn refused_unregister_keeps_the_key() {
        let mut sel: Sim<4> = sim();
        sel.register(3, R, 7).unwrap();
        sel.backend_mut().fail_next();
        assert_eq!(sel.unregister(3), Err(Error::Backend(SimError::Injected)));
        assert_eq!(sel.get_key(3).map(|k| k.data), Some(7));
        assert_eq!(sel.backend().registered(3), Some(R));
    }

    #[test]
    fn modify_validates_before_touching_anything() {
        let mut sel: Sim<4> = sim();
        sel.register(3, R, 1).unwrap();
        let calls = sel.backend().calls();
        assert_eq!(
            sel.modify(3, Events::empty(), 2),
            Err(Error::InvalidEvents(0))
        );
        assert_eq!(
            sel.modify(3, Events::from_bits_retain(6), 2),
            Err(Error::InvalidEvents(6))
        );
        assert_eq!(sel.modify(-1, W, 2), Err(Error::InvalidFd(-1)));
        assert_eq!(sel.modify(4, W, 2), Err(Error::NotRegistered(4)));
        assert_eq!(sel.backend().calls(), calls);
        assert_eq!(*sel.get_key(3).unwrap(), key_of(3, R, 1));
        assert_eq!(sel.backend().registered(3), Some(R));
    }

    #[test]
    fn modify_with_new_data_only_makes_no_backend_call() {
        let mut sel: Sim<4> = sim();
        sel.register(3, R, 1).unwrap();
        let calls = sel.backend().calls();
        let key = *sel.modify(3, R, 2).unwrap();
        assert_eq!(key, key_of(3, R, 2));
        assert_eq!(sel.backend().calls(), calls);
        // Even an injected failure is not hit: no backend call is made.
        sel.backend_mut().fail_next();
        assert_eq!(sel.modify(3, R, 5).map(|k| k.data), Ok(5));
    }

    #[test]
    fn modify_with_new_events_rearms_the_backend() {
        let mut sel: Sim<4> = sim();
        sel.register(3, R, 1).unwrap();
        let key = *sel.modify(3, RW, 2).unwrap();
        assert_eq!(key, key_of(3, RW, 2));
        assert_eq!(sel.backend().calls().modify, 1);
        assert_eq!(sel.backend().registered(3), Some(RW));
        assert_eq!(*sel.get_key(3).unwrap(), key);
    }

    #[test]
    fn refused_modify_changes_nothing() {
        let mut sel: Sim<4> = sim();
        sel.register(3, R, 1).unwrap();
        sel.backend_mut().fail_next();
        assert_eq!(sel.modify(3, W, 2), Err(Error::Backend(SimError::Injected)));
        assert_eq!(*sel.get_key(3).unwrap(), key_of(3, R, 1));
        assert_eq!(sel.backend().registered(3), Some(R));
        // A closed fd: modify reports the error and keeps the key (only
        // unregister forgives a vanished fd).
        sel.backend_mut().close(3);
        assert_eq!(
            sel.modify(3, W, 2),
            Err(Error::Backend(SimError::Closed(3)))
        );
        assert_eq!(sel.get_key(3).map(|k| k.events), Some(R));
    }

    #[test]
    fn select_masks_events_by_interest_and_never_reports_empty() {
        let mut sel: Sim<8> = sim();
        sel.register(1, R, 1).unwrap();
        sel.register(2, W, 2).unwrap();
        sel.register(3, RW, 3).unwrap();
        sel.register(4, R, 4).unwrap();
        let b = sel.backend_mut();
        b.set_readiness(1, Readiness::READABLE | Readiness::WRITABLE);
        b.set_readiness(2, Readiness::HANGUP);
        b.set_readiness(3, Readiness::ERROR);
        b.set_readiness(4, Readiness::WRITABLE); // not asked for: no entry
        let mut ready: Ready<u32, 8> = Ready::new();
        assert_eq!(sel.select(&mut ready, ZERO), Ok(3));
        assert_eq!(entries(&ready), [(1, R, 1), (2, W, 2), (3, RW, 3)]);
    }

    #[test]
    fn select_is_level_triggered() {
        let mut sel: Sim<8> = sim();
        sel.register(1, R, 1).unwrap();
        sel.backend_mut().set_readiness(1, Readiness::READABLE);
        let mut ready: Ready<u32, 2> = Ready::new();
        for _ in 0..3 {
            assert_eq!(sel.select(&mut ready, ZERO), Ok(1));
            assert_eq!(entries(&ready), [(1, R, 1)]);
        }
        sel.backend_mut().clear_readiness(1);
        assert_eq!(sel.select(&mut ready, ZERO), Ok(0));
        assert!(ready.is_empty());
    }

    #[test]
    fn select_merges_split_reports_into_one_entry() {
        for order in [ReportOrder::Ascending, ReportOrder::Descending] {
            let mut sel: Sim<8> = sim();
            sel.backend_mut().set_split_reports(true);
            sel.backend_mut().set_report_order(order);
            for fd in 1..=3 {
                sel.register(fd, RW, fd as u32).unwrap();
                sel.backend_mut()
                    .set_readiness(fd, Readiness::READABLE | Readiness::WRITABLE);
            }
            let mut ready: Ready<u32, 8> = Ready::new();
            assert_eq!(sel.select(&mut ready, ZERO), Ok(3));
            assert_eq!(entries(&ready), [(1, RW, 1), (2, RW, 2), (3, RW, 3)]);
        }
    }

    /// `Backend::may_report_twice`: a backend that says `false` gets no
    /// merge check (an fd it reported twice, against its word, takes two
    /// entries: the documented logic error, here to show no check is made),
    /// one that says `true` gets one entry per fd; what is reported once
    /// comes out the same either way.
    #[test]
    fn select_merges_only_for_a_backend_that_may_report_twice() {
        for twice in [false, true] {
            let mut sel: Selector<Script, u32, 8> = Selector::new(Script {
                twice: Some(twice),
                ..Script::default()
            });
            sel.register(1, RW, 1).unwrap();
            sel.register(2, RW, 2).unwrap();
            sel.backend_mut().ready = vec![(1, Readiness::READABLE), (2, Readiness::WRITABLE)];
            let mut ready: Ready<u32, 8> = Ready::new();
            for _ in 0..2 {
                assert_eq!(sel.select(&mut ready, ZERO), Ok(2));
                assert_eq!(entries(&ready), [(1, R, 1), (2, W, 2)]);
            }
            sel.backend_mut().ready.push((1, Readiness::WRITABLE));
            let want: &[_] = if twice {
                &[(1, RW, 1), (2, W, 2)]
            } else {
                &[(1, R, 1), (1, W, 1), (2, W, 2)]
            };
            assert_eq!(
                sel.select(&mut ready, ZERO),
                Ok(want.len()),
                "twice: {twice}"
            );
            assert_eq!(entries(&ready), want, "twice: {twice}");
        }
    }

    #[test]
    fn select_merges_reports_that_arrive_apart() {
        let mut sel: Selector<Script, u32, 8> = Selector::new(Script::default());
        sel.register(1, RW, 1).unwrap();
        sel.register(2, RW, 2).unwrap();
        sel.backend_mut().ready = vec![
            (1, Readiness::READABLE),
            (2, Readiness::READABLE),
            (1, Readiness::WRITABLE),
        ];
        let mut ready: Ready<u32, 4> = Ready::new();
        assert_eq!(sel.select(&mut ready, ZERO), Ok(2));
        assert_eq!(entries(&ready), [(1, RW, 1), (2, R, 2)]);
        // The same with a full `Ready`, where the merge has to search.
        let mut small: Ready<u32, 1> = Ready::new();
        sel.backend_mut().ready = vec![
            (2, Readiness::READABLE),
            (1, Readiness::READABLE),
            (2, Readiness::WRITABLE),
            (1, Readiness::WRITABLE),
        ];
        let mut seen = BTreeSet::new();
        for _ in 0..2 {
            assert_eq!(sel.select(&mut small, ZERO), Ok(1));
            let (k, e) = small.iter().next().unwrap();
            assert_eq!(e, RW, "fd {} merged", k.fd);
            seen.insert(k.fd);
        }
        assert_eq!(seen, BTreeSet::from([1, 2]));
    }

    #[test]
    fn select_drops_unknown_fds_and_stale_registrations() {
        let mut sel: Selector<Script, u32, 8> = Selector::new(Script::default());
        sel.register(5, R, 1).unwrap();
        let old_tag = sel.backend().tags[&5];
        sel.unregister(5).unwrap();
        sel.register(5, R, 2).unwrap();
        let new_tag = sel.backend().tags[&5];
        assert_ne!(old_tag, new_tag);
        sel.backend_mut().raw = vec![
            (9, Tag::from_bits(1), Readiness::READABLE), // never registered
            (5, old_tag, Readiness::READABLE),           // the earlier registration of fd 5
        ];
        let mut ready: Ready<u32, 4> = Ready::new();
        assert_eq!(sel.select(&mut ready, ZERO), Ok(0));
        sel.backend_mut()
            .raw
            .push((5, new_tag, Readiness::READABLE));
        assert_eq!(sel.select(&mut ready, ZERO), Ok(1));
        assert_eq!(entries(&ready), [(5, R, 2)]);
    }

    #[test]
    fn a_new_table_keeps_keys_order_tags_slots_and_cursor() {
        // fds that collide in a table of 4 (home fd % 4), some past it.
        let mut small: KeyMap<u32, [Slot<u32>; 4]> = KeyMap::new();
        let mut big: KeyMap<u32, [Slot<u32>; 64]> = KeyMap::new();
        let mut sel = SelectorInner::with_table(Script::default(), &mut small as &mut KeyMap<u32>);
        for (fd, events, data) in [(8, R, 1), (4, W, 2), (0, RW, 3), (5, R, 4)] {
            sel.register(fd, events, data).unwrap();
        }
        // A removal that closes a gap, and a stale tag for fd 4.
        let stale = sel.backend().tags[&4];
        sel.unregister(4).unwrap();
        sel.register(4, R, 5).unwrap();
        sel.cursor = 7;
        let before: Vec<_> = sel.get_map().iter().copied().collect();
        let tags = sel.backend().tags.clone();

        assert!(sel.replace_table(&mut big).is_ok());
        assert_eq!(sel.get_map().iter().copied().collect::<Vec<_>>(), before);
        assert_eq!((sel.len(), sel.capacity()), (4, 64));
        assert_eq!(sel.cursor, 7);
        for (fd, events, data) in [(8, R, 1), (0, RW, 3), (5, R, 4), (4, R, 5)] {
            assert_eq!(sel.get_key(fd), Some(&key_of(fd, events, data)));
        }
        // The backend was not called, and its tags still name the keys:
        // live reports arrive, the stale one is still dropped.
        assert_eq!(sel.backend().tags, tags);
        sel.backend_mut().ready = vec![(0, Readiness::WRITABLE), (4, Readiness::READABLE)];
        sel.backend_mut().raw = vec![(4, stale, Readiness::READABLE)];
        let mut ready: Ready<u32, 8> = Ready::new();
        assert_eq!(sel.select(&mut ready, ZERO), Ok(2));
        assert_eq!(entries(&ready), [(0, W, 3), (4, R, 5)]);
        // modify and unregister hand back the slots the backend gave
        // (Script asserts them), and the tags: no re-registration.
        sel.modify(0, R, 6).unwrap();
        assert_eq!(sel.unregister(8), Ok(key_of(8, R, 1)));
        // Room for the new capacity, and tags go on from where they were.
        for fd in 10..70 {
            sel.register(fd, R, 0).unwrap();
        }
        assert_eq!(sel.len(), 63);
        assert!(sel.backend().tags[&69].to_bits() > tags[&4].to_bits());
    }

    #[test]
    fn a_new_table_too_small_changes_nothing() {
        let mut two: KeyMap<u32, [Slot<u32>; 2]> = KeyMap::new();
        let mut one: KeyMap<u32, [Slot<u32>; 1]> = KeyMap::new();
        let mut sel = SelectorInner::with_table(SimBackend::new(), &mut two as &mut KeyMap<u32>);
        sel.register(1, R, 1).unwrap();
        sel.register(3, R, 3).unwrap();
        assert!(sel.replace_table(&mut one).is_err());
        assert_eq!((sel.len(), sel.capacity()), (2, 2));
        assert_eq!(sel.get_key(3).map(|k| k.data), Some(3));
        assert_eq!(sel.register(5, R, 5), Err(Error::Full { capacity: 2 }));
        // A table that was not empty is emptied first; an empty selector
        // moves into any table.
        let mut used: KeyMap<u32, [Slot<u32>; 3]> = KeyMap::new();
        {
            let mut other = SelectorInner::with_table(SimBackend::new(), &mut used);
            other.register(2, W, 9).unwrap();
        }
        assert!(sel.replace_table(&mut used).is_ok());
        assert_eq!(sel.len(), 2);
        assert_eq!(sel.get_key(2), None);
        sel.register(5, R, 5).unwrap();
        assert_eq!(
            sel.get_map().iter().map(|k| k.fd).collect::<Vec<_>>(),
            [1, 3, 5]
        );
    }

    /// A new `Selector` is zero bytes but for its backend: its table and
    /// state land in `.bss` when it is a `static`. Checked on the value
    /// the `const fn` makes.
    #[test]
    fn a_new_selector_is_zero_bytes() {
        use core::mem::MaybeUninit;
        #[allow(unsafe_code)]
        fn zeroed<T>() -> T {
            // SAFETY: used only for the selector below, whose backend
            // (`()`-like `Zero`) and table are valid at all-zero bytes: what
            // the test checks is that `Selector::new` made the same value.
            unsafe { MaybeUninit::<T>::zeroed().assume_init() }
        }
        #[derive(Debug, PartialEq, Default)]
        struct Zero;
        impl Backend for Zero {
            type Error = ();
            fn register(&mut self, _: RawFd, _: Events, _: Tag) -> Result<BackendSlot, ()> {
                Ok(BackendSlot::NONE)
            }
            fn modify(
                &mut self,
                _: RawFd,
                _: BackendSlot,
                _: Events,
                _: Events,
                _: Tag,
            ) -> Result<(), ()> {
                Ok(())
            }
            fn unregister(&mut self, _: RawFd, _: BackendSlot, _: Events) -> Result<(), ()> {
                Ok(())
            }
            fn wait<F: FnMut(RawFd, Tag, Readiness)>(
                &mut self,
                _: usize,
                _: Option<Duration>,
                _: F,
            ) -> Result<(), ()> {
                Ok(())
            }
        }
        static NEW: Selector<Zero, u16, 8> = Selector::new(Zero);
        let mut z: Selector<Zero, u16, 8> = zeroed();
        assert_eq!((z.last_tag, z.cursor), (NEW.last_tag, NEW.cursor));
        assert_eq!((z.len(), z.capacity()), (NEW.len(), NEW.capacity()));
        assert_eq!(z.map.limit, NEW.map.limit);
        z.register(3, R, 1).unwrap();
        assert_eq!(z.get_key(3).map(|k| k.data), Some(1));
    }

    #[test]
    fn modify_keeps_the_generation() {
        let mut sel: Selector<Script, u32, 8> = Selector::new(Script::default());
        sel.register(5, R, 1).unwrap();
        sel.modify(5, RW, 2).unwrap(); // Script asserts the tag it is given
        sel.backend_mut().ready = vec![(5, Readiness::WRITABLE)];
        let mut ready: Ready<u32, 4> = Ready::new();
        assert_eq!(sel.select(&mut ready, ZERO), Ok(1));
        assert_eq!(entries(&ready), [(5, W, 2)]);
    }

    #[test]
    fn select_passes_capacity_and_timeout_to_the_backend() {
        let mut sel: Selector<Script, u32, 8> = Selector::new(Script::default());
        let mut ready: Ready<u32, 3> = Ready::new();
        sel.select(&mut ready, None).unwrap();
        assert_eq!(sel.backend().max_seen, [3]);
        let mut sim: Sim<4> = sim();
        for t in [
            None,
            Some(Duration::ZERO),
            Some(Duration::from_nanos(1)),
            Some(Duration::MAX),
        ] {
            sim.select(&mut ready, t).unwrap();
            assert_eq!(sim.backend().last_timeout(), Some(t));
        }
    }

    #[test]
    fn select_clears_ready_first_and_on_error() {
        let mut sel: Sim<4> = sim();
        sel.register(1, R, 1).unwrap();
        sel.backend_mut().set_readiness(1, Readiness::READABLE);
        let mut ready: Ready<u32, 4> = Ready::new();
        assert_eq!(sel.select(&mut ready, ZERO), Ok(1));
        sel.backend_mut().fail_next();
        assert_eq!(sel.select(&mut ready, ZERO), Err(SimError::Injected));
        assert!(ready.is_empty());
        assert_eq!(sel.select(&mut ready, ZERO), Ok(1));
        sel.backend_mut().clear_readiness(1);
        assert_eq!(sel.select(&mut ready, ZERO), Ok(0));
        assert_eq!(ready.len(), 0);
    }

    #[test]
    fn empty_selector_still_waits() {
        let mut sel: Sim<4> = sim();
        let mut ready: Ready<u32, 4> = Ready::new();
        let t = Some(Duration::from_millis(5));
        assert_eq!(sel.select(&mut ready, t), Ok(0));
        assert_eq!(sel.backend().calls().wait, 1);
        assert_eq!(sel.backend().last_timeout(), Some(t));
    }

    #[test]
    fn positions_left_by_earlier_selects_merge_nothing_wrong() {
        let mut sel: Sim<4> = sim();
        sel.backend_mut().set_split_reports(true);
        sel.register(1, RW, 1).unwrap();
        sel.register(2, RW, 2).unwrap();
        sel.backend_mut()
            .set_readiness(1, Readiness::READABLE | Readiness::WRITABLE);
        let mut ready: Ready<u32, 4> = Ready::new();
        for _ in 0..5 {
            assert_eq!(sel.select(&mut ready, ZERO), Ok(1));
            assert_eq!(entries(&ready), [(1, RW, 1)]);
            // fd 2 becomes ready in alternate rounds, so stale epochs matter.
            let r = sel.backend().readiness(2);
            sel.backend_mut().set_readiness(
                2,
                if r.is_empty() {
                    Readiness::READABLE
                } else {
                    Readiness::empty()
                },
            );
            sel.backend_mut().clear_readiness(2);
        }
    }

    /// Selects until every fd in `expected` was seen; asserts it takes at most
    /// ceil(len / M) calls and that each result is one entry per fd.
    fn sweep<B: Backend, const M: usize>(sel: &mut Selector<B, u32, 64>, expected: &BTreeSet<RawFd>)
    where
        B::Error: core::fmt::Debug,
    {
        let mut ready: Ready<u32, M> = Ready::new();
        let rounds = expected.len().div_ceil(M);
        for _ in 0..3 {
            let mut seen = BTreeSet::new();
            for _ in 0..rounds {
                let n = sel.select(&mut ready, ZERO).unwrap();
                assert_eq!(n, expected.len().min(M));
                let fds: BTreeSet<_> = ready.iter().map(|(k, _)| k.fd).collect();
                assert_eq!(fds.len(), n, "one entry per fd");
                seen.extend(fds);
            }
            assert_eq!(&seen, expected, "every ready fd within {rounds} selects");
        }
    }

    #[test]
    fn no_fd_starves_whatever_the_report_order() {
        for order in [ReportOrder::Ascending, ReportOrder::Descending] {
            for split in [false, true] {
                let mut sel: Selector<SimBackend, u32, 64> = Selector::new(SimBackend::new());
                sel.backend_mut().set_report_order(order);
                sel.backend_mut().set_split_reports(split);
                let fds: BTreeSet<RawFd> = (0..40).map(|i| 3 + i * 7).collect();
                for &fd in &fds {
                    sel.register(fd, RW, fd as u32).unwrap();
                    sel.backend_mut()
                        .set_readiness(fd, Readiness::READABLE | Readiness::WRITABLE);
                }
                sweep::<_, 1>(&mut sel, &fds);
                sweep::<_, 3>(&mut sel, &fds);
                sweep::<_, 16>(&mut sel, &fds);
                sweep::<_, 40>(&mut sel, &fds);
            }
        }
    }

    /// Selects with `Ready<_, M>` until every fd of `expected` was seen,
    /// each select giving one entry per fd; returns how many selects that
    /// took, or `None` if some fd was still missing after `limit`.
    fn rounds_to_see_all<B: Backend, const M: usize>(
        sel: &mut Selector<B, u32, 64>,
        expected: &BTreeSet<RawFd>,
        limit: usize,
    ) -> Option<usize>
    where
        B::Error: core::fmt::Debug,
    {
        let mut ready: Ready<u32, M> = Ready::new();
        let mut seen = BTreeSet::new();
        for round in 1..=limit {
            sel.select(&mut ready, ZERO).unwrap();
            let fds: Vec<RawFd> = ready.iter().map(|(k, _)| k.fd).collect();
            let distinct: BTreeSet<RawFd> = fds.iter().copied().collect();
            assert_eq!(distinct.len(), fds.len(), "one entry per fd");
            assert!(distinct.is_subset(expected), "only ready fds");
            seen.extend(distinct);
            if &seen == expected {
                return Some(round);
            }
        }
        None
    }

    /// A `SimBackend` with kernel-like batches and `fds` registered for
    /// `interest`, each ready with `readiness`.
    fn kernel_sim(
        limit: fn(usize) -> usize,
        split: bool,
        fds: &BTreeSet<RawFd>,
        interest: Events,
        readiness: Readiness,
    ) -> Selector<SimBackend, u32, 64> {
        let mut sel = Selector::new(SimBackend::new());
        sel.backend_mut().set_kernel_batches(Some(limit));
        sel.backend_mut().set_split_reports(split);
        for &fd in fds {
            sel.register(fd, interest, fd as u32).unwrap();
            sel.backend_mut().set_readiness(fd, readiness);
        }
        sel
    }

    /// A rotating kernel asked for no more than `max`
    /// reports reaches every fd (epoll's way, and kqueue's once it asks for
    /// `max` events), split reports or not...
    #[test]
    fn no_fd_starves_with_kernel_batches_of_max() {
        let fds: BTreeSet<RawFd> = [3, 4, 9, 17].into();
        let both = Readiness::READABLE | Readiness::WRITABLE;
        for (interest, split) in [(R, false), (R, true), (RW, false), (RW, true)] {
            let mut sel = kernel_sim(|max| max, split, &fds, interest, both);
            // Each fd makes at most two reports: 2 * 4 / 1 selects at most.
            assert!(rounds_to_see_all::<_, 1>(&mut sel, &fds, 8).is_some());
            assert!(rounds_to_see_all::<_, 3>(&mut sel, &fds, 3).is_some());
        }
    }

    /// ...while one asked for `2 * max` (what kqueue did, for its read and
    /// write filters) fights the selector's own fair pick and starves fds:
    /// the model reproduces the fault that the `max` rule removes.
    #[test]
    fn a_rotating_kernel_asked_for_more_than_max_starves_fds() {
        let fds: BTreeSet<RawFd> = [3, 4, 5, 6].into();
        let mut sel = kernel_sim(|max| 2 * max, true, &fds, R, Readiness::READABLE);
        assert_eq!(rounds_to_see_all::<_, 1>(&mut sel, &fds, 100), None);
    }

    /// A backend that really blocks, written by the contract's
    /// rule: it wakes only for readiness that meets a registration's
    /// interest (`Readiness::to_events`). A READ-only channel that is
    /// writable does not end the wait; becoming readable does, from another
    /// thread, at once.
    #[test]
    #[cfg_attr(miri, ignore)] // real time and threads; the logic is covered above
    fn a_blocking_backend_wakes_only_for_usable_readiness() {
        use std::sync::{Arc, Condvar, Mutex};
        use std::time::Instant;

        #[derive(Default)]
        struct State {
            readiness: BTreeMap<RawFd, Readiness>,
        }
        #[derive(Default, Clone)]
        struct Blocking {
            shared: Arc<(Mutex<State>, Condvar)>,
            regs: BTreeMap<RawFd, (Events, Tag)>,
        }
        impl Blocking {
            fn set(&self, fd: RawFd, r: Readiness) {
                let (state, cv) = &*self.shared;
                state.lock().unwrap().readiness.insert(fd, r);
                cv.notify_all();
            }
            fn usable(&self, state: &State) -> Vec<(RawFd, Tag, Readiness)> {
                self.regs
                    .iter()
                    .filter_map(|(&fd, &(interest, tag))| {
                        let r = state.readiness.get(&fd).copied().unwrap_or_default();
                        (!r.to_events(interest).is_empty()).then_some((fd, tag, r))
                    })
                    .collect()
            }
        }
        impl Backend for Blocking {
            type Error = ();
            fn register(&mut self, fd: RawFd, e: Events, tag: Tag) -> Result<BackendSlot, ()> {
                self.regs.insert(fd, (e, tag));
                Ok(BackendSlot::NONE)
            }
            fn modify(
                &mut self,
                fd: RawFd,
                _: BackendSlot,
                _: Events,
                e: Events,
                tag: Tag,
            ) -> Result<(), ()> {
                self.regs.insert(fd, (e, tag));
                Ok(())
            }
            fn unregister(&mut self, fd: RawFd, _: BackendSlot, _: Events) -> Result<(), ()> {
                self.regs.remove(&fd);
                Ok(())
            }
            fn wait<F: FnMut(RawFd, Tag, Readiness)>(
                &mut self,
                _max: usize,
                timeout: Option<Duration>,
                mut report: F,
            ) -> Result<(), ()> {
                let (state, cv) = &*self.shared;
                let deadline = timeout.map(|t| Instant::now() + t);
                let mut guard = state.lock().unwrap();
                loop {
                    let usable = self.usable(&guard);
                    if !usable.is_empty() {
                        for (fd, tag, r) in usable {
                            report(fd, tag, r);
                        }
                        return Ok(());
                    }
                    let left = match deadline {
                        None => Duration::from_secs(3600),
                        Some(d) => match d.checked_duration_since(Instant::now()) {
                            Some(left) if !left.is_zero() => left,
                            _ => return Ok(()),
                        },
                    };
                    guard = cv.wait_timeout(guard, left).unwrap().0;
                }
            }
        }

        let backend = Blocking::default();
        let remote = backend.clone();
        let mut sel: Selector<Blocking, &str, 8> = Selector::new(backend);
        sel.register(3, R, "channel").unwrap();
        remote.set(3, Readiness::WRITABLE); // writable, but only READ was asked for
        let mut ready: Ready<&str, 4> = Ready::new();
        let start = Instant::now();
        assert_eq!(
            sel.select(&mut ready, Some(Duration::from_millis(50))),
            Ok(0)
        );
        assert!(
            start.elapsed() >= Duration::from_millis(50),
            "woke for WRITABLE"
        );

        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            remote.set(3, Readiness::READABLE | Readiness::WRITABLE);
        });
        let start = Instant::now();
        assert_eq!(sel.select(&mut ready, None), Ok(1));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(entries_of(&ready), [(3, R)]);
        t.join().unwrap();
    }

    fn entries_of<D, const M: usize>(ready: &Ready<D, M>) -> Vec<(RawFd, Events)> {
        ready.iter().map(|(k, e)| (k.fd, e)).collect()
    }

    /// A report no key owns makes the selector hand the
    /// backend every live registration, once per select that saw one.
    #[test]
    fn select_asks_the_backend_to_rebuild_after_foreign_reports() {
        #[derive(Default)]
        struct Rebuilds {
            inner: Script,
            rebuilt: Vec<Vec<Registration>>,
            /// Fail every rebuild (out of fds, say).
            fail: bool,
        }
        impl Backend for Rebuilds {
            type Error = ();
            fn register(&mut self, fd: RawFd, e: Events, tag: Tag) -> Result<BackendSlot, ()> {
                self.inner.register(fd, e, tag)
            }
            fn modify(
                &mut self,
                fd: RawFd,
                s: BackendSlot,
                o: Events,
                n: Events,
                t: Tag,
            ) -> Result<(), ()> {
                self.inner.modify(fd, s, o, n, t)
            }
            fn unregister(&mut self, fd: RawFd, s: BackendSlot, e: Events) -> Result<(), ()> {
                self.inner.unregister(fd, s, e)
            }
            fn wait<F: FnMut(RawFd, Tag, Readiness)>(
                &mut self,
                max: usize,
                t: Option<Duration>,
                report: F,
            ) -> Result<(), ()> {
                self.inner.wait(max, t, report)
            }
            fn rebuild(
                &mut self,
                live: impl Iterator<Item = Registration> + Clone,
            ) -> Result<(), ()> {
                let mut v: Vec<Registration> = live.collect();
                v.sort_by_key(|r| r.fd);
                self.rebuilt.push(v);
                if self.fail { Err(()) } else { Ok(()) }
            }
        }
        let mut sel: Selector<Rebuilds, u32, 8> = Selector::new(Rebuilds::default());
        sel.register(5, R, 1).unwrap();
        sel.register(6, RW, 2).unwrap();
        let tag5 = sel.backend().inner.tags[&5];
        let tag6 = sel.backend().inner.tags[&6];
        let mut ready: Ready<u32, 4> = Ready::new();
        sel.backend_mut().inner.ready = vec![(5, Readiness::READABLE)];
        assert_eq!(sel.select(&mut ready, ZERO), Ok(1));
        assert!(
            sel.backend().rebuilt.is_empty(),
            "nothing foreign: no rebuild"
        );
        // An unknown fd and a stale tag of fd 6, beside a live report.
        sel.backend_mut().inner.raw = vec![
            (9, Tag::from_bits(7), Readiness::READABLE),
            (6, Tag::from_bits(tag6.to_bits() + 100), Readiness::READABLE),
        ];
        assert_eq!(sel.select(&mut ready, ZERO), Ok(1));
        assert_eq!(entries(&ready), [(5, R, 1)]);
        let live = [
            Registration {
                fd: 5,
                interest: R,
                tag: tag5,
                slot: BackendSlot::new(50),
            },
            Registration {
                fd: 6,
                interest: RW,
                tag: tag6,
                slot: BackendSlot::new(60),
            },
        ];
        assert_eq!(sel.backend().rebuilt, [live.to_vec()]);

        // A rebuild that fails (at EMFILE, a fresh user found every select
        // failing, the live keys' reports lost): the select still returns
        // the live keys, and the next one that meets the leftover asks again.
        sel.backend_mut().fail = true;
        for round in 2..4 {
            assert_eq!(sel.select(&mut ready, ZERO), Ok(1));
            assert_eq!(entries(&ready), [(5, R, 1)]);
            assert_eq!(sel.backend().rebuilt.len(), round);
        }
        assert_eq!(sel.len(), 2, "the table is as it was");
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 3 } else { 200 },
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Kernel-like batches of `max` reports, split or not, any interest
        /// and readiness: every fd whose readiness meets its interest is
        /// reached within ceil(reports / M) selects.
        #[test]
        fn no_starvation_under_kernel_batches(
            fds in proptest::collection::btree_map(0..200i32, (1u8..4, 1u8..4), 1..40),
            split in any::<bool>(),
        ) {
            let mut sel: Selector<SimBackend, u32, 64> = Selector::new(SimBackend::new());
            sel.backend_mut().set_kernel_batches(Some(|max| max));
            sel.backend_mut().set_split_reports(split);
            let mut expected = BTreeSet::new();
            let mut reports = 0;
            for (&fd, &(interest, ready)) in &fds {
                let interest = Events::from_bits_truncate(interest);
                let ready = Readiness::from_bits_truncate(ready);
                sel.register(fd, interest, fd as u32).unwrap();
                sel.backend_mut().set_readiness(fd, ready);
                if !ready.to_events(interest).is_empty() {
                    expected.insert(fd);
                    reports += if split {
                        ready.iter().filter(|b| !b.to_events(interest).is_empty()).count()
                    } else {
                        1
                    };
                }
            }
            if !expected.is_empty() {
                prop_assert!(rounds_to_see_all::<_, 1>(&mut sel, &expected, reports).is_some());
                prop_assert!(rounds_to_see_all::<_, 3>(&mut sel, &expected, reports.div_ceil(3) + 1).is_some());
            }
        }

        /// Any report order, any duplicate pattern: each ready fd is reported
        /// within ceil(ready / M) selects, exactly once per select.
        #[test]
        fn no_starvation_under_shuffled_reports(
            fds in proptest::collection::btree_set(0..200i32, 1..40),
            perm in proptest::collection::vec(any::<u32>(), 80),
            dup in proptest::collection::vec(any::<bool>(), 80),
        ) {
            let mut sel: Selector<Script, u32, 64> = Selector::new(Script::default());
            let list: Vec<RawFd> = fds.iter().copied().collect();
            for &fd in &list {
                sel.register(fd, RW, fd as u32).unwrap();
            }
            let mut reports: Vec<(RawFd, Readiness)> = Vec::new();
            for (i, &fd) in list.iter().enumerate() {
                reports.push((fd, Readiness::READABLE));
                if dup[i] {
                    reports.push((fd, Readiness::WRITABLE));
                }
            }
            // A fixed pseudo-random permutation.
            let mut keyed: Vec<_> = reports.into_iter().enumerate().map(|(i, r)| (perm[i % perm.len()], i, r)).collect();
            keyed.sort_by_key(|&(p, i, _)| (p, i));
            sel.backend_mut().ready = keyed.into_iter().map(|(_, _, r)| r).collect();
            sweep::<_, 1>(&mut sel, &fds);
            sweep::<_, 7>(&mut sel, &fds);
        }
    }

    /// A backend that watches at most two fds, as Windows `select` watches
    /// at most `FD_SETSIZE` sockets.
    struct AtMostTwo(Script);

    impl Backend for AtMostTwo {
        type Error = ();
        fn key_limit(&self) -> Option<usize> {
            Some(2)
        }
        fn register(&mut self, fd: RawFd, e: Events, tag: Tag) -> Result<BackendSlot, ()> {
            assert!(self.0.tags.len() < 2, "register beyond the key limit");
            self.0.register(fd, e, tag)
        }
        fn modify(
            &mut self,
            fd: RawFd,
            s: BackendSlot,
            o: Events,
            n: Events,
            t: Tag,
        ) -> Result<(), ()> {
            self.0.modify(fd, s, o, n, t)
        }
        fn unregister(&mut self, fd: RawFd, slot: BackendSlot, e: Events) -> Result<(), ()> {
            self.0.unregister(fd, slot, e)
        }
        fn wait<F: FnMut(RawFd, Tag, Readiness)>(
            &mut self,
            max: usize,
            t: Option<Duration>,
            report: F,
        ) -> Result<(), ()> {
            self.0.wait(max, t, report)
        }
    }

    #[test]
    fn key_limit_below_capacity_is_full_and_changes_nothing() {
        let mut sel: Selector<AtMostTwo, u32, 4> = Selector::new(AtMostTwo(Script::default()));
        sel.register(1, R, 1).unwrap();
        sel.register(2, W, 2).unwrap();
        assert_eq!(sel.register(3, R, 3), Err(Error::Full { capacity: 2 }));
        // Python's order: an fd already there is that error, not Full.
        assert_eq!(sel.register(2, R, 3), Err(Error::AlreadyRegistered(2)));
        assert_eq!(sel.len(), 2);
        assert!(sel.get_key(3).is_none());
        sel.unregister(1).unwrap();
        sel.register(3, R, 3).unwrap();
        assert_eq!(sel.len(), 2);
    }
}

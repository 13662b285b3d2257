//! The key table: [`SelectorKey`], the read-only [`KeyMap`] view, and the
//! [`Slot`]s it is stored in.
//!
//! An open-addressing table of `N` slots that this crate owns outright:
//! an fd's home slot is `fd % N` (a mask when `N` is a power of two, a
//! multiplication otherwise: `N` is a constant), so an fd below `N`
//! sits in slot `fd` and is found in one probe; larger fds probe linearly
//! past it, and removal shifts the cluster back (no tombstones), so every
//! lookup stays O(1) on average. The occupied slots are also listed densely
//! (slot `k` holds the index of the `k`-th occupied slot, whether or not
//! slot `k` is occupied itself), for iteration in O(len) and removal by
//! swap.

use core::borrow::{Borrow, BorrowMut};
use core::num::NonZeroU32;

use crate::{BackendSlot, Events, RawFd, Selectable, Tag};

/// One registration: the fd, the events it is watched for, and the user's
/// data. Python's `SelectorKey`, without `fileobj` (Rust callers keep their
/// own objects; the `data` is where a token or index for them goes).
///
/// ```
/// use selectors2_core::{Events, Selector, SelectorKey, SimBackend};
///
/// let mut sel: Selector<SimBackend, u32, 4> = Selector::new(SimBackend::new());
/// let key = sel.register(7, Events::READ, 42).unwrap();
/// assert_eq!(*key, SelectorKey { fd: 7, events: Events::READ, data: 42 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SelectorKey<D> {
    /// The registered file descriptor.
    pub fd: RawFd,
    /// The events it is watched for: `READ`, `WRITE` or both.
    pub events: Events,
    /// The user's data, returned with every ready report.
    pub data: D,
}

/// One registration in the table: the key plus the selector's bookkeeping.
///
/// `repr(C)`, with the slot's dense-list element first: a vacant slot keeps
/// that element at the same offset (see [`Slot`]), so that reading or
/// writing it is one access whatever the slot holds, and a slot is the
/// entry's size (32 bytes for `usize` data, against 40 with the element
/// beside an `Option<Entry>`).
#[derive(Debug, Clone)]
#[repr(C)]
pub(crate) struct Entry<D> {
    /// The dense-list element of the slot this entry is in (not this
    /// entry's own: see [`Slot`]). Carried over when the slot changes hands.
    dense: u16,
    /// Where this entry is in the dense list.
    dense_pos: u16,
    /// Generation of this registration, handed to the backend and checked
    /// on every report. Never zero, so that a slot needs no discriminant
    /// of its own (see [`Slot`]): 32 bytes for `usize` data, against 56
    /// with a `u32` tag and a separate epoch.
    pub(crate) tag: NonZeroU32,
    /// The backend's own value for this registration.
    pub(crate) slot: BackendSlot,
    /// Where the last `select` that reported this fd put it in `Ready`.
    /// Only a hint: it is current when `Ready` holds this fd's key there
    /// (the one check `select` makes to merge a second report).
    pub(crate) pos: u32,
    pub(crate) key: SelectorKey<D>,
}

impl<D> Entry<D> {
    /// The generation as the backend sees it.
    #[inline]
    pub(crate) fn backend_tag(&self) -> Tag {
        Tag::from_bits(self.tag.get())
    }

    /// A new entry for `key` with the backend's `tag` and `slot`.
    #[inline]
    pub(crate) fn new(key: SelectorKey<D>, tag: NonZeroU32, slot: BackendSlot) -> Self {
        Entry {
            dense: 0,
            dense_pos: 0,
            tag,
            slot,
            pos: u32::MAX,
            key,
        }
    }
}

/// One slot of a key table's storage: a registration or nothing, plus one
/// element of the table's dense list of occupied slots. Opaque; a table
/// of capacity `N` is stored in `[Slot<D>; N]`.
///
/// A [`Selector`](crate::Selector) keeps its slots inline by default
/// (`Selector::new`); [`Selector::with_storage`](crate::Selector::with_storage)
/// takes them from elsewhere: the std adapter builds them on the heap from
/// an iterator of [`Slot::EMPTY`], so that a large table never passes
/// through the stack.
#[derive(Debug, Clone)]
pub struct Slot<D>(State<D>);

/// What a slot holds. Either way, slot `k` holds the slot index of the
/// table's `k`-th occupied slot (its element of the dense list), first in
/// both variants: `Entry` is `repr(C)` with it at offset 0, the tag's niche
/// (never zero) tells the variants apart, and `Vacant`'s one field sits
/// before that niche at the same offset, so the slot is no bigger than an
/// entry (`slots_are_compact` checks the sizes).
#[derive(Debug, Clone)]
enum State<D> {
    Vacant { dense: u16 },
    Occupied(Entry<D>),
}

impl<D> Slot<D> {
    /// An empty slot.
    pub const EMPTY: Self = Slot(State::Vacant { dense: 0 });

    /// The registration in this slot, if any.
    #[inline(always)]
    fn entry(&self) -> Option<&Entry<D>> {
        match &self.0 {
            State::Occupied(e) => Some(e),
            State::Vacant { .. } => None,
        }
    }

    #[inline(always)]
    fn entry_mut(&mut self) -> Option<&mut Entry<D>> {
        match &mut self.0 {
            State::Occupied(e) => Some(e),
            State::Vacant { .. } => None,
        }
    }

    /// This slot's element of the dense list (one load: the same offset in
    /// both variants).
    #[inline(always)]
    fn dense(&self) -> u16 {
        match &self.0 {
            State::Occupied(e) => e.dense,
            State::Vacant { dense } => *dense,
        }
    }

    #[inline(always)]
    fn set_dense(&mut self, i: u16) {
        match &mut self.0 {
            State::Occupied(e) => e.dense = i,
            State::Vacant { dense } => *dense = i,
        }
    }

    /// Puts `entry` here (the slot was vacant), keeping the dense-list
    /// element, and returns it.
    #[inline(always)]
    fn put(&mut self, mut entry: Entry<D>) -> Option<&mut Entry<D>> {
        entry.dense = self.dense();
        self.0 = State::Occupied(entry);
        self.entry_mut()
    }

    /// Takes the entry out, keeping the dense-list element.
    #[inline(always)]
    fn take(&mut self) -> Option<Entry<D>> {
        let dense = self.dense();
        match core::mem::replace(&mut self.0, State::Vacant { dense }) {
            State::Occupied(e) => Some(e),
            State::Vacant { .. } => None,
        }
    }
}

/// Where a probe for an fd ended.
pub(crate) enum Probe {
    /// The fd's entry is in this slot.
    Found(usize),
    /// The fd is absent; it would go in this free slot.
    Vacant(usize),
    /// The fd is absent and every slot is taken.
    Full,
}

/// The read-only key table of a [`Selector`](crate::Selector), as returned by
/// [`Selector::get_map`](crate::Selector::get_map): Python's `get_map()`
/// mapping from fd to key.
///
/// `S` is where the table's `N` [`Slot`]s live: inline by default, or any
/// `BorrowMut<[Slot<D>; N]>` (a `Box`, a `static`...).
///
/// Lookups are O(1). Iteration yields the keys in table order, which is
/// registration order only until a key is removed: removal moves the last
/// key into the freed place (a swap-remove), so that it stays O(1).
///
/// ```
/// use selectors2_core::{Events, Selector, SimBackend};
///
/// let mut sel: Selector<SimBackend, &str, 8> = Selector::new(SimBackend::new());
/// sel.register(3, Events::READ, "a").unwrap();
/// sel.register(4, Events::WRITE, "b").unwrap();
/// let map = sel.get_map();
/// assert_eq!(map.len(), 2);
/// assert!(map.contains_key(3));
/// assert_eq!(map.get(4).unwrap().data, "b");
/// assert_eq!(map.iter().map(|k| k.fd).sum::<i32>(), 7);
/// ```
pub struct KeyMap<D, const N: usize, S = [Slot<D>; N]> {
    slots: S,
    len: usize,
    _data: core::marker::PhantomData<D>,
}

impl<D, const N: usize> KeyMap<D, N> {
    /// An empty table stored inline.
    pub(crate) const fn new() -> Self {
        let () = Self::CAPACITY_CHECK;
        KeyMap {
            slots: [const { Slot::EMPTY }; N],
            len: 0,
            _data: core::marker::PhantomData,
        }
    }
}

impl<D, const N: usize, S> KeyMap<D, N, S> {
    /// Fails the build for a capacity outside `1..=65536`, wherever it is
    /// evaluated.
    pub(crate) const CAPACITY_CHECK: () = assert!(
        N >= 1 && N <= 65536,
        "a selector's capacity N must be in 1..=65536 keys"
    );

    /// The slot where a probe for `fd` (not negative) starts.
    #[inline(always)]
    fn home(fd: RawFd) -> usize {
        fd as u32 as usize % N
    }

    /// The slot after `i`, wrapping around.
    #[inline(always)]
    fn next(i: usize) -> usize {
        Self::wrap(i + 1)
    }

    /// `i` reduced to a slot index: `i % N` (a mask for a power of two;
    /// for other `N`, where `%` costs more, `i` itself when below `N`).
    #[inline(always)]
    fn wrap(i: usize) -> usize {
        if N.is_power_of_two() {
            i & (N - 1)
        } else if i < N {
            i
        } else {
            i % N
        }
    }

    /// How many keys are registered.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is registered.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The fixed capacity, `N`.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }
}

impl<D, const N: usize, S: Borrow<[Slot<D>; N]>> KeyMap<D, N, S> {
    #[inline]
    fn slots(&self) -> &[Slot<D>; N] {
        self.slots.borrow()
    }

    /// The key registered for `f` (an fd, or with the `std` feature
    /// anything [`Selectable`], as the selector's `get_key` takes), if any.
    #[inline]
    pub fn get(&self, f: impl Selectable) -> Option<&SelectorKey<D>> {
        match self.probe(f.raw_fd()) {
            Probe::Found(i) => self.entry(i).map(|e| &e.key),
            _ => None,
        }
    }

    /// Whether `f` is registered.
    #[inline]
    pub fn contains_key(&self, f: impl Selectable) -> bool {
        matches!(self.probe(f.raw_fd()), Probe::Found(_))
    }

    /// The registered keys, in table order (see the type's docs).
    #[inline]
    pub fn iter(&self) -> Iter<'_, D> {
        Iter {
            slots: &self.slots()[..],
            next: 0,
            len: self.len,
        }
    }

    /// Where `fd` is, or would go. An fd below `N` is found in one probe.
    #[inline]
    pub(crate) fn probe(&self, fd: RawFd) -> Probe {
        let slots = self.slots();
        let home = Self::home(fd);
        let mut i = home;
        // At most N probes: the table may be full. (Stopping back at home
        // rather than counting keeps a counter off the one-probe path.)
        loop {
            match slots[i].entry() {
                None => return Probe::Vacant(i),
                Some(e) if e.key.fd == fd => return Probe::Found(i),
                Some(_) => i = Self::next(i),
            }
            if i == home {
                return Probe::Full;
            }
        }
    }

    /// The entry in slot `i`.
    #[inline]
    pub(crate) fn entry(&self, i: usize) -> Option<&Entry<D>> {
        self.slots().get(i).and_then(Slot::entry)
    }

    /// The entries, in table order.
    #[inline]
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry<D>> + Clone {
        let slots = self.slots();
        // Checked without a panic path (`len <= N` always holds).
        slots
            .get(..self.len)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| slots.get(usize::from(s.dense())).and_then(Slot::entry))
    }
}

impl<D, const N: usize, S: BorrowMut<[Slot<D>; N]>> KeyMap<D, N, S> {
    /// A table over `slots`, emptied first (O(N), once).
    pub(crate) fn with_storage(mut slots: S) -> Self {
        let () = Self::CAPACITY_CHECK;
        for slot in slots.borrow_mut().iter_mut() {
            *slot = Slot::EMPTY;
        }
        KeyMap {
            slots,
            len: 0,
            _data: core::marker::PhantomData,
        }
    }

    #[inline]
    fn slots_mut(&mut self) -> &mut [Slot<D>; N] {
        self.slots.borrow_mut()
    }

    /// The entry in slot `i`, mutably.
    #[inline]
    pub(crate) fn entry_mut(&mut self, i: usize) -> Option<&mut Entry<D>> {
        self.slots_mut().get_mut(i).and_then(Slot::entry_mut)
    }

    /// The entry of `fd`, mutably. Its home slot is looked at inline; the
    /// walk along a cluster is out of line.
    #[inline]
    pub(crate) fn get_mut(&mut self, fd: RawFd) -> Option<&mut Entry<D>> {
        let home = Self::home(fd);
        let hit = matches!(self.slots()[home].entry(), Some(e) if e.key.fd == fd);
        if hit {
            return self.slots_mut()[home].entry_mut();
        }
        self.get_mut_far(fd)
    }

    /// [`get_mut`](Self::get_mut) past the home slot.
    #[cold]
    #[inline(never)]
    fn get_mut_far(&mut self, fd: RawFd) -> Option<&mut Entry<D>> {
        match self.probe(fd) {
            Probe::Found(i) => self.entry_mut(i),
            _ => None,
        }
    }

    /// The entry of `fd` if it carries `tag`: the lookup `select` makes
    /// for every report. The fd's home slot is looked at first, tag before
    /// fd, so that the common case (an fd below `N`, or any fd alone in its
    /// cluster) costs two compares and no probe loop; anything else takes
    /// the full probe, out of line.
    #[inline(always)]
    pub(crate) fn get_reported_mut(&mut self, fd: RawFd, tag: Tag) -> Option<&mut Entry<D>> {
        let home = Self::home(fd);
        let hit = match self.slots()[home].entry() {
            Some(e) => e.tag.get() == tag.to_bits() && e.key.fd == fd,
            None => false,
        };
        if hit {
            return self.slots_mut()[home].entry_mut();
        }
        self.get_reported_far(fd, tag)
    }

    /// [`get_reported_mut`](Self::get_reported_mut) for an fd away from its
    /// home slot, or a report no key owns.
    #[cold]
    #[inline(never)]
    fn get_reported_far(&mut self, fd: RawFd, tag: Tag) -> Option<&mut Entry<D>> {
        self.get_mut(fd).filter(|e| e.backend_tag() == tag)
    }

    /// Puts `entry` in the free slot `i` that [`probe`](Self::probe)
    /// returned for its fd, and returns it (always `Some`).
    #[inline]
    pub(crate) fn insert_at(&mut self, i: usize, mut entry: Entry<D>) -> Option<&Entry<D>> {
        let k = self.len;
        self.len = k + 1;
        // `k < N <= 65536`: a free slot exists, so fewer than N are taken.
        entry.dense_pos = k as u16;
        let slots = self.slots_mut();
        // Slot `k` is there (`k < N`): the index is reduced modulo `N` only
        // so that no bounds check is made (a mask when `N` is a power of
        // two, one instruction instead of a compare and a branch).
        slots[Self::wrap(k)].set_dense(i as u16);
        slots[i].put(entry).map(|e| &*e)
    }

    /// Takes the key out of slot `i` (which [`probe`](Self::probe) found).
    #[inline(always)]
    pub(crate) fn remove_at(&mut self, i: usize) -> Option<SelectorKey<D>> {
        // At least the entry in slot `i` is counted.
        let last = self.len.wrapping_sub(1);
        let slots = self.slots_mut();
        let removed = slots.get_mut(i)?.take()?;
        // The dense list: the last element fills the removed one's place
        // (nothing moves when the removed key was the last one added).
        // Dense positions and indices are below `N`: `wrap` changes none,
        // it only lets the compiler drop the bounds checks (no panic path).
        let pos = usize::from(removed.dense_pos);
        if pos != last {
            let moved = slots[Self::wrap(last)].dense();
            slots[Self::wrap(pos)].set_dense(moved);
            if let Some(e) = slots[Self::wrap(usize::from(moved))].entry_mut() {
                e.dense_pos = pos as u16;
            }
        }
        // Usually the next slot is empty and nothing needs to move.
        let cluster = slots[Self::next(i)].entry().is_some();
        self.len = last;
        if cluster {
            self.close_gap(i);
        }
        Some(removed.key)
    }

    /// Moves every entry into `to` (empty, of capacity `N2 >= self.len()`),
    /// in table order, each keeping its tag and backend slot; leaves this
    /// table empty. O(len) moves plus `to`'s probes.
    pub(crate) fn move_into<const N2: usize, S2: BorrowMut<[Slot<D>; N2]>>(
        &mut self,
        to: &mut KeyMap<D, N2, S2>,
    ) {
        for k in 0..self.len {
            let i = usize::from(self.slots()[k].dense());
            let Some(mut entry) = self.slots_mut()[i].take() else {
                continue;
            };
            // A hint only (see `Entry::pos`): nothing in `Ready` is ours yet.
            entry.pos = u32::MAX;
            // `to` is empty and holds at least `self.len` keys, and the fds
            // are distinct: every probe ends at a vacant slot.
            if let Probe::Vacant(at) = to.probe(entry.key.fd) {
                to.insert_at(at, entry);
            }
        }
        self.len = 0;
    }

    /// Slot `hole` was just emptied: move back the entries after it in its
    /// cluster that would no longer be found (their probe from home would
    /// stop at the hole), so that no tombstone is needed.
    #[cold]
    #[inline(never)]
    fn close_gap(&mut self, mut hole: usize) {
        let slots = self.slots_mut();
        // Below `N` (see `remove_at`): no bounds check from here on.
        hole = Self::wrap(hole);
        let mut j = hole;
        loop {
            j = Self::next(j);
            let Some(e) = slots[j].entry() else { return };
            let home = Self::home(e.key.fd);
            // The entry may stay if its home is cyclically in (hole, j].
            if (j + N - home) % N < (j + N - hole) % N {
                continue;
            }
            let d = Self::wrap(usize::from(e.dense_pos));
            // The entry moves to the hole by a swap of the two slots, each
            // keeping its own dense-list element: a move through a local
            // would call `memmove`, kilobytes of flash on a microcontroller.
            let (at_hole, at_j) = (slots[hole].dense(), slots[j].dense());
            swap_slots(slots, hole, j);
            slots[hole].set_dense(at_hole);
            slots[j].set_dense(at_j);
            slots[d].set_dense(hole as u16);
            hole = j;
        }
    }
}

/// Swaps slots `a` and `b` (distinct). Through two disjoint borrows, which
/// the compiler copies inline: `<[T]>::swap` must allow `a == b` and calls
/// `memmove`.
#[inline(always)]
fn swap_slots<D>(slots: &mut [Slot<D>], a: usize, b: usize) {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    if let Some((left, right)) = slots.split_at_mut_checked(hi)
        && let (Some(x), Some(y)) = (left.get_mut(lo), right.first_mut())
    {
        core::mem::swap(x, y);
    }
}

impl<D: core::fmt::Debug, const N: usize, S: Borrow<[Slot<D>; N]>> core::fmt::Debug
    for KeyMap<D, N, S>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|k| (k.fd, k)))
            .finish()
    }
}

impl<'a, D, const N: usize, S: Borrow<[Slot<D>; N]>> IntoIterator for &'a KeyMap<D, N, S> {
    type Item = &'a SelectorKey<D>;
    type IntoIter = Iter<'a, D>;
    #[inline]
    fn into_iter(self) -> Iter<'a, D> {
        self.iter()
    }
}

/// Iterator over the keys of a [`KeyMap`], in table order.
#[derive(Debug, Clone)]
pub struct Iter<'a, D> {
    slots: &'a [Slot<D>],
    next: usize,
    len: usize,
}

impl<'a, D> Iterator for Iter<'a, D> {
    type Item = &'a SelectorKey<D>;
    #[inline]
    fn next(&mut self) -> Option<&'a SelectorKey<D>> {
        while self.next < self.len {
            let i = usize::from(self.slots[self.next].dense());
            self.next += 1;
            if let Some(e) = self.slots.get(i).and_then(Slot::entry) {
                return Some(&e.key);
            }
        }
        None
    }
    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.next;
        (left, Some(left))
    }
}

impl<D> ExactSizeIterator for Iter<'_, D> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, Selector, SimBackend};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    #[derive(Debug, Clone)]
    enum Op {
        Register(RawFd, u8, u16),
        Modify(RawFd, u8, u16),
        Unregister(RawFd),
        Get(RawFd),
    }

    fn op() -> impl Strategy<Value = Op> {
        // A small fd range over a table of 8, so that collisions, clusters
        // that wrap around the end, duplicates and a full table happen.
        let fd = -2..40i32;
        let ev = 0..6u8;
        prop_oneof![
            (fd.clone(), ev.clone(), any::<u16>()).prop_map(|(f, e, d)| Op::Register(f, e, d)),
            (fd.clone(), ev, any::<u16>()).prop_map(|(f, e, d)| Op::Modify(f, e, d)),
            fd.clone().prop_map(Op::Unregister),
            fd.prop_map(Op::Get),
        ]
    }

    type Model = BTreeMap<RawFd, (Events, u16)>;

    fn check_events(ev: u8) -> Result<Events, Error<crate::sim::SimError>> {
        let e = Events::from_bits_retain(ev);
        if e.is_valid_interest() {
            Ok(e)
        } else {
            Err(Error::InvalidEvents(ev))
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 4 } else { 256 },
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// The key table agrees with a `BTreeMap` model after every step:
        /// results, exact error variants (`Full` included) and contents.
        #[test]
        fn key_table_matches_model(ops in proptest::collection::vec(op(), 0..64)) {
            // Not a power of two: the fuzz target covers 8.
            const N: usize = 7;
            let mut sel: Selector<SimBackend, u16, N> = Selector::new(SimBackend::new());
            let mut model = Model::new();
            for op in ops {
                match op {
                    Op::Register(fd, ev, d) => {
                        let want = check_events(ev).and_then(|e| {
                            if fd < 0 { Err(Error::InvalidFd(fd)) }
                            else if model.contains_key(&fd) { Err(Error::AlreadyRegistered(fd)) }
                            else if model.len() == N { Err(Error::Full { capacity: N }) }
                            else { model.insert(fd, (e, d)); Ok(SelectorKey { fd, events: e, data: d }) }
                        });
                        prop_assert_eq!(sel.register(fd, Events::from_bits_retain(ev), d).copied(), want);
                    }
                    Op::Modify(fd, ev, d) => {
                        let want = check_events(ev).and_then(|e| {
                            if fd < 0 { Err(Error::InvalidFd(fd)) }
                            else if let Some(slot) = model.get_mut(&fd) { *slot = (e, d); Ok(SelectorKey { fd, events: e, data: d }) }
                            else { Err(Error::NotRegistered(fd)) }
                        });
                        prop_assert_eq!(sel.modify(fd, Events::from_bits_retain(ev), d).copied(), want);
                    }
                    Op::Unregister(fd) => {
                        let want = if fd < 0 { Err(Error::InvalidFd(fd)) } else {
                            model.remove(&fd).map(|(e, d)| SelectorKey { fd, events: e, data: d }).ok_or(Error::NotRegistered(fd))
                        };
                        prop_assert_eq!(sel.unregister(fd), want);
                    }
                    Op::Get(fd) => {
                        let want = model.get(&fd).map(|&(e, d)| SelectorKey { fd, events: e, data: d });
                        prop_assert_eq!(sel.get_key(fd).copied(), want);
                    }
                }
                prop_assert_eq!(sel.len(), model.len());
                let mut seen: Vec<_> = sel.get_map().iter().map(|k| (k.fd, (k.events, k.data))).collect();
                seen.sort();
                prop_assert_eq!(seen, model.iter().map(|(&f, &v)| (f, v)).collect::<Vec<_>>());
                for (&fd, &(e, d)) in &model {
                    prop_assert_eq!(sel.backend().registered(fd), Some(e));
                    // Every key is still found after removals shifted clusters.
                    prop_assert_eq!(sel.get_key(fd).copied(), Some(SelectorKey { fd, events: e, data: d }));
                    prop_assert!(sel.get_map().contains_key(fd));
                }
            }
        }

        /// `Selector::grow` after any history (collisions, wrapped
        /// clusters, removals, a full table): the grown table holds the
        /// same keys in the same iteration order, finds each of them, and
        /// takes the new capacity's worth.
        #[test]
        fn grow_keeps_every_key_after_any_history(ops in proptest::collection::vec(op(), 0..64)) {
            let mut sel: Selector<SimBackend, u16, 7> = Selector::new(SimBackend::new());
            for op in ops {
                let _ = match op {
                    Op::Register(fd, ev, d) => sel.register(fd, Events::from_bits_retain(ev), d).map(drop),
                    Op::Modify(fd, ev, d) => sel.modify(fd, Events::from_bits_retain(ev), d).map(drop),
                    Op::Unregister(fd) => sel.unregister(fd).map(drop),
                    Op::Get(_) => Ok(()),
                };
            }
            let before: Vec<_> = sel.get_map().iter().copied().collect();
            let mut big: Selector<SimBackend, u16, 13> = sel.grow([const { Slot::EMPTY }; 13]);
            prop_assert_eq!(big.get_map().iter().copied().collect::<Vec<_>>(), before.clone());
            for k in &before {
                prop_assert_eq!(big.get_key(k.fd), Some(k));
                prop_assert_eq!(big.backend().registered(k.fd), Some(k.events));
            }
            // Fill to the new capacity with fds that collide with the old.
            let mut fd = 0;
            while big.len() < 13 {
                if big.get_key(fd).is_none() {
                    prop_assert!(big.register(fd, Events::READ, 0).is_ok());
                }
                fd += 1;
            }
            prop_assert_eq!(big.register(1000, Events::READ, 0), Err(Error::Full { capacity: 13 }));
            for k in &before {
                prop_assert_eq!(big.unregister(k.fd), Ok(*k));
            }
            prop_assert_eq!(big.len(), 13 - before.len());
        }
    }

    /// The slot stays small: the table is most of a selector's memory.
    #[test]
    fn slots_are_compact() {
        use core::mem::size_of;
        // The tag's niche tells a vacant slot from an occupied one, and a
        // vacant slot's dense-list element shares the entry's bytes: a slot
        // is an entry's size.
        assert_eq!(size_of::<Slot<u64>>(), size_of::<Entry<u64>>());
        assert_eq!(size_of::<Slot<()>>(), size_of::<Entry<()>>());
        assert_eq!(size_of::<Slot<u64>>(), 32);
        assert_eq!(size_of::<Slot<u32>>(), 28);
        assert_eq!(size_of::<Slot<()>>(), 24);
    }

    #[test]
    fn colliding_fds_still_work() {
        // The fd is its own hash: fds equal modulo N land on one slot and
        // must probe past each other.
        let mut sel: Selector<SimBackend, RawFd, 8> = Selector::new(SimBackend::new());
        let fds: Vec<RawFd> = (0..8).map(|i| i * 64 + 3).collect();
        for &fd in &fds {
            sel.register(fd, Events::READ, fd).unwrap();
        }
        for &fd in &fds {
            assert_eq!(sel.get_key(fd).map(|k| k.data), Some(fd));
        }
        for &fd in fds.iter().step_by(2) {
            assert_eq!(sel.unregister(fd).map(|k| k.data), Ok(fd));
        }
        for (i, &fd) in fds.iter().enumerate() {
            assert_eq!(sel.get_key(fd).is_some(), i % 2 == 1, "fd {fd}");
        }
        assert_eq!(sel.get_key(3 + 64 * 9), None);
    }

    /// Removal shifts a cluster back, across the end of the table too, so
    /// that every key stays reachable without tombstones.
    #[test]
    fn removal_closes_gaps_in_wrapping_clusters() {
        let mut sel: Selector<SimBackend, RawFd, 8> = Selector::new(SimBackend::new());
        // Homes 6, 7, 6, 7, 6: a cluster over slots 6, 7, 0, 1, 2.
        let fds = [6, 7, 14, 15, 22];
        for &fd in &fds {
            sel.register(fd, Events::READ, fd).unwrap();
        }
        sel.register(1, Events::READ, 1).unwrap(); // home 1, pushed to 3
        for remove in [6, 15, 7] {
            assert_eq!(sel.unregister(remove).map(|k| k.data), Ok(remove));
            for &fd in fds.iter().chain(&[1]) {
                let want = ![6, 15, 7][..=[6, 15, 7].iter().position(|&r| r == remove).unwrap()]
                    .contains(&fd);
                assert_eq!(
                    sel.get_key(fd).is_some(),
                    want,
                    "fd {fd} after removing {remove}"
                );
            }
        }
        assert_eq!(sel.len(), 3);
        let mut left: Vec<_> = sel.get_map().iter().map(|k| k.fd).collect();
        left.sort();
        assert_eq!(left, [1, 14, 22]);
        // The table fills to capacity and empties again.
        for fd in [30, 31, 38, 39, 46] {
            sel.register(fd, Events::WRITE, fd).unwrap();
        }
        assert_eq!(
            sel.register(54, Events::READ, 0).err(),
            Some(Error::Full { capacity: 8 })
        );
        assert_eq!(sel.get_key(54), None);
        for fd in [1, 14, 22, 30, 31, 38, 39, 46] {
            assert_eq!(sel.unregister(fd).map(|k| k.fd), Ok(fd));
        }
        assert!(sel.is_empty());
        assert_eq!(sel.get_map().iter().count(), 0);
    }

    /// Any capacity works, not only powers of two: a Python user's 100,
    /// and odd sizes whose clusters wrap around the end.
    #[test]
    fn capacities_that_are_not_powers_of_two() {
        let mut sel: Selector<SimBackend, RawFd, 100> = Selector::new(SimBackend::new());
        for fd in (0..100).map(|i| i * 7 + 3) {
            sel.register(fd, Events::READ, fd).unwrap();
        }
        assert_eq!(
            sel.register(1, Events::READ, 1).err(),
            Some(Error::Full { capacity: 100 })
        );
        for fd in (0..100).map(|i| i * 7 + 3).step_by(3) {
            assert_eq!(sel.unregister(fd).map(|k| k.data), Ok(fd));
        }
        for (i, fd) in (0..100).map(|i| i * 7 + 3).enumerate() {
            assert_eq!(sel.get_key(fd).is_some(), i % 3 != 0, "fd {fd}");
        }
        let mut tiny: Selector<SimBackend, (), 3> = Selector::new(SimBackend::new());
        for fd in [2, 5, 8] {
            tiny.register(fd, Events::WRITE, ()).unwrap();
        }
        tiny.unregister(2).unwrap();
        assert!(tiny.get_key(5).is_some() && tiny.get_key(8).is_some());
        let mut one: Selector<SimBackend, (), 1> = Selector::new(SimBackend::new());
        one.register(9, Events::READ, ()).unwrap();
        assert_eq!(
            one.register(4, Events::READ, ()).err(),
            Some(Error::Full { capacity: 1 })
        );
        one.unregister(9).unwrap();
        one.register(4, Events::READ, ()).unwrap();
    }

    #[test]
    fn storage_from_elsewhere_is_emptied_and_used() {
        let mut slots: [Slot<u8>; 4] = [const { Slot::EMPTY }; 4];
        {
            let mut sel = Selector::<_, u8, 4, _>::with_storage(SimBackend::new(), &mut slots);
            sel.register(2, Events::READ, 7).unwrap();
        }
        // Slots left holding a key are emptied by the next selector.
        let mut sel = Selector::<_, u8, 4, _>::with_storage(SimBackend::new(), &mut slots);
        assert!(sel.is_empty());
        assert_eq!(sel.get_key(2), None);
        sel.register(2, Events::WRITE, 8).unwrap();
        assert_eq!(sel.get_key(2).map(|k| k.data), Some(8));
    }

    #[test]
    fn iteration_order_after_removal_is_swap_remove() {
        let mut sel: Selector<SimBackend, (), 8> = Selector::new(SimBackend::new());
        for fd in 1..=4 {
            sel.register(fd, Events::READ, ()).unwrap();
        }
        sel.unregister(1).unwrap();
        let order: Vec<_> = sel.get_map().iter().map(|k| k.fd).collect();
        assert_eq!(order, [4, 2, 3]);
        assert_eq!(sel.get_map().iter().len(), 3);
        assert_eq!(sel.get_map().into_iter().count(), 3);
    }

    /// `get_reported_mut`, the lookup of every report in `select`: found
    /// only for the right fd with the right tag, whether the fd sits in
    /// its home slot (the fast path), was pushed along its cluster, or its
    /// home slot is empty or held by another fd (the probe out of line).
    #[test]
    fn reported_lookup_needs_the_fd_and_its_tag() {
        let mut map: KeyMap<u16, 4> = KeyMap::new();
        let tag = |n: u32| NonZeroU32::new(n).unwrap();
        // 1 at home (slot 1); 5 and 9 also home to 1: pushed to 2 and 3.
        for (fd, t) in [(1, 11), (5, 15), (9, 19)] {
            let Probe::Vacant(at) = map.probe(fd) else {
                panic!("{fd} has a place");
            };
            let key = SelectorKey {
                fd,
                events: Events::READ,
                data: fd as u16,
            };
            map.insert_at(at, Entry::new(key, tag(t), BackendSlot::NONE));
        }
        let found = |map: &mut KeyMap<u16, 4>, fd, t| {
            map.get_reported_mut(fd, Tag::from_bits(t))
                .map(|e| e.key.data)
        };
        assert_eq!(found(&mut map, 1, 11), Some(1));
        assert_eq!(found(&mut map, 5, 15), Some(5));
        assert_eq!(found(&mut map, 9, 19), Some(9));
        // A stale tag: at home, and away from it.
        assert_eq!(found(&mut map, 1, 12), None);
        assert_eq!(found(&mut map, 9, 11), None);
        // Another fd's tag in this fd's home slot.
        assert_eq!(found(&mut map, 5, 11), None);
        // Unknown fds: home slot empty (slot 0), tag 0 as an empty slot's
        // niche reads; home slot full, fd absent; negative.
        assert_eq!(found(&mut map, 0, 0), None);
        assert_eq!(found(&mut map, 4, 0), None);
        assert_eq!(found(&mut map, 13, 11), None);
        assert_eq!(found(&mut map, -1, 19), None);
        // A full table whose probe wraps all the way round.
        let key = SelectorKey {
            fd: 2,
            events: Events::READ,
            data: 2,
        };
        let Probe::Vacant(at) = map.probe(2) else {
            panic!("2 has a place");
        };
        map.insert_at(at, Entry::new(key, tag(12), BackendSlot::NONE));
        assert_eq!(found(&mut map, 2, 12), Some(2));
        assert_eq!(found(&mut map, 6, 12), None);
    }
}

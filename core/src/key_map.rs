//! The key table: [`SelectorKey`], the read-only [`KeyMap`], and the
//! [`Slot`]s it is stored in.
//!
//! An open-addressing table of `n` slots: an fd's home slot is `fd % n` (a
//! mask when `n` is a power of two, as every table the std adapter makes
//! is), so an fd below `n` sits in slot `fd` and is found in one probe;
//! larger fds probe linearly past it, and removal shifts the cluster back
//! (no tombstones), so every lookup stays O(1) on average. The occupied
//! slots are also listed densely (slot `k` holds the index of the `k`-th
//! occupied slot, whether or not slot `k` is occupied itself), for
//! iteration in O(len) and removal by swap.
//!
//! One body of code serves every storage: `KeyMap<D, [Slot<D>; N]>` holds
//! its slots inline (a `static` on a microcontroller), and the unsized
//! `KeyMap<D>` (`KeyMap<D, [Slot<D>]>`) is the same table with its size
//! known at run time, behind any pointer (the std adapter's `Box`, a
//! `&'static mut`). A `&KeyMap<D, [Slot<D>; N]>` coerces to `&KeyMap<D>`.
//!
//! A table of all-zero bytes is a valid empty table: its header is zero
//! and a slot's state is a `u32`-tagged enum whose vacant variant is 0.
//! So a `static` selector lands in `.bss`, and a table allocated zeroed
//! costs no resident page until a key is stored in it.

use core::borrow::{Borrow, BorrowMut};
use core::marker::PhantomData;

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
#[derive(Debug, Clone)]
#[repr(C)]
pub(crate) struct Entry<D> {
    /// Where this entry is in the dense list.
    dense_pos: u32,
    /// Generation of this registration, handed to the backend and checked
    /// on every report. Never zero (zero is [`Tag::NONE`]).
    pub(crate) tag: u32,
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
        Tag::from_bits(self.tag)
    }

    /// A new entry for `key` with the backend's `tag` and `slot`.
    #[inline]
    pub(crate) fn new(key: SelectorKey<D>, tag: u32, slot: BackendSlot) -> Self {
        Entry {
            dense_pos: 0,
            tag,
            slot,
            pos: u32::MAX,
            key,
        }
    }
}

/// One slot of a key table's storage: a registration or nothing, plus one
/// element of the table's dense list of occupied slots. Opaque.
///
/// All-zero bytes are an empty slot ([`Slot::EMPTY`]), which is what lets
/// a table live in `.bss` or in zeroed heap memory.
#[derive(Debug, Clone)]
#[repr(transparent)]
pub struct Slot<D>(State<D>);

/// What a slot holds. Either way, slot `k` holds the slot index of the
/// table's `k`-th occupied slot (its element of the dense list), right
/// after the discriminant in both variants. `repr(u32)` fixes the layout:
/// the discriminant is a `u32` first, and `Vacant` is 0, so zeroed memory
/// is a vacant slot whatever `D` is (a niche chosen by the compiler, in `D`
/// or in the tag, would not promise that).
#[derive(Debug, Clone)]
#[repr(u32)]
enum State<D> {
    Vacant { dense: u32 } = 0,
    Occupied { dense: u32, entry: Entry<D> } = 1,
}

impl<D> Slot<D> {
    /// An empty slot (all-zero bytes).
    pub const EMPTY: Self = Slot(State::Vacant { dense: 0 });

    /// The registration in this slot, if any.
    #[inline(always)]
    fn entry(&self) -> Option<&Entry<D>> {
        match &self.0 {
            State::Occupied { entry, .. } => Some(entry),
            State::Vacant { .. } => None,
        }
    }

    #[inline(always)]
    fn entry_mut(&mut self) -> Option<&mut Entry<D>> {
        match &mut self.0 {
            State::Occupied { entry, .. } => Some(entry),
            State::Vacant { .. } => None,
        }
    }

    /// This slot's element of the dense list.
    #[inline(always)]
    fn dense(&self) -> u32 {
        match &self.0 {
            State::Occupied { dense, .. } | State::Vacant { dense } => *dense,
        }
    }

    #[inline(always)]
    fn set_dense(&mut self, i: u32) {
        match &mut self.0 {
            State::Occupied { dense, .. } | State::Vacant { dense } => *dense = i,
        }
    }

    /// Puts `entry` here (the slot was vacant), keeping the dense-list
    /// element, and returns it.
    #[inline(always)]
    fn put(&mut self, entry: Entry<D>) -> Option<&mut Entry<D>> {
        let dense = self.dense();
        self.0 = State::Occupied { dense, entry };
        self.entry_mut()
    }

    /// Takes the entry out, keeping the dense-list element.
    #[inline(always)]
    fn take(&mut self) -> Option<Entry<D>> {
        let dense = self.dense();
        match core::mem::replace(&mut self.0, State::Vacant { dense }) {
            State::Occupied { entry, .. } => Some(entry),
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
    /// The fd is absent and the table holds as many keys as it may.
    Full,
}

/// The largest table: slot indices are `u32`.
pub(crate) const MAX_SLOTS: usize = 1 << 31;

/// The key table of a [`Selector`](crate::Selector), as
/// [`get_map`](crate::SelectorInner::get_map) returns it: Python's
/// `get_map()` mapping from fd to key.
///
/// `S` is the slots' storage: `[Slot<D>; N]` inline, or by default the
/// unsized `[Slot<D>]`, a table whose size is known at run time, used
/// behind a pointer (`&KeyMap<D>`, a `Box`, a `&'static mut`). Every
/// `&KeyMap<D, [Slot<D>; N]>` coerces to a `&KeyMap<D>`.
///
/// Lookups are O(1). Iteration yields the keys in table order, which is
/// registration order only until a key is removed: removal moves the last
/// key into the freed place (a swap-remove), so that it stays O(1).
///
/// ```
/// use selectors2_core::{Events, KeyMap, Selector, SimBackend};
///
/// let mut sel: Selector<SimBackend, &str, 8> = Selector::new(SimBackend::new());
/// sel.register(3, Events::READ, "a").unwrap();
/// sel.register(4, Events::WRITE, "b").unwrap();
/// let map: &KeyMap<&str> = sel.get_map();
/// assert_eq!(map.len(), 2);
/// assert!(map.contains_key(3));
/// assert_eq!(map.get(4).unwrap().data, "b");
/// assert_eq!(map.iter().map(|k| k.fd).sum::<i32>(), 7);
/// ```
#[repr(C)]
pub struct KeyMap<D, S: ?Sized = [Slot<D>]> {
    len: u32,
    /// How many keys the table may hold, when fewer than its slots (a std
    /// selector of fixed capacity keeps a power of two of slots); 0 means
    /// one per slot, so that zeroed memory is a valid table.
    pub(crate) limit: u32,
    _data: PhantomData<D>,
    slots: S,
}

impl<D, const N: usize> KeyMap<D, [Slot<D>; N]> {
    /// Fails the build for a capacity outside `1..=65536`, wherever it is
    /// evaluated.
    const CAPACITY_CHECK: () = assert!(
        N >= 1 && N <= 65536,
        "a selector's capacity N must be in 1..=65536 keys"
    );

    /// An empty table of `N` slots stored inline, all-zero bytes: usable in
    /// a `static` (it lands in `.bss`). `N` must be in `1..=65536`, checked
    /// when the program is built.
    ///
    /// ```
    /// use selectors2_core::{KeyMap, Slot};
    ///
    /// static EMPTY: KeyMap<u16, [Slot<u16>; 8]> = KeyMap::new();
    /// assert_eq!((EMPTY.len(), EMPTY.capacity()), (0, 8));
    /// ```
    pub const fn new() -> Self {
        let () = Self::CAPACITY_CHECK;
        KeyMap {
            len: 0,
            limit: 0,
            _data: PhantomData,
            slots: [const { Slot::EMPTY }; N],
        }
    }
}

impl<D, const N: usize> Default for KeyMap<D, [Slot<D>; N]> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D, const N: usize> Borrow<KeyMap<D>> for KeyMap<D, [Slot<D>; N]> {
    #[inline(always)]
    fn borrow(&self) -> &KeyMap<D> {
        self
    }
}

impl<D, const N: usize> BorrowMut<KeyMap<D>> for KeyMap<D, [Slot<D>; N]> {
    #[inline(always)]
    fn borrow_mut(&mut self) -> &mut KeyMap<D> {
        self
    }
}

impl<D, const N: usize> Borrow<KeyMap<D>> for &mut KeyMap<D, [Slot<D>; N]> {
    #[inline(always)]
    fn borrow(&self) -> &KeyMap<D> {
        &**self
    }
}

impl<D, const N: usize> BorrowMut<KeyMap<D>> for &mut KeyMap<D, [Slot<D>; N]> {
    #[inline(always)]
    fn borrow_mut(&mut self) -> &mut KeyMap<D> {
        &mut **self
    }
}

impl<D> KeyMap<D> {
    /// How many slots `capacity` keys take, and the limit to keep: a
    /// capacity that is not a power of two takes the next one (so that the
    /// home slot is a mask), limited to `capacity` keys. `None` for 0 or
    /// more than the largest table.
    ///
    /// For code that allocates a run-time table itself (the std adapter):
    /// allocate `slots` zeroed slots behind a `KeyMap` header, then call
    /// [`set_limit`](Self::set_limit) with `limit`.
    ///
    /// ```
    /// use selectors2_core::KeyMap;
    ///
    /// assert_eq!(KeyMap::<u8>::layout_for(100), Some((128, 100)));
    /// assert_eq!(KeyMap::<u8>::layout_for(64), Some((64, 64)));
    /// assert_eq!(KeyMap::<u8>::layout_for(0), None);
    /// ```
    pub fn layout_for(capacity: usize) -> Option<(usize, usize)> {
        if capacity == 0 || capacity > MAX_SLOTS {
            return None;
        }
        Some((capacity.next_power_of_two(), capacity))
    }

    /// Limits an empty table to `limit` keys, fewer than its slots (0 or
    /// more than the slots: one key per slot). Returns `false`, changing
    /// nothing, if the table is not empty.
    pub fn set_limit(&mut self, limit: usize) -> bool {
        if self.len != 0 {
            return false;
        }
        self.limit = if limit >= self.slots.len() {
            0
        } else {
            limit as u32
        };
        true
    }

    /// Moves every key of this table into `to` (empty, with room for them
    /// all), in table order, each keeping its generation tag and backend
    /// slot; leaves this table empty. O(len) moves plus `to`'s probes.
    /// Returns `false`, moving nothing, when `to` is not empty or too small.
    pub(crate) fn move_into(&mut self, to: &mut KeyMap<D>) -> bool {
        if !to.is_empty() || to.capacity() < self.len() {
            return false;
        }
        for k in 0..self.len() {
            let Some(i) = self.slots.get(k).map(|s| s.dense() as usize) else {
                continue;
            };
            let Some(mut entry) = self.slots.get_mut(i).and_then(Slot::take) else {
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
        true
    }
}

impl<D, S: ?Sized + AsRef<[Slot<D>]>> KeyMap<D, S> {
    #[inline(always)]
    fn slots(&self) -> &[Slot<D>] {
        self.slots.as_ref()
    }

    /// The slot where a probe for `fd` (not negative) starts.
    #[inline(always)]
    fn home(&self, fd: RawFd) -> usize {
        self.wrap(fd as u32 as usize)
    }

    /// The slot after `i`, wrapping around.
    #[inline(always)]
    fn next(&self, i: usize) -> usize {
        self.wrap(i + 1)
    }

    /// `i` reduced to a slot index, `i % n`: `i` itself when below `n`
    /// (an fd below the slot count, the common case: one compare), else a
    /// mask for a power of two, else a division.
    #[inline(always)]
    fn wrap(&self, i: usize) -> usize {
        let n = self.slots().len();
        if i < n {
            i
        } else if n.is_power_of_two() {
            i & (n - 1)
        } else {
            i % n.max(1)
        }
    }

    /// How many keys are registered.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether no key is registered.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many keys the table holds: its slots, or fewer when it was
    /// limited (a std selector of fixed capacity).
    #[inline]
    pub fn capacity(&self) -> usize {
        match self.limit {
            0 => self.slots().len(),
            limit => limit as usize,
        }
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
            slots: self.slots(),
            next: 0,
            len: self.len(),
        }
    }

    /// Where `fd` is, or would go (a vacant slot may exist in a table
    /// limited below its slots that holds its limit: the caller checks the
    /// room). An fd below the slot count is found in one probe.
    #[inline]
    pub(crate) fn probe(&self, fd: RawFd) -> Probe {
        let slots = self.slots();
        let home = self.home(fd);
        let mut i = home;
        // At most one lap: the table may be full. (Stopping back at home
        // rather than counting keeps a counter off the one-probe path.)
        loop {
            match slots.get(i).and_then(Slot::entry) {
                None => return Probe::Vacant(i),
                Some(e) if e.key.fd == fd => return Probe::Found(i),
                Some(_) => i = self.next(i),
            }
            if i == home {
                return Probe::Full;
            }
        }
    }

    /// The slot of `fd`'s entry. Its home slot is looked at first; the
    /// walk along a cluster is the probe's.
    #[inline]
    pub(crate) fn position(&self, fd: RawFd) -> Option<usize> {
        let home = self.home(fd);
        if matches!(self.entry(home), Some(e) if e.key.fd == fd) {
            return Some(home);
        }
        match self.probe(fd) {
            Probe::Found(i) => Some(i),
            _ => None,
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
        slots
            .iter()
            .take(self.len())
            .filter_map(|s| slots.get(s.dense() as usize).and_then(Slot::entry))
    }
}

impl<D, S: ?Sized + AsRef<[Slot<D>]> + AsMut<[Slot<D>]>> KeyMap<D, S> {
    #[inline(always)]
    fn slots_mut(&mut self) -> &mut [Slot<D>] {
        self.slots.as_mut()
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
        let home = self.home(fd);
        let hit = matches!(self.entry(home), Some(e) if e.key.fd == fd);
        if hit {
            return self.entry_mut(home);
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
    /// fd, so that the common case (an fd below the slot count, or any fd
    /// alone in its cluster) costs two compares and no probe loop; anything
    /// else takes the full probe, out of line.
    #[inline(always)]
    pub(crate) fn get_reported_mut(&mut self, fd: RawFd, tag: Tag) -> Option<&mut Entry<D>> {
        let home = self.home(fd);
        let hit = match self.entry(home) {
            Some(e) => e.tag == tag.to_bits() && e.key.fd == fd,
            None => false,
        };
        if hit {
            return self.entry_mut(home);
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
        // A free slot exists, so fewer than the slot count (at most
        // `MAX_SLOTS`) are taken: `k + 1` does not overflow.
        self.len = k + 1;
        entry.dense_pos = k;
        let k = self.wrap(k as usize);
        let slots = self.slots_mut();
        if let Some(s) = slots.get_mut(k) {
            s.set_dense(i as u32);
        }
        slots.get_mut(i)?.put(entry).map(|e| &*e)
    }

    /// Takes the key out of slot `i` (which [`probe`](Self::probe) found).
    #[inline(always)]
    pub(crate) fn remove_at(&mut self, i: usize) -> Option<SelectorKey<D>> {
        let removed = self.slots_mut().get_mut(i)?.take()?;
        // At least the entry just taken was counted.
        let last = self.len.wrapping_sub(1);
        // The dense list: the last element fills the removed one's place
        // (nothing moves when the removed key was the last one added).
        if removed.dense_pos != last {
            self.move_last_dense(removed.dense_pos as usize, last as usize);
        }
        // Usually the next slot is empty and nothing needs to move.
        let next = self.next(i);
        let cluster = self.entry(next).is_some();
        self.len = last;
        if cluster {
            self.close_gap(i);
        }
        Some(removed.key)
    }

    /// The dense list's element `last` moves to `pos`, the place of one
    /// just removed.
    #[inline]
    fn move_last_dense(&mut self, pos: usize, last: usize) {
        let slots = self.slots_mut();
        let Some(moved) = slots.get(last).map(Slot::dense) else {
            return;
        };
        if let Some(s) = slots.get_mut(pos) {
            s.set_dense(moved);
        }
        if let Some(e) = slots.get_mut(moved as usize).and_then(Slot::entry_mut) {
            e.dense_pos = pos as u32;
        }
    }

    /// Slot `hole` was just emptied: move back the entries after it in its
    /// cluster that would no longer be found (their probe from home would
    /// stop at the hole), so that no tombstone is needed.
    #[cold]
    #[inline(never)]
    fn close_gap(&mut self, mut hole: usize) {
        let n = self.slots().len();
        let mut j = hole;
        loop {
            j = self.next(j);
            let Some(home) = self.entry(j).map(|e| self.home(e.key.fd)) else {
                return;
            };
            // The entry may stay if its home is cyclically in (hole, j].
            if (j + n - home) % n < (j + n - hole) % n {
                continue;
            }
            let slots = self.slots_mut();
            let Some(entry) = slots.get_mut(j).and_then(Slot::take) else {
                return;
            };
            if let Some(s) = slots.get_mut(entry.dense_pos as usize) {
                s.set_dense(hole as u32);
            }
            if let Some(s) = slots.get_mut(hole) {
                s.put(entry);
            }
            hole = j;
        }
    }
}

impl<D: core::fmt::Debug, S: ?Sized + AsRef<[Slot<D>]>> core::fmt::Debug for KeyMap<D, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|k| (k.fd, k)))
            .finish()
    }
}

impl<'a, D, S: ?Sized + AsRef<[Slot<D>]>> IntoIterator for &'a KeyMap<D, S> {
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
            let i = self.slots.get(self.next).map(|s| s.dense() as usize);
            self.next += 1;
            if let Some(e) = i.and_then(|i| self.slots.get(i)).and_then(Slot::entry) {
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

impl<D, S: ?Sized + AsRef<[Slot<D>]> + AsMut<[Slot<D>]>> KeyMap<D, S> {
    /// Removes every key, in O(len): only the occupied slots are written,
    /// so a zeroed table's untouched pages stay untouched.
    pub(crate) fn clear(&mut self) {
        for k in 0..self.len() {
            let i = self.slots().get(k).map(|s| s.dense() as usize);
            if let Some(slot) = i.and_then(|i| self.slots_mut().get_mut(i)) {
                slot.take();
            }
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, Selector, SelectorInner, SimBackend};
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

        /// `replace_table` after any history (collisions, wrapped
        /// clusters, removals, a full table): the new table holds the
        /// same keys in the same iteration order, finds each of them, and
        /// takes its own capacity's worth.
        #[test]
        fn a_new_table_keeps_every_key_after_any_history(ops in proptest::collection::vec(op(), 0..64)) {
            let mut small: KeyMap<u16, [Slot<u16>; 7]> = KeyMap::new();
            let mut big: KeyMap<u16, [Slot<u16>; 13]> = KeyMap::new();
            let mut sel = SelectorInner::with_table(SimBackend::new(), &mut small as &mut KeyMap<u16>);
            for op in ops {
                let _ = match op {
                    Op::Register(fd, ev, d) => sel.register(fd, Events::from_bits_retain(ev), d).map(drop),
                    Op::Modify(fd, ev, d) => sel.modify(fd, Events::from_bits_retain(ev), d).map(drop),
                    Op::Unregister(fd) => sel.unregister(fd).map(drop),
                    Op::Get(_) => Ok(()),
                };
            }
            let before: Vec<_> = sel.get_map().iter().copied().collect();
            let old = sel.replace_table(&mut big).ok().unwrap();
            prop_assert!(old.is_empty());
            prop_assert_eq!(sel.get_map().iter().copied().collect::<Vec<_>>(), before.clone());
            for k in &before {
                prop_assert_eq!(sel.get_key(k.fd), Some(k));
                prop_assert_eq!(sel.backend().registered(k.fd), Some(k.events));
            }
            // Fill to the new capacity with fds that collide with the old.
            let mut fd = 0;
            while sel.len() < 13 {
                if sel.get_key(fd).is_none() {
                    prop_assert!(sel.register(fd, Events::READ, 0).is_ok());
                }
                fd += 1;
            }
            prop_assert_eq!(sel.register(1000, Events::READ, 0), Err(Error::Full { capacity: 13 }));
            for k in &before {
                prop_assert_eq!(sel.unregister(k.fd), Ok(*k));
            }
            prop_assert_eq!(sel.len(), 13 - before.len());
        }
    }

    /// The slot stays small: the table is most of a selector's memory.
    /// (The explicit `u32` discriminant costs 4 bytes over a niche, and
    /// buys a layout where zero bytes are an empty slot for every `D`.)
    #[test]
    fn slots_are_compact() {
        use core::mem::size_of;
        assert_eq!(size_of::<Slot<u64>>(), 40);
        assert_eq!(size_of::<Slot<u32>>(), 36);
        assert_eq!(size_of::<Slot<u16>>(), 32);
        assert_eq!(size_of::<Slot<()>>(), 32);
    }

    /// All-zero bytes are an empty table, for a `D` with a niche of its
    /// own too (`bool`, `&str`, `NonZeroU8`: a compiler-chosen niche could
    /// have been in `D`): it reads as empty, and takes keys. Miri checks
    /// that the zeroed bytes are a valid value.
    #[test]
    #[allow(unsafe_code)]
    fn a_zeroed_table_is_an_empty_table() {
        use core::mem::MaybeUninit;
        fn check<D: Copy + PartialEq + core::fmt::Debug>(data: D) {
            let zeroed = MaybeUninit::<KeyMap<D, [Slot<D>; 8]>>::zeroed();
            // SAFETY: what this test proves: zero bytes are a valid empty
            // table (a `u32`-tagged slot whose discriminant 0 is `Vacant`).
            let mut table = unsafe { zeroed.assume_init() };
            assert!(table.is_empty());
            assert_eq!(table.capacity(), 8);
            assert_eq!(table.iter().count(), 0);
            assert!(table.slots.iter().all(|s| s.entry().is_none()));
            let mut sel = SelectorInner::with_table(SimBackend::new(), &mut table);
            for fd in [3, 11, 19] {
                sel.register(fd, Events::READ, data).unwrap();
            }
            assert_eq!(sel.unregister(11).map(|k| k.data), Ok(data));
            assert_eq!(sel.get_key(19).map(|k| k.data), Some(data));
            assert_eq!(sel.len(), 2);
        }
        check(true);
        check("s");
        check(core::num::NonZeroU8::MIN);
        check(7u64);
        check(());
    }

    /// A table limited below its slots (the std adapter's fixed capacity)
    /// is full at the limit, finds every key, and refuses nothing else.
    #[test]
    fn a_limited_table_is_full_at_its_limit() {
        let mut table: KeyMap<u8, [Slot<u8>; 8]> = KeyMap::new();
        assert!((&mut table as &mut KeyMap<u8>).set_limit(3));
        assert_eq!(table.capacity(), 3);
        let mut sel = SelectorInner::with_table(SimBackend::new(), &mut table);
        for fd in [1, 9, 2] {
            sel.register(fd, Events::READ, 0).unwrap();
        }
        assert_eq!(
            sel.register(4, Events::READ, 0),
            Err(Error::Full { capacity: 3 })
        );
        assert_eq!(
            sel.register(9, Events::READ, 0),
            Err(Error::AlreadyRegistered(9))
        );
        assert_eq!(sel.backend().calls().register, 3);
        sel.unregister(9).unwrap();
        sel.register(4, Events::READ, 0).unwrap();
        assert!(sel.get_map().contains_key(1) && sel.get_map().contains_key(4));
        let mut t2: KeyMap<u8, [Slot<u8>; 4]> = KeyMap::new();
        let view: &mut KeyMap<u8> = &mut t2;
        assert!(view.set_limit(9), "more than the slots: one per slot");
        assert_eq!(view.capacity(), 4);
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
        let mut table: KeyMap<u8, [Slot<u8>; 4]> = KeyMap::new();
        {
            let mut sel = SelectorInner::with_table(SimBackend::new(), &mut table);
            sel.register(2, Events::READ, 7).unwrap();
        }
        // A table left holding a key is emptied by the next selector.
        let mut sel = SelectorInner::with_table(SimBackend::new(), &mut table);
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
        let mut inline: KeyMap<u16, [Slot<u16>; 4]> = KeyMap::new();
        let map: &mut KeyMap<u16> = &mut inline;
        let tag = |n: u32| n;
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
        let found = |map: &mut KeyMap<u16>, fd, t| {
            map.get_reported_mut(fd, Tag::from_bits(t))
                .map(|e| e.key.data)
        };
        assert_eq!(found(map, 1, 11), Some(1));
        assert_eq!(found(map, 5, 15), Some(5));
        assert_eq!(found(map, 9, 19), Some(9));
        // A stale tag: at home, and away from it.
        assert_eq!(found(map, 1, 12), None);
        assert_eq!(found(map, 9, 11), None);
        // Another fd's tag in this fd's home slot.
        assert_eq!(found(map, 5, 11), None);
        // Unknown fds: home slot empty (slot 0), tag 0 as an empty slot's
        // niche reads; home slot full, fd absent; negative.
        assert_eq!(found(map, 0, 0), None);
        assert_eq!(found(map, 4, 0), None);
        assert_eq!(found(map, 13, 11), None);
        assert_eq!(found(map, -1, 19), None);
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
        assert_eq!(found(map, 2, 12), Some(2));
        assert_eq!(found(map, 6, 12), None);
    }
}

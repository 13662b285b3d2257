//! The key table: [`SelectorKey`] and the read-only [`KeyMap`] view.

use core::hash::Hasher;

use hash32::BuildHasherDefault;
use heapless::index_map::IndexMap;

/// Hashes an fd to itself: fds are small, dense integers, so `fd & (N - 1)`
/// already spreads them over the table (FNV only costs time).
#[derive(Default)]
pub(crate) struct FdHasher(u64);

impl Hasher for FdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    #[inline]
    fn write_i32(&mut self, fd: i32) {
        self.0 = u64::from(fd as u32);
    }
}

type FdMap<D, const N: usize> = IndexMap<RawFd, Entry<D>, BuildHasherDefault<FdHasher>, N>;

use crate::{Events, RawFd};

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

/// One slot of the table: the key plus the selector's bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct Entry<D> {
    pub(crate) key: SelectorKey<D>,
    /// Generation of this registration, handed to the backend and checked
    /// on every report.
    pub(crate) tag: u32,
    /// The backend's own value for this registration.
    pub(crate) slot: u32,
    /// The `select` call that last put this fd in `Ready`...
    pub(crate) epoch: u32,
    /// ...and where it put it.
    pub(crate) pos: u32,
}

/// The read-only key table of a [`Selector`](crate::Selector), as returned by
/// [`Selector::get_map`](crate::Selector::get_map): Python's `get_map()`
/// mapping from fd to key.
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
pub struct KeyMap<D, const N: usize> {
    pub(crate) inner: FdMap<D, N>,
}

impl<D, const N: usize> KeyMap<D, N> {
    /// Fails the build for a capacity that is not a power of two in
    /// `2..=65536`, wherever it is evaluated.
    pub(crate) const CAPACITY_CHECK: () = assert!(
        N >= 2 && N <= 65536 && N.is_power_of_two(),
        "capacity N must be a power of two in 2..=65536"
    );

    pub(crate) const fn new() -> Self {
        let () = Self::CAPACITY_CHECK;
        KeyMap {
            inner: FdMap::new(),
        }
    }

    /// How many keys are registered.
    #[inline]
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no key is registered.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The fixed capacity, `N`.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The key registered for `fd`, if any.
    #[inline]
    pub fn get(&self, fd: RawFd) -> Option<&SelectorKey<D>> {
        self.inner.get(&fd).map(|e| &e.key)
    }

    /// Whether `fd` is registered.
    #[inline]
    pub fn contains_key(&self, fd: RawFd) -> bool {
        self.inner.contains_key(&fd)
    }

    /// The registered keys, in table order (see the type's docs).
    #[inline]
    pub fn iter(&self) -> Iter<'_, D> {
        Iter {
            inner: self.inner.values(),
            remaining: self.inner.len(),
        }
    }
}

impl<D: core::fmt::Debug, const N: usize> core::fmt::Debug for KeyMap<D, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|k| (k.fd, k)))
            .finish()
    }
}

impl<'a, D, const N: usize> IntoIterator for &'a KeyMap<D, N> {
    type Item = &'a SelectorKey<D>;
    type IntoIter = Iter<'a, D>;
    #[inline]
    fn into_iter(self) -> Iter<'a, D> {
        self.iter()
    }
}

/// Iterator over the keys of a [`KeyMap`].
pub struct Iter<'a, D> {
    inner: heapless::index_map::Values<'a, RawFd, Entry<D>>,
    remaining: usize,
}

impl<'a, D> Iterator for Iter<'a, D> {
    type Item = &'a SelectorKey<D>;
    #[inline]
    fn next(&mut self) -> Option<&'a SelectorKey<D>> {
        let entry = self.inner.next()?;
        self.remaining -= 1;
        Some(&entry.key)
    }
    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
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
        // Small fd range so that collisions, duplicates and a full table happen.
        let fd = -2..12i32;
        let ev = 0..6u8;
        prop_oneof![
            (fd.clone(), ev.clone(), any::<u16>()).prop_map(|(f, e, d)| Op::Register(f, e, d)),
            (fd.clone(), ev, any::<u16>()).prop_map(|(f, e, d)| Op::Modify(f, e, d)),
            fd.clone().prop_map(Op::Unregister),
            fd.prop_map(Op::Get),
        ]
    }

    type Model = BTreeMap<RawFd, (Events, u16)>;

    fn check_events(ev: u8) -> Result<Events, Error<crate::SimError>> {
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
            const N: usize = 8;
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
                for &fd in model.keys() {
                    prop_assert_eq!(sel.backend().registered(fd), model.get(&fd).map(|v| v.0));
                }
            }
        }
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
}

//! [`Ready`]: the caller-owned, fixed-capacity list that `select` fills.

use heapless::Vec;

use crate::{Events, RawFd, SelectorKey};

/// The result buffer of [`Selector::select`](crate::Selector::select): up to
/// `M` entries `(key, events)`, one per ready fd.
///
/// It is owned by the caller and reused from call to call, so `select`
/// allocates nothing. `select` clears it first. If more than `M` fds are
/// ready, the rest are returned by the following calls: no fd starves.
///
/// ```
/// use core::time::Duration;
/// use selectors2_core::{Events, Readiness, Ready, Selector, SimBackend};
///
/// let mut sel: Selector<SimBackend, char, 8> = Selector::new(SimBackend::new());
/// sel.register(5, Events::READ | Events::WRITE, 'x').unwrap();
/// sel.backend_mut().set_readiness(5, Readiness::WRITABLE);
///
/// let mut ready: Ready<char, 16> = Ready::new();
/// assert_eq!(sel.select(&mut ready, Some(Duration::ZERO)).unwrap(), 1);
/// for (key, events) in &ready {
///     assert_eq!((key.fd, key.data, events), (5, 'x', Events::WRITE));
/// }
/// ```
pub struct Ready<D, const M: usize> {
    pub(crate) entries: Vec<(SelectorKey<D>, Events), M>,
}

impl<D, const M: usize> Ready<D, M> {
    /// An empty buffer for up to `M` ready entries (`M >= 1`, checked at
    /// compile time).
    #[inline]
    pub const fn new() -> Self {
        const {
            assert!(
                M >= 1 && M <= u32::MAX as usize,
                "Ready needs 1..=u32::MAX slots"
            )
        };
        Ready {
            entries: Vec::new(),
        }
    }

    /// How many entries the last `select` put here.
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the last `select` found nothing ready.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The fixed capacity, `M`.
    #[inline]
    pub const fn capacity(&self) -> usize {
        M
    }

    /// Removes every entry.
    #[inline]
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The entries: each ready key with the events it is ready for (never
    /// empty, never more than the key asked for).
    #[inline]
    pub fn iter(&self) -> Iter<'_, D> {
        Iter {
            inner: self.entries.iter(),
        }
    }

    /// Where the entry for `fd` is, if present.
    #[cold]
    pub(crate) fn position(&self, fd: RawFd) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k.fd == fd)
    }
}

impl<D, const M: usize> Default for Ready<D, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D: core::fmt::Debug, const M: usize> core::fmt::Debug for Ready<D, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, D, const M: usize> IntoIterator for &'a Ready<D, M> {
    type Item = (&'a SelectorKey<D>, Events);
    type IntoIter = Iter<'a, D>;
    #[inline]
    fn into_iter(self) -> Iter<'a, D> {
        self.iter()
    }
}

/// Iterator over the entries of a [`Ready`].
#[derive(Debug, Clone)]
pub struct Iter<'a, D> {
    inner: core::slice::Iter<'a, (SelectorKey<D>, Events)>,
}

impl<'a, D> Iterator for Iter<'a, D> {
    type Item = (&'a SelectorKey<D>, Events);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, e)| (k, *e))
    }
    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<D> DoubleEndedIterator for Iter<'_, D> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|(k, e)| (k, *e))
    }
}

impl<D> ExactSizeIterator for Iter<'_, D> {}

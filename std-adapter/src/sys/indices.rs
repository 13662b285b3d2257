//! Indices into the arrays of the backends that keep their registrations
//! in arrays of their own (poll, WSAPoll, Winsock select): the index a
//! registration gets is its [`BackendSlot`](selectors2_core::BackendSlot),
//! handed back by the selector to `modify` and `unregister`. (Not to be
//! confused with the key table's slots, which are the core's.)

use std::io;

/// Hands out slot numbers below a limit: the most recently freed one
/// first (its array entries are warm), else the next never-used one.
/// When the last slot in use is given back it starts over from 0, so that
/// a backend can empty its arrays and scan nothing once everything is
/// unregistered.
#[derive(Debug)]
pub(crate) struct IndexPool {
    /// Freed slots below `next`, reused last-in first-out. Reserved for
    /// `limit` entries at construction: pushing never allocates.
    free: Vec<u32>,
    /// Slots `0..next` have been handed out since the last start-over.
    next: u32,
    limit: u32,
    in_use: u32,
}

impl IndexPool {
    /// A pool of `limit` slots (at least 1, at most `u32::MAX`), or
    /// `OutOfMemory`.
    pub(crate) fn new(limit: usize) -> io::Result<Self> {
        let limit = u32::try_from(limit.max(1)).unwrap_or(u32::MAX);
        Ok(IndexPool {
            free: super::vec_with_capacity(limit as usize)?,
            next: 0,
            limit,
            in_use: 0,
        })
    }

    /// Raises the limit to `limit` slots (a smaller one changes nothing),
    /// reserving room to free them all; `OutOfMemory`, changing nothing,
    /// if that allocation fails.
    pub(crate) fn grow(&mut self, limit: usize) -> io::Result<()> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        if limit > self.limit {
            super::reserve_total(&mut self.free, limit as usize)?;
            self.limit = limit;
        }
        Ok(())
    }

    /// A free slot, or `QuotaExceeded` when all `limit` are in use (the
    /// selector never asks for more than its capacity; a backend called
    /// directly may).
    #[inline]
    pub(crate) fn take(&mut self) -> io::Result<u32> {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None if self.next < self.limit => {
                self.next += 1;
                self.next - 1
            }
            None => return Err(io::Error::from(io::ErrorKind::QuotaExceeded)),
        };
        self.in_use += 1;
        Ok(slot)
    }

    /// Gives back `slot` (one [`take`](Self::take) returned and not given
    /// back since). Returns `true` when no slot is in use any more: the pool
    /// has started over, and the caller may clear its arrays.
    #[inline]
    pub(crate) fn give_back(&mut self, slot: u32) -> bool {
        self.in_use -= 1;
        if self.in_use == 0 {
            self.free.clear();
            self.next = 0;
            true
        } else {
            self.free.push(slot);
            false
        }
    }

    /// One more than the highest slot handed out since the last start-over.
    #[cfg(test)]
    pub(crate) fn high_water(&self) -> u32 {
        self.next
    }

    /// Whether no slot is in use.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.in_use == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_the_last_freed_slot_and_starts_over_when_empty() {
        let mut pool = IndexPool::new(3).unwrap();
        assert!(pool.is_empty());
        let taken: Vec<u32> = (0..3).map(|_| pool.take().unwrap()).collect();
        assert_eq!(taken, [0, 1, 2]);
        assert_eq!(
            pool.take().unwrap_err().kind(),
            io::ErrorKind::QuotaExceeded
        );
        assert!(!pool.give_back(0));
        assert!(!pool.give_back(2));
        assert_eq!(pool.take().unwrap(), 2, "last freed first");
        assert_eq!(pool.high_water(), 3);
        assert!(!pool.give_back(2));
        assert!(pool.give_back(1), "the last one in use");
        assert!(pool.is_empty());
        assert_eq!(pool.high_water(), 0);
        assert_eq!(pool.take().unwrap(), 0, "fresh numbers again");
    }

    #[test]
    fn grow_raises_the_limit_and_keeps_slots_in_use() {
        let mut pool = IndexPool::new(2).unwrap();
        assert_eq!((pool.take().unwrap(), pool.take().unwrap()), (0, 1));
        assert!(pool.take().is_err());
        pool.grow(1).unwrap(); // smaller: nothing changes
        assert!(pool.take().is_err());
        pool.grow(4).unwrap();
        assert!(
            pool.free.capacity() >= 4,
            "freeing every slot never allocates"
        );
        assert!(!pool.give_back(0));
        assert_eq!(pool.take().unwrap(), 0, "freed slots first");
        assert_eq!((pool.take().unwrap(), pool.take().unwrap()), (2, 3));
        assert!(pool.take().is_err());
    }

    #[test]
    fn a_zero_limit_still_holds_one() {
        let mut pool = IndexPool::new(0).unwrap();
        assert_eq!(pool.take().unwrap(), 0);
        assert!(pool.take().is_err());
    }
}

//! The key table of a std selector: the core's unsized [`KeyMap<D>`] on
//! the heap, allocated zeroed. All-zero bytes are an empty table (the
//! core's guarantee), so the allocator's zeroed pages stay untouched, and
//! not resident, until keys are stored in them: a selector costs memory
//! for the keys it holds, not for the capacity it reserved.

#![allow(unsafe_code)] // one zeroed allocation turned into a `Box`

use std::alloc::{self, Layout};
use std::io;

use selectors2_core::{KeyMap, Slot};

/// An empty table for `capacity` keys: the next power of two of slots
/// (the home slot is then a mask), limited to `capacity` keys when
/// `limit` is set, else holding one per slot. `InvalidInput` for 0 or more
/// than the largest table, `OutOfMemory` when the allocation fails.
pub(crate) fn zeroed_table<D>(capacity: usize, limit: bool) -> io::Result<Box<KeyMap<D>>> {
    let Some((slots, keys)) = KeyMap::<D>::layout_for(capacity) else {
        return Err(bad_capacity());
    };
    let layout = table_layout::<D>(slots).ok_or_else(bad_capacity)?;
    let mut table = alloc_zeroed_table::<D>(layout, slots)?;
    if limit {
        // An empty table takes any limit.
        table.set_limit(keys);
    }
    Ok(table)
}

/// How many slots a table for `capacity` keys has (what the backend's
/// buffers are sized for), or `None` for 0 or too many.
pub(crate) fn slots_for(capacity: usize) -> Option<usize> {
    KeyMap::<()>::layout_for(capacity).map(|(slots, _)| slots)
}

/// The layout of a `KeyMap<D>` of `slots` slots. `KeyMap` is `repr(C)`,
/// so it is the header's (`KeyMap` with no slot) extended by the array's,
/// which is how `Layout::for_value` measures the `Box` when it frees it
/// (checked by `layout_is_what_box_frees`).
fn table_layout<D>(slots: usize) -> Option<Layout> {
    let header = Layout::new::<KeyMap<D, [Slot<D>; 0]>>();
    let (layout, _) = header.extend(Layout::array::<Slot<D>>(slots).ok()?).ok()?;
    Some(layout.pad_to_align())
}

fn alloc_zeroed_table<D>(layout: Layout, slots: usize) -> io::Result<Box<KeyMap<D>>> {
    if slots == 0 {
        return Err(bad_capacity());
    }
    // SAFETY: `layout` has a non-zero size: at least one slot, and a slot
    // is not zero-sized (it holds a `u32` discriminant).
    let raw = unsafe { alloc::alloc_zeroed(layout) };
    if raw.is_null() {
        return Err(io::Error::from(io::ErrorKind::OutOfMemory));
    }
    // A slice pointer's length becomes the unsized `KeyMap`'s: `slots`.
    let table = std::ptr::slice_from_raw_parts_mut(raw.cast::<Slot<D>>(), slots) as *mut KeyMap<D>;
    // SAFETY: `raw` is a live allocation of the global allocator with the
    // layout `Box` will free it with (`table_layout`), not aliased; its
    // bytes are all zero, which is a valid empty `KeyMap<D>` of `slots`
    // slots (the core promises it: its header is zero, and a slot's state
    // is a `u32`-tagged enum whose vacant variant is 0; its
    // `a_zeroed_table_is_an_empty_table` test checks it under Miri).
    Ok(unsafe { Box::from_raw(table) })
}

#[cold]
fn bad_capacity() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "a selector's capacity must be from 1 to 2^31 keys",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout_is_what_box_frees_for<D>() {
        for capacity in [1, 2, 3, 100, 4096, 5000] {
            let table = zeroed_table::<D>(capacity, false).unwrap();
            let slots = slots_for(capacity).unwrap();
            assert_eq!(
                Layout::for_value(&*table),
                table_layout::<D>(slots).unwrap()
            );
            assert_eq!(table.capacity(), slots);
            assert!(table.is_empty());
            let limited = zeroed_table::<D>(capacity, true).unwrap();
            assert_eq!(limited.capacity(), capacity);
        }
    }

    #[test]
    fn layout_is_what_box_frees() {
        layout_is_what_box_frees_for::<usize>();
        layout_is_what_box_frees_for::<u8>();
        layout_is_what_box_frees_for::<()>();
        layout_is_what_box_frees_for::<[u64; 8]>();
        layout_is_what_box_frees_for::<u128>();
        layout_is_what_box_frees_for::<String>();
    }

    #[test]
    fn capacities_out_of_range_are_refused() {
        for capacity in [0, (1 << 31) + 1, usize::MAX] {
            let e = zeroed_table::<usize>(capacity, false).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{capacity}");
        }
        assert_eq!(slots_for(100), Some(128));
        assert_eq!(slots_for(0), None);
    }
}

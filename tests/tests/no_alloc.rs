#![allow(unsafe_code)] // a counting global allocator
//! DESIGN: nothing allocates while `len() < capacity()`. A counting
//! global allocator proves that register, modify, unregister, select, wake
//! and drain make no heap allocation within the reserved capacity, on
//! every backend; that a register past it grows (allocates) and goes on
//! allocation-free; and that a fixed capacity never allocates.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use selectors2::sys::OsBackend;
use selectors2::{EVENT_READ, EVENT_WRITE, Ready, Selector, Waker};
use selectors2_tests::{AsRawFd, drain, pair, poke};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Per thread: the tests of this file run in parallel, each counting
    /// its own thread's allocations.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn count_one() {
    if COUNTING.with(Cell::get) {
        ALLOCS.with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.with(Cell::get) - before
}

fn exercise<B: OsBackend>() -> (String, usize) {
    // The waker and 24 pairs: 25 keys, within a reservation of 25 (32).
    let mut sel = Selector::<B, u64>::with_capacity(25).unwrap();
    let pairs: Vec<_> = (0..24).map(|_| pair()).collect();
    let waker = Waker::new().unwrap();
    let mut small: Ready<u64, 4> = Ready::new();
    let mut big: Ready<u64, 64> = Ready::new();
    let n = allocations(|| {
        sel.register(&waker, EVENT_READ, 0).unwrap();
        for round in 0..3u64 {
            for (i, (a, b)) in pairs.iter().enumerate() {
                sel.register(a, EVENT_READ, i as u64).unwrap();
                poke(b);
            }
            // More ready than `small` holds: the fair-overflow path.
            for _ in 0..8 {
                sel.select(&mut small, Some(Duration::ZERO)).unwrap();
            }
            sel.select(&mut big, Some(Duration::from_millis(1)))
                .unwrap();
            for (i, (a, _)) in pairs.iter().enumerate() {
                sel.modify(a, EVENT_READ | EVENT_WRITE, i as u64 + round)
                    .unwrap();
                sel.modify(a, EVENT_READ | EVENT_WRITE, i as u64).unwrap(); // data only
            }
            sel.select(&mut big, None).unwrap();
            waker.wake().unwrap();
            sel.select(&mut big, Some(Duration::from_secs(1))).unwrap();
            waker.drain().unwrap();
            for (a, _) in &pairs {
                drain(a);
                sel.unregister(a.as_raw_fd()).unwrap();
            }
            // Errors allocate nothing either (except `Io`, which carries an
            // OS error code, not a heap string).
            assert!(sel.unregister(pairs[0].0.as_raw_fd()).is_err());
            assert!(sel.register(-1, EVENT_READ, 0).is_err());
            sel.select(&mut small, Some(Duration::from_micros(10)))
                .unwrap();
            // The deadline form and the EINTR hook, on their waiting paths.
            let deadline = std::time::Instant::now() + Duration::from_micros(10);
            sel.select_until(&mut small, deadline).unwrap();
            sel.select_with_eintr(&mut small, Some(Duration::from_micros(10)), || Ok(()))
                .unwrap();
        }
        sel.unregister(&waker).unwrap();
    });
    (sel.backend_kind().to_string(), n)
}

#[test]
fn no_allocation_after_construction_on_any_backend() {
    // The counter counts: a box is one allocation.
    assert_eq!(
        allocations(|| drop(std::hint::black_box(Box::new(1u64)))),
        1
    );
    #[allow(unused_mut)] // epoll is added on Linux only
    let mut results = vec![
        exercise::<selectors2::sys::Poll>(),
        exercise::<selectors2::sys::Select>(),
        exercise::<selectors2::sys::Auto>(),
    ];
    #[cfg(has_epoll)]
    results.push(exercise::<selectors2::sys::Epoll>());
    for (backend, n) in &results {
        println!("{backend}: {n} allocations");
    }
    assert!(results.iter().all(|(_, n)| *n == 0), "{results:?}");
}

/// Registers `pairs` into `sel`, counting the allocations of each call.
fn allocations_per_register<B: OsBackend>(
    sel: &mut Selector<B, u64>,
    pairs: &[(selectors2_tests::Stream, selectors2_tests::Stream)],
) -> Vec<usize> {
    pairs
        .iter()
        .enumerate()
        .map(|(i, (a, _))| allocations(|| drop(sel.register(a, EVENT_READ, i as u64))))
        .collect()
}

fn growth<B: OsBackend>() {
    let pairs: Vec<_> = (0..9).map(|_| pair()).collect();
    let mut sel = Selector::<B, u64>::with_capacity(4).unwrap();
    let counts = allocations_per_register(&mut sel, &pairs);
    let kind = sel.backend_kind();
    // Only the registers that found the table full allocated: the 5th
    // (4 -> 8) and the 9th (8 -> 16).
    for (i, n) in counts.iter().enumerate() {
        assert_eq!(
            *n > 0,
            i == 4 || i == 8,
            "{kind}: register {i} made {n} allocations"
        );
    }
    assert_eq!((sel.len(), sel.capacity()), (9, 16), "{kind}");
    // After growing, the usual calls allocate nothing again.
    let mut ready: Ready<u64, 16> = Ready::new();
    for (_, b) in &pairs {
        poke(b);
    }
    let n = allocations(|| {
        assert_eq!(sel.select(&mut ready, Some(Duration::ZERO)).unwrap(), 9);
        for (a, _) in &pairs {
            sel.unregister(a).unwrap();
        }
    });
    assert_eq!(n, 0, "{kind}");

    // A fixed capacity never allocates: the register past it is refused.
    let mut fixed = Selector::<B, u64>::with_fixed_capacity(4).unwrap();
    let counts = allocations_per_register(&mut fixed, &pairs);
    assert_eq!(counts, [0; 9], "{kind}");
    assert_eq!((fixed.len(), fixed.capacity()), (4, 4), "{kind}");
}

#[test]
fn a_register_past_capacity_grows_and_a_fixed_capacity_never_allocates() {
    growth::<selectors2::sys::Poll>();
    growth::<selectors2::sys::Select>();
    growth::<selectors2::sys::Auto>();
    #[cfg(has_epoll)]
    growth::<selectors2::sys::Epoll>();
}

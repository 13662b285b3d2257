//! A bound on how deep Python code can make this module recurse: a
//! `fileno()` (or `__repr__`, `&` on the events, `!=` on the data...) that
//! calls the same selector again, recursively.
//!
//! The standard library's selectors are Python: such a recursion runs
//! Python frames, which CPython counts against `sys.getrecursionlimit()`
//! and, from 3.11 on, keeps off the C stack. Each level here also takes
//! this module's and CPython's C frames, so the recursion limit alone does
//! not stop it before the thread's stack runs out (a small thread stack,
//! or a raised limit): a crash. So every method that may run the caller's
//! Python code first checks the room left on the thread's stack, and
//! raises `RecursionError` as CPython does when it is short.

use std::cell::Cell;

use pyo3::exceptions::PyRecursionError;
use pyo3::prelude::*;

/// Room kept free below the check: enough for one more level (this
/// module's frames, CPython's around the call into Python code) and for
/// raising the error. An eighth of the stack, within these bounds.
const MIN_MARGIN: usize = 16 * 1024;
const MAX_MARGIN: usize = 256 * 1024;

thread_local! {
    /// The lowest stack address a check lets a call go on at; 0 until
    /// this thread's first check, 1 where the stack's bounds are unknown
    /// (no check).
    static FLOOR: Cell<usize> = const { Cell::new(0) };
}

/// `RecursionError` when this thread's stack is nearly used up (see the
/// module's documentation); cheap (a thread-local and a comparison).
#[inline]
pub(crate) fn check() -> PyResult<()> {
    let here = 0u8;
    let here = std::ptr::addr_of!(here) as usize;
    let floor = FLOOR.with(|f| {
        let mut v = f.get();
        if v == 0 {
            v = floor_of_this_thread();
            f.set(v);
        }
        v
    });
    if here < floor {
        return Err(too_deep());
    }
    Ok(())
}

#[cold]
fn too_deep() -> PyErr {
    PyRecursionError::new_err("maximum recursion depth exceeded while calling a Python object")
}

fn margin(size: usize) -> usize {
    (size / 8).clamp(MIN_MARGIN, MAX_MARGIN)
}

/// The stack's lowest address plus the margin (stacks grow down on every
/// platform this is built for); 1 when unknown.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[cold]
fn floor_of_this_thread() -> usize {
    #![allow(unsafe_code)]
    // SAFETY: `attr` is initialised by `pthread_getattr_np` before it is
    // read, and destroyed once; the out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return 1;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let got = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if got != 0 || addr.is_null() || size == 0 {
            return 1;
        }
        (addr as usize).saturating_add(margin(size)).max(1)
    }
}

#[cfg(target_vendor = "apple")]
#[cold]
fn floor_of_this_thread() -> usize {
    #![allow(unsafe_code)]
    // SAFETY: both functions only read the calling thread's own record.
    unsafe {
        let this = libc::pthread_self();
        let top = libc::pthread_get_stackaddr_np(this) as usize;
        let size = libc::pthread_get_stacksize_np(this);
        if top == 0 || size == 0 || size > top {
            return 1;
        }
        (top - size).saturating_add(margin(size)).max(1)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
#[cold]
fn floor_of_this_thread() -> usize {
    1
}

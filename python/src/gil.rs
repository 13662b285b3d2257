//! Releasing the GIL around a blocking wait.
//!
//! [`detach`] is `Python::detach` but for where the GIL is taken back: on
//! the targets that build `csrc/reattach.c`, from that C frame. CPython
//! before 3.14 ends a daemon thread that asks for the GIL during
//! finalization with `pthread_exit`, whose forced unwind would otherwise
//! run through this module's Rust frames (undefined behaviour: a crash at
//! exit with some linkers). There the unwind stops in the C frame, which
//! parks the thread for good (as CPython 3.14 does), so the Rust frames
//! above are never unwound. Elsewhere PyO3's own `detach` serves.
//!
//! What this cannot cover: Python code this module calls (a file object's
//! `fileno()`, a patched `select.select`) may itself give the GIL to
//! another thread and ask for it back; on CPython before 3.14 the
//! interpreter then ends the thread from its own frames, below ours. That
//! is every extension's lot there; it takes a daemon thread running such
//! Python code inside one of our calls at the moment of exit.

use pyo3::Python;

/// Runs `f` with the GIL released, and takes it back (even when `f`
/// panics). `f` must not touch Python objects (it cannot: `Python` and
/// `Bound` are not `Send`) nor drop a `Py` (PyO3 would still count this
/// thread as attached).
#[cfg(c_reattach)]
pub(crate) fn detach<T, F>(_py: Python<'_>, f: F) -> T
where
    F: Send + FnOnce() -> T,
    T: Send,
{
    #![allow(unsafe_code)]
    use pyo3::ffi::{PyEval_SaveThread, PyThreadState};

    unsafe extern "C" {
        /// `csrc/reattach.c`: `PyEval_RestoreThread(tstate)`, parking the
        /// thread for good if the interpreter ends it instead.
        fn selectors2_reattach(tstate: *mut PyThreadState);
    }

    /// Takes the GIL back when dropped, so also when `f` unwinds.
    struct Reattach(*mut PyThreadState);
    impl Drop for Reattach {
        fn drop(&mut self) {
            // SAFETY: `self.0` is this thread's state, saved by
            // `PyEval_SaveThread` below and not restored since; the C
            // function only passes it to `PyEval_RestoreThread`.
            unsafe { selectors2_reattach(self.0) }
        }
    }

    // SAFETY: the `Python` token proves this thread holds the GIL; the
    // guard gives it back to this same thread before `detach` returns.
    let _reattach = Reattach(unsafe { PyEval_SaveThread() });
    f()
}

/// Runs `f` with the GIL released, and takes it back (PyO3's `detach`).
#[cfg(not(c_reattach))]
pub(crate) fn detach<T, F>(py: Python<'_>, f: F) -> T
where
    F: Send + FnOnce() -> T,
    T: Send,
{
    py.detach(f)
}

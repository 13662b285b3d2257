//! `selectors2._selectors2`: the native half of the Python module
//! `selectors2`.
//!
//! One class, `_Selector`, holds a [`selectors2::DefaultSelector`] opened on
//! exactly one mechanism and does the hot paths (`register`, `unregister`,
//! `modify`, `select`, `get_key`) with Python's semantics. The Python half
//! (`selectors2/__init__.py`) adds what is easier in Python: the
//! `SelectorKey` namedtuple, the `BaseSelector` ABC, the read-only mapping.
//!
//! The key table lives twice, kept in step by every method here: in the
//! Rust selector (fd → slot, for the OS) and in a Python dict shared with
//! the Python half (fd → `SelectorKey`, for `get_map()`, in registration
//! order like CPython's). A slot indexes `keys`, so `select` finds each
//! ready key object without touching the dict.
//!
//! One file per job: `table.rs` (the Rust selector and its `Ready`),
//! `selector.rs` (the class and its methods), `handoff.rs` (turns across
//! threads, and `fork()`), `gil.rs` (releasing the GIL and taking it back
//! safely at interpreter exit), `errors.rs` (the exceptions), `convert.rs`
//! (arguments, as the standard library converts them), `green.rs` (gevent
//! and eventlet), `stack.rs` (`RecursionError` before the C stack runs
//! out). This file only wires the module.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};
use selectors2::BackendKind;

mod convert;
mod errors;
mod gil;
mod green;
mod handoff;
mod selector;
mod stack;
mod table;

use crate::handoff::forked;
use crate::selector::NativeSelector;

/// The mechanisms this platform has, best first.
#[pyfunction]
fn available() -> Vec<String> {
    BackendKind::available()
        .iter()
        .map(|k| k.to_string())
        .collect()
}

/// The native half of `selectors2`.
#[pymodule]
fn _selectors2(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeSelector>()?;
    m.add_function(wrap_pyfunction!(available, m)?)?;
    handoff::install_fork_hook();
    // Where there is `fork()` (and counted twice where `pthread_atfork`
    // counts it too: any change tells a child).
    if let Ok(register_at_fork) = m.py().import("os")?.getattr("register_at_fork") {
        let kwargs = PyDict::new(m.py());
        kwargs.set_item("after_in_child", wrap_pyfunction!(forked, m)?)?;
        register_at_fork.call((), Some(&kwargs))?;
    }
    // The distribution's version: pyproject.toml takes it from Cargo.toml.
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

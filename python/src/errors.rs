//! The Python exceptions this module raises, worded and typed as the
//! standard library's (an `OSError` carries `errno` and `strerror`).

use std::io;

use pyo3::exceptions::{PyKeyError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use selectors2::Error;

/// A selector is held by one caller at a time while it is inside Rust.
/// Only `select` holds it while Python code of other threads runs (it
/// waits with the GIL released); a call from another thread then gets
/// its turn through the selector's [`Handoff`](crate::handoff::Handoff), as with the standard
/// library's selectors, where other threads may call a selector whose
/// `select` waits. This error is for what cannot be handed off: a child
/// process after `fork()` in which the `select` that held the selector is
/// not running, the interpreter's exit (a `select` in a daemon thread
/// never gets the GIL back to let go), a wait with no wake-up fd (the
/// process was out of fds when the `select` began), and the holding
/// thread itself (should Python code run inside a method after all).
#[cold]
pub(crate) fn busy() -> PyErr {
    PyRuntimeError::new_err(
        "selector is busy: it is held by a select() that cannot let go (in the parent of \
         this forked process, at interpreter exit, or out of fds for its wake-up), or by \
         this very thread",
    )
}

/// Why a call that held the selector failed. An error whose text needs
/// the file object's `repr()` (Python code) is only described once the
/// selector is released: [`Failure::into_py`].
pub(crate) enum Failure {
    Py(PyErr),
    Sel(Error),
    NotRegistered,
}

impl From<PyErr> for Failure {
    #[inline]
    fn from(e: PyErr) -> Self {
        Failure::Py(e)
    }
}

impl Failure {
    #[cold]
    pub(crate) fn into_py(self, fileobj: &Bound<'_, PyAny>) -> PyErr {
        match self {
            Failure::Py(e) => e,
            Failure::Sel(e) => to_py(e, fileobj),
            Failure::NotRegistered => not_registered(fileobj),
        }
    }
}

#[cold]
pub(crate) fn closed() -> PyErr {
    PyRuntimeError::new_err("Selector is closed")
}

#[cold]
pub(crate) fn not_registered(fileobj: &Bound<'_, PyAny>) -> PyErr {
    match fileobj.repr() {
        Ok(r) => PyKeyError::new_err(format!("{r} is not registered")),
        Err(e) => e,
    }
}

#[cold]
pub(crate) fn invalid_events(events: &Bound<'_, PyAny>) -> PyErr {
    match events.repr() {
        Ok(r) => PyValueError::new_err(format!("Invalid events: {r}")),
        Err(e) => e,
    }
}

/// An OS error as CPython raises one: `OSError(errno, strerror)`, which
/// Python makes the errno's subclass (`PermissionError` for `EPERM`,
/// `FileNotFoundError` for `ENOENT`...) with `errno` and `strerror` set,
/// so that `except OSError as e: if e.errno == errno.EBADF` works as on the
/// standard library's selectors. (PyO3's own conversion keeps the subclass
/// but leaves `errno` as `None`.) The text is `os.strerror`'s, as CPython's.
#[cold]
pub(crate) fn os_error(py: Python<'_>, e: io::Error) -> PyErr {
    let Some(code) = e.raw_os_error() else {
        return PyErr::from(e);
    };
    let text = py
        .import(intern!(py, "os"))
        .and_then(|os| os.getattr(intern!(py, "strerror"))?.call1((code,)))
        .and_then(|t| t.extract::<String>());
    match text {
        Ok(text) => PyOSError::new_err((code, text)),
        Err(_) => PyErr::from(e),
    }
}

/// The adapter's error as the exception Python's selectors raise.
#[cold]
pub(crate) fn to_py(e: Error, fileobj: &Bound<'_, PyAny>) -> PyErr {
    match e {
        Error::InvalidEvents(bits) => PyValueError::new_err(format!("Invalid events: {bits}")),
        // Only select's FD_SETSIZE bound gets here (negative fds are
        // refused before): CPython's select() words it so.
        Error::InvalidFd(_) => PyValueError::new_err("filedescriptor out of range in select()"),
        Error::AlreadyRegistered(fd) => match fileobj.repr() {
            Ok(r) => PyKeyError::new_err(format!("{r} (FD {fd}) is already registered")),
            Err(e) => e,
        },
        Error::NotRegistered(_) => not_registered(fileobj),
        Error::Full { capacity } => PyOSError::new_err((
            libc::ENOSPC,
            format!("selector is full (capacity {capacity})"),
        )),
        Error::Io(e) => os_error(fileobj.py(), e),
        // `Error` grows without breaking (#[non_exhaustive]): an error this
        // module does not know yet still reaches Python, worded.
        other => PyOSError::new_err(other.to_string()),
    }
}

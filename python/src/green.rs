//! gevent and eventlet: whether `select.select` is monkey-patched (then a
//! `select` waits through it, in the Python half), and waking such waits
//! when another greenlet changes the selector.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyCFunction, PyModule};

use crate::selector::NativeSelector;

/// Wakes the `select`s that wait through a patched `select` module: the
/// caller is about to change the selector (see
/// [`NativeSelector::green_waits`]).
#[cold]
pub(crate) fn wake_green(this: &NativeSelector) {
    if let Some(waker) = &this.waker {
        // Cannot fail but for a closed fd, which nobody waits on.
        let _ = waker.wake();
    }
}

/// Whether `select.select` is gevent's or eventlet's: their
/// monkey-patching replaces it with a Python function that waits
/// cooperatively, switching to other greenlets. A wait in this module's
/// system calls would block every greenlet of the thread (the hub too),
/// so under such a patch `select` polls and waits through the patched
/// function instead (`_green_wait` in `selectors2/__init__.py`). Any other
/// replacement (a test's `mock.patch`, a wrapper that counts calls) is
/// not a green framework: the selector waits in its own system call, as
/// the standard library's do. Told by the module that defined the
/// function. Asked once per `select` that may wait (never for a poll); a
/// `select` module that cannot be imported counts as unpatched.
pub(crate) fn select_is_patched(py: Python<'_>) -> bool {
    static SELECT: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let Ok(module) = SELECT.get_or_try_init(py, || py.import("select").map(Bound::unbind)) else {
        return false;
    };
    let Ok(f) = module.bind(py).getattr(intern!(py, "select")) else {
        return false;
    };
    if f.is_instance_of::<PyCFunction>() {
        return false;
    }
    let Ok(owner) = f.getattr(intern!(py, "__module__")) else {
        return false;
    };
    let Ok(owner) = owner.extract::<std::borrow::Cow<'_, str>>() else {
        return false;
    };
    is_green_module(&owner)
}

/// Whether `name` is a module of gevent or eventlet (`gevent.select`,
/// `eventlet.green.select`...).
fn is_green_module(name: &str) -> bool {
    ["gevent", "eventlet"].iter().any(|top| {
        name.strip_prefix(top)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    })
}

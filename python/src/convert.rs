//! Python arguments to Rust values, as the standard library converts
//! them: file objects to fds, events, timeouts, mechanism names; and the
//! lookups of a file object in a selector.

use std::time::{Duration, Instant};

use pyo3::exceptions::{PyAttributeError, PyKeyError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt};
use selectors2::{BackendKind, Events};

use crate::errors::{invalid_events, not_registered};
use crate::handoff::borrow;
use crate::selector::NativeSelector;

pub(crate) fn kind_of(name: &str) -> PyResult<BackendKind> {
    Ok(match name {
        "epoll" => BackendKind::Epoll,
        "kqueue" => BackendKind::Kqueue,
        "poll" => BackendKind::Poll,
        "select" => BackendKind::Select,
        _ => return Err(PyValueError::new_err(format!("unknown mechanism {name:?}"))),
    })
}

/// Python's `_fileobj_lookup`: the fd of `fileobj`, or, when it has none
/// any more (a closed socket's `fileno()` is -1), the fd of the key
/// registered with this very object. `fileno()` runs with the selector
/// free; the search by identity borrows it briefly (no Python code runs
/// then).
pub(crate) fn lookup(slf: &Bound<'_, NativeSelector>, fileobj: &Bound<'_, PyAny>) -> PyResult<i64> {
    match fileobj_to_fd(fileobj) {
        Ok(fd) => Ok(fd),
        Err(e) if e.is_instance_of::<PyValueError>(fileobj.py()) => {
            match borrow(slf)?.fd_of_object(fileobj)? {
                Some(fd) => Ok(fd),
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// [`lookup`] for `unregister`, `modify` and `get_key`, which, as
/// Python's, report any `KeyError` of the lookup (a `fileno()` that raises
/// one) as `"<fileobj> is not registered"`.
pub(crate) fn lookup_registered(
    slf: &Bound<'_, NativeSelector>,
    fileobj: &Bound<'_, PyAny>,
) -> PyResult<i64> {
    lookup(slf, fileobj).map_err(|e| {
        if e.is_instance_of::<PyKeyError>(fileobj.py()) {
            not_registered(fileobj)
        } else {
            e
        }
    })
}

/// Python's `_fileobj_to_fd`: an int is the fd; anything else must have a
/// `fileno()` whose result `int()` accepts.
pub(crate) fn fileobj_to_fd(fileobj: &Bound<'_, PyAny>) -> PyResult<i64> {
    let fd = if let Ok(i) = fileobj.cast::<PyInt>() {
        int_fd(i)?
    } else {
        let py = fileobj.py();
        let converted = fileobj.call_method0(intern!(py, "fileno")).and_then(|n| {
            let n = py.get_type::<PyInt>().call1((n,))?;
            int_fd(n.cast::<PyInt>()?)
        });
        match converted {
            Ok(fd) => fd,
            Err(e) => {
                if e.is_instance_of::<PyAttributeError>(py)
                    || e.is_instance_of::<PyTypeError>(py)
                    || e.is_instance_of::<PyValueError>(py)
                {
                    return Err(PyValueError::new_err(format!(
                        "Invalid file object: {}",
                        fileobj.repr()?
                    )));
                }
                return Err(e);
            }
        }
    };
    if fd < 0 {
        return Err(PyValueError::new_err(format!(
            "Invalid file descriptor: {fd}"
        )));
    }
    Ok(fd)
}

/// An int fd, as Python's `_fileobj_to_fd` takes it: a negative one
/// beyond `i64` is an invalid file descriptor (`ValueError`), a positive
/// one beyond `i64` is no fd the OS has: `i64::MAX`, never registered, so
/// `get_key`, `modify` and `unregister` say it is not registered and
/// `register` meets [`raw_fd`]'s error, as the standard library does.
pub(crate) fn int_fd(i: &Bound<'_, PyInt>) -> PyResult<i64> {
    match i.extract::<i64>() {
        Ok(fd) => Ok(fd),
        Err(_) if i.lt(0)? => Err(PyValueError::new_err(format!(
            "Invalid file descriptor: {}",
            i.repr()?
        ))),
        Err(_) => Ok(i64::MAX),
    }
}

/// A checked fd number for the OS (`RawFd` is a C `int`): beyond it,
/// CPython's own conversion error. (`SelectSelector` turns it into its
/// `FD_SETSIZE` error: see `register_impl`.)
pub(crate) fn raw_fd(fd: i64) -> PyResult<i32> {
    i32::try_from(fd)
        .map_err(|_| PyOverflowError::new_err("Python int too large to convert to C int"))
}

/// The event mask Python accepts, checked as Python's selectors check it:
/// `not events or events & ~(EVENT_READ | EVENT_WRITE)` is a `ValueError`
/// (`None`, `0`, `''`, `4`), and `&` itself raises what it raises (a
/// `TypeError` for a str or a float). Any object with `&` works (numpy's
/// integers, say); a plain int takes the short way.
pub(crate) fn events_of(events: &Bound<'_, PyAny>) -> PyResult<Events> {
    let bits = if let Ok(i) = events.cast::<PyInt>() {
        i.extract::<i64>().map_err(|_| invalid_events(events))?
    } else {
        if !events.is_truthy()? || events.bitand(!3i64)?.is_truthy()? {
            return Err(invalid_events(events));
        }
        i64::from(events.bitand(1i64)?.is_truthy()?)
            | i64::from(events.bitand(2i64)?.is_truthy()?) << 1
    };
    if bits == 0 || bits & !3 != 0 {
        return Err(invalid_events(events));
    }
    Events::from_bits(bits as u8).ok_or_else(|| invalid_events(events))
}

/// Python's `select(timeout)`: `None` blocks, `<= 0` polls (an int below
/// any float too), a positive number of seconds waits (too large, or an
/// int beyond any float: as long as the OS can). An int or a
/// float (or a subclass) takes the short way; any other object is
/// converted as the standard library's selector of the same `kind`
/// converts it ([`unusual_timeout`]).
pub(crate) fn timeout_of(
    timeout: Option<&Bound<'_, PyAny>>,
    kind: BackendKind,
) -> PyResult<Option<Duration>> {
    let Some(t) = timeout else { return Ok(None) };
    if t.is_none() {
        return Ok(None);
    }
    if !t.is_instance_of::<PyFloat>() && !t.is_instance_of::<PyInt>() {
        return unusual_timeout(t, kind);
    }
    let secs: f64 = match t.extract() {
        Ok(secs) => secs,
        // An int beyond a float: its sign says poll or wait as long as the
        // OS can, as for any other number past those bounds.
        Err(_) if t.is_instance_of::<PyInt>() => {
            return Ok(Some(if t.lt(0)? {
                Duration::ZERO
            } else {
                Duration::MAX
            }));
        }
        Err(e) => return Err(e),
    };
    if secs.is_nan() {
        return Err(PyValueError::new_err("Invalid value NaN (not a number)"));
    }
    if secs <= 0.0 {
        return Ok(Some(Duration::ZERO));
    }
    Ok(Some(
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX),
    ))
}

/// A timeout object that `select.select()` and `kqueue.control()` take as
/// whole seconds: through `__index__`, or on Python before 3.10 also
/// `__int__` (with the `DeprecationWarning` CPython gave), else their
/// `TypeError`.
#[cold]
pub(crate) fn whole_seconds(t: &Bound<'_, PyAny>) -> PyResult<f64> {
    let py = t.py();
    let index = py
        .import(intern!(py, "operator"))?
        .getattr(intern!(py, "index"))?;
    match index.call1((t,)) {
        Ok(i) => i.extract::<f64>(),
        Err(e) if !e.is_instance_of::<PyTypeError>(py) => Err(e),
        Err(_)
            if py.version_info() < (3, 10) && t.get_type().hasattr(intern!(py, "__int__"))? =>
        {
            let warning = format!(
                "an integer is required (got type {}).  Implicit conversion to integers using \
                 __int__ is deprecated, and may be removed in a future version of Python.",
                t.get_type().qualname()?
            );
            let category = py.get_type::<pyo3::exceptions::PyDeprecationWarning>();
            PyErr::warn(py, &category, &std::ffi::CString::new(warning)?, 1)?;
            t.call_method0(intern!(py, "__int__"))?.extract::<f64>()
        }
        Err(_) => Err(PyTypeError::new_err("timeout must be a float or None")),
    }
}

/// A timeout that is neither an int nor a float (a `Decimal`, a
/// `Fraction`, an object with `__index__` or `__float__`), converted by
/// the very steps of the standard library's `select()` of that mechanism,
/// so that it is accepted or refused with the same error:
/// `SelectSelector` and `KqueueSelector` take `max(timeout, 0)`, which
/// must then be a float or an int ("timeout must be a float or None");
/// `PollSelector` waits `math.ceil(timeout * 1e3)` milliseconds and
/// `EpollSelector` `math.ceil(timeout * 1e3) * 1e-3` seconds once
/// `timeout <= 0` is false (a `Decimal` fails at `* 1e3`, a `Fraction`
/// passes).
#[cold]
pub(crate) fn unusual_timeout(
    t: &Bound<'_, PyAny>,
    kind: BackendKind,
) -> PyResult<Option<Duration>> {
    let py = t.py();
    let secs = match kind {
        BackendKind::Epoll | BackendKind::Poll => {
            if t.le(0)? {
                return Ok(Some(Duration::ZERO));
            }
            let ceil = py
                .import(intern!(py, "math"))?
                .getattr(intern!(py, "ceil"))?;
            let millis = ceil.call1((t.mul(1e3)?,))?;
            millis.extract::<f64>()? / 1e3
        }
        _ => {
            let max = py
                .import(intern!(py, "builtins"))?
                .getattr(intern!(py, "max"))?;
            let t = max.call1((t, 0))?;
            if t.is_instance_of::<PyFloat>() || t.is_instance_of::<PyInt>() {
                t.extract::<f64>()?
            } else {
                whole_seconds(&t)?
            }
        }
    };
    let float = PyFloat::new(py, secs);
    timeout_of(Some(float.as_any()), kind)
}

/// `t` from now, or as far as an `Instant` goes.
pub(crate) fn deadline_after(t: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(t)
        .or_else(|| now.checked_add(Duration::from_secs(u32::MAX.into())))
        .unwrap_or(now)
}

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

use std::io;
use std::time::Duration;

use pyo3::exceptions::{
    PyAttributeError, PyKeyError, PyOSError, PyOverflowError, PyRuntimeError, PyTypeError,
    PyValueError,
};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyTuple};
use pyo3::{PyTraverseError, intern};
use selectors2::{BackendKind, DefaultSelector, Error, Events, Ready};

/// Keys one selector holds at most: the largest table the core offers.
/// `register` beyond it raises `OSError(ENOSPC)`.
const CAPACITY: usize = 65536;

/// A mechanism and its key table, at one of the capacities a selector
/// goes through, with a `Ready` of as many entries as keys (`select`
/// always returns every ready fd, as Python's does). A selector starts
/// with the smallest (a few KiB, made in microseconds, as the standard
/// library's are) and moves to the next, four times bigger, when
/// `register` finds it full: memory follows the number of keys within a
/// factor of four. Growing keeps the mechanism, `fileno()` and every
/// registration (`Selector::grow`).
enum Table {
    T64(DefaultSelector<u32, 64>, Box<Ready<u32, 64>>),
    T256(DefaultSelector<u32, 256>, Box<Ready<u32, 256>>),
    T1024(DefaultSelector<u32, 1024>, Box<Ready<u32, 1024>>),
    T4096(DefaultSelector<u32, 4096>, Box<Ready<u32, 4096>>),
    T16384(DefaultSelector<u32, 16384>, Box<Ready<u32, 16384>>),
    T65536(DefaultSelector<u32, CAPACITY>, Box<Ready<u32, CAPACITY>>),
}

/// `$body` with `$sel` and `$ready` bound to the table's selector and
/// `Ready`, whatever its capacity.
macro_rules! with_table {
    ($table:expr, |$sel:ident, $ready:ident| $body:expr) => {
        match $table {
            Table::T64($sel, $ready) => $body,
            Table::T256($sel, $ready) => $body,
            Table::T1024($sel, $ready) => $body,
            Table::T4096($sel, $ready) => $body,
            Table::T16384($sel, $ready) => $body,
            Table::T65536($sel, $ready) => $body,
        }
    };
}

impl Table {
    /// A table of the smallest capacity on mechanism `kind` only.
    fn open(kind: BackendKind) -> io::Result<Table> {
        let sel = DefaultSelector::<u32, 64>::with_backends(&[kind])?;
        Ok(Table::T64(sel, Box::new(Ready::new())))
    }

    /// The same selector with the next capacity, or itself at the largest.
    #[cold]
    fn grow(self) -> Table {
        fn ready<const M: usize>() -> Box<Ready<u32, M>> {
            Box::new(Ready::new())
        }
        match self {
            Table::T64(sel, _) => Table::T256(sel.grow(), ready()),
            Table::T256(sel, _) => Table::T1024(sel.grow(), ready()),
            Table::T1024(sel, _) => Table::T4096(sel.grow(), ready()),
            Table::T4096(sel, _) => Table::T16384(sel.grow(), ready()),
            Table::T16384(sel, _) => Table::T65536(sel.grow(), ready()),
            largest @ Table::T65536(..) => largest,
        }
    }

    fn capacity(&self) -> usize {
        with_table!(self, |sel, _r| sel.capacity())
    }

    fn backend_kind(&self) -> BackendKind {
        with_table!(self, |sel, _r| sel.backend_kind())
    }

    fn fileno(&self) -> Option<i32> {
        with_table!(self, |sel, _r| sel.fileno())
    }

    /// The slot (key data) registered for `fd`.
    fn slot_of(&self, fd: i32) -> Option<u32> {
        with_table!(self, |sel, _r| sel.get_key(fd).map(|k| k.data))
    }

    fn unregister(&mut self, fd: i32) -> Result<u32, Error> {
        with_table!(self, |sel, _r| sel.unregister(fd).map(|k| k.data))
    }

    fn modify(&mut self, fd: i32, events: Events, slot: u32) -> Result<(), Error> {
        with_table!(self, |sel, _r| sel.modify(fd, events, slot).map(drop))
    }
}

/// The native selector. Not for direct use: `selectors2.EpollSelector` and
/// its siblings subclass it.
#[pyclass(subclass, module = "selectors2._selectors2", name = "_Selector")]
struct NativeSelector {
    /// `None` before `_open` and after `close`.
    table: Option<Table>,
    /// The `SelectorKey` of each slot; `None` for a free slot.
    keys: Vec<Option<Py<PyAny>>>,
    free: Vec<u32>,
    /// fd → `SelectorKey`, shared with the Python half (`_fd_to_key`).
    map: Option<Py<PyDict>>,
    key_cls: Option<Py<PyAny>>,
    /// `tuple.__new__`: what a namedtuple's own `__new__` calls, without
    /// that Python frame (a third of the cost of `register`).
    tuple_new: Option<Py<PyAny>>,
}

fn kind_of(name: &str) -> PyResult<BackendKind> {
    Ok(match name {
        "epoll" => BackendKind::Epoll,
        "kqueue" => BackendKind::Kqueue,
        "poll" => BackendKind::Poll,
        "select" => BackendKind::Select,
        _ => return Err(PyValueError::new_err(format!("unknown mechanism {name:?}"))),
    })
}

/// A selector is used by one caller at a time while it is inside Rust:
/// while `select` waits (GIL released), another thread's call on the same
/// selector gets this, and so does a signal handler's that runs inside
/// that `select`. Every other method runs the caller's Python code (a
/// `fileno()`, an `__eq__`, a `__repr__`, a destructor) only while it
/// does not hold the selector, so that code may call the selector again,
/// as with the standard library's.
#[cold]
fn busy() -> PyErr {
    PyRuntimeError::new_err(
        "selector is busy: its select() is waiting (in another thread, or interrupted by \
         the signal handler that is running)",
    )
}

/// Why a call that held the selector failed. An error whose text needs
/// the file object's `repr()` (Python code) is only described once the
/// selector is released: [`Failure::into_py`].
enum Failure {
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
    fn into_py(self, fileobj: &Bound<'_, PyAny>) -> PyErr {
        match self {
            Failure::Py(e) => e,
            Failure::Sel(e) => to_py(e, fileobj),
            Failure::NotRegistered => not_registered(fileobj),
        }
    }
}

/// Python's `_fileobj_lookup`: the fd of `fileobj`, or, when it has none
/// any more (a closed socket's `fileno()` is -1), the fd of the key
/// registered with this very object. `fileno()` runs with the selector
/// free; the search by identity borrows it briefly (no Python code runs
/// then).
fn lookup(slf: &Bound<'_, NativeSelector>, fileobj: &Bound<'_, PyAny>) -> PyResult<i64> {
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
/// one) as "<fileobj> is not registered".
fn lookup_registered(slf: &Bound<'_, NativeSelector>, fileobj: &Bound<'_, PyAny>) -> PyResult<i64> {
    lookup(slf, fileobj).map_err(|e| {
        if e.is_instance_of::<PyKeyError>(fileobj.py()) {
            not_registered(fileobj)
        } else {
            e
        }
    })
}

#[inline]
fn borrow_mut<'py>(slf: &Bound<'py, NativeSelector>) -> PyResult<PyRefMut<'py, NativeSelector>> {
    slf.try_borrow_mut().map_err(|_| busy())
}

#[inline]
fn borrow<'py>(slf: &Bound<'py, NativeSelector>) -> PyResult<PyRef<'py, NativeSelector>> {
    slf.try_borrow().map_err(|_| busy())
}

#[cold]
fn closed() -> PyErr {
    PyRuntimeError::new_err("Selector is closed")
}

#[cold]
fn not_registered(fileobj: &Bound<'_, PyAny>) -> PyErr {
    match fileobj.repr() {
        Ok(r) => PyKeyError::new_err(format!("{r} is not registered")),
        Err(e) => e,
    }
}

#[cold]
fn invalid_events(events: &Bound<'_, PyAny>) -> PyErr {
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
fn os_error(py: Python<'_>, e: io::Error) -> PyErr {
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
fn to_py(e: Error, fileobj: &Bound<'_, PyAny>) -> PyErr {
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

/// Python's `_fileobj_to_fd`: an int is the fd; anything else must have a
/// `fileno()` whose result `int()` accepts.
fn fileobj_to_fd(fileobj: &Bound<'_, PyAny>) -> PyResult<i64> {
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
fn int_fd(i: &Bound<'_, PyInt>) -> PyResult<i64> {
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
fn raw_fd(fd: i64) -> PyResult<i32> {
    i32::try_from(fd)
        .map_err(|_| PyOverflowError::new_err("Python int too large to convert to C int"))
}

/// The event mask Python accepts, checked as Python's selectors check it:
/// `not events or events & ~(EVENT_READ | EVENT_WRITE)` is a `ValueError`
/// (`None`, `0`, `''`, `4`), and `&` itself raises what it raises (a
/// `TypeError` for a str or a float). Any object with `&` works (numpy's
/// integers, say); a plain int takes the short way.
fn events_of(events: &Bound<'_, PyAny>) -> PyResult<Events> {
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

/// Python's `select(timeout)`: `None` blocks, `<= 0` polls, a positive
/// number of seconds waits (too large: as long as the OS can). An int or a
/// float (or a subclass) takes the short way; any other object is
/// converted as the standard library's selector of the same `kind`
/// converts it ([`unusual_timeout`]).
fn timeout_of(timeout: Option<&Bound<'_, PyAny>>, kind: BackendKind) -> PyResult<Option<Duration>> {
    let Some(t) = timeout else { return Ok(None) };
    if t.is_none() {
        return Ok(None);
    }
    if !t.is_instance_of::<PyFloat>() && !t.is_instance_of::<PyInt>() {
        return unusual_timeout(t, kind);
    }
    let secs: f64 = t.extract()?;
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
fn whole_seconds(t: &Bound<'_, PyAny>) -> PyResult<f64> {
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
fn unusual_timeout(t: &Bound<'_, PyAny>, kind: BackendKind) -> PyResult<Option<Duration>> {
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

impl NativeSelector {
    #[inline]
    fn map<'py>(&self, py: Python<'py>) -> PyResult<&Bound<'py, PyDict>> {
        match &self.map {
            Some(m) => Ok(m.bind(py)),
            None => Err(closed()),
        }
    }

    /// The fd of the key registered with this very object, if any (an
    /// identity search: no Python code runs).
    fn fd_of_object(&self, fileobj: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
        let py = fileobj.py();
        for key in self.keys.iter().flatten() {
            let key = key.bind(py).cast::<PyTuple>()?;
            if key.get_item(0)?.is(fileobj) {
                return key.get_item(1)?.extract().map(Some);
            }
        }
        Ok(None)
    }

    /// The key object of a registered fd.
    #[inline]
    fn key_of(&self, py: Python<'_>, slot: u32) -> PyResult<Py<PyAny>> {
        match self.keys.get(slot as usize) {
            Some(Some(k)) => Ok(k.clone_ref(py)),
            _ => Err(PyRuntimeError::new_err("selectors2: key table out of step")),
        }
    }

    /// The key entry of `slot` (always in range: slots come from
    /// `new_slot`, through the Rust selector).
    #[inline]
    fn slot_mut(&mut self, slot: u32) -> PyResult<&mut Option<Py<PyAny>>> {
        self.keys
            .get_mut(slot as usize)
            .ok_or_else(|| PyRuntimeError::new_err("selectors2: key table out of step"))
    }

    /// A new `SelectorKey` from its four fields, as `key_cls(*fields)`
    /// would make it (the namedtuple's `__new__` is
    /// `tuple.__new__(cls, fields)`).
    #[inline]
    fn new_key<'py>(
        &self,
        py: Python<'py>,
        key_cls: &Py<PyAny>,
        fields: (Bound<'py, PyAny>, i64, Bound<'py, PyAny>, Bound<'py, PyAny>),
    ) -> PyResult<Bound<'py, PyAny>> {
        match &self.tuple_new {
            Some(new) => new.bind(py).call1((key_cls, fields)),
            None => key_cls.bind(py).call1(fields),
        }
    }

    #[inline]
    fn new_slot(&mut self) -> u32 {
        match self.free.pop() {
            Some(s) => s,
            None => {
                self.keys.push(None);
                (self.keys.len() - 1) as u32
            }
        }
    }
}

/// The methods that hold the selector: no Python code of the caller's
/// runs inside them (see [`busy`]). A key they replace or remove is
/// still referenced by the caller's frame, so no destructor runs either.
impl NativeSelector {
    /// Registers `fd` in the Rust selector, moving it to the next capacity
    /// when it is full (up to [`CAPACITY`]).
    fn register_growing(&mut self, fd: i32, events: Events, slot: u32) -> Result<(), Failure> {
        loop {
            let Some(table) = self.table.as_mut() else {
                return Err(Failure::Py(closed()));
            };
            let result = with_table!(table, |sel, _r| sel.register(fd, events, slot).map(drop));
            match result {
                Ok(()) => return Ok(()),
                // Full at the table's own capacity (not a backend's lower
                // key limit), with a bigger one left: grow, and try again.
                Err(Error::Full { capacity })
                    if capacity == table.capacity() && capacity < CAPACITY =>
                {
                    self.table = self.table.take().map(Table::grow);
                }
                Err(e) => return Err(Failure::Sel(e)),
            }
        }
    }

    /// Registers `fd` (of `fileobj`) for `mask` (`events` as given);
    /// returns the new `SelectorKey`.
    fn register_impl(
        &mut self,
        py: Python<'_>,
        fileobj: &Bound<'_, PyAny>,
        fd: i64,
        mask: Events,
        events: &Bound<'_, PyAny>,
        data: Py<PyAny>,
    ) -> Result<Py<PyAny>, Failure> {
        let (Some(key_cls), Some(table)) = (&self.key_cls, &self.table) else {
            return Err(Failure::Py(closed()));
        };
        let raw = match (raw_fd(fd), table.backend_kind()) {
            (Ok(raw), _) => raw,
            // As for any fd at or above FD_SETSIZE (see `to_py`).
            (Err(_), BackendKind::Select) => return Err(Failure::Sel(Error::InvalidFd(-1))),
            (Err(e), _) => return Err(Failure::Py(e)),
        };
        let fields = (fileobj.clone(), fd, events.clone(), data.into_bound(py));
        let key = self.new_key(py, key_cls, fields)?;
        let slot = self.new_slot();
        if let Err(e) = self.register_growing(raw, mask, slot) {
            self.free.push(slot);
            return Err(e);
        }
        *self.slot_mut(slot)? = Some(key.clone().unbind());
        self.map(py)?.set_item(fd, &key)?;
        Ok(key.unbind())
    }

    /// Unregisters `fd`; returns its `SelectorKey`.
    fn unregister_impl(&mut self, py: Python<'_>, fd: i64) -> Result<Py<PyAny>, Failure> {
        let Ok(raw) = i32::try_from(fd) else {
            return Err(Failure::NotRegistered);
        };
        let Some(table) = self.table.as_mut() else {
            return Err(Failure::NotRegistered);
        };
        let slot = table.unregister(raw).map_err(Failure::Sel)?;
        let key = self.slot_mut(slot)?.take();
        self.free.push(slot);
        self.map(py)?.del_item(fd)?;
        key.ok_or_else(|| PyRuntimeError::new_err("selectors2: key table out of step").into())
    }

    /// The slot and `SelectorKey` registered for `fd`.
    fn current_key(&self, py: Python<'_>, fd: i64) -> Result<(u32, Py<PyAny>), Failure> {
        let Ok(raw) = i32::try_from(fd) else {
            return Err(Failure::NotRegistered);
        };
        let Some(table) = self.table.as_ref() else {
            return Err(Failure::NotRegistered);
        };
        let Some(slot) = table.slot_of(raw) else {
            return Err(Failure::NotRegistered);
        };
        Ok((slot, self.key_of(py, slot)?))
    }

    /// Replaces `old`, the key of `fd` in `slot`, by one with `events`
    /// (`mask` if they changed) and `data`; returns it, or `None` when
    /// `old` is no longer the key (the caller's Python code changed it
    /// meanwhile). A failed modify changes nothing.
    #[allow(clippy::too_many_arguments)]
    fn modify_impl(
        &mut self,
        py: Python<'_>,
        fd: i64,
        slot: u32,
        old: &Bound<'_, PyTuple>,
        mask: Option<Events>,
        events: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> Result<Option<Py<PyAny>>, Failure> {
        let (now, current) = self.current_key(py, fd)?;
        if now != slot || !current.bind(py).is(old) {
            return Ok(None);
        }
        let Ok(raw) = i32::try_from(fd) else {
            return Err(Failure::NotRegistered);
        };
        let key_cls = self.key_cls.as_ref().ok_or_else(closed)?;
        let key = self.new_key(
            py,
            key_cls,
            (old.get_item(0)?, fd, events.clone(), data.clone()),
        )?;
        if let Some(mask) = mask {
            let table = self.table.as_mut().ok_or_else(closed)?;
            table.modify(raw, mask, slot).map_err(Failure::Sel)?;
        }
        *self.slot_mut(slot)? = Some(key.clone().unbind());
        self.map(py)?.set_item(fd, &key)?;
        Ok(Some(key.unbind()))
    }

    /// Wait until some registered file objects are ready or `timeout`
    /// passes; returns a list of `(key, events)`. Releases the GIL while
    /// it waits; on a signal it runs the Python handlers (the one place
    /// where Python code runs while the selector is held): an exception
    /// from one propagates, else the wait resumes with the time left
    /// (PEP 475).
    fn select_impl<'py>(
        &mut self,
        py: Python<'py>,
        timeout: Option<Duration>,
    ) -> PyResult<Bound<'py, PyList>> {
        let Some(table) = self.table.as_mut() else {
            return Err(closed());
        };
        let keys = &self.keys;
        with_table!(table, |sel, ready| {
            let mut raised: Option<PyErr> = None;
            let got = py.detach(|| {
                sel.select_with_eintr(ready, timeout, || {
                    Python::attach(|py| py.check_signals()).map_err(|e| {
                        raised = Some(e);
                        io::Error::from(io::ErrorKind::Interrupted)
                    })
                })
            });
            if let Some(e) = raised {
                return Err(e);
            }
            if let Err(e) = got {
                return Err(match e {
                    Error::Io(e) => os_error(py, e),
                    other => PyOSError::new_err(other.to_string()),
                });
            }
            // `ready` is an exact-size iterator: the list is allocated once.
            PyList::new(
                py,
                ready.iter().map(|(k, events)| {
                    let key = match keys.get(k.data as usize) {
                        Some(Some(key)) => key.bind(py).clone(),
                        _ => py.None().into_bound(py),
                    };
                    (key, events.bits())
                }),
            )
        })
    }
}

#[pymethods]
impl NativeSelector {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        NativeSelector {
            table: None,
            keys: Vec::new(),
            free: Vec::new(),
            map: None,
            key_cls: None,
            tuple_new: None,
        }
    }

    /// Opens the mechanism `kind` ("epoll", "kqueue", "poll", "select");
    /// keys are made with `key_cls(fileobj, fd, events, data)` and kept in
    /// `fd_to_key` as well.
    fn _open(
        &mut self,
        py: Python<'_>,
        kind: &str,
        key_cls: Py<PyAny>,
        fd_to_key: Py<PyDict>,
    ) -> PyResult<()> {
        let kind = kind_of(kind)?;
        if !BackendKind::available().contains(&kind) {
            return Err(PyOSError::new_err(format!("{kind} is not available here")));
        }
        self.table = Some(Table::open(kind).map_err(|e| os_error(py, e))?);
        self.tuple_new = Some(py.get_type::<PyTuple>().getattr("__new__")?.unbind());
        self.key_cls = Some(key_cls);
        self.map = Some(fd_to_key);
        Ok(())
    }

    /// Register a file object for `events`; returns the new `SelectorKey`.
    #[pyo3(signature = (fileobj, events, data = None))]
    fn register(
        slf: &Bound<'_, Self>,
        fileobj: &Bound<'_, PyAny>,
        events: &Bound<'_, PyAny>,
        data: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        // The caller's code (events' `&`, `fileno()`) first, with the
        // selector free.
        let mask = events_of(events)?;
        let fd = lookup(slf, fileobj)?;
        let data = data.unwrap_or_else(|| py.None());
        let done = borrow_mut(slf)?.register_impl(py, fileobj, fd, mask, events, data);
        done.map_err(|f| f.into_py(fileobj))
    }

    /// Unregister a file object (registered, or closed since: it is found
    /// by identity); returns its `SelectorKey`.
    fn unregister(slf: &Bound<'_, Self>, fileobj: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let fd = lookup_registered(slf, fileobj)?;
        let done = borrow_mut(slf)?.unregister_impl(slf.py(), fd);
        done.map_err(|f| f.into_py(fileobj))
    }

    /// Change a registered file object's events or data; returns the new
    /// `SelectorKey` (the same one if nothing changed). A failed modify
    /// changes nothing.
    #[pyo3(signature = (fileobj, events, data = None))]
    fn modify(
        slf: &Bound<'_, Self>,
        fileobj: &Bound<'_, PyAny>,
        events: &Bound<'_, PyAny>,
        data: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let fd = lookup_registered(slf, fileobj)?;
        let data = data.unwrap_or_else(|| py.None()).into_bound(py);
        // The comparisons and the events check run the caller's code, with
        // the selector free; if that code changed this key meanwhile, look
        // again (a few times: code that changes it on every comparison
        // gets an error rather than a loop).
        for _ in 0..8 {
            let current = borrow(slf)?.current_key(py, fd);
            let (slot, old) = current.map_err(|f| f.into_py(fileobj))?;
            let old = old.into_bound(py).cast_into::<PyTuple>()?;
            let new_events = events.ne(old.get_item(2)?)?;
            let new_data = data.ne(old.get_item(3)?)?;
            if !new_events && !new_data {
                return Ok(old.into_any().unbind());
            }
            let mask = if new_events {
                Some(events_of(events)?)
            } else {
                None
            };
            let done = borrow_mut(slf)?.modify_impl(py, fd, slot, &old, mask, events, &data);
            match done {
                Ok(Some(key)) => return Ok(key),
                Ok(None) => continue,
                Err(f) => return Err(f.into_py(fileobj)),
            }
        }
        Err(PyRuntimeError::new_err(
            "selectors2: the key changed during every attempt to modify it",
        ))
    }

    /// Wait until some registered file objects are ready or `timeout`
    /// (seconds; `None` blocks, `<= 0` polls) passes; returns a list of
    /// `(key, events)`. Releases the GIL while it waits; on a signal it
    /// runs the Python handlers: an exception from one propagates, else the
    /// wait resumes with the time left (PEP 475).
    #[pyo3(signature = (timeout = None))]
    fn select<'py>(
        slf: &Bound<'py, Self>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        // Converted with the selector free (`__float__`, `__le__`... are
        // the caller's code); the kind only says how.
        // (Closed: converted all the same, as before the closed error.)
        let kind = borrow(slf)?.table.as_ref().map(|t| t.backend_kind());
        let timeout = timeout_of(timeout, kind.unwrap_or(BackendKind::Select))?;
        borrow_mut(slf)?.select_impl(slf.py(), timeout)
    }

    /// The `SelectorKey` of a registered file object.
    fn get_key(slf: &Bound<'_, Self>, fileobj: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if borrow(slf)?.table.is_none() {
            return Err(closed());
        }
        let fd = lookup_registered(slf, fileobj)?;
        let found = borrow(slf)?.current_key(slf.py(), fd);
        match found {
            Ok((_, key)) => Ok(key),
            Err(Failure::NotRegistered) => Err(not_registered(fileobj)),
            Err(f) => Err(f.into_py(fileobj)),
        }
    }

    /// The mechanism's fd (epoll, kqueue).
    fn _fileno(&self) -> PyResult<i32> {
        match self.table.as_ref().and_then(|t| t.fileno()) {
            Some(fd) => Ok(fd),
            None => Err(PyValueError::new_err("I/O operation on closed selector")),
        }
    }

    /// Closes the mechanism and forgets every key; idempotent.
    fn _close(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let (keys, map) = {
            let mut this = borrow_mut(slf)?;
            this.table = None;
            this.free.clear();
            (std::mem::take(&mut this.keys), this.map.take())
        };
        // With the selector free: the keys' destructors (their data's) may
        // run Python code, which may call it (closed by now).
        if let Some(map) = map {
            map.bind(py).clear();
        }
        drop(keys);
        Ok(())
    }

    /// The references this object holds, for the cycle collector (a key's
    /// data often refers back to the selector's owner, as asyncio's do).
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for key in self.keys.iter().flatten() {
            visit.call(key)?;
        }
        if let Some(map) = &self.map {
            visit.call(map)?;
        }
        if let Some(cls) = &self.key_cls {
            visit.call(cls)?;
        }
        if let Some(new) = &self.tuple_new {
            visit.call(new)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        // Garbage now: close it too, so that no key points at a lost slot.
        self.table = None;
        self.keys.clear();
        self.free.clear();
        self.map = None;
        self.key_cls = None;
        self.tuple_new = None;
    }

    /// Which mechanism this selector runs on ("epoll", ...), or `None`
    /// once closed.
    fn _kind(&self) -> Option<String> {
        self.table.as_ref().map(|t| t.backend_kind().to_string())
    }
}

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
    m.add("CAPACITY", CAPACITY)?;
    Ok(())
}

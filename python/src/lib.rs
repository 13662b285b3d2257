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

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pyo3::exceptions::{
    PyAttributeError, PyKeyError, PyOSError, PyOverflowError, PyRuntimeError, PyTypeError,
    PyValueError,
};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyCFunction, PyDict, PyFloat, PyInt, PyList, PyModule, PyTuple};
use pyo3::{PyTraverseError, intern};
use selectors2::{BackendKind, DefaultSelector, Error, Events, Ready, Waker};

mod gil;

/// The key data of the selector's own wake-up fd in the Rust table (no
/// `SelectorKey` has it: slots index `keys`, which never grows this far).
/// It never reaches Python: `select` drops its reports, and the lookups
/// by fd treat its number as not registered.
const WAKER_SLOT: u32 = u32::MAX;

/// Keys a new selector has room for: a few KiB, made in microseconds, as
/// the standard library's are. The table doubles as `register` fills it,
/// keeping the mechanism, `fileno()` and every registration, with no
/// bound but the OS's.
const FIRST_CAPACITY: usize = 64;

/// The largest `Ready` a select fills: more ready keys than this in one
/// wait are returned by the next `select` (the core's fair pick), the one
/// place a select does not return every ready fd.
const MOST_READY: usize = 65536;

/// A mechanism and its key table, with a `Ready` of as many entries as
/// keys (up to [`MOST_READY`]): `select` returns every ready fd, as
/// Python's does.
struct Table {
    sel: DefaultSelector<u32>,
    ready: ReadyBuf,
}

/// The `Ready` buffer of a table, at one of the sizes it goes through as
/// the table grows (fourfold: memory follows the number of keys).
enum ReadyBuf {
    R64(Box<Ready<u32, 64>>),
    R256(Box<Ready<u32, 256>>),
    R1024(Box<Ready<u32, 1024>>),
    R4096(Box<Ready<u32, 4096>>),
    R16384(Box<Ready<u32, 16384>>),
    R65536(Box<Ready<u32, MOST_READY>>),
}

impl ReadyBuf {
    fn len(&self) -> usize {
        match self {
            ReadyBuf::R64(_) => 64,
            ReadyBuf::R256(_) => 256,
            ReadyBuf::R1024(_) => 1024,
            ReadyBuf::R4096(_) => 4096,
            ReadyBuf::R16384(_) => 16384,
            ReadyBuf::R65536(_) => MOST_READY,
        }
    }

    /// The smallest buffer that holds `keys` (the largest if none does).
    fn for_keys(keys: usize) -> ReadyBuf {
        fn boxed<const M: usize>() -> Box<Ready<u32, M>> {
            Box::new(Ready::new())
        }
        match keys {
            0..=64 => ReadyBuf::R64(boxed()),
            65..=256 => ReadyBuf::R256(boxed()),
            257..=1024 => ReadyBuf::R1024(boxed()),
            1025..=4096 => ReadyBuf::R4096(boxed()),
            4097..=16384 => ReadyBuf::R16384(boxed()),
            _ => ReadyBuf::R65536(boxed()),
        }
    }
}

/// `$body` with `$ready` bound to the buffer's `Ready`, whatever its size.
macro_rules! with_ready {
    ($buf:expr, |$ready:ident| $body:expr) => {
        match $buf {
            ReadyBuf::R64($ready) => $body,
            ReadyBuf::R256($ready) => $body,
            ReadyBuf::R1024($ready) => $body,
            ReadyBuf::R4096($ready) => $body,
            ReadyBuf::R16384($ready) => $body,
            ReadyBuf::R65536($ready) => $body,
        }
    };
}

impl Table {
    /// A small table on mechanism `kind` only.
    fn open(kind: BackendKind) -> io::Result<Table> {
        let sel = DefaultSelector::<u32>::with_backends_and_capacity(&[kind], FIRST_CAPACITY)?;
        let ready = ReadyBuf::for_keys(sel.capacity());
        Ok(Table { sel, ready })
    }

    fn backend_kind(&self) -> BackendKind {
        self.sel.backend_kind()
    }

    fn fileno(&self) -> Option<i32> {
        self.sel.fileno()
    }

    /// The slot (key data) registered for `fd`.
    fn slot_of(&self, fd: i32) -> Option<u32> {
        self.sel
            .get_key(fd)
            .map(|k| k.data)
            .filter(|&slot| slot != WAKER_SLOT)
    }

    fn unregister(&mut self, fd: i32) -> Result<u32, Error> {
        if self.slot_of(fd).is_none() {
            return Err(Error::NotRegistered(fd));
        }
        self.sel.unregister(fd).map(|k| k.data)
    }

    fn modify(&mut self, fd: i32, events: Events, slot: u32) -> Result<(), Error> {
        self.sel.modify(fd, events, slot).map(drop)
    }

    /// Registers `fd`; the table grows when it is full, and the `Ready`
    /// buffer with it.
    fn register(&mut self, fd: i32, events: Events, slot: u32) -> Result<(), Error> {
        self.sel.register(fd, events, slot)?;
        if self.ready.len() < self.sel.len() && self.ready.len() < MOST_READY {
            self.ready = ReadyBuf::for_keys(self.sel.capacity());
        }
        Ok(())
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
    /// How callers from other threads get a turn while `select` waits;
    /// also in [`HANDOFFS`] under `id`.
    handoff: Arc<Handoff>,
    /// The address of the Python object, `handoff`'s key in [`HANDOFFS`]
    /// (0 before `_open`).
    id: usize,
    /// The wake-up fd registered in the table (as [`WAKER_SLOT`]) by the
    /// first `select` that may block; `None` until then, and after close.
    waker: Option<Arc<Waker>>,
    /// How many `select`s wait through a patched `select` module (gevent,
    /// eventlet: see [`select_is_patched`]) right now, with the selector
    /// free: a call that takes it wakes them (through `waker`, which they
    /// watch), so that they see what it changed.
    green_waits: u32,
}

impl Drop for NativeSelector {
    fn drop(&mut self) {
        if self.id != 0 {
            lock(&HANDOFFS).remove(&self.id);
        }
    }
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

/// A selector is held by one caller at a time while it is inside Rust.
/// Only `select` holds it while Python code of other threads runs (it
/// waits with the GIL released); a call from another thread then gets
/// its turn through the selector's [`Handoff`], as with the standard
/// library's selectors, where other threads may call a selector whose
/// `select` waits. This error is for what cannot be handed off: a child
/// process after `fork()` in which the `select` that held the selector is
/// not running, the interpreter's exit (a `select` in a daemon thread
/// never gets the GIL back to let go), a wait with no wake-up fd (the
/// process was out of fds when the `select` began), and the holding
/// thread itself (should Python code run inside a method after all).
#[cold]
fn busy() -> PyErr {
    PyRuntimeError::new_err(
        "selector is busy: it is held by a select() that cannot let go (in the parent of \
         this forked process, at interpreter exit, or out of fds for its wake-up), or by \
         this very thread",
    )
}

/// `m` locked, whether or not a thread panicked holding it (nothing here
/// leaves the state half-changed).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many times this process is a child of `os.fork()` (counted by an
/// `os.register_at_fork` hook, [`forked`]): which process a `select`
/// holding a selector runs in, without a `getpid` system call per
/// `select`. (A fork that bypasses Python's hooks is not counted.)
static FORKS: AtomicU64 = AtomicU64::new(0);

/// `os.register_at_fork(after_in_child=...)`: see [`FORKS`].
#[pyfunction]
fn forked() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// Every open selector's [`Handoff`], by the address of its Python
/// object: what a caller that finds the selector held (so cannot read its
/// fields) looks up. Touched at `_open`, at deallocation, and on the
/// rare call that meets a waiting `select`.
static HANDOFFS: Mutex<BTreeMap<usize, Arc<Handoff>>> = Mutex::new(BTreeMap::new());

/// How a `select` that waits with the selector held lets other threads
/// in. A caller that finds the selector held by such a `select` asks for
/// a turn ([`Handoff::wait_turn`]): it counts itself in `requests`, wakes
/// the wait through the selector's wake-up fd, and waits (GIL released)
/// until the `select` lets go. That `select` ([`Handoff::let_go`]) gives
/// the selector up, waits until every caller counted has taken its turn,
/// then takes the selector again and waits on for the time left: the
/// call from the other thread happens during the `select`, and a file it
/// registers is watched by the rest of that wait, as with the standard
/// library's `EpollSelector`.
struct Handoff {
    state: Mutex<HandoffState>,
    /// Notified when a `select` lets go (`released`) and when `requests`
    /// falls to zero.
    turn: Condvar,
    /// The mechanism, read by `select` before it can hold the selector.
    kind: BackendKind,
}

struct HandoffState {
    /// The `select` holding the selector while it waits, if any.
    waiting: Option<Holder>,
    /// Callers counted in by [`Handoff::wait_turn`] that have not had
    /// their turn yet.
    requests: usize,
    /// How many times a `select` let go: a caller waits for this to move.
    released: u64,
    /// Threads waiting on `turn` (no notification, a system call, without).
    sleepers: usize,
    /// The selector's wake-up fd (the one in its table).
    waker: Option<Arc<Waker>>,
}

#[derive(Clone, Copy)]
struct Holder {
    /// The process it runs in, as [`FORKS`] counts them: after `fork()`
    /// the child has the state but not the thread.
    process: u64,
    /// The thread it runs in ([`this_thread`]): a call from that same
    /// thread (a finalizer run by the garbage collector, say) cannot wait
    /// for it.
    thread: usize,
    /// Whether a caller can end its wait: it polls (ends by itself), or
    /// watches the wake-up fd.
    wakeable: bool,
}

/// How a caller waits for its turn.
#[derive(Clone, Copy)]
enum Ask {
    /// A short call (register, get_key...): wake the `select`.
    Wake,
    /// Another `select`: wait without waking it (two waits that woke each
    /// other would never wait), until it lets go or `until` passes.
    Quietly(Option<Instant>),
}

/// One caller counted in `requests`, until it is dropped (once it holds
/// the selector, or gives up).
struct Request(Arc<Handoff>);

impl Drop for Request {
    fn drop(&mut self) {
        let mut s = lock(&self.0.state);
        s.requests -= 1;
        if s.requests == 0 && s.sleepers > 0 {
            self.0.turn.notify_all();
        }
    }
}

impl Handoff {
    fn new(kind: BackendKind) -> Arc<Handoff> {
        Arc::new(Handoff {
            state: Mutex::new(HandoffState {
                waiting: None,
                requests: 0,
                released: 0,
                sleepers: 0,
                waker: None,
            }),
            turn: Condvar::new(),
            kind,
        })
    }

    /// `select` is about to wait holding the selector.
    fn hold(&self, wakeable: bool) {
        lock(&self.state).waiting = Some(Holder {
            process: FORKS.load(Ordering::Relaxed),
            thread: this_thread(),
            wakeable,
        });
    }

    /// `select` has given the selector up (its borrow is dropped): lets
    /// the callers waiting for a turn in. With `wait`, when the `select`
    /// will take the selector back, it also waits (GIL released) until the
    /// ones counted have had their turn, for one [`SLICE`] at most (more
    /// keep coming when threads hammer the selector; each wakes the wait
    /// again). A `select` about to return does not wait: its callers run
    /// as soon as it gives the GIL up, as with the standard library's.
    fn let_go(&self, py: Python<'_>, wait: bool) {
        let mut s = lock(&self.state);
        s.waiting = None;
        s.released = s.released.wrapping_add(1);
        if s.sleepers > 0 {
            self.turn.notify_all();
        }
        if !wait || s.requests == 0 {
            return;
        }
        drop(s);
        gil::detach(py, || {
            let end = Instant::now() + SLICE;
            self.wait_while(lock(&self.state), end, |s| s.requests > 0)
        });
    }

    /// Waits on `turn` while `pending` holds, until `end` at the latest;
    /// `true` when it stopped for `end`.
    fn wait_while(
        &self,
        mut s: MutexGuard<'_, HandoffState>,
        end: Instant,
        pending: impl Fn(&HandoffState) -> bool,
    ) -> bool {
        s.sleepers += 1;
        let mut timed_out = false;
        while pending(&s) {
            let now = Instant::now();
            if now >= end {
                timed_out = true;
                break;
            }
            s = self
                .turn
                .wait_timeout(s, end - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        s.sleepers -= 1;
        timed_out
    }

    /// The caller found the selector held: waits for a `select` holding
    /// it to let go (see [`Ask`]), for one [`SLICE`] at most. `busy()`
    /// when nothing would ever let go: no `select` waits in this process,
    /// the one waiting is this thread's, or it cannot be woken.
    fn wait_turn(
        self: &Arc<Self>,
        py: Python<'_>,
        ask: Ask,
        request: &mut Option<Request>,
    ) -> PyResult<Turn> {
        let mut s = lock(&self.state);
        let holder = match s.waiting {
            Some(h) if h.process == FORKS.load(Ordering::Relaxed) && h.thread != this_thread() => h,
            _ => return Err(busy()),
        };
        let until = match ask {
            Ask::Wake if !holder.wakeable => return Err(busy()),
            Ask::Wake => {
                if request.is_none() {
                    s.requests += 1;
                    *request = Some(Request(Arc::clone(self)));
                }
                if let Some(waker) = &s.waker {
                    // Cannot fail but for a closed fd: then the wait was
                    // a poll, or has been woken already.
                    let _ = waker.wake();
                }
                None
            }
            Ask::Quietly(until) => until,
        };
        let seen = s.released;
        drop(s);
        Ok(gil::detach(py, || {
            let slice = Instant::now() + SLICE;
            let end = until.map_or(slice, |u| u.min(slice));
            if !self.wait_while(lock(&self.state), end, |s| s.released == seen) {
                Turn::Released
            } else if until.is_some_and(|u| Instant::now() >= u) {
                Turn::TimedOut
            } else {
                Turn::Slice
            }
        }))
    }
}

/// How long a caller waits for its turn, or a `select` for its callers,
/// before it looks up again: for signals (Ctrl-C in a thread that waits
/// for a turn is a `KeyboardInterrupt` within this), and for the
/// interpreter's exit (where a `select` in a daemon thread never gets the
/// GIL back to let go).
const SLICE: Duration = Duration::from_millis(20);

/// How a wait for a turn ended.
enum Turn {
    /// The `select` let go: try again.
    Released,
    /// A [`SLICE`] passed: handle signals, then wait again.
    Slice,
    /// The caller's own deadline passed.
    TimedOut,
}

/// This thread, as a number (the address of a thread-local: no system
/// call, unlike `gettid`).
fn this_thread() -> usize {
    thread_local! {
        static MARK: u8 = const { 0 };
    }
    MARK.with(|m| m as *const u8 as usize)
}

/// Whether the interpreter is shutting down (`sys.is_finalizing()`; an
/// interpreter too far gone to say counts as shutting down).
#[cold]
fn finalizing(py: Python<'_>) -> bool {
    py.import(intern!(py, "sys"))
        .and_then(|sys| sys.getattr(intern!(py, "is_finalizing"))?.call0())
        .and_then(|v| v.is_truthy())
        .unwrap_or(true)
}

/// The handoff of the selector `slf`, found without holding it.
#[cold]
fn handoff_of(slf: &Bound<'_, NativeSelector>) -> Option<Arc<Handoff>> {
    lock(&HANDOFFS).get(&(slf.as_ptr() as usize)).cloned()
}

/// `take()`'s result once it succeeds, waiting for a turn while a
/// `select` of another thread holds the selector (see [`Handoff`]);
/// `None` when `ask`'s deadline passes first. Between slices of the wait
/// it runs the signal handlers (an exception from one propagates), and it
/// gives up with `busy()` once the interpreter is shutting down.
fn acquire<T>(
    slf: &Bound<'_, NativeSelector>,
    ask: impl FnOnce() -> Ask,
    mut take: impl FnMut() -> Option<T>,
) -> PyResult<Option<T>> {
    if let Some(held) = take() {
        return Ok(Some(held));
    }
    let Some(handoff) = handoff_of(slf) else {
        return Err(busy());
    };
    let py = slf.py();
    let ask = ask();
    let mut request = None;
    loop {
        match handoff.wait_turn(py, ask, &mut request)? {
            Turn::TimedOut => return Ok(None),
            Turn::Released => {}
            Turn::Slice => {
                py.check_signals()?;
                if finalizing(py) {
                    return Err(busy());
                }
            }
        }
        if let Some(held) = take() {
            return Ok(Some(held));
        }
    }
}

#[inline]
fn borrow_mut<'py>(slf: &Bound<'py, NativeSelector>) -> PyResult<PyRefMut<'py, NativeSelector>> {
    let this = acquire(slf, || Ask::Wake, || slf.try_borrow_mut().ok())?.ok_or_else(busy)?;
    if this.green_waits > 0 {
        wake_green(&this);
    }
    Ok(this)
}

/// Wakes the `select`s that wait through a patched `select` module: the
/// caller is about to change the selector (see
/// [`NativeSelector::green_waits`]).
#[cold]
fn wake_green(this: &NativeSelector) {
    if let Some(waker) = &this.waker {
        // Cannot fail but for a closed fd, which nobody waits on.
        let _ = waker.wake();
    }
}

#[inline]
fn borrow<'py>(slf: &Bound<'py, NativeSelector>) -> PyResult<PyRef<'py, NativeSelector>> {
    acquire(slf, || Ask::Wake, || slf.try_borrow().ok())?.ok_or_else(busy)
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

    /// What [`new_key`] makes keys with: `key_cls` and `tuple.__new__`.
    fn key_maker(&self, py: Python<'_>) -> PyResult<KeyMaker> {
        match (&self.key_cls, &self.tuple_new) {
            (Some(cls), new) => Ok((cls.clone_ref(py), new.as_ref().map(|n| n.clone_ref(py)))),
            (None, _) => Err(closed()),
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

/// A selector's `key_cls` and `tuple.__new__` (see [`new_key`]).
type KeyMaker = (Py<PyAny>, Option<Py<PyAny>>);

/// A new `SelectorKey` from its four fields, as `key_cls(*fields)` would
/// make it (the namedtuple's `__new__` is `tuple.__new__(cls, fields)`).
/// Made with the selector free: an allocation may run the garbage
/// collector, and a finalizer may call the selector.
#[inline]
fn new_key<'py>(
    py: Python<'py>,
    (key_cls, tuple_new): &KeyMaker,
    fields: (Bound<'py, PyAny>, i64, Bound<'py, PyAny>, Bound<'py, PyAny>),
) -> PyResult<Bound<'py, PyAny>> {
    match tuple_new {
        Some(new) => new.bind(py).call1((key_cls, fields)),
        None => key_cls.bind(py).call1(fields),
    }
}

/// The methods that hold the selector: no Python code of the caller's
/// runs inside them (see [`busy`]), and no Python object that the garbage
/// collector tracks is allocated (it could run finalizers). A key they replace or remove is
/// still referenced by the caller's frame, so no destructor runs either.
impl NativeSelector {
    /// Registers `fd` in the Rust selector, which grows when it is full.
    fn register_growing(&mut self, fd: i32, events: Events, slot: u32) -> Result<(), Failure> {
        let Some(table) = self.table.as_mut() else {
            return Err(Failure::Py(closed()));
        };
        table.register(fd, events, slot).map_err(Failure::Sel)
    }

    /// Registers `fd` for `mask`, as `key` (its new `SelectorKey`).
    fn register_impl(
        &mut self,
        py: Python<'_>,
        fd: i64,
        mask: Events,
        key: &Bound<'_, PyAny>,
    ) -> Result<(), Failure> {
        let Some(table) = &self.table else {
            return Err(Failure::Py(closed()));
        };
        let raw = match (raw_fd(fd), table.backend_kind()) {
            (Ok(raw), _) => raw,
            // As for any fd at or above FD_SETSIZE (see `to_py`).
            (Err(_), BackendKind::Select) => return Err(Failure::Sel(Error::InvalidFd(-1))),
            (Err(e), _) => return Err(Failure::Py(e)),
        };
        let slot = self.new_slot();
        if let Err(e) = self.register_growing(raw, mask, slot) {
            self.free.push(slot);
            return Err(e);
        }
        *self.slot_mut(slot)? = Some(key.clone().unbind());
        self.map(py)?.set_item(fd, key)?;
        Ok(())
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

    /// Replaces `old`, the key of `fd` in `slot`, by `key` (with new
    /// events, `mask`, if they changed); `false` when `old` is no longer
    /// the key (the caller's Python code changed it meanwhile). A failed
    /// modify changes nothing.
    fn modify_impl(
        &mut self,
        py: Python<'_>,
        fd: i64,
        (slot, old): (u32, &Bound<'_, PyTuple>),
        mask: Option<Events>,
        key: &Bound<'_, PyAny>,
    ) -> Result<bool, Failure> {
        let (now, current) = self.current_key(py, fd)?;
        if now != slot || !current.bind(py).is(old) {
            return Ok(false);
        }
        let Ok(raw) = i32::try_from(fd) else {
            return Err(Failure::NotRegistered);
        };
        if let Some(mask) = mask {
            let table = self.table.as_mut().ok_or_else(closed)?;
            table.modify(raw, mask, slot).map_err(Failure::Sel)?;
        }
        *self.slot_mut(slot)? = Some(key.clone().unbind());
        self.map(py)?.set_item(fd, key)?;
        Ok(true)
    }

    /// Registers the wake-up fd that lets other threads interrupt a wait
    /// (see [`Handoff`]), once. Without one (out of fds, or its number
    /// beyond `SelectSelector`'s `FD_SETSIZE`), a call from another thread
    /// during a wait gets `busy()`, as before there was one.
    #[cold]
    fn add_waker(&mut self) {
        let Ok(waker) = Waker::new() else { return };
        let Some(fd) = waker_fd(&waker) else { return };
        if self.register_growing(fd, Events::READ, WAKER_SLOT).is_ok() {
            let waker = Arc::new(waker);
            lock(&self.handoff.state).waker = Some(Arc::clone(&waker));
            self.waker = Some(waker);
        }
    }

    /// One wait of `select`, for at most `timeout`, holding the selector
    /// with the GIL released: the keys ready, or why it ended without
    /// them. The caller lets go ([`Handoff::let_go`]) once the selector is
    /// released, whatever this returns, and makes the result list then
    /// (an allocation may run finalizers, which may call the selector).
    fn select_round(&mut self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<Round> {
        if self.table.is_none() {
            return Err(closed());
        }
        let polls = timeout == Some(Duration::ZERO);
        if !polls && self.waker.is_none() {
            self.add_waker();
        }
        self.handoff.hold(polls || self.waker.is_some());
        let (Some(table), keys, waker) = (self.table.as_mut(), &self.keys, &self.waker) else {
            return Err(closed());
        };
        let Table { sel, ready } = table;
        with_ready!(ready, |ready| {
            // A signal ends the wait (`Round::Signal`): its Python handler
            // runs once the selector is free, so that it may use it.
            let got = gil::detach(py, || {
                sel.select_with_eintr(ready, timeout, || {
                    Err(io::Error::from(io::ErrorKind::Interrupted))
                })
            });
            match got {
                Ok(_) => {}
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {
                    return Ok(Round::Signal);
                }
                Err(Error::Io(e)) => return Err(os_error(py, e)),
                Err(other) => return Err(PyOSError::new_err(other.to_string())),
            }
            let mut woken = false;
            let mut found = Vec::with_capacity(ready.len());
            for (k, events) in ready.iter() {
                if k.data == WAKER_SLOT {
                    // Woken for a caller in another thread (or by a
                    // wake-up left from an earlier one).
                    woken = true;
                } else if let Some(Some(key)) = keys.get(k.data as usize) {
                    found.push((key.clone_ref(py), events.bits()));
                }
            }
            if woken {
                // Drained before the callers run, so that a wake-up for
                // the next one is not lost.
                if let Some(waker) = waker {
                    waker.drain().map_err(|e| os_error(py, e))?;
                }
                if found.is_empty() {
                    return Ok(Round::Handoff);
                }
            }
            Ok(Round::Done(found))
        })
    }
}

/// The number the table knows the waker's readable end by: its fd, or
/// on Windows its socket (if it fits, as `register` requires of any).
#[cfg(unix)]
fn waker_fd(waker: &Waker) -> Option<i32> {
    use std::os::fd::AsRawFd;
    Some(waker.as_raw_fd())
}

#[cfg(windows)]
fn waker_fd(waker: &Waker) -> Option<i32> {
    use std::os::windows::io::AsRawSocket;
    i32::try_from(waker.as_raw_socket()).ok()
}

/// How one wait of `select` ended.
enum Round {
    /// With the keys ready and their events (none when the time is up).
    Done(Vec<(Py<PyAny>, u8)>),
    /// A signal: its handlers run, then the wait goes on (PEP 475).
    Signal,
    /// Only woken for another thread's call: it runs, then the wait goes
    /// on.
    Handoff,
}

/// Whether `select.select` is no longer the interpreter's own: gevent's
/// and eventlet's monkey-patching replace it with a Python function that
/// waits cooperatively, switching to other greenlets. A wait in this
/// module's system calls would block every greenlet of the thread (the
/// hub too), so under such a patch `select` polls and waits through the
/// patched function instead (`_green_wait` in `selectors2/__init__.py`).
/// Asked once per `select` that may wait (never for a poll); a `select`
/// module that cannot be imported counts as unpatched.
fn select_is_patched(py: Python<'_>) -> bool {
    static SELECT: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let Ok(module) = SELECT.get_or_try_init(py, || py.import("select").map(Bound::unbind)) else {
        return false;
    };
    match module.bind(py).getattr(intern!(py, "select")) {
        Ok(f) => !f.is_instance_of::<PyCFunction>(),
        Err(_) => false,
    }
}

/// `t` from now, or as far as an `Instant` goes.
fn deadline_after(t: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(t)
        .or_else(|| now.checked_add(Duration::from_secs(u32::MAX.into())))
        .unwrap_or(now)
}

/// The empty result of a `select` that ran out of time.
fn no_keys(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    Ok(PyList::empty(py))
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
            handoff: Handoff::new(BackendKind::Select),
            id: 0,
            waker: None,
            green_waits: 0,
        }
    }

    /// Opens the mechanism `kind` ("epoll", "kqueue", "poll", "select");
    /// keys are made with `key_cls(fileobj, fd, events, data)` and kept in
    /// `fd_to_key` as well.
    fn _open(
        slf: &Bound<'_, Self>,
        kind: &str,
        key_cls: Py<PyAny>,
        fd_to_key: Py<PyDict>,
    ) -> PyResult<()> {
        let py = slf.py();
        let kind = kind_of(kind)?;
        if !BackendKind::available().contains(&kind) {
            return Err(PyOSError::new_err(format!("{kind} is not available here")));
        }
        let table = Table::open(kind).map_err(|e| os_error(py, e))?;
        let tuple_new = py.get_type::<PyTuple>().getattr("__new__")?.unbind();
        let mut this = borrow_mut(slf)?;
        this.table = Some(table);
        this.tuple_new = Some(tuple_new);
        this.key_cls = Some(key_cls);
        this.map = Some(fd_to_key);
        this.handoff = Handoff::new(kind);
        this.id = slf.as_ptr() as usize;
        lock(&HANDOFFS).insert(this.id, Arc::clone(&this.handoff));
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
        let data = data.unwrap_or_else(|| py.None()).into_bound(py);
        let maker = borrow(slf)?.key_maker(py)?;
        let key = new_key(py, &maker, (fileobj.clone(), fd, events.clone(), data))?;
        let done = borrow_mut(slf)?.register_impl(py, fd, mask, &key);
        done.map_err(|f| f.into_py(fileobj))?;
        Ok(key.unbind())
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
            let maker = borrow(slf)?.key_maker(py)?;
            let key = new_key(
                py,
                &maker,
                (old.get_item(0)?, fd, events.clone(), data.clone()),
            )?;
            let done = borrow_mut(slf)?.modify_impl(py, fd, (slot, &old), mask, &key);
            match done {
                Ok(true) => return Ok(key.unbind()),
                Ok(false) => continue,
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
        let py = slf.py();
        // Converted with the selector free (`__float__`, `__le__`... are
        // the caller's code); the kind only says how.
        // (Closed: converted all the same, as before the closed error.)
        let (kind, handoff) = match slf.try_borrow() {
            Ok(this) => (
                this.table.as_ref().map(|t| t.backend_kind()),
                Arc::clone(&this.handoff),
            ),
            Err(_) => match handoff_of(slf) {
                Some(h) => (Some(h.kind), h),
                None => return Err(busy()),
            },
        };
        let timeout = timeout_of(timeout, kind.unwrap_or(BackendKind::Select))?;
        // Under gevent or eventlet every wait goes through their `select`
        // (see `select_is_patched`), and the selector only polls.
        let green = timeout != Some(Duration::ZERO) && select_is_patched(py);
        // Green waits so far that ended without a key (see `_green_wait`).
        let mut attempt = 0u32;
        // The first wait is the whole `select` unless a signal or another
        // thread's call interrupts it. Then it goes on with the time left
        // until one deadline, taken after a first poll found nothing (no
        // clock read when something is ready, as the Rust crate's select).
        let mut wait = match timeout {
            Some(t) if !t.is_zero() => Some(Duration::ZERO),
            _ if green => Some(Duration::ZERO),
            t => t,
        };
        let mut deadline: Option<Instant> = None;
        let mut first = true;
        loop {
            // Another `select` holding the selector: a poll wakes it, a
            // wait waits for it quietly, for no longer than its own time.
            let ask = || match wait {
                Some(Duration::ZERO) => Ask::Wake,
                _ => Ask::Quietly(
                    timeout.map(|t| *deadline.get_or_insert_with(|| deadline_after(t))),
                ),
            };
            let Some(mut this) = acquire(slf, ask, || slf.try_borrow_mut().ok())? else {
                return no_keys(py); // the other select held it past our deadline
            };
            if this.table.is_none() && !first {
                return no_keys(py); // closed by another thread meanwhile
            }
            let round = this.select_round(py, wait);
            drop(this);
            if matches!(round, Ok(Round::Handoff)) {
                // Woken for a call: not a wake-up for nothing.
                attempt = 0;
            }
            let done = match &round {
                Ok(Round::Done(found)) => !found.is_empty() || wait == timeout,
                Ok(_) => false,
                Err(_) => true,
            };
            handoff.let_go(py, !done);
            if let Round::Done(found) = round?
                && done
            {
                return PyList::new(py, found);
            }
            // Going on: run the handlers of any signal that came, whether
            // it ended the wait (EINTR) or arrived while handing off.
            py.check_signals()?;
            first = false;
            wait = match timeout {
                None => None,
                Some(t) => {
                    let left = deadline
                        .get_or_insert_with(|| deadline_after(t))
                        .saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return no_keys(py);
                    }
                    Some(left)
                }
            };
            if green {
                // The selector is not held here: other greenlets may call
                // it, and a call that changes it wakes this wait through
                // the wake-up fd (held here, so that it stays open if the
                // call is `close`; the next round then returns no keys).
                let (counted, waker) = match slf.try_borrow_mut() {
                    Ok(mut this) => {
                        if this.table.is_some() && this.waker.is_none() {
                            this.add_waker();
                        }
                        this.green_waits += 1;
                        (true, this.waker.clone())
                    }
                    Err(_) => (false, None),
                };
                let fd = waker.as_deref().and_then(waker_fd);
                let secs = wait.map(|left| left.as_secs_f64());
                let waited = slf.call_method1(intern!(py, "_green_wait"), (secs, attempt, fd));
                if counted && let Ok(mut this) = slf.try_borrow_mut() {
                    this.green_waits = this.green_waits.saturating_sub(1);
                }
                drop(waker);
                waited?;
                attempt = attempt.saturating_add(1);
                wait = Some(Duration::ZERO);
            }
        }
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
    fn _fileno(slf: &Bound<'_, Self>) -> PyResult<i32> {
        match borrow(slf)?.table.as_ref().and_then(|t| t.fileno()) {
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
            this.waker = None;
            lock(&this.handoff.state).waker = None;
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
        self.waker = None;
        lock(&self.handoff.state).waker = None;
        self.keys.clear();
        self.free.clear();
        self.map = None;
        self.key_cls = None;
        self.tuple_new = None;
    }

    /// Which mechanism this selector runs on ("epoll", ...), or `None`
    /// once closed.
    fn _kind(slf: &Bound<'_, Self>) -> PyResult<Option<String>> {
        let this = borrow(slf)?;
        Ok(this.table.as_ref().map(|t| t.backend_kind().to_string()))
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
    // Where there is `fork()`.
    if let Ok(register_at_fork) = m.py().import("os")?.getattr("register_at_fork") {
        let kwargs = PyDict::new(m.py());
        kwargs.set_item("after_in_child", wrap_pyfunction!(forked, m)?)?;
        register_at_fork.call((), Some(&kwargs))?;
    }
    // The distribution's version: pyproject.toml takes it from Cargo.toml.
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

//! `_Selector`, the native selector class: its state, the methods the
//! Python classes call (`register`, `unregister`, `modify`, `select`,
//! `get_key`, `_open`, `_close`...), and the Python objects it keeps in
//! step with the table (the `SelectorKey`s and the shared dict).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PyTuple};
use pyo3::{PyTraverseError, intern};
use selectors2::{BackendKind, Error, Events, Waker};

use crate::convert::{
    deadline_after, events_of, kind_of, lookup, lookup_registered, raw_fd, timeout_of,
};
use crate::errors::{Failure, busy, closed, not_registered, os_error};
use crate::gil;
use crate::green::select_is_patched;
use crate::handoff::{
    Ask, HANDOFFS, Handoff, acquire, borrow, borrow_mut, close_in_child, handoff_of,
    held_in_parent, lock, waker_fd,
};
use crate::table::{Table, WAKER_SLOT, with_ready};

/// The native selector. Not for direct use: `selectors2.EpollSelector` and
/// its siblings subclass it.
#[pyclass(subclass, module = "selectors2._selectors2", name = "_Selector")]
pub(crate) struct NativeSelector {
    /// `None` before `_open` and after `close`.
    pub(crate) table: Option<Table>,
    /// The `SelectorKey` of each slot; `None` for a free slot.
    pub(crate) keys: Vec<Option<Py<PyAny>>>,
    pub(crate) free: Vec<u32>,
    /// fd → `SelectorKey`, shared with the Python half (`_fd_to_key`).
    pub(crate) map: Option<Py<PyDict>>,
    pub(crate) key_cls: Option<Py<PyAny>>,
    /// `tuple.__new__`: what a namedtuple's own `__new__` calls, without
    /// that Python frame (a third of the cost of `register`).
    pub(crate) tuple_new: Option<Py<PyAny>>,
    /// How callers from other threads get a turn while `select` waits;
    /// also in [`HANDOFFS`] under `id`.
    pub(crate) handoff: Arc<Handoff>,
    /// The address of the Python object, `handoff`'s key in [`HANDOFFS`]
    /// (0 before `_open`).
    pub(crate) id: usize,
    /// The wake-up fd registered in the table (as [`WAKER_SLOT`]) by the
    /// first `select` that may block; `None` until then, and after close.
    pub(crate) waker: Option<Arc<Waker>>,
    /// How many `select`s wait through a patched `select` module (gevent,
    /// eventlet: see [`select_is_patched`]) right now, with the selector
    /// free: a call that takes it wakes them (through `waker`, which they
    /// watch), so that they see what it changed.
    pub(crate) green_waits: u32,
}

impl Drop for NativeSelector {
    fn drop(&mut self) {
        self.forget_if_closed_in_child();
        if self.id != 0 {
            lock(&HANDOFFS).remove(&self.id);
        }
    }
}

impl NativeSelector {
    /// In a forked child where `close()` closed this selector's fds by
    /// number ([`close_in_child`]): forgets the table and the wake-up fd
    /// instead of closing those numbers again (another file may have them
    /// by now). What they hold stays allocated until the process ends.
    fn forget_if_closed_in_child(&mut self) {
        let mut state = lock(&self.handoff.state);
        if state.closed_in_child {
            std::mem::forget(state.waker.take());
            drop(state);
            std::mem::forget(self.table.take());
            std::mem::forget(self.waker.take());
        }
    }

    #[inline]
    pub(crate) fn map<'py>(&self, py: Python<'py>) -> PyResult<&Bound<'py, PyDict>> {
        match &self.map {
            Some(m) => Ok(m.bind(py)),
            None => Err(closed()),
        }
    }

    /// The fd of the key registered with this very object, if any (an
    /// identity search: no Python code runs).
    pub(crate) fn fd_of_object(&self, fileobj: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
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
    pub(crate) fn key_of(&self, py: Python<'_>, slot: u32) -> PyResult<Py<PyAny>> {
        match self.keys.get(slot as usize) {
            Some(Some(k)) => Ok(k.clone_ref(py)),
            _ => Err(PyRuntimeError::new_err("selectors2: key table out of step")),
        }
    }

    /// The key entry of `slot` (always in range: slots come from
    /// `new_slot`, through the Rust selector).
    #[inline]
    pub(crate) fn slot_mut(&mut self, slot: u32) -> PyResult<&mut Option<Py<PyAny>>> {
        self.keys
            .get_mut(slot as usize)
            .ok_or_else(|| PyRuntimeError::new_err("selectors2: key table out of step"))
    }

    /// What [`new_key`] makes keys with: `key_cls` and `tuple.__new__`.
    pub(crate) fn key_maker(&self, py: Python<'_>) -> PyResult<KeyMaker> {
        match (&self.key_cls, &self.tuple_new) {
            (Some(cls), new) => Ok((cls.clone_ref(py), new.as_ref().map(|n| n.clone_ref(py)))),
            (None, _) => Err(closed()),
        }
    }

    #[inline]
    pub(crate) fn new_slot(&mut self) -> u32 {
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
pub(crate) type KeyMaker = (Py<PyAny>, Option<Py<PyAny>>);

/// A new `SelectorKey` from its four fields, as `key_cls(*fields)` would
/// make it (the namedtuple's `__new__` is `tuple.__new__(cls, fields)`).
/// Made with the selector free: an allocation may run the garbage
/// collector, and a finalizer may call the selector.
#[inline]
pub(crate) fn new_key<'py>(
    py: Python<'py>,
    (key_cls, tuple_new): &KeyMaker,
    fields: (
        Bound<'py, PyAny>,
        Bound<'py, PyAny>,
        Bound<'py, PyAny>,
        Bound<'py, PyAny>,
    ),
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
    pub(crate) fn register_growing(
        &mut self,
        fd: i32,
        events: Events,
        slot: u32,
    ) -> Result<(), Failure> {
        let Some(table) = self.table.as_mut() else {
            return Err(Failure::Py(closed()));
        };
        table.register(fd, events, slot).map_err(Failure::Sel)
    }

    /// Registers `fd` for `mask`, as `key` (its new `SelectorKey`).
    pub(crate) fn register_impl(
        &mut self,
        py: Python<'_>,
        (fd, fd_obj): (i64, &Bound<'_, PyAny>),
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
        self.map(py)?.set_item(fd_obj, key)?;
        Ok(())
    }

    /// Unregisters `fd`; returns its `SelectorKey`.
    pub(crate) fn unregister_impl(
        &mut self,
        py: Python<'_>,
        fd: i64,
    ) -> Result<Py<PyAny>, Failure> {
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
    pub(crate) fn current_key(&self, py: Python<'_>, fd: i64) -> Result<(u32, Py<PyAny>), Failure> {
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

    /// The events the table holds for `fd` (a registered one).
    pub(crate) fn events_of_fd(&self, fd: i64) -> Result<Events, Failure> {
        let raw = i32::try_from(fd).map_err(|_| Failure::NotRegistered)?;
        let table = self.table.as_ref().ok_or(Failure::NotRegistered)?;
        match table.sel.get_key(raw) {
            Some(k) if k.data != WAKER_SLOT => Ok(k.events),
            _ => Err(Failure::NotRegistered),
        }
    }

    /// Asks the OS to watch `fd` (a registered one) for `mask`; returns
    /// the events it had. With `force`, the OS is asked even for the
    /// events it has (`modify` with events that compare unequal to the
    /// key's but have the same bits: the standard library asks the OS,
    /// which fails for a file closed or replaced since); the table only
    /// asks the OS for a change, so this goes through the other events
    /// and back.
    pub(crate) fn rearm(&mut self, fd: i64, mask: Events, force: bool) -> Result<Events, Failure> {
        let (slot, before) = {
            let (slot, _) = self.slot_and_events(fd)?;
            (slot, self.events_of_fd(fd)?)
        };
        let raw = i32::try_from(fd).map_err(|_| Failure::NotRegistered)?;
        let table = self.table.as_mut().ok_or(Failure::NotRegistered)?;
        if before == mask && force {
            let other = if mask == Events::READ {
                Events::WRITE
            } else {
                Events::READ
            };
            table.modify(raw, other, slot).map_err(Failure::Sel)?;
            if let Err(e) = table.modify(raw, mask, slot) {
                // Back as it was, as far as the OS lets.
                let _ = table.modify(raw, before, slot);
                return Err(Failure::Sel(e));
            }
        } else if before != mask {
            table.modify(raw, mask, slot).map_err(Failure::Sel)?;
        }
        Ok(before)
    }

    /// The slot and events of a registered `fd`.
    fn slot_and_events(&self, fd: i64) -> Result<(u32, Events), Failure> {
        let raw = i32::try_from(fd).map_err(|_| Failure::NotRegistered)?;
        let table = self.table.as_ref().ok_or(Failure::NotRegistered)?;
        match table.sel.get_key(raw) {
            Some(k) if k.data != WAKER_SLOT => Ok((k.data, k.events)),
            _ => Err(Failure::NotRegistered),
        }
    }

    /// Makes `key` the key of `fd` (a registered one), whose OS
    /// registration is for `mask` (asked again if Python code changed it
    /// meanwhile).
    pub(crate) fn replace_key(
        &mut self,
        py: Python<'_>,
        fd: i64,
        mask: Events,
        key: &Bound<'_, PyAny>,
        fd_obj: &Bound<'_, PyAny>,
    ) -> Result<(), Failure> {
        let (slot, _) = self.slot_and_events(fd)?;
        self.rearm(fd, mask, false)?;
        *self.slot_mut(slot)? = Some(key.clone().unbind());
        self.map(py)?.set_item(fd_obj, key)?;
        Ok(())
    }

    /// Registers the wake-up fd that lets other threads interrupt a wait
    /// (see [`Handoff`]), once. Its number may be one the table still
    /// holds: a registered file closed without `unregister` (its number
    /// free for the next open). Then that wake-up fd is kept open (so the
    /// number stays taken) while another is made, with another number;
    /// a few times at most. Without one (out of fds, or its number beyond
    /// `SelectSelector`'s `FD_SETSIZE`), a call from another thread during
    /// a wait gets `busy()`.
    #[cold]
    pub(crate) fn add_waker(&mut self) {
        let mut taken = Vec::new();
        for _ in 0..8 {
            let Ok(waker) = Waker::new() else { return };
            let Some(fd) = waker_fd(&waker) else { return };
            match self.register_growing(fd, Events::READ, WAKER_SLOT) {
                Ok(()) => {
                    let waker = Arc::new(waker);
                    lock(&self.handoff.state).waker = Some(Arc::clone(&waker));
                    self.waker = Some(waker);
                    return;
                }
                Err(Failure::Sel(Error::AlreadyRegistered(_))) => taken.push(waker),
                Err(_) => return,
            }
        }
    }

    /// One wait of `select`, for at most `timeout`, holding the selector
    /// with the GIL released: the keys ready, or why it ended without
    /// them. The caller lets go ([`Handoff::let_go`]) once the selector is
    /// released, whatever this returns, and makes the result list then
    /// (an allocation may run finalizers, which may call the selector).
    pub(crate) fn select_round(
        &mut self,
        py: Python<'_>,
        timeout: Option<Duration>,
    ) -> PyResult<Round> {
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
                Err(Error::Io(e)) => return Ok(Round::Failed(e)),
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
                if let Some(waker) = waker
                    && let Err(e) = waker.drain()
                {
                    return Ok(Round::Failed(e));
                }
                if found.is_empty() {
                    return Ok(Round::Handoff);
                }
            }
            Ok(Round::Done(found))
        })
    }
}

/// How one wait of `select` ended.
pub(crate) enum Round {
    /// The OS refused: raised once the selector is free (the exception's
    /// text comes from Python's `os.strerror`, Python code).
    Failed(io::Error),
    /// With the keys ready and their events (none when the time is up).
    Done(Vec<(Py<PyAny>, u8)>),
    /// A signal: its handlers run, then the wait goes on (PEP 475).
    Signal,
    /// Only woken for another thread's call: it runs, then the wait goes
    /// on.
    Handoff,
}

/// The empty result of a `select` that ran out of time.
pub(crate) fn no_keys(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
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
        // Opened again (`__init__` called twice): a fresh start, as the
        // standard library's; the old table goes, with its wake-up fd
        // (the next `select` that may block makes one in the new table).
        let old = (
            this.table.replace(table),
            std::mem::take(&mut this.keys),
            this.waker.take(),
        );
        this.free.clear();
        this.tuple_new = Some(tuple_new);
        this.key_cls = Some(key_cls);
        this.map = Some(fd_to_key);
        if this.id == 0 || this.handoff.kind != kind {
            this.handoff = Handoff::new(kind);
        }
        {
            // A child has a copy of epoll's fd, not of a kqueue.
            let table_fd = match kind {
                BackendKind::Epoll => this.table.as_ref().and_then(Table::fileno),
                _ => None,
            };
            let mut state = lock(&this.handoff.state);
            state.waker = None;
            state.table_fd = table_fd;
        }
        this.id = slf.as_ptr() as usize;
        lock(&HANDOFFS).insert(this.id, Arc::clone(&this.handoff));
        drop(this);
        // With the selector free: the old keys' destructors may run
        // Python code.
        drop(old);
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
        crate::stack::check()?;
        let py = slf.py();
        // The caller's code (events' `&`, `fileno()`) first, with the
        // selector free.
        let mask = events_of(events)?;
        let fd = lookup(slf, fileobj)?;
        let data = data.unwrap_or_else(|| py.None()).into_bound(py);
        let maker = borrow(slf)?.key_maker(py)?;
        // An int file object is its own fd, an int subclass (an `IntEnum`)
        // included: the key and the map have it, as the standard
        // library's.
        let fd_obj = if fileobj.is_instance_of::<PyInt>() {
            fileobj.clone()
        } else {
            fd.into_pyobject(py)?.into_any()
        };
        let key = new_key(
            py,
            &maker,
            (fileobj.clone(), fd_obj.clone(), events.clone(), data),
        )?;
        let done = borrow_mut(slf)?.register_impl(py, (fd, &fd_obj), mask, &key);
        done.map_err(|f| f.into_py(fileobj))?;
        Ok(key.unbind())
    }

    /// Unregister a file object (registered, or closed since: it is found
    /// by identity); returns its `SelectorKey`.
    fn unregister(slf: &Bound<'_, Self>, fileobj: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        crate::stack::check()?;
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
        crate::stack::check()?;
        let py = slf.py();
        let fd = lookup_registered(slf, fileobj)?;
        let data = data.unwrap_or_else(|| py.None()).into_bound(py);
        let found = {
            let this = borrow(slf)?;
            this.current_key(py, fd).and_then(|(_, key)| {
                let events = this.events_of_fd(fd)?;
                Ok((key, events))
            })
        };
        // Described with the selector free: the file object's `repr()` is
        // the caller's code, which may give the GIL to another thread.
        let (old, before) = found.map_err(|f| f.into_py(fileobj))?;
        let old = old.into_bound(py).cast_into::<PyTuple>()?;
        // In the standard library's order: events compared, then (when
        // they differ) checked and the OS asked, then data compared. The
        // comparisons and the check run the caller's code, with the
        // selector free; a failure after the OS was asked puts the old
        // events back (a failed modify changes nothing).
        let new_events = events.ne(old.get_item(2)?)?;
        let mask = if new_events {
            let mask = events_of(events)?;
            let rearmed = borrow_mut(slf)?.rearm(fd, mask, true);
            rearmed.map_err(|f| f.into_py(fileobj))?;
            mask
        } else {
            before
        };
        let undo = |e: PyErr| {
            if new_events && let Ok(mut this) = borrow_mut(slf) {
                let _ = this.rearm(fd, before, false);
            }
            e
        };
        let new_data = data.ne(old.get_item(3)?).map_err(undo)?;
        if !new_events && !new_data {
            return Ok(old.into_any().unbind());
        }
        let fd_obj = old.get_item(1)?;
        let key = borrow(slf)
            .and_then(|this| this.key_maker(py))
            .and_then(|maker| {
                new_key(
                    py,
                    &maker,
                    (
                        old.get_item(0)?,
                        fd_obj.clone(),
                        events.clone(),
                        data.clone(),
                    ),
                )
            })
            .map_err(undo)?;
        // Python code run meanwhile may have changed the key, even
        // unregistered and registered the file again: the last change
        // wins, as in the standard library, with the OS told.
        let done = borrow_mut(slf)?.replace_key(py, fd, mask, &key, &fd_obj);
        done.map_err(|f| f.into_py(fileobj))?;
        Ok(key.unbind())
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
        crate::stack::check()?;
        let py = slf.py();
        // Converted with the selector free (`__float__`, `__le__`... are
        // the caller's code); the kind only says how.
        // (Closed: converted all the same, as the mechanism it had would,
        // before the closed error.)
        let handoff = match slf.try_borrow() {
            Ok(this) => Arc::clone(&this.handoff),
            Err(_) => match handoff_of(slf) {
                Some(h) => h,
                None => return Err(busy()),
            },
        };
        let timeout = timeout_of(timeout, handoff.kind)?;
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
            let round = match round {
                Ok(Round::Failed(e)) => Err(os_error(py, e)),
                other => other,
            };
            if matches!(round, Ok(Round::Handoff)) {
                // Woken for a call: not a wake-up for nothing.
                attempt = 0;
            }
            let done = match &round {
                Ok(Round::Done(found)) => !found.is_empty() || wait == timeout,
                Ok(_) => false,
                Err(_) => true,
            };
            handoff.let_go(py);
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
        crate::stack::check()?;
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
            let mut this = match borrow_mut(slf) {
                Ok(this) => this,
                Err(_) if held_in_parent(slf) => {
                    // Forked while a thread of the parent selected: that
                    // thread's hold on the selector never ends here. Its
                    // fds are closed by number; closing succeeds, again
                    // too, as the standard library's does in a child; any
                    // other call says the selector is busy.
                    close_in_child(slf);
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
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
        self.forget_if_closed_in_child();
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

"""Selectors module, in Rust: a maintained ``selectors2``.

This module is a drop-in replacement for the standard library's
``selectors`` (and for the unmaintained ``selectors2`` package, which no
longer imports on Python 3.10+): the same names, the same semantics, the
same exceptions, built on the selectors2 Rust crates (epoll, kqueue, poll
and select through rustix). ``register``, ``unregister``, ``modify``,
``select`` and ``get_key`` run in Rust; ``select`` releases the GIL while it
waits, and on a signal runs the Python handlers: an exception from a
handler propagates out of ``select``, otherwise the wait resumes with the
time left (PEP 475).

Deliberate differences from the standard library:

* A failed ``modify`` changes nothing: the old key and the old OS
  registration stay. (The stdlib unregisters the file object when the OS
  refuses, and loses or keeps the registration depending on the class.)
  ``modify`` also validates ``events`` on every class (the stdlib's poll
  and epoll selectors skip that check), and changes the registration in
  place on every class, so the key keeps the file object that was
  registered (the stdlib's ``SelectSelector`` unregisters and registers
  again: its key takes the object passed to ``modify``, and a file object
  closed meanwhile is dropped with ``ValueError``). As the stdlib's
  epoll selector, ``modify`` compares the events first and, when they
  compare unequal, asks the OS (even for the same bits), then compares
  the data: on every class, ``SelectSelector`` too.
* A report that belongs to an earlier registration of the same fd number
  never reaches the new key (epoll keeps a registration while another fd
  of the same file is open: a ``dup``, a forked child's copy); the stdlib's
  ``EpollSelector`` returns the new key with events ``0`` for it.
* ``KqueueSelector`` reports one ``(key, events)`` entry per file object,
  with read and write merged, as the other selectors do (the stdlib's can
  return two entries for one file object). End of file is per direction,
  as on epoll: a peer's shutdown is ``EVENT_READ``, our own
  ``EVENT_WRITE`` (the stdlib's reports what the kernel's filter says). A
  ``KqueueSelector`` inherited by ``fork()`` acts closed in the child, as
  CPython's does since 3.12.1.
* A selector holds as many file objects as the OS lets the process open,
  as the stdlib's does. Its table starts with room for 64 and doubles as
  it fills, keeping every registration. One ``select`` returns up to
  65,536 ready file objects; more than that in one wait come with the
  next ``select`` (none starves).
* After ``close()``, ``register``, ``select`` and ``get_key`` raise
  ``RuntimeError('Selector is closed')`` on every class (``unregister``
  and ``modify`` raise ``KeyError``, as the stdlib's do; ``close`` may be
  called again). The stdlib is inconsistent here (gh-91433). ``select``
  converts its timeout first, as the stdlib's class of the same name does
  (the same ``TypeError`` for an odd one).
* ``SelectSelector.register`` refuses an fd >= ``FD_SETSIZE`` with
  ``ValueError`` at once, instead of failing in ``select()`` later.
* ``SelectSelector.select`` reports a registered file object that was
  closed (ready, beside the others), as ``PollSelector`` does, instead of
  raising ``OSError(EBADF)`` for the whole call. A registered number
  above the process's file table (never opened) is not reported: Linux's
  ``select()`` ignores such numbers (the stdlib reads the bit it leaves
  set as "ready").
* Other threads may call a selector while its ``select`` waits, as with
  the stdlib's: each call wakes the wait (through a wake-up fd of the
  selector's own, never reported), runs, and the wait goes on for the time
  left, watching what was registered meanwhile. A second thread's
  ``select`` waits for the first one's (at most its own timeout; a poll
  wakes it) where the stdlib's ``PollSelector`` raises ``RuntimeError``.
  ``close()`` from another thread ends a waiting ``select`` at once, with
  no keys. Signal handlers that run inside ``select``, and Python code a
  method runs (``fileno()``, ``__repr__``, ``&`` on the events, ``==`` on
  the data, a destructor, a finalizer run by the garbage collector), may
  call the selector. ``RuntimeError`` is left for what cannot take turns:
  after ``fork()`` (Python's, or C's that skips Python's at-fork hooks),
  a selector whose ``select`` was waiting in another thread of the
  parent (the stdlib's ``EpollSelector`` and ``PollSelector`` copies work;
  make a new one in the child; ``close()`` closes the child's copies of
  its fds, and may be called again), and at interpreter exit, one whose
  ``select`` waits in a daemon thread. A thread whose ``select`` returns at once in a loop (something
  is always ready) lets the calls of other threads in between two
  ``select`` calls.
* Python code that calls the selector again, recursively (a ``fileno()``
  that calls it), gets ``RecursionError`` when the thread's stack runs
  short, where the stdlib's gets it at the recursion limit.
* An infinite or huge timeout (an int beyond any float too) waits as long
  as the OS can, instead of raising ``OverflowError``; a negative int
  beyond any float polls, as with the stdlib.
* ``DefaultSelector`` picks the best mechanism that works at import time
  (kqueue or epoll, else poll, else select), probing each by opening it.

Under gevent or eventlet (``select.select`` monkey-patched by either,
before or after this module is imported; any other replacement, a test's
``mock.patch`` say, is not theirs and changes nothing), ``select`` with a timeout other than zero waits
through the patched ``select.select``, so other greenlets run meanwhile,
and polls the selector after each wake-up; a call from another greenlet
(``register``, ``close``...) wakes it, as a call from another thread
does.

Against the ``selectors2`` backport: patching the ``select`` module does
not steer ``DefaultSelector`` (an ``EpollSelector`` under gevent waits
cooperatively through its own fd); ``register`` of an fd beyond C's
``int`` raises ``OverflowError``, as the stdlib's epoll and poll
selectors do.
"""

import errno
import os
import select as _select
import sys as _sys
from abc import ABCMeta, abstractmethod
from collections import namedtuple
from collections.abc import Mapping

from . import _selectors2

#: Interest in reading; Python's value, ``1``.
EVENT_READ = 1
#: Interest in writing; Python's value, ``2``.
EVENT_WRITE = 2

#: The version of the distribution (``selectors2-rs``) this module came from.
__version__ = _selectors2.__version__


def _fileobj_to_fd(fileobj):
    """The fd that ``fileobj`` names: the int itself, or ``int(fileobj.fileno())``.

    ``ValueError`` for an object without a usable ``fileno()`` or for a
    negative number, worded as the standard library words it.
    """
    fd = fileobj
    if not isinstance(fd, int):
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError("Invalid file object: {!r}".format(fileobj)) from None
    if fd < 0:
        raise ValueError("Invalid file descriptor: {}".format(fd))
    return fd


def _fd_is_open(fd):
    """Whether ``fd`` names an open file now."""
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


SelectorKey = namedtuple("SelectorKey", ["fileobj", "fd", "events", "data"])
SelectorKey.__module__ = __name__
SelectorKey.__doc__ = """SelectorKey(fileobj, fd, events, data): one registration.

``fileobj`` is the object given to ``register`` (kept as it is, compared by
identity), ``fd`` the descriptor it named then, ``events`` the interest
(``EVENT_READ``, ``EVENT_WRITE`` or both) and ``data`` whatever the caller
keeps with it.
"""


class _KeyView(Mapping):
    """What ``get_map()`` returns: the registrations, keyed by file object or
    fd, read-only and always current."""

    __slots__ = ("_owner",)

    def __init__(self, owner):
        self._owner = owner

    def __len__(self):
        return len(self._owner._fd_to_key)

    def __iter__(self):
        return iter(self._owner._fd_to_key)

    # A KeyError of the lookup itself (a fileno() that raises one) as the
    # standard library of this Python treats it: "not registered" before
    # 3.13, passed on from 3.13.
    if _sys.version_info >= (3, 13):
        def __getitem__(self, fileobj):
            key = self.get(fileobj)
            if key is None:
                raise KeyError("{!r} is not registered".format(fileobj))
            return key

        def get(self, fileobj, default=None):
            fd = self._owner._fileobj_lookup(fileobj)
            return self._owner._fd_to_key.get(fd, default)
    else:
        def __getitem__(self, fileobj):
            try:
                fd = self._owner._fileobj_lookup(fileobj)
                return self._owner._fd_to_key[fd]
            except KeyError:
                raise KeyError("{!r} is not registered".format(fileobj)) from None

        def get(self, fileobj, default=None):
            try:
                fd = self._owner._fileobj_lookup(fileobj)
                return self._owner._fd_to_key[fd]
            except KeyError:
                return default


class BaseSelector(metaclass=ABCMeta):
    """The interface every selector here has (an ABC, as the standard
    library's): watch file objects (an fd, or anything with ``fileno()``)
    for ``EVENT_READ`` and ``EVENT_WRITE`` with data of the caller's, and
    ``select()`` the ones that are ready. A subclass provides
    ``register``, ``unregister``, ``select`` and ``get_map``; the rest is
    written in terms of those.
    """

    @abstractmethod
    def register(self, fileobj, events, data=None):
        """Start watching ``fileobj`` for ``events``; return its new
        ``SelectorKey``. ``ValueError`` for bad events or a bad file object,
        ``KeyError`` if it is registered already, ``OSError`` if the
        operating system refuses it."""
        raise NotImplementedError

    @abstractmethod
    def unregister(self, fileobj):
        """Stop watching ``fileobj``; return its ``SelectorKey``. Works for a
        file object closed since it was registered; ``KeyError`` for one
        that is not registered."""
        raise NotImplementedError

    def modify(self, fileobj, events, data=None):
        """Give ``fileobj`` new ``events`` and ``data``; return the new key.
        This generic version unregisters and registers again; the
        selectors of this module change the registration in place and, on
        failure, leave it as it was."""
        self.unregister(fileobj)
        return self.register(fileobj, events, data)

    @abstractmethod
    def select(self, timeout=None):
        """Wait until a watched file object is ready, or ``timeout`` seconds
        (``None``: no limit; zero or less: do not wait); return a list of
        ``(key, events)``, ``events`` being what is ready of what the key
        asked for."""
        raise NotImplementedError

    def close(self):
        """Release what the selector holds. Nothing here; subclasses
        override it."""

    def get_key(self, fileobj):
        """The ``SelectorKey`` of ``fileobj``; ``KeyError`` if it is not
        registered, ``RuntimeError`` once the selector is closed."""
        registrations = self.get_map()
        if registrations is None:
            raise RuntimeError("Selector is closed")
        try:
            return registrations[fileobj]
        except KeyError:
            raise KeyError("{!r} is not registered".format(fileobj)) from None

    @abstractmethod
    def get_map(self):
        """The registrations, as a read-only mapping (``None`` once closed)."""
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class _NativeBase(_selectors2._Selector, BaseSelector):
    """A selector of this module: the table and the system calls are Rust's
    (``_selectors2``); this class adds what is easier in Python."""

    #: Which mechanism the native half opens; each subclass names one.
    _mechanism = None

    def __init__(self):
        # fd -> SelectorKey: written by the native methods, read by get_map().
        self._fd_to_key = {}
        self._map = _KeyView(self)
        self._open(self._mechanism, SelectorKey, self._fd_to_key)

    register = _selectors2._Selector.register
    unregister = _selectors2._Selector.unregister
    modify = _selectors2._Selector.modify
    select = _selectors2._Selector.select
    get_key = _selectors2._Selector.get_key

    def _fileobj_lookup(self, fileobj):
        """The fd of ``fileobj``: from the object itself, or, when that fails
        (a socket closed since, say), from the key that holds this very
        object. In Python, so that ``get_map()`` is read without waking a
        ``select()`` that waits in another thread."""
        try:
            return _fileobj_to_fd(fileobj)
        except ValueError:
            for key in self._fd_to_key.values():
                if key.fileobj is fileobj:
                    return key.fd
            raise

    def _green_wait(self, timeout, attempt, wake_fd):
        """Wait cooperatively until something registered may be ready, or
        ``timeout`` seconds pass (``None``: no limit), through the
        ``select`` module's ``select()`` as gevent or eventlet patched it;
        ``select()`` calls this instead of waiting in its own system call,
        which would block every greenlet, and then polls. Returns early on
        a wake-up for nothing; the caller polls and calls again with the
        time left (``attempt`` counts the calls).

        The first wait of a ``select()`` watches the selector's own fd
        (epoll and kqueue: readable when a key is ready); a later one
        watches the registered fds themselves, since that fd can stay
        readable for a registration the kernel kept after its fd was
        closed. From the third on, a short nap comes first (1 ms, doubling
        up to 50 ms), so that a wake-up the poll cannot turn into keys (a
        registered fd closed without ``unregister``, its number reused)
        never makes ``select()`` spin. ``wake_fd`` (or ``None``) is the
        selector's wake-up fd, which a call from another greenlet makes
        readable: it wakes this wait, even when the call closes the
        selector.
        """
        wait = _select.select
        if attempt >= 2:
            nap = min(0.001 * 2 ** min(attempt - 2, 6), 0.05)
            wait([], [], [], nap if timeout is None else min(timeout, nap))
            if timeout is not None:
                timeout = max(timeout - nap, 0.0)
        if attempt == 0 and self._mechanism in ("epoll", "kqueue"):
            try:
                readers, writers = [self._fileno()], []
            except ValueError:
                return  # closed (by a signal handler, say): the poll ends it
        else:
            keys = self._fd_to_key.values()
            readers = [k.fd for k in keys if k.events & EVENT_READ]
            writers = [k.fd for k in keys if k.events & EVENT_WRITE]
        if wake_fd is not None:
            readers.append(wake_fd)
        try:
            wait(readers, writers, [], timeout)
        except (OSError, ValueError):
            # A registered fd closed since (EBADF), or the selector closed
            # by another greenlet: wait on for the fds still open; with
            # none, return, and the poll that follows reports what is
            # there (or ends a closed selector's select).
            readers = [fd for fd in readers if _fd_is_open(fd)]
            writers = [fd for fd in writers if _fd_is_open(fd)]
            if readers or writers:
                try:
                    wait(readers, writers, [], timeout)
                except (OSError, ValueError):
                    pass

    def _key_from_fd(self, fd):
        """The key registered for ``fd``, or ``None``. Private, as in
        CPython's selectors and the selectors2 backport (whose own tests
        call it); kept for code that reached for it."""
        return self._fd_to_key.get(fd)

    def close(self):
        """Close the selector: forget every registration and release what
        it holds from the OS (its epoll or kqueue fd, its wake-up fd; the
        registered files themselves stay open). A ``select`` waiting in
        another thread returns at once, with no keys. Afterwards
        ``get_map()`` is ``None``, ``register``, ``select`` and ``get_key``
        raise ``RuntimeError``, and ``close`` again does nothing."""
        self._close()
        self._fd_to_key.clear()  # already, but in a forked child (see _close)
        self._map = None

    def get_map(self):
        return self._map


class SelectSelector(_NativeBase):
    """A selector on ``select(2)``: fds below ``FD_SETSIZE`` only."""
    _mechanism = "select"


class PollSelector(_NativeBase):
    """A selector on ``poll(2)``."""
    _mechanism = "poll"


_AVAILABLE = _selectors2.available()

if "epoll" in _AVAILABLE:

    class EpollSelector(_NativeBase):
        """A selector on Linux's ``epoll``; ``fileno()`` is the epoll fd."""
        _mechanism = "epoll"

        def fileno(self):
            return self._fileno()

if "kqueue" in _AVAILABLE:

    class KqueueSelector(_NativeBase):
        """A selector on BSD and macOS ``kqueue``; ``fileno()`` is its fd."""
        _mechanism = "kqueue"

        def fileno(self):
            return self._fileno()


#: errno values that mean "ran short", not "missing or forbidden here".
_SHORTAGES = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS))


def _works(mechanism):
    """Whether ``mechanism`` opens here (a sandbox may refuse epoll, say).

    A shortage (out of fds or memory at import time) says nothing about
    the mechanism: it counts as working, and creating a selector then
    raises the ``OSError``, as the standard library's would.
    """
    trial = _selectors2._Selector()
    try:
        trial._open(mechanism, SelectorKey, {})
        return True
    except OSError as e:
        return e.errno in _SHORTAGES
    finally:
        trial._close()


def _default():
    """The first mechanism that works, in CPython's order of preference."""
    for name, cls in (("kqueue", "KqueueSelector"), ("epoll", "EpollSelector"),
                      ("poll", "PollSelector")):
        if name in _AVAILABLE and _works(name):
            return globals()[cls]
    return SelectSelector


#: The best selector that works here.
DefaultSelector = _default()

#: What ``from selectors2 import *`` takes: the selectors2 backport's list
#: (CPython's selectors has none), with the classes this platform has.
__all__ = ["EVENT_READ", "EVENT_WRITE", "SelectorKey", "BaseSelector",
           "DefaultSelector", "SelectSelector", "PollSelector"]
__all__ += [name for name in ("EpollSelector", "KqueueSelector") if name in globals()]


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
  and epoll selectors skip that check).
* ``KqueueSelector`` reports one ``(key, events)`` entry per file object,
  with read and write merged, as the other selectors do (the stdlib's can
  return two entries for one file object).
* A selector holds at most ``CAPACITY`` (65,536) file objects; one more
  raises ``OSError(errno.ENOSPC)``.
* After ``close()``, ``register``, ``modify``, ``select`` and ``get_key``
  raise ``RuntimeError('Selector is closed')`` on every class
  (``unregister`` raises ``KeyError``; ``close`` may be called again). The
  stdlib is inconsistent here (bpo-91433).
* ``SelectSelector.register`` refuses an fd >= ``FD_SETSIZE`` with
  ``ValueError`` at once, instead of failing in ``select()`` later.
* ``SelectSelector.select`` reports a registered file object that was
  closed (ready, beside the others), as ``PollSelector`` does, instead of
  raising ``OSError(EBADF)`` for the whole call.
* A selector object is used by one thread at a time: calling
  ``register``, ``unregister``, ``modify``, ``get_key``, ``select`` or
  ``close`` from another thread while ``select`` waits raises
  ``RuntimeError`` (the stdlib allows it on epoll and kqueue). ``get_map()``
  stays readable.
* An infinite or huge timeout waits as long as the OS can, instead of
  raising ``OverflowError``.
* ``DefaultSelector`` picks the best mechanism that works at import time
  (kqueue or epoll, else poll, else select), probing each by opening it.
"""

from abc import ABCMeta, abstractmethod
from collections import namedtuple
from collections.abc import Mapping

from . import _selectors2

# generic events, that must be mapped to implementation-specific ones
EVENT_READ = (1 << 0)
EVENT_WRITE = (1 << 1)

#: How many file objects one selector can hold.
CAPACITY = _selectors2.CAPACITY


def _fileobj_to_fd(fileobj):
    """Return a file descriptor from a file object.

    Parameters:
    fileobj -- file object or file descriptor

    Returns:
    corresponding file descriptor

    Raises:
    ValueError if the object is invalid
    """
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError("Invalid file object: "
                             "{!r}".format(fileobj)) from None
    if fd < 0:
        raise ValueError("Invalid file descriptor: {}".format(fd))
    return fd


SelectorKey = namedtuple('SelectorKey', ['fileobj', 'fd', 'events', 'data'])
SelectorKey.__module__ = __name__
SelectorKey.__doc__ = """SelectorKey(fileobj, fd, events, data)

    Object used to associate a file object to its backing
    file descriptor, selected event mask, and attached data.
"""
SelectorKey.fileobj.__doc__ = 'File object registered.'
SelectorKey.fd.__doc__ = 'Underlying file descriptor.'
SelectorKey.events.__doc__ = 'Events that must be waited for on this file object.'
SelectorKey.data.__doc__ = ('''Optional opaque data associated to this file object.
    For example, this could be used to store a per-client session ID.''')


class _SelectorMapping(Mapping):
    """Mapping of file objects to selector keys (live and read-only)."""

    __slots__ = ('_selector',)

    def __init__(self, selector):
        self._selector = selector

    def __len__(self):
        return len(self._selector._fd_to_key)

    def get(self, fileobj, default=None):
        fd = self._selector._fileobj_lookup(fileobj)
        return self._selector._fd_to_key.get(fd, default)

    def __getitem__(self, fileobj):
        fd = self._selector._fileobj_lookup(fileobj)
        key = self._selector._fd_to_key.get(fd)
        if key is None:
            raise KeyError("{!r} is not registered".format(fileobj))
        return key

    def __iter__(self):
        return iter(self._selector._fd_to_key)


class BaseSelector(metaclass=ABCMeta):
    """Selector abstract base class.

    A selector supports registering file objects to be monitored for specific
    I/O events.

    A file object is a file descriptor or any object with a `fileno()` method.
    An arbitrary object can be attached to the file object, which can be used
    for example to store context information, a callback, etc.

    A selector can use various implementations (select(), poll(), epoll()...)
    depending on the platform. The default `Selector` class uses the most
    efficient implementation on the current platform.
    """

    @abstractmethod
    def register(self, fileobj, events, data=None):
        """Register a file object.

        Parameters:
        fileobj -- file object or file descriptor
        events  -- events to monitor (bitwise mask of EVENT_READ|EVENT_WRITE)
        data    -- attached data

        Returns:
        SelectorKey instance

        Raises:
        ValueError if events is invalid
        KeyError if fileobj is already registered
        OSError if fileobj is closed or otherwise is unacceptable to
                the underlying system call (if a system call is made)

        Note:
        OSError may or may not be raised
        """
        raise NotImplementedError

    @abstractmethod
    def unregister(self, fileobj):
        """Unregister a file object.

        Parameters:
        fileobj -- file object or file descriptor

        Returns:
        SelectorKey instance

        Raises:
        KeyError if fileobj is not registered

        Note:
        If fileobj is registered but has since been closed this does
        *not* raise OSError (even if the wrapped syscall does)
        """
        raise NotImplementedError

    def modify(self, fileobj, events, data=None):
        """Change a registered file object monitored events or attached data.

        Parameters:
        fileobj -- file object or file descriptor
        events  -- events to monitor (bitwise mask of EVENT_READ|EVENT_WRITE)
        data    -- attached data

        Returns:
        SelectorKey instance

        Raises:
        Anything that unregister() or register() raises
        """
        self.unregister(fileobj)
        return self.register(fileobj, events, data)

    @abstractmethod
    def select(self, timeout=None):
        """Perform the actual selection, until some monitored file objects are
        ready or a timeout expires.

        Parameters:
        timeout -- if timeout > 0, this specifies the maximum wait time, in
                   seconds
                   if timeout <= 0, the select() call won't block, and will
                   report the currently ready file objects
                   if timeout is None, select() will block until a monitored
                   file object becomes ready

        Returns:
        list of (key, events) for ready file objects
        `events` is a bitwise mask of EVENT_READ|EVENT_WRITE
        """
        raise NotImplementedError

    def close(self):
        """Close the selector.

        This must be called to make sure that any underlying resource is freed.
        """
        pass

    def get_key(self, fileobj):
        """Return the key associated to a registered file object.

        Returns:
        SelectorKey for this file object
        """
        mapping = self.get_map()
        if mapping is None:
            raise RuntimeError('Selector is closed')
        try:
            return mapping[fileobj]
        except KeyError:
            raise KeyError("{!r} is not registered".format(fileobj)) from None

    @abstractmethod
    def get_map(self):
        """Return a mapping of file objects to selector keys."""
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.close()


class _BaseSelectorImpl(_selectors2._Selector, BaseSelector):
    """The selectors of this module: the hot paths are native (Rust)."""

    #: The OS mechanism, set by each subclass.
    _mechanism = None

    def __init__(self):
        # fd -> SelectorKey, kept in step by the native methods.
        self._fd_to_key = {}
        # read-only mapping returned by get_map()
        self._map = _SelectorMapping(self)
        self._open(self._mechanism, SelectorKey, self._fd_to_key)

    # register, unregister, modify, select and get_key are native.
    register = _selectors2._Selector.register
    unregister = _selectors2._Selector.unregister
    modify = _selectors2._Selector.modify
    select = _selectors2._Selector.select
    get_key = _selectors2._Selector.get_key

    def _fileobj_lookup(self, fileobj):
        """Return a file descriptor from a file object.

        This wraps _fileobj_to_fd() to do an exhaustive search in case
        the object is invalid but we still have it in our map.  This
        is used by unregister() so we can unregister an object that
        was previously registered even if it is closed.  It is also
        used by _SelectorMapping.
        """
        # Python, not native: the mapping stays readable from other
        # threads while select() waits.
        try:
            return _fileobj_to_fd(fileobj)
        except ValueError:
            # Do an exhaustive search.
            for key in self._fd_to_key.values():
                if key.fileobj is fileobj:
                    return key.fd
            # Raise ValueError after all.
            raise

    def close(self):
        self._close()
        self._map = None

    def get_map(self):
        return self._map


class SelectSelector(_BaseSelectorImpl):
    """Select-based selector."""
    _mechanism = 'select'


class PollSelector(_BaseSelectorImpl):
    """Poll-based selector."""
    _mechanism = 'poll'


_AVAILABLE = _selectors2.available()

if 'epoll' in _AVAILABLE:

    class EpollSelector(_BaseSelectorImpl):
        """Epoll-based selector."""
        _mechanism = 'epoll'

        def fileno(self):
            return self._fileno()

if 'kqueue' in _AVAILABLE:

    class KqueueSelector(_BaseSelectorImpl):
        """Kqueue-based selector."""
        _mechanism = 'kqueue'

        def fileno(self):
            return self._fileno()


def _can_use(mechanism):
    """Check if we can use the mechanism: open it (and close it)."""
    probe = _selectors2._Selector()
    try:
        probe._open(mechanism, SelectorKey, {})
    except OSError:
        return False
    else:
        return True
    finally:
        probe._close()


# Choose the best implementation, roughly:
#    kqueue == epoll > poll > select.
if 'kqueue' in _AVAILABLE and _can_use('kqueue'):
    DefaultSelector = KqueueSelector
elif 'epoll' in _AVAILABLE and _can_use('epoll'):
    DefaultSelector = EpollSelector
elif _can_use('poll'):
    DefaultSelector = PollSelector
else:
    DefaultSelector = SelectSelector

"""selectors2 against the standard library's selectors, step by step.

    python -m unittest test_differential     (from python/tests; needs hypothesis)

Hypothesis drives random sequences of operations on real file descriptors
(non-blocking pipes, socket pairs, a TCP listener and a connect in
flight, /dev/null) and applies each one to two
selectors of the same mechanism that watch the same fds: the standard
library's (`selectors.SelectSelector`, `PollSelector`, `EpollSelector`) and
ours. Both see the same kernel state, so every result must agree: the keys
`register`, `modify` and `get_key` return (the file object by identity, the
fd, the events, the data by identity), the exception type, errno and
message of every failure, the `(key, events)` pairs of `select(0)` (as a set: the order is
the kernel's), and `get_map()` (length, keys, membership of every file
object the test holds, open or closed). The operations include what breaks
readiness libraries: closing a registered fd without unregistering it, fd
numbers taken again by new files, a duplicate keeping a closed registered
fd's file open, hang-ups, full pipes, files epoll cannot
watch, file objects whose `fileno()` fails once closed, data that compares
equal but is another object.

Where this module differs on purpose (python/README.md lists each), the
test checks our side of the difference and brings the stdlib's state in
line, then goes on:

* a `modify` the OS refuses (epoll, on a closed fd): ours keeps the old key,
  the stdlib's unregisters; both must raise the same error;
* `modify` with invalid events: ours raises `ValueError` and keeps the key
  (the stdlib's poll and epoll accept them; its select unregisters);
* epoll, a registered fd closed while a duplicate keeps its file open: the
  stdlib's epoll goes on watching that file under the number, and reports
  it for whatever key later holds the number (CPython's bug that ours fixes
  by rebuilding, docs/backends.md, "epoll"), and, asking the kernel for as
  many events as it has keys, lets such leftovers crowd live keys out.
  While any exists, ours must report, for every key whose number still
  names the file registered, what poll(2) says of that file. The rebuild's fresh
  epoll instance may take a closed number the test then registers: ours
  says EINVAL (a selector in itself) where the stdlib's accepts our
  instance;
* `SelectSelector.select` with a closed fd registered: ours reports it
  ready with its whole interest, the stdlib's raises `OSError(EBADF)`;
* `SelectSelector.modify` that changes the events: the stdlib's unregisters
  and registers again, so its key takes the object passed in (the fd
  number of a registered socket, say), and a file object closed meanwhile
  (whose `fileno()` now fails) is dropped with `ValueError`; ours changes
  the registration in place, as the stdlib's poll and epoll do.

The sequences are derandomized (the same every run) unless
SELECTORS2_DIFF_EXAMPLES is set, which also sets how many per mechanism:
`SELECTORS2_DIFF_EXAMPLES=5000 python -m unittest test_differential`
explores anew.
"""

import atexit
import collections
import errno
import os
import select
import selectors as std
import socket
import unittest

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import selectors2 as ours
from test_ours import fd_is_open

MECHANISMS = [name for name in ("SelectSelector", "PollSelector", "EpollSelector")
              if hasattr(std, name) and hasattr(ours, name)]

EXPLORE = os.environ.get("SELECTORS2_DIFF_EXAMPLES")
SETTINGS = settings(
    max_examples=int(EXPLORE) if EXPLORE else 300,
    stateful_step_count=40,
    derandomize=not EXPLORE,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

# Data that compares equal but is not the same object (1, 1.0, True), and
# objects equal to nothing else: the stdlib keeps the old data object when
# the new one compares equal, and ours must too.
A, B = object(), object()
DATA = st.one_of(st.sampled_from([None, 0, 1, 1.0, True, "x", A, B]), st.builds(lambda: [1]))
EVENTS = st.sampled_from([1, 2, 3, 1, 2, 3, 0, 4, -1])
VALID = (1, 2, 3)

# How often each deliberate difference and each rare path was met; printed
# after an exploring run (SELECTORS2_DIFF_EXAMPLES), to show the sequences
# reach them.
SEEN = collections.Counter()
if EXPLORE:
    atexit.register(lambda: print("\n".join("%8d %s" % (n, what) for what, n in sorted(SEEN.items()))))


class FileLike:
    """A file object with `fileno()` that fails once closed, as io's do."""

    def __init__(self, fd):
        self.fd = fd
        self.closed = False

    def fileno(self):
        if self.closed:
            raise ValueError("I/O operation on closed file")
        return self.fd

    def close(self):
        if not self.closed:
            self.closed = True
            os.close(self.fd)

    def __repr__(self):
        return "FileLike(%d%s)" % (self.fd, ", closed" if self.closed else "")


class End:
    """One watched file: the object the test registers (a socket, a
    FileLike, or an int fd), the peer that makes it ready, and how."""

    def __init__(self, kind, obj, fd, peer=None, writer=None):
        self.kind = kind
        self.obj = obj
        self.fd = fd
        self.peer = peer          # closing it hangs `obj` up
        self.writer = writer      # writing to it makes `obj` readable
        self.closed = False

    def __repr__(self):
        return "End(%s, fd=%d%s)" % (self.kind, self.fd, ", closed" if self.closed else "")

    def close(self):
        if not self.closed:
            self.closed = True
            if isinstance(self.obj, int):
                os.close(self.obj)
            else:
                self.obj.close()

    def close_peer(self):
        if self.peer is not None:
            self.peer.close()
            self.peer = self.writer = None


def outcome(call):
    """("ok", value) or ("err", exception type, errno, message)."""
    try:
        return ("ok", call())
    except Exception as e:  # noqa: BLE001 - every failure is compared
        return ("err", type(e), getattr(e, "errno", None), str(e))


def norm_key(key):
    """A key as a comparable value: the file object by identity (ints by
    value), fd, events, data by identity."""
    fileobj = ("int", key.fileobj) if isinstance(key.fileobj, int) else ("obj", id(key.fileobj))
    return (fileobj, key.fd, key.events, id(key.data))


def norm(result):
    if result[0] == "ok":
        value = result[1]
        if hasattr(value, "fileobj"):
            return ("ok", norm_key(value))
        return ("ok", value)
    return result


def machine_for(mechanism):
    class Differential(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.std = getattr(std, mechanism)()
            self.ours = getattr(ours, mechanism)()
            self.ends = []
            self.dups = []
            self.pending = set()   # numbers with a leftover registration
            self.files = {}        # fd -> the file registered there (file_id)

        def teardown(self):
            self.std.close()
            self.ours.close()
            for fd in self.dups:
                os.close(fd)
            for end in self.ends:
                end.close()
                end.close_peer()

        # -- files -------------------------------------------------------

        @precondition(lambda self: sum(not e.closed for e in self.ends) < 8)
        @rule(kind=st.sampled_from(["pipe_r", "pipe_w", "pipe_r_int", "sock", "sock_int",
                                    "devnull", "listener", "connecting"]))
        def open(self, kind):
            if kind.startswith("pipe"):
                r, w = os.pipe()
                os.set_blocking(r, False)
                os.set_blocking(w, False)
                if kind == "pipe_w":
                    end = End(kind, FileLike(w), w, peer=FileLike(r))
                else:
                    reader = r if kind == "pipe_r_int" else FileLike(r)
                    writer = FileLike(w)
                    end = End(kind, reader, r, peer=writer, writer=writer)
            elif kind.startswith("sock"):
                a, b = socket.socketpair()
                a.setblocking(False)
                b.setblocking(False)
                if kind == "sock_int":
                    # The int is registered; the socket object owns the fd.
                    end = End(kind, a, a.fileno(), peer=b, writer=b)
                    end.as_int = True
                else:
                    end = End(kind, a, a.fileno(), peer=b, writer=b)
            elif kind in ("listener", "connecting"):
                # A listening socket (readable once a connection waits) with
                # a non-blocking connect to it in flight (writable once done).
                lst = socket.socket()
                lst.bind(("127.0.0.1", 0))
                lst.listen(4)
                lst.setblocking(False)
                conn = socket.socket()
                conn.setblocking(False)
                conn.connect_ex(lst.getsockname())
                if kind == "listener":
                    end = End(kind, lst, lst.fileno(), peer=conn)
                else:
                    end = End(kind, conn, conn.fileno(), peer=lst)
            else:
                fd = os.open(os.devnull, os.O_RDONLY)
                end = End(kind, FileLike(fd), fd)
            self.ends.append(end)

        def pick(self, i):
            return self.ends[i % len(self.ends)] if self.ends else None

        def target(self, end, as_int):
            """What to pass: the object, or its fd number (int)."""
            if as_int or getattr(end, "as_int", False):
                return end.fd
            return end.obj

        @precondition(lambda self: self.ends)
        @rule(i=st.integers(0, 63), n=st.integers(1, 3))
        def make_readable(self, i, n):
            end = self.pick(i)
            if end.writer is None or end.closed:
                return
            try:
                if isinstance(end.writer, socket.socket):
                    end.writer.send(b"x" * n)
                else:
                    os.write(end.writer.fd, b"x" * n)
            except (BlockingIOError, BrokenPipeError, ConnectionError):
                pass

        @precondition(lambda self: self.ends)
        @rule(i=st.integers(0, 63))
        def drain(self, i):
            end = self.pick(i)
            if end.closed or end.kind in ("pipe_w", "devnull"):
                return
            try:
                while True:
                    if end.kind == "listener":
                        end.obj.accept()[0].close()
                        continue
                    if isinstance(end.obj, socket.socket):
                        got = end.obj.recv(65536)
                    else:
                        got = os.read(end.fd, 65536)
                    if not got:
                        return
            except OSError:  # would block, reset, not connected
                pass

        @precondition(lambda self: self.ends)
        @rule(i=st.integers(0, 63))
        def fill(self, i):
            """Fill a pipe's write end until it is no longer writable."""
            end = self.pick(i)
            if end.kind != "pipe_w" or end.closed:
                return
            try:
                while True:
                    os.write(end.fd, b"y" * 65536)
            except (BlockingIOError, BrokenPipeError):
                pass

        @precondition(lambda self: self.ends)
        @rule(i=st.integers(0, 63), how=st.sampled_from(["close", "shutdown"]))
        def hang_up(self, i, how):
            end = self.pick(i)
            if end.peer is None:
                return
            if how == "shutdown" and isinstance(end.peer, socket.socket):
                try:
                    end.peer.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            else:
                end.close_peer()

        @precondition(lambda self: self.ends and len(self.dups) < 4)
        @rule(i=st.integers(0, 63))
        def dup(self, i):
            """Keep a duplicate of a file open, so that closing the watched
            fd leaves epoll a registration no fd names (the stdlib's epoll
            then wakes at once for it; ours rebuilds)."""
            end = self.pick(i)
            if not end.closed:
                self.dups.append(os.dup(end.fd))
                end.duped = True

        @precondition(lambda self: self.ends)
        @rule(i=st.integers(0, 63))
        def close_watched(self, i):
            """Close a file, registered or not, without unregistering it:
            its number is free for the next open."""
            end = self.pick(i)
            if (mechanism == "EpollSelector" and getattr(end, "duped", False)
                    and not end.closed and end.fd in self.std.get_map()):
                # The stdlib's epoll keeps watching the file under this
                # number, and reports it for whatever key registers the
                # number from now on (CPython's bug that ours fixes: see
                # select).
                self.pending.add(end.fd)
            end.close()

        # -- the API -----------------------------------------------------

        def both(self, method, *args):
            """`method(*args)` on the stdlib's selector, then on ours: the
            two outcomes."""
            return (outcome(lambda: getattr(self.std, method)(*args)),
                    outcome(lambda: getattr(self.ours, method)(*args)))

        @precondition(lambda self: self.ends)
        @rule(i=st.integers(0, 63), as_int=st.booleans(), events=EVENTS, data=DATA)
        def register(self, i, as_int, events, data):
            f = self.target(self.pick(i), as_int)
            a, b = self.both("register", f, events, data)
            if (b[:3] == ("err", OSError, errno.EINVAL) and a[0] == "ok"
                    and is_epoll_instance(a[1].fd) and a[1].fd != self.std.fileno()):
                # A closed number that our epoll's rebuild took for its
                # fresh instance (see select): registering a selector in
                # itself is EINVAL. Alone, the stdlib's would say EBADF.
                self.std.unregister(f)
                SEEN["epoll: register of our rebuild's instance"] += 1
                return
            assert norm(a) == norm(b), ("register", f, events, a, b)
            SEEN["register " + a[0]] += 1
            if a[0] == "ok":
                self.files[a[1].fd] = file_id(a[1].fd)

        @precondition(lambda self: self.ends)
        @rule(i=st.integers(0, 63), as_int=st.booleans(), events=EVENTS, data=DATA)
        def modify(self, i, as_int, events, data):
            f = self.target(self.pick(i), as_int)
            before = outcome(lambda: self.ours.get_key(f))
            if events not in VALID:
                # Ours validates on every class and changes nothing.
                b = outcome(lambda: self.ours.modify(f, events, data))
                if before[0] == "ok":
                    assert b[:2] == ("err", ValueError), ("modify", f, events, b)
                    assert norm(outcome(lambda: self.ours.get_key(f))) == norm(before)
                return
            a, b = self.both("modify", f, events, data)
            if (mechanism == "SelectSelector" and a[0] == "ok" and b[0] == "ok"
                    and before[0] == "ok" and a[1].fileobj is not before[1].fileobj):
                # The stdlib's select put the argument in the key; ours kept
                # the registered object, as its poll and epoll do.
                assert b[1].fileobj is before[1].fileobj, ("modify", f, b)
                assert norm_key(b[1])[1:] == norm_key(a[1])[1:], ("modify", f, a, b)
                # Bring the stdlib's map in line (its select sets are by fd).
                self.std._fd_to_key[a[1].fd] = a[1]._replace(fileobj=before[1].fileobj)
                SEEN["select: modify put the argument in the key"] += 1
                return
            if (mechanism == "SelectSelector" and a[:2] == ("err", ValueError) and b[0] == "ok"
                    and before[0] == "ok" and obj_closed(before[1].fileobj)):
                # The stdlib's select unregistered the closed object and
                # could not register it again; ours changed it in place.
                assert b[1].fileobj is before[1].fileobj and b[1].events == events, b
                self.ours.unregister(f)
                SEEN["select: modify dropped a closed file object"] += 1
                return
            if a[0] == "err" and b[0] == "err" and issubclass(a[1], OSError) and a[1:] == b[1:]:
                # The OS refused: ours kept the old key, the stdlib dropped it.
                assert norm(outcome(lambda: self.ours.get_key(f))) == norm(before), (
                    "a failed modify changed our key", f)
                self.ours.unregister(f)
                SEEN["modify refused by the OS, ours kept the key"] += 1
                return
            assert norm(a) == norm(b), ("modify", f, events, a, b)
            SEEN["modify " + a[0]] += 1

        @precondition(lambda self: self.ends)
        @rule(i=st.integers(0, 63), as_int=st.booleans())
        def unregister(self, i, as_int):
            f = self.target(self.pick(i), as_int)
            a, b = self.both("unregister", f)
            assert norm(a) == norm(b), ("unregister", f, a, b)
            if a[0] == "ok":
                self.files.pop(a[1].fd, None)

        @precondition(lambda self: self.ends)
        @rule(i=st.integers(0, 63), as_int=st.booleans())
        def get_key(self, i, as_int):
            f = self.target(self.pick(i), as_int)
            a, b = self.both("get_key", f)
            assert norm(a) == norm(b), ("get_key", f, a, b)

        @rule()
        def select(self):
            a, b = self.both("select", 0)
            if mechanism == "SelectSelector" and a[:3] == ("err", OSError, errno.EBADF):
                # Ours reports each closed registered fd with its interest,
                # beside the others.
                assert b[0] == "ok", ("select", a, b)
                got = {k.fd: ev for k, ev in b[1]}
                closed = [k for k in self.ours.get_map().values() if not fd_is_open(k.fd)]
                assert closed, ("EBADF without a closed fd", b)
                for k in closed:
                    assert got.get(k.fd) == k.events, ("closed fd not reported", k, got)
                SEEN["select: stdlib EBADF, ours reported the closed fd"] += 1
                return
            if a[0] == "ok" and b[0] == "ok" and self.pending:
                # The stdlib's epoll holds registrations that outlived
                # their fds: it reports such a file for whatever key holds
                # its number now, and, asking the kernel for as many events
                # as it has keys, lets them crowd live keys out. Ours must
                # tell the truth: for every key whose number still names
                # the file registered, what poll(2) says of it now.
                got = {k.fd: ev for k, ev in b[1]}
                for key in self.ours.get_map().values():
                    if self.files.get(key.fd) == file_id(key.fd):
                        assert got.get(key.fd, 0) == true_events(key.fd, key.events), (
                            "select beside leftovers", key, got)
                        SEEN["epoll: a key beside leftovers checked against poll(2)"] += 1
                if sorted((norm_key(k), ev) for k, ev in a[1]) != sorted(
                        (norm_key(k), ev) for k, ev in b[1]):
                    SEEN["epoll: ... where the stdlib's select differed"] += 1
            if a[0] == "ok" and b[0] == "ok":
                if not self.pending:
                    want = sorted((norm_key(k), ev) for k, ev in a[1])
                    have = sorted((norm_key(k), ev) for k, ev in b[1])
                    assert want == have, ("select", want, have)
                fds = [k.fd for k, _ in b[1]]
                assert len(fds) == len(set(fds)), ("an fd twice", b)
                assert all(ev and ev & k.events == ev for k, ev in b[1]), b
                SEEN["select with %s ready" % ("some" if b[1] else "none")] += 1
            else:
                assert a == b, ("select", a, b)

        @invariant()
        def maps_agree(self):
            ma, mb = self.std.get_map(), self.ours.get_map()
            assert len(ma) == len(mb), (len(ma), len(mb))
            assert sorted(ma) == sorted(mb), (sorted(ma), sorted(mb))
            for fd in ma:
                assert norm_key(ma[fd]) == norm_key(mb[fd]), (fd, ma[fd], mb[fd])
            for end in self.ends:
                for f in (end.obj, end.fd):
                    a = outcome(lambda: f in ma)
                    b = outcome(lambda: f in mb)
                    assert a == b, ("in get_map()", f, a, b)

    Differential.__name__ = "Differential" + mechanism
    return Differential


def true_events(fd, interest):
    """What poll(2) says of `fd` now, as `select` reports it: an error or
    hang-up counts as both, masked by `interest`."""
    p = select.poll()
    p.register(fd, (select.POLLIN if interest & 1 else 0) | (select.POLLOUT if interest & 2 else 0))
    events = 0
    for _, ev in p.poll(0):
        if ev & ~select.POLLIN:
            events |= 2
        if ev & ~select.POLLOUT:
            events |= 1
    return events & interest


def file_id(fd):
    """The open file `fd` names now, as (device, inode), or None."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def is_epoll_instance(fd):
    try:
        return os.readlink("/proc/self/fd/%d" % fd) == "anon_inode:[eventpoll]"
    except OSError:
        return False


def obj_closed(obj):
    """Whether `obj`'s `fileno()` no longer works (a closed socket gives -1)."""
    if isinstance(obj, int):
        return False
    try:
        return obj.fileno() < 0
    except ValueError:
        return True


for _mechanism in MECHANISMS:
    _machine = machine_for(_mechanism)
    _machine.TestCase.settings = SETTINGS
    globals()["Test" + _mechanism] = type(
        "Test" + _mechanism, (_machine.TestCase,), {"__doc__": "%s: ours against the stdlib's." % _mechanism})

del _mechanism, _machine

if __name__ == "__main__":
    unittest.main()

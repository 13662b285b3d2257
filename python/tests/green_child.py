"""One process of test_green.py: monkey-patches with FRAMEWORK, then runs
every scenario on every selector class and prints one JSON line each.

    python green_child.py gevent|eventlet|none

Monkey-patching is for the whole process, so each framework gets one.
"""

import json
import os
import socket
import sys
import time

FRAMEWORK = sys.argv[1]
if FRAMEWORK == "gevent":
    from gevent import monkey
    monkey.patch_all()
    import gevent
    spawn, sleep = gevent.spawn, gevent.sleep
elif FRAMEWORK == "eventlet":
    import warnings
    warnings.simplefilter("ignore")  # eventlet's own deprecation notice
    import eventlet
    eventlet.monkey_patch()
    spawn, sleep = eventlet.spawn, eventlet.sleep
else:
    import threading

    def spawn(f):
        t = threading.Thread(target=f, daemon=True)
        t.start()
        return t
    sleep = time.sleep

import selectors2  # noqa: E402  (after the patch, as a user of it imports)

CLASSES = [getattr(selectors2, n) for n in
           ("SelectSelector", "PollSelector", "EpollSelector", "KqueueSelector")
           if hasattr(selectors2, n)]
READ = selectors2.EVENT_READ


def keys(found):
    return sorted((k.data, ev) for k, ev in found)


def timed(f):
    """f's result, its wall time and its CPU time (the whole process's)."""
    t, c = time.monotonic(), time.process_time()
    r = f()
    return r, time.monotonic() - t, time.process_time() - c


def scenario_wake(cls, timeout):
    """A greenlet sends after 50 ms: the select returns the key then."""
    a, b = socket.socketpair()
    with cls() as sel:
        sel.register(a, READ, "a")
        spawn(lambda: (sleep(0.05), b.send(b"x")))
        got, wall, _ = timed(lambda: sel.select(timeout))
        r = {"keys": keys(got), "wall": wall}
    a.close()
    b.close()
    return r


def scenario_timeout(cls):
    """Nothing becomes ready: the select waits its 0.3 s while another
    greenlet runs, without spinning."""
    a, b = socket.socketpair()
    ticks = []

    def ticker():
        while len(ticks) < 100:
            sleep(0.01)
            ticks.append(1)
    with cls() as sel:
        sel.register(a, READ, "a")
        spawn(ticker)
        got, wall, cpu = timed(lambda: sel.select(0.3))
        r = {"keys": keys(got), "wall": wall, "cpu": cpu, "ticks": len(ticks)}
    a.close()
    b.close()
    return r


def scenario_register_during_wait(cls):
    """Another greenlet registers a readable socket 50 ms into the wait."""
    a, b = socket.socketpair()
    b.send(b"x")
    with cls() as sel:
        spawn(lambda: (sleep(0.05), sel.register(a, READ, "late")))
        got, wall, _ = timed(lambda: sel.select(5.0))
        r = {"keys": keys(got), "wall": wall}
    a.close()
    b.close()
    return r


def scenario_close_during_wait(cls):
    """Another greenlet closes the selector 50 ms into a wait without a
    timeout: the select returns no keys then."""
    a, b = socket.socketpair()
    sel = cls()
    sel.register(a, READ, "a")
    spawn(lambda: (sleep(0.05), sel.close()))
    got, wall, _ = timed(lambda: sel.select(None))
    a.close()
    b.close()
    return {"keys": keys(got), "wall": wall}


def counting_green_waits():
    """Counts the calls of `_green_wait` until the returned undo runs."""
    calls = []
    original = selectors2._NativeBase._green_wait

    def counting(self, *args):
        calls.append(args)
        return original(self, *args)
    selectors2._NativeBase._green_wait = counting

    def undo():
        selectors2._NativeBase._green_wait = original
    return calls, undo


def leave_leftover(sel, a):
    """Registers a duplicate of `a`'s fd, closes it, then unregisters it:
    epoll keeps the registration (`a` keeps the file open)."""
    d = os.dup(a.fileno())
    sel.register(d, READ, "d")
    os.close(d)
    sel.unregister(d)


def scenario_leftover(cls):
    """A dup'd fd closed and then unregistered: epoll keeps its
    registration while the original keeps the file open, and its fd
    (fileno()) stays readable once the file is. The select must wait its
    0.3 s without spinning on it."""
    a, b = socket.socketpair()
    with cls() as sel:
        leave_leftover(sel, a)
        b.send(b"x")
        calls, undo = counting_green_waits()
        try:
            got, wall, cpu = timed(lambda: sel.select(0.3))
        finally:
            undo()
        r = {"keys": keys(got), "wall": wall, "cpu": cpu, "waits": len(calls)}
    a.close()
    b.close()
    return r


def scenario_leftover_and_reused(cls):
    """The leftover above, and a registered fd closed without unregister
    whose number now names another file, readable: the selector's fd and
    that number both wake a wait at once while no key is ready (for
    epoll). The select must not spin; poll and select report the number."""
    a, b = socket.socketpair()
    with cls() as sel:
        leave_leftover(sel, a)
        g = socket.socket()
        sel.register(g, READ, "g")
        number = g.fileno()
        g.close()
        e, f = socket.socketpair()
        if e.fileno() != number:
            os.dup2(e.fileno(), number)
        f.send(b"x")
        b.send(b"x")
        got, wall, cpu = timed(lambda: sel.select(0.3))
        r = {"keys": keys(got), "wall": wall, "cpu": cpu}
        sel.unregister(number)
        if e.fileno() != number:
            os.close(number)
        e.close()
        f.close()
    a.close()
    b.close()
    return r


def scenario_closed_registered(cls):
    """A registered fd closed without unregister: poll and select report
    it at once, epoll drops it; neither spins."""
    a, b = socket.socketpair()
    with cls() as sel:
        sel.register(a, READ, "a")
        d = os.dup(b.fileno())
        sel.register(d, READ, "d")
        os.close(d)
        got, wall, cpu = timed(lambda: sel.select(0.3))
        r = {"keys": keys(got), "wall": wall, "cpu": cpu}
    a.close()
    b.close()
    return r


def scenario_calls(cls):
    """How often select() waits through the patched module: never for a
    poll, at least once for a wait with nothing ready."""
    calls, undo = counting_green_waits()
    try:
        a, b = socket.socketpair()
        with cls() as sel:
            sel.register(a, READ, "a")
            sel.select(0)
            polls = len(calls)
            sel.select(0.05)
            waits = len(calls) - polls
        a.close()
        b.close()
    finally:
        undo()
    return {"polls": polls, "waits": waits}


for cls in CLASSES:
    for name, run in [("wake", lambda: scenario_wake(cls, 5.0)),
                      ("wake_none", lambda: scenario_wake(cls, None)),
                      ("timeout", lambda: scenario_timeout(cls)),
                      ("register_during_wait", lambda: scenario_register_during_wait(cls)),
                      ("close_during_wait", lambda: scenario_close_during_wait(cls)),
                      ("leftover", lambda: scenario_leftover(cls)),
                      ("leftover_and_reused", lambda: scenario_leftover_and_reused(cls)),
                      ("closed_registered", lambda: scenario_closed_registered(cls)),
                      ("calls", lambda: scenario_calls(cls))]:
        if FRAMEWORK == "none" and name not in ("calls", "wake", "timeout"):
            continue
        result = run()
        result.update(cls=cls.__name__, scenario=name)
        print(json.dumps(result), flush=True)

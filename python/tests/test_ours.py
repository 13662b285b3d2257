"""Tests of selectors2 for what CPython's suites do not reach.

    python -m unittest test_ours      (from python/tests, selectors2 installed)

Each test runs on every selector class this platform has. One class per
concern: signals, threads, exit and fork, Python code run inside a
method, file objects, capacity, parity with the standard library, and the
module itself.
"""

import errno
import os
import signal
import socket
import threading
import time
import unittest

import selectors2

CLASSES = [getattr(selectors2, name) for name in
           ("SelectSelector", "PollSelector", "EpollSelector", "KqueueSelector")
           if hasattr(selectors2, name)]


def each_class(test):
    def run(self):
        for cls in CLASSES:
            with self.subTest(cls=cls.__name__):
                test(self, cls)
    run.__name__ = test.__name__
    run.__doc__ = test.__doc__
    return run


def fd_is_open(fd):
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class SelectorTestCase(unittest.TestCase):
    """What the test classes below share: fresh pairs and selectors
    closed at cleanup, alarms, a select waiting in a thread, a child
    process, a raised fd limit."""

    def pair(self):
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        return a, b

    def new(self, cls):
        sel = cls()
        self.addCleanup(sel.close)
        return sel

    def alarm(self, handler, after):
        old = signal.signal(signal.SIGALRM, handler)
        self.addCleanup(signal.signal, signal.SIGALRM, old)
        self.addCleanup(signal.setitimer, signal.ITIMER_REAL, 0)
        signal.setitimer(signal.ITIMER_REAL, after)

    def in_select(self, sel, timeout):
        """Starts ``sel.select(timeout)`` in a thread; returns a function
        that joins it and gives ``(ready, seconds it took)``."""
        out = {}

        def run():
            t0 = time.monotonic()
            try:
                out["ready"] = sel.select(timeout)
            except BaseException as e:  # reported by the joiner
                out["error"] = e
            out["took"] = time.monotonic() - t0

        t = threading.Thread(target=run)
        t.start()
        self.addCleanup(t.join)
        time.sleep(0.1)  # well inside the wait

        def join():
            t.join()
            if "error" in out:
                raise out["error"]
            return out["ready"], out["took"]
        return join

    def run_child(self, code, *args, timeout=30):
        """Runs ``code`` in a fresh interpreter (a hang there is a failure
        here, not a hung test run); returns its stdout, stderr and status."""
        import subprocess
        import sys
        try:
            proc = subprocess.run([sys.executable, "-c", code] + list(args),
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            self.fail("the child hung: %s" % (e.stderr or b"")[-2000:])
        return proc.stdout, proc.stderr, proc.returncode

    def raise_fd_limit(self, want):
        """The soft RLIMIT_NOFILE raised to `want` if the hard one allows
        (put back at cleanup); returns whether it is at least that now."""
        try:
            import resource
        except ImportError:
            return False
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft >= want:
            return True
        if hard != resource.RLIM_INFINITY and hard < want:
            return False
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        return True


class SignalTests(SelectorTestCase):
    """Signals while select waits: EINTR and PEP 475, handlers that use the selector, Ctrl-C."""

    @each_class
    def test_eintr_without_raising_handler_resumes_with_time_left(self, cls):
        sel = self.new(cls)
        rd, _ = self.pair()
        sel.register(rd, selectors2.EVENT_READ)
        calls = []
        self.alarm(lambda *a: calls.append(time.monotonic()), 0.05)
        t0 = time.monotonic()
        self.assertEqual(sel.select(0.4), [])
        took = time.monotonic() - t0
        self.assertEqual(len(calls), 1, "the handler ran once, inside select")
        self.assertGreaterEqual(took, 0.4)
        self.assertLess(took, 2.0)

    @each_class
    def test_eintr_with_raising_handler_propagates(self, cls):
        sel = self.new(cls)
        rd, wr = self.pair()
        sel.register(rd, selectors2.EVENT_READ)

        class Stop(Exception):
            pass

        def handler(*args):
            raise Stop

        self.alarm(handler, 0.05)
        t0 = time.monotonic()
        with self.assertRaises(Stop):
            sel.select(30)
        self.assertLess(time.monotonic() - t0, 5)
        # Still usable afterwards.
        wr.send(b"x")
        self.assertEqual([(k.fileobj, ev) for k, ev in sel.select(5)],
                         [(rd, selectors2.EVENT_READ)])

    @each_class
    def test_eintr_handler_making_fd_ready(self, cls):
        sel = self.new(cls)
        rd, wr = self.pair()
        sel.register(rd, selectors2.EVENT_READ)
        self.alarm(lambda *a: wr.send(b"x"), 0.05)
        t0 = time.monotonic()
        ready = sel.select(10)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual([(k.fileobj, ev) for k, ev in ready],
                         [(rd, selectors2.EVENT_READ)])

    @each_class
    def test_a_signal_handler_may_call_the_selector_inside_select(self, cls):
        """The handler of a signal that interrupts select() runs with the
        selector free (PEP 475 then resumes the wait, for the time left,
        watching what the handler registered), as with the stdlib's
        EpollSelector. It got RuntimeError('selector is busy') before."""
        sel = self.new(cls)
        rd, _ = self.pair()
        rd2, wr2 = self.pair()
        sel.register(rd, selectors2.EVENT_READ)
        seen = []

        def handler(*_):
            seen.append(sel.register(rd2, selectors2.EVENT_READ, "from handler"))
            wr2.send(b"x")

        self.alarm(handler, 0.05)
        t0 = time.monotonic()
        ready = sel.select(5)
        self.assertLess(time.monotonic() - t0, 4)
        self.assertEqual(len(seen), 1)
        self.assertEqual(ready, [(seen[0], selectors2.EVENT_READ)])

    def test_ctrl_c_reaches_a_select_waiting_for_another_threads(self):
        """SIGINT while the main thread's select() waits for another
        thread's select() to let go of the selector (or while it hands off
        to threads that keep calling the selector): KeyboardInterrupt at
        once, as with the stdlib's. It was ignored until the other wait
        ended (a fresh user's trial)."""
        child = (
            "import os, signal, socket, sys, threading, time, selectors2\n"
            # A shell's background job inherits SIGINT ignored, and Python
            # then leaves it so: KeyboardInterrupt needs the handler back.
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "sel = getattr(selectors2, sys.argv[1])()\n"
            "r, w = socket.socketpair(); sel.register(r, selectors2.EVENT_READ)\n"
            "threading.Thread(target=sel.select, daemon=True).start()\n"
            "stop = False\n"
            "def hammer():\n"
            "    while not stop:\n"
            "        sel.get_key(r); time.sleep(0.001)\n"
            "if sys.argv[2] == 'hammer':\n"
            "    threading.Thread(target=hammer, daemon=True).start()\n"
            "time.sleep(0.2)\n"
            "threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
            "t0 = time.monotonic()\n"
            "try:\n"
            "    sel.select(None)\n"
            "    print('returned')\n"
            "except KeyboardInterrupt:\n"
            "    print('KeyboardInterrupt after %.2f' % (time.monotonic() - t0))\n"
            "stop = True\n"
        )
        for cls in CLASSES:
            for mode in ("quiet", "hammer"):
                with self.subTest(cls=cls.__name__, mode=mode):
                    out, err, status = self.run_child(child, cls.__name__, mode)
                    self.assertEqual(status, 0, err[-2000:])
                    self.assertTrue(out.startswith("KeyboardInterrupt after"), out + err[-2000:])
                    self.assertLess(float(out.split()[-1]), 1.5)


class ThreadTests(SelectorTestCase):
    """Threads: the GIL released while select waits, other threads calling the selector meanwhile (turns), two selects at once, close from another thread, small stacks."""

    @each_class
    def test_gil_is_released_while_select_waits(self, cls):
        sel = self.new(cls)
        rd, _ = self.pair()
        sel.register(rd, selectors2.EVENT_READ)
        counter = [0]
        stop = threading.Event()

        def spin():
            while not stop.is_set():
                counter[0] += 1

        t = threading.Thread(target=spin)
        t.start()
        try:
            time.sleep(0.01)
            before = counter[0]
            self.assertEqual(sel.select(0.3), [])
            during = counter[0] - before
        finally:
            stop.set()
            t.join()
        # With the GIL held for 0.3 s, the thread could not count at all
        # (beyond one switch interval).
        self.assertGreater(during, 10000)

    @each_class
    def test_select_wakes_on_write_from_another_thread(self, cls):
        sel = self.new(cls)
        rd, wr = self.pair()
        sel.register(rd, selectors2.EVENT_READ, "rd")
        t = threading.Timer(0.05, wr.send, (b"x",))
        t.start()
        self.addCleanup(t.join)
        ready = sel.select(10)
        self.assertEqual([(k.data, ev) for k, ev in ready],
                         [("rd", selectors2.EVENT_READ)])

    @each_class
    def test_other_threads_may_call_the_selector_while_select_waits(self, cls):
        """As with the stdlib's selectors, another thread may register,
        modify, unregister, get_key and fileno() while a select() waits,
        and that wait goes on, watching what was registered meanwhile (the
        stdlib's EpollSelector does; its poll and select selectors see it
        at the next call). These raised RuntimeError('selector is busy')
        before the handoff."""
        sel = self.new(cls)
        rd, wr = self.pair()
        rd2, wr2 = self.pair()
        key = sel.register(rd, selectors2.EVENT_READ, "rd")
        join = self.in_select(sel, 10)
        self.assertIs(sel.get_key(rd), key)
        self.assertEqual(len(sel.get_map()), 1)
        key2 = sel.register(rd2, selectors2.EVENT_WRITE, "rd2")
        key2 = sel.modify(rd2, selectors2.EVENT_READ, "rd2, read")
        self.assertEqual(sel.get_key(rd2), key2)
        self.assertIs(sel.unregister(rd), key)
        if cls is not selectors2.SelectSelector and cls is not selectors2.PollSelector:
            self.assertIsInstance(sel.fileno(), int)
        # Each call above woke the wait and let it go on: it is still
        # waiting, now for rd2 only (rd, unregistered, stays quiet).
        wr.send(b"x")
        time.sleep(0.1)
        wr2.send(b"y")
        ready, took = join()
        self.assertEqual([(k, ev) for k, ev in ready], [(key2, selectors2.EVENT_READ)])
        self.assertGreater(took, 0.19)  # it began 0.1 s before the calls
        self.assertLess(took, 5)
        self.assertEqual(list(sel.get_map()), [rd2.fileno()])

    @each_class
    def test_a_wait_interrupted_by_other_threads_keeps_its_timeout(self, cls):
        """Calls from another thread during the wait neither end it early
        nor make it longer than asked in all."""
        sel = self.new(cls)
        rd, _ = self.pair()
        sel.register(rd, selectors2.EVENT_READ)
        join = self.in_select(sel, 0.6)
        for _ in range(20):
            sel.get_key(rd)
            time.sleep(0.01)
        ready, took = join()
        self.assertEqual(ready, [])
        self.assertGreater(took, 0.55)
        self.assertLess(took, 0.6 + 0.4)

    @each_class
    def test_two_threads_may_select_at_once(self, cls):
        """Two select() calls on one selector from two threads both return
        the ready key (the stdlib's PollSelector raises RuntimeError
        'concurrent poll() invocation'; its others wait side by side). Ours
        take turns: the second waits for the first, no longer than its own
        timeout; a poll (timeout 0) interrupts a wait."""
        sel = self.new(cls)
        rd, wr = self.pair()
        key = sel.register(rd, selectors2.EVENT_READ)
        first = self.in_select(sel, 10)
        second = self.in_select(sel, 10)
        self.assertEqual(sel.select(0), [])
        wr.send(b"x")
        for join in (first, second):
            ready, took = join()
            self.assertEqual(ready, [(key, selectors2.EVENT_READ)])
            self.assertLess(took, 5)
        rd.recv(1)
        # A second wait gives up at its own timeout, not the first's.
        first = self.in_select(sel, 3)
        t0 = time.monotonic()
        self.assertEqual(sel.select(0.2), [])
        self.assertLess(time.monotonic() - t0, 1.5)
        wr.send(b"y")
        self.assertEqual(first()[0], [(key, selectors2.EVENT_READ)])

    @each_class
    def test_close_from_another_thread_ends_the_wait(self, cls):
        """close() from another thread while select() waits: the wait
        returns no keys, at once (the stdlib's waits out its timeout, then
        returns none), and the selector's fds are closed."""
        sel = self.new(cls)
        rd, wr = self.pair()
        sel.register(rd, selectors2.EVENT_READ)
        join = self.in_select(sel, 10)
        before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
        sel.close()
        ready, took = join()
        self.assertEqual(ready, [])
        self.assertLess(took, 5)
        if before is not None:
            # The mechanism's fd (epoll's) and the wake-up fd are gone.
            gone = 2 if cls is selectors2.EpollSelector else 1
            self.assertEqual(len(os.listdir("/proc/self/fd")), before - gone)
        with self.assertRaisesRegex(RuntimeError, "closed"):
            sel.select(0)

    @each_class
    def test_the_wake_up_fd_is_never_seen(self, cls):
        """The fd a waiting select() is woken through is not a key: it is
        not reported, counted, found or removable by its number."""
        sel = self.new(cls)
        rd, wr = self.pair()
        sel.register(rd, selectors2.EVENT_READ)
        before = set(os.listdir("/proc/self/fd"))
        self.assertEqual(sel.select(0.01), [])  # makes the wake-up fd
        (waker,) = {int(fd) for fd in set(os.listdir("/proc/self/fd")) - before}
        join = self.in_select(sel, 10)
        sel.get_key(rd)  # wakes the wait: the wake-up fd was ready
        wr.send(b"x")
        ready, _ = join()
        self.assertEqual([k.fileobj for k, _ in ready], [rd])
        self.assertEqual(len(sel.get_map()), 1)
        for call in (sel.get_key, sel.unregister):
            with self.assertRaisesRegex(KeyError, "is not registered"):
                call(waker)
        with self.assertRaisesRegex(KeyError, "is not registered"):
            sel.modify(waker, selectors2.EVENT_READ)
        self.assertEqual([k.fileobj for k, _ in sel.select(0)], [rd])

    @each_class
    def test_threads_hammering_a_selector_that_two_threads_select_on(self, cls):
        """Four threads register, modify, get_key, poll and unregister
        2,000 times each while two other threads select in a loop (one
        with no timeout, one with 50 ms): no error, no hang, every key
        found as its thread left it, none left over."""
        import random
        sel = self.new(cls)
        rd, wr = self.pair()
        sel.register(rd, selectors2.EVENT_READ, "base")
        stop = threading.Event()
        errors = []

        def select_loop(timeout):
            try:
                while not stop.is_set():
                    for key, _ in sel.select(timeout):
                        if key.data == "base" and not stop.is_set():
                            try:
                                rd.recv(100)
                            except BlockingIOError:
                                pass
            except Exception as e:
                errors.append(e)

        def worker(seed):
            rnd = random.Random(seed)
            mine = [self.pair()[0] for _ in range(4)]
            registered = set()
            try:
                for i in range(2000):
                    sock = rnd.choice(mine)
                    op = rnd.random()
                    if sock not in registered:
                        sel.register(sock, selectors2.EVENT_READ, i)
                        registered.add(sock)
                    elif op < 0.4:
                        sel.unregister(sock)
                        registered.discard(sock)
                    elif op < 0.7:
                        key = sel.modify(sock, selectors2.EVENT_READ, i)
                        self.assertIs(sel.get_key(sock), key)
                    else:
                        self.assertIs(sel.get_key(sock).fileobj, sock)
                    if op < 0.05:
                        wr.send(b"x")
                    if op < 0.1:
                        sel.select(0)
                    if op < 0.02:
                        time.sleep(0.002)
                for sock in registered:
                    sel.unregister(sock)
            except Exception as e:
                errors.append(e)

        loops = [threading.Thread(target=select_loop, args=(t,)) for t in (None, 0.05)]
        workers = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in loops + workers:
            t.start()
        for t in workers:
            t.join(60)
        stop.set()
        wr.shutdown(socket.SHUT_WR)  # rd readable for good: both loops see stop
        for t in loops:
            t.join(60)
        self.assertFalse([t for t in loops + workers if t.is_alive()], "a thread hung")
        self.assertEqual(errors, [])
        self.assertEqual([k.data for k in sel.get_map().values()], ["base"])

    def test_select_works_on_a_small_thread_stack(self):
        old = threading.stack_size(256 * 1024)
        self.addCleanup(threading.stack_size, old)
        out = []

        def run():
            for cls in CLASSES:
                with cls() as sel:
                    rd, wr = socket.socketpair()
                    with rd, wr:
                        sel.register(wr, selectors2.EVENT_WRITE)
                        out.append(len(sel.select(0)))

        t = threading.Thread(target=run)
        t.start()
        t.join()
        self.assertEqual(out, [1] * len(CLASSES))


class ExitAndForkTests(SelectorTestCase):
    """Interpreter exit while daemon threads select, and fork() while a select waits."""

    def test_exit_while_a_daemon_thread_selects_and_a_finalizer_calls_the_selector(self):
        """At interpreter exit a daemon thread waiting in select() never
        gets the GIL back to let go; a finalizer (module teardown) that
        calls the selector then raised nothing and waited for ever. Now it
        gets RuntimeError (reported as ignored, as any exception in
        __del__) and the process exits; the stdlib's call succeeds."""
        child = (
            "import socket, sys, threading, time, selectors2\n"
            "sel = selectors2.DefaultSelector()\n"
            "class Conn:\n"
            "    def __init__(self):\n"
            "        self.r, self.w = socket.socketpair()\n"
            "        sel.register(self.r, selectors2.EVENT_READ)\n"
            "    def __del__(self):\n"
            "        sel.unregister(self.r)\n"
            "conn = Conn()\n"
            "threading.Thread(target=sel.select, daemon=True).start()\n"
            "time.sleep(0.2)\n"
        )
        out, err, status = self.run_child(child)
        self.assertEqual(status, 0, err[-2000:])
        self.assertIn("selector is busy", err)

    def fork_while_selecting(self, sel, wr, child):
        """Forks while ``sel.select(10)`` waits in another thread, runs
        ``child()`` in the child (its return value is the child's exit
        status; an exception is status 2), then wakes the select through
        ``wr`` and returns the child's exit status."""
        join = self.in_select(sel, 10)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = child()
            except BaseException:
                import traceback
                traceback.print_exc()
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        wr.send(b"x")
        join()
        return os.waitstatus_to_exitcode(status)

    @unittest.skipUnless(hasattr(os, "fork"), "needs fork()")
    def test_a_select_held_in_the_parent_is_busy_in_a_forked_child(self):
        """After fork(), a selector whose select() was waiting in another
        thread is held by a thread the child does not have: calls raise
        RuntimeError there (no hang). The stdlib's copy works; make a new
        selector in the child."""
        for cls in CLASSES:
            sel = self.new(cls)
            rd, wr = self.pair()
            sel.register(rd, selectors2.EVENT_READ)

            def child():
                try:
                    sel.get_key(rd)
                except RuntimeError as e:
                    return 0 if "busy" in str(e) else 3
                return 4

            self.assertEqual(self.fork_while_selecting(sel, wr, child), 0, cls.__name__)

    @unittest.skipUnless(hasattr(os, "fork") and os.path.isdir("/proc/self/fd"),
                         "needs fork() and /proc/self/fd")
    def test_close_in_a_forked_child_closes_its_copies_again_and_again(self):
        """A fresh user's finding: in a child forked while a select() of
        the parent waited, close() left the child's copies of the
        selector's fds open (epoll's and the wake-up fd), and a second
        close() (a `with` block that closes inside, say) raised "selector
        is busy". The stdlib's close() closes its copy there and may be
        called again. Now ours closes epoll's fd and the wake-up fd by
        number, leaves every other fd alone, and may be called again."""
        for cls in CLASSES:
            sel = self.new(cls)
            rd, wr = self.pair()
            sel.register(rd, selectors2.EVENT_READ)
            # Asked before the select waits: a call during the wait would
            # take a turn, and the fork could come while it has the turn.
            expected = 2 if sel._kind() == "epoll" else 1

            def child():
                before = set(os.listdir("/proc/self/fd"))
                with sel:
                    sel.close()
                sel.close()
                gone = before - set(os.listdir("/proc/self/fd"))
                os.fstat(rd.fileno())
                os.fstat(wr.fileno())
                return 0 if len(gone) == expected else 10 + len(gone)

            self.assertEqual(self.fork_while_selecting(sel, wr, child), 0, cls.__name__)

    def test_exit_with_daemon_threads_in_select(self):
        """A process that ends while daemon threads loop on select(timeout)
        (a background event loop, a watchdog) exits cleanly, as with the
        stdlib. A thread that came back from the wait during finalization
        was terminated (pthread_exit) with Rust frames on its stack: SIGABRT
        in most runs (a fresh user's trial), SIGSEGV with a wheel linked by
        zig. The GIL is now taken back in a C frame that parks such a thread
        (csrc/reattach.c); exit_while_waiting.py runs these many more
        times, per class."""
        import subprocess
        import sys
        children = [
            "import threading, time, selectors2\n"
            "def loop():\n"
            "    sel = selectors2.DefaultSelector()\n"
            "    while True:\n"
            "        sel.select(0.001)\n"
            "for _ in range(4):\n"
            "    threading.Thread(target=loop, daemon=True).start()\n"
            "time.sleep(0.05)\n",
            "import sys, selectors2\n"
            "sys.modules['selectors'] = selectors2\n"
            "import asyncio, threading, time\n"
            "async def tick():\n"
            "    while True:\n"
            "        await asyncio.sleep(0.001)\n"
            "threading.Thread(target=asyncio.run, args=(tick(),), daemon=True).start()\n"
            "time.sleep(0.05)\n",
        ]
        for child in children:
            for _ in range(6):
                proc = subprocess.run([sys.executable, "-c", child], capture_output=True,
                                      timeout=60)
                self.assertEqual(proc.returncode, 0, proc.stderr.decode()[-2000:])


class ReentrancyTests(SelectorTestCase):
    """Python code that a method runs (finalizers, fileno(), __eq__...) calling the selector back, and reference cycles through the native object."""

    def test_finalizers_run_by_the_gc_inside_a_method_may_use_the_selector(self):
        """The cyclic GC runs on allocation (at every allocation of a
        tracked object on 3.9 to 3.11), so it may run finalizers inside a
        method; one that uses the selector must neither deadlock nor get
        RuntimeError. A finalizer run while select() made its result list
        (still holding the selector) hung; one run inside register() got
        'busy' (and another thread's calls during it too). Keys and result
        lists are now made with the selector free (a fresh user's trial)."""
        child = (
            "import gc, json, socket, sys, selectors2\n"
            "sel = getattr(selectors2, sys.argv[1])()\n"
            "socks = [socket.socketpair() for _ in range(50)]\n"
            "for a, b in socks:\n"
            "    sel.register(a, selectors2.EVENT_WRITE)\n"
            "errors, calls = [], []\n"
            "class Junk:\n"
            "    def __del__(self):\n"
            "        try:\n"
            "            sel.get_key(socks[0][0]); calls.append(1)\n"
            "            sel.unregister(self.r); self.r.close(); self.w.close()\n"
            "        except Exception as e:\n"
            "            errors.append(repr(e))\n"
            "r, w = socket.socketpair()\n"
            "for i in range(200):\n"
            "    j = Junk(); j.self = j; j.r, j.w = socket.socketpair()\n"
            "    sel.register(j.r, selectors2.EVENT_READ)\n"
            "    del j\n"
            "    gc.set_threshold(1)\n"
            "    if i % 2:\n"
            "        got = sel.select(0)\n"
            "    else:\n"
            "        sel.register(r, selectors2.EVENT_READ); sel.unregister(r)\n"
            "    gc.set_threshold(700)\n"
            "gc.collect()\n"
            "print(json.dumps([len(calls), errors[:3], len(sel.get_map())]))\n"
        )
        for cls in CLASSES:
            with self.subTest(cls=cls.__name__):
                out, err, status = self.run_child(child, cls.__name__)
                self.assertEqual(status, 0, err[-2000:])
                import json
                # Every finalizer ran and used the selector; only the 50
                # sockets of the set-up are left.
                self.assertEqual(json.loads(out), [200, [], 50])

    def test_python_code_called_by_a_method_may_call_the_selector(self):
        """From a fresh user's trial: the caller's Python code that a method
        runs (a file object's fileno() and __repr__, the events' `&`, the
        data's `!=`, a destructor, a signal handler running in any of
        them) may call the same selector again, as with the stdlib's; it
        got RuntimeError('selector is busy') while no select() ran. Each
        case against the stdlib's own selector of the same class."""
        import selectors

        def run(module, cls_name):
            sel = getattr(module, cls_name)()
            self.addCleanup(sel.close)
            a, _ = self.pair()
            b, _ = self.pair()
            c, _ = self.pair()
            seen = []

            class File:
                """A file object whose methods call the selector."""
                def __init__(self, sock, hook):
                    self.sock, self.hook = sock, hook

                def fileno(self):
                    self.hook()
                    return self.sock.fileno()

                def __repr__(self):
                    self.hook()
                    return "<File>"

            class Events:
                """An events mask with `&` only (as numpy's integers are
                to us): how often `&` runs differs, so it reports once."""
                def __init__(self, v):
                    self.v = v

                def __and__(self, other):
                    if not any(s[0] == "events &" for s in seen):
                        seen.append(("events &", sel.get_key(a).data))
                    return self.v & other

                def __bool__(self):
                    return bool(self.v)

                def __eq__(self, other):
                    return self.v == getattr(other, "v", other)

                def __ne__(self, other):
                    return not self.__eq__(other)

                __hash__ = None

            class Data:
                def __init__(self, name):
                    self.name = name

                def __eq__(self, other):
                    seen.append(("data ==", sel.get_key(a).data))
                    return isinstance(other, Data) and other.name == self.name

                def __ne__(self, other):
                    return not self.__eq__(other)

                def __del__(self):
                    try:
                        seen.append(("del", self.name, len(sel.get_map() or ())))
                    except Exception as e:  # pragma: no cover - reported below
                        seen.append(("del", self.name, repr(e)))

            sel.register(a, module.EVENT_READ, "a")
            # fileno() registering another file, then getting a key.
            f = File(b, lambda: seen.append(("fileno", sel.register(c, module.EVENT_READ, "c").data)))
            seen.append(("register", sel.register(f, module.EVENT_READ, Data("d1")).fd == b.fileno()))
            f.hook = lambda: seen.append(("fileno", sel.get_key(a).data))
            # events' `&` and data's `==` during modify; the old data's
            # destructor when its key is replaced.
            seen.append(("modify", sel.modify(f, Events(module.EVENT_WRITE), Data("d2")).events.v))
            seen.append(("get_key", sel.get_key(f).data.name))
            # A signal handler running inside fileno(), calling the selector.
            old = signal.signal(signal.SIGUSR1, lambda *_: seen.append(("signal", sel.get_key(c).data)))
            try:
                f.hook = lambda: os.kill(os.getpid(), signal.SIGUSR1)
                seen.append(("unregister", sel.unregister(f).data.name))
            finally:
                signal.signal(signal.SIGUSR1, old)
            # __repr__ in an error message.
            f.hook = lambda: seen.append(("repr", len(sel.get_map())))
            with self.assertRaises(KeyError):
                sel.register(File(a, lambda: None), module.EVENT_READ)
            try:
                sel.unregister(File(b, lambda: None))
            except KeyError:
                seen.append(("not registered", True))
            sel.register(File(b, lambda: None), module.EVENT_READ, Data("d3"))
            sel.close()
            import gc
            gc.collect()
            return seen

        for cls in CLASSES:
            with self.subTest(cls=cls.__name__):
                if not hasattr(selectors, cls.__name__):
                    continue
                theirs = run(selectors, cls.__name__)
                ours = run(selectors2, cls.__name__)
                # What each call returned, in order, as the stdlib's.
                results = ("register", "modify", "get_key", "signal",
                           "unregister", "not registered", "del")
                self.assertEqual([e for e in ours if e[0] in results],
                                 [e for e in theirs if e[0] in results])
                # The callbacks ran, and each call they made on the
                # selector answered right (how often each runs differs
                # between implementations, and between the stdlib's
                # classes: its SelectSelector.modify never compares data).
                callbacks = [e for e in ours if e[0] not in results]
                self.assertEqual(set(callbacks),
                                 {("fileno", "c"), ("fileno", "a"),
                                  ("events &", "a"), ("data ==", "a")})

    @each_class
    def test_reference_cycles_are_collected(self, cls):
        import gc
        import weakref
        rd, wr = self.pair()
        sel = cls()
        # asyncio's keys hold handles that lead back to the loop and so to
        # the selector: a cycle through the native object.
        sel.register(rd, selectors2.EVENT_READ, {"selector": sel})
        ref = weakref.ref(sel)
        del sel
        gc.collect()
        self.assertIsNone(ref())


class FileObjectTests(SelectorTestCase):
    """File objects: kept and found by identity (closed ones too), fd numbers reused after a close without unregister."""

    @each_class
    def test_closed_file_object_is_found_by_identity(self, cls):
        sel = self.new(cls)
        rd, wr = self.pair()
        fd = rd.fileno()
        key = sel.register(rd, selectors2.EVENT_READ, "data")
        rd.close()
        self.assertEqual(rd.fileno(), -1)
        self.assertIs(sel.get_key(rd), key)
        self.assertIs(sel.get_map()[rd], key)
        self.assertIs(sel.get_map().get(rd), key)
        self.assertIn(rd, sel.get_map())
        self.assertIs(sel.get_map()[fd], key)
        key2 = sel.modify(rd, selectors2.EVENT_READ, "new")
        self.assertIs(key2.fileobj, rd)
        self.assertEqual(key2.data, "new")
        self.assertEqual(sel.unregister(rd), key2)
        self.assertEqual(len(sel.get_map()), 0)
        # No longer registered: the closed object is now simply invalid.
        with self.assertRaises(ValueError):
            sel.get_key(rd)
        with self.assertRaises(ValueError):
            sel.unregister(rd)

    @each_class
    def test_file_objects_are_kept_by_identity(self, cls):
        sel = self.new(cls)
        rd, wr = self.pair()

        class F:
            def __init__(self, fd):
                self.fd = fd

            def fileno(self):
                return str(self.fd)  # int() accepts it, as in Python

        f = F(rd.fileno())
        key = sel.register(f, selectors2.EVENT_READ)
        self.assertIs(key.fileobj, f)
        self.assertEqual(key.fd, rd.fileno())
        wr.send(b"x")
        [(k, ev)] = sel.select(5)
        self.assertIs(k, key)
        self.assertIs(k.fileobj, f)
        with self.assertRaises(KeyError):
            sel.register(rd, selectors2.EVENT_READ)

    @each_class
    def test_fd_reuse_after_close_without_unregister(self, cls):
        sel = self.new(cls)
        a, b = socket.socketpair()
        self.addCleanup(b.close)
        fd = a.fileno()
        sel.register(a, selectors2.EVENT_READ | selectors2.EVENT_WRITE, "old")
        a.close()
        c, d = self.pair()
        if c.fileno() != fd:
            os.dup2(c.fileno(), fd)
            c.close()
            c = socket.socket(fileno=fd)
            self.addCleanup(c.close)
        self.assertEqual(c.fileno(), fd)
        # The number is taken by the stale key, as in Python.
        with self.assertRaises(KeyError):
            sel.register(c, selectors2.EVENT_READ)
        self.assertEqual(sel.unregister(a).data, "old")
        sel.register(c, selectors2.EVENT_READ, "new")
        self.assertEqual(sel.select(0), [])
        d.send(b"x")
        ready = sel.select(5)
        self.assertEqual([(k.data, ev) for k, ev in ready],
                         [("new", selectors2.EVENT_READ)])

    @each_class
    def test_unregister_after_reuse_by_an_unwatchable_file(self, cls):
        """A registered number taken over (close without unregister, then
        reuse) by a file epoll refuses, or by the selector's own fd: the
        stdlib's unregister ignores the OSError; so must ours."""
        sel = self.new(cls)
        takers = [os.open(os.devnull, os.O_RDONLY), os.open("/", os.O_RDONLY)]
        for fd in takers:
            self.addCleanup(os.close, fd)
        if hasattr(sel, "fileno"):
            takers.append(sel.fileno())
        for data, taker in enumerate(takers):
            a, _ = self.pair()
            fd = a.fileno()
            sel.register(fd, selectors2.EVENT_READ | selectors2.EVENT_WRITE, data)
            os.dup2(taker, fd)  # closes the socket, reuses its number
            key = sel.unregister(fd)
            self.assertEqual((key.fd, key.data), (fd, data))
        self.assertEqual(len(sel.get_map()), 0)

    def test_epoll_rebuild_moves_files_not_numbers(self):
        """Key N registered for file B beside a leftover of file A under N
        (A closed without unregister, kept open by a duplicate); B closed
        without unregister and a readable file C put under N; A then makes
        the selector rebuild. Nobody registered C: it must never be
        reported, and modify of key N fails as CPython's does (ENOENT),
        changing nothing. (The rebuild once moved keys by number.)"""
        if not hasattr(selectors2, "EpollSelector"):
            self.skipTest("no epoll")
        sel = self.new(selectors2.EpollSelector)
        a, a_peer = self.pair()
        keep_a = os.dup(a.fileno())
        self.addCleanup(os.close, keep_a)
        n = os.dup(a.fileno())
        self.addCleanup(os.close, n)
        sel.register(n, selectors2.EVENT_READ, "a")
        b, _b_peer = self.pair()
        os.dup2(b.fileno(), n)       # A's fd at N closes; A stays open
        b.close()
        sel.unregister(n)
        sel.register(n, selectors2.EVENT_READ, "b")
        c, c_peer = self.pair()
        c_peer.send(b"c")
        os.dup2(c.fileno(), n)       # B's only fd closes; C is at N
        c.close()
        self.assertEqual(sel.select(0), [])
        a_peer.send(b"a")            # A's leftover: a rebuild
        t0 = time.monotonic()
        self.assertEqual(sel.select(0.05), [])
        self.assertGreaterEqual(time.monotonic() - t0, 0.05)
        self.assertEqual(sel.select(0), [])
        with self.assertRaises(FileNotFoundError):
            sel.modify(n, selectors2.EVENT_WRITE, "c")
        self.assertEqual(sel.get_key(n).data, "b")
        self.assertEqual(sel.unregister(n).data, "b")


class CapacityTests(SelectorTestCase):
    """Size: no cap below the OS's, growth that keeps every registration, cheap creation."""

    def test_no_capacity_below_the_os(self):
        # poll makes no system call at register, so fd numbers that are
        # not open fill the table past 65,536 without that many files.
        sel = self.new(selectors2.PollSelector)
        base = 1 << 20
        n = 70000
        for i in range(n):
            sel.register(base + i, selectors2.EVENT_READ)
        self.assertEqual(len(sel.get_map()), n)
        self.assertEqual(sel.get_key(base + n - 1).fd, base + n - 1)
        sel.unregister(base)
        self.assertNotIn(base, sel.get_map())
        self.assertEqual(len(sel.get_map()), n - 1)

    def test_more_than_65536_open_files_in_one_selector(self):
        """The old cap of 65,536 keys is gone on every class that can hold
        that many fds (not SelectSelector: FD_SETSIZE): 70,000 open files
        (dups of one socket) registered, all reported by one select() or
        the next (one wait returns up to 65,536), then all unregistered.
        Needs RLIMIT_NOFILE above 70,000: the soft limit is raised to the
        hard one; where the hard one is lower the test skips, saying so."""
        n = 70000
        if not self.raise_fd_limit(n + 200):
            import resource
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            self.skipTest("needs RLIMIT_NOFILE >= %d; the hard limit is %d" % (n + 200, hard))
        a, b = self.pair()
        for cls in CLASSES:
            if cls is selectors2.SelectSelector:
                continue
            with self.subTest(cls=cls.__name__):
                sel = self.new(cls)
                fds = []
                try:
                    for _ in range(n):
                        fds.append(os.dup(a.fileno()))
                    for fd in fds:
                        sel.register(fd, selectors2.EVENT_WRITE)
                    self.assertEqual(len(sel.get_map()), n)
                    seen = {key.fd for key, _ in sel.select(0)}
                    if len(seen) < n:
                        seen |= {key.fd for key, _ in sel.select(0)}
                    self.assertEqual(seen, set(fds))
                    for fd in fds:
                        sel.unregister(fd)
                    self.assertEqual(len(sel.get_map()), 0)
                finally:
                    for fd in fds:
                        os.close(fd)

    @each_class
    def test_grows_through_its_capacities_keeping_every_registration(self, cls):
        # A selector starts with a table of 64 keys and doubles it each time
        # it is full (its Ready buffer follows fourfold): keys, their
        # objects, fileno() and the OS registrations stay, and one select
        # returns every ready key.
        sel = self.new(cls)
        fileno = sel.fileno() if hasattr(cls, "fileno") else None
        a, b = self.pair()
        first = sel.register(a, selectors2.EVENT_READ, "first")
        b.send(b"x")
        if cls.__name__ == "SelectSelector":
            count = 300  # below FD_SETSIZE: through 64, 128, 256 and 512
        elif self.raise_fd_limit(4096 + 600):
            count = 4096 + 300  # through every size from 64 to 8,192
        else:
            count = 300
        w, _peer = self.pair()  # always writable
        dups = []
        self.addCleanup(lambda: [os.close(fd) for fd in dups])
        for i in range(count):
            dups.append(os.dup(w.fileno()))
            sel.register(dups[-1], selectors2.EVENT_WRITE, i)
        self.assertEqual(len(sel.get_map()), count + 1)
        self.assertIs(sel.get_key(a), first)
        self.assertIs(sel.get_map()[a], first)
        if fileno is not None:
            self.assertEqual(sel.fileno(), fileno)
        ready = sel.select(0)
        self.assertEqual(len(ready), count + 1)
        self.assertEqual(dict((k.fd, ev) for k, ev in ready),
                         dict([(a.fileno(), selectors2.EVENT_READ)]
                              + [(fd, selectors2.EVENT_WRITE) for fd in dups]))
        self.assertEqual(sorted(k.data for k, _ in ready if k.fd != a.fileno()),
                         list(range(count)))
        # The first registration still works as any other.
        key = sel.modify(a, selectors2.EVENT_READ | selectors2.EVENT_WRITE, "again")
        self.assertEqual(sel.unregister(a), key)
        for fd in dups[: count // 2]:
            sel.unregister(fd)
        self.assertEqual(len(sel.select(0)), count - count // 2)

    @unittest.skipUnless(os.path.exists("/proc/self/statm"), "needs /proc")
    def test_creation_is_cheap(self):
        # Each selector used to build its whole 65,536-key table up front
        # (about 2 MiB resident, 0.1 to 1.7 ms to create): one that holds
        # nothing now costs a few KiB, as the standard library's does.
        page = os.sysconf("SC_PAGE_SIZE")

        def resident():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * page

        for cls in CLASSES:
            with self.subTest(cls=cls.__name__):
                before = resident()
                sels = [cls() for _ in range(100)]
                grew = resident() - before
                for sel in sels:
                    sel.close()
                self.assertLess(grew / 100, 64 * 1024, "bytes per selector")


class StdlibParityTests(SelectorTestCase):
    """Arguments, errors and states as the standard library has them: timeouts, events and fds, errno, a failed modify, the closed state, the ABC."""

    def test_timeouts_are_converted_as_the_stdlib_converts_them(self):
        """select() accepted any object with __float__ (a Decimal, a
        Fraction, an __index__-only object) where the stdlib's classes
        raise TypeError, each its own way (its SelectSelector refuses a
        Fraction its EpollSelector takes). Each value against the
        stdlib's selector of the same class: the same result, or the same
        exception and message."""
        import decimal
        import fractions
        import selectors

        class Index:
            def __index__(self):
                return 0

        class Float:
            def __float__(self):
                return 0.0

        class ComparableIndex(Index):
            """Passes max(t, 0) and `t <= 0` (as false), so that select's
            whole-seconds conversion, and epoll's and poll's `* 1e3`, see it."""
            def __lt__(self, other):
                return False

            __gt__ = __le__ = __lt__

        values = [0, 0.0, -1, -0.5, False, decimal.Decimal("0.001"),
                  decimal.Decimal("-1"), fractions.Fraction(1, 1000),
                  fractions.Fraction(-1, 2), Index(), ComparableIndex(), Float(),
                  "1", [], ()]

        def outcome(sel, value):
            try:
                return ("ok", sel.select(value))
            except Exception as e:
                return (type(e), str(e))

        for cls in CLASSES:
            with self.subTest(cls=cls.__name__):
                if not hasattr(selectors, cls.__name__):
                    continue
                ours, theirs = cls(), getattr(selectors, cls.__name__)()
                self.addCleanup(ours.close)
                self.addCleanup(theirs.close)
                for value in values:
                    self.assertEqual(outcome(ours, value), outcome(theirs, value),
                                     "timeout %r" % (value,))

    def test_events_and_fds_are_checked_as_the_stdlib_checks_them(self):
        """From a fresh user's trial: falsy events (None, '', 0.0, []) are a
        ValueError, any object with `&` is accepted (numpy's integers), and
        ints beyond 64 bits are not an OverflowError where the stdlib says
        something else; a fileno() raising KeyError is "not registered".
        Each against the stdlib's own selector of the same class."""
        import selectors

        class Flag:
            """An int-like with `&` only, as numpy's integers are to us."""
            def __init__(self, v):
                self.v = v

            def __and__(self, other):
                return self.v & other

            def __bool__(self):
                return bool(self.v)

            def __eq__(self, other):
                return isinstance(other, Flag) and other.v == self.v

            __hash__ = None

        class KeyErrorFileno:
            def fileno(self):
                raise KeyError("k")

        def outcome(call):
            try:
                r = call()
            except Exception as e:  # noqa: BLE001 - compared
                return (type(e), str(e))
            return ("ok", r.events if hasattr(r, "events") else r)

        rd, _ = self.pair()
        cases = [("register", (rd, ev)) for ev in (None, "", 0.0, [], "x", 1.5, 4)]
        cases += [("register", (-2**70, 1)), ("get_key", (2**70,)),
                  ("unregister", (2**70,)), ("modify", (2**70, 1)),
                  ("get_key", (-2**70,)), ("get_key", (KeyErrorFileno(),)),
                  ("unregister", (KeyErrorFileno(),)), ("modify", (KeyErrorFileno(), 1))]
        for name in ("SelectSelector", "PollSelector", "EpollSelector"):
            if not hasattr(selectors2, name):
                continue
            for method, args in cases:
                got = []
                for module in (selectors, selectors2):
                    sel = getattr(module, name)()
                    self.addCleanup(sel.close)
                    got.append(outcome(lambda: getattr(sel, method)(*args)))
                with self.subTest(cls=name, method=method, args=args):
                    std, ours = got
                    if isinstance(args[0], KeyErrorFileno):
                        # The object's repr differs per instance: the type.
                        self.assertEqual(ours[0], std[0])
                    else:
                        self.assertEqual(ours, std)
            # An int-like with `&`: accepted, and kept as given.
            sel = self.new(getattr(selectors2, name))
            key = sel.register(rd, Flag(1))
            self.assertEqual(key.events, Flag(1))
            self.assertEqual(sel.unregister(rd).fd, rd.fileno())
            with self.assertRaisesRegex(ValueError, "Invalid events"):
                sel.register(rd, Flag(4))
        # Huge positive fds: as the stdlib's epoll and poll (OverflowError),
        # and SelectSelector's FD_SETSIZE refusal (documented difference).
        for name, exc in (("PollSelector", OverflowError), ("EpollSelector", OverflowError),
                          ("SelectSelector", ValueError)):
            if hasattr(selectors2, name):
                with self.assertRaises(exc):
                    self.new(getattr(selectors2, name)).register(2**70, 1)

    def test_os_errors_carry_errno_as_the_stdlib_s(self):
        """Every OSError the OS gives comes out as CPython's would:
        OSError(errno, strerror), so the errno's subclass with `errno` set
        (PyO3's conversion left `errno` None). Each case against the
        stdlib's own selector of the same class."""
        import selectors
        devnull = os.open(os.devnull, os.O_RDONLY)
        self.addCleanup(os.close, devnull)
        # A number that names nothing, high enough that the selectors
        # created below do not take it.
        r = next(fd for fd in range(900, 1000) if not fd_is_open(fd))
        cases = [("EpollSelector", "register", devnull, errno.EPERM),
                 ("EpollSelector", "register", r, errno.EBADF)]
        checked = 0
        for name, method, fd, code in cases:
            if not hasattr(selectors, name) or not hasattr(selectors2, name):
                continue
            raised = []
            for module in (selectors, selectors2):
                sel = getattr(module, name)()
                self.addCleanup(sel.close)
                with self.assertRaises(OSError) as cm:
                    getattr(sel, method)(fd, selectors2.EVENT_READ)
                raised.append(cm.exception)
            std, ours = raised
            with self.subTest(name=name, fd=fd):
                self.assertEqual(ours.errno, code)
                self.assertEqual((type(ours), ours.errno, ours.strerror, str(ours)),
                                 (type(std), std.errno, std.strerror, str(std)))
                checked += 1
        # A full selector's error had its errno already (ENOSPC); the
        # selector's own creation at the fd limit goes through the same
        # conversion.
        if hasattr(selectors2, "EpollSelector"):
            import resource
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            held = []
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
                with self.assertRaises(OSError) as cm:
                    while True:
                        held.append(os.dup(devnull))
                self.assertEqual(cm.exception.errno, errno.EMFILE)
                with self.assertRaises(OSError) as cm:
                    selectors2.EpollSelector()
                self.assertEqual(cm.exception.errno, errno.EMFILE)
                checked += 1
            finally:
                for fd in held:
                    os.close(fd)
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        if "EpollSelector" in dir(selectors2):
            self.assertEqual(checked, 3)

    @each_class
    def test_failed_modify_changes_nothing(self, cls):
        sel = self.new(cls)
        rd, wr = self.pair()
        key = sel.register(rd, selectors2.EVENT_READ, "d")
        for bad in (0, 4, -1):
            with self.assertRaises(ValueError):
                sel.modify(rd, bad, "other")
            self.assertIs(sel.get_key(rd), key)
        wr.send(b"x")
        self.assertEqual(sel.select(5), [(key, selectors2.EVENT_READ)])

    @each_class
    def test_closed_selector(self, cls):
        sel = cls()
        rd, wr = self.pair()
        sel.register(rd, selectors2.EVENT_READ)
        mapping = sel.get_map()
        sel.close()
        sel.close()
        self.assertIsNone(sel.get_map())
        self.assertEqual(len(mapping), 0)
        for call in (lambda: sel.register(wr, selectors2.EVENT_WRITE),
                     lambda: sel.select(0),
                     lambda: sel.get_key(rd)):
            with self.assertRaisesRegex(RuntimeError, "Selector is closed"):
                call()
        # As the stdlib's: its map is cleared.
        with self.assertRaises(KeyError):
            sel.modify(rd, selectors2.EVENT_WRITE)
        with self.assertRaises(KeyError):
            sel.unregister(rd)

    def test_abc_and_subclassing(self):
        for cls in CLASSES + [selectors2.DefaultSelector]:
            with cls() as sel:
                self.assertIsInstance(sel, selectors2.BaseSelector)

        class Logged(selectors2.DefaultSelector):
            def __init__(self):
                super().__init__()
                self.log = []

            def register(self, fileobj, events, data=None):
                self.log.append(fileobj)
                return super().register(fileobj, events, data)

        rd, wr = self.pair()
        with Logged() as sel:
            sel.register(rd, selectors2.EVENT_READ)
            self.assertEqual(sel.log, [rd])
            self.assertEqual(sel.get_key(rd).fd, rd.fileno())

        class Incomplete(selectors2.BaseSelector):
            pass

        with self.assertRaises(TypeError):
            Incomplete()

    def test_timeouts(self):
        with selectors2.DefaultSelector() as sel:
            with self.assertRaises(ValueError):
                sel.select(float("nan"))
            self.assertEqual(sel.select(-5), [])
            t0 = time.monotonic()
            self.assertEqual(sel.select(0.05), [])
            self.assertGreaterEqual(time.monotonic() - t0, 0.05)


class ModuleTests(unittest.TestCase):
    """What code written for the selectors2 backport reaches for."""

    def test_all_names_the_public_api(self):
        namespace = {}
        exec("from selectors2 import *", namespace)
        public = {"EVENT_READ", "EVENT_WRITE", "SelectorKey", "BaseSelector",
                  "DefaultSelector"} | {cls.__name__ for cls in CLASSES}
        self.assertEqual(set(selectors2.__all__), public)
        self.assertTrue(public <= set(namespace))
        # Every *Selector name is in it (the backport's own test says so).
        self.assertEqual({n for n in dir(selectors2) if n.endswith("Selector")},
                         public - {"EVENT_READ", "EVENT_WRITE", "SelectorKey"})

    @each_class
    def test_key_from_fd(self, cls):
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        with cls() as sel:
            self.assertIsNone(sel._key_from_fd(a.fileno()))
            key = sel.register(a, selectors2.EVENT_READ, "a")
            self.assertIs(sel._key_from_fd(a.fileno()), key)


class DefaultChoiceTests(unittest.TestCase):
    """How the import-time choice of DefaultSelector reads an error."""

    def probe_failing_with(self, code):
        class Failing:
            def _open(self, mechanism, key_cls, fd_to_key):
                raise OSError(code, os.strerror(code))

            def _close(self):
                pass

        real = selectors2._selectors2._Selector
        selectors2._selectors2._Selector = Failing
        try:
            return selectors2._works("poll")
        finally:
            selectors2._selectors2._Selector = real

    def test_missing_or_forbidden_means_try_the_next(self):
        for code in (errno.ENOSYS, errno.EPERM, errno.EACCES):
            self.assertFalse(self.probe_failing_with(code), errno.errorcode[code])

    def test_a_shortage_is_not_a_reason_to_settle_for_less(self):
        # Out of fds at import time: the mechanism still counts, and
        # creating a selector raises the OSError, as the stdlib's would.
        for code in (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS):
            self.assertTrue(self.probe_failing_with(code), errno.errorcode[code])


if __name__ == "__main__":
    unittest.main()

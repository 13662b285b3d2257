"""KqueueSelector after fork: CPython's test_kqueue.test_fork (gh-110395)
ported to selectors2, with the issue's reproducer.

    python -m unittest test_kqueue_fork   (from python/tests, selectors2 installed)

A child does not inherit a kqueue (FreeBSD skips it when copying the fd
table, macOS closes it on fork), so the number the selector held is free
in the child and the next file opened there takes it. The inherited
selector must act closed there, and above all its close() (or its garbage
collection) must not close that file. Skipped where kqueue is absent
(Linux, Windows).
"""

import gc
import os
import socket
import unittest

import selectors2

HAVE_KQUEUE = hasattr(selectors2, "KqueueSelector")
HAVE_FORK = hasattr(os, "fork")


def _child(body):
    """Runs body() in a forked child; returns its exit code (0: passed)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8


def _takes_number(number):
    """Opens /dev/null for writing under `number` in this process (as the
    child's next open() would, its lowest free number permitting)."""
    fd = os.open(os.devnull, os.O_WRONLY)
    if fd != number:
        os.dup2(fd, number)
        os.close(fd)
    return number


@unittest.skipUnless(HAVE_KQUEUE, "kqueue is not available here")
@unittest.skipUnless(HAVE_FORK, "no os.fork")
class KqueueForkTest(unittest.TestCase):

    def test_fork(self):
        # CPython's test_kqueue.test_fork, on selectors2.KqueueSelector:
        # in the child the selector is closed (fileno() raises ValueError,
        # as a closed kqueue's does) and select() does not run on someone
        # else's queue; the parent's stays open.
        sel = selectors2.KqueueSelector()
        self.addCleanup(sel.close)

        def body():
            with self.assertRaises(ValueError):
                sel.fileno()
            with self.assertRaises((OSError, ValueError, RuntimeError)):
                sel.select(0)

        self.assertEqual(_child(body), 0)
        self.assertIsInstance(sel.fileno(), int)  # child done, we're still open
        self.assertEqual(sel.select(0), [])

    def _reproducer(self, finish):
        # gh-110395: the child opens a file, which takes the kqueue's number,
        # then the inherited selector is closed (or collected): the file
        # must still work.
        box = [selectors2.KqueueSelector()]  # the only reference
        self.addCleanup(lambda: box[0].close())
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        box[0].register(a, selectors2.EVENT_WRITE)
        number = box[0].fileno()

        def body():
            fd = _takes_number(number)
            with self.assertRaises((OSError, ValueError, RuntimeError)):
                box[0].register(b, selectors2.EVENT_READ)
            finish(box)
            os.write(fd, b"x")  # EBADF if the selector closed it
            os.fstat(fd)
            # A selector of the child's own works (it may well take a
            # number the inherited one named).
            own = selectors2.KqueueSelector()
            own.register(b, selectors2.EVENT_WRITE)
            self.assertEqual([k.fd for k, _ in own.select(0)], [b.fileno()])
            own.close()

        self.assertEqual(_child(body), 0)
        # The parent's selector is untouched.
        self.assertEqual(box[0].fileno(), number)
        self.assertEqual([k.fd for k, _ in box[0].select(0)], [a.fileno()])

    def test_close_in_child_leaves_the_childs_file_alone(self):
        def close(box):
            box[0].close()
        self._reproducer(close)

    def test_collection_in_child_leaves_the_childs_file_alone(self):
        def collect(box):
            box[0] = None
            gc.collect()
        self._reproducer(collect)

if __name__ == "__main__":
    unittest.main()

"""selectors2 under gevent and eventlet monkey-patching.

    python -m unittest test_green      (from python/tests, selectors2 installed)

The selectors2 backport waited in the `select` module's functions, which
gevent and eventlet replace with cooperative ones; this module's waits
are its own system calls, which would block every greenlet of the thread
(the hub too). Under such a patch `select()` waits through the patched
`select.select` instead. Each framework runs in a process of its own
(green_child.py): the patch is for the whole process. A framework that is
not installed is skipped, unless SELECTORS2_REQUIRE_GREEN=1 (.ci/python
installs both and sets it).
"""

import importlib.util
import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "green_child.py")
REQUIRED = os.environ.get("SELECTORS2_REQUIRE_GREEN") == "1"
READ = 1
# Generous bounds for shared 2-CPU machines: a wait that ignored the
# patch takes its whole timeout (5 s) or forever; one that spins uses
# all of its 0.3 s of CPU.
PROMPT = 2.0
NO_SPIN = 0.15


def run_child(framework):
    proc = subprocess.run([sys.executable, CHILD, framework], capture_output=True,
                          text=True, timeout=120, cwd=HERE)
    if proc.returncode != 0:
        raise AssertionError("green_child.py %s failed:\n%s%s" % (
            framework, proc.stdout[-3000:], proc.stderr[-3000:]))
    results = {}
    for line in proc.stdout.splitlines():
        r = json.loads(line)
        results.setdefault(r["cls"], {})[r["scenario"]] = r
    return results


class GreenTests(object):
    """The scenarios' expectations; a subclass names the framework."""

    framework = None

    @classmethod
    def setUpClass(cls):
        if importlib.util.find_spec(cls.framework) is None:
            if REQUIRED:
                raise AssertionError("%s is not installed" % cls.framework)
            raise unittest.SkipTest("%s is not installed" % cls.framework)
        cls.results = run_child(cls.framework)

    def each(self, scenario):
        """(class name, result) of `scenario` for every class."""
        self.assertTrue(self.results)
        return [(name, by_scenario[scenario])
                for name, by_scenario in sorted(self.results.items())]

    def test_a_wait_lets_other_greenlets_run(self):
        for name, r in self.each("wake"):
            with self.subTest(cls=name):
                self.assertEqual(r["keys"], [["a", READ]])
                self.assertLess(r["wall"], PROMPT)
        for name, r in self.each("wake_none"):
            with self.subTest(cls=name):
                self.assertEqual(r["keys"], [["a", READ]])
                self.assertLess(r["wall"], PROMPT)

    def test_the_timeout_passes_cooperatively_without_spinning(self):
        for name, r in self.each("timeout"):
            with self.subTest(cls=name):
                self.assertEqual(r["keys"], [])
                self.assertGreaterEqual(r["wall"], 0.29)
                self.assertGreaterEqual(r["ticks"], 5)  # the other greenlet ran
                self.assertLess(r["cpu"], NO_SPIN)

    def test_register_from_another_greenlet_wakes_the_wait(self):
        for name, r in self.each("register_during_wait"):
            with self.subTest(cls=name):
                self.assertEqual(r["keys"], [["late", READ]])
                self.assertLess(r["wall"], PROMPT)

    def test_close_from_another_greenlet_ends_the_wait(self):
        for name, r in self.each("close_during_wait"):
            with self.subTest(cls=name):
                self.assertEqual(r["keys"], [])
                self.assertLess(r["wall"], PROMPT)

    def test_a_kernel_leftover_does_not_make_select_spin(self):
        for name, r in self.each("leftover"):
            with self.subTest(cls=name):
                self.assertEqual(r["keys"], [])
                self.assertGreaterEqual(r["wall"], 0.29)
                self.assertLess(r["cpu"], NO_SPIN)
                # After one wake-up for nothing, the wait watches the keys'
                # own fds, and sleeps the rest: no short naps.
                self.assertLessEqual(r["waits"], 3)

    def assert_no_spin(self, scenario, polled):
        """`scenario` left a closed fd's number registered: poll and select
        report the key `polled` at once, as without the patch (POLLNVAL,
        or the file that took the number); epoll reports nothing and waits
        its 0.3 s. Neither spins."""
        for name, r in self.each(scenario):
            with self.subTest(cls=name):
                if name in ("PollSelector", "SelectSelector"):
                    self.assertEqual([k for k, _ in r["keys"]], [polled])
                else:
                    self.assertEqual(r["keys"], [])
                    self.assertGreaterEqual(r["wall"], 0.29)
                self.assertLess(r["cpu"], NO_SPIN)

    def test_wake_ups_for_nothing_everywhere_do_not_make_select_spin(self):
        self.assert_no_spin("leftover_and_reused", "g")

    def test_a_closed_registered_fd_does_not_make_select_spin(self):
        self.assert_no_spin("closed_registered", "d")

    def test_only_waits_go_through_the_patched_module(self):
        for name, r in self.each("calls"):
            with self.subTest(cls=name):
                self.assertEqual(r["polls"], 0)
                self.assertGreaterEqual(r["waits"], 1)


class GeventTests(GreenTests, unittest.TestCase):
    framework = "gevent"


class EventletTests(GreenTests, unittest.TestCase):
    framework = "eventlet"


class UnpatchedTests(unittest.TestCase):
    """Without a patch, select() waits in its own system call."""

    def test_select_never_goes_green_unpatched(self):
        results = run_child("none")
        self.assertTrue(results)
        for name, by_scenario in sorted(results.items()):
            with self.subTest(cls=name):
                self.assertEqual(by_scenario["calls"], dict(
                    by_scenario["calls"], polls=0, waits=0))
                self.assertEqual(by_scenario["wake"]["keys"], [["a", READ]])
                self.assertLess(by_scenario["wake"]["wall"], PROMPT)
                self.assertEqual(by_scenario["timeout"]["keys"], [])
                self.assertGreaterEqual(by_scenario["timeout"]["wall"], 0.29)


if __name__ == "__main__":
    unittest.main()

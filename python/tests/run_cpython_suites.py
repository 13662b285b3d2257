"""Run CPython's own test suites, unmodified, against ``selectors2``.

    python run_cpython_suites.py selectors            # Lib/test/test_selectors.py
    python run_cpython_suites.py asyncio test_events  # test.test_asyncio.test_events
    python run_cpython_suites.py asyncio test_events --stdlib   # the baseline
    python run_cpython_suites.py module test_subprocess         # test.test_subprocess
    python run_cpython_suites.py multiprocessing                # connection tests
    python run_cpython_suites.py tornado                        # tornado's own suite

``tornado`` runs the whole test suite of Tornado (installed from PyPI:
``tornado.test.runtests.all()``, about 1,500 tests, loopback only), which
runs on asyncio's selector loop, so on ours: an event-loop framework's own
tests that nobody on this project wrote.

``multiprocessing`` runs the classes of CPython's
``test._test_multiprocessing`` that go through
``multiprocessing.connection.wait`` (built on ``selectors.PollSelector``):
connections, listeners and clients, ``poll``, pickled connections,
``wait`` itself and its EINTR case (``MP_CLASSES``), installed for the
``fork`` start method as ``test_multiprocessing_fork`` does (its module
file is missing from some Python builds; ``_test_multiprocessing`` is
there on every version), so the children use ours too.

Our module is put in ``sys.modules['selectors']`` before the test module
(and asyncio) is imported, so every ``import selectors`` in the tests, in
asyncio and in the other standard modules built on it gets ours. ``module
test_X`` runs ``test.test_X`` and checks that the standard module ``X``
(``subprocess``, ``socketserver``) imported ours. ``--stdlib`` runs the same tests on the standard
library's selectors, for comparison. The ``cpu`` resource is enabled
(``-u cpu``: ``test_above_fd_setsize``).

Tests that cannot apply to a reimplementation (they patch private
attributes of the standard module) are listed in ``NOT_APPLICABLE`` with
the reason, left out of the run and reported; ``python/README.md`` lists
them too. The last line printed is ``RESULT {json}``; the exit status is
non-zero when a test failed.
"""

import json
import sys
import time
import unittest

# Whitebox tests: "Class.method" -> why it cannot apply to selectors2.
_MODIFY_UNREGISTER = (
        "patches the private `_selector_cls` of the stdlib's Epoll/Poll "
        "selector to make the OS modify fail, and expects the stdlib's "
        "behaviour (the fd unregistered); selectors2 has no `_selector_cls` "
        "and deliberately keeps the old registration on a failed modify"
)
# The multiprocessing test classes that reach `connection.wait`, by the
# names `install_tests_in_module_dict` gives them (the manager variants
# test the manager, not the connection, and are left out).
MP_CLASSES = __import__("re").compile(
    r"^(With(Processes|Threads)Test(Connection|Listener|ListenerClient|Poll|"
    r"PicklingConnections|PollEintr)|TestWait)$")
# On the other classes the test skips itself (or the class is skipped).
NOT_APPLICABLE = {
    cls + ".test_modify_unregister": _MODIFY_UNREGISTER
    for cls in ("DefaultSelectorTestCase", "EpollSelectorTestCase", "PollSelectorTestCase")
}


def multiprocessing_tests():
    """A module of the `MP_CLASSES` tests for the fork start method, with
    the set-up and tear-down `install_tests_in_module_dict` gives it."""
    import types
    from test import _test_multiprocessing as base
    module = types.ModuleType("test_multiprocessing_selectors2")
    sys.modules[module.__name__] = module
    base.install_tests_in_module_dict(module.__dict__, "fork")
    for key in list(module.__dict__):
        value = module.__dict__[key]
        if isinstance(value, type) and issubclass(value, unittest.TestCase) \
                and not MP_CLASSES.match(key):
            del module.__dict__[key]
    return module


def main(argv):
    stdlib = "--stdlib" in argv
    args = [a for a in argv if not a.startswith("--")]
    suite_kind = args[0]
    created = [0]
    if not stdlib:
        import selectors2
        sys.modules["selectors"] = selectors2
        # Count our selectors, to show the suites really used them.
        init = selectors2._NativeBase.__init__

        def counting_init(self):
            created[0] += 1
            init(self)
        selectors2._NativeBase.__init__ = counting_init
    from test import support
    support.use_resources = ["cpu"]
    if suite_kind == "module":
        # test_socketserver asks for it at import; its servers are on
        # loopback.
        support.use_resources.append("network")
    if suite_kind == "multiprocessing":
        # TestWait's timeout tests (a few seconds of sleeps).
        support.use_resources.append("walltime")
    if suite_kind == "tornado":
        name = "tornado.test.runtests"
    elif suite_kind == "selectors":
        name = "test.test_selectors"
    elif suite_kind == "module":
        name = "test." + args[1]
    elif suite_kind == "multiprocessing":
        name = "test._test_multiprocessing"
    else:
        name = "test.test_asyncio." + args[1]
    if suite_kind == "multiprocessing":
        module = multiprocessing_tests()
    else:
        module = __import__(name, fromlist=["_"])
    import selectors
    if not stdlib:
        assert selectors.__name__ == "selectors2", selectors
        if suite_kind == "selectors":
            assert module.selectors is selectors
        elif suite_kind == "multiprocessing":
            import multiprocessing.connection as mpc
            assert mpc.selectors is selectors, mpc
        elif suite_kind == "tornado":
            import asyncio.selector_events as se
            assert se.selectors is selectors
        elif suite_kind == "module":
            # test_subprocess -> subprocess: the module under test uses ours.
            tested = __import__(args[1][len("test_"):])
            assert tested.selectors is selectors, tested
        else:
            import asyncio.selector_events as se
            assert se.selectors is selectors
    loader = unittest.TestLoader()
    if suite_kind == "tornado":
        # What tornado's own runner (runtests.main) sets up around the
        # suite: strict warnings, a quiet access log, a log handler.
        import logging
        import warnings
        warnings.filterwarnings("error")
        warnings.filterwarnings("ignore", category=ImportWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("error", category=DeprecationWarning, module=r"tornado\..*")
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
        warnings.filterwarnings("error", category=PendingDeprecationWarning,
                                module=r"tornado\..*")
        logging.getLogger("tornado.access").setLevel(logging.CRITICAL)
        import tornado.options
        tornado.options.parse_command_line([sys.argv[0]])
        suite = module.all()
    else:
        suite = loader.loadTestsFromModule(module)
    left_out = []

    def prune(s):
        kept = unittest.TestSuite()
        for t in s:
            if isinstance(t, unittest.TestSuite):
                kept.addTest(prune(t))
                continue
            method = ".".join(t.id().rsplit(".", 2)[-2:])
            if suite_kind == "selectors" and not stdlib and method in NOT_APPLICABLE:
                left_out.append(t.id())
                continue
            kept.addTest(t)
        return kept

    suite = prune(suite)
    # Counted here: unittest 3.12.1 leaves tests of a skipped class out of
    # testsRun (but lists them as skipped).
    total = suite.countTestCases()
    start = time.monotonic()
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=1)
    result = runner.run(suite)
    took = time.monotonic() - start
    failed = [t.id() for t, _ in result.failures + result.errors]
    failed += [t.id() for t in result.unexpectedSuccesses]
    skipped = [(t.id(), reason) for t, reason in result.skipped]
    summary = {
        "python": "%d.%d.%d" % sys.version_info[:3],
        "suite": name,
        "selectors": "stdlib" if stdlib else "selectors2",
        "run": total,
        "passed": total - len(failed) - len(skipped),
        "failed": failed,
        "skipped": skipped,
        "not_applicable": left_out,
        "seconds": round(took, 1),
        "selectors2_instances": created[0],
    }
    print("RESULT " + json.dumps(summary), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

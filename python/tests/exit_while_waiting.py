"""Processes that exit while daemon threads wait in, or come back from,
a selectors2 call: every run must exit with status 0.

    python exit_while_waiting.py [--runs N] [PYTHON ...]

Each PYTHON (default: this interpreter) must have selectors2 installed.
For every selector class the platform has, every program below runs N
times (default 20) in a fresh process. On CPython before 3.14 a daemon
thread that asks for the GIL back once the interpreter is finalizing is
ended with pthread_exit, whose forced unwind must never run through the
extension's Rust frames (it crashed wheels linked by zig with SIGSEGV, and
aborted others now and then). The programs make that happen as often as
they can: many threads return from short waits while the main thread
exits.

Prints one line per program and class, then `N passed, N failed` (a run
passes when it exits with 0 within 60 s, stderr empty of "Fatal").
"""

import argparse
import os
import subprocess
import sys

# Placeholders: {cls} is the class name.
PROGRAMS = {
    # Four daemon threads loop on select(timeout): a wait that ends
    # during finalization takes the GIL back.
    "select loop": (
        "import threading, time, selectors2\n"
        "def loop():\n"
        "    sel = selectors2.{cls}()\n"
        "    while True:\n"
        "        sel.select(0.001)\n"
        "for _ in range(4):\n"
        "    threading.Thread(target=loop, daemon=True).start()\n"
        "time.sleep(0.05)\n"
    ),
    # One selector shared: a daemon thread waits in select while others
    # register and unregister, so they wait for their turn (and the
    # select for them) with the GIL released.
    "turns": (
        "import socket, threading, time, selectors2\n"
        "sel = selectors2.{cls}()\n"
        "r, w = socket.socketpair()\n"
        "def waiter():\n"
        "    while True:\n"
        "        sel.select(0.002)\n"
        "def caller():\n"
        "    while True:\n"
        "        sel.register(r, selectors2.EVENT_READ)\n"
        "        sel.unregister(r)\n"
        "threading.Thread(target=waiter, daemon=True).start()\n"
        "for _ in range(3):\n"
        "    threading.Thread(target=caller, daemon=True).start()\n"
        "time.sleep(0.05)\n"
    ),
    # asyncio's selector loop on ours, in a daemon thread.
    "asyncio": (
        "import sys, selectors2\n"
        "sys.modules['selectors'] = selectors2\n"
        "import asyncio, threading, time\n"
        "async def tick():\n"
        "    while True:\n"
        "        await asyncio.sleep(0.001)\n"
        "def run():\n"
        "    loop = asyncio.SelectorEventLoop(selectors2.{cls}())\n"
        "    loop.run_until_complete(tick())\n"
        "threading.Thread(target=run, daemon=True).start()\n"
        "time.sleep(0.05)\n"
    ),
}


def classes(python):
    out = subprocess.run(
        [python, "-c", "import selectors2; print(' '.join(n for n in "
         "('SelectSelector', 'PollSelector', 'EpollSelector', 'KqueueSelector') "
         "if hasattr(selectors2, n)))"],
        capture_output=True, text=True, check=True, cwd="/")
    return out.stdout.split()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("pythons", nargs="*", default=[sys.executable])
    args = parser.parse_args()
    passed = failed = 0
    for python in map(os.path.abspath, args.pythons):
        for cls in classes(python):
            for name, program in PROGRAMS.items():
                statuses = {}
                for _ in range(args.runs):
                    try:
                        proc = subprocess.run([python, "-c", program.format(cls=cls)],
                                              capture_output=True, timeout=60, cwd="/")
                        status = proc.returncode
                        if status == 0 and b"Fatal" in proc.stderr:
                            status = "fatal"
                    except subprocess.TimeoutExpired:
                        status = "timeout"
                    statuses[status] = statuses.get(status, 0) + 1
                ok = statuses.get(0, 0) == args.runs
                passed += ok
                failed += not ok
                print("%s %s %s %s: %s" % ("PASS" if ok else "FAIL", python, cls, name,
                                           ", ".join("%s x%d" % (s, n) for s, n in
                                                     sorted(statuses.items(), key=str))),
                      flush=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

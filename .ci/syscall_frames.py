#!/usr/bin/env python3
"""Checks that the hot paths issue their system calls in the caller's frame.

The design's cost rule: on some machines the first `ret` from a frame entered
before a system call is far dearer than anything else on the path, so
register, unregister, modify and select's wait are shells inlined into the
caller, with the system call in the caller's own frame. This builds the
benches' profile driver (release), disassembles it, and fails if a
`syscall` instruction sits in a function of the selectors2 crates other
than the known cold paths (opening a mechanism, epoll's rebuild and
take-over, the retries of a wait that found nothing, select's wait around
a closed fd, a register that grows the table first). The driver's loop (inlined into `profile::main`) must hold
the hot paths' system calls.

    python3 .ci/syscall_frames.py            # from the repository's root
"""
import json
import re
import subprocess
import sys
from collections import Counter

# Functions of ours that may hold a system call: none of them runs per
# operation on the paths the benches time.
COLD = re.compile(
    r"::rebuild\b|::wait_on\b|::take_over\b|::open\b|::open_first\b"
    r"|::wait_around_closed\b|::register_growing\b|Waker|::drop\b|::new\b"
)
OURS = re.compile(r"\bselectors2(_core)?::")
LOOP = "profile::main"


def profile_binary():
    out = subprocess.run(
        ["cargo", "bench", "-p", "selectors2-bench", "--bench", "profile",
         "--no-run", "--message-format=json"],
        check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
                and msg["target"]["name"] == "profile":
            return msg["executable"]
    sys.exit("syscall_frames: no profile executable was built")


def syscalls_by_function(binary):
    asm = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", binary],
                         check=True, capture_output=True, text=True).stdout
    counts = Counter()
    function = None
    header = re.compile(r"^[0-9a-f]+ <(.*)>:$")
    for line in asm.splitlines():
        m = header.match(line)
        if m:
            function = m.group(1)
        elif line.rstrip().endswith("\tsyscall") and function:
            counts[function] += 1
    return counts


def main():
    binary = profile_binary()
    counts = syscalls_by_function(binary)
    bad = {f: n for f, n in counts.items() if OURS.search(f) and not COLD.search(f)}
    in_loop = counts.get(LOOP, 0)
    for f, n in sorted(counts.items()):
        mark = "HOT PATH OUT OF LINE" if f in bad else ""
        print(f"{n:4} {f[:150]} {mark}")
    # The loop holds at least the contenders' own: raw rustix epoll's add,
    # delete, modify and wait, and ours (EpollSelector's and
    # DefaultSelector's register, unregister, modify, select).
    if in_loop < 12:
        sys.exit(f"syscall_frames: {LOOP} holds {in_loop} system calls; the hot paths "
                 "are expected there (is the driver still inlined into main?)")
    if bad:
        sys.exit("syscall_frames: a hot path issues its system call outside the "
                 f"caller's frame: {sorted(bad)}")
    print(f"syscall_frames: ok ({in_loop} system calls in {LOOP}, none of ours elsewhere "
          "but cold paths)")


if __name__ == "__main__":
    main()

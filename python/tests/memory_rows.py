"""Resident memory of an EpollSelector holding N dups of one socket for
EVENT_WRITE, after one select(0) that returns them all: ours against the
stdlib's, one process per measurement (python/README.md, "Memory").

    python python/tests/memory_rows.py PYTHON_WITH_SELECTORS2_INSTALLED

Each row is the growth of the process's resident set from just after the
dups are made to just after the select (the selector, its keys and the
list select returns). Small rows vary by tens of KiB from run to run with
the allocator's arenas: run it a few times.
"""
import subprocess
import sys
CHILD = r'''
import os, sys, socket, resource
n = int(sys.argv[1]); which = sys.argv[2]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
if which == "ours":
    import selectors2 as mod
else:
    import selectors as mod
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
a, b = socket.socketpair()
dups = [os.dup(a.fileno()) for _ in range(n)]
before = rss()
sel = mod.EpollSelector()
for i, fd in enumerate(dups):
    sel.register(fd, mod.EVENT_WRITE, i)
got = sel.select(0)
assert len(got) == n, len(got)
print((rss() - before) // 1024)
'''


def main():
    py = sys.argv[1] if len(sys.argv) > 1 else sys.executable
    for n in (257, 1025, 4097, 16385):
        row = []
        for which in ("ours", "stdlib"):
            out = subprocess.run([py, "-c", CHILD, str(n), which], capture_output=True, text=True)
            row.append(out.stdout.strip() or out.stderr.strip()[-200:])
        print(f"N = {n}: ours {row[0]} KiB, stdlib {row[1]} KiB")


if __name__ == "__main__":
    main()

"""A client for the echo server, written against CPython's own `selectors`
(nobody on the selectors2 project wrote it): it checks every byte.

    python3 echo_client.py HOST:PORT [--storm] [--seed N]

Without --storm it runs four phases and exits non-zero at the first fault:

1. bulk: 200 connections at once, each sending a message of a random size
   up to 256 KiB (so the server's writes are partial), then half-closing
   (shutdown SHUT_WR) and reading until EOF: the echo must be exact, and the
   server must not close before it has sent it all;
2. resets: 50 connections that send some bytes and reset (SO_LINGER 0),
   beside 20 normal ones that must all succeed;
3. burst: 500 short connections opened as fast as possible;
4. a final exchange: the server still serves.

With --storm (for a server whose fd limit is low) it opens 120 connections
at once: each must get its exact echo or be turned away (closed or reset
with nothing echoed), never a partial echo; then 10 normal connections must
all succeed.
"""

import errno
import random
import selectors
import socket
import struct
import sys
import time

PHASE_DEADLINE = 120.0


class Conn:
    """One client connection: what it sends, what came back."""

    def __init__(self, addr, message, reset=False, small_window=False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if small_window:
            # A small receive window: the server's echo meets a full socket
            # and must wait for EVENT_WRITE (partial writes).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setblocking(False)
        err = self.sock.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, "connect")
        self.message = message
        self.sent = 0
        self.received = bytearray()
        self.reset = reset
        self.half_closed = False
        self.done = False
        self.refused = False
        # A slow reader: it reads nothing for its first 100 ms, so the
        # server's echo fills the socket and must wait for EVENT_WRITE
        # (partial writes), and it stops reading meanwhile (back-pressure).
        self.read_from = time.monotonic() + (0.1 if small_window else 0.0)

    def reading(self):
        return time.monotonic() >= self.read_from

    def events(self):
        ev = selectors.EVENT_READ if self.reading() else 0
        if not self.half_closed:
            ev |= selectors.EVENT_WRITE
        return ev


def run_conns(conns, allow_refused=False):
    """Drives `conns` to completion; returns (ok, refused) counts."""
    sel = selectors.DefaultSelector()

    def rearm(c):
        # Python's selectors refuse an empty interest: a slow reader that
        # has sent everything waits unregistered until it may read.
        ev = c.events()
        if ev and c.sock in sel.get_map():
            sel.modify(c.sock, ev, c)
        elif ev:
            sel.register(c.sock, ev, c)
        elif c.sock in sel.get_map():
            sel.unregister(c.sock)

    for c in conns:
        rearm(c)
    live = len(conns)
    deadline = time.monotonic() + PHASE_DEADLINE
    slow = [c for c in conns if not c.reading()]
    while live:
        if time.monotonic() > deadline:
            raise AssertionError(f"{live} connections still open after {PHASE_DEADLINE} s")
        if slow:
            for c in [c for c in slow if c.reading()]:
                slow.remove(c)
                if not c.done:
                    rearm(c)
        for key, mask in sel.select(timeout=0.02 if slow else 1.0):
            c = key.data
            try:
                if mask & selectors.EVENT_WRITE and not c.half_closed:
                    if c.sent < len(c.message):
                        c.sent += c.sock.send(c.message[c.sent:c.sent + 65536])
                    if c.sent == len(c.message):
                        if c.reset:
                            # SO_LINGER on, 0 s: close() sends a reset.
                            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                              struct.pack("ii", 1, 0))
                            if c.sock in sel.get_map():
                                sel.unregister(c.sock)
                            c.sock.close()
                            c.done = True
                            live -= 1
                            continue
                        c.sock.shutdown(socket.SHUT_WR)
                        c.half_closed = True
                        rearm(c)
                if mask & selectors.EVENT_READ:
                    data = c.sock.recv(262144)
                    if data:
                        c.received += data
                        continue
                    # EOF: the server has sent everything it will.
                    finish(c, sel, allow_refused)
                    live -= 1
            except (BlockingIOError, InterruptedError):
                pass
            except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError,
                    OSError) as e:
                if isinstance(e, (BlockingIOError, InterruptedError)):
                    continue
                if not allow_refused or c.received:
                    raise AssertionError(f"connection reset: {e!r} after {len(c.received)} bytes")
                c.refused = True
                sel.unregister(c.sock)
                c.sock.close()
                c.done = True
                live -= 1
    sel.close()
    ok = sum(1 for c in conns if c.done and not c.refused and not c.reset)
    refused = sum(1 for c in conns if c.refused)
    return ok, refused


def finish(c, sel, allow_refused):
    sel.unregister(c.sock)
    c.sock.close()
    c.done = True
    if bytes(c.received) == c.message:
        return
    if allow_refused and not c.received:
        # Turned away before anything was echoed: allowed in a storm.
        c.refused = True
        return
    raise AssertionError(
        f"echo mismatch: sent {len(c.message)} bytes, got {len(c.received)}"
        f" (first difference at {first_diff(c.message, c.received)})")


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def message(rng, size):
    """`size` random bytes (a 4 KiB random block, repeated)."""
    block = rng.randbytes(min(size, 4096))
    return (block * (size // len(block) + 1))[:size]


def main():
    args = sys.argv[1:]
    host, port = args[0].rsplit(":", 1)
    addr = (host, int(port))
    storm = "--storm" in args
    seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 1
    rng = random.Random(seed)
    if storm:
        conns = [Conn(addr, message(rng, 16)) for _ in range(120)]
        ok, refused = run_conns(conns, allow_refused=True)
        print(f"storm: {ok} echoed, {refused} turned away")
        if ok == 0:
            raise AssertionError("no connection was served during the storm")
        time.sleep(0.2)
        ok, _ = run_conns([Conn(addr, message(rng, rng.randint(1, 65536))) for _ in range(10)])
        print(f"after the storm: {ok} of 10 echoed")
        assert ok == 10
        print("echo client: ok")
        return
    conns = [Conn(addr, message(rng, rng.randint(1, 256 * 1024)), small_window=i % 2 == 0)
             for i in range(200)]
    ok, _ = run_conns(conns)
    total = sum(len(c.message) for c in conns)
    print(f"bulk: {ok} of 200 connections echoed {total} bytes exactly")
    assert ok == 200

    resets = [Conn(addr, message(rng, rng.randint(1, 65536)), reset=True) for _ in range(50)]
    normal = [Conn(addr, message(rng, rng.randint(1, 65536))) for _ in range(20)]
    ok, _ = run_conns(resets + normal)
    print(f"resets: 50 reset, {ok} of 20 beside them echoed")
    assert ok == 20

    burst = [Conn(addr, message(rng, 16)) for _ in range(500)]
    ok, _ = run_conns(burst)
    print(f"burst: {ok} of 500 short connections echoed")
    assert ok == 500

    ok, _ = run_conns([Conn(addr, b"still there?")])
    assert ok == 1
    print("echo client: ok")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"echo client: FAILED: {e}", file=sys.stderr)
        sys.exit(1)

"""A small typed program on the selectors API, for `mypy --strict`.

.ci/python checks it twice: as it is, against selectors2's stub, and with
the first import line made `import selectors` (typeshed's stdlib types):
both must pass. It also runs (a socket pair echoing a few bytes).
"""

import selectors2 as selectors
import socket
import sys
from collections.abc import Callable
from typing import Optional

Handler = Callable[[socket.socket, int], None]


def on_event(sel: selectors.BaseSelector, got: list[bytes]) -> Handler:
    def handle(conn: socket.socket, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            got.append(conn.recv(16))
            sel.modify(conn, selectors.EVENT_READ | selectors.EVENT_WRITE, handle)
        if mask & selectors.EVENT_WRITE:
            sel.unregister(conn)
    return handle


def drain(sel: selectors.BaseSelector, timeout: Optional[float]) -> int:
    handled = 0
    for key, mask in sel.select(timeout):
        callback: Handler = key.data
        fileobj = key.fileobj
        assert isinstance(fileobj, socket.socket)
        callback(fileobj, mask)
        handled += 1
    return handled


def keys_of(sel: selectors.BaseSelector) -> list[int]:
    registered = sel.get_map()
    return sorted(key.fd for key in registered.values())


def main() -> int:
    a, b = socket.socketpair()
    got: list[bytes] = []
    with selectors.DefaultSelector() as sel:
        key: selectors.SelectorKey = sel.register(a, selectors.EVENT_READ, on_event(sel, got))
        assert key.events == selectors.EVENT_READ and key.fd == a.fileno()
        b.send(b"ping")
        while sel.get_map() and drain(sel, 1.0):
            pass
        assert keys_of(sel) == [], keys_of(sel)
        poll: selectors.BaseSelector = selectors.PollSelector()
        poll.register(b.fileno(), selectors.EVENT_WRITE)
        assert [k.fd for k, _ in poll.select(0)] == [b.fileno()]
        assert poll.get_key(b.fileno()).data is None
        poll.close()
        if sys.platform == "linux":
            ep = selectors.EpollSelector()
            assert ep.fileno() >= 0
            ep.close()
    a.close()
    b.close()
    print(got)
    return 0 if got == [b"ping"] else 1


if __name__ == "__main__":
    sys.exit(main())

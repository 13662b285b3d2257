"""gunicorn's threaded worker serving keep-alive clients on our selectors.

    python run_gunicorn.py [--stdlib]

gunicorn (from PyPI, 23.x) runs with `-k gthread`: its worker thread
waits in `poller.select(1.0)` while the pool threads that finished a
request register the kept-alive connection in that same selector
(`finish_request`, a future's done-callback), so from another thread
during the wait, which the standard library's selectors allow. Our module
is put in `sys.modules['selectors']` before gunicorn is imported (the
worker is forked from the master and keeps it; the app reports which
module its worker uses), or not with `--stdlib`.

Then CLIENTS threads each send REQUESTS requests on one HTTP/1.1
connection. A request passes when it gets its 200 on the connection the
client opened first (the app reports the client's port, which must not
change): a server that could not register the connection for its next
request closes it instead, and the client sees the disconnection.

Prints `RESULT {json}` last, in run_cpython_suites.py's shape: run (the
requests), passed, failed (one line per failed request), skipped.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CLIENTS = 8
REQUESTS = 150

APP = """
import os, sys

def app(environ, start_response):
    body = ("%s %s" % (sys.modules["selectors"].__name__,
                       environ["REMOTE_PORT"])).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""

LAUNCH = """
import sys
if {ours!r}:
    import selectors2
    sys.modules["selectors"] = selectors2
sys.argv = ["gunicorn", "-k", "gthread", "--threads", "4", "--workers", "1",
            "--keep-alive", "30", "--bind", "127.0.0.1:{port}",
            "--chdir", {dir!r}, "--log-level", "warning", "app:app"]
from gunicorn.app.wsgiapp import run
run()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(port, proc, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def client(port, n, out):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    first_port = None
    for i in range(n):
        try:
            conn.request("GET", "/%d" % i)
            resp = conn.getresponse()
            module, client_port = resp.read().decode().split()
            if resp.status != 200:
                out.append((False, "request %d: status %d" % (i, resp.status), module))
                continue
            if first_port is None:
                first_port = client_port
            if client_port != first_port:
                out.append((False, "request %d: new connection (port %s, was %s)"
                            % (i, client_port, first_port), module))
            else:
                out.append((True, "", module))
        except Exception as e:  # a closed keep-alive connection
            out.append((False, "request %d: %s: %s" % (i, type(e).__name__, e), None))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            first_port = None
    conn.close()


def main():
    ours = "--stdlib" not in sys.argv
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "app.py"), "w") as f:
            f.write(APP)
        code = LAUNCH.format(ours=ours, port=port, dir=d)
        proc = subprocess.Popen([sys.executable, "-c", code])
        try:
            if not wait_until_up(port, proc):
                print("RESULT " + json.dumps({"run": 0, "passed": 0, "skipped": [],
                                              "failed": ["gunicorn did not start"],
                                              "not_applicable": []}))
                return 1
            results = [[] for _ in range(CLIENTS)]
            threads = [threading.Thread(target=client, args=(port, REQUESTS, r))
                       for r in results]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    flat = [r for rs in results for r in rs]
    modules = {m for _, _, m in flat if m}
    failed = [why for ok, why, _ in flat if not ok]
    expected = "selectors2" if ours else "selectors"
    if modules != {expected}:
        failed.append("the worker used %s, not %s" % (sorted(modules), expected))
    res = {"run": CLIENTS * REQUESTS, "passed": sum(ok for ok, _, _ in flat),
           "failed": failed, "skipped": [], "not_applicable": []}
    print("%d of %d requests served on their kept-alive connection (%s)"
          % (res["passed"], res["run"], expected))
    for why in failed[:10]:
        print("  " + why)
    print("RESULT " + json.dumps(res))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""A small HTTP proxy on loopback that breaks requests on purpose, from a seeded schedule.

Faults (per request, chosen by ``pick``):

- ``drop_before``: read the request, close the connection without forwarding it;
- ``drop_after``: forward it, let the portal commit, close without answering;
- ``delay``: forward after a pause;
- ``error500``: answer 500 without forwarding;
- ``duplicate``: forward the same request twice at once, answer with the second answer;
- ``cut_body``: forward it, send the headers and half the body, close.

With ``keepalive_s``, the proxy also behaves as a server whose keep-alive timer fires just as a request
arrives on a connection idle longer than that: it closes the connection without answering (counted as
``stale_keepalive``). Real servers leave that race to timing; here it is certain, so a test can show a
client never sends on such a connection.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("drop_before", "drop_after", "delay", "error500", "duplicate", "cut_body")


class FaultProxy:
    def __init__(self, upstream: str, rate: float = 0.5, seed: int = 1, faults: tuple[str, ...] = FAULTS,
                 delay_s: float = 0.2, keepalive_s: float | None = None):
        u = urlsplit(upstream)
        self.host, self.port = u.hostname, u.port
        self.rng = random.Random(seed)
        self.rate, self.faults, self.delay_s, self.keepalive_s = rate, faults, delay_s, keepalive_s
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            answered_at: float | None = None  # per connection (a handler serves one): its last answer

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                idle = None if self.answered_at is None else time.monotonic() - self.answered_at
                if proxy.keepalive_s is not None and idle is not None and idle > proxy.keepalive_s:
                    with proxy._lock:
                        proxy.counts["stale_keepalive"] += 1
                    self.close_connection = True
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                fault = proxy.pick()
                if fault == "drop_before":
                    self.close_connection = True
                    return
                if fault == "error500":
                    self._send(500, b'{"error":"injected"}', {"Content-Type": "application/json"})
                    return
                if fault == "delay":
                    time.sleep(proxy.delay_s)
                if fault == "duplicate":
                    results: list = [None, None]

                    def go(i: int) -> None:
                        results[i] = proxy.forward(self.command, self.path, body, headers)

                    ts = [threading.Thread(target=go, args=(i,)) for i in range(2)]
                    for t in ts:
                        t.start()
                    for t in ts:
                        t.join()
                    status, rheaders, rbody = results[1]
                else:
                    status, rheaders, rbody = proxy.forward(self.command, self.path, body, headers)
                if fault == "drop_after":
                    self.close_connection = True
                    return
                if fault == "cut_body":
                    self._send(status, rbody[: max(1, len(rbody) // 2)], rheaders, declared=len(rbody))
                    self.close_connection = True
                    return
                self._send(status, rbody, rheaders)

            def _send(self, status: int, body: bytes, headers: dict, declared: int | None = None) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(declared if declared is not None else len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                self.answered_at = time.monotonic()

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def pick(self) -> str:
        with self._lock:
            fault = self.rng.choice(self.faults) if self.rng.random() < self.rate else "none"
            self.counts[fault] += 1
            return fault

    def forward(self, method: str, path: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
        return forward(self.host, self.port, method, path, body, headers)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def forward(host: str, port: int, method: str, path: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
    """Send one request on to the portal and read its whole answer: status, headers, body."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()

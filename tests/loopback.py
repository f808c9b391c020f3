"""Someone else's HTTP server on loopback, for tests that play one: a slow or lying portal, a server that
is not a portal at all, an attacker's page on another origin.

Real HTTP on 127.0.0.1 with a free port; the test writes only the handler's ``do_GET``/``do_POST``.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Ports a test hands to a process it starts (`kiosk-portal serve --port N`). The kernel gives port 0 from
# ip_local_port_range (32768-60999 by default), so a port taken from there and let go can be given to another
# xdist worker's server before our child binds it; these lie below that range, where only tests pick.
_PICKED = range(20000, 32000)
_rng = random.Random(os.getpid() ^ int.from_bytes(os.urandom(4), "big"))


def free_port() -> int:
    """A loopback port nothing listens on now, for a child process to bind a moment later."""
    for _ in range(200):
        port = _rng.choice(_PICKED)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {_PICKED.start}-{_PICKED.stop - 1}")


@contextlib.contextmanager
def refused_port(port: int = 0) -> Iterator[int]:
    """A loopback port whose connections are refused for as long as the block runs: a new one, or ``port`` (that
    of a portal just stopped, held until it starts again there).

    Bound and never listening: a connection gets RST (ECONNREFUSED) at once, and no other process can take the
    port meanwhile. A port merely let go was taken by another worker's portal in CI, and the "unreachable"
    portal answered 404.
    """
    with socket.socket() as s:
        if port:  # the stopped portal's connections in TIME_WAIT; a new port is held without it (another socket
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # with SO_REUSEADDR could share it)
        s.bind(("127.0.0.1", port))
        yield int(s.getsockname()[1])


class Handler(BaseHTTPRequestHandler):
    """A request handler that does not print each request, with one call for a whole answer."""

    def answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def answering(status: int, body: bytes, headers: dict[str, str] | None = None) -> type[Handler]:
    """A handler that answers every GET and POST the same: ``status`` with ``body`` (JSON), or, with ``headers``,
    ``status`` with those headers and no body (a redirect). The request's body is read first, as a server does."""

    class Answer(Handler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if headers:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.answer(status, body)

        do_GET = do_POST  # noqa: N815

    return Answer


class LoopbackServer:
    """``handler`` served on its own thread until :meth:`close`; also a context manager."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""An in-process portal on 127.0.0.1, for tests and benchmarks.

    handle = start_portal("sqlite:////tmp/demo/portal.db")     # port=0: any free port
    code = handle.issue_code(cfg.kiosk.id)                      # then kiosk.sync.uploader.sync_kiosk(...)
    handle.totals()                                             # what the public API says
    handle.stop()

``kiosk demo`` runs the portal as its own process (``kiosk-portal serve``) instead,
so the kiosk never imports the portal service.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
import uvicorn

from server_sync.app import create_app
from server_sync.db import make_engine
from server_sync.enroll import issue_code


@dataclass
class PortalHandle:
    url: str
    db_url: str
    server: uvicorn.Server
    thread: threading.Thread
    app: Any

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.app.state.jobs.shutdown()  # lifespan is off here, so the app's shutdown hook does not run
        self.app.state.engine.dispose()

    def issue_code(self, kiosk_id: str) -> str:
        """A one-time enrollment code (what ``kiosk-portal enroll-code`` prints)."""
        return issue_code(self.app.state.engine, kiosk_id)

    def totals(self) -> dict[str, Any]:
        return requests.get(self.url + "/api/v1/totals", timeout=10).json()

    def __enter__(self) -> PortalHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_portal(db_url: str, host: str = "127.0.0.1", port: int = 0, next_sync_s: int = 60,
                 log_level: str = "warning", **app_kw: Any) -> PortalHandle:
    """Serve the portal from a daemon thread; returns once it accepts connections.

    ``app_kw`` goes to :func:`~server_sync.app.create_app` (``media_size``, ``spool_dir``, ``upload_limit``).
    """
    engine = make_engine(db_url)
    app = create_app(engine=engine, next_sync_s=next_sync_s, **app_kw)
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections of such a socket. With Nagle on,
    # the body of every answer (uvicorn writes head and body apart) waited ~40 ms for the client's delayed
    # ACK (tests/sync/test_embedded_portal.py). `kiosk-portal serve` binds through uvicorn, which does this.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off", timeout_keep_alive=30)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="portal", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("embedded portal did not start")
        time.sleep(0.01)
    bound = sock.getsockname()[1]
    return PortalHandle(f"http://{host}:{bound}", db_url, server, thread, app)

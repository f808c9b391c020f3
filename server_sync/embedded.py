"""An in-process portal on 127.0.0.1 and one-call enroll + sync, for ``kiosk demo`` and tests.

    handle = start_portal("sqlite:////tmp/demo/portal.db")     # port=0: any free port
    sync_kiosk(cfg, handle.url, code=handle.issue_code(cfg.kiosk.id), ledger=ledger)
    handle.totals()                                             # what the public API says
    handle.stop()
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
from server_sync.uploader import SyncState, Uploader


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
        self.app.state.engine.dispose()

    def issue_code(self, kiosk_id: str) -> str:
        """A one-time enrollment code (what ``kiosk-portal enroll-code`` prints)."""
        return issue_code(self.app.state.engine, kiosk_id)

    def totals(self) -> dict[str, Any]:
        return requests.get(self.url + "/api/v1/totals", timeout=10).json()

    def __enter__(self) -> "PortalHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_portal(db_url: str, host: str = "127.0.0.1", port: int = 0, next_sync_s: int = 60,
                 log_level: str = "warning") -> PortalHandle:
    """Serve the portal from a daemon thread; returns once it accepts connections."""
    engine = make_engine(db_url)
    app = create_app(engine=engine, next_sync_s=next_sync_s)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
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


def enroll_kiosk(cfg: Any, portal_url: str, code: str) -> dict[str, Any]:
    """Register the kiosk of ``cfg`` (a KioskConfig) with the portal; raises EnrollError if refused."""
    up = Uploader.from_config(cfg, portal_url=portal_url)
    try:
        return up.enroll(code)
    finally:
        up.close()


def sync_kiosk(cfg: Any, portal_url: str = "", *, code: str | None = None, ledger: Any = None,
               max_attempts: int = 5, **kw: Any) -> SyncState:
    """Enroll first if ``code`` is given, then upload until everything is acknowledged.

    Pass the open :class:`~kiosk.ledger.Ledger` as ``ledger`` to let pushed configs be applied.
    Returns the uploader's state (``.ok``, ``.pending``, ``.last_error``, ``.accepted_through_seq``).
    """
    up = Uploader.from_config(cfg, ledger=ledger, portal_url=portal_url, **kw)
    try:
        if code is not None:
            up.enroll(code)
        return up.sync_once(max_attempts=max_attempts)
    finally:
        up.close()

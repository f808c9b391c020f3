"""Helpers for tests of two people or processes acting on the portal at the same moment.

:class:`PauseAfter` holds the first server thread that runs a matching SQL statement right after the statement ran
(an ``after_cursor_execute`` hook at the database driver seam: the portal's own code runs unchanged), lets another
action run meanwhile, and then lets the first go on. That is the interleaving two uvicorn workers (or two threads of
one) produce when two requests arrive together. :func:`overlap` packages the usual "first held, second run" dance.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sync_helpers import PASSWORD

from server_sync import catalog
from server_sync.embedded import PortalHandle, start_portal
from server_sync.staff import add_user

STAFF = (("admin", "admin"), ("admin2", "admin"), ("staff1", "staff"), ("staff2", "staff"))
"""Two administrators and two staff members, each with :data:`sync_helpers.PASSWORD`: the people who act at once."""


class PauseAfter:
    """Hold the first server thread (not the test's main thread) whose SQL matches ``pattern``, right after that
    statement ran, until :meth:`release`. Only the first match is held; later ones pass."""

    def __init__(self, engine: Any, pattern: str):
        self.engine, self.pattern = engine, re.compile(pattern, re.S)
        self.hit, self.go = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self._armed = True
        event.listen(engine, "after_cursor_execute", self._after)

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if threading.current_thread() is threading.main_thread() or not self.pattern.search(statement):
            return
        with self._lock:
            if not self._armed:
                return
            self._armed = False
        self.hit.set()
        self.go.wait(60)

    def wait_hit(self, timeout: float = 30) -> None:
        assert self.hit.wait(timeout), f"no server thread ran a statement matching {self.pattern.pattern!r}"

    def release(self) -> None:
        self.go.set()  # the listener stays, disarmed: removing it while the held thread iterates them would break it


def overlap(engine: Any, pattern: str, first: Any, second: Any, grace_s: float = 3.0) -> tuple[Any, Any]:
    """``first`` held right after its statement matching ``pattern``; ``second`` run meanwhile. A portal that makes
    ``second`` wait for ``first`` (a lock) gets ``first`` released after ``grace_s``; then both finish."""
    pause = PauseAfter(engine, pattern)
    t1, o1 = in_thread(first)
    try:
        pause.wait_hit()
        t2, o2 = in_thread(second)
        t2.join(grace_s)
    finally:
        pause.release()
    return joined(t1, o1), joined(t2, o2)


def in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``fn`` in a daemon thread; its result or exception lands in the returned dict."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def joined(t: threading.Thread, out: dict[str, Any]) -> Any:
    """Wait for a thread from :func:`in_thread` and return its result (or raise its exception)."""
    t.join(60)
    assert not t.is_alive(), "the other request never finished"
    if "error" in out:
        raise out["error"]
    return out["value"]


@contextlib.contextmanager
def staff_portal(db_url: str, tmp_path: Path, groups_and_projects: dict[str, Any]) -> Iterator[PortalHandle]:
    """A portal on loopback over ``db_url`` holding the catalog ``groups_and_projects`` and the :data:`STAFF`."""
    handle = start_portal(db_url, media_size=(160, 90), spool_dir=str(tmp_path / "spool"))
    engine = handle.app.state.engine
    catalog.import_catalog(engine, groups_and_projects)
    for user, role in STAFF:
        add_user(engine, user, PASSWORD, role)
    try:
        yield handle
    finally:
        handle.stop()

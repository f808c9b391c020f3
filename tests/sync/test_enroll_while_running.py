"""`kiosk enroll` from a shell while `kiosk run` runs: the running kiosk adopts the new enrollment.

systemd keeps `kiosk run` up, so staff enroll beside it: an installer who started the service before enrolling,
or a kiosk moved to another portal (docs/sync.md, "Enrollment"). The sync thread of the running kiosk holds its
sync state in memory and saved it after every round, so its next round wrote the old enrollment (the old portal,
or none) over the one `kiosk enroll` had just written: the kiosk silently stayed where it was, and the one-time
code was spent. Now the uploader notices that sync-state.json changed under it and takes the enrollment from the
file before it syncs or saves. Real `kiosk run` processes (headless), real `kiosk enroll` processes, real portals
on loopback (SQLite).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sync_helpers import (
    E2E_KIOSK,
    e2e_kiosk_config,
    free_port,
    portal_entry_count,
    start_kiosk,
    stop_kiosk,
    wait_for,
)

from kiosk.sync.uploader import BackgroundSync, SyncState
from server_sync.embedded import start_portal

SIZE = (320, 180)
ENV = {**os.environ, "PYTHONPATH": os.getcwd(), "SDL_AUDIODRIVER": "dummy"}


def _enroll(config: Path, url: str, code: str) -> None:
    """`kiosk enroll` as staff run it from a shell: a process of its own."""
    r = subprocess.run([sys.executable, "-m", "kiosk", "enroll", "--config", str(config), "--portal", url,
                        "--code", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert r.returncode == 0, r.stderr


def _state(tmp_path: Path) -> dict[str, Any]:
    try:
        return json.loads((tmp_path / "kiosk-data" / "sync-state.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def _rounds_after(tmp_path: Path, ms: int, kiosk: subprocess.Popen, rounds: int = 2) -> None:
    """Until the running kiosk's sync thread has saved ``rounds`` rounds that began after ``ms``."""
    seen: set[int] = set()

    def later() -> bool:
        at = _state(tmp_path).get("last_attempt_ms") or 0
        if at > ms:
            seen.add(at)
        return len(seen) >= rounds
    wait_for(later, 90, f"{rounds} sync rounds of the running kiosk", kiosk)


@pytest.mark.slow
def test_a_running_kiosk_moved_to_another_portal_syncs_there(tmp_path):
    """docs/sync.md's move, done while systemd keeps the kiosk up: it syncs with the new portal from its next
    round on, and sync-state.json keeps naming the new portal."""
    old = start_portal(f"sqlite:///{tmp_path / 'old.db'}")
    new = start_portal(f"sqlite:///{tmp_path / 'new.db'}")
    log, kiosk = tmp_path / "kiosk.log", None
    try:
        config = e2e_kiosk_config(tmp_path, old.url, free_port(), SIZE)
        kiosk = start_kiosk(config, old.url, old.issue_code(E2E_KIOSK), log)
        wait_for(lambda: portal_entry_count(f"sqlite:///{tmp_path / 'old.db'}", E2E_KIOSK)[0] > 0, 90,
                 "the first upload to the old portal", kiosk)

        before = int(time.time() * 1000)
        _enroll(config, new.url, new.issue_code(E2E_KIOSK))
        _rounds_after(tmp_path, before, kiosk)
        st = _state(tmp_path)
        assert st["portal_url"] == new.url and st["enrolled_ms"] is not None, (st, log.read_text()[-2000:])
        wait_for(lambda: portal_entry_count(f"sqlite:///{tmp_path / 'new.db'}", E2E_KIOSK)[0] > 0, 60,
                 "the running kiosk's ledger at the new portal", kiosk)
        assert _state(tmp_path)["portal_url"] == new.url
    finally:
        try:
            stop_kiosk(kiosk, log)
        finally:
            old.stop()
            new.stop()


def test_a_kiosk_started_before_it_was_enrolled_syncs_once_enrolled(tmp_path):
    """The installer's order: [portal] url written, the service enabled and started, then `kiosk enroll`. The
    running kiosk reported "not enrolled" each round; after the enrollment it uploads, without a restart."""
    portal = start_portal(f"sqlite:///{tmp_path / 'portal.db'}")
    log, kiosk = tmp_path / "kiosk.log", None
    try:
        config = e2e_kiosk_config(tmp_path, portal.url, free_port(), SIZE)
        with open(log, "w") as out:
            kiosk = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(config)], env=ENV,
                                     stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: "not enrolled" in (_state(tmp_path).get("last_error") or ""), 90,
                 "the running kiosk's first round (not enrolled)", kiosk)

        before = int(time.time() * 1000)
        _enroll(config, portal.url, portal.issue_code(E2E_KIOSK))
        _rounds_after(tmp_path, before, kiosk)
        st = _state(tmp_path)
        assert st["enrolled_ms"] is not None and st["portal_url"] == portal.url, (st, log.read_text()[-2000:])
        wait_for(lambda: portal_entry_count(f"sqlite:///{tmp_path / 'portal.db'}", E2E_KIOSK)[0] > 0, 60,
                 "the running kiosk's ledger at the portal", kiosk)
    finally:
        try:
            stop_kiosk(kiosk, log)
        finally:
            portal.stop()


def test_a_sync_in_flight_when_the_kiosk_moves_does_not_write_the_old_portal_back(tmp_path, rig):
    """The sync thread in this process (a real BackgroundSync with a real uploader) mid-way through a round with
    the old portal while `kiosk enroll` (another process) moves the kiosk: the round's save keeps the new
    enrollment, and the next round goes to the new portal."""
    old = start_portal(f"sqlite:///{tmp_path / 'old.db'}")
    new = start_portal(f"sqlite:///{tmp_path / 'new.db'}")
    path = rig.cfg.data_dir / "sync-state.json"
    try:
        up = rig.uploader(old.url)
        up.enroll(old.issue_code(rig.kiosk_id))
        rig.donate(3)
        bg = BackgroundSync(up, interval_s=0.2)
        real_round = up.sync_round
        moved = []

        def round_during_which_staff_move_the_kiosk() -> None:
            real_round()
            if not moved:  # after the upload to the old portal, before the round's save
                _enroll(rig.config_path, new.url, new.issue_code(rig.kiosk_id))
                moved.append(True)
        up.sync_round = round_during_which_staff_move_the_kiosk  # type: ignore[method-assign]
        bg.start()
        try:
            wait_for(lambda: new.totals()["count"] == 3, 30, "the gifts at the new portal")
        finally:
            bg.stop()
        st = SyncState.load(path)
        assert st.portal_url == new.url and st.enrolled_ms is not None
        assert old.totals()["count"] == 3  # uploaded before the move
    finally:
        old.stop()
        new.stop()

"""`kiosk enroll` beside a running kiosk that was started with no portal at all: it starts syncing, no restart.

A kiosk whose config names no portal (`[portal] url` empty) and that is enrolled nowhere runs as an offline kiosk:
`kiosk run` made no sync thread for it. Staff who then enrolled it from a shell (`kiosk enroll --portal URL --code
CODE`, which writes sync-state.json in the data dir) saw nothing happen: the kiosk never synced until it was
restarted, and nothing on its screen said so (docs/sync.md, "Enrollment", said to restart it). Now the running kiosk
looks at sync-state.json's stamp once a sync interval and, once it names an enrollment, starts its sync thread.

A real `kiosk run` process (headless, simulated reader), a real `kiosk enroll` process, a real portal on loopback
(SQLite); a citizen's tap before the enrollment and one after it both reach the portal, and the kiosk process is
the same one throughout.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sync_helpers import (
    E2E_KIOSK,
    e2e_kiosk_config,
    free_port,
    sim_line,
    stop_kiosk,
    wait_for,
)

from server_sync.embedded import start_portal

SIZE = (320, 180)
ENV = {**os.environ, "PYTHONPATH": os.getcwd(), "SDL_AUDIODRIVER": "dummy"}
TAP = "tap suica idm={idm} balance=5000 hold=2.5"


def _state(tmp_path: Path) -> dict[str, Any]:
    try:
        return json.loads((tmp_path / "kiosk-data" / "sync-state.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def _tap(port: int, idm: str, kiosk: subprocess.Popen) -> None:
    """A citizen's card on the simulated reader (retried until the kiosk's reader socket listens)."""
    def tapped() -> bool:
        try:
            return sim_line(port, TAP.format(idm=idm)).startswith("ok")
        except OSError:  # not listening yet
            return False
    wait_for(tapped, 60, "the kiosk's simulated reader to take a tap", kiosk)


def _donations(config: Path) -> int:
    """Donations in the running kiosk's ledger (read-only: the kiosk is its one writer)."""
    from kiosk.config import load_config

    path = load_config(config).ledger_path
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute("SELECT count(*) FROM entries WHERE type = 'donation'").fetchone()[0])
    except sqlite3.OperationalError:  # the schema not there yet
        return 0
    finally:
        conn.close()


def _count(portal: Any) -> int:
    return int(portal.totals()["count"])


def test_a_kiosk_started_with_no_portal_syncs_once_enrolled_beside_it(tmp_path: Path) -> None:
    portal = start_portal(f"sqlite:///{tmp_path / 'portal.db'}")
    log, kiosk = tmp_path / "kiosk.log", None
    sim_port = free_port()
    try:
        config = e2e_kiosk_config(tmp_path, "", sim_port, SIZE)  # no [portal] url: an offline kiosk
        assert not (tmp_path / "kiosk-data" / "sync-state.json").exists()  # and enrolled nowhere
        with open(log, "w") as out:
            kiosk = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(config)], env=ENV,
                                     stdout=out, stderr=subprocess.STDOUT)
        # A gift while the kiosk is offline, kept in its ledger: the kiosk is up, its main loop running (the
        # enrollment is made after the kiosk's start, as staff make it beside a running kiosk).
        _tap(sim_port, "0123456789abcdef", kiosk)
        wait_for(lambda: _donations(config) == 1, 60, "the offline kiosk's gift in its ledger", kiosk)
        assert not (tmp_path / "kiosk-data" / "sync-state.json").exists()

        r = subprocess.run([sys.executable, "-m", "kiosk", "enroll", "--config", str(config), "--portal", portal.url,
                            "--code", portal.issue_code(E2E_KIOSK)], capture_output=True, text=True, env=ENV,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        # Within a few sync intervals (5 s in this config), without a restart: the gift taken offline is at the portal.
        wait_for(lambda: _count(portal) >= 1, 60, "the gift taken before the enrollment at the portal", kiosk)
        # The round that uploaded it saves its state at its end: a moment after the portal counts the gift.
        st = wait_for(lambda: (s := _state(tmp_path)).get("last_success_ms") and s, 30,
                      "the running kiosk's sync thread to save a successful round", kiosk)
        assert st.get("portal_url") == portal.url and st.get("enrolled_ms") is not None, st

        # And a gift after it: the sync thread is the running kiosk's own, nudged by the donation as usual.
        _tap(sim_port, "fedcba9876543210", kiosk)
        wait_for(lambda: _count(portal) >= 2, 60, "the gift taken after the enrollment at the portal", kiosk)
        assert kiosk.poll() is None  # the same process throughout: never restarted
        assert _count(portal) == 2 and _donations(config) == 2
    finally:
        try:
            stop_kiosk(kiosk, log)
        finally:
            portal.stop()


@pytest.mark.slow
def test_a_kiosk_with_no_portal_that_nobody_enrolls_stays_offline_and_sends_nothing(tmp_path: Path) -> None:
    """The watch is only a look at a file: a kiosk nobody enrolls opens no connection to anything, and stops
    cleanly (the watch's thread ends with the kiosk)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    log, kiosk = tmp_path / "kiosk.log", None
    try:
        port = free_port()
        config = e2e_kiosk_config(tmp_path, "", port, SIZE)
        # A portal address the kiosk does not know of (not in its config, not enrolled): nothing may reach it.
        with open(log, "w") as out:
            kiosk = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(config)], env=ENV,
                                     stdout=out, stderr=subprocess.STDOUT)
        _tap(port, "0123456789abcdef", kiosk)
        wait_for(lambda: _donations(config) == 1, 60, "the offline kiosk's gift in its ledger", kiosk)
        # sync-state.json changes (a stamp the watch sees) without naming an enrollment: still offline.
        (tmp_path / "kiosk-data" / "sync-state.json").write_text(json.dumps({"portal_url": url}), "utf-8")
        for _ in range(150):  # 15 s: three sync intervals of 5 s
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.close()
            raise AssertionError("the kiosk talked to a portal it is not enrolled with")
        assert kiosk.poll() is None
        assert _state(tmp_path) == {"portal_url": url}  # not written over by a sync thread
    finally:
        try:
            stop_kiosk(kiosk, log)
        finally:
            listener.close()

"""The portal under faults: a portal process SIGKILLed in the middle of ingest, again and again, and two
portal worker processes behind one address taking the same kiosk's retried batches at once.

Real processes (``python -m server_sync.portal_cli serve``) on loopback, on SQLite and on PostgreSQL.
After every kill the portal is started again on the same address and the kiosk's uploader carries on
(it retries with backoff; the idempotency keys and the portal's high-water mark make each batch count
once). The portal's answer to each batch is an acknowledgement: the kiosk stores it in sync-state.json
and never sends those entries again, so the portal must never go back below it.

PORTAL_KILLS sets the number of kills per database (default 50; more, up to three times as many, until a
fifth of them landed during an upload).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from fault_proxy import FaultProxy
from sync_helpers import portal_entry_count

from server_sync.db import make_engine
from server_sync.enroll import issue_code
from tests.loopback import free_port

KILLS = int(os.environ.get("PORTAL_KILLS", "50"))


# ``kiosk-portal serve`` (server_sync.portal_cli.main) in a process that has loaded its code and waits for a
# line on stdin: after a kill the next portal is up in a fraction of a second, as a service manager's
# restart of a warm machine would be, instead of a second of imports per kill.
_WARM = (
    "import sys\n"
    "import server_sync.portal_cli as cli, server_sync.app, uvicorn, sqlalchemy\n"
    "try:\n    import psycopg\nexcept ImportError:\n    pass\n"
    "print('loaded', flush=True)\n"
    "sys.stdin.readline()\n"
    "sys.exit(cli.main(sys.argv[1:]))\n"
)


class PortalProcess:
    """The portal as a real process on a fixed loopback port; :meth:`kill` is SIGKILL, :meth:`start` again
    brings up the next one (already loaded) on the same address."""

    def __init__(self, db_url: str, port: int, workers: int = 1, log: Path | None = None):
        self.db_url, self.port, self.workers = db_url, port, workers
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.proc: subprocess.Popen | None = None
        self._spare = self._spawn()

    def _spawn(self) -> subprocess.Popen:
        err = open(self.log, "ab") if self.log else subprocess.DEVNULL
        try:
            return subprocess.Popen(
                [sys.executable, "-c", _WARM, "serve", "--db", self.db_url, "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", str(self.workers), "--log-level", "critical"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        finally:
            if self.log:
                err.close()

    def start(self, timeout_s: float = 60.0) -> PortalProcess:
        proc, self._spare = self._spare, None
        assert proc.stdout is not None and proc.stdin is not None
        if proc.stdout.readline().strip() != b"loaded":
            raise RuntimeError(f"portal process did not load (see {self.log})")
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        self.proc = proc
        self._spare = self._spawn()  # loads while this one serves
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"portal exited with {proc.returncode} (see {self.log})")
            try:
                if requests.get(self.url + "/api/v1/totals", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.02)
        raise RuntimeError("portal did not start")

    @staticmethod
    def _killpg(proc: subprocess.Popen | None, sig: int) -> None:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def kill(self) -> None:
        """SIGKILL the whole process group (the server, and its workers when there are several)."""
        self._killpg(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        self._killpg(self.proc, signal.SIGTERM)
        self._killpg(self._spare, signal.SIGKILL)


def _totals(url: str) -> dict:
    return requests.get(url + "/api/v1/totals", timeout=10).json()


@pytest.mark.slow
def test_portal_killed_mid_ingest_again_and_again_loses_no_acknowledged_batch(rig, db_url, tmp_path):
    eng = make_engine(db_url)
    from server_sync.db import create_schema

    create_schema(eng)
    code = issue_code(eng, rig.kiosk_id)
    eng.dispose()
    portal = PortalProcess(db_url, free_port(), log=tmp_path / "portal.log").start()
    rng = random.Random(14)
    up = rig.uploader(portal.url, batch_entries=4, backoff_base=0.02, backoff_cap=0.3)
    up.enroll(code)
    acknowledged = 0  # the highest seq any answer of the portal acknowledged
    kills_mid_batch = 0
    try:
        # KILLS rounds, and more (up to three times as many) until a fifth of the kills have landed during an
        # upload: on a busy machine an upload can finish before its kill more often than the delays suggest.
        k = 0
        while k < KILLS or (kills_mid_batch < KILLS // 5 and k < 3 * KILLS):
            k += 1
            rig.donate(rng.randint(3, 8))
            result: dict = {}

            def sync(out: dict = result) -> None:
                out["state"] = up.sync_once(max_attempts=200)

            t = threading.Thread(target=sync)
            t.start()
            time.sleep(rng.uniform(0.0, 0.15))
            in_flight = t.is_alive()
            portal.kill()
            kills_mid_batch += in_flight
            # The kiosk saw an answer for everything up to here: the portal may never hold less.
            seen = up.state.accepted_through_seq
            portal.start()
            t.join(120)
            assert not t.is_alive()
            st = result["state"]
            assert st.ok, (k, st.last_error)
            assert st.accepted_through_seq >= max(seen, acknowledged)
            acknowledged = st.accepted_through_seq
            hb = up.heartbeat()
            assert hb["accepted_through_seq"] == rig.ledger.size
        assert _totals(portal.url) == rig.expected_totals()
    finally:
        up.close()
        portal.stop()
    rows, distinct = portal_entry_count(db_url, rig.kiosk_id)
    assert rows == distinct == rig.ledger.size  # nothing stored twice, nothing missing
    assert kills_mid_batch >= KILLS // 5, kills_mid_batch  # the kills did land during uploads


@pytest.mark.slow
def test_two_workers_take_the_same_kiosks_retried_batches_at_once(rig, pg_db_url, tmp_path):
    # PostgreSQL only: `kiosk-portal serve --workers` refuses SQLite by design; one process on SQLite is above.
    db_url = pg_db_url
    eng = make_engine(db_url)
    from server_sync.db import create_schema

    create_schema(eng)
    code = issue_code(eng, rig.kiosk_id)
    eng.dispose()
    portal = PortalProcess(db_url, free_port(), workers=2, log=tmp_path / "portal.log").start()
    try:
        rig.uploader(portal.url).enroll(code)
        # Every request is sent twice at once (and some dropped after the portal committed, so they are
        # retried): the two workers receive the same batches concurrently.
        with FaultProxy(portal.url, rate=0.8, seed=3, faults=("duplicate", "drop_after", "delay")) as proxy:
            from kiosk.sync.uploader import SyncState

            state_path = rig.cfg.data_dir / "sync-state.json"
            st = SyncState.load(state_path)
            st.portal_url = proxy.url  # enrolled with the portal; from now on talking to it through the proxy
            st.save(state_path)
            for _ in range(6):
                rig.donate(15)
                uploaders = [rig.uploader(proxy.url, batch_entries=5, backoff_base=0.02, backoff_cap=0.2)
                             for _ in range(3)]  # three senders of the same ledger, like a retry storm
                states: list = []
                threads = [threading.Thread(target=lambda u=u, out=states: out.append(u.sync_once(max_attempts=100)))
                           for u in uploaders]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(120)
                for u in uploaders:
                    u.close()
                assert all(s.ok for s in states), [s.last_error for s in states]
            assert proxy.counts["duplicate"] > 0 and proxy.counts["drop_after"] > 0
        assert _totals(portal.url) == rig.expected_totals()
    finally:
        portal.stop()
    rows, distinct = portal_entry_count(db_url, rig.kiosk_id)
    assert rows == distinct == rig.ledger.size

"""Upgrading a portal while a process of the older release still writes (a rolling upgrade, or an operator
who runs a new ``kiosk-portal`` command before restarting the service): the public totals must still count
every gift the portal holds.

``old_portal_2f6feff.sql`` is the SQLite portal database that release 2f6feff (2026-12-03) wrote, dumped with
``sqlite3 .dump``: ``kiosk-portal staff-add``, ``catalog-import``, ``enroll-code``, ``serve``; a kiosk of the same
release enrolled, synced 27 entries (8 gifts), took a pushed config (seq 28) and, later, 3 more gifts (seqs
29-39), all ingested by that release's portal. The older portal kept no ``portal_project_totals``.

The test replays that history against the current code at the moment an operator would: the database as it
was before the last batch; the new release's ``kiosk-portal kiosks`` (any command runs ``create_schema``);
then the older release's ingest of the last batch (its rows exactly as that release wrote them); then the new
``kiosk-portal serve``, whose public totals are read over loopback HTTP.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.loopback import free_port

DUMP = Path(__file__).with_name("old_portal_2f6feff.sql")
LAST_BEFORE = 27  # what the old portal held when the new release's first command ran
_ROW = re.compile(r"^INSERT INTO \"portal_entries\" VALUES\('[^']*',(\d+),")


def _split_dump() -> tuple[str, list[str]]:
    before: list[str] = []
    later: list[str] = []
    for line in DUMP.read_text().splitlines():
        m = _ROW.match(line)
        (later if m and int(m.group(1)) > LAST_BEFORE else before).append(line)
    return "\n".join(before), later


def _portal_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server_sync.portal_cli", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def _settled(db: Path) -> dict[str, list[int]]:
    with sqlite3.connect(db) as c:
        rows = c.execute("SELECT project, count(*), sum(amount_yen) FROM portal_entries WHERE type = 'donation'"
                         " AND NOT voided AND quarantine IS NULL GROUP BY project").fetchall()
    return {p: [n, y] for p, n, y in rows}


def test_gifts_an_older_process_stored_after_the_first_new_command_are_counted(tmp_path: Path) -> None:
    db = tmp_path / "portal.db"
    url = f"sqlite:///{db}"
    env = {**os.environ, "KIOSK_PORTAL_SESSION_SECRET": "s" * 40}
    script, later = _split_dump()
    with sqlite3.connect(db) as c:
        c.executescript(script)
        # The older release's INSERT names its columns (SQLAlchemy): the dump's positional rows, named.
        cols = ", ".join(r[1] for r in c.execute("PRAGMA table_info(portal_entries)"))
    later = [line.replace('INSERT INTO "portal_entries" VALUES(', f'INSERT INTO "portal_entries"({cols}) VALUES(', 1)
             for line in later]
    assert later, "the dump holds the last batch"

    # The operator installs the new release and looks at the fleet before restarting the service.
    out = _portal_cli("kiosks", "--db", url, env=env)
    assert out.returncode == 0, out.stderr

    # The older release's portal, still serving, stores the kiosk's next batch (3 gifts, ¥1,600).
    with sqlite3.connect(db) as c:
        c.executescript("\n".join(later))
    expected = _settled(db)
    assert sum(n for n, _ in expected.values()) == 11 and sum(y for _, y in expected.values()) == 5400

    # The service restarts on the new release.
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "server_sync.portal_cli", "serve", "--db", url, "--host",
                             "127.0.0.1", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/totals", timeout=5) as r:
                    got = json.load(r)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "the portal did not answer"
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    shown = {p["id"]: [p["count"], p["total_yen"]] for p in got["projects"]}
    assert (got["count"], got["total_yen"]) == (11, 5400), got
    assert shown == expected
    check = _portal_cli("totals", "--db", url, "--check", env=env)
    assert check.returncode == 0, check.stdout + check.stderr

"""A portal of the new release and a process of an older one, both writing to one database (a rolling upgrade:
several hosts or workers on one PostgreSQL, docs/sync.md; or the service not yet restarted after a new
``kiosk-portal`` command), on SQLite and PostgreSQL: the kept public totals (server_sync/totals.py) still count
every gift the portal holds, and ``totals.check`` finds nothing after each step.

The new release is a real portal over loopback HTTP, fed by a kiosk's real uploader. The older process is the
release of ``old_portal_2f6feff.sql``, which kept no totals: its batch is stored here as that release stored it,
in one transaction under the kiosk's row lock, its ``portal_entries`` rows with exactly that release's columns
(the dump's ``CREATE TABLE``), its voids marked, its tree nodes and the kiosk row's marks moved, and nothing
counted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import update

from server_sync import totals, tree
from server_sync.configstore import publish
from server_sync.db import create_schema, entries, kiosks, lock_kiosk, make_engine, writing
from server_sync.embedded import start_portal
from server_sync.ingest import entry_row, now_ms
from tests.sync.sync_helpers import PROJECTS, Rig, enrolled, make_rig

DUMP = Path(__file__).with_name("old_portal_2f6feff.sql")


def _old_columns() -> list[str]:
    """The columns of portal_entries as release 2f6feff made them (and named in its INSERT)."""
    table = re.search(r"CREATE TABLE portal_entries \((.*?)\n\);", DUMP.read_text(), re.S)
    assert table is not None
    return [m.group(1) for m in re.finditer(r"^\s*(\w+) [A-Z]", table.group(1), re.M) if m.group(1) != "PRIMARY"]


def _old_release_stores(db_url: str, rig: Rig, first: int, last: int) -> None:
    """The older release's ingest of ``rig``'s entries first..last (verified, as that release verified them)."""
    cols = _old_columns()
    assert "business_date" not in cols and "quarantine" in cols  # the dump's release, not this one
    kid = rig.kiosk_id
    got = list(rig.ledger.iter_entries(first, last))
    received = now_ms()
    rows = []
    for e in got:
        row = entry_row(kid, e.seq, e.body, e.signature, e.entry_hash, e.obj, e.obj["wall_ms"],
                        bool(e.obj["clock_synced"]), received)
        rows.append({c: row[c] for c in cols})
    voids = [e.data["voids_seq"] for e in got if e.type == "void"]
    eng = make_engine(db_url)
    try:
        with writing(eng) as conn:
            cur = lock_kiosk(conn, kid)
            assert cur["size"] == first - 1
            conn.execute(entries.insert(), rows)  # an INSERT that names the older release's columns only
            tree.extend(conn, kid, first - 1, [e.entry_hash for e in got], cur["tree_size"])
            if voids:
                conn.execute(update(entries).where(entries.c.kiosk_id == kid, entries.c.seq.in_(voids))
                             .values(voided=True))
            conn.execute(update(kiosks).where(kiosks.c.id == kid).values(
                size=last, tip=got[-1].entry_hash, last_seen_ms=received, tree_size=last))
    finally:
        eng.dispose()


def _public(url: str) -> dict[str, Any]:
    got: dict[str, Any] = requests.get(url + "/api/v1/totals", timeout=10).json()
    return got


def _counted(db_url: str) -> list[str]:
    eng = make_engine(db_url)
    try:
        return totals.check(eng)
    finally:
        eng.dispose()


def test_a_new_process_counts_what_an_older_one_stored_between_its_batches(db_url: str, tmp_path: Path) -> None:
    portal = start_portal(db_url)
    rig = make_rig(tmp_path)
    try:
        publish(portal.app.state.engine, {"projects": PROJECTS})
        gifts = rig.donate(4)
        rig.ledger.checkpoint()
        up = enrolled(rig, portal)
        assert up.sync_once().ok  # the new release stores and counts them
        assert _counted(db_url) == []
        held = rig.ledger.size

        # The older process takes the kiosk's next batch: three gifts and a void of one the new release counted.
        rig.donate(3)
        rig.ledger.void(gifts[1].seq, "refunded at the desk")
        rig.ledger.checkpoint()
        _old_release_stores(db_url, rig, held + 1, rig.ledger.size)
        assert _counted(db_url) != []  # what the kept totals miss until a new process counts the kiosk again

        # The kiosk's next batch lands on the new release, which finds the kept totals behind and counts again.
        more = rig.donate(2)
        rig.ledger.void(more[0].seq, "wrong amount")
        rig.ledger.checkpoint()
        assert up.sync_once().ok
        assert _counted(db_url) == []
        assert _public(portal.url) == rig.expected_totals()

        # And the batch after that one is added again, as every batch of a kiosk only new processes serve.
        rig.donate(2)
        rig.ledger.checkpoint()
        assert up.sync_once().ok
        assert _counted(db_url) == []
        assert _public(portal.url) == rig.expected_totals()
        assert _public(portal.url)["count"] == 4 - 1 + 3 + 2 - 1 + 2
    finally:
        portal.stop()
        rig.ledger.close(checkpoint=False)


def test_a_start_counts_what_an_older_process_stored_of_a_kiosk_that_synced_no_more(db_url: str,
                                                                                     tmp_path: Path) -> None:
    portal = start_portal(db_url)
    rig = make_rig(tmp_path)
    quiet = make_rig(tmp_path, kiosk_id="test-kiosk-2")
    try:
        publish(portal.app.state.engine, {"projects": PROJECTS})
        for r in (rig, quiet):
            r.donate(3)
            r.ledger.checkpoint()
            assert enrolled(r, portal).sync_once().ok
        held = rig.ledger.size
        # The older process stores the kiosk's last batch of the day; the kiosk then sends nothing new.
        rig.donate(2)
        rig.ledger.checkpoint()
        _old_release_stores(db_url, rig, held + 1, rig.ledger.size)
        assert _counted(db_url) != []
    finally:
        portal.stop()
    # The new release starts again (every `kiosk-portal` command and `serve` runs create_schema).
    eng = make_engine(db_url)
    try:
        create_schema(eng)
        assert totals.check(eng) == []
        create_schema(eng)  # a later start finds nothing behind
        assert totals.check(eng) == []
    finally:
        eng.dispose()
    portal = start_portal(db_url)
    try:
        want = [rig.expected_totals(), quiet.expected_totals()]
        got = _public(portal.url)
        assert (got["count"], got["total_yen"]) == (sum(w["count"] for w in want), sum(w["total_yen"] for w in want))
    finally:
        portal.stop()
        rig.ledger.close(checkpoint=False)
        quiet.ledger.close(checkpoint=False)
    assert _counted(db_url) == []

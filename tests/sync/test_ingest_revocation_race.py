"""A kiosk's key revoked while a batch of that kiosk is being ingested (SQLite and PostgreSQL).

An administrator revokes a stolen kiosk's key from the first seq the portal does not hold, while the thief's
upload is in flight: its key events read, its entries being verified. The revocation quarantines what the portal
holds; the batch must then be judged again under the lock both take, so that none of the revoked key's entries
is counted, whichever commits first (docs/sync.md, "Revoking a key"). The upload is held right after it read
the key events (tests/sync/races.py), over real HTTP on loopback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from races import overlap
from sqlalchemy import select
from sync_helpers import enrolled, make_rig

from server_sync import catalog, kiosk_keys, totals
from server_sync.db import entries, make_engine
from server_sync.embedded import start_portal

CATALOG = {
    "groups": [{"id": "group-a", "name": "Aの会", "contact": "a@example.jp"}],
    "projects": [{"id": "kodomo", "group_id": "group-a", "title": "こども食堂", "area": "children", "goal_yen": 5000},
                 {"id": "midori", "group_id": "group-a", "title": "雑木林を守ろう", "area": "green", "goal_yen": 8000},
                 {"id": "ongaku", "group_id": "group-a", "title": "音楽祭", "area": "culture", "goal_yen": 3000}],
}


@pytest.fixture
def op(db_url: str, tmp_path: Path):
    handle = start_portal(db_url, media_size=(160, 90), spool_dir=str(tmp_path / "spool"))
    catalog.import_catalog(handle.app.state.engine, CATALOG)
    yield handle
    handle.stop()
    eng = make_engine(db_url)
    try:
        assert totals.check(eng) == []  # the kept totals still equal the entries they count
    finally:
        eng.dispose()


def test_a_key_revoked_while_its_batch_is_ingested_gets_none_of_that_batch_counted(op, tmp_path):
    engine = op.app.state.engine
    rig = make_rig(tmp_path, "lobby-kiosk-1")
    try:
        rig.donate(3)
        up = enrolled(rig, op)
        assert up.sync_once().ok
        synced = rig.ledger.size
        honest = requests.get(op.url + "/api/v1/totals", timeout=10).json()
        rig.donate(6)  # the thief's gifts, signed by the stolen key
        rig.ledger.checkpoint()

        # The upload reads the kiosk's key events (kiosk_keys.load), then verifies and stores; meanwhile the
        # administrator revokes the key from the first seq the portal does not hold.
        overlap(engine, r"FROM portal_key_events.*ORDER BY portal_key_events\.id",
                lambda: up.sync_once(max_attempts=1),
                lambda: kiosk_keys.revoke(engine, rig.kiosk_id, synced + 1, by="admin", reason="stolen"))

        with engine.connect() as conn:
            rows = conn.execute(select(entries.c.seq, entries.c.quarantine).where(
                entries.c.kiosk_id == rig.kiosk_id, entries.c.seq > synced)).all()
        counted_after = [seq for seq, q in rows if q is None]
        got = requests.get(op.url + "/api/v1/totals", timeout=10).json()
        assert counted_after == [] and got["total_yen"] == honest["total_yen"], (
            f"entries {counted_after} signed by the key revoked from seq={synced + 1} are stored unquarantined; "
            f"the public total went from ¥{honest['total_yen']:,} to ¥{got['total_yen']:,}")
    finally:
        rig.ledger.close(checkpoint=False)

"""Two portal workers on one database take turns with one kiosk's uploads (as `kiosk-portal serve --workers 2`
does: each sync lands on whichever worker accepts the connection), on SQLite and PostgreSQL.

A worker whose cached verifier is behind replays only the entries the other worker stored since, not the
kiosk's whole history (docs/sync.md, "Resuming verification"), and ends in the very state a replay from
the first entry gives, across voids, a re-key and checkpoints.
"""

from __future__ import annotations

import pytest
from sync_helpers import PROJECTS, chain_figures, enrolled, sync_to

from server_sync.configstore import publish
from server_sync.db import kiosks
from server_sync.embedded import start_portal
from server_sync.ingest import Ingestor


@pytest.fixture
def other_portal(db_url: str, portal):  # noqa: ANN001, ANN201 - after `portal`, which made the schema
    handle = start_portal(db_url)
    yield handle
    handle.stop()




def _size(portal) -> int:  # noqa: ANN001
    with portal.app.state.engine.connect() as conn:
        return conn.execute(kiosks.select()).mappings().one()["size"]


def test_a_worker_behind_replays_only_what_the_other_stored(portal, other_portal, rig, applied):  # noqa: ANN001
    publish(portal.app.state.engine, {"projects": PROJECTS})
    gifts = rig.donate(6)
    rig.ledger.checkpoint()
    enrolled(rig, portal).close()
    sync_to(rig, portal)  # worker A: the first batches
    a_seen = _size(portal)
    rig.ledger.void(gifts[1].seq, "refunded at the desk")
    rig.donate(3)
    rig.ledger.checkpoint()
    sync_to(rig, other_portal)  # worker B: a cold cache, so the whole chain, then what it was sent
    b_seen = _size(portal)
    assert b_seen > a_seen
    # A re-key in the part worker A has not seen.
    rig.rekey()
    rig.donate(2)
    rig.ledger.checkpoint()
    sync_to(rig, other_portal)
    b_seen = _size(portal)
    more = rig.donate(2)
    rig.ledger.void(more[0].seq, "wrong amount")
    rig.ledger.checkpoint()
    applied.clear()
    sync_to(rig, portal)  # worker A again: behind by what B stored
    end = _size(portal)
    assert end == rig.ledger.size
    # What B stored since A's last batch, replayed once, then the new entries verified once: nothing older.
    assert applied == list(range(a_seen + 1, end + 1)), applied

    ing_a: Ingestor = portal.app.state.ingestor
    cached = ing_a._verifiers[rig.kiosk_id]
    fresh = Ingestor(portal.app.state.engine)  # a third worker, replaying from the first entry
    with portal.app.state.engine.connect() as conn:
        k = conn.execute(kiosks.select()).mappings().one()
    rebuilt = fresh._verifier(rig.kiosk_id, cached.expected_pub, k)
    assert chain_figures(cached.state) == chain_figures(rebuilt.state)
    assert cached.pub is not None and rebuilt.pub is not None
    assert cached.pub.public_bytes_raw() == rebuilt.pub.public_bytes_raw() == rig.ledger.public_key_raw
    assert [p.public_bytes_raw() for p in cached.keys] == [p.public_bytes_raw() for p in rebuilt.keys]
    # And both workers go on taking the kiosk's uploads.
    rig.donate(1)
    rig.ledger.checkpoint()
    sync_to(rig, other_portal)
    rig.donate(1)
    rig.ledger.checkpoint()
    sync_to(rig, portal)
    assert _size(portal) == rig.ledger.size

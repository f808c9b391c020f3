"""Two portal workers on one database take turns with one kiosk's uploads (as `kiosk-portal serve --workers 2`
does: each sync lands on whichever worker accepts the connection), on SQLite and PostgreSQL.

A worker whose cached verifier is behind replays only the entries the other worker stored since, not the
kiosk's whole history (docs/sync.md, "Resuming verification"), and ends in the very state a replay from
the first entry gives, across voids, a re-key and checkpoints.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sync_helpers import PROJECTS, enrolled

from kiosk.cli import main as kiosk_main
from kiosk.ledger import state as state_mod
from kiosk.ops.local_files import open_ledger
from server_sync.configstore import publish
from server_sync.db import kiosks
from server_sync.embedded import start_portal
from server_sync.ingest import Ingestor


@pytest.fixture
def other_portal(db_url: str, portal):  # noqa: ANN001, ANN201 - after `portal`, which made the schema
    handle = start_portal(db_url)
    yield handle
    handle.stop()


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The seqs the portals' LedgerState.apply replays or verifies, in order (their requests run in worker
    threads; the kiosk's own ledger, in this thread, is left out)."""
    seen: list[int] = []
    real = state_mod.LedgerState.apply

    def apply(self: state_mod.LedgerState, seq: int, *a: Any, **kw: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            seen.append(seq)
        real(self, seq, *a, **kw)

    monkeypatch.setattr(state_mod.LedgerState, "apply", apply)
    return seen


def _figures(st: state_mod.LedgerState) -> dict[str, Any]:
    """Everything a verifier's state carries into the next batch."""
    keep = ("size", "tip", "boot", "sigs", "project_totals", "kiosk_total", "intents", "idem", "resolution",
            "donations", "voided", "cp_size", "cp_note", "cp_root", "cp_mono", "genesis", "kiosk_id", "key_id",
            "public_key", "key_changes")
    return {k: getattr(st, k) for k in keep} | {"tree": (st.tree.size, st.tree.root())}


def _size(portal) -> int:  # noqa: ANN001
    with portal.app.state.engine.connect() as conn:
        return conn.execute(kiosks.select()).mappings().one()["size"]


def _sync(rig, portal) -> None:  # noqa: ANN001
    """One sync of the kiosk, to ``portal``'s worker: both stand for one address behind a proxy."""
    up = rig.uploader()
    up.state.portal_url = portal.url
    try:
        assert up.sync_once().ok
    finally:
        up.close()


def test_a_worker_behind_replays_only_what_the_other_stored(portal, other_portal, rig, applied):  # noqa: ANN001
    publish(portal.app.state.engine, {"projects": PROJECTS})
    gifts = rig.donate(6)
    rig.ledger.checkpoint()
    enrolled(rig, portal).close()
    _sync(rig, portal)  # worker A: the first batches
    a_seen = _size(portal)
    rig.ledger.void(gifts[1].seq, "refunded at the desk")
    rig.donate(3)
    rig.ledger.checkpoint()
    _sync(rig, other_portal)  # worker B: a cold cache, so the whole chain, then what it was sent
    b_seen = _size(portal)
    assert b_seen > a_seen
    # A re-key in the part worker A has not seen.
    assert kiosk_main(["rekey", "--config", str(rig.config_path)]) == 0
    rig.ledger.close(checkpoint=False)
    rig.ledger = open_ledger(rig.cfg, clock=rig.clock)
    rig.donate(2)
    rig.ledger.checkpoint()
    _sync(rig, other_portal)
    b_seen = _size(portal)
    more = rig.donate(2)
    rig.ledger.void(more[0].seq, "wrong amount")
    rig.ledger.checkpoint()
    applied.clear()
    _sync(rig, portal)  # worker A again: behind by what B stored
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
    assert _figures(cached.state) == _figures(rebuilt.state)
    assert cached.pub is not None and rebuilt.pub is not None
    assert cached.pub.public_bytes_raw() == rebuilt.pub.public_bytes_raw() == rig.ledger.public_key_raw
    assert [p.public_bytes_raw() for p in cached.keys] == [p.public_bytes_raw() for p in rebuilt.keys]
    # And both workers go on taking the kiosk's uploads.
    rig.donate(1)
    rig.ledger.checkpoint()
    _sync(rig, other_portal)
    rig.donate(1)
    rig.ledger.checkpoint()
    _sync(rig, portal)
    assert _size(portal) == rig.ledger.size

"""A portal worker that just started verifies a kiosk's next batch from the kiosk's saved verifier state
(server_sync/verifier_states.py), replaying only the entries stored after it, on SQLite and PostgreSQL; and
a saved state that does not stand on the stored chain is never used.

Real portals on real HTTP, a real kiosk ledger and uploader; ``LedgerState.apply`` is watched (not replaced)
to see which entries each portal replays.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update
from sync_helpers import PROJECTS, chain_figures, enrolled, make_rig, sync_to

from server_sync import verifier_states
from server_sync.app import options_from_env
from server_sync.configstore import publish
from server_sync.db import kiosks
from server_sync.db import verifier_states as table
from server_sync.embedded import start_portal
from server_sync.ingest import Ingestor

EVERY = 20  # entries between saves here (the portal's default is verifier_states.EVERY)




def _saved(portal) -> tuple[int, bytes] | None:  # noqa: ANN001
    with portal.app.state.engine.connect() as conn:
        row = conn.execute(select(table.c.size, table.c.tip)).first()
    return None if row is None else (int(row[0]), bytes(row[1]))


def _kiosk_row(portal) -> Any:  # noqa: ANN001
    with portal.app.state.engine.connect() as conn:
        return conn.execute(kiosks.select()).mappings().one()


def _history(rig, portal) -> int:  # noqa: ANN001
    """Gifts, a void and a re-key, stored through ``portal``, whose worker saves its state every EVERY entries;
    then a few gifts more, not enough for another save. Returns the size of the saved state."""
    publish(portal.app.state.engine, {"projects": PROJECTS})
    portal.app.state.ingestor.state_every = EVERY
    gifts = rig.donate(9)
    rig.ledger.void(gifts[2].seq, "refunded at the desk")
    rig.ledger.checkpoint()
    enrolled(rig, portal).close()
    sync_to(rig, portal)
    assert _saved(portal) == (rig.ledger.size, rig.ledger.tip)  # 20 entries or more: saved
    rig.rekey()
    rig.donate(8)
    rig.ledger.checkpoint()
    sync_to(rig, portal)
    saved = _saved(portal)
    assert saved == (rig.ledger.size, rig.ledger.tip)  # grown by EVERY: saved again, over the first
    rig.donate(2)
    rig.ledger.checkpoint()
    sync_to(rig, portal)
    assert _saved(portal) == saved and rig.ledger.size - saved[0] < EVERY  # not yet
    return saved[0]


def test_a_worker_that_just_started_replays_only_what_came_after_the_saved_state(db_url, portal, rig, applied):  # noqa: ANN001
    at = _history(rig, portal)
    end = rig.ledger.size
    cached = portal.app.state.ingestor._verifiers[rig.kiosk_id]
    # A second worker starts (on the same database, as behind a proxy) and takes the kiosk's next sync.
    other = start_portal(db_url)
    try:
        rig.donate(1)
        rig.ledger.checkpoint()
        applied.clear()
        sync_to(rig, other)
        assert applied == list(range(at + 1, rig.ledger.size + 1)), applied  # the rest of the chain, then the new
        started = other.app.state.ingestor._verifiers[rig.kiosk_id]
    finally:
        other.stop()
    assert end < rig.ledger.size
    # Its state is the one a replay from the first entry gives, keys included (the re-key is in the saved part).
    full = Ingestor(portal.app.state.engine)
    with portal.app.state.engine.begin() as conn:
        conn.execute(table.delete())
    rebuilt = full._verifier(rig.kiosk_id, cached.expected_pub, _kiosk_row(portal))
    assert chain_figures(started.state) == chain_figures(rebuilt.state)
    assert started.pub is not None and started.pub.public_bytes_raw() == rig.ledger.public_key_raw
    assert [p.public_bytes_raw() for p in started.keys] == [p.public_bytes_raw() for p in rebuilt.keys]
    assert len(started.keys) == 2
    # And the first worker goes on taking the kiosk's uploads after the second stored one.
    rig.donate(1)
    rig.ledger.checkpoint()
    sync_to(rig, portal)
    assert _kiosk_row(portal)["size"] == rig.ledger.size


@pytest.mark.parametrize("spoil", ["tip", "state", "format", "ahead"])
def test_a_saved_state_that_does_not_stand_on_the_chain_is_not_used(db_url, portal, rig, applied, spoil):  # noqa: ANN001
    """A tip that is not the stored entry's, a blob that does not decode, a format this software does not read,
    a state past the kiosk's high-water mark (a database restored from an older backup): the worker replays
    from the first entry, takes the batch, and saves a good state over the bad one."""
    at = _history(rig, portal)
    with portal.app.state.engine.begin() as conn:
        saved = verifier_states.load(conn, rig.kiosk_id)
        assert saved is not None and saved.size == at
        column, value = {"tip": ("tip", bytes(32)), "state": ("state", b'{"size": 1}'),
                         "format": ("format", saved.format + 1),
                         "ahead": ("size", _kiosk_row(portal)["size"] + 5)}[spoil]
        conn.execute(update(table).values({column: value}))
    other = start_portal(db_url)
    try:
        other.app.state.ingestor.state_every = EVERY
        rig.donate(1)
        rig.ledger.checkpoint()
        applied.clear()
        sync_to(rig, other)
        assert applied == list(range(1, rig.ledger.size + 1)), applied  # from the first entry
    finally:
        other.stop()
    assert _kiosk_row(portal)["size"] == rig.ledger.size
    assert _saved(portal) == (rig.ledger.size, rig.ledger.tip)  # replaced by the rebuilt state
    with portal.app.state.engine.connect() as conn:
        good = verifier_states.restore(verifier_states.load(conn, rig.kiosk_id))  # type: ignore[arg-type]
    assert good is not None and good.size == rig.ledger.size


def test_when_a_state_is_due():
    """Every EVERY entries while the chain is short, then a quarter of the saved size: encoding grows with the
    state, so the saves' share of ingest stays small, and what a new worker replays stays under a fifth."""
    due = verifier_states.due
    assert not due(4_999, 0) and due(5_000, 0)
    assert not due(9_999, 5_000) and due(10_000, 5_000)
    assert not due(124_999, 100_000) and due(125_000, 100_000)
    assert due(30, 0, every=20) and not due(39, 20, every=20)


def test_a_worker_keeps_the_verifiers_of_at_most_its_cache_of_entries(tmp_path, portal, applied):  # noqa: ANN001
    """Three kiosks sync in turn to a worker whose cache holds fewer entries than their three chains: it
    forgets the least recently used and keeps the one it just used; a forgotten kiosk's next batch starts from
    its saved state (only the new entries are verified: nothing is replayed)."""
    publish(portal.app.state.engine, {"projects": PROJECTS})
    ing: Ingestor = portal.app.state.ingestor
    ing.state_every = EVERY
    rigs = [make_rig(tmp_path, f"cache-kiosk-{i}") for i in range(3)]
    try:
        for r in rigs:
            r.donate(11)
            r.ledger.checkpoint()
        ing.cached_entries = 0  # no limit while they enrol
        for r in rigs:
            enrolled(r, portal).close()
            sync_to(r, portal)
        ids = [r.kiosk_id for r in rigs]
        assert list(ing._verifiers) == ids
        sizes = [ing._verifiers[k].state.size for k in ids]
        assert sizes[0] > 10
        ing.cached_entries = sizes[1] + sizes[2] + 10  # room for two kiosks (and a gift more), not three
        rigs[2].donate(1)
        rigs[2].ledger.checkpoint()
        sync_to(rigs[2], portal)
        assert list(ing._verifiers) == ids[1:]  # the least recently used forgotten
        first = rigs[0]
        at = sizes[0]
        with portal.app.state.engine.connect() as conn:
            assert verifier_states.load(conn, ids[0]).size == at  # type: ignore[union-attr]
        first.donate(1)
        first.ledger.checkpoint()
        applied.clear()
        sync_to(first, portal)
        assert applied == list(range(at + 1, first.ledger.size + 1)), applied
        assert list(ing._verifiers) == [ids[2], ids[0]]
        ing.cached_entries = 0  # no limit: all three kept
        for r in rigs[1:2]:
            r.donate(1)
            r.ledger.checkpoint()
            sync_to(r, portal)
        assert sorted(ing._verifiers) == sorted(ids)
    finally:
        for r in rigs:
            r.ledger.close(checkpoint=False)


def test_the_cache_size_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIOSK_PORTAL_VERIFIER_CACHE", "500000")
    assert options_from_env()["verifier_cache"] == 500_000
    monkeypatch.setenv("KIOSK_PORTAL_VERIFIER_CACHE", "lots")
    with pytest.raises(RuntimeError, match="KIOSK_PORTAL_VERIFIER_CACHE"):
        options_from_env()

"""What a receipt lookup keeps between lookups, and that it never shows a stale answer (docs/receipts.md,
"Cost of a lookup"), on SQLite and PostgreSQL, with real kiosk ledgers, the real uploader and real commands.

- a kiosk's key chain is kept per database and per kiosk, and checked against the database in the receipt's
  own query: a re-key, an administrator's announcement or a revocation written by *another* portal worker
  (here: another engine on the same database) reaches this one's next lookup;
- a checkpoint's signature is checked once per (note, key): a new checkpoint is used at once, and a note
  that does not verify under the key is refused even after the same note verified under the right one;
- a warm lookup is two statements whatever the ledger's size, and one query reads every node of all the
  proofs a receipt carries.
"""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event, update
from sync_helpers import PROJECTS, enrolled, replace_lost_key

from kiosk.cli import main as kiosk_main
from kiosk.ledger import checkpoint as cpmod
from kiosk.ledger import merkle
from kiosk.ledger.keys import key_id
from kiosk.ops.local_files import open_ledger
from server_sync import queries, tree
from server_sync.configstore import publish
from server_sync.db import kiosks, make_engine
from server_sync.portal_cli import main as portal_main
from server_sync.wire.receipt import check_receipt, receipt_code


@pytest.fixture
def other_worker(db_url: str):
    """A second engine on the portal's database: what another `kiosk-portal serve` worker process holds."""
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _lookup(eng, entry) -> dict:  # noqa: ANN001
    doc = queries.receipt(eng, receipt_code(entry))
    assert doc is not None
    return doc


def _selects(eng, fn):  # noqa: ANN001, ANN202
    """``fn()``'s result and the SELECT statements it sent (not BEGIN/ROLLBACK)."""
    seen: list[str] = []

    def count(conn, cursor, statement, *a):  # noqa: ANN001, ANN002
        if re.match(r"\s*(SELECT|WITH)\b", statement, re.I):
            seen.append(statement)

    event.listen(eng, "before_cursor_execute", count)
    try:
        return fn(), seen
    finally:
        event.remove(eng, "before_cursor_execute", count)


def _synced_gifts(rig, portal, n: int):  # noqa: ANN001, ANN202
    """The catalogue published, ``n`` gifts and a checkpoint on the kiosk, all taken by the portal."""
    publish(portal.app.state.engine, {"projects": PROJECTS})
    gifts = rig.donate(n)
    rig.ledger.checkpoint()
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    return gifts, up


def _rekey(rig) -> str:  # noqa: ANN001
    """`kiosk rekey` (the old key signs the key_change), and the kiosk starts again with the new key."""
    old = rig.ledger.key_id
    assert kiosk_main(["rekey", "--config", str(rig.config_path)]) == 0
    rig.ledger.close(checkpoint=False)
    rig.ledger = open_ledger(rig.cfg, clock=rig.clock)
    assert rig.ledger.key_id != old
    return old


def test_a_rekey_taken_by_another_worker_reaches_this_workers_cached_key_chain(portal, rig, other_worker):
    before, _ = _synced_gifts(rig, portal, 3)
    doc = _lookup(other_worker, before[0])  # this worker caches the chain: one key
    assert doc["verification"]["verified"] and doc["verification"]["key_changes"] == []
    old_kid = _rekey(rig)
    after = rig.donate(2)
    rig.ledger.checkpoint()  # signed by the new key
    up = rig.uploader(portal.url)
    assert up.sync_once().ok and up.sync_once().ok  # taken by the portal's own engine, not other_worker
    # A stale chain would check the new checkpoint with the old key (bad_checkpoint), and name the old key
    # as the signer of the new gift (bad_signature).
    old = _lookup(other_worker, before[0])["verification"]
    assert old["status"] == "verified" and len(old["key_changes"]) == 1 and old["key_id"] == old_kid
    new = _lookup(other_worker, after[0])
    assert new["verification"]["status"] == "verified" and new["verification"]["key_id"] == rig.ledger.key_id
    assert check_receipt(new, rig.ledger.key_id, code=receipt_code(after[0])).ok


def test_an_administrators_announcement_and_a_revocation_reach_the_cached_chain(portal, rig, other_worker, capsys):
    before, _ = _synced_gifts(rig, portal, 3)
    assert _lookup(other_worker, before[0])["verification"]["verified"]  # cached: the enrolled key
    # The key is lost; the kiosk makes a new one that only an administrator vouches for.
    after, m = replace_lost_key(rig, portal, capsys, 2)
    new = _lookup(other_worker, after[0])["verification"]
    assert new["status"] == "verified" and new["key_id"] == key_id(bytes.fromhex(m.group(2)))
    # Staff revoke the new key from the second new gift on: its receipt goes at once, the first stays.
    assert portal_main(["kiosk", "revoke", "--db", portal.db_url, rig.kiosk_id, "--from-seq",
                        str(after[1].seq)]) == 0
    assert queries.receipt(other_worker, receipt_code(after[1])) is None
    assert _lookup(other_worker, after[0])["verification"]["status"] == "verified"


def test_a_new_checkpoint_is_used_at_once_and_a_note_is_checked_under_its_key(portal, rig, other_worker):
    first, up = _synced_gifts(rig, portal, 3)
    v1 = _lookup(other_worker, first[0])["verification"]
    assert v1["verified"]
    more = rig.donate(4)
    rig.ledger.checkpoint()
    assert up.sync_once().ok
    v2 = _lookup(other_worker, first[0])["verification"]
    assert v2["verified"] and v2["checkpoint_size"] > v1["checkpoint_size"] and v2["checkpoint"] != v1["checkpoint"]
    assert _lookup(other_worker, more[-1])["verification"]["verified"]
    # The same note under another key: refused, though it verified (and was kept) under the right one.
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(cpmod.CheckpointError):
        queries._open_checkpoint(v2["checkpoint"], other)
    # A note the database holds that its key did not sign (here: the earlier note with a later size line,
    # as a tampered row would be) is refused even right after good lookups.
    forged = v1["checkpoint"].replace(f"\n{v1['checkpoint_size']}\n", f"\n{v2['checkpoint_size']}\n", 1)
    assert forged != v1["checkpoint"]
    with portal.app.state.engine.begin() as conn:
        conn.execute(update(kiosks).where(kiosks.c.id == rig.kiosk_id).values(cp_note=forged))
    assert _lookup(other_worker, first[0])["verification"]["status"] == "bad_checkpoint"


def test_a_checkpoint_is_verified_once_for_many_receipts(portal, rig, other_worker):
    publish(portal.app.state.engine, {"projects": PROJECTS})
    gifts = rig.donate(6)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    queries._open_checkpoint.cache_clear()
    for g in gifts:
        assert _lookup(other_worker, g)["verification"]["verified"]
    info = queries._open_checkpoint.cache_info()
    assert (info.misses, info.hits) == (1, len(gifts) - 1)


def test_a_warm_lookup_is_two_statements_whatever_the_ledgers_size(portal, rig, other_worker):
    publish(portal.app.state.engine, {"projects": PROJECTS})
    up = enrolled(rig, portal)
    counts = []
    for n in (5, 150):
        gifts = rig.donate(n)
        rig.ledger.checkpoint()
        assert up.sync_once().ok
        _lookup(other_worker, gifts[0])  # warm: the key chain is read once
        doc, sent = _selects(other_worker, lambda g=gifts[0]: _lookup(other_worker, g))
        assert doc["verification"]["verified"]
        counts.append(len(sent))
    assert counts == [2, 2], counts


def test_one_query_reads_the_nodes_of_several_proofs(portal, rig, other_worker):
    publish(portal.app.state.engine, {"projects": PROJECTS})
    rig.donate(60)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal, batch_entries=7).sync_once().ok
    leaves = [e.entry_hash for e in rig.ledger.iter_entries()]
    size = len(leaves)
    indices = [0, 1, 17, 40, size // 2, size - 2, size - 1]
    with other_worker.connect() as conn:
        got, sent = _selects(other_worker, lambda: tree.inclusion_proofs(conn, rig.kiosk_id, indices, size))
    assert got == [merkle.inclusion_proof(i, leaves) for i in indices]
    assert len(sent) == 1

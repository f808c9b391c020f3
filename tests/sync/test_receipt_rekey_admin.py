"""Receipts across the two kinds of re-key (issue #19 with #18): a gift signed by the old key and checkpointed
only after the re-key. Vouched for by the old key (`kiosk rekey`), the receipt verifies through the key_change
(tests/sync/test_receipts.py covers that in depth; here it is the baseline). Vouched for only by an
administrator (`kiosk rekey --old-key-lost`, then `kiosk-portal kiosk rekey`), nobody but the portal vouches
for the new key, so an auditor's check must say it could not confirm, never "verified", never crash; a gift
after that re-key verifies with the new key. Real kiosk ledgers and commands, the real uploader over HTTP,
SQLite and PostgreSQL.
"""

from __future__ import annotations

import requests
from sync_helpers import PROJECTS, enrolled, replace_lost_key

from kiosk.cli import main as kiosk_main
from kiosk.ops.local_files import open_ledger
from server_sync.configstore import publish
from server_sync.wire.receipt import check_receipt, receipt_code


def _receipt(portal, entry) -> dict:  # noqa: ANN001
    r = requests.get(f"{portal.url}/api/v1/receipts/{receipt_code(entry)}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_gift_before_a_rekey_checkpointed_after_it_by_the_old_keys_word(portal, rig):
    publish(portal.app.state.engine, {"projects": PROJECTS})
    before = rig.donate(2)
    up = enrolled(rig, portal)
    assert up.sync_once().ok  # uploaded, but no checkpoint covers it yet at the portal
    assert _receipt(portal, before[0])["verification"]["status"] == "awaiting_checkpoint"
    old_kid = rig.ledger.key_id
    assert kiosk_main(["rekey", "--config", str(rig.config_path)]) == 0
    rig.ledger.close(checkpoint=False)
    rig.ledger = open_ledger(rig.cfg, clock=rig.clock)
    rig.ledger.checkpoint()  # the first checkpoint covering the old gifts is signed by the new key
    assert up.sync_once().ok
    doc = _receipt(portal, before[0])
    assert doc["verification"]["checkpoint_size"] > before[-1].seq and len(doc["verification"]["key_changes"]) == 1
    res = check_receipt(doc, old_kid, code=receipt_code(before[0]))
    assert res.ok, res.reason


def test_a_gift_before_an_administrators_rekey_is_not_confirmed_and_nothing_breaks(portal, rig, capsys):
    publish(portal.app.state.engine, {"projects": PROJECTS})
    before = rig.donate(2)
    assert enrolled(rig, portal).sync_once().ok
    assert _receipt(portal, before[0])["verification"]["status"] == "awaiting_checkpoint"
    old_kid = rig.ledger.key_id
    after, m = replace_lost_key(rig, portal, capsys, 1)  # the key is lost
    old = _receipt(portal, before[0])
    assert old["donation"]["amount_yen"] == before[0].data["amount_yen"]
    res = check_receipt(old, old_kid, code=receipt_code(before[0]))
    assert not res.ok and "administrator" in res.reason, res.reason
    new = _receipt(portal, after[0])
    res = check_receipt(new, rig.ledger.key_id, code=receipt_code(after[0]))
    assert res.ok, res.reason
    # The receipt page answers (200) for both; the in-browser check says which it could confirm.
    for e in (before[0], after[0]):
        assert requests.get(f"{portal.url}/r/{receipt_code(e)}", timeout=10).status_code == 200

"""A stolen or re-keyed kiosk, end to end (docs/sync.md "Revoking a key" and "Re-keying"; docs/ledger.md
"Re-keying"): real kiosk ledgers and keys, the real `kiosk` and `kiosk-portal` commands, the real uploader
over HTTP on loopback, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re

import requests
from sqlalchemy import select
from sync_helpers import PASSWORD, enrolled, lose_key, signed_post, staff_session

from kiosk.cli import main as kiosk_main
from kiosk.ledger import keys
from kiosk.ledger.encoding import entry_hash
from kiosk.ops.local_files import open_ledger
from server_sync import kiosk_keys
from server_sync.db import entries, kiosks, make_engine
from server_sync.portal_cli import main as portal_main
from server_sync.wire import protocol as P


def _totals(portal) -> dict:  # noqa: ANN001
    return requests.get(portal.url + "/api/v1/totals", timeout=10).json()


def _portal(portal, kid: str) -> tuple[int, bytes, dict[int, str | None]]:  # noqa: ANN001
    """(size, request key, {seq: quarantine}) the portal holds for ``kid``."""
    eng = make_engine(portal.db_url)
    try:
        with eng.connect() as conn:
            size, key = conn.execute(select(kiosks.c.size, kiosks.c.public_key).where(kiosks.c.id == kid)).one()
            q = dict(conn.execute(select(entries.c.seq, entries.c.quarantine).where(entries.c.kiosk_id == kid)).all())
    finally:
        eng.dispose()
    return size, bytes(key), q


def _reopen(rig) -> None:  # noqa: ANN001
    """Restart the test kiosk's ledger with the key now in its key file (as `kiosk run` would)."""
    rig.ledger.close(checkpoint=False)
    rig.ledger = open_ledger(rig.cfg, clock=rig.clock)


def test_a_revoked_key_is_refused_from_its_seq_on_and_nothing_after_counts(portal, rig, capsys):
    rig.donate(4)
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    synced = rig.ledger.size
    honest = _totals(portal)
    # The kiosk is stolen; staff revoke its key from a seq the portal has not received yet.
    rig.donate(4)
    cut = synced + 3
    assert portal_main(["kiosk", "revoke", "--db", portal.db_url, rig.kiosk_id, "--from-seq", str(cut)]) == 0
    assert f"revoked from seq={cut}" in capsys.readouterr().out
    state = up.sync_once(max_attempts=2)
    assert not state.ok and "key_revoked" in (state.last_error or ""), state.last_error
    size, _, q = _portal(portal, rig.kiosk_id)
    assert size == cut - 1  # the entries before the revoked seq were taken, none from it on
    before_cut = [e for e in rig.ledger.iter_entries(synced + 1, cut - 1) if e.type == "donation"]
    t = _totals(portal)
    assert t["total_yen"] == honest["total_yen"] + sum(e.data["amount_yen"] for e in before_cut)
    # Anything signed by that key at or after the seq: 403, whoever sends it.
    body = json.dumps(P.batch_document(rig.kiosk_id, [(e.seq, e.body, e.signature) for e in
                                                      rig.ledger.iter_entries(cut, None)], None, 0, []),
                      separators=(",", ":")).encode()
    r = signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/batches", body, "thief")
    assert r.status_code == 403 and r.json()["error"] == "key_revoked" and r.json()["seq"] == cut, r.text
    # Revoking from a seq the portal already holds quarantines what it holds from there: counted nowhere.
    assert portal_main(["kiosk", "revoke", "--db", portal.db_url, rig.kiosk_id, "--from-seq", str(synced + 1)]) == 0
    _, _, q = _portal(portal, rig.kiosk_id)
    assert {s for s, why in q.items() if why} == set(range(synced + 1, cut))
    assert all(q[s].startswith("revoked: ") for s in range(synced + 1, cut))
    assert _totals(portal) == honest
    assert portal_main(["kiosk", "revoke", "--db", portal.db_url, "no-such-kiosk", "--from-seq", "5"]) == 1
    assert portal_main(["kiosk", "revoke", "--db", portal.db_url, rig.kiosk_id]) == 2  # no --from-seq


def test_a_revoked_key_gets_nothing_private_no_my_page_no_pepper_no_points(portal, rig):
    """The thief of a kiosk holds its key and pepper. After staff revoke the key, its heartbeats still count as
    "last seen", but a my page it signs for a card whose IDm it read, the city's pepper after the rotation meant to
    leave it behind, and a card's points are refused: 403 key_revoked. Before, only batches were."""
    from kiosk.sync.pointsync import ask
    from server_sync.wire import mypage as W

    rig.donate(2)
    up = enrolled(rig, portal, pepper=rig.pepper)
    assert up.sync_once().ok
    sk = keys.load_private(rig.cfg.private_key_path)
    token = rig.pepper.card_token(b"\x01\x02\x03\x04\x05\x06\x07\x08")

    def my_page() -> requests.Response:
        req = W.make_request(sk, rig.kiosk_id, token.all_hexes, rig.clock.wall_ms(), 180_000)
        return requests.post(portal.url + "/me/claim", json={"request": req}, timeout=10)

    def pepper() -> requests.Response:
        body = json.dumps({"seal_key": "ab" * 32}).encode()
        return signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/peppers", body)

    assert my_page().status_code == 200 and pepper().status_code == 200  # before: the kiosk's own
    assert ask(up, token, list(token.all_hexes), 0).allotted == 0
    assert portal_main(["kiosk", "revoke", "--db", portal.db_url, rig.kiosk_id, "--from-seq",
                        str(rig.ledger.size + 1)]) == 0
    for r in (my_page(), pepper()):
        assert r.status_code == 403 and r.json()["error"] == "key_revoked", r.text
    try:
        ask(up, token, list(token.all_hexes), 0)
        raise AssertionError("a revoked key was handed a card's points")
    except Exception as exc:  # noqa: BLE001 - pointsync raises the uploader's SyncError with the portal's reason
        assert "key_revoked" in str(exc), exc
    assert up.heartbeat()["accepted_through_seq"] == rig.ledger.size  # heartbeats stay accepted


def test_an_administrator_revokes_a_key_on_the_kiosks_page(portal, rig):
    from server_sync.staff import add_user

    rig.donate(2)
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    add_user(portal.app.state.engine, "admin", PASSWORD)
    add_user(portal.app.state.engine, "clerk", PASSWORD, "staff")
    url = portal.url + f"/staff/kiosks/{rig.kiosk_id}/revocation"
    seq = str(rig.ledger.size + 1)
    clerk, ctoken = staff_session(portal.url, "clerk")
    assert 'action="/staff/kiosks/' + rig.kiosk_id + '/revocation"' not in clerk.get(
        portal.url + "/staff/kiosks", timeout=10).text
    assert clerk.post(url, data={"csrf": ctoken, "from_seq": seq}, timeout=10).status_code == 403
    admin, token = staff_session(portal.url, "admin")
    assert admin.post(url, data={"from_seq": seq}, timeout=10).status_code == 403  # no CSRF token
    # Not a number: the form again, saying why beside it (tests/sync/test_staff_words_more.py), not "not allowed".
    assert admin.post(url, data={"csrf": token, "from_seq": "x"}, timeout=10).status_code == 422
    page = admin.get(portal.url + "/staff/kiosks", timeout=10).text
    assert 'action="/staff/kiosks/' + rig.kiosk_id + '/revocation"' in page
    assert admin.post(url, data={"csrf": token, "from_seq": seq}, timeout=10).status_code == 200
    page = admin.get(portal.url + "/staff/kiosks", timeout=10).text
    assert f"鍵 {rig.ledger.key_id} は seq {seq} 以降無効" in page
    rig.donate(1)
    assert "key_revoked" in (up.sync_once(max_attempts=2).last_error or "")


def test_a_kiosk_rekeys_and_the_portal_and_auditors_follow_the_chain(portal, rig, capsys):
    rig.donate(3)
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    old_sk = keys.load_private(rig.cfg.private_key_path)
    old_key_id = rig.ledger.key_id
    # `kiosk rekey` (the kiosk stopped): the key_change entry is signed by the old key.
    assert kiosk_main(["rekey", "--config", str(rig.config_path)]) == 0
    out = capsys.readouterr().out
    change_seq = int(re.search(r"from seq=(\d+)", out).group(1))  # type: ignore[union-attr]
    new_sk = keys.load_private(rig.cfg.private_key_path)
    assert keys.public_raw(new_sk.public_key()) != keys.public_raw(old_sk.public_key())
    assert (rig.cfg.private_key_path.parent / "kiosk.key.previous").exists()
    # A process still holding the old key cannot go on writing: the ledger names another key in force.
    from kiosk.ledger import LedgerError

    try:
        rig.donate(1)
        raise AssertionError("an append with the replaced key was taken")
    except LedgerError as exc:
        assert "restart" in str(exc)
    _reopen(rig)  # `kiosk run` starts again with the new key
    rig.donate(4)
    change = rig.ledger.entry(change_seq)
    assert change.type == "key_change" and change.obj["key_id"] == old_key_id
    assert rig.ledger.entry(change_seq + 1).obj["key_id"] == rig.ledger.key_id != old_key_id
    # The uploader signs with the old key until the portal has taken the key_change, then with the new one.
    up = rig.uploader(portal.url)
    assert up.sync_once().ok
    assert up.sync_once().ok  # a request signed with the new key: the old key file is gone
    assert not (rig.cfg.private_key_path.parent / "kiosk.key.previous").exists()
    size, request_key, q = _portal(portal, rig.kiosk_id)
    assert size == rig.ledger.size and request_key == keys.public_raw(new_sk.public_key())
    assert not any(q.values())
    assert _totals(portal) == rig.expected_totals()
    # The old key can no longer add to this chain: its signatures on the next entries are refused.
    rig.donate(1)
    rows = [(e.seq, e.body, old_sk.sign(entry_hash(e.body))) for e in rig.ledger.iter_entries(size + 1, None)]
    body = json.dumps(P.batch_document(rig.kiosk_id, rows, None, 0, []), separators=(",", ":")).encode()
    r = signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/batches", body, "old-key", sk=new_sk)
    assert r.status_code == 422 and "signature" in r.json()["reason"] and r.json()["seq"] == size + 1, r.text
    # Auditors: `kiosk ledger verify` follows the key change, on the database and on an export.
    capsys.readouterr()
    assert kiosk_main(["ledger", "verify", str(rig.cfg.ledger_path)]) == 0
    assert f"from seq={change_seq + 1} (vouched for by the previous key)" in capsys.readouterr().out
    exp = rig.cfg.data_dir / "export.jsonl"
    assert kiosk_main(["ledger", "export", str(rig.cfg.ledger_path), "--out", str(exp)]) == 0
    assert kiosk_main(["ledger", "verify", str(exp)]) == 0
    # The staff kiosks page shows the hand-over.
    from server_sync.staff import add_user

    add_user(portal.app.state.engine, "admin", "correct horse battery")
    s = requests.Session()
    s.post(portal.url + "/staff/login", data={"username": "admin", "password": "correct horse battery"}, timeout=10)
    assert (f"鍵 {rig.ledger.key_id} を seq {change_seq + 1} から使用（前の鍵が署名）"
            in s.get(portal.url + "/staff/kiosks", timeout=10).text)


def test_a_kiosk_that_rekeys_with_a_backlog_longer_than_a_batch_catches_up(portal, rig, capsys):
    """Re-keyed while offline: entries before the key_change still to upload, more than one batch of them. The
    newest checkpoint note is signed by the new key, which the portal learns only from the key_change entry;
    the uploader's batches before it carry the newest note it can open (until 2026-12-06 they carried the new
    key's note, each was refused as bad_checkpoint, and the kiosk never synced again)."""
    rig.donate(2)
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    rig.donate(6)  # the backlog: the portal is unreachable
    assert kiosk_main(["rekey", "--config", str(rig.config_path)]) == 0
    capsys.readouterr()
    _reopen(rig)
    rig.donate(2)
    rig.ledger.checkpoint()
    up = rig.uploader(portal.url, batch_entries=4)
    state = up.sync_once()
    assert state.ok, state.last_error
    size, request_key, q = _portal(portal, rig.kiosk_id)
    assert size == rig.ledger.size and request_key == rig.ledger.public_key_raw
    assert not any(q.values())
    assert _totals(portal) == rig.expected_totals()


def test_a_kiosk_rekeyed_twice_before_it_syncs_keeps_every_key_the_portal_may_know(portal, rig, capsys):
    """Two re-keys while offline (key A, then B, then C). Until 2026-12-06 the second moved B onto
    ``kiosk.key.previous``, over A, the only key the portal knew: every request after it was refused
    (``bad_request_signature``) and the kiosk never synced again. A is now kept as ``kiosk.key.previous.1``;
    the uploader tries each kept key, and small batches move the portal from A to B to C on the way."""
    rig.donate(1)
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    key_dir = rig.cfg.private_key_path.parent
    for _ in range(2):
        rig.donate(3)
        assert kiosk_main(["rekey", "--config", str(rig.config_path)]) == 0
        _reopen(rig)
    capsys.readouterr()
    assert (key_dir / "kiosk.key.previous").exists() and (key_dir / "kiosk.key.previous.1").exists()
    rig.donate(2)
    rig.ledger.checkpoint()
    up = rig.uploader(portal.url, batch_entries=3)
    state = up.sync_once()
    assert state.ok, state.last_error
    assert up.sync_once().ok  # signed with the newest key, which the portal now knows: the old ones are deleted
    assert not list(key_dir.glob("kiosk.key.previous*"))
    size, request_key, q = _portal(portal, rig.kiosk_id)
    assert size == rig.ledger.size and request_key == rig.ledger.public_key_raw
    assert not any(q.values())
    assert _totals(portal) == rig.expected_totals()


def test_a_kiosk_that_loses_its_new_key_before_it_syncs_the_re_key_goes_on_with_the_announced_one(portal, rig,
                                                                                                     capsys):
    """Re-keyed (A to B) while offline, then B lost before the kiosk synced: an administrator announces C. The
    batch then brings the portal A's key_change to B, signed by A. Until 2026-12-06 taking it made B the key
    requests must be signed by, over the announcement of C from a later seq: the kiosk (which holds only C)
    was refused from then on. The later announcement now stays."""
    rig.donate(1)
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    rig.donate(3)
    assert kiosk_main(["rekey", "--config", str(rig.config_path)]) == 0
    _reopen(rig)
    rig.donate(2)
    m = lose_key(rig, portal, capsys)  # B is lost; the administrator announces C
    rig.donate(2)
    rig.ledger.checkpoint()
    up = rig.uploader(portal.url)
    state = up.sync_once()
    assert state.ok, state.last_error
    assert up.sync_once().ok  # and the next one, signed by C again
    size, request_key, q = _portal(portal, rig.kiosk_id)
    assert size == rig.ledger.size and request_key == rig.ledger.public_key_raw == bytes.fromhex(m.group(2))
    assert not any(q.values())
    assert _totals(portal) == rig.expected_totals()


def test_a_kiosk_that_loses_its_key_before_its_first_sync_is_taken_with_its_genesis(portal, rig, capsys):
    """Enrolled, gifts given, the key lost before anything reached the portal: the announcement replaces the
    request key, and the portal must still hold the genesis entry to the enrolled key. Until 2026-12-06 it
    checked the genesis against the announced key and refused the first batch (bad signature) for good."""
    enrolled(rig, portal).close()
    enrolled_key = rig.ledger.public_key_raw
    rig.donate(2)
    m = lose_key(rig, portal, capsys)
    rig.donate(1)
    rig.ledger.checkpoint()
    state = rig.uploader(portal.url).sync_once()
    assert state.ok, state.last_error
    size, request_key, q = _portal(portal, rig.kiosk_id)
    assert size == rig.ledger.size and request_key == bytes.fromhex(m.group(2)) != enrolled_key
    assert not any(q.values())
    assert _totals(portal) == rig.expected_totals()
    # The staff page lists the replacement, not the enrolment (which changes no key).
    with make_engine(portal.db_url).connect() as conn:
        kinds = [e["kind"] for e in kiosk_keys.history(conn)[rig.kiosk_id]]
    assert kinds == ["revoke", "admin"]


def test_a_lost_key_is_replaced_by_an_administrators_announcement(portal, rig, capsys):
    rig.donate(3)
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    thief = keys.load_private(rig.cfg.private_key_path)  # the lost key, in a thief's hands
    rig.cfg.private_key_path.unlink()
    rig.ledger.close(checkpoint=False)
    assert kiosk_main(["rekey", "--config", str(rig.config_path), "--old-key-lost"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"kiosk-portal kiosk rekey (\S+) --public-key ([0-9a-f]{64}) --from-seq (\d+)", out)
    assert m and m.group(1) == rig.kiosk_id, out
    new_hex, seq = m.group(2), int(m.group(3))
    rig.ledger = open_ledger(rig.cfg, clock=rig.clock)
    rig.donate(2)
    # Before an administrator vouches for the new key, the portal does not know it.
    state = rig.uploader(portal.url).sync_once(max_attempts=1)
    assert not state.ok and "bad_request_signature" in (state.last_error or "")
    # The thief signs its own continuation with the lost key: before the announcement it would be taken ...
    capsys.readouterr()
    assert portal_main(["kiosk", "rekey", "--db", portal.db_url, rig.kiosk_id, "--public-key", new_hex,
                        "--from-seq", str(seq)]) == 0
    assert "revoked from there" in capsys.readouterr().out
    # ... after it, anything the lost key signs from that seq is refused.
    honest = rig.ledger.entry(seq)
    fake = honest.body.replace(b'"vouched_by":"administrator"', b'"vouched_by":"previous_key"')
    body = json.dumps(P.batch_document(rig.kiosk_id, [(seq, fake, thief.sign(entry_hash(fake)))], None, 0, []),
                      separators=(",", ":")).encode()
    new_sk = keys.load_private(rig.cfg.private_key_path)
    r = signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/batches", body, "thief", sk=new_sk)
    assert r.status_code in (403, 422), r.text
    state = rig.uploader(portal.url).sync_once()
    assert state.ok, state.last_error
    size, request_key, q = _portal(portal, rig.kiosk_id)
    assert size == rig.ledger.size and request_key.hex() == new_hex and not any(q.values())
    assert _totals(portal) == rig.expected_totals()
    # An auditor needs the announcement the portal records; with it the ledger verifies.
    capsys.readouterr()
    assert kiosk_main(["ledger", "verify", str(rig.cfg.ledger_path)]) == 1
    assert "--trust-key" in capsys.readouterr().out
    assert kiosk_main(["ledger", "verify", str(rig.cfg.ledger_path), "--trust-key", f"{seq}:{new_hex}"]) == 0
    assert "vouched for by an administrator" in capsys.readouterr().out
    assert kiosk_main(["ledger", "verify", str(rig.cfg.ledger_path), "--trust-key", f"{seq}:{'00' * 32}"]) == 1
    # Re-announcing over entries the portal holds is refused.
    assert portal_main(["kiosk", "rekey", "--db", portal.db_url, rig.kiosk_id, "--public-key", new_hex,
                        "--from-seq", str(seq)]) == 1

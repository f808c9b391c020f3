"""The real uploader against the real portal over HTTP on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import threading
import time

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sync_helpers import PROJECTS, batch_body, enrolled, fake_idm, make_rig, portal_entry_count, signed_post

from kiosk.ledger import Ledger, keys
from kiosk.sync.configapply import APPLIED, STAGED
from kiosk.sync.uploader import EnrollError
from server_sync.configstore import add_media, publish
from server_sync.queries import recent as recent_gifts
from server_sync.wire import protocol as P
from server_sync.wire.receipt import receipt_code


def totals(portal) -> dict:  # noqa: ANN001
    return requests.get(portal.url + "/api/v1/totals", timeout=10).json()


# --- enrollment --------------------------------------------------------------------------------------
def test_enrollment_codes_are_one_time_and_bound_to_a_kiosk(portal, rig):
    up = rig.uploader(portal.url)
    with pytest.raises(EnrollError, match="unknown enrollment code"):
        up.enroll("AAAA-BBBB-CCCC")
    other = portal.issue_code("another-kiosk")
    with pytest.raises(EnrollError, match="issued for kiosk 'another-kiosk'"):
        up.enroll(other)
    code = portal.issue_code(rig.kiosk_id)
    first = up.enroll(code.lower().replace("-", " "))  # typed loosely: still fine
    assert first["kiosk_id"] == rig.kiosk_id
    # The same kiosk and key again (its answer was lost): the same enrollment, not "already used".
    assert up.enroll(code)["key_id"] == first["key_id"]
    # Anyone else with the spent code is refused.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    thief = rig.uploader(portal.url)
    thief.sk = Ed25519PrivateKey.generate()
    thief.pub_hex = thief.sk.public_key().public_bytes_raw().hex()
    with pytest.raises(EnrollError, match="already used"):
        thief.enroll(code)
    # Unenrolled kiosks are refused on the sync endpoints.
    r = signed_post(portal.url, rig, "/api/v1/kiosks/nobody-here/heartbeat", b"{}", kiosk_id="nobody-here")
    assert r.status_code == 401 and r.json()["error"] == "unknown_kiosk"


# --- the happy path ----------------------------------------------------------------------------------
def test_sync_makes_portal_totals_equal_the_ledger(portal, rig, db_url):
    d = rig.donate(12)
    rig.ledger.void(d[3].seq, "staff correction")
    intent = rig.ledger.record_intent("midori", 100, "sim", rig.pepper.token(fake_idm(9)), "failing")
    rig.ledger.record_failure(intent.seq, "declined")
    rig.ledger.grant_points(rig.pepper.token(fake_idm(1)), 30, "park cleanup")
    up = enrolled(rig, portal, batch_entries=7)
    st = up.sync_once()
    assert st.ok and st.pending == 0 and st.accepted_through_seq == rig.ledger.size
    assert totals(portal) == rig.expected_totals()
    assert portal_entry_count(db_url, rig.kiosk_id) == (rig.ledger.size, rig.ledger.size)
    # More donations, another round: only the new entries travel.
    rig.donate(5)
    st = up.sync_once()
    assert st.ok and totals(portal) == rig.expected_totals()
    assert st.checkpoint_size > 0  # the portal acknowledged a signed checkpoint
    saved = json.loads((rig.cfg.data_dir / "sync-state.json").read_text())
    assert saved["pending"] == 0 and saved["last_error"] is None and saved["last_success_ms"]


def test_resumes_from_the_portals_high_water_mark(portal, rig):
    rig.donate(30)
    up = enrolled(rig, portal, batch_entries=10)
    sent: list[int] = []
    real = up.http.request

    def crash_after_two(method, url, **kw):  # noqa: ANN001, ANN202
        if url.endswith("/batches"):
            sent.append(json.loads(kw["data"])["first_seq"])
            if len(sent) == 3:
                raise KeyboardInterrupt("power cut")
        return real(method, url, **kw)

    up.http.request = crash_after_two  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        up.sync_round()
    # A fresh process with no local state at all resumes where the portal says it is.
    (rig.cfg.data_dir / "sync-state.json").unlink()
    up2 = enrolled(rig, portal, batch_entries=10)  # re-enrolling the same key keeps the portal's entries
    firsts: list[int] = []
    real2 = up2.http.request

    def spy(method, url, **kw):  # noqa: ANN001, ANN202
        if url.endswith("/batches"):
            firsts.append(json.loads(kw["data"])["first_seq"])
        return real2(method, url, **kw)

    up2.http.request = spy  # type: ignore[method-assign]
    assert up2.sync_once().ok
    # Batches end at checkpoint entries (protocol.batch_end), so their starts depend on the ledger: the
    # third batch, cut before it was sent, is where the fresh process starts.
    assert sent[0] == 1 and sent[0] < sent[1] < sent[2] <= sent[1] + 10 and firsts[0] == sent[2]
    assert totals(portal) == rig.expected_totals()


def test_many_kiosks_at_once(portal, tmp_path):
    rigs = [make_rig(tmp_path, f"kiosk-{i}") for i in range(4)]
    try:
        for i, r in enumerate(rigs):
            r.donate(5 + i)
        ups = [enrolled(r, portal, batch_entries=4) for r in rigs]
        results = []
        threads = [threading.Thread(target=lambda u=u: results.append(u.sync_once())) for u in ups]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(results) == 4 and all(s.ok for s in results)
        got = totals(portal)
        assert got["count"] == sum(r.ledger.totals()["count"] for r in rigs)
        assert got["total_yen"] == sum(r.ledger.totals()["total_yen"] for r in rigs)
    finally:
        for r in rigs:
            r.ledger.close(checkpoint=False)


# --- exactly once --------------------------------------------------------------------------------------
def test_same_bytes_again_are_accepted_and_counted_once(portal, rig, db_url):
    rig.donate(4)
    enrolled(rig, portal)
    path = f"/api/v1/kiosks/{rig.kiosk_id}/batches"
    body = batch_body(rig, 1, rig.ledger.size)
    key = P.idempotency_key(rig.kiosk_id, 1, rig.ledger.size, 0, 0)
    first = signed_post(portal.url, rig, path, body, key)
    assert first.status_code == 200, first.text
    again = signed_post(portal.url, rig, path, body, key)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["accepted_through_seq"] == first.json()["accepted_through_seq"]
    # The same entries under another key: recognised by content, still counted once.
    other = signed_post(portal.url, rig, path, body, "another-key")
    assert other.status_code == 200 and other.json()["duplicates"] == rig.ledger.size
    assert other.json()["accepted"] == 0
    # Same key, different body: refused.
    clash = signed_post(portal.url, rig, path, batch_body(rig, 1, 2), key)
    assert clash.status_code == 422 and clash.json()["error"] == "idempotency_mismatch"
    assert totals(portal) == rig.expected_totals()
    assert portal_entry_count(db_url, rig.kiosk_id) == (rig.ledger.size, rig.ledger.size)


def test_a_gap_is_409_with_the_expected_seq(portal, rig):
    rig.donate(6)
    enrolled(rig, portal)
    path = f"/api/v1/kiosks/{rig.kiosk_id}/batches"
    r = signed_post(portal.url, rig, path, batch_body(rig, 5, 8), "k1")
    assert r.status_code == 409 and r.json()["error"] == "gap" and r.json()["expected_seq"] == 1


def test_same_key_in_flight_is_409(portal, rig):
    rig.donate(2)
    enrolled(rig, portal)
    portal.app.state.ingestor._inflight.add((rig.kiosk_id, "busy-key"))
    r = signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/batches", batch_body(rig, 1, 3), "busy-key")
    assert r.status_code == 409 and r.json()["error"] == "in_flight" and r.headers["Retry-After"] == "1"


# --- refusals ------------------------------------------------------------------------------------------
def test_tampered_reordered_and_forged_batches_are_refused(portal, rig):
    rig.donate(5)
    enrolled(rig, portal)
    path = f"/api/v1/kiosks/{rig.kiosk_id}/batches"
    rows = [(e.seq, e.body, e.signature) for e in rig.ledger.iter_entries(1, rig.ledger.size)]

    # Tampered: an amount changed after signing (request itself properly signed by the kiosk).
    i = next(i for i, (_, b, _) in enumerate(rows) if b"\"type\":\"donation\"" in b)
    bad = list(rows)
    bad[i] = (rows[i][0], rows[i][1].replace(b"\"amount_yen\":", b"\"amount_yen\":9"), rows[i][2])
    r = signed_post(portal.url, rig, path, batch_body(rig, 1, len(rows), bad), "t1")
    assert r.status_code == 422 and r.json()["error"] == "invalid_entry", r.text
    assert r.json()["seq"] == rows[i][0] and "signature" in r.json()["reason"]

    # Reordered.
    swapped = list(rows)
    swapped[2], swapped[3] = swapped[3], swapped[2]
    r = signed_post(portal.url, rig, path, batch_body(rig, 1, len(rows), swapped), "t2")
    assert r.status_code == 422 and r.json()["error"] == "reordered"

    # Renumbered to look in order: the body's own seq and chain give it away.
    renum = [(k + 1, b, s) for k, (_, b, s) in enumerate(swapped)]
    r = signed_post(portal.url, rig, path, batch_body(rig, 1, len(rows), renum), "t3")
    assert r.status_code == 422 and r.json()["error"] == "invalid_entry"

    # Forged: entries signed by another key, request signed by the kiosk.
    mallory = Ed25519PrivateKey.generate()
    forged = [(s, b, mallory.sign(rig.ledger.entry(s).entry_hash)) for s, b, _ in rows]
    r = signed_post(portal.url, rig, path, batch_body(rig, 1, len(rows), forged), "t4")
    assert r.status_code == 422 and "signature" in r.json()["reason"]

    # Forged request signature, stale time, body changed after signing, unsigned.
    good = batch_body(rig, 1, len(rows))
    r = signed_post(portal.url, rig, path, good, "t5", sk=mallory)
    assert r.status_code == 401 and r.json()["error"] == "bad_request_signature"
    r = signed_post(portal.url, rig, path, good, "t6", created=int(time.time()) - 3600)
    assert r.status_code == 401 and r.json()["error"] == "stale_request" and "server_time" in r.json()
    sk = keys.load_private(rig.cfg.private_key_path)
    h = P.sign_request(sk, rig.kiosk_id, "POST", path, good, int(time.time()), "t7")
    r = requests.post(portal.url + path, data=good + b" ", headers=h, timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "digest_mismatch"
    r = requests.post(portal.url + path, data=good, timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "unsigned"
    # A request signed for another path (replayed elsewhere) does not verify.
    h = P.sign_request(sk, rig.kiosk_id, "POST", f"/api/v1/kiosks/{rig.kiosk_id}/heartbeat", good,
                       int(time.time()), "t8")
    r = requests.post(portal.url + path, data=good, headers=h, timeout=10)
    assert r.status_code == 401
    assert totals(portal)["count"] == 0


def test_equivocation_is_refused_and_raises_an_alarm(portal, rig, tmp_path):
    rig.donate(3)
    fork_at = rig.ledger.size
    rig.ledger.close(checkpoint=False)
    shutil.copy(rig.cfg.ledger_path, tmp_path / "fork.db")
    rig.ledger = Ledger.open(rig.cfg.ledger_path, keys.load_private(rig.cfg.private_key_path), rig.kiosk_id,
                             clock=rig.clock, boot=False, checkpoint_every=10)
    rig.donate(3)
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    # The same key signs a different history from fork_at + 1 (a cloned SD card, say).
    fork = Ledger.open(tmp_path / "fork.db", keys.load_private(rig.cfg.private_key_path), rig.kiosk_id,
                       clock=rig.clock, boot=False, checkpoint_every=10)
    try:
        fork.record_intent("ongaku", 1000, "sim", rig.pepper.token(fake_idm(7)), "fork-idem")
        rows = [(e.seq, e.body, e.signature) for e in fork.iter_entries(fork_at + 1)]
    finally:
        fork.close(checkpoint=False)
    r = signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/batches",
                    batch_body(rig, 0, 0, rows), "fork-1")
    assert r.status_code == 409 and r.json()["error"] == "equivocation" and r.json()["seq"] == fork_at + 1
    fleet = portal.app.state.ingestor.engine
    from server_sync.queries import fleet as fleet_q

    k = next(k for k in fleet_q(fleet) if k["id"] == rig.kiosk_id)
    assert k["alarm"] and k["alarms"][0]["kind"] == "equivocation"
    assert totals(portal) == rig.expected_totals()


def test_inconsistent_checkpoint_is_refused(portal, rig):
    rig.donate(8)
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    acked = up.state.checkpoint_size
    assert acked > 0
    rig.donate(8)
    # A checkpoint signed by the kiosk key over a made-up tree, with a proof that cannot hold: the key signed a
    # history the acknowledged checkpoint is not a prefix of, so it is equivocation (docs/sync.md, step 6).
    from kiosk.ledger import checkpoint as cpmod
    from server_sync.queries import fleet as fleet_q

    fake = cpmod.sign(cpmod.Checkpoint(cpmod.origin_for(rig.kiosk_id), rig.ledger.size, b"\x11" * 32),
                      keys.load_private(rig.cfg.private_key_path))
    rows = [(e.seq, e.body, e.signature) for e in rig.ledger.iter_entries(up.state.accepted_through_seq + 1)]
    doc = P.batch_document(rig.kiosk_id, rows, fake, acked, [b"\x22" * 32])
    r = signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/batches", json.dumps(doc).encode(), "cp-1")
    assert r.status_code == 409 and r.json()["error"] == "equivocation", r.text
    k = next(k for k in fleet_q(portal.app.state.ingestor.engine) if k["id"] == rig.kiosk_id)
    assert k["alarm"] and k["alarms"][0]["kind"] == "equivocation" and k["suspended_ms"]
    # The same refusal again writes no second alarm.
    r = signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/batches", json.dumps(doc).encode(), "cp-2")
    assert r.status_code == 409
    assert len(next(k for k in fleet_q(portal.app.state.ingestor.engine) if k["id"] == rig.kiosk_id)["alarms"]) == 1
    # Honest uploads still go through (the mirror stays exact), held until staff resume the kiosk.
    assert up.sync_once().ok and totals(portal) != rig.expected_totals()
    from server_sync.db import writing
    from server_sync.ingest import resume

    with writing(portal.app.state.ingestor.engine) as conn:
        assert resume(conn, rig.kiosk_id)
    assert totals(portal) == rig.expected_totals()


def test_bad_input_gets_4xx_with_a_reason(portal, rig):
    rig.donate(2)
    enrolled(rig, portal)
    path = f"/api/v1/kiosks/{rig.kiosk_id}/batches"
    cases = [
        (b"{not json", 400, "malformed_json"),
        (b"[]", 422, "invalid_request"),
        (json.dumps({"protocol": "kiosk-sync/1", "kiosk_id": rig.kiosk_id, "first_seq": "1", "last_seq": 1,
                     "entries": [], "consistency": {"old_size": 0, "proof": []}}).encode(), 422, "invalid_request"),
        (json.dumps({"protocol": "kiosk-sync/1", "kiosk_id": rig.kiosk_id, "first_seq": 1, "last_seq": 2000,
                     "entries": [{"seq": i, "body": "e30=", "signature": "AA=="} for i in range(1, 2001)],
                     "consistency": {"old_size": 0, "proof": []}}).encode(), 413, "batch_too_large"),
        (json.dumps({"protocol": "kiosk-sync/1", "kiosk_id": rig.kiosk_id, "first_seq": 1, "last_seq": 1,
                     "entries": [{"seq": 1, "body": "!!", "signature": "AA=="}],
                     "consistency": {"old_size": 0, "proof": []}}).encode(), 422, "invalid_request"),
    ]
    for body, status, code in cases:
        r = signed_post(portal.url, rig, path, body, "bad-1")
        assert (r.status_code, r.json()["error"]) == (status, code), (body[:60], r.text)
        assert r.json()["reason"]
    # Missing Idempotency-Key, oversize body, bad JSON to enroll.
    r = signed_post(portal.url, rig, path, batch_body(rig, 1, 2))
    assert r.status_code == 400 and r.json()["error"] == "idempotency_key_required"
    r = requests.post(portal.url + path, data=b"x" * (P.MAX_BODY_BYTES + 1), timeout=10)
    assert r.status_code == 413
    r = requests.post(portal.url + "/api/v1/enroll", data=b"{", timeout=10)
    assert r.status_code == 400 and r.json()["reason"]
    r = requests.post(portal.url + "/api/v1/enroll", json={"kiosk_id": 5}, timeout=10)
    assert r.status_code == 422 and r.json()["reason"]


# --- clocks ---------------------------------------------------------------------------------------------
def test_unsynced_kiosk_times_are_corrected_per_boot(portal, tmp_path):
    from kiosk.ledger.clock import FixedClock

    # A Pi that booted at its last saved time: wall clock 40 days behind and not synced.
    real_now = int(time.time() * 1000)
    clock = FixedClock(wall_ms=real_now - 40 * 86_400_000, mono_ms=50_000, synced=False)
    r = make_rig(tmp_path, "slow-clock", clock=clock)
    try:
        r.donate(3)
        up = enrolled(r, portal)
        assert up.sync_once().ok
        # (Read from the portal's own store: the public API gives a gift's day only, docs/privacy.md.)
        recent = recent_gifts(portal.app.state.engine, ["kodomo"])
        # Corrected with the portal's clock at the heartbeat: epoch = portal_time - mono_now.
        for item in recent:
            assert abs(item["time_ms"] - real_now) < 60_000, item
        # Later in the same boot NTP syncs: the boot's offset now comes from the synced entries.
        clock.is_synced = True
        clock.wall = real_now + 5_000
        r.donate(1)
        assert up.sync_once().ok
        from server_sync.queries import fleet

        k = fleet(portal.app.state.engine)[0]
        assert k["untimed_entries"] == 0 and k["clock_synced"] is True
    finally:
        r.ledger.close(checkpoint=False)


# --- config push ------------------------------------------------------------------------------------------
def test_config_push_is_validated_recorded_and_applied(portal, rig):
    engine = portal.app.state.engine
    clip = b"\x00fake movie bytes" * 100
    sha = add_media(engine, clip, "video/mp4")
    doc = {"projects": PROJECTS[:2], "presets_yen": [100, 300], "default_yen": 100,
           "playlist": [{"sha256": sha, "name": "kodomo.mp4", "project": "kodomo"}]}
    with pytest.raises(ValueError, match="default_yen"):
        publish(engine, {**doc, "default_yen": 5})
    out = publish(engine, doc)
    rig.donate(1)
    seen = []
    up = enrolled(rig, portal, on_config=seen.append)
    assert up.sync_once().ok
    assert up.state.config_applied == out["version"] == 1
    change = [e for e in rig.ledger.iter_entries() if e.type == "config_change"]
    assert change[-1].data == {"version": 1, "digest": out["digest"], "source": "portal"}
    assert json.loads((rig.cfg.data_dir / APPLIED).read_text())["config"]["presets_yen"] == [100, 300]
    assert (rig.cfg.data_dir / "media" / sha).read_bytes() == clip
    assert seen and seen[0]["version"] == 1
    # The config_change entry itself travels; the fleet then shows the version as applied.
    assert up.sync_once().ok
    from server_sync.queries import fleet

    assert fleet(engine)[0]["config_applied"] == 1
    # Without the ledger writer (a standalone `kiosk sync --once`) a newer version is only staged.
    publish(engine, {**doc, "presets_yen": [100, 200], "playlist": []})
    standalone = rig.uploader(portal.url, writer=None)
    assert standalone.sync_once().ok
    assert standalone.state.config_staged == 2 and standalone.state.config_applied == 1
    assert json.loads((rig.cfg.data_dir / STAGED).read_text())["version"] == 2


# --- receipts -------------------------------------------------------------------------------------------
def test_receipt_shows_that_donation_verified_and_nothing_else_of_the_card(portal, rig):
    mine = rig.donate(3, card=1)
    theirs = rig.donate(2, card=2)
    rig.ledger.grant_points(rig.pepper.token(fake_idm(1)), 25, "river cleanup")
    rig.ledger.void(mine[1].seq, "test")
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    code = receipt_code(mine[0])
    assert len(code) == 26 and code.isupper()
    r = requests.get(f"{portal.url}/api/v1/receipts/{code.lower()}", timeout=10)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    rec = r.json()
    assert rec["donation"]["seq"] == mine[0].seq and rec["verification"]["verified"] is True
    assert rec["verification"]["status"] == "verified"
    # Anyone can re-check the proof with the kiosk's public key (tests/sync/test_receipts.py does it all).
    from kiosk.ledger import checkpoint as cpmod
    from kiosk.ledger import merkle

    v = rec["verification"]
    cp = cpmod.open_note(v["checkpoint"], keys.public_from_raw(bytes.fromhex(v["public_key"])))
    assert merkle.verify_inclusion(bytes.fromhex(v["entry_hash"]), mine[0].seq - 1, cp.size,
                                   [bytes.fromhex(p) for p in v["proof"]], cp.root)
    # One donation only: no history, no balance, nothing of the card's other gifts (a receipt code is a
    # bearer token; the card's history is on the donor's own page).
    assert set(rec) == {"receipt", "donation", "verification"}
    blob = json.dumps(rec)
    for e in theirs + mine[1:]:
        assert receipt_code(e) not in blob and e.entry_hash.hex() not in blob
    assert requests.get(f"{portal.url}/api/v1/receipts/{'A' * 26}", timeout=10).status_code == 404
    assert requests.get(f"{portal.url}/api/v1/receipts/nonsense", timeout=10).status_code == 404
    html = requests.get(f"{portal.url}/r/{code}", timeout=10)
    assert html.status_code == 200 and "no-store" in html.headers["Cache-Control"]
    assert 'src="/static/receipt.js"' in html.text and "<script>" not in html.text


# --- staff ------------------------------------------------------------------------------------------------
def test_staff_pages_need_a_login_and_flag_reconciliation_mismatches(portal, rig):
    from server_sync.staff import add_user

    add_user(portal.app.state.engine, "clerk", "correct horse battery")
    rig.donate(4)
    from kiosk.ledger.report import settled_report

    rep = settled_report((e.seq, e.obj) for e in rig.ledger.iter_entries())
    day = rig.ledger.business_date().isoformat()
    good = {"business_date": day, "first_seq": rep["first_seq"], "last_seq": rep["last_seq"], "count": rep["count"],
            "total_yen": rep["total_yen"], "projects": rep["projects"], "methods": rep["methods"]}
    rig.ledger.append("close_out", good)
    rig.ledger.append("close_out", {**good, "total_yen": good["total_yen"] + 100})
    rig.ledger.grant_points(rig.pepper.token(fake_idm(3)), 10, "festival staff")
    assert enrolled(rig, portal).sync_once().ok

    s = requests.Session()
    r = s.get(portal.url + "/staff", allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/staff/login"
    r = s.post(portal.url + "/staff/login", data={"username": "clerk", "password": "wrong"}, timeout=10)
    assert r.status_code == 401
    r = s.post(portal.url + "/staff/login", data={"username": "clerk", "password": "correct horse battery"},
               timeout=10)
    assert r.status_code == 200 and rig.kiosk_id in r.text  # followed the redirect to the fleet page
    month = s.get(portal.url + "/staff/reconciliation", params={"month": day[:7]}, timeout=10).text
    assert "一致しません" in month  # the day's row: one of its close-outs disagrees with the portal
    day_page = f"/staff/reconciliation/{rig.kiosk_id}/{day}"
    rec = s.get(portal.url + day_page, timeout=10).text
    assert rec.count("class=\"ok\">一致") == 1 and rec.count("不一致") == 1  # staff pages: Japanese first
    s.get(portal.url + "/staff/lang?to=en&next=" + day_page, timeout=10)
    rec = s.get(portal.url + day_page, timeout=10).text
    assert rec.count("class=\"ok\">match") == 1 and rec.count("MISMATCH") == 1
    assert "festival staff" in s.get(portal.url + "/staff/points", timeout=10).text
    forged = requests.get(portal.url + "/staff", cookies={"kiosk_staff": "Y2xlcmt8OTk5OTk5OTk5OTk5OQ.00"},
                          allow_redirects=False, timeout=10)
    assert forged.status_code == 303


# --- public API -------------------------------------------------------------------------------------------
def test_public_api_projects_areas_and_pages(portal, rig):
    publish(portal.app.state.engine, {"projects": PROJECTS})
    rig.donate(6)
    assert enrolled(rig, portal).sync_once().ok
    projects = requests.get(portal.url + "/api/v1/projects", timeout=10).json()
    assert [p["id"] for p in projects] == [p["id"] for p in PROJECTS]
    assert all(0 <= p["progress"] <= 1 for p in projects)
    areas = {a["area"]: a for a in requests.get(portal.url + "/api/v1/areas", timeout=10).json()}
    assert areas["children"]["total_yen"] == rig.ledger.project_total("kodomo")[0]
    green = requests.get(portal.url + "/api/v1/areas/green", timeout=10).json()
    # A gift's day, amount and project: never its kiosk or time of day (docs/privacy.md; test_public_api_privacy.py).
    assert green["recent"] and all(set(x) == {"date", "amount_yen", "project"} for x in green["recent"])
    assert requests.get(portal.url + "/api/v1/areas/space", timeout=10).status_code == 404
    assert requests.get(portal.url + "/api/v1/projects/nope", timeout=10).status_code == 404
    home = requests.get(portal.url + "/", timeout=10)
    assert home.status_code == 200 and "こども食堂" in home.text and 'lang="ja"' in home.text
    assert "Kids cafeteria" in requests.get(portal.url + "/?lang=en", timeout=10).text
    assert requests.get(portal.url + "/openapi.json", timeout=10).json()["paths"]["/api/v1/totals"]


def test_a_catch_up_saves_its_state_once_a_round_not_once_a_batch(portal, rig, monkeypatch):
    """sync-state.json is a report (every round resumes from the heartbeat's answer), so a catch-up of many
    batches writes it durably at the round's start and end, not after each batch; a failure mid-round
    still saves what the portal had acknowledged."""
    from kiosk.sync import uploader as upmod

    rig.donate(30)
    up = enrolled(rig, portal, batch_entries=10)
    saves: list[dict] = []
    real = upmod.write_atomic

    def spy(path, data, **kw):  # noqa: ANN001, ANN003, ANN202
        if str(path).endswith("sync-state.json"):
            saves.append(json.loads(data))
        return real(path, data, **kw)

    monkeypatch.setattr(upmod, "write_atomic", spy)
    batches: list[int] = []
    http = up.http.request

    def count(method, url, **kw):  # noqa: ANN001, ANN202
        if url.endswith("/batches"):
            batches.append(1)
        return http(method, url, **kw)

    up.http.request = count  # type: ignore[method-assign]
    st = up.sync_once()
    assert st.ok and st.accepted_through_seq == rig.ledger.size
    assert len(batches) >= 6
    assert len(saves) == 2, len(saves)  # after the heartbeat, and at the end
    assert saves[-1]["accepted_through_seq"] == rig.ledger.size and saves[-1]["pending"] == 0
    # A round that fails after some batches saves the portal's acknowledgement of them.
    rig.donate(30)
    saves.clear()
    sent: list[int] = []

    def fail_third(method, url, **kw):  # noqa: ANN001, ANN202
        if url.endswith("/batches"):
            sent.append(1)
            if len(sent) == 3:
                return http(method, url.replace("/batches", "/nowhere"), **kw)
        return http(method, url, **kw)

    up.http.request = fail_third  # type: ignore[method-assign]
    st = up.sync_once(max_attempts=1)
    assert not st.ok
    assert saves and saves[-1]["accepted_through_seq"] == st.accepted_through_seq > saves[0]["accepted_through_seq"]

"""Every malformed header or field is a 4xx with a reason, never a 500, on SQLite and on PostgreSQL: over
real HTTP on loopback, signed with the kiosk's own key where the check sits behind authentication.

PostgreSQL refuses what SQLite stores silently (a 41-character VARCHAR(40), a boot number past
INTEGER); server_sync/columns.py checks those before any write, so both databases answer the same."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from sync_helpers import batch_body, enrolled, fake_idm, signed_post

from kiosk.ledger import checkpoint as cpmod
from kiosk.ledger import keys
from kiosk.ledger.encoding import EncodingError, check_data
from server_sync.staff import add_user
from server_sync.wire import protocol as P
from server_sync.wire.numbers import decimal

PASSWORD = "correct horse battery"


def _raw(url: str, method: str, path: str, headers: list[tuple[str, bytes]], body: bytes = b"") -> tuple[int, bytes]:
    """Send header bytes exactly as given (requests would refuse or re-encode non-ASCII values)."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for k, v in headers:
        conn.putheader(k, v)
    if body or method == "POST":
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    out = resp.status, resp.read()
    conn.close()
    return out


def _signed_headers(rig, path: str, body: bytes, **override: bytes) -> list[tuple[str, bytes]]:  # noqa: ANN001
    sk = keys.load_private(rig.cfg.private_key_path)
    h = {k: v.encode() for k, v in P.sign_request(sk, rig.kiosk_id, "POST", path, body, int(time.time())).items()}
    h.update(override)
    return [(k, v) for k, v in h.items()] + [("Content-Type", b"application/json")]


def _heartbeat(rig, **fields) -> bytes:  # noqa: ANN001
    now = {"boot": 1, "mono_ms": 1000, "wall_ms": int(time.time() * 1000), "clock_synced": True, "ledger_size": 0}
    now.update(fields)
    return json.dumps(now).encode()


@pytest.mark.parametrize("created", ["²", "٣", "１２３", "9" * 40, "-5", "1e9", "1 2", "0x10"])
def test_a_bad_kiosk_created_header_is_401(portal, rig, created):
    enrolled(rig, portal)
    path = f"/api/v1/kiosks/{rig.kiosk_id}/heartbeat"
    body = _heartbeat(rig)
    status, out = _raw(portal.url, "POST", path, _signed_headers(rig, path, body, **{P.H_CREATED: created.encode()}),
                       body)
    assert 400 <= status < 500, (created, status, out)
    assert status == 401 and json.loads(out)["error"] == "bad_created"


@pytest.mark.parametrize("header,value", [
    (P.H_DIGEST, "sha-256=:²:".encode()), (P.H_DIGEST, b"sha-256=:" + b"A" * 5000 + b":"), (P.H_DIGEST, b"md5=x"),
    (P.H_SIGNATURE, "署名".encode()), (P.H_SIGNATURE, b"!!!!"), (P.H_SIGNATURE, b"A" * 8000),
    (P.H_KIOSK, "キオスク".encode()), (P.H_KIOSK, b"k" * 500),
    (P.H_IDEMPOTENCY, "鍵".encode()), (P.H_IDEMPOTENCY, b"k" * 201),
])
def test_bad_signed_headers_are_4xx(portal, rig, header, value):
    enrolled(rig, portal)
    path = f"/api/v1/kiosks/{rig.kiosk_id}/heartbeat"
    body = _heartbeat(rig)
    status, out = _raw(portal.url, "POST", path, _signed_headers(rig, path, body, **{header: value}), body)
    assert 400 <= status < 500, (header, value[:40], status, out[:200])


@pytest.mark.parametrize("length", ["²", "٣", "9" * 40, "-1"])
def test_a_bad_content_length_is_4xx(portal, length):
    u = urlsplit(portal.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.putrequest("POST", "/api/v1/enroll", skip_accept_encoding=True)
    conn.putheader("Content-Length", length.encode())
    conn.putheader("Content-Type", "application/json")
    conn.endheaders(b"{}")
    status = conn.getresponse().status
    conn.close()
    assert 400 <= status < 500, status


def test_a_huge_boot_in_a_heartbeat_is_422_not_a_database_error(portal, rig):
    enrolled(rig, portal)
    path = f"/api/v1/kiosks/{rig.kiosk_id}/heartbeat"
    r = signed_post(portal.url, rig, path, _heartbeat(rig, boot=2**40))
    assert r.status_code == 422, r.text
    assert "boot" in r.json()["reason"]
    # The kiosk is fine afterwards.
    assert signed_post(portal.url, rig, path, _heartbeat(rig)).status_code == 200


def _synced(portal, rig):  # noqa: ANN001, ANN202
    """An enrolled kiosk with two gifts at the portal: its uploader, the portal's totals, its ledger's size and a
    card's token, for a test that then feeds the portal an entry no honest kiosk writes."""
    rig.donate(2)
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    return up, portal.totals(), rig.ledger.size, rig.pepper.token(fake_idm(1))


@pytest.mark.parametrize("what", ["project", "donor", "boot", "config_version"])
def test_signed_entries_that_overflow_a_column_are_422_on_both_databases(portal, rig, what):
    """A stolen key signs values no honest kiosk writes; PostgreSQL would refuse them with a 500."""
    up, before, n, token = _synced(portal, rig)
    if what == "project":
        rig.ledger.record_intent("p" * 41, 100, "sim", token, uuid.uuid4().hex)
    elif what == "donor":
        rig.ledger.grant_points(token, 1, "cleanup")
    elif what == "boot":
        rig.ledger.record_intent("kodomo", 100, "sim", token, uuid.uuid4().hex)
    else:
        rig.ledger.append("config_change", {"source": "portal", "version": 2**40, "digest": "0" * 64})
    rows = [(e.seq, e.body, e.signature) for e in rig.ledger.iter_entries(n + 1)]
    # Re-sign the entry with what no honest kiosk writes (the kiosk's key is the attacker's).
    if what == "boot":
        rows = [_rewrite(rig, rows[0], lambda o: o.update(boot=2**40))]
    elif what == "donor":
        rows = [_rewrite(rig, rows[0], lambda o: o["data"].update(donor="d" * 65))]
    body = batch_body(rig, n + 1, rows[-1][0], rows=rows, old_size=0)
    r = signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/batches", body, key=f"overflow-{what}")
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["reason"]
    assert portal.totals() == before


_WRONG_TYPES = [
    ("donation_intent", "project", ["kodomo"]), ("donation_intent", "project", {"id": "kodomo"}),
    ("donation_intent", "project", None), ("donation_intent", "donor", ["x"]), ("donation_intent", "idem", ["x"]),
    ("donation_intent", "method", 1), ("donation", "project", None), ("donation", "provider_ref", {"id": 1}),
    ("config_change", "version", [3]), ("config_change", "version", {"v": 3}), ("config_change", "version", True),
    ("config_change", "version", "3"), ("points_grant", "activity", ["cleanup"]), ("points_grant", "donor", None),
]


@pytest.mark.parametrize("kind,field,value", _WRONG_TYPES)
def test_signed_entries_with_a_field_of_the_wrong_type_are_422_and_the_kiosk_goes_on(portal, rig, kind, field, value):
    """A stolen key signs a list, an object or null where a name belongs. The portal's reads of such a value
    (the kept totals keyed by project, the columns, the config documents) failed with a 500 at every retry, so
    the kiosk could upload nothing after it; the ledger's own rules now refuse it, at the kiosk and the portal."""
    up, before, n, token = _synced(portal, rig)
    if kind == "donation_intent":
        rig.ledger.record_intent("kodomo", 100, "sim", token, uuid.uuid4().hex)
    elif kind == "donation":
        rig.ledger.record_donation(rig.ledger.record_intent("kodomo", 100, "sim", token, uuid.uuid4().hex).seq,
                                   "sim-1", 1)
    elif kind == "config_change":
        rig.ledger.append("config_change", {"source": "portal", "version": 3, "digest": "0" * 64})
    else:
        rig.ledger.grant_points(token, 1, "cleanup")
    rows = [(e.seq, e.body, e.signature) for e in rig.ledger.iter_entries(n + 1)]
    # Re-sign the last entry with what no honest kiosk writes (the kiosk's key is the attacker's); the
    # entries before it (a donation's intent) are honest.
    rows[-1] = _rewrite(rig, rows[-1], lambda o: o["data"].update({field: value}))
    body = batch_body(rig, n + 1, rows[-1][0], rows=rows, old_size=0)
    r = signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/batches", body, key=f"types-{kind}-{field}")
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert r.json()["error"] == "invalid_entry" and repr(field) in r.json()["reason"], r.json()
    assert portal.totals() == before
    assert up.sync_once().ok  # the honest entries still go through
    # The ledger's rule, which the kiosk's writer applies too (new_entry), so an honest ledger never holds one.
    data = {"project": "kodomo", "amount_yen": 100, "method": "sim", "idem": "i", "donor": "d" * 64,
            "pepper_epoch": 1, "intent_seq": 1, "points": 0, "provider_ref": "r", "totals": {}, "version": 3,
            "digest": "0" * 64, "activity": "a"}
    check_data(kind, data)
    with pytest.raises(EncodingError, match=field):
        check_data(kind, {**data, field: value})


def _rewrite(rig, row, change):  # noqa: ANN001, ANN202
    """The same entry changed by ``change``, still chained to its predecessor and signed with the kiosk's key."""
    from kiosk.ledger.encoding import entry_hash, fast_canonical, parse_body

    obj = parse_body(row[1])
    change(obj)
    body = fast_canonical(obj)
    sk = keys.load_private(rig.cfg.private_key_path)
    return row[0], body, sk.sign(entry_hash(body))


def _note_variants(note: str) -> list[str]:
    text, _, sigs = note.partition("\n\n")
    return [
        text + "\nunsigned extra line\n\n" + sigs,          # an extension line the signature does not cover
        note + "— other AAAA\n",                              # a signature line that is not base64 of 68 bytes
        note + "trailing junk\n",                             # not a signature line
        note + "\n",                                          # a second blank line
        note.rstrip("\n"),                                    # no final newline
        note.replace("\n", "\r\n"),                           # CRLF
        text.replace("\n", "\n0", 1) + "\n\n" + sigs,        # leading zero in the size
        note.replace(" ", "  ", 1),                           # two spaces in the signature line
        "\x00" + note,                                        # a control character
    ]


def test_checkpoint_notes_must_be_exactly_signed_note_layout(portal, rig):
    rig.donate(2)
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    rig.donate(1)
    note = rig.ledger.checkpoint()
    pub = keys.load_private(rig.cfg.private_key_path).public_key()
    cpmod.open_note(note, pub)  # the real one verifies
    for bad in _note_variants(note):
        with pytest.raises(cpmod.CheckpointError):
            cpmod.open_note(bad, pub)
    # An extension line is allowed by the format only when it is signed with the rest of the text.
    sk = keys.load_private(rig.cfg.private_key_path)
    cp = cpmod.parse(note)[0]
    signed_ext = cpmod.sign(cpmod.Checkpoint(cp.origin, cp.size, cp.root, ("an extension",)), sk)
    assert cpmod.open_note(signed_ext, pub).extensions == ("an extension",)
    # ... and over HTTP each is a 422, never accepted and never a 500.
    eng = portal.app.state.engine
    from sqlalchemy import select

    from server_sync.db import kiosks
    with eng.connect() as conn:
        acked = conn.execute(select(kiosks.c.cp_size, kiosks.c.size).where(kiosks.c.id == rig.kiosk_id)).one()
    first = acked[1] + 1
    rows = [(e.seq, e.body, e.signature) for e in rig.ledger.iter_entries(first)]
    for i, bad in enumerate(_note_variants(note)):
        doc = P.batch_document(rig.kiosk_id, rows, bad, acked[0], [])
        body = json.dumps(doc, separators=(",", ":")).encode()
        r = signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/batches", body, key=f"bad-note-{i}")
        assert 400 <= r.status_code < 500, (i, r.status_code, r.text)
    assert up.sync_once().ok  # the honest upload still goes through


def test_a_form_number_in_other_scripts_is_a_message_not_a_500(db_url):
    from server_sync import catalog
    from server_sync.embedded import start_portal

    handle = start_portal(db_url)
    try:
        eng = handle.app.state.engine
        catalog.import_catalog(eng, {"groups": [{"id": "g", "name": "G"}], "projects": []})
        add_user(eng, "admin", PASSWORD)
        s = requests.Session()
        r = s.post(handle.url + "/staff/login", data={"username": "admin", "password": PASSWORD}, timeout=10)
        import re
        token = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
        for goal in ("²", "٣٣", "9" * 400, "１２³"):
            r = s.post(handle.url + "/staff/projects", data={
                "csrf": token, "id": "pp", "title": "T", "group_id": "g", "area": "green", "goal_yen": goal},
                timeout=10)
            assert r.status_code == 422, (goal, r.status_code)
            assert 'data-for="goal_yen"' in r.text
    finally:
        handle.stop()


def test_the_strict_decimal_parser():
    assert decimal("²") is None and decimal("٣") is None and decimal("５") is None
    assert decimal("0") == 0 and decimal("12") == 12 and decimal("012") is None
    assert decimal("012", leading_zeros=True) == 12
    assert decimal("9" * 19) is None  # beyond BIGINT
    assert decimal(str(2**63 - 1)) == 2**63 - 1
    assert decimal("5", 1, 4) is None and decimal("") is None and decimal(None) is None


def test_media_ranges_and_report_months_in_other_scripts_are_not_500(db_url, tmp_path):
    """The other parsers of numbers people or browsers send: a video's Range header, the reconciliation month."""
    import re as _re

    from server_sync import configstore
    from server_sync.embedded import start_portal
    from server_sync.public import byte_range
    from server_sync.reconcile import month_bounds, parse_time, parse_yen

    assert byte_range("bytes=²-", 100) is None and byte_range("bytes=-٣", 100) is None
    assert byte_range("bytes=0-9", 100) == (0, 9) and byte_range("bytes=-10", 100) == (90, 99)
    assert parse_time("²:²") is None and parse_time("12:30") == (12, 30, 0)
    assert parse_yen("9" * 5000) is None and parse_yen("1,000") == 1000
    import datetime as _dt
    today = _dt.date(2026, 12, 3)
    assert month_bounds("99999999999999999999-1", today)[2] == "2026-12"  # date() would overflow
    assert month_bounds("2026-11", today)[2] == "2026-11"

    handle = start_portal(db_url, secret_file=tmp_path / "secret")
    try:
        eng = handle.app.state.engine
        sha = configstore.add_media(eng, b"\x00" * 1000, "video/mp4")
        for rng in ("bytes=²-", "bytes=-٣", "bytes=0-" + "9" * 400, "bytes=5-1", "bytes=0-9"):
            r = requests.get(f"{handle.url}/api/v1/media/{sha}", headers={"Range": rng.encode()}, timeout=10)
            assert r.status_code < 500, (rng, r.status_code)
        add_user(eng, "admin", PASSWORD)
        s = requests.Session()
        s.post(handle.url + "/staff/login", data={"username": "admin", "password": PASSWORD}, timeout=10)
        for month in ("99999999999999999999-1", "²-1", "2026-13", "x"):
            r = s.get(handle.url + "/staff/reconciliation", params={"month": month, "imported": "²"}, timeout=10)
            # Refused in words with the form to write a month (tests/sync/test_s54hk_reconcile_csv.py), never a 500.
            assert r.status_code == 400, (month, r.status_code)
            assert "月の指定として正しくありません" in r.text and _re.search(r"20\d\d-\d\d", r.text)
    finally:
        handle.stop()

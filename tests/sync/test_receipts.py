"""Receipts that verify what they show (docs/receipts.md), on SQLite and PostgreSQL, over real HTTP.

- an auditor written here with nothing but ``cryptography``, ``hashlib`` and the JSON checks a real
  receipt, and refuses one a malicious portal altered (amount, body, signature, proof, checkpoint, key);
- the portal's proofs come from the stored tree nodes (O(log n) rows) and equal the full tree's;
- a kiosk stored by an older portal (no nodes) is rebuilt once;
- the donation service checkpoints right after a donation, after the thank-you is published;
- a receipt shows one donation, answers with no-store, expires after the configured days;
- ``kiosk receipt verify URL`` (the auditor's command) exits 0/1/2 as documented;
- another gift's genuine receipt, relabelled with the donor's code, is refused: the code is recomputed
  from the body and signature served.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sync_helpers import PROJECTS, enrolled

from kiosk.ledger import merkle
from server_sync import tree
from server_sync.configstore import publish
from server_sync.db import kiosks, make_engine, tree_nodes
from server_sync.embedded import start_portal
from server_sync.wire.receipt import check_receipt, receipt_code


# --- an auditor with nothing but cryptography and the JSON ------------------------------------------
def _h(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def _verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2, written out again here on purpose (not the project's merkle module)."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = _h(b"\x01", p, r)
            if fn % 2 == 0:
                while fn and fn % 2 == 0:
                    fn //= 2
                    sn //= 2
        else:
            r = _h(b"\x01", r, p)
        fn //= 2
        sn //= 2
    return sn == 0 and r == root


def auditor(doc: dict, key_id: str, code: str) -> tuple[bool, str]:
    """Check a receipt answer knowing only the receipt code and the kiosk's key id (the QR link's path and
    fragment)."""
    try:
        v = doc["verification"]
        body = base64.b64decode(v["entry_body"], validate=True)
        sig = bytes.fromhex(v["entry_signature"])
        pub_raw = bytes.fromhex(v["public_key"])
        note = v["checkpoint"]
        proof = [bytes.fromhex(p) for p in v["proof"]]
    except (KeyError, ValueError):
        return False, "fields"
    # The body and signature served are the ones the code was computed from, not another gift's.
    if base64.b32encode(_h(b"civic-kiosk-receipt/v1\x00", sig, body)[:16]).decode().rstrip("=") != code.upper():
        return False, "code"
    if _h(pub_raw)[:8].hex() != key_id:
        return False, "key"
    pub = Ed25519PublicKey.from_public_bytes(pub_raw)
    leaf = _h(b"\x00", body)
    try:
        pub.verify(sig, leaf)
    except InvalidSignature:
        return False, "signature"
    obj = json.loads(body)
    if obj["type"] != "donation" or obj["seq"] != v["seq"] or obj["key_id"] != key_id:
        return False, "body"
    text, _, sigs = note.partition("\n\n")
    origin, size, root_b64 = text.split("\n")
    if origin != f"civic-kiosk.ledger/{obj['kiosk']}":
        return False, "checkpoint origin"
    dash, name, blob = sigs.strip("\n").split(" ")
    raw = base64.b64decode(blob)
    if dash != "\u2014" or name != origin or raw[:4] != _h(name.encode(), b"\n\x01", pub_raw)[:4]:
        return False, "checkpoint key"
    try:
        pub.verify(raw[4:], (text + "\n").encode())
    except InvalidSignature:
        return False, "checkpoint signature"
    if not _verify_inclusion(leaf, obj["seq"] - 1, int(size), proof, base64.b64decode(root_b64)):
        return False, "proof"
    d = doc["donation"]
    if (d["amount_yen"], d["project"], d["seq"], d["kiosk_id"]) != (
            obj["data"]["amount_yen"], obj["data"]["project"], obj["seq"], obj["kiosk"]):
        return False, "shown"
    return True, "ok"


# --- what a malicious portal might serve ----------------------------------------------------------------
def _reroot(note: str, root: bytes) -> str:
    lines = note.split("\n")
    lines[2] = base64.b64encode(root).decode()
    return "\n".join(lines)


def tamperings(doc: dict) -> dict[str, dict]:
    """Receipts a dishonest portal could serve instead of ``doc``: each must fail every check."""
    out = {}
    v = doc["verification"]

    d = copy.deepcopy(doc)
    d["donation"]["amount_yen"] += 1000  # shows more than was given
    out["amount"] = d

    d = copy.deepcopy(doc)
    body = base64.b64decode(v["entry_body"])
    obj = json.loads(body)
    obj["data"]["amount_yen"] += 1000
    forged = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    d["verification"]["entry_body"] = base64.b64encode(forged).decode()
    d["verification"]["entry_hash"] = _h(b"\x00", forged).hex()
    d["donation"]["amount_yen"] = obj["data"]["amount_yen"]
    out["body"] = d

    d = copy.deepcopy(doc)
    s = bytearray(bytes.fromhex(v["entry_signature"]))
    s[5] ^= 1
    d["verification"]["entry_signature"] = bytes(s).hex()
    out["signature"] = d

    d = copy.deepcopy(doc)
    p = bytearray(bytes.fromhex(v["proof"][0]))
    p[0] ^= 1
    d["verification"]["proof"][0] = bytes(p).hex()
    out["proof"] = d

    d = copy.deepcopy(doc)
    d["verification"]["checkpoint"] = _reroot(v["checkpoint"], bytes(32))  # its signature no longer holds
    out["checkpoint"] = d

    # The whole receipt re-signed, consistently, by a key the portal made: only the key id in the QR
    # link tells it apart.
    d = copy.deepcopy(doc)
    sk = Ed25519PrivateKey.generate()
    pub_raw = sk.public_key().public_bytes_raw()
    obj = json.loads(body)
    obj["key_id"] = _h(pub_raw)[:8].hex()
    forged = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    leaf = _h(b"\x00", forged)
    origin = f"civic-kiosk.ledger/{obj['kiosk']}"
    fake_leaves = [bytes(32)] * (obj["seq"] - 1) + [leaf]
    text = f"{origin}\n{obj['seq']}\n{base64.b64encode(merkle.root(fake_leaves)).decode()}\n"
    kid4 = _h(origin.encode(), b"\n\x01", pub_raw)[:4]
    note = f"{text}\n\u2014 {origin} {base64.b64encode(kid4 + sk.sign(text.encode())).decode()}\n"
    d["verification"].update(
        public_key=pub_raw.hex(), entry_body=base64.b64encode(forged).decode(), entry_hash=leaf.hex(),
        entry_signature=sk.sign(leaf).hex(), checkpoint=note, checkpoint_size=obj["seq"],
        proof=[h.hex() for h in merkle.inclusion_proof(obj["seq"] - 1, fake_leaves)])
    out["key"] = d
    return out


def _receipt(portal, code: str) -> dict:  # noqa: ANN001
    r = requests.get(f"{portal.url}/api/v1/receipts/{code}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_an_auditor_with_only_cryptography_verifies_a_real_receipt_and_refuses_altered_ones(portal, rig):
    publish(portal.app.state.engine, {"projects": PROJECTS})
    gifts = rig.donate(40)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal, batch_entries=9).sync_once().ok
    key_id = rig.ledger.key_id
    for e in (gifts[0], gifts[17], gifts[-1]):
        code = receipt_code(e)
        doc = _receipt(portal, code)
        v = doc["verification"]
        assert base64.b64decode(v["entry_body"]) == e.body and bytes.fromhex(v["entry_signature"]) == e.signature
        assert v["checkpoint_size"] >= gifts[-1].seq and v["verified"] is True
        assert auditor(doc, key_id, code) == (True, "ok")
        res = check_receipt(doc, key_id, code=code)  # the same steps the page's script and `kiosk receipt verify` take
        assert res.ok and res.body is not None and res.body["data"]["amount_yen"] == e.data["amount_yen"]
        for what, bad in tamperings(doc).items():
            assert auditor(bad, key_id, code)[0] is False, what
            assert check_receipt(bad, key_id, code=code).ok is False, what
    # Without the link's key id nothing is verified: the portal's own key is only its word.
    assert check_receipt(doc, None, code=code).ok is False
    assert auditor(doc, "00" * 8, code) == (False, "key")


def test_proofs_from_the_stored_nodes_equal_the_full_trees(portal, rig, db_url):
    rig.donate(70)
    up = enrolled(rig, portal, batch_entries=5)  # many batches: the tree is extended across their edges
    assert up.sync_once().ok
    rig.donate(23)
    rig.ledger.checkpoint()
    assert up.sync_once().ok
    eng = make_engine(db_url)
    try:
        leaves = [e.entry_hash for e in rig.ledger.iter_entries()]
        with eng.connect() as conn:
            assert conn.execute(select(kiosks.c.tree_size)).scalar() == len(leaves)
            nodes = conn.execute(tree_nodes.select().where(tree_nodes.c.kiosk_id == rig.kiosk_id)).all()
            # every perfect subtree of 16 leaves or more, and nothing else
            assert len(nodes) == sum(len(leaves) >> lv for lv in range(tree.STRIDE, 20))
            for size in (1, 2, 3, 15, 16, 17, 31, 32, 33, 64, 65, 100, len(leaves)):
                for index in sorted({0, 1, size // 2, size - 2, size - 1} & set(range(size))):
                    assert tree.inclusion_proof(conn, rig.kiosk_id, index, size) == \
                        merkle.inclusion_proof(index, leaves[:size]), (index, size)
    finally:
        eng.dispose()


def test_a_kiosk_stored_by_an_older_portal_gets_its_tree_once(portal, rig, db_url):
    gifts = rig.donate(30)
    rig.ledger.checkpoint()
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    eng = make_engine(db_url)
    try:
        with eng.begin() as conn:  # as an older portal left it: entries, no nodes
            conn.execute(tree_nodes.delete())
            conn.execute(update(kiosks).values(tree_size=None))
        doc = _receipt(portal, receipt_code(gifts[3]))
        assert doc["verification"]["verified"]
        assert auditor(doc, rig.ledger.key_id, receipt_code(gifts[3])) == (True, "ok")
        with eng.connect() as conn:
            assert conn.execute(select(kiosks.c.tree_size)).scalar() == rig.ledger.size
        # Ingest after an older portal (nodes gone again) rebuilds in its own transaction and goes on.
        with eng.begin() as conn:
            conn.execute(tree_nodes.delete())
            conn.execute(update(kiosks).values(tree_size=None))
        more = rig.donate(20)
        rig.ledger.checkpoint()
        assert up.sync_once().ok
        for e in (gifts[0], more[-1]):
            assert auditor(_receipt(portal, receipt_code(e)), rig.ledger.key_id, receipt_code(e)) == (True, "ok")
    finally:
        eng.dispose()


def test_a_receipt_shows_one_donation_answers_no_store_and_expires(db_url, rig):
    eng = make_engine(db_url)
    handle = start_portal(db_url, receipt_days=30)
    try:
        old, new = rig.donate(2, card=1)
        rig.ledger.checkpoint()
        assert enrolled(rig, handle).sync_once().ok
        for e in (old, new):
            r = requests.get(f"{handle.url}/api/v1/receipts/{receipt_code(e)}", timeout=10)
            assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
            assert set(r.json()) == {"receipt", "donation", "verification"}
        # The portal received ``old`` 31 days ago (its own receive time: no kiosk clock moves it).
        from server_sync.db import entries

        with eng.begin() as conn:
            conn.execute(update(entries).where(entries.c.kiosk_id == rig.kiosk_id, entries.c.seq == old.seq)
                         .values(received_ms=entries.c.received_ms - 31 * 86_400_000))
        gone = requests.get(f"{handle.url}/api/v1/receipts/{receipt_code(old)}", timeout=10)
        assert gone.status_code == 404 and gone.headers["Cache-Control"] == "no-store"
        assert gone.json()["error"] == "not_found"  # the same answer as an unknown code
        page = requests.get(f"{handle.url}/r/{receipt_code(old)}", timeout=10)
        assert page.status_code == 404 and "no-store" in page.headers["Cache-Control"]
        assert "見つかりません" in page.text and "data-code" not in page.text
        assert requests.get(f"{handle.url}/api/v1/receipts/{receipt_code(new)}", timeout=10).status_code == 200
    finally:
        handle.stop()
        eng.dispose()


def test_receipt_days_come_from_the_portal_environment(monkeypatch):
    from server_sync.app import options_from_env

    monkeypatch.setenv("KIOSK_PORTAL_RECEIPT_DAYS", "14")
    assert options_from_env()["receipt_days"] == 14
    for bad in ("0", "two weeks", "-3", "99999"):
        monkeypatch.setenv("KIOSK_PORTAL_RECEIPT_DAYS", bad)
        with pytest.raises(RuntimeError, match="KIOSK_PORTAL_RECEIPT_DAYS"):
            options_from_env()


# --- the kiosk checkpoints right after each donation --------------------------------------------------
def test_the_kiosk_checkpoints_right_after_a_donation_so_the_receipt_verifies_at_once(portal, rig, tmp_path):
    from kiosk.donation import flow
    from kiosk.donation.service import DonationService
    from kiosk.payment import SimulatedTerminal
    from kiosk.reader.events import CardPresented, TapRecord

    publish(portal.app.state.engine, {"projects": PROJECTS})
    settings = flow.FlowSettings(projects=tuple(p["id"] for p in PROJECTS), default_yen=500,
                                 daily_limit_per_card_yen=5000)
    size_at_thanks: list[int] = []
    led = rig.ledger
    svc = DonationService(led, SimulatedTerminal(tmp_path / "sim.db", mode="approve"), settings,
                          on_state=lambda s: size_at_thanks.append(led.size) if s.name == "thanks" else None)
    svc.start()
    up = enrolled(rig, portal)
    assert up.sync_once().ok  # whatever the kiosk held before; from here on no explicit checkpoint is made
    for n in range(3):
        tok = rig.pepper.token(hashlib.sha256(f"svc-card-{n}".encode()).digest()[:8])
        svc.reader_event(CardPresented(reader_id="r", at=0.0, record=TapRecord(
            reader_id="r", family="suica", system_code=3, token=tok, balance_yen=5000, last_transaction=None,
            read_ms=1.0)))
        assert svc.state.name == "thanks"
        don = led.entry(svc.state.thanks.receipt.seq)
        last = led.entry(led.size)
        # The thank-you was published before the checkpoint (its commit is not on the donor's path) ...
        assert size_at_thanks[-1] == don.seq
        # ... and the checkpoint came right after it, covering it.
        assert last.type == "checkpoint" and last.seq == don.seq + 1 and last.data["size"] == don.seq
        assert up.sync_once().ok
        doc = _receipt(portal, receipt_code(don))
        assert doc["verification"]["status"] == "verified"
        assert auditor(doc, led.key_id, receipt_code(don)) == (True, "ok")
        svc.handle(flow.Cancel(now_ms=svc.now_ms()))


# --- kiosk receipt verify URL ---------------------------------------------------------------------------
def test_kiosk_receipt_verify_checks_a_link_online_and_a_saved_answer_offline(portal, rig, tmp_path, capsys):
    from kiosk.cli import main

    gift = rig.donate(5)[2]
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    code, kid = receipt_code(gift), rig.ledger.key_id
    url = f"{portal.url}/r/{code}#k={kid}"
    assert main(["receipt", "verify", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("判定：この寄付は確認できました。") and "\nVERIFIED: ¥" in out, out  # Japanese first
    assert f"entry {gift.seq}" in out and kid in out
    # Another key id in the link: the portal's key is not the kiosk's.
    assert main(["receipt", "verify", f"{portal.url}/r/{code}#k={'ab' * 8}"]) == 1
    assert "NOT VERIFIED" in capsys.readouterr().out
    # Offline: a saved answer, altered in each way, is refused; the honest one passes without the network.
    doc = _receipt(portal, code)
    for what, bad in {"honest": doc, **tamperings(doc)}.items():
        f = tmp_path / f"{what}.json"
        f.write_text(json.dumps(bad))
        want = 0 if what == "honest" else 1
        assert main(["receipt", "verify", f"https://nowhere.invalid/r/{code}#k={kid}", "--file", str(f)]) == want, what
    capsys.readouterr()
    assert main(["receipt", "verify", f"{portal.url}/r/{'A' * 26}#k={kid}"]) == 1  # unknown code
    assert "does not know" in capsys.readouterr().out
    assert main(["receipt", "verify", f"{portal.url}/r/{code}"]) == 2  # no key id
    assert main(["receipt", "verify", "not a link"]) == 2


def test_kiosk_receipt_verify_follows_a_redirect_and_still_checks_what_it_is_served(portal, rig, capsys):
    """A portal that moved (http to https, a new address) answers the old links with a redirect: the command
    follows it, so receipts printed with the old address still verify, and it trusts no host for that: a
    redirect to a server that serves another gift's genuine receipt under this code is NOT VERIFIED
    (docs/receipts.md). `kiosk doctor` and the uploader refuse redirects instead (tests/ops, tests/sync)."""
    from kiosk.cli import main
    from tests.loopback import Handler, LoopbackServer

    mine, _other, forged = relabelled(portal, rig)
    code, kid = receipt_code(mine), rig.ledger.key_id
    genuine = json.dumps(_receipt(portal, code)).encode()
    served = {"/genuine": genuine, "/forged": json.dumps(forged).encode()}

    class NewHome(Handler):  # where the portal went: /genuine/... answers as the portal, /forged/... lies
        def do_GET(self) -> None:  # noqa: N802
            self.answer(200, served["/" + self.path.split("/")[1]])

    with LoopbackServer(NewHome) as home:
        class Moved(Handler):  # the old address: every path redirected to the new home
            target = "/genuine"

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(301)
                self.send_header("Location", home.url + Moved.target + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

        with LoopbackServer(Moved) as moved:
            capsys.readouterr()
            assert main(["receipt", "verify", f"{moved.url}/r/{code}#k={kid}"]) == 0
            Moved.target = "/forged"
            assert main(["receipt", "verify", f"{moved.url}/r/{code}#k={kid}"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("判定：この寄付は確認できました。"), out
    assert any(ln.startswith("VERIFIED: ¥") for ln in out), out
    assert [ln for ln in out if ln.startswith("NOT VERIFIED: ")] and out[-1].startswith("NOT VERIFIED: "), out


def relabelled(portal, rig) -> tuple[object, object, dict]:  # noqa: ANN001
    """Two genuine gifts of one kiosk, synced and checkpointed: ``(mine, other, other's receipt relabelled as
    mine)``, the answer a dishonest portal gives to my code (real signature, real proof, same kiosk key)."""
    publish(portal.app.state.engine, {"projects": PROJECTS})
    gifts = rig.donate(6, card=1)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    mine = max(gifts, key=lambda g: g.data["amount_yen"])
    other = next(g for g in gifts if g.data["amount_yen"] < mine.data["amount_yen"])
    doc = _receipt(portal, receipt_code(other))
    doc["receipt"] = receipt_code(mine)
    return mine, other, doc


def test_a_genuine_receipt_relabelled_with_another_gifts_code_is_refused(portal, rig, tmp_path, capsys):
    """A portal answers donor A's code with donor B's genuine receipt from the same kiosk: every verifier
    recomputes the code from the body and signature it was served, so none says "verified"."""
    from kiosk.cli import main
    from tests.loopback import Handler, LoopbackServer

    mine, other, doc = relabelled(portal, rig)
    code, kid = receipt_code(mine), rig.ledger.key_id

    class Liar(Handler):  # answers every receipt code with the other gift's receipt
        def do_GET(self) -> None:  # noqa: N802
            self.answer(200, json.dumps(doc).encode())

    # The auditor's command, online against the lying portal and offline with its answer saved.
    capsys.readouterr()
    with LoopbackServer(Liar) as liar:
        assert main(["receipt", "verify", f"{liar.url}/r/{code}#k={kid}"]) == 1
    saved = tmp_path / "answer.json"
    saved.write_text(json.dumps(doc), "utf-8")
    assert main(["receipt", "verify", f"https://nowhere.invalid/r/{code.lower()}#k={kid}", "--file", str(saved)]) == 1
    out = capsys.readouterr().out
    assert out.count("NOT VERIFIED: the signed record served is not this receipt code's") == 2, out
    assert "VERIFIED: ¥" not in out
    # The check itself, with the code as the donor holds it (any case): refused before anything else.
    assert check_receipt(doc, kid, code=receipt_code(other)).ok  # genuine, under its own code
    assert auditor(doc, kid, receipt_code(other)) == (True, "ok")
    assert auditor(doc, kid, code) == (False, "code")  # the in-test auditor, too
    for asked in (code, code.lower(), f" {code} "):
        res = check_receipt(doc, kid, code=asked)
        assert not res.ok and res.body is None and "not this receipt code's" in res.reason, res.reason
    # The honest answer to my code still verifies, whatever case the code is typed in; a malformed code never.
    honest = _receipt(portal, code)
    assert check_receipt(honest, kid, code=code.lower()).ok
    saved.write_text(json.dumps(honest), "utf-8")
    assert main(["receipt", "verify", f"https://nowhere.invalid/r/{code}#k={kid}", "--file", str(saved)]) == 0
    for bad in ("", code[:-1], code + "A", code.replace(code[0], "1")):
        assert "not a receipt code" in check_receipt(honest, kid, code=bad).reason


# --- a kiosk that re-keyed since the donation -------------------------------------------------------------
def rekeyed(portal, rig) -> tuple[list, list, str]:  # noqa: ANN001
    """Gifts before and after `kiosk rekey` (the old key signs the key_change), all synced and checkpointed."""
    from kiosk.cli import main as kiosk_main
    from kiosk.ops.local_files import open_ledger

    publish(portal.app.state.engine, {"projects": PROJECTS})
    before = rig.donate(3)
    assert enrolled(rig, portal).sync_once().ok
    old_kid = rig.ledger.key_id
    assert kiosk_main(["rekey", "--config", str(rig.config_path)]) == 0
    rig.ledger.close(checkpoint=False)
    rig.ledger = open_ledger(rig.cfg, clock=rig.clock)  # `kiosk run` starts again with the new key
    after = rig.donate(2)
    rig.ledger.checkpoint()
    up = rig.uploader(portal.url)
    assert up.sync_once().ok and up.sync_once().ok
    assert rig.ledger.key_id != old_kid
    return before, after, old_kid


def test_a_receipt_from_before_a_rekey_verifies_through_the_key_change(portal, rig):
    before, after, old_kid = rekeyed(portal, rig)
    doc = _receipt(portal, receipt_code(before[0]))
    v = doc["verification"]
    assert v["verified"] is True and v["key_id"] == old_kid and len(v["key_changes"]) == 1
    code = receipt_code(before[0])
    res = check_receipt(doc, old_kid, code=code)  # the QR of an old gift names the old key
    assert res.ok, res.reason
    assert not check_receipt(doc, rig.ledger.key_id, code=code).ok  # the entry was not signed by the new key
    # A portal that hides the hand-over, or forges it, is caught: the checkpoint is the new key's.
    hidden = copy.deepcopy(doc)
    hidden["verification"]["key_changes"] = []
    assert "checkpoint" in check_receipt(hidden, old_kid, code=code).reason
    forged = copy.deepcopy(doc)
    kc = forged["verification"]["key_changes"][0]
    kc["entry_signature"] = Ed25519PrivateKey.generate().sign(b"x" * 32).hex()
    assert "not signed by the key it replaces" in check_receipt(forged, old_kid, code=code).reason
    # A gift after the re-key: signed by the new key, no hand-over to show.
    new = _receipt(portal, receipt_code(after[0]))
    assert new["verification"]["key_changes"] == []
    assert check_receipt(new, rig.ledger.key_id, code=receipt_code(after[0])).ok
    assert auditor(new, rig.ledger.key_id, receipt_code(after[0])) == (True, "ok")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.binary(min_size=64, max_size=64))
def test_receipt_codes_are_the_base32_of_the_digest(body, signature):
    from server_sync.wire.receipt import DOMAIN, receipt_code_of

    digest = hashlib.sha256(DOMAIN + signature + body).digest()[:16]
    assert receipt_code_of(body, signature) == base64.b32encode(digest).decode("ascii").rstrip("=")


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 300), st.lists(st.integers(0, 40), min_size=1, max_size=6))
def test_the_verifiers_range_notes_the_nodes_the_tree_stores(start, batches):
    # Ingest stores the nodes the verifier's range noted (tree.Recorder) instead of hashing the leaves again
    # (tree._grow): the same nodes, batch after batch, from a range resumed at any size.
    from kiosk.ledger.state import LedgerState

    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(start + sum(batches))]
    st_ = LedgerState()
    for leaf in leaves[:start]:
        st_.tree.append(leaf)
    stack, at = [], 0
    at, _ = tree._grow(stack, 0, leaves[:start])
    for n in batches:
        rec = tree.Recorder.over(st_)
        for leaf in leaves[at:at + n]:
            st_.tree.append(leaf)
        at, made = tree._grow(stack, at, leaves[at:at + n])
        assert rec.made == [(m["level"], m["idx"], m["hash"]) for m in made]
        assert st_.tree.root() == merkle.root(leaves[:at]) and st_.tree.size == at

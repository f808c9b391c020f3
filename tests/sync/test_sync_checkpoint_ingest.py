"""Ingest by checkpoint (docs/sync.md): a batch vouched for by a checkpoint entry is accepted without
checking each entry's signature, and still every forged or altered entry in it is refused.

Real portal over HTTP on loopback, on SQLite and PostgreSQL; batches hand-built from a real kiosk
ledger and signed by the kiosk key, as a kiosk with a damaged or doctored ledger would send them.
"""

from __future__ import annotations

import json

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sync_helpers import enrolled, portal_entry_count, signed_post

from kiosk.ledger import keys
from kiosk.ledger.encoding import entry_hash
from server_sync import ingest as ingest_mod
from server_sync.wire import protocol as P


def totals(portal) -> dict:  # noqa: ANN001
    return requests.get(portal.url + "/api/v1/totals", timeout=10).json()


def _rows(rig, first: int = 1, last: int | None = None) -> list[tuple[int, bytes, bytes]]:  # noqa: ANN001
    return [(e.seq, e.body, e.signature) for e in rig.ledger.iter_entries(first, last)]


def _checkpoint_entries(rig) -> list:  # noqa: ANN001
    return [e for e in rig.ledger.iter_entries() if e.type == "checkpoint"]


def _post(portal, rig, rows, note, key):  # noqa: ANN001, ANN202
    doc = P.batch_document(rig.kiosk_id, rows, note, 0, [])
    return signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/batches",
                       json.dumps(doc, separators=(",", ":")).encode(), key)


@pytest.fixture
def counted(monkeypatch):  # noqa: ANN201
    """Counts the per-entry signature checks the portal makes (a spy: the checks still run)."""
    calls = {"n": 0}
    real = ingest_mod._bad_signature

    def spy(pub, ds):  # noqa: ANN001, ANN202
        calls["n"] += len(ds)
        return real(pub, ds)

    monkeypatch.setattr(ingest_mod, "_bad_signature", spy)
    return calls


def test_a_checkpointed_batch_is_accepted_on_one_signature(portal, rig, counted):
    rig.donate(21)
    cp = _checkpoint_entries(rig)[-1]
    enrolled(rig, portal)
    r = _post(portal, rig, _rows(rig, 1, cp.seq), cp.data["note"], "cp-ok")
    assert r.status_code == 200, r.text
    assert r.json()["accepted_through_seq"] == cp.seq and r.json()["checkpoint_size"] == cp.data["size"]
    assert counted["n"] == 1  # the checkpoint entry's own signature; every entry before it is vouched for
    assert portal_entry_count(portal.db_url, rig.kiosk_id) == (cp.seq, cp.seq)


def test_entries_past_the_last_checkpoint_are_checked_one_by_one(portal, rig, counted):
    rig.donate(21)
    size = rig.ledger.size
    cp = _checkpoint_entries(rig)[-1]
    assert cp.seq < size, "the test needs entries after the newest checkpoint entry"
    enrolled(rig, portal)
    r = _post(portal, rig, _rows(rig), cp.data["note"], "tail-ok")
    assert r.status_code == 200, r.text
    assert counted["n"] == size - cp.seq + 1
    # A kiosk that never checkpoints: nothing vouches, so everything is checked (no checkpoint entry here).
    assert totals(portal) == rig.expected_totals()


def _bad_variants(rig, cp):  # noqa: ANN001, ANN202
    """(name, rows, seq the portal must name) for forged and altered entries under checkpoint entry ``cp``."""
    rows = _rows(rig, 1, cp.seq)
    sk = keys.load_private(rig.cfg.private_key_path)
    mallory = Ed25519PrivateKey.generate()
    i = next(k for k, (_, b, _) in enumerate(rows) if b'"type":"donation"' in b)  # a covered donation
    seq_i = rows[i][0]
    out = []
    # The amount changed after signing.
    bad = list(rows)
    bad[i] = (seq_i, rows[i][1].replace(b'"amount_yen":', b'"amount_yen":9'), rows[i][2])
    out.append(("altered body", bad, seq_i))
    # An authentic body with another key's signature, with flipped signature bits, with a zero signature.
    bad = list(rows)
    bad[i] = (seq_i, rows[i][1], mallory.sign(entry_hash(rows[i][1])))
    out.append(("forged signature", bad, seq_i))
    bad = list(rows)
    bad[i] = (seq_i, rows[i][1], bytes(b ^ 1 for b in rows[i][2]))
    out.append(("flipped signature", bad, seq_i))
    bad = list(rows)
    bad[i] = (seq_i, rows[i][1], bytes(64))
    out.append(("zero signature", bad, seq_i))
    # Every entry signed by another key.
    out.append(("all forged", [(s, b, mallory.sign(entry_hash(b))) for s, b, _ in rows], 1))
    # The checkpoint entry itself forged: it vouches for nothing, so the first bad entry is named.
    bad = list(rows)
    bad[-1] = (cp.seq, rows[-1][1], mallory.sign(entry_hash(rows[-1][1])))
    out.append(("forged checkpoint entry", bad, cp.seq))
    # The kiosk key itself re-signs an altered body (a doctored ledger on the kiosk): the chain and the
    # checkpoint's root give it away, though every signature verifies.
    bad = list(rows)
    body = rows[i][1].replace(b'"provider_ref":"', b'"provider_ref":"x')
    bad[i] = (seq_i, body, sk.sign(entry_hash(body)))
    out.append(("re-signed altered body", bad, seq_i + 1))
    return out


def test_every_forged_or_altered_entry_in_a_checkpointed_batch_is_refused(portal, rig):
    rig.donate(21)
    cp = _checkpoint_entries(rig)[-1]
    enrolled(rig, portal)
    for name, rows, seq in _bad_variants(rig, cp):
        r = _post(portal, rig, rows, cp.data["note"], "bad-" + name.replace(" ", "-"))
        assert r.status_code == 422 and r.json()["error"] == "invalid_entry", (name, r.text)
        assert r.json()["seq"] == seq, (name, r.json())
        if name != "re-signed altered body":
            assert "signature" in r.json()["reason"], (name, r.json())
        assert portal_entry_count(portal.db_url, rig.kiosk_id) == (0, 0), name
    # No alarm was raised for any of these: they are refused entries, not equivocation.
    k = requests.get(portal.url + "/api/v1/totals", timeout=10).json()
    assert k["count"] == 0
    assert enrolled(rig, portal).sync_once().ok and totals(portal) == rig.expected_totals()


def test_a_forged_entry_after_the_checkpoint_entry_is_refused(portal, rig):
    rig.donate(21)
    cp = _checkpoint_entries(rig)[-1]
    rows = _rows(rig)
    assert rows[-1][0] > cp.seq
    mallory = Ed25519PrivateKey.generate()
    bad = rows[:-1] + [(rows[-1][0], rows[-1][1], mallory.sign(entry_hash(rows[-1][1])))]
    enrolled(rig, portal)
    r = _post(portal, rig, bad, cp.data["note"], "tail-forged")
    assert r.status_code == 422 and r.json()["seq"] == rows[-1][0] and "signature" in r.json()["reason"]
    assert portal_entry_count(portal.db_url, rig.kiosk_id) == (0, 0)


def test_a_checkpoint_entry_without_a_signature_digest_vouches_for_nothing(portal, rig, counted):
    """Checkpoint entries written before ``sigs`` existed commit to bodies only: each entry is checked."""
    rig.donate(4)
    led = rig.ledger
    from kiosk.ledger import checkpoint as cpmod

    note = cpmod.sign(cpmod.Checkpoint(led.origin, led.size, led.st.tree.root()), keys.load_private(
        rig.cfg.private_key_path))
    # As an older kiosk wrote it: size, root and note only (appending through the ledger's own writer).
    old = led._append("checkpoint", {"size": led.size, "root": led.st.tree.root().hex(), "note": note})
    rows = _rows(rig, 1, old.seq)
    mallory = Ed25519PrivateKey.generate()
    k = old.seq - 1
    bad = rows[:k - 1] + [(rows[k - 1][0], rows[k - 1][1], mallory.sign(entry_hash(rows[k - 1][1])))] + rows[k:]
    enrolled(rig, portal)
    r = _post(portal, rig, bad, note, "legacy-forged")
    assert r.status_code == 422 and r.json()["seq"] == k and "signature" in r.json()["reason"]
    counted["n"] = 0
    r = _post(portal, rig, rows, note, "legacy-ok")
    assert r.status_code == 200, r.text
    newest_with_digest = max(e.data["size"] for e in _checkpoint_entries(rig) if "sigs" in e.data)
    assert counted["n"] == old.seq - newest_with_digest


def _donate_like_a_kiosk(rig, n: int) -> None:  # noqa: ANN001
    """As `kiosk run` writes them: a checkpoint entry right after each donation (DonationService)."""
    for _ in range(n):
        rig.donate(1)
        rig.ledger.checkpoint()


@pytest.fixture
def notes_checked(monkeypatch):  # noqa: ANN201
    """Counts checkpoint-note signature checks anywhere (a spy: the checks still run)."""
    from kiosk.ledger import checkpoint as cpmod

    calls = {"n": 0}
    real = cpmod.open_note

    def spy(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        return real(*a, **kw)

    monkeypatch.setattr(cpmod, "open_note", spy)
    return calls


def test_covered_checkpoint_entries_notes_are_vouched_for_too(portal, rig, counted, notes_checked):
    """A kiosk checkpoints after every donation, so a third of its entries are checkpoint entries: their
    notes are covered by the newest checkpoint entry like any other entry, and only its note is checked.
    The batch's own checkpoint note is that same note, signed by the same key: checked once, not twice."""
    _donate_like_a_kiosk(rig, 12)
    cps = _checkpoint_entries(rig)
    assert len(cps) >= 12
    cp = cps[-1]
    enrolled(rig, portal)
    notes_checked["n"] = 0
    r = _post(portal, rig, _rows(rig, 1, cp.seq), cp.data["note"], "kiosk-like")
    assert r.status_code == 200, r.text
    assert r.json()["checkpoint_size"] == cp.data["size"]
    assert counted["n"] == 1
    assert notes_checked["n"] == 1  # the batch's note is the newest checkpoint entry's; not one per entry
    assert totals(portal) == rig.expected_totals()


def test_each_received_body_is_hashed_once(portal, rig, monkeypatch):
    """The portal hashes a received body when it reads the batch and tells the verifier so (``feed(hashed=True)``):
    one SHA-256 of each body, not one to build the row and another to compare with it."""
    from kiosk.ledger import verify as verify_mod

    hashed: list[bytes] = []
    for mod in (ingest_mod, verify_mod):
        real = mod.entry_hash
        monkeypatch.setattr(mod, "entry_hash", lambda body, real=real: hashed.append(body) or real(body))
    _donate_like_a_kiosk(rig, 5)
    cp = _checkpoint_entries(rig)[-1]
    enrolled(rig, portal)
    rows = _rows(rig, 1, cp.seq)
    hashed.clear()
    r = _post(portal, rig, rows, cp.data["note"], "hash-once")
    assert r.status_code == 200, r.text
    assert sorted(hashed) == sorted(body for _, body, _ in rows)
    assert totals(portal) == rig.expected_totals()


def test_a_batch_note_other_than_the_newest_entrys_is_checked_as_well(portal, rig, counted, notes_checked):
    """The note checked once is one the same key signed with the same text: a batch that carries an older
    checkpoint's note than its newest checkpoint entry has both checked."""
    _donate_like_a_kiosk(rig, 4)
    cps = _checkpoint_entries(rig)
    enrolled(rig, portal)
    notes_checked["n"] = 0
    r = _post(portal, rig, _rows(rig, 1, cps[-1].seq), cps[-2].data["note"], "older-note")
    assert r.status_code == 200, r.text
    assert r.json()["checkpoint_size"] == cps[-1].data["size"]
    assert notes_checked["n"] == 2
    assert totals(portal) == rig.expected_totals()


def test_a_bad_note_in_the_newest_checkpoint_entry_is_refused(portal, rig):
    """The newest checkpoint entry vouches for the entries before it, not for its own note: a note another
    key signed, in an entry the kiosk key signed, is refused at that seq as a full check would."""
    from kiosk.ledger import checkpoint as cpmod

    _donate_like_a_kiosk(rig, 3)
    led = rig.ledger
    mallory = Ed25519PrivateKey.generate()
    note = cpmod.sign(cpmod.Checkpoint(led.origin, led.size, led.st.tree.root()), mallory)
    data = {"size": led.size, "root": led.st.tree.root().hex(), "note": note, "sigs": led.st.sigs.hex()}
    bad = led._append("checkpoint", data)  # the kiosk key signs the entry (a doctored writer)
    good_note = _checkpoint_entries(rig)[-2].data["note"]
    enrolled(rig, portal)
    r = _post(portal, rig, _rows(rig, 1, bad.seq), good_note, "bad-note")
    assert r.status_code == 422 and r.json()["seq"] == bad.seq, r.text
    assert "checkpoint note" in r.json()["reason"]
    assert portal_entry_count(portal.db_url, rig.kiosk_id) == (0, 0)

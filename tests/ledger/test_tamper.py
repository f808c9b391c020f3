"""The tamper suite: every kind of change to a stored ledger is caught, at the right seq."""

from __future__ import annotations

import base64
import copy
import json
import sqlite3
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.ledger import verify_path, write_export
from kiosk.ledger.clock import FixedClock
from kiosk.ledger.encoding import entry_hash
from kiosk.ledger.schema import DENORMALISED
from kiosk.ledger.verify import ChainVerifier, Row, VerifyFailure, verify_rows
from tests.conftest import build_sample


def db_rows(path: Path) -> list[Row]:
    con = sqlite3.connect(path)
    cols = ", ".join(DENORMALISED)
    out = [Row(r[0], bytes(r[1]), bytes(r[2]), bytes(r[3]), dict(zip(DENORMALISED, r[4:], strict=True)))
           for r in con.execute(f"SELECT seq, body, entry_hash, signature, {cols} FROM entries ORDER BY seq")]
    con.close()
    return out


def raw_sql(path: Path, *stmts: str, params=()) -> None:  # noqa: ANN001
    """Edit the file the way an attacker would: triggers dropped, plain SQL."""
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER IF EXISTS entries_no_update")
    con.execute("DROP TRIGGER IF EXISTS entries_no_delete")
    for s in stmts:
        con.execute(s, params)
    con.commit()
    con.close()


@pytest.fixture
def sample(tmp_path, signing_key, pepper, clock):  # noqa: ANN001
    led = build_sample(tmp_path / "ledger.db", signing_key, pepper, clock)
    note = led.latest_checkpoint()
    led.close(checkpoint=False)
    return tmp_path / "ledger.db", note


def test_sample_ledger_verifies_and_holds_every_type(sample, signing_key):
    path, note = sample
    r = verify_path(path, signing_key.public_key(), note)
    assert r.ok, r.summary()
    types = {json.loads(row.body)["type"] for row in db_rows(path)}
    assert types >= {"genesis", "boot", "donation_intent", "donation", "donation_failed", "void", "points_grant",
                     "close_out", "checkpoint", "config_change", "admin_action"}


@pytest.mark.slow
def test_every_single_bit_flip_in_every_body_is_caught_at_its_seq(sample, signing_key):
    path, _ = sample
    rows = db_rows(path)
    prefix = ChainVerifier(signing_key.public_key())
    flips = 0
    for row in rows:
        for byte in range(len(row.body)):
            for bit in range(8):
                body = bytearray(row.body)
                body[byte] ^= 1 << bit
                v = copy.deepcopy(prefix)  # the verifier as it stood after the untouched entries before
                with pytest.raises(VerifyFailure) as failure:
                    v.feed(Row(row.seq, bytes(body), row.entry_hash, row.signature, row.columns))
                assert failure.value.seq == row.seq, (row.seq, byte, bit, failure.value)
                flips += 1
        prefix.feed(row)
    assert prefix.size == len(rows)
    assert flips > 8 * 3000  # the sample is big enough to mean something


def test_single_bit_flips_through_the_whole_verifier(sample, signing_key):
    """The same, sampled, through verify_rows end to end (not just ChainVerifier.feed)."""
    path, _ = sample
    rows = db_rows(path)
    pub = signing_key.public_key()
    for k, row in enumerate(rows):
        for byte in range(0, len(row.body), 37):
            body = bytearray(row.body)
            body[byte] ^= 1 << (byte % 8)
            tampered = rows[:k] + [Row(row.seq, bytes(body), row.entry_hash, row.signature, row.columns)] + rows[k + 1:]
            r = verify_rows(tampered, pub)
            assert not r.ok and r.bad_seq == row.seq


def test_bit_flips_in_hash_signature_and_columns_are_caught(sample, signing_key):
    path, _ = sample
    rows = db_rows(path)
    pub = signing_key.public_key()
    k = 5
    row = rows[k]
    for field_name in ("entry_hash", "signature"):
        value = getattr(row, field_name)
        for i in range(len(value) * 8):
            b = bytearray(value)
            b[i // 8] ^= 1 << (i % 8)
            changed = row._replace(**{field_name: bytes(b)})
            r = verify_rows(rows[:k] + [changed] + rows[k + 1:], pub)
            assert not r.ok and r.bad_seq == row.seq
    for col in DENORMALISED:
        value = row.columns[col]
        bad = "x" if isinstance(value, str) or value is None else value + 1
        changed = Row(row.seq, row.body, row.entry_hash, row.signature, {**row.columns, col: bad})
        r = verify_rows(rows[:k] + [changed] + rows[k + 1:], pub)
        assert not r.ok and r.bad_seq == row.seq and col in r.reason


def test_bit_flip_in_the_database_file_itself(sample):
    """Flip one bit of a stored body in the file's own bytes, as a failing SD card would."""
    path, _ = sample
    target = next(r for r in db_rows(path) if r.columns["type"] == "donation")
    raw = bytearray(path.read_bytes())
    at = raw.find(target.body)
    assert at > 0 and raw.find(target.body, at + 1) == -1
    digit = target.body.index(b'"amount_yen":') + len(b'"amount_yen":')
    raw[at + digit] ^= 0x01  # '5' -> '4', '1' -> '0': still valid JSON, a different amount
    path.write_bytes(bytes(raw))
    r = verify_path(path)
    assert not r.ok and r.bad_seq == target.seq and "entry_hash" in r.reason


def test_deleted_entry(sample):
    path, _ = sample
    raw_sql(path, "DELETE FROM entries WHERE seq = 6")
    r = verify_path(path)
    assert not r.ok and r.bad_seq == 6 and "missing" in r.reason


def test_reordered_entries(sample):
    path, _ = sample
    rows = db_rows(path)
    a, b = rows[4], rows[5]
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER entries_no_update")
    # swap everything but seq between rows 5 and 6
    con.execute("UPDATE entries SET seq = -1 WHERE seq = ?", (a.seq,))
    con.execute("UPDATE entries SET seq = ? WHERE seq = ?", (a.seq, b.seq))
    con.execute("UPDATE entries SET seq = ? WHERE seq = -1", (b.seq,))
    con.commit()
    con.close()
    r = verify_path(path)
    assert not r.ok and r.bad_seq == a.seq


def test_duplicated_entry_in_an_export(sample, tmp_path):
    path, _ = sample
    out = tmp_path / "x.jsonl"
    write_export(path, out)
    lines = out.read_text().splitlines()
    lines.insert(5, lines[4])  # entry seq=4 twice
    out.write_text("\n".join(lines) + "\n")
    r = verify_path(out)
    assert not r.ok and r.bad_seq == 4 and "duplicate" in r.reason


def test_entry_spliced_in_from_another_kiosk(sample, tmp_path, pepper):
    path, _ = sample
    other = build_sample(tmp_path / "other.db", Ed25519PrivateKey.generate(), pepper, FixedClock(), "test-kiosk-2")
    other.close(checkpoint=False)
    foreign = db_rows(tmp_path / "other.db")[7]
    raw_sql(path, "DELETE FROM entries WHERE seq = 8")
    con = sqlite3.connect(path)
    con.execute("INSERT INTO entries (seq, body, entry_hash, signature, type, wall_ms) VALUES (?,?,?,?,?,?)",
                (8, foreign.body, foreign.entry_hash, foreign.signature, foreign.columns["type"],
                 foreign.columns["wall_ms"]))
    con.commit()
    con.close()
    r = verify_path(path)
    assert not r.ok and r.bad_seq == 8


def test_forged_signature_and_resigned_body(sample, signing_key):
    path, _ = sample
    rows = db_rows(path)
    pub = signing_key.public_key()
    forger = Ed25519PrivateKey.generate()
    row = rows[6]
    forged = Row(row.seq, row.body, row.entry_hash, forger.sign(row.entry_hash), row.columns)
    r = verify_rows(rows[:6] + [forged] + rows[7:], pub)
    assert not r.ok and r.bad_seq == row.seq and "signature" in r.reason
    # An attacker who rewrites the body must also fix the hash: the signature still gives it away.
    obj = json.loads(row.body)
    obj["data"]["amount_yen"] = 10_000
    body = rfc8785.dumps(obj)
    h = entry_hash(body)
    r = verify_rows(rows[:6] + [Row(row.seq, body, h, forger.sign(h), None)], pub)
    assert not r.ok and r.bad_seq == row.seq


def test_non_canonical_body_resigned_with_the_real_key_is_caught(sample, signing_key):
    path, _ = sample
    rows = db_rows(path)
    row = rows[4]
    pretty = json.dumps(json.loads(row.body), sort_keys=True, indent=1).encode()
    h = entry_hash(pretty)
    r = verify_rows(rows[:4] + [Row(row.seq, pretty, h, signing_key.sign(h), None)], signing_key.public_key())
    assert not r.ok and r.bad_seq == row.seq and "canonical" in r.reason


def test_ledger_of_another_kiosk_key(sample):
    path, _ = sample
    r = verify_path(path, Ed25519PrivateKey.generate().public_key())
    assert not r.ok and r.bad_seq == 1 and "another kiosk key" in r.reason


def test_truncated_tail_against_a_checkpoint(sample):
    path, note = sample
    last = db_rows(path)[-1].seq
    raw_sql(path, f"DELETE FROM entries WHERE seq >= {last - 2}")
    r = verify_path(path)
    assert r.ok  # on its own a truncated ledger still looks valid...
    r = verify_path(path, checkpoint_note=note)
    assert not r.ok and "truncated" in r.reason and r.bad_seq == last - 2  # ...the checkpoint gives it away


def test_history_inconsistent_with_a_checkpoint(tmp_path, signing_key, pepper):
    """The kiosk's own key rewrites history: valid signatures everywhere, but the checkpoint disagrees."""
    a = build_sample(tmp_path / "a.db", signing_key, pepper, FixedClock())
    note = a.latest_checkpoint()
    a.close(checkpoint=False)
    b = build_sample(tmp_path / "b.db", signing_key, pepper, FixedClock(wall_ms=1_763_700_000_001))
    b.close(checkpoint=False)
    assert verify_path(tmp_path / "b.db", signing_key.public_key()).ok
    r = verify_path(tmp_path / "b.db", signing_key.public_key(), note)
    assert not r.ok and "checkpoint" in r.reason


def test_forged_external_checkpoint(sample):
    path, note = sample
    body, _, sig = note.partition("\n\n")
    lines = body.split("\n")
    lines[2] = base64.b64encode(bytes(32)).decode()
    r = verify_path(path, checkpoint_note="\n".join(lines) + "\n\n" + sig)
    assert not r.ok and "signature" in r.reason



def export_lines(path: Path) -> tuple[dict, list[dict]]:
    lines = path.read_text("utf-8").splitlines()
    return json.loads(lines[0]), [json.loads(x) for x in lines[1:]]


def write_lines(path: Path, header: dict, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(x) + "\n" for x in [header, *rows]), "utf-8")


def test_export_cut_short_below_its_own_headers_signed_checkpoint(sample, tmp_path):
    """The export's header carries the kiosk's signed checkpoint (size N). Someone drops the last entries, the
    checkpoint entry among them, and fixes the header's entry count: the file's own signed statement that the
    ledger had N entries gives it away, with no --checkpoint given."""
    path, _ = sample
    out = tmp_path / "export.jsonl"
    write_export(path, out)
    r = verify_path(out)
    assert r.ok and "signed checkpoint" in r.summary()
    header, rows = export_lines(out)
    signed_size = int(header["checkpoint"].split("\n")[1])
    assert signed_size == len(rows) - 1
    kept = rows[:signed_size - 4]
    header["entries"] = len(kept)
    cut = tmp_path / "cut.jsonl"
    write_lines(cut, header, kept)
    r = verify_path(cut)
    assert not r.ok and r.bad_seq == len(kept) + 1
    assert "truncated" in r.reason and "export header's checkpoint" in r.reason


def test_export_whose_header_checkpoint_is_forged(sample, tmp_path):
    """The header's checkpoint replaced by a note no kiosk signed (it claims 1000 more entries)."""
    path, _ = sample
    out = tmp_path / "export.jsonl"
    write_export(path, out)
    header, rows = export_lines(out)
    lines = header["checkpoint"].split("\n")
    lines[1] = str(int(lines[1]) + 1000)
    header["checkpoint"] = "\n".join(lines)
    forged = tmp_path / "forged.jsonl"
    write_lines(forged, header, rows)
    r = verify_path(forged)
    assert not r.ok and "export header's checkpoint" in r.reason and "not signed" in r.reason


def test_export_header_key_id_and_an_export_without_a_checkpoint(sample, tmp_path):
    """The header's key_id must be the genesis key's; an export with no checkpoint (a ledger that never wrote
    one) still verifies, and the verdict says nothing vouches for its length; a header whose checkpoint was
    dropped over entries that hold checkpoint entries is refused (an export always carries the newest)."""
    path, _ = sample
    out = tmp_path / "export.jsonl"
    write_export(path, out)
    header, rows = export_lines(out)
    wrong = tmp_path / "wrong-key-id.jsonl"
    write_lines(wrong, {**header, "key_id": "0" * len(header["key_id"])}, rows)
    r = verify_path(wrong)
    assert not r.ok and r.bad_seq == 1 and "key_id" in r.reason
    dropped = tmp_path / "checkpoint-dropped.jsonl"
    write_lines(dropped, {**header, "checkpoint": None}, rows)
    r = verify_path(dropped)
    assert not r.ok and "export header has no checkpoint" in r.reason
    # The ledger as it stood before its first checkpoint entry: what an export of it then would have held.
    first_cp = next(i for i, row in enumerate(rows)
                    if json.loads(base64.b64decode(row["body"]))["type"] == "checkpoint")
    assert first_cp > 1
    bare = tmp_path / "no-checkpoint.jsonl"
    write_lines(bare, {**header, "entries": first_cp, "checkpoint": None}, rows[:first_cp])
    r = verify_path(bare)
    assert r.ok and "carries no signed checkpoint" in r.summary()

def test_semantic_tampering_resigned_is_caught(tmp_path, signing_key):
    """Even the kiosk key cannot make a donation that settles no intent, or totals that do not add up."""
    from kiosk.ledger import Ledger, Pepper
    from kiosk.ledger.encoding import Envelope, build_body

    led = Ledger.open(tmp_path / "l.db", signing_key, "k-3", clock=FixedClock(), boot=False)
    led.close(checkpoint=False)
    rows = db_rows(tmp_path / "l.db")
    tip = rows[-1].entry_hash
    env = Envelope("k-3", led.key_id, 2, tip, 0, 1, 1, True)
    tok = Pepper({1: bytes(32)}).token(b"\x01" * 8)
    body = build_body(env, "donation", {"intent_seq": 1, "project": "p", "amount_yen": 100, "points": 1,
                                        "method": "sim", "provider_ref": "x", "idem": "i", "donor": tok.hex,
                                        "pepper_epoch": 1, "totals": {}})
    h = entry_hash(body)
    r = verify_rows(rows + [Row(2, body, h, signing_key.sign(h), None)], signing_key.public_key())
    assert not r.ok and r.bad_seq == 2 and "not an open donation intent" in r.reason

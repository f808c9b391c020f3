"""Review 51, adversarial: `kiosk ledger verify` never says OK for an export or a checkpoint that is not the kiosk's.

A real ledger (every entry type, then a re-key the old key vouches for, more gifts under the new key and a checkpoint
the new key signs) is exported by the project's own ``write_export``; hypothesis then changes the export byte by byte
and entry by entry (entries dropped, swapped, duplicated, cut from the end with or without the header changed to
match, fields of a line replaced by another line's) and changes the checkpoint note an auditor holds it to. Whenever
the verifier says OK, the entries it vouches for must be exactly the exported ones or a prefix of them (a prefix is a
genuine earlier state of the ledger, which an export alone cannot tell from a cut one: docs/ledger.md, "Export
format"), and never shorter than a checkpoint given with ``--checkpoint``. A damaged file gets a verdict, never a
traceback.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.ledger import Pepper, verify_path, write_export
from kiosk.ledger import checkpoint as cpmod
from kiosk.ledger.clock import FixedClock
from kiosk.ledger.verify import verify_rows
from tests.conftest import build_sample, fake_idm

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], Any, str]:
    """(the export's lines, the kiosk's first public key, the newest checkpoint note)."""
    tmp = tmp_path_factory.mktemp("export")
    sk, clock = Ed25519PrivateKey.generate(), FixedClock()
    pepper = Pepper.create(tmp / "pepper.json")
    led = build_sample(tmp / "ledger.db", sk, pepper, clock)
    led.rekey(Ed25519PrivateKey.generate())  # the old key hands the chain over; the new key signs from here
    i = led.record_intent("kodomo", 500, "sim", pepper.token(fake_idm(5)), "idem-9")
    led.record_donation(i.seq, "sim-ref-9", 5)
    led.checkpoint()
    note = led.latest_checkpoint()
    led.close(checkpoint=False)
    write_export(tmp / "ledger.db", tmp / "ledger.jsonl")
    lines = (tmp / "ledger.jsonl").read_bytes().splitlines(keepends=True)
    return lines, sk.public_key(), note


def _rows(lines: list[bytes]) -> list[tuple[int, bytes, bytes, bytes]]:
    out = []
    for line in lines[1:]:
        d = json.loads(line)
        out.append((d["seq"], base64.b64decode(d["body"]), bytes.fromhex(d["entry_hash"]),
                    base64.b64decode(d["signature"])))
    return out


def _verify(tmp: Path, lines: list[bytes], pub: Any, note: str | None = None) -> tuple[bool, str]:
    p = tmp / "mutated.jsonl"
    p.write_bytes(b"".join(lines))
    r = verify_path(p, pub, note, parallel=False)
    return r.ok, r.summary()


def _held_to(genuine: list[bytes], lines: list[bytes], ok: bool, why: str, note: str | None) -> None:
    if not ok:
        return
    want = _rows(genuine)
    try:
        got = _rows(lines)
    except Exception:  # noqa: BLE001
        got = None
    assert got is not None, f"verified an export it cannot have read: {why}"
    assert got == want[:len(got)], f"verified entries that are not the kiosk's: {why}"
    if note is not None:
        assert len(got) >= cpmod.parse(note)[0].size, f"verified an export shorter than the checkpoint: {why}"


def test_the_genuine_export_verifies(exported, tmp_path):
    lines, pub, note = exported
    ok, why = _verify(tmp_path, lines, pub, note)
    assert ok and "signing key" in why, why  # the re-key is in it


@SETTINGS
@given(data=st.data())
def test_no_byte_change_to_a_real_export_verifies_other_entries(exported, tmp_path_factory, data):
    lines, pub, note = exported
    raw = b"".join(lines)
    i = data.draw(st.integers(0, len(raw) - 1))
    how = data.draw(st.sampled_from(["set", "drop", "insert"]))
    b = bytes([data.draw(st.integers(0, 255))])
    changed = (raw[:i] + b + raw[i + 1:] if how == "set" else raw[:i] + raw[i + 1:] if how == "drop"
               else raw[:i] + b + raw[i:])
    new = changed.splitlines(keepends=True)
    with_note = data.draw(st.sampled_from([None, note]))
    ok, why = _verify(tmp_path_factory.mktemp("m"), new, pub, with_note)
    _held_to(lines, new, ok, why, with_note)


@SETTINGS
@given(data=st.data())
def test_no_reordering_cut_or_splice_of_a_real_export_verifies_other_entries(exported, tmp_path_factory, data):
    lines, pub, note = exported
    header, body = json.loads(lines[0]), list(lines[1:])
    how = data.draw(st.sampled_from(["drop", "swap", "dup", "cut", "cut+header", "field"]))
    i = data.draw(st.integers(0, len(body) - 1))
    j = data.draw(st.integers(0, len(body) - 1))
    if how == "drop":
        del body[i]
    elif how == "swap":
        body[i], body[j] = body[j], body[i]
    elif how == "dup":
        body.insert(i, body[j])
    elif how in ("cut", "cut+header"):
        body = body[:i + 1]
        if how == "cut+header":  # the header rewritten to fit the cut export, as a careful forger would
            header["entries"] = len(body)
            notes = [json.loads(base64.b64decode(json.loads(x)["body"]))["data"].get("note") for x in body]
            header["checkpoint"] = data.draw(st.sampled_from([None, *[n for n in notes if n]]))
    else:  # one field of one line taken from another line
        a, b = json.loads(body[i]), json.loads(body[j])
        k = data.draw(st.sampled_from(["seq", "body", "entry_hash", "signature"]))
        a[k] = b[k]
        body[i] = (json.dumps(a) + "\n").encode()
    new = [(json.dumps(header) + "\n").encode(), *body]
    with_note = data.draw(st.sampled_from([None, note]))
    ok, why = _verify(tmp_path_factory.mktemp("m"), new, pub, with_note)
    _held_to(lines, new, ok, why, with_note)


@SETTINGS
@given(data=st.data())
def test_no_change_to_the_checkpoint_an_auditor_holds_verifies(exported, data):
    lines, pub, note = exported
    i = data.draw(st.integers(0, len(note)))
    c = data.draw(st.sampled_from(list("0123456789abcAQgw+/=\n \u2014") + [note[:30], "\n\u2014 x AAAA\n"]))
    how = data.draw(st.sampled_from(["set", "drop", "insert"]))
    bad = (note[:i] + c + note[i + 1:] if how == "set" else note[:i] + note[i + 1:] if how == "drop"
           else note[:i] + c + note[i:])
    header, rows = read_export_lines(lines)
    r = verify_rows(rows, pub, bad, header)
    if r.ok:
        assert cpmod.parse(bad)[0] == cpmod.parse(note)[0], r.summary()


def read_export_lines(lines: list[bytes]) -> tuple[dict[str, Any], list[Any]]:
    from kiosk.ledger.verify import Row

    header = json.loads(lines[0])
    return header, [Row(s, b, h, g) for s, b, h, g in _rows(lines)]


def test_a_byte_that_is_not_utf8_in_an_export_line_is_invalid_at_its_seq_not_a_traceback(exported, tmp_path):
    """Until review 51 the export was read as text, and such a byte raised UnicodeDecodeError out of
    `kiosk ledger verify` (and `kiosk ledger report`): a Python traceback for the auditor instead of a verdict."""
    lines, pub, note = exported
    bad = list(lines)
    bad[5] = bad[5][:30] + b"\x80" + bad[5][31:]  # entry seq=5's line
    ok, why = _verify(tmp_path, bad, pub, note)
    assert not ok and why.startswith("INVALID at seq=5: line 6: malformed entry"), why


def test_notes_signed_by_another_key_or_with_a_copied_key_id_are_refused(exported):
    """A note for the kiosk's log signed by a key of the forger's (under the kiosk's name, with its own key id or
    with the kiosk's 4-byte key id copied), or over a root the kiosk never signed by its first key, which the re-key
    retired: none is a checkpoint of this ledger. Extra signature lines of other names change nothing."""
    lines, pub, note = exported
    header, rows = read_export_lines(lines)
    cp, sigs = cpmod.parse(note)
    forger = Ed25519PrivateKey.generate()
    text = cp.body().encode()
    blob = base64.b64encode(sigs[0][1] + forger.sign(text)).decode()  # the kiosk's key id, the forger's signature
    copied = f"{cp.body()}\n\u2014 {cp.origin} {blob}\n"
    own = cpmod.sign(cp, _Sk(forger))
    other_root = cpmod.Checkpoint(cp.origin, cp.size, bytes(32))
    for bad in (copied, own, copied + note.split("\n\n")[1]):  # the copied key id first: its bad signature counts
        r = verify_rows(read_export_lines(lines)[1], pub, bad, header)
        assert not r.ok and "checkpoint file" in (r.reason or ""), (bad, r.summary())
    # extra lines of other signers beside the kiosk's own (the forger's under the kiosk's name and its own key id
    # included): the kiosk's signature is there, so it is still the kiosk's checkpoint
    extra = note + f"\u2014 someone-else {base64.b64encode(bytes(68)).decode()}\n"
    assert verify_rows(rows, pub, extra, header).ok
    both = own.replace("\n\n", "\n\n" + note.split("\n\n")[1], 1)
    assert verify_rows(read_export_lines(lines)[1], pub, both, header).ok
    assert not verify_rows(read_export_lines(lines)[1], pub, cpmod.sign(other_root, _Sk(forger)), header).ok


class _Sk:
    """The signing interface cpmod.sign takes, over a bare private key."""

    def __init__(self, sk: Ed25519PrivateKey) -> None:
        self.sk = sk

    def sign(self, data: bytes) -> bytes:
        return self.sk.sign(data)

    def public_key(self) -> Any:
        return self.sk.public_key()

"""Checkpoint entries commit to the per-entry signatures (``sigs``), and the writer never signs a
checkpoint over a row it cannot vouch for: the kiosk half of "ingest by checkpoint" (docs/sync.md)."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from kiosk.ledger import Ledger, LedgerError, verify_path
from kiosk.ledger.encoding import ZERO_HASH
from kiosk.ledger.state import fold_signature
from tests.conftest import fake_idm


def _ledger(tmp_path, signing_key, clock, pepper, donations: int = 8):  # noqa: ANN001, ANN202
    led = Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock, checkpoint_every=5)
    for i in range(donations):
        intent = led.record_intent("p", 100 + i, "sim", pepper.token(fake_idm(i)), uuid.uuid4().hex)
        led.record_donation(intent.seq, f"r{i}", 1)
    return led


def _set_signature(path, seq: int, sig: bytes) -> None:  # noqa: ANN001
    """Edit a row on disk as someone with the file but not the key would (the triggers are no lock)."""
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER entries_no_update")
    con.execute("UPDATE entries SET signature = ? WHERE seq = ?", (sig, seq))
    con.commit()
    con.close()


def test_every_checkpoint_entry_carries_the_digest_of_the_signatures_before_it(tmp_path, signing_key, clock, pepper):
    led = _ledger(tmp_path, signing_key, clock, pepper)
    acc, seen = ZERO_HASH, 0
    for e in led.iter_entries():
        if e.type == "checkpoint":
            assert e.data["sigs"] == acc.hex() and e.data["size"] == e.seq - 1
            seen += 1
        acc = fold_signature(acc, e.signature)
    assert seen >= 3
    led.close()
    assert verify_path(tmp_path / "l.db").ok


@pytest.mark.parametrize("where", ["covered", "tail"])
def test_a_signature_edited_on_disk_stops_the_writer_and_the_verifier(tmp_path, signing_key, clock, pepper, where):
    led = _ledger(tmp_path, signing_key, clock, pepper)
    cps = [e.seq for e in led.iter_entries() if e.type == "checkpoint"]
    size = led.size
    led.close(checkpoint=False)
    assert cps[-1] < size, "the test needs entries after the newest checkpoint entry"
    seq = cps[-1] - 2 if where == "covered" else size
    _set_signature(tmp_path / "l.db", seq, bytes(64))
    # The writer refuses to go on (it would otherwise sign a checkpoint vouching for the edited row).
    with pytest.raises(LedgerError, match=r"damaged at seq=\d+"):
        Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock)
    r = verify_path(tmp_path / "l.db")
    assert not r.ok and r.bad_seq == seq and "signature" in r.reason


def test_an_honest_ledger_reopens_and_keeps_its_digest(tmp_path, signing_key, clock, pepper):
    led = _ledger(tmp_path, signing_key, clock, pepper)
    led.close()
    led = Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock, checkpoint_every=5)
    acc = ZERO_HASH
    for e in led.iter_entries():
        acc = fold_signature(acc, e.signature)
    assert led.st.sigs == acc
    led.close()
    assert verify_path(tmp_path / "l.db").ok

"""Signatures checked on helper threads give exactly the single-threaded verdict."""

from __future__ import annotations

import sqlite3

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.ledger import Ledger, verify_path
from kiosk.ledger.clock import FixedClock
from kiosk.ledger.schema import DENORMALISED
from kiosk.ledger.sigcheck import BATCH
from kiosk.ledger.verify import Row, verify_rows
from tests.conftest import fake_idm


@pytest.fixture(scope="module")
def big(tmp_path_factory):  # noqa: ANN001
    path = tmp_path_factory.mktemp("par") / "l.db"
    sk = Ed25519PrivateKey.generate()
    from kiosk.ledger import Pepper

    pepper = Pepper({1: bytes(range(32))})
    led = Ledger.open(path, sk, "par-1", clock=FixedClock())
    i = 0
    while led.size < 4 * BATCH + 100:
        intent = led.record_intent("p", 100, "sim", pepper.token(fake_idm(i % 7)), f"k{i}")
        led.record_donation(intent.seq, "r", 1)
        i += 1
    led.close()
    con = sqlite3.connect(path)
    rows = [Row(r[0], r[1], r[2], r[3], dict(zip(DENORMALISED, r[4:], strict=True))) for r in con.execute(
        f"SELECT seq, body, entry_hash, signature, {', '.join(DENORMALISED)} FROM entries ORDER BY seq")]
    con.close()
    return path, sk, rows


def _bad_sig(row: Row) -> Row:
    sig = bytearray(row.signature)
    sig[10] ^= 0x40
    return Row(row.seq, row.body, row.entry_hash, bytes(sig), row.columns)


def test_valid_ledger_both_ways(big):
    path, sk, rows = big
    a = verify_rows(rows, sk.public_key(), parallel=False)
    b = verify_rows(rows, sk.public_key(), parallel=True)
    assert a.ok and b.ok and a.root == b.root and a.entries == b.entries
    assert verify_path(path, parallel=True).ok


@pytest.mark.parametrize("bad_at", [2, BATCH + 7, 3 * BATCH, 4 * BATCH + 50])
def test_bad_signature_found_at_the_same_seq(big, bad_at):
    _, sk, rows = big
    tampered = list(rows)
    tampered[bad_at - 1] = _bad_sig(rows[bad_at - 1])
    a = verify_rows(tampered, sk.public_key(), parallel=False)
    b = verify_rows(tampered, sk.public_key(), parallel=True)
    assert (a.ok, a.bad_seq, a.reason) == (b.ok, b.bad_seq, b.reason) == (False, bad_at, a.reason)
    assert "signature" in b.reason


def test_earlier_bad_signature_outranks_a_later_structural_fault(big):
    _, sk, rows = big
    tampered = list(rows)
    tampered[BATCH + 3] = _bad_sig(rows[BATCH + 3])
    del tampered[3 * BATCH]  # a missing entry much later
    a = verify_rows(tampered, sk.public_key(), parallel=False)
    b = verify_rows(tampered, sk.public_key(), parallel=True)
    assert a.bad_seq == b.bad_seq == BATCH + 4
    # ...and a structural fault before any bad signature is reported as itself
    tampered = list(rows)
    del tampered[BATCH]
    tampered[3 * BATCH] = _bad_sig(rows[3 * BATCH + 1])
    b = verify_rows(tampered, sk.public_key(), parallel=True)
    assert b.bad_seq == BATCH + 1 and "missing" in b.reason


def test_no_helper_thread_at_all_gives_the_same_verdict(big):
    """The main thread checks every batch the helpers have not started: with none running it checks them all."""
    from kiosk.ledger.keys import public_raw
    from kiosk.ledger.sigcheck import SignaturePool

    _, sk, rows = big
    bad_at = 2 * BATCH + 5
    for helpers in (0, 1, 2):
        pool = SignaturePool(public_raw(sk.public_key()), helpers=helpers)
        try:
            for i, row in enumerate(rows, 1):
                pool.add(row.seq, _bad_sig(row).signature if i == bad_at else row.signature, row.entry_hash)
            assert pool.first_bad() == bad_at
        finally:
            pool.close()


def test_text_signature_is_a_bad_signature_both_ways(big, tmp_path):
    """A signature column holding 64 characters of text (the CHECK on its length lets it in) is named as a bad
    signature at its seq, not a traceback (before: TypeError out of `kiosk ledger verify`)."""
    import shutil

    path, sk, _ = big
    copy = tmp_path / "text-sig.db"
    shutil.copy(path, copy)
    con = sqlite3.connect(copy)
    con.execute("DROP TRIGGER entries_no_update")
    con.execute("UPDATE entries SET signature = ? WHERE seq = ?", ("x" * 64, 3 * BATCH + 1))
    con.commit()
    con.close()
    for parallel in (False, True):
        r = verify_path(copy, sk.public_key(), parallel=parallel)
        assert (r.ok, r.bad_seq) == (False, 3 * BATCH + 1) and "signature" in (r.reason or "")


def test_parallel_verify_from_a_script_without_a_main_guard(big, tmp_path):
    """Helpers are threads: a plain script may verify in parallel. (The worker process this replaced re-ran
    the calling script's top level in the child, which crashed it, and the verify with it.)"""
    import subprocess
    import sys
    from pathlib import Path

    path, _, _ = big
    script = tmp_path / "plain.py"
    script.write_text("from kiosk.ledger import verify_path\n"
                      f"r = verify_path({str(path)!r}, parallel=True)\n"
                      "print('VERDICT', r.ok, r.entries)\n")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == f"VERDICT True {len(big[2])}"

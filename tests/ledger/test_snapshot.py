"""The ledger's state snapshot (kiosk/ledger/snapshot.py; docs/ledger.md, "Opening a ledger").

A kiosk opens its ledger from the snapshot and replays only the entries after it. These tests hold that to
a full replay done here, independently of the store's own loading: straight off the SQLite file, entry by
entry, through ``LedgerState.apply``. And they check what a snapshot must never do: be trusted when this
kiosk's key did not sign it, be trusted on a file it does not stand on, or hide from ``kiosk ledger verify``
a false state the key did sign.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from kiosk.ledger import Ledger, LedgerError, Pepper, verify_path
from kiosk.ledger import snapshot as snapmod
from kiosk.ledger.clock import FixedClock
from kiosk.ledger.merkle import CompactRange
from kiosk.ledger.state import LedgerState
from kiosk.ledger.view import LedgerView
from tests.conftest import build_sample, fake_idm, fields, replayed

KIOSK = "snap-kiosk-1"


def snapshot_row(path: Path) -> tuple[int, int, bytes, bytes] | None:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT format, size, state, signature FROM state_snapshot").fetchone()


def put_snapshot(path: Path, size: int, blob: bytes, sig: bytes, fmt: int = snapmod.FORMAT) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("INSERT OR REPLACE INTO state_snapshot (id, format, size, state, signature) "
                     "VALUES (1, ?, ?, ?, ?)", (fmt, size, blob, sig))


def rewrite_entry(path: Path, seq: int, **cols: object) -> None:
    """Edit a stored entry as someone holding the disk could (the append-only triggers dropped first)."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DROP TRIGGER entries_no_update")
        sets = ", ".join(f"{k} = ?" for k in cols)
        conn.execute(f"UPDATE entries SET {sets} WHERE seq = ?", (*cols.values(), seq))  # noqa: S608 - test's own names


def gifts(led: Ledger, pepper: Pepper, n: int, start: int = 0) -> list[int]:
    seqs = []
    for i in range(start, start + n):
        intent = led.record_intent(("kodomo", "midori")[i % 2], 100 * (1 + i % 10), "sim",
                                   pepper.token(fake_idm(i % 3)), f"idem-{i}")
        seqs.append(led.record_donation(intent.seq, f"ref-{i}", 1 + i % 10).seq)
    return seqs


@pytest.fixture
def sample(tmp_path: Path, signing_key: Ed25519PrivateKey, pepper: Pepper, clock: FixedClock) -> Path:
    """A ledger of every entry type, closed with a state snapshot at its end and six entries after it."""
    path = tmp_path / "ledger.db"
    led = build_sample(path, signing_key, pepper, clock, kiosk_id=KIOSK)
    gifts(led, pepper, 3, start=100)
    led.close()
    assert snapshot_row(path)[1] == led.size
    led = Ledger.open(path, signing_key, KIOSK, clock=clock, checkpoint_every=1000)  # boot + checkpoint
    gifts(led, pepper, 2, start=200)
    led.close(checkpoint=False)  # no shutdown snapshot: the next open replays what follows the last one
    return path


# --- the encoding ---------------------------------------------------------------------------------------
def test_the_encoding_keeps_every_field(sample: Path) -> None:
    st = replayed(sample)
    assert st.voided and st.donations and st.key_id and st.sigs is not None  # the sample fills the fields
    back = snapmod.decode(snapmod.encode(st))
    assert fields(back) == fields(st)
    assert snapmod.encode(back) == snapmod.encode(st)
    assert set(vars(st)) == set(vars(LedgerState())), "a field LedgerState gained must be encoded too"


def test_decoding_with_the_standard_library_gives_the_same_state(sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A base install has no msgspec: the snapshot is then decoded by ``json``, to the same state."""
    blob = snapshot_row(sample)[2]
    fast = snapmod.decode(blob)
    monkeypatch.setattr(snapmod, "_loads", json.loads)
    assert fields(snapmod.decode(blob)) == fields(fast)
    with pytest.raises(snapmod.SnapshotError):
        snapmod.decode(b"{")


@pytest.mark.parametrize("blob", [b"", b"[]", b"not json", b'{"size": 3}',
                                  b'{"size": -1, "tip": "00", "boot": 0}'])
def test_what_is_not_a_snapshot_is_refused_by_name(blob: bytes) -> None:
    with pytest.raises(snapmod.SnapshotError, match="not a state snapshot"):
        snapmod.decode(blob)


@pytest.mark.parametrize(("field", "bad"), [
    ("idem", {"idem-1": -4}), ("idem", {"idem-1": True}), ("resolution", [[5], ["6"]]), ("resolution", [[5]]),
    ("resolution", [[5, 6], [7]]), ("donations", [[5], ["kodomo"]]), ("donations", [[5], [7], [100]]),
    ("donations", [[-5], ["kodomo"], [100]]), ("donations", [[5, 6], ["kodomo"], [100, 200]]),
    ("voided", [1.5]), ("tip", "00" * 31), ("tree", [3, []]), ("kiosk_total", [0]), ("intents", [{}]),
])
def test_a_snapshot_with_a_wrong_field_is_refused(sample: Path, field: str, bad: object) -> None:
    doc = json.loads(snapshot_row(sample)[2])
    assert doc[field] != bad
    doc[field] = bad
    with pytest.raises(snapmod.SnapshotError, match="not a state snapshot"):
        snapmod.decode(json.dumps(doc).encode())


def test_a_merkle_range_is_restored_only_whole() -> None:
    r = CompactRange()
    for i in range(11):
        r.append(bytes([i]) * 32)
    back = CompactRange.restore(r.size, r.stack)
    assert back.root() == r.root()
    back.append(b"\x0b" * 32), r.append(b"\x0b" * 32)
    assert back.root() == r.root()
    with pytest.raises(ValueError, match="3 subtree roots, not 2"):
        CompactRange.restore(11, r.stack[:2])
    with pytest.raises(ValueError, match="32 bytes"):
        CompactRange.restore(1, [b"short"])


# --- opening from it ----------------------------------------------------------------------------------
def test_opening_replays_only_what_follows_the_snapshot(sample: Path, signing_key: Ed25519PrivateKey,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    size_at = snapshot_row(sample)[1]
    # An entry the snapshot covers, damaged on disk: a full replay stops at it; opening from the snapshot
    # never reads it (what the snapshot gives up, left to `kiosk ledger verify`, below).
    rewrite_entry(sample, 3, body=b'{"damaged":true}')
    led = Ledger.open(sample, signing_key, KIOSK, boot=False)
    assert led.snapshot_size == size_at
    assert "snapshot ignored" not in caplog.text
    led.close(checkpoint=False)
    with closing(sqlite3.connect(sample)) as conn, conn:
        conn.execute("DELETE FROM state_snapshot")
    with pytest.raises(LedgerError, match="damaged at seq=3"):
        Ledger.open(sample, signing_key, KIOSK, boot=False)


def test_the_state_opened_from_a_snapshot_is_the_full_replay(sample: Path, signing_key: Ed25519PrivateKey) -> None:
    led = Ledger.open(sample, signing_key, KIOSK, boot=False)
    full = replayed(sample)
    assert 0 < led.snapshot_size < full.size
    assert fields(led.st) == fields(full)
    assert led.view == LedgerView.of(full)


def test_a_damaged_entry_under_a_snapshot_is_not_signed_over(sample: Path, signing_key: Ed25519PrivateKey,
                                                            pepper: Pepper) -> None:
    # The next checkpoint commits to the hashes the snapshot was built from, not to the edited row, so the
    # edit stays visible to verification (it is not laundered into a signed checkpoint).
    with closing(sqlite3.connect(sample)) as conn, conn:
        seq, data = next((s, json.loads(b)) for s, b in conn.execute(
            "SELECT seq, body FROM entries WHERE type = 'donation' ORDER BY seq"))
    data["data"]["provider_ref"] = "forged"
    forged = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    rewrite_entry(sample, seq, body=forged)
    led = Ledger.open(sample, signing_key, KIOSK)  # from the snapshot: boot and a checkpoint over it all
    gifts(led, pepper, 1, start=300)
    led.close()
    result = verify_path(sample)
    assert not result.ok and result.bad_seq == seq, result


def test_a_snapshot_this_key_did_not_sign_is_ignored(sample: Path, signing_key: Ed25519PrivateKey,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    fmt, size, blob, sig = snapshot_row(sample)
    doc = json.loads(blob)
    doc["kiosk_total"][0] += 1_000_000  # more money than was given
    put_snapshot(sample, size, json.dumps(doc, separators=(",", ":")).encode(), sig)
    led = Ledger.open(sample, signing_key, KIOSK, boot=False)
    assert "state snapshot ignored (not signed by this kiosk's key)" in caplog.text
    assert led.snapshot_size == 0 and fields(led.st) == fields(replayed(sample))
    led.close(checkpoint=False)
    result = verify_path(sample)
    assert result.ok and "not signed by the key in force" in result.snapshot, result
    # Signed by a key that is not this kiosk's: the same.
    put_snapshot(sample, size, blob, Ed25519PrivateKey.generate().sign(snapmod.message(blob)))
    Ledger.open(sample, signing_key, KIOSK, boot=False).close(checkpoint=False)
    assert caplog.text.count("not signed by this kiosk's key") == 2


def test_a_snapshot_of_another_history_is_ignored(tmp_path: Path, signing_key: Ed25519PrivateKey, pepper: Pepper,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    # Two files of the same kiosk and key that part ways after seq 3 (a restored backup, say).
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    Ledger.open(a, signing_key, KIOSK).close()
    with closing(sqlite3.connect(a)) as conn, conn:
        conn.execute("DELETE FROM state_snapshot")
    shutil.copy(a, b)
    for path, start in ((a, 0), (b, 50)):
        led = Ledger.open(path, signing_key, KIOSK, boot=False)
        gifts(led, pepper, 2, start=start)
        led.close()
    assert snapshot_row(a)[1] == snapshot_row(b)[1]
    put_snapshot(b, *snapshot_row(a)[1:])
    led = Ledger.open(b, signing_key, KIOSK, boot=False)
    assert "which the file does not hold as it was" in caplog.text
    assert fields(led.st) == fields(replayed(b))


def test_a_snapshot_of_another_format_is_ignored(sample: Path, signing_key: Ed25519PrivateKey,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    _, size, blob, sig = snapshot_row(sample)
    put_snapshot(sample, size, blob, sig, fmt=snapmod.FORMAT + 1)
    led = Ledger.open(sample, signing_key, KIOSK, boot=False)
    assert f"of format {snapmod.FORMAT + 1}" in caplog.text and led.snapshot_size == 0
    led.close()  # the shutdown snapshot replaces one this software cannot read
    assert snapshot_row(sample)[:2] == (snapmod.FORMAT, led.size)


def test_a_snapshot_stored_as_text_is_ignored(sample: Path, signing_key: Ed25519PrivateKey,
                                               caplog: pytest.LogCaptureFixture) -> None:
    _, size, blob, sig = snapshot_row(sample)
    put_snapshot(sample, size, blob.decode(), sig)
    led = Ledger.open(sample, signing_key, KIOSK, boot=False)
    assert "state snapshot ignored (not stored as bytes)" in caplog.text
    assert led.snapshot_size == 0 and fields(led.st) == fields(replayed(sample))
    led.close(checkpoint=False)
    result = verify_path(sample)  # a verdict, not a traceback
    assert result.ok and result.snapshot == "state snapshot not stored as a size and bytes: the kiosk ignores it"


def test_signatures_after_the_snapshot_are_still_checked(sample: Path, signing_key: Ed25519PrivateKey) -> None:
    size_at = snapshot_row(sample)[1]
    with closing(sqlite3.connect(sample)) as conn, conn:
        last = conn.execute("SELECT max(seq) FROM entries").fetchone()[0]
    assert last > size_at + 1
    rewrite_entry(sample, last, signature=bytes(64))
    with pytest.raises(LedgerError, match=f"damaged at seq={last}: bad signature"):
        Ledger.open(sample, signing_key, KIOSK, boot=False)


# --- verification holds a snapshot to the entries ----------------------------------------------------
def test_verify_checks_the_snapshot_against_the_entries(sample: Path) -> None:
    result = verify_path(sample)
    assert result.ok and result.snapshot == f"state snapshot at seq={snapshot_row(sample)[1]} matches the entries"
    assert result.snapshot in result.summary()


def test_a_false_state_the_key_signed_fails_verification(sample: Path, signing_key: Ed25519PrivateKey) -> None:
    # A stolen key, or a bug: the state is signed but is not what the entries add up to.
    _, size, blob, _ = snapshot_row(sample)
    st = snapmod.decode(blob)
    st.kiosk_total[0] += 100
    forged = snapmod.encode(st)
    put_snapshot(sample, size, forged, signing_key.sign(snapmod.message(forged)))
    result = verify_path(sample)
    assert not result.ok and result.bad_seq == size, result
    assert "signed by the kiosk's key, differs from the state of the entries" in result.reason


def test_a_signed_snapshot_beyond_the_last_entry_shows_a_cut_short_ledger(
        tmp_path: Path, signing_key: Ed25519PrivateKey, pepper: Pepper, caplog: pytest.LogCaptureFixture) -> None:
    path, cut = tmp_path / "ledger.db", tmp_path / "cut.db"
    led = Ledger.open(path, signing_key, KIOSK, checkpoint_every=1000)
    gifts(led, pepper, 2)
    led.close(checkpoint=False)
    shutil.copy(path, cut)  # the entries as they were, before the four that follow
    led = Ledger.open(path, signing_key, KIOSK, boot=False)
    gifts(led, pepper, 2, start=10)
    led.save_snapshot()
    led.close(checkpoint=False)
    put_snapshot(cut, *snapshot_row(path)[1:])
    assert fields(Ledger.open(cut, signing_key, KIOSK, boot=False).st) == fields(replayed(cut))
    assert "which the file does not hold" in caplog.text
    result = verify_path(cut)
    assert not result.ok and "ledger cut short" in result.reason, result


# --- when it is written -------------------------------------------------------------------------------
def test_close_writes_it_and_snapshot_due_counts_entries(tmp_path: Path, signing_key: Ed25519PrivateKey,
                                                         pepper: Pepper) -> None:
    path = tmp_path / "ledger.db"
    led = Ledger.open(path, signing_key, KIOSK, checkpoint_every=1000, snapshot_every=5)
    assert snapshot_row(path) is None and not led.snapshot_due  # genesis, boot, checkpoint: 3 entries
    gifts(led, pepper, 1)
    assert led.snapshot_due
    assert led.save_snapshot() == led.size == led.snapshot_size == snapshot_row(path)[1]
    assert not led.snapshot_due
    gifts(led, pepper, 1, start=1)
    led.close(checkpoint=False)
    assert snapshot_row(path)[1] == led.size - 2, "close(checkpoint=False) writes nothing"
    led = Ledger.open(path, signing_key, KIOSK, boot=False)
    gifts(led, pepper, 1, start=5)
    led.close()
    assert snapshot_row(path)[1] == led.size


def test_an_older_state_never_replaces_a_newer_snapshot(tmp_path: Path, signing_key: Ed25519PrivateKey,
                                                         pepper: Pepper) -> None:
    path = tmp_path / "ledger.db"
    Ledger.open(path, signing_key, KIOSK).close()
    behind = Ledger.open(path, signing_key, KIOSK, boot=False)  # a second process, then left behind
    ahead = Ledger.open(path, signing_key, KIOSK, boot=False)
    gifts(ahead, pepper, 2)
    ahead.save_snapshot()
    behind.save_snapshot()
    assert snapshot_row(path)[1] == ahead.size > behind.size
    ahead.close(checkpoint=False)
    behind.close(checkpoint=False)


def test_a_ledger_from_before_the_snapshot_is_migrated(tmp_path: Path, signing_key: Ed25519PrivateKey,
                                                       pepper: Pepper) -> None:
    path = tmp_path / "ledger.db"
    led = Ledger.open(path, signing_key, KIOSK)
    gifts(led, pepper, 2)
    led.close(checkpoint=False)
    with closing(sqlite3.connect(path)) as conn, conn:  # as schema 1 left it
        conn.execute("DROP TABLE state_snapshot")
        conn.execute("PRAGMA user_version=1")
    assert verify_path(path).ok
    led = Ledger.open(path, signing_key, KIOSK, boot=False)
    assert led.snapshot_size == 0 and fields(led.st) == fields(replayed(path))
    led.close()
    assert snapshot_row(path)[1] == led.size


def test_a_process_holding_a_key_not_in_force_writes_no_snapshot(tmp_path: Path, signing_key: Ed25519PrivateKey,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ledger.db"
    Ledger.open(path, signing_key, KIOSK).close()
    new = Ed25519PrivateKey.generate()
    led = Ledger.open(path, new, KIOSK, key_lost=True)
    with pytest.raises(LedgerError, match="not the key in force"):
        led.save_snapshot()
    led.announce_new_key()
    assert led.save_snapshot() == led.size
    led.close()
    led = Ledger.open(path, new, KIOSK, boot=False)
    assert led.snapshot_size == led.size and fields(led.st) == fields(replayed(path))
    led.close(checkpoint=False)
    assert verify_path(path, trusted_keys={led.st.key_changes[-1][0]: bytes.fromhex(led.st.public_key)}).snapshot \
        .endswith("matches the entries")


# --- any history, any place to snapshot ------------------------------------------------------------
OPS = hs.lists(hs.one_of(
    hs.tuples(hs.just("intent"), hs.sampled_from(["kodomo", "midori", "machi"]), hs.integers(1, 10)),
    hs.tuples(hs.just("settle"), hs.booleans()),
    hs.tuples(hs.just("void"), hs.integers(0, 50)),
    hs.tuples(hs.just("grant"), hs.integers(1, 30)),
    hs.just(("checkpoint",)), hs.just(("snapshot",)), hs.just(("reopen",)), hs.just(("rekey",)),
), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_any_history_opens_from_its_snapshot_to_the_state_of_a_full_replay(ops: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ledger.db"
        pepper = Pepper.create(Path(d) / "pepper.json")
        sk = Ed25519PrivateKey.generate()
        led = Ledger.open(path, sk, KIOSK, checkpoint_every=7)
        open_intents: list[int] = []
        settled: list[int] = []
        for n, op in enumerate(ops):
            if op[0] == "intent":
                open_intents.append(led.record_intent(op[1], 100 * op[2], "sim", pepper.token(fake_idm(n % 4)),
                                                      f"i{n}").seq)
            elif op[0] == "settle" and open_intents:
                seq = open_intents.pop(0)
                if op[1]:
                    settled.append(led.record_donation(seq, f"r{n}", 1).seq)
                else:
                    led.record_failure(seq, "declined")
            elif op[0] == "void" and settled:
                led.void(settled.pop(op[1] % len(settled)), "staff correction")
            elif op[0] == "grant":
                led.grant_points(pepper.token(fake_idm(9)), op[1], "park cleanup")
            elif op[0] == "checkpoint":
                led.checkpoint()
            elif op[0] == "snapshot":
                led.save_snapshot()
            elif op[0] == "rekey":
                sk = Ed25519PrivateKey.generate()
                led.rekey(sk)
            elif op[0] == "reopen":
                led.close(checkpoint=False)
                led = Ledger.open(path, sk, KIOSK, checkpoint_every=7)
                assert fields(led.st) == fields(replayed(path))
        led.close(checkpoint=False)
        reopened = Ledger.open(path, sk, KIOSK, boot=False)
        full = replayed(path)
        assert fields(reopened.st) == fields(full)
        assert reopened.view == LedgerView.of(full)
        assert reopened.unresolved_intents() == [dict(v) for _, v in sorted(full.intents.items())]
        reopened.close(checkpoint=False)
        result = verify_path(path, parallel=False)
        assert result.ok, result
        row = snapshot_row(path)
        assert (result.snapshot or "").endswith("matches the entries") == (row is not None), (result, row)


def test_opening_logs_nothing_about_a_sound_snapshot(sample: Path, signing_key: Ed25519PrivateKey,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kiosk.ledger.store")
    Ledger.open(sample, signing_key, KIOSK, boot=False).close(checkpoint=False)
    assert "snapshot" not in caplog.text

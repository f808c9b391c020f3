"""The ledger writer: two-phase donations, idempotency, checkpoints, re-opening, identity."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.ledger import Ledger, LedgerError, Pepper, keys, verify_path
from kiosk.ledger import checkpoint as cpmod
from kiosk.ledger.clock import FixedClock
from kiosk.ledger.schema import SCHEMA_VERSION
from tests.conftest import fake_idm


def test_new_ledger_starts_with_genesis_boot_and_checkpoint(tmp_path, signing_key, clock):
    led = Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock)
    kinds = [e.type for e in led.iter_entries()]
    assert kinds == ["genesis", "boot", "checkpoint"]
    g = led.entry(1)
    assert g.data["public_key"] == keys.public_raw(signing_key.public_key()).hex()
    assert g.obj["kiosk"] == "k-1" and g.obj["prev"] == "00" * 32
    assert led.entry(2).obj["prev"] == g.entry_hash.hex()
    cp = cpmod.open_note(led.latest_checkpoint(), signing_key.public_key())
    assert cp.size == 2 and cp.origin == "civic-kiosk.ledger/k-1"
    led.close()


def test_two_phase_donation_and_idempotency(tmp_path, signing_key, clock, pepper):
    led = Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock)
    donor = pepper.token(fake_idm(1))
    intent = led.record_intent("p", 500, "sim", donor, "key-1")
    assert led.unresolved_intents()[0]["seq"] == intent.seq
    again = led.record_intent("p", 500, "sim", donor, "key-1")
    assert again.seq == intent.seq and led.size == intent.seq  # a retry writes nothing new
    d = led.record_donation(intent.seq, "ref-1", 5)
    assert led.record_donation(intent.seq, "ref-1", 5).seq == d.seq  # settled once
    assert led.record_failure(intent.seq, "late timeout").seq == d.seq  # cannot be failed afterwards
    assert led.unresolved_intents() == []
    assert d.data["totals"] == {"project_yen": 500, "project_count": 1, "kiosk_yen": 500, "kiosk_count": 1}
    assert led.project_total("p") == (500, 1)
    assert led.donor_points([donor.hex]) == 5
    assert led.donor_given(donor.hex, led.business_date()) == 500
    with pytest.raises(LedgerError):
        led.record_donation(9999, "x", 1)
    led.close()


def test_unresolved_intents_survive_a_restart(tmp_path, signing_key, clock, pepper):
    led = Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock)
    intent = led.record_intent("p", 100, "sim", pepper.token(fake_idm(2)), "key-2")
    led._drop_writer()  # the process dies without a clean close
    led2 = Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock)
    assert [i["seq"] for i in led2.unresolved_intents()] == [intent.seq]
    assert led2.intent_for("key-2") == intent.seq
    led2.record_donation(intent.seq, "found-by-lookup", 1)
    assert led2.unresolved_intents() == []
    assert led2.boot_count == 2
    led2.close()
    assert verify_path(tmp_path / "l.db").ok


def test_void_and_points(tmp_path, signing_key, clock, pepper):
    led = Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock)
    donor = pepper.token(fake_idm(3))
    d = led.record_donation(led.record_intent("p", 1000, "sim", donor, "a").seq, "r", 10)
    led.grant_points(donor, 25, "park cleanup")
    assert led.donor_points([donor.hex]) == 35
    led.void(d.seq, "refunded at the desk")
    assert led.project_total("p") == (0, 0)
    assert led.donor_points([donor.hex]) == 25
    assert led.donor_given(donor.hex, led.business_date()) == 0
    with pytest.raises(LedgerError, match="already voided"):
        led.void(d.seq, "twice")
    with pytest.raises(LedgerError, match="dedicated method"):
        led.append("donation", {})
    led.close()


def test_checkpoint_every_n_entries_and_every_t_minutes(tmp_path, signing_key, pepper):
    clock = FixedClock()
    led = Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock, checkpoint_every=5, checkpoint_minutes=10)
    base = led.size
    for i in range(5):
        led.append("admin_action", {"action": f"a{i}"})
    assert led.entry(base + 6).type == "checkpoint"
    size_before = led.size
    led.append("admin_action", {"action": "x"})
    assert led.size == size_before + 1  # not due yet
    clock.advance(10 * 60_000)
    led.append("admin_action", {"action": "y"})
    assert led.entry(led.size).type == "checkpoint"  # T minutes passed
    led.close()
    final = Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock, boot=False)
    assert final.entry(final.size).type == "checkpoint"  # written at shutdown
    final.close(checkpoint=False)
    assert verify_path(tmp_path / "l.db").ok


def test_reopening_with_another_key_or_kiosk_id_is_refused(tmp_path, signing_key, clock):
    Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock).close()
    with pytest.raises(LedgerError, match="another signing key"):
        Ledger.open(tmp_path / "l.db", Ed25519PrivateKey.generate(), "k-1", clock=clock)
    with pytest.raises(LedgerError, match="belongs to kiosk"):
        Ledger.open(tmp_path / "l.db", signing_key, "k-2", clock=clock)


def test_append_only_triggers(tmp_path, signing_key, clock):
    import sqlite3

    Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock).close()
    con = sqlite3.connect(tmp_path / "l.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE entries SET type = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM entries WHERE seq = 1")
    con.close()


def test_wal_and_full_sync(tmp_path, signing_key, clock):
    led = Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock)
    conn = led._writer()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    led.close()


def test_keygen_modes_and_errors(tmp_path):
    k, p = keys.generate(tmp_path / "keys")
    assert stat.S_IMODE(os.stat(k).st_mode) == 0o600
    assert isinstance(keys.load_private(k), Ed25519PrivateKey)
    with pytest.raises(keys.KeyError_, match="refusing"):
        keys.generate(tmp_path / "keys")
    (tmp_path / "bad.key").write_text("not a key")
    with pytest.raises(keys.KeyError_, match="not an unencrypted PEM"):
        keys.load_private(tmp_path / "bad.key")
    with pytest.raises(keys.KeyError_, match="does not exist"):
        keys.load_private(tmp_path / "none.key")


def test_pepper_file_tokens_and_rotation(tmp_path):
    p = Pepper.create(tmp_path / "pepper.json")
    assert stat.S_IMODE(os.stat(tmp_path / "pepper.json").st_mode) == 0o600
    t1 = p.token(fake_idm(1))
    assert len(t1.hex) == 32 and t1.epoch == 1
    assert Pepper.load(tmp_path / "pepper.json").token(fake_idm(1)) == t1
    assert p.token(fake_idm(2)) != t1
    assert p.rotate(tmp_path / "pepper.json") == 2
    again = Pepper.load(tmp_path / "pepper.json")
    assert again.token(fake_idm(1)).epoch == 2 and again.token(fake_idm(1)) != t1
    assert t1 in again.all_tokens(fake_idm(1))
    with pytest.raises(ValueError):
        p.token(b"short")
    with pytest.raises(FileExistsError):
        Pepper.create(tmp_path / "pepper.json")
    (tmp_path / "bad.json").write_text("{")
    from kiosk.ledger import PepperError
    with pytest.raises(PepperError, match="malformed"):
        Pepper.load(tmp_path / "bad.json")


def test_a_second_writer_process_is_absorbed(tmp_path, signing_key, pepper):
    """The nightly `kiosk closeout` appends while the kiosk app holds the ledger open."""
    clock = FixedClock()
    app = Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock)
    donor = pepper.token(fake_idm(1))
    app.record_donation(app.record_intent("p", 100, "sim", donor, "a").seq, "r1", 1)
    timer = Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=clock, boot=False)
    i2 = timer.record_intent("p", 500, "sim", donor, "b")
    timer.record_donation(i2.seq, "r2", 5)  # another writer settles a gift the app has never seen
    timer.append("close_out", {"business_date": "2026-11-21", "first_seq": 1, "last_seq": timer.size,
                               "count": 2, "total_yen": 600, "projects": [], "methods": []})
    timer.close(checkpoint=False)
    # The app's next appends re-read the tip instead of failing, and its running totals include the other gift.
    d = app.record_donation(app.record_intent("p", 1000, "sim", donor, "c").seq, "r3", 10)
    assert d.data["totals"] == {"project_yen": 1600, "project_count": 3, "kiosk_yen": 1600, "kiosk_count": 3}
    app.close()
    r = verify_path(tmp_path / "l.db", signing_key.public_key())
    assert r.ok, r.summary()

"""Fail closed: when an append cannot be made durable it raises, and nothing partial is left.

Three real failure paths: SQLite's own "database or disk is full" (a page
limit), a genuinely full file system, and a file system remounted read-only
(the usual end of a dying SD card). The last two use a small tmpfs; mounting
needs root, which CI has.
"""

from __future__ import annotations

import contextlib
import os
import subprocess

import pytest

from kiosk.ledger import Ledger, LedgerUnavailable, verify_path
from kiosk.ledger.clock import FixedClock
from tests.conftest import fake_idm
from tests.mounts import small_tmpfs


def _assert_fails_closed(led: Ledger, pepper, idem: str) -> None:  # noqa: ANN001
    before = led.size
    with pytest.raises(LedgerUnavailable, match="nothing recorded"):
        led.record_intent("p", 100, "sim", pepper.token(fake_idm(9)), idem)
    assert led.intent_for(idem) is None
    assert led.size == before


def _cap_pages(led: Ledger) -> None:
    """SQLite's page limit, on the writer's connection: the next page it needs is 'disk full'."""
    conn = led._writer()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")


def test_sqlite_full(tmp_path, signing_key, pepper):
    led = Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=FixedClock())
    before = led.size
    _cap_pages(led)
    big = "x" * 20_000  # needs new pages
    with pytest.raises(LedgerUnavailable, match="full"):
        led.append("admin_action", {"action": "big", "detail": big})
    assert led.size == before
    _cap_pages(led)  # a failed write drops the connection; the new one must hit the limit too
    with pytest.raises(LedgerUnavailable, match="nothing recorded"):
        led.record_intent("p", 100, "sim", pepper.token(fake_idm(9)), "after-full" + "-" * 20_000)
    assert led.intent_for("after-full" + "-" * 20_000) is None and led.size == before
    led.close(checkpoint=False)  # the limit lives on the dropped connection; a reopen has room again
    led = Ledger.open(tmp_path / "l.db", signing_key, "k-1", clock=FixedClock())
    assert led.size == before + 2  # the new boot entry and its checkpoint; nothing from the failed writes
    led.record_intent("p", 100, "sim", pepper.token(fake_idm(9)), "after-full")
    led.close()
    assert verify_path(tmp_path / "l.db").ok


def test_file_system_full(tmp_path, signing_key, pepper):
    with small_tmpfs(tmp_path / "mnt", "640k") as mnt:
        led = Ledger.open(mnt / "l.db", signing_key, "k-1", clock=FixedClock(), checkpoint_every=10_000)
        for i in range(5):
            led.record_intent("p", 100, "sim", pepper.token(fake_idm(i)), f"ok-{i}")
        good = led.size
        with open(mnt / "filler", "wb") as f:  # eat every free block
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
        failures = 0
        for _i in range(200):
            try:
                led.append("admin_action", {"action": "fill", "detail": "y" * 3000})
            except LedgerUnavailable:
                failures += 1
                break
        assert failures == 1, "the disk never filled up"
        _assert_fails_closed(led, pepper, "while-full")
        os.remove(mnt / "filler")
        led.record_intent("p", 100, "sim", pepper.token(fake_idm(9)), "while-full")  # works again once space is back
        assert led.size > good
        led.close()
        r = verify_path(mnt / "l.db")
        assert r.ok, r.summary()


def test_read_only_file_system(tmp_path, signing_key, pepper):
    """The data partition comes up read-only (a dying SD card, or an overlay without recurse=0)."""
    from kiosk.ledger import LedgerError

    with small_tmpfs(tmp_path / "mnt", "4m") as mnt:
        led = Ledger.open(mnt / "l.db", signing_key, "k-1", clock=FixedClock())
        led.record_intent("p", 100, "sim", pepper.token(fake_idm(1)), "before")
        led.close()
        size = verify_path(mnt / "l.db").entries
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        try:
            with pytest.raises(LedgerError) as err:
                Ledger.open(mnt / "l.db", signing_key, "k-1", clock=FixedClock())
            assert "read-only" in str(err.value) or "readonly" in str(err.value), str(err.value)
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
        led = Ledger.open(mnt / "l.db", signing_key, "k-1", clock=FixedClock())
        assert led.size == size + 2  # nothing half-written: just this boot and its checkpoint
        led.close()
        assert verify_path(mnt / "l.db").ok


def test_open_on_an_unwritable_place_is_a_clear_error(tmp_path, signing_key):
    from kiosk.ledger import LedgerError

    (tmp_path / "file").write_text("x")
    with pytest.raises(LedgerError, match="cannot open ledger"):
        Ledger.open(tmp_path / "file" / "l.db", signing_key, "k-1")

"""The donation ledger on a disk that fills up or turns read-only while the kiosk runs.

Real file systems: a small tmpfs filled with a file (as a growing log or another program would fill the data
partition), and an ext4 image on a loop device that the kernel turns read-only mid-session (``errors=remount-ro``
and ext4's own ``trigger_fs_error``: what a dying SD card does). The payment terminal's records are elsewhere, as a
real terminal's are. Mounting needs root (CI has it); elsewhere the tests are skipped, saying so.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiosk.donation import flow
from kiosk.ledger import verify_path
from tests.donation.conftest import Kiosk, approved_charges, card, entries_of
from tests.mounts import failing_ext4, fill, small_tmpfs


@dataclass
class _Kiosk(Kiosk):
    """The kiosk's files in ``dir``; the terminal's own records in ``outside`` (another machine's disk)."""

    outside: Path = Path()

    @property
    def sim_path(self) -> Path:
        return self.outside / "payment-sim.db"


@pytest.fixture
def small_kiosk(tmp_path: Path) -> Iterator[_Kiosk]:
    (tmp_path / "terminal").mkdir()
    with small_tmpfs(tmp_path / "data", "2m") as d:
        k = _Kiosk(d, outside=tmp_path / "terminal")
        try:
            yield k
        finally:
            k.close()


def test_a_disk_that_fills_up_during_the_charge_still_records_the_gift(small_kiosk: _Kiosk) -> None:
    """The intent was durable and the terminal charged the card; meanwhile the data partition filled up. The
    ledger still records the gift (with the room it kept aside for that), so the donor sees the thank-you, not
    "your gift will be recorded later". Then no new gift is taken until there is room again (nothing charged),
    and once there is, gifts go through and the ledger verifies."""
    k = small_kiosk
    filled: list[Path] = []

    def disk_fills(point: str) -> None:
        if point == "after_charge" and not filled:
            filled.append(fill(k.dir))

    led, term, svc = k.open(crash_point=disk_fills)
    state = svc.reader_event(card(1))
    assert filled, "the charge never happened"
    assert state.name == "thanks", (state.name, state.error)
    (don,) = entries_of(led, "donation")
    assert state.thanks is not None and state.thanks.receipt.seq == don.seq
    assert led.unresolved_intents() == [] and len(approved_charges(term)) == 1

    # The disk is still full: the next citizen is refused before anything is charged, in plain words.
    svc.handle(flow.Touch(now_ms=svc.now_ms()))
    state = svc.reader_event(card(2))
    assert (state.name, svc.screen.kind, svc.screen.hint) == ("error", "unavailable", "unavailable"), state
    assert len(term.charges()) == 1 and len(entries_of(led, "donation_intent")) == 1

    filled[0].unlink()  # space is back: the kiosk takes gifts again, without a restart
    svc.handle(flow.Touch(now_ms=svc.now_ms()))
    state = svc.reader_event(card(3))
    assert state.name == "thanks", (state.name, state.error)
    assert len(entries_of(led, "donation")) == 2 and len(approved_charges(term)) == 2
    assert led.reserve_path.stat().st_blocks * 512 >= led.reserve_bytes  # the room is kept aside again
    led.close()
    r = verify_path(k.ledger_path)
    assert r.ok, r.summary()


def test_a_full_disk_refuses_the_intent_and_charges_nothing(small_kiosk: _Kiosk) -> None:
    """Filled while the kiosk waits on the loop: the tap is refused at the intent, the terminal is never asked,
    and the ledger stays as it was and verifies."""
    k = small_kiosk
    led, term, svc = k.open()
    before = led.size
    filler = fill(k.dir)
    for n in range(3):  # every tap, not only the first
        state = svc.reader_event(card(n))
        assert (state.name, svc.screen.hint) == ("error", "unavailable"), state
        svc.handle(flow.Touch(now_ms=svc.now_ms()))
    assert term.charges() == [] and entries_of(led, "donation_intent") == []
    assert led.size == before
    filler.unlink()
    assert svc.reader_event(card(9)).name == "thanks"
    led.close()
    assert verify_path(k.ledger_path).ok


def test_a_data_partition_gone_read_only_mid_session_refuses_taps_and_charges_nothing(tmp_path: Path) -> None:
    """The kernel remounts the data partition read-only while the ledger is open (a dying SD card): the next
    tap is refused before any charge, on the plain "not charged, try later" screen, and the kiosk keeps running.
    The ledger as it was stays verifiable."""
    (tmp_path / "terminal").mkdir()
    d = tmp_path / "data"
    with failing_ext4(d, size_mb=16) as trigger:
        k = _Kiosk(d, outside=tmp_path / "terminal")
        try:
            led, term, svc = k.open()
            assert svc.reader_event(card(1)).name == "thanks"
            svc.handle(flow.Touch(now_ms=svc.now_ms()))
            trigger.write_text("test: the card is dying\n")
            with pytest.raises(OSError) as exc:
                (d / "probe").write_text("x")
            assert exc.value.errno == errno.EROFS
            for n in (2, 3):
                state = svc.reader_event(card(n))
                assert (state.name, svc.screen.hint) == ("error", "unavailable"), state
                svc.handle(flow.Touch(now_ms=svc.now_ms()))
            assert len(term.charges()) == 1 and led.unresolved_intents() == []
        finally:
            k.close()
        r = verify_path(d / "ledger.db")
        assert r.ok and r.entries == led.size, r.summary()

"""The Square adapter's journal on a disk that fills up while the donor pays.

The journal (``square-journal.db``) and the ledger share the kiosk's data partition. The create body is written to
the journal before the create is sent (no charge without it); Square's later answers are written there only to
save a request at recovery. So when the disk fills after the create, a COMPLETED checkout is still ``approved``:
the ledger records the gift with the room it keeps aside (kiosk/ledger/store.py ``_ensure_reserve``) and the donor
sees the thank-you, not an error. And a kiosk killed after Square's answer, restarted on the still-full disk with a
journal that never heard the final answer, still records the gift.

Real parts: a small tmpfs filled with a file, the real ledger, the Square adapter and SDK against the fake Square
API on loopback, a real fork SIGKILLed at the service's crash point (as tests/donation/test_donation_crash.py).
Mounting needs root (CI has it); elsewhere the tests are skipped, saying so.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.donation import flow
from kiosk.donation.service import DonationService
from kiosk.ledger import Ledger, verify_path
from kiosk.payment.square import SquareLive
from tests.donation.conftest import KIOSK_ID, entries_of, settings
from tests.mounts import fill, small_tmpfs
from tests.payment.fake_square import FakeSquare, Fault
from tests.payment.test_square_terminal import SleepLog, terminal


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "data", "2m") as d:
        yield d


@pytest.fixture
def fake() -> Iterator[FakeSquare]:
    with FakeSquare() as f:  # no FixedClock in the fake: a forked kiosk's clock is its own copy
        yield f


def _service(d: Path, fake: FakeSquare, sk, clk: SleepLog, **kw) -> tuple[Ledger, DonationService]:  # noqa: ANN001, ANN003
    led = Ledger.open(d / "ledger.db", sk, KIOSK_ID, clock=clk, checkpoint_every=1000)
    term = terminal(fake, clk, d)  # journal: d / "square-journal.db", beside the ledger as in data_dir
    svc = DonationService(led, term, settings(method="square", pay_on_terminal=True), clock=clk,
                          lookup_interval_ms=0, **kw)
    return led, svc


def _fill_when(d: Path, status: str, filled: list[Path]):  # noqa: ANN202
    """An ``on_live`` that fills the disk once the terminal reaches ``status`` (the charging thread)."""

    def on_live(live: SquareLive) -> None:
        if live.status == status and not filled:
            filled.append(fill(d))

    return on_live


def _pay(svc: DonationService) -> None:
    svc.handle(flow.Touch(now_ms=svc.now_ms()))
    svc.handle(flow.ChooseAmount(now_ms=svc.now_ms(), amount_yen=500))
    svc.handle(flow.PayOnTerminal(now_ms=svc.now_ms()))


def _journal_status(d: Path) -> str | None:
    """The journal's one row's status, read without writing (closing a writable connection would checkpoint the
    journal and free its write-ahead log's room on the full disk)."""
    con = sqlite3.connect(f"file:{d / 'square-journal.db'}?mode=ro", uri=True)
    try:
        [(status,)] = con.execute("SELECT status FROM checkouts").fetchall()
        return status
    finally:
        con.close()


def _full(d: Path) -> bool:
    st = os.statvfs(d)
    return st.f_bavail * st.f_frsize < 4096


def test_a_disk_that_fills_while_the_donor_pays_still_thanks_the_donor(disk: Path, fake: FakeSquare,
                                                                        signing_key) -> None:  # noqa: ANN001
    clk = SleepLog()
    led, svc = _service(disk, fake, signing_key, clk)
    term = svc.terminal
    filled: list[Path] = []
    term.on_live = _fill_when(disk, "IN_PROGRESS", filled)
    svc.start()
    fake.plan = ["tap", "complete"]
    _pay(svc)
    assert filled, "the disk never filled"
    assert svc.state.name == "thanks", (svc.state.name, svc.state.error)
    [don] = entries_of(led, "donation")
    assert don.data["provider_ref"] == fake.only().payment_ids[0] and don.data["amount_yen"] == 500
    assert led.unresolved_intents() == [] and fake.count_by_idem() == {don.data["idem"]: 1}
    assert _journal_status(disk) == "IN_PROGRESS"  # the journal never heard COMPLETED: the disk was full
    led.close(checkpoint=False)
    term.close()
    filled[0].unlink()
    assert verify_path(disk / "ledger.db").ok


def _killed_kiosk(d: Path, fake: FakeSquare, sk, fill_at: str) -> None:  # noqa: ANN001
    """A forked kiosk that pays through Square, the disk filling at ``fill_at``; SIGKILLed right after the
    charge's answer (the service's ``after_charge`` point), before anything is on the ledger."""
    pid = os.fork()
    if pid == 0:  # the kiosk process
        try:
            clk = SleepLog()
            led, svc = _service(d, fake, sk, clk,
                                crash_point=lambda p: p == "after_charge" and os.kill(os.getpid(), signal.SIGKILL))
            if fill_at == "in_progress":
                svc.terminal.on_live = _fill_when(d, "IN_PROGRESS", [])
            svc.start()
            _pay(svc)
        finally:
            os._exit(3)  # not reached when killed
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


@pytest.mark.parametrize("fill_at", ["after_create", "in_progress"])
def test_a_kiosk_killed_after_the_payment_records_it_on_restart_with_the_disk_still_full(
        disk: Path, fake: FakeSquare, signing_key, fill_at: str) -> None:  # noqa: ANN001
    """after_create: the journal holds the create body only (no checkout id, no status); in_progress: it holds
    IN_PROGRESS. Either way the restart, with the disk still full, asks Square, which says COMPLETED, and the
    gift is recorded with its payment id: once, from the one checkout."""
    filled: list[Path] = []
    if fill_at == "after_create":
        def stored_then_fill() -> dict:
            filled.append(fill(disk))
            return {"checkout": fake.only().doc()}  # Square's true answer, sent once the disk is full

        fake.fault("create", Fault("answer_after", doc=stored_then_fill))
    fake.plan = ["tap", "complete"]
    _killed_kiosk(disk, fake, signing_key, fill_at)
    co = fake.only()
    fake.buyer(co.id, "complete")  # the donor finishes paying on the terminal (if not yet: a no-op once paid)
    assert co.status == "COMPLETED"  # the donor paid; the kiosk died before the ledger heard of it
    assert _journal_status(disk) in ((None, "PENDING") if fill_at == "after_create" else ("IN_PROGRESS",))
    assert _full(disk), "the disk is not full"

    clk = SleepLog()
    led, svc = _service(disk, fake, signing_key, clk)
    done = svc.start()
    assert [r.outcome for r in done] == ["donation"], done
    [don] = entries_of(led, "donation")
    assert don.data["provider_ref"] == co.payment_ids[0] and don.data["amount_yen"] == 500
    assert led.unresolved_intents() == [] and fake.count_by_idem() == {co.idem: 1}
    led.close(checkpoint=False)
    svc.terminal.close()
    (disk / "filler").unlink()
    assert verify_path(disk / "ledger.db").ok

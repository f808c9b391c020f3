"""A checkout whose every tap was declined: the adapter's journal never names a payment that took no money.

The journal (``square-journal.db``) keeps each checkout's ``payment_id`` beside its status, as the one that took
the donor's money (docs/payment.md). A declined tap is a FAILED payment the checkout lists (the fake Square's
``decline`` step, as in sde1000/quicktill issue 254); when the donor then gives up, or is still at the terminal,
the checkout lists that one payment only, and it took nothing. Found by the random sessions of
``tests/payment/test_square_schedules.py`` once they drew declined taps.

Real parts: the Square adapter and SDK against the fake Square API on loopback, a real journal file. Time is a
FixedClock.
"""

from __future__ import annotations

from pathlib import Path

from kiosk.ledger.clock import FixedClock
from tests.payment.fake_square import FakeSquare
from tests.payment.test_square_terminal import terminal

IDEM = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def _journal(term) -> list[tuple[str, str | None]]:  # noqa: ANN001
    return [(row["status"], row["payment_id"]) for row in term.journal.rows()]


def test_a_declined_tap_then_a_cancel_leaves_no_payment_in_the_journal(tmp_path: Path) -> None:
    clk = FixedClock()
    with FakeSquare(clock=clk.monotonic) as fake:
        term = terminal(fake, clk, tmp_path)
        try:
            fake.plan = ["tap", "decline", "cancel"]  # the card was declined, and the donor gave up
            r = term.charge(500, IDEM, reference="21")
            co = fake.only()
            [failed] = co.payment_ids
            assert fake.payments[failed]["status"] == "FAILED"
            assert r.status == "declined" and r.canceled
            assert _journal(term) == [("CANCELED", None)]  # not the FAILED payment: it took no money
        finally:
            term.close()


def test_a_declined_tap_still_at_the_terminal_leaves_no_payment_in_the_journal(tmp_path: Path) -> None:
    clk = FixedClock()
    with FakeSquare(clock=clk.monotonic) as fake:
        term = terminal(fake, clk, tmp_path)
        try:
            fake.plan = ["tap", "decline"] + ["wait"] * 200  # declined; the donor is still at the terminal
            r = term.charge(500, IDEM, reference="22")
            assert r.status == "unknown"  # the kiosk's deadline passed with the checkout IN_PROGRESS
            assert _journal(term) == [("IN_PROGRESS", None)]
            for step in ("decline", "complete"):  # a second card declined, a third one paid
                fake.buyer(fake.only().id, step)
            r = term.lookup(IDEM)
            [paid] = [p for p in fake.only().payment_ids if fake.payments[p]["status"] == "COMPLETED"]
            assert r.status == "approved" and r.provider_ref == paid
            assert _journal(term) == [("COMPLETED", paid)]
        finally:
            term.close()

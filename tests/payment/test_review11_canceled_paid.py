"""A CANCELED Terminal checkout that lists a payment which took the money.

``payment_ids`` lists every payment a checkout made, whatever its status; a CANCELED checkout usually lists only
declined taps (FAILED payments). But Square's staff say BUYER_CANCELED is also how some errors on the device are
reported, so "CANCELED" alone does not prove the donor was not debited. Before this, such a checkout was closed
as ``declined``: the donor was told "not charged" and the intent was settled as ``donation_failed``, so a gift
whose money Square holds could never reach the ledger. Now the adapter asks GetPayment about each listed payment:
one COMPLETED for the gift's sum records the gift under it; one still APPROVED or PENDING (money may yet move),
or no answer from Square, leaves the intent open (``unknown``) for lookup to settle later; only FAILED or
CANCELED payments make the checkout ``declined``, as before.

Real parts: the ledger, the donation service, the Square adapter and SDK against the fake Square API on loopback
(whose ``paid_cancel`` and ``approved_cancel`` steps are such checkouts). Time is a FixedClock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.ledger.clock import FixedClock
from kiosk.payment import TerminalUnavailable
from tests.donation.conftest import card, entries_of
from tests.payment.fake_square import FakeSquare, Fault
from tests.payment.test_square_refund import build_rig, square_kiosk
from tests.payment.test_square_terminal import terminal

IDEM = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"


def _paid(fake: FakeSquare, co) -> str:  # noqa: ANN001
    [pid] = [p for p in co.payment_ids if fake.payments[p]["status"] == "COMPLETED"]
    return pid


def test_a_canceled_checkout_whose_payment_took_the_money_is_recorded_and_thanked(tmp_path: Path) -> None:
    rig = build_rig(tmp_path / "kiosk")
    with square_kiosk(rig, tmp_path) as (fake, term, svc):
        fake.plan = ["tap", "paid_cancel"]
        svc.reader_event(card(1))
        co = fake.only()
        assert co.status == "CANCELED" and co.cancel_reason == "BUYER_CANCELED"
        assert svc.state.name == "thanks", (svc.state.name, svc.state.error)  # never "not charged"
        [don] = entries_of(rig.ledger, "donation")
        assert don.data["provider_ref"] == _paid(fake, co)
        assert entries_of(rig.ledger, "donation_failed") == []
        assert [r["payment_id"] for r in term.journal.rows()] == [_paid(fake, co)]


def test_a_declined_tap_then_a_paid_one_in_a_canceled_checkout_records_the_paid_one(tmp_path: Path) -> None:
    clk = FixedClock()
    with FakeSquare(clock=clk.monotonic) as fake:
        term = terminal(fake, clk, tmp_path)
        fake.plan = ["tap", "decline", "paid_cancel"]
        r = term.charge(500, IDEM, reference="8")
        co = fake.only()
        assert len(co.payment_ids) == 2
        assert r.status == "approved" and r.provider_ref == _paid(fake, co)
        term.close()


def test_a_canceled_checkout_with_an_approved_payment_stays_open_until_square_settles_it(tmp_path: Path) -> None:
    clk = FixedClock()
    with FakeSquare(clock=clk.monotonic) as fake:
        term = terminal(fake, clk, tmp_path)
        fake.plan = ["tap", "approved_cancel"]
        r = term.charge(500, IDEM, reference="9")
        assert r.status == "unknown"  # the money is held: neither "not charged" nor a gift yet
        [pid] = fake.only().payment_ids
        with pytest.raises(TerminalUnavailable):
            term.lookup(IDEM)
        fake.payments[pid]["status"] = "CANCELED"  # Square released the hold: nothing was taken
        found = term.lookup(IDEM)
        assert found.status == "declined" and found.canceled
        term.close()


def test_a_canceled_checkout_whose_payments_square_will_not_describe_is_unknown(tmp_path: Path) -> None:
    clk = FixedClock()
    with FakeSquare(clock=clk.monotonic) as fake:
        term = terminal(fake, clk, tmp_path)
        fake.plan = ["tap", "paid_cancel"]
        fake.fault("payment_get", *[Fault("status", 503)] * 40)
        r = term.charge(500, IDEM, reference="10")
        assert r.status == "unknown"  # not "declined": the money may have been taken
        fake.faults.clear()
        found = term.lookup(IDEM)  # after a restart, or between donors
        assert found.status == "approved" and found.provider_ref == _paid(fake, fake.only())
        term.close()


def test_a_canceled_checkout_with_only_declined_taps_is_still_declined(tmp_path: Path) -> None:
    clk = FixedClock()
    with FakeSquare(clock=clk.monotonic) as fake:
        term = terminal(fake, clk, tmp_path)
        fake.plan = ["tap", "decline", "cancel"]
        r = term.charge(500, IDEM, reference="11")
        assert r.status == "declined" and r.canceled and r.reason and "BUYER_CANCELED" in r.reason
        assert ("GET", f"/v2/payments/{fake.only().payment_ids[0]}") in fake.requests
        term.close()


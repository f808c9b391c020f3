"""A COMPLETED Terminal checkout that names more than one payment.

Square's TerminalCheckout lists in ``payment_ids`` every payment the checkout made, and a declined tap makes one:
sde1000/quicktill issue 254 reports a checkout whose first payment was FAILED and whose second was COMPLETED (the
card was declined, the next tap paid). The ledger's ``provider_ref`` is what a refund is sent to and what an auditor
matches Square's payments by, so it must be the payment that took the money: the adapter asks GetPayment about each
and keeps the one APPROVED or COMPLETED for the intent's amount and currency. When that cannot be told (none or
several qualify, or Square does not answer), the gift is recorded all the same (the money is taken) as
``checkout:<id>``, and a refund resolves it first, sending nothing until it can.

Real parts: the ledger, the donation service, the maintenance menu driven by touches, the Square adapter and SDK
against the fake Square API on loopback (whose ``decline`` step is such a declined tap). Time is a FixedClock.
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

IDEM = "9f0e1d2c3b4a59687766554433221100"


def _split(fake: FakeSquare, co) -> tuple[str, str]:  # noqa: ANN001
    """The checkout's (declined, paid) payment ids, from the fake's own record of each payment."""
    assert len(co.payment_ids) == 2, co.payment_ids
    status = {pid: fake.payments[pid]["status"] for pid in co.payment_ids}
    [failed] = [p for p, s in status.items() if s == "FAILED"]
    [paid] = [p for p, s in status.items() if s == "COMPLETED"]
    return failed, paid


def test_a_declined_tap_then_a_paid_one_records_and_refunds_the_paid_payment(tmp_path: Path) -> None:
    rig = build_rig(tmp_path / "kiosk")
    with square_kiosk(rig, tmp_path) as (fake, term, svc):
        fake.plan = ["tap", "decline", "complete"]  # declined first, paid on the second tap
        svc.reader_event(card(1))
        assert svc.state.name == "thanks", (svc.state.name, svc.state.error)
        co = fake.only()
        failed, paid = _split(fake, co)
        assert co.payment_ids == [failed, paid]  # the FAILED one is listed first, as in the field report
        [don] = entries_of(rig.ledger, "donation")
        assert don.data["provider_ref"] == paid  # the payment Square's file has the money under, for the auditor
        assert [r["payment_id"] for r in term.journal.rows()] == [paid]

        rig.services.refund = term.refund
        rig.services.refund_method = term.method
        rig.open()
        rig.touch("go", "refund")
        rig.touch("refund_pick", 0)
        assert rig.menu.page == "refund_confirm"
        rig.touch("refund_run")
        assert rig.menu.page == "refund_done" and rig.menu.model.notice_level == "green", rig.menu.model.notice
        [ref] = fake.refunds.values()
        assert ref["payment_id"] == paid  # the money goes back from the payment that took it
        assert ref["amount_money"] == {"amount": don.data["amount_yen"], "currency": "JPY"}
        [void] = entries_of(rig.ledger, "void")
        assert void.data["voids_seq"] == don.seq and ref["id"] in void.data["reason"]


def test_lookup_after_a_restart_records_the_paid_payment(tmp_path: Path) -> None:
    clk = FixedClock()
    with FakeSquare(clock=clk.monotonic) as fake:
        term = terminal(fake, clk, tmp_path)
        try:
            body = term.journal.put(IDEM, term.checkout_body(500, "17"))  # the kiosk wrote it, sent it, and died
            status, doc = fake.create_checkout({"idempotency_key": IDEM, "checkout": body})
            assert status == 200
            for step in ("tap", "decline", "complete"):  # the donor finished while the kiosk was down
                fake.buyer(doc["checkout"]["id"], step)
            failed, paid = _split(fake, fake.only())
            r = term.lookup(IDEM)
            assert r.status == "approved" and r.provider_ref == paid
            assert fake.count_by_idem() == {IDEM: 1}
        finally:
            term.close()


def test_a_wrong_answer_about_a_payment_is_not_believed(tmp_path: Path) -> None:
    clk = FixedClock()
    with FakeSquare(clock=clk.monotonic) as fake:
        term = terminal(fake, clk, tmp_path)
        try:
            fake.plan = ["tap", "decline", "complete"]
            # The first GetPayment (about the declined payment) is answered with the paid payment's record: were it
            # believed, two payments would seem to have taken the money.
            def paid_record() -> dict:
                return fake.get_payment(_split(fake, fake.only())[1])[1]

            fake.fault("payment_get", Fault("answer_after", doc=paid_record))
            r = term.charge(500, IDEM, reference="18")
            failed, paid = _split(fake, fake.only())
            assert r.status == "approved" and r.provider_ref == paid
        finally:
            term.close()


def _both_paid(fake: FakeSquare, failed: str, paid: str) -> None:
    fake.payments[failed]["status"] = "COMPLETED"


def _another_amount(fake: FakeSquare, failed: str, paid: str) -> None:
    fake.payments[paid]["amount"] = 600


def _no_answer(fake: FakeSquare, failed: str, paid: str) -> None:
    fake.fault("payment_get", *[Fault("status", 503)] * 40)


def _refused(fake: FakeSquare, failed: str, paid: str) -> None:
    fake.fault("payment_get", Fault("pass"), Fault("status", 404, code="NOT_FOUND"))


@pytest.mark.parametrize(("case", "refundable_later"), [
    (_both_paid, False),  # two payments took the money: which one is this gift's cannot be told
    (_another_amount, False),  # none took the gift's sum
    (_no_answer, True),  # Square did not answer GetPayment in time; it does later
    (_refused, True),  # Square refused one GetPayment; it answers later
], ids=["both-paid", "another-amount", "no-answer", "refused"])
def test_when_the_paying_payment_cannot_be_told_the_gift_is_recorded_under_its_checkout(
        tmp_path: Path, case, refundable_later: bool) -> None:  # noqa: ANN001
    clk = FixedClock()
    with FakeSquare(clock=clk.monotonic) as fake:
        term = terminal(fake, clk, tmp_path)
        try:
            body = term.journal.put(IDEM, term.checkout_body(500, "19"))
            status, doc = fake.create_checkout({"idempotency_key": IDEM, "checkout": body})
            cid = doc["checkout"]["id"]
            for step in ("tap", "decline", "complete"):
                fake.buyer(cid, step)
            failed, paid = _split(fake, fake.only())
            with fake.lock:
                case(fake, failed, paid)
            start = clk.monotonic()
            r = term.lookup(IDEM)
            # the money is taken: the gift is recorded, never under a payment that may not be its own
            assert r.status == "approved" and r.provider_ref == f"checkout:{cid}"
            assert clk.monotonic() - start <= 12  # seconds, never minutes
            assert [row["payment_id"] for row in term.journal.rows()] == [None]

            with fake.lock:
                fake.faults.clear()
            if refundable_later:  # Square answers now: the refund goes to the payment that took the money
                res = term.refund(r.provider_ref, 500, "rf-review9", "mistaken gift")
                [ref] = fake.refunds.values()
                assert ref["payment_id"] == paid and res.refund_id == ref["id"]
            else:  # still no telling: nothing is sent, and staff may try again later
                with pytest.raises(TerminalUnavailable):
                    term.refund(r.provider_ref, 500, "rf-review9", "mistaken gift")
                assert fake.refunds == {}
        finally:
            term.close()

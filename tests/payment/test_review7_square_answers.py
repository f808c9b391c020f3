"""Square's answers are checked against what was asked before the kiosk acts on them.

A well-formed answer about another checkout or refund (a proxy or load balancer that mixed two answers up, a
cached answer), or one whose amount or currency is not the intent's, must never become a ``donation`` with
another payment's id, a canceled checkout of somebody else, or a ``void`` for a refund of another payment.
Such an answer is treated like an unreadable one: asked again under the same key, and ``unknown`` (the intent
stays open) when no right answer comes in time. The real SDK and httpx against the fake Square on loopback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.payment import TerminalUnavailable
from tests.payment.fake_square import DEVICE, FakeSquare, Fault
from tests.payment.test_square_terminal import IDEM, SleepLog, terminal


@pytest.fixture
def clk() -> SleepLog:
    return SleepLog()  # shared by the fake's deadlines and the adapter's polls and backoff: no real waiting


@pytest.fixture
def fake(clk: SleepLog):
    with FakeSquare(clock=clk.monotonic) as f:
        yield f


@pytest.fixture
def term(fake: FakeSquare, clk: SleepLog, tmp_path: Path):
    t = terminal(fake, clk, tmp_path)
    yield t
    t.close()


OTHER = "ffffffffffffffffffffffffffffffff"


def other_checkout(sq: FakeSquare, *, amount: int = 700, then: str | None = None) -> str:
    """Another donor's checkout at the same Square account (another kiosk of the center), by the fake's rules."""
    status, doc = sq.create_checkout({"idempotency_key": OTHER, "checkout": {
        "amount_money": {"amount": amount, "currency": "JPY"}, "reference_id": "kiosk-other-9",
        "device_options": {"device_id": DEVICE}, "payment_type": "FELICA_TRANSPORTATION_GROUP",
        "deadline_duration": "PT300S"}})
    assert status == 200
    if then is not None:
        sq.buyer(doc["checkout"]["id"], then)
    return str(doc["checkout"]["id"])


def doc_of(sq: FakeSquare, checkout_id: str) -> dict:
    with sq.lock:
        return {"checkout": sq.checkouts[checkout_id].doc()}


def test_a_completed_answer_about_another_checkout_is_never_this_gift(fake, term):
    other = other_checkout(fake, then="complete")
    fake.plan = ["wait", "tap", "complete"]
    fake.fault("get", Fault("answer_after", doc=doc_of(fake, other)))  # the first poll answers about `other`
    r = term.charge(100, IDEM, reference="42")
    mine = fake.only(IDEM)
    assert r.status == "approved" and r.provider_ref == mine.payment_ids[0]
    assert r.provider_ref != fake.checkouts[other].payment_ids[0]
    assert [row["checkout_id"] for row in term.journal.rows()] == [mine.id]


def test_a_create_answered_about_another_pending_checkout_never_cancels_it(fake, term):
    # After a restart, lookup re-sends the create and cancels the PENDING checkout it gets back. An answer about
    # another donor's checkout must not make it cancel theirs, nor call this intent settled while its own
    # checkout still waits on the terminal for a card.
    other = other_checkout(fake)
    term.journal.put(IDEM, term.checkout_body(100, "42"))  # journaled; the kiosk died before sending
    fake.fault("create", Fault("answer_after", doc=doc_of(fake, other)))
    found = term.lookup(IDEM)
    assert fake.checkouts[other].status == "PENDING"  # the other donor's checkout is untouched
    mine = fake.only(IDEM)
    assert found.status == "declined" and mine.status == "CANCELED" and mine.cancel_reason == "SELLER_CANCELED"
    assert found.provider_ref == mine.id


def _mine_altered(sq: FakeSquare, **money: object) -> Fault:
    def doc() -> dict:
        d = doc_of(sq, sq.by_idem[IDEM])
        d["checkout"]["amount_money"] = dict(d["checkout"]["amount_money"], **money)
        return d
    return Fault("answer_after", doc=doc)


@pytest.mark.parametrize("money", [{"amount": 1000}, {"currency": "USD"}], ids=["amount", "currency"])
def test_an_answer_whose_money_is_not_the_intents_is_never_approved(fake, term, money):
    fake.plan = ["complete"]
    fake.fault("get", *[_mine_altered(fake, **money)] * 500)  # every answer says another sum was paid
    r = term.charge(100, IDEM, reference="42")
    assert r.status == "unknown"  # never a donation of ¥100 for a payment of another sum: the intent stays open
    with pytest.raises(TerminalUnavailable):
        term.lookup(IDEM)
    fake.faults.clear()  # the right answers come through again: the payment Square holds is ¥100
    found = term.lookup(IDEM)
    assert found.status == "approved" and found.provider_ref == fake.only(IDEM).payment_ids[0]


def test_a_refund_answered_about_another_payment_is_never_taken_for_this_one(fake, term):
    # A COMPLETED refund of another payment must not come back as this one's: the menu would write a void for a
    # donation whose money Square never returned.
    fake.plan = ["complete"]
    fake.refund_steps = ["COMPLETED"]
    other_pid = term.charge(700, OTHER, reference="9").provider_ref
    term.refund(other_pid, 700, "refund-other", "test")
    other_refund = fake.refunds["refund-other"]
    fake.refund_steps = ["PENDING"]  # this payment's refund: the bank has not answered yet
    pid = term.charge(100, IDEM, reference="42").provider_ref
    fake.fault("refund", Fault("answer_after", doc={"refund": other_refund}))
    got = term.refund(pid, 100, "refund-mine", "mistaken")
    assert (got.refund_id, got.status) == (fake.refunds["refund-mine"]["id"], "PENDING")
    assert len(fake.refunds) == 2  # asked again under the same key: still one refund of this payment


def test_a_refund_status_answered_about_another_refund_keeps_the_one_asked_for(fake, term):
    fake.plan = ["complete"]
    fake.refund_steps = ["COMPLETED"]
    other_pid = term.charge(700, OTHER, reference="9").provider_ref
    term.refund(other_pid, 700, "refund-other", "test")
    other_refund = fake.refunds["refund-other"]
    fake.refund_steps = ["PENDING"]
    pid = term.charge(100, IDEM, reference="42").provider_ref
    fake.fault("refund_get", *[Fault("answer_after", doc={"refund": other_refund})] * 500)
    got = term.refund(pid, 100, "refund-mine", "mistaken")
    assert (got.refund_id, got.status) == (fake.refunds["refund-mine"]["id"], "PENDING")

"""Random sessions of the donation service paying through Square: donors, network faults, outages, restarts.

``tests/donation/test_donation_properties.py`` draws sessions against the simulated terminal; this draws
them against the real Square adapter (the ``squareup`` SDK and httpx) talking to the fake Square API of
:mod:`tests.payment.fake_square` over loopback, with one FixedClock for the kiosk, the adapter's polls and
backoff, and Square's checkout deadlines. A session mixes:

- donors tapping and choosing amounts, and what each does at the terminal (pays, cancels, walks away, pays
  after a terminal error, or stays in the middle of paying past the kiosk's deadline; or has a card declined
  first: the next tap pays, or every tap is declined and the donor gives up or stays). A declined tap is a
  FAILED payment the checkout lists ahead of the one that paid (the fake's ``decline`` step);
- faults queued on Square's routes (5xx, 429 with Retry-After, a connection dropped before or after Square
  carried the request out), GetPayment's among them;
- the ledger refusing writes (before a charge, or right after one was approved);
- kiosk restarts on the same files, and donors finishing at the terminal while nobody follows the checkout;
- staff refunding the latest gift (the adapter's refund the menu sends, under a key of the gift's own).

The fake refuses to create a checkout whose intent is not durable in the ledger file (the lowest seam,
watching the real order), and each thank-you is checked against the file. At the end the link heals, every
donor still at the terminal finishes one way or the other, and the kiosk restarts healthy. Then Square's
record and the ledger must agree: one checkout per intent at most, every payment that took money exactly one
``donation`` of the same amount (the money Square took is the money the ledger holds: never charged twice, never
a charged gift lost), every other intent one ``donation_failed``, nothing open. A gift's ``provider_ref`` is the
payment that took its money, or ``checkout:<id>`` only when its checkout lists several payments and GetPayment
was failing; the journal never names a payment that took no money. Then every gift is refunded, and every refund
Square made (these and the ones during the session) went to the payment that took that gift's money, once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kiosk.donation import flow
from kiosk.ledger import verify_path
from kiosk.ledger.clock import FixedClock
from kiosk.payment import RefundRefused, TerminalUnavailable
from kiosk.payment.square import SquareTerminal
from tests.donation.conftest import (
    KIOSK_ID,
    Kiosk,
    ServiceSession,
    assert_intent_on_disk,
    card,
    entries_of,
    settings,
)
from tests.payment.fake_square import DEVICE, LOCATION, TOKEN, FakeSquare, Fault

PLANS = {
    "pays": ["tap", "complete"],
    "cancels": ["cancel"],
    "walks_away": [],  # PENDING until Square's deadline: CANCELED, TIMED_OUT
    "error_then_pays": ["tap", "error", "complete"],  # the API may no longer cancel it
    "slow": ["tap"] + ["wait"] * 400,  # still paying when the kiosk's own deadline passes
    "declined_then_pays": ["tap", "decline", "complete"],  # a FAILED payment, then the one that paid
    "declined_twice_then_pays": ["tap", "decline", "error", "decline", "complete"],
    "declined_gives_up": ["tap", "decline", "decline", "cancel"],  # every tap declined: CANCELED, two FAILED
    "declined_stays": ["tap", "decline"] + ["wait"] * 400,  # every tap so far declined, past the kiosk's deadline
}
FAULTS = {
    "500": Fault("status", 500),
    "429": Fault("status", 429, retry_after="2"),
    "drop": Fault("drop"),
    "drop_after": Fault("drop_after"),
    "pass": Fault("pass"),
}


ROUTES = ["create", "get", "cancel", "payment_get"]
TOOK_MONEY = ("APPROVED", "COMPLETED")


class WatchedSquare(FakeSquare):
    """Square that refuses to believe in a checkout whose intent is not on disk (the assertion fails the test)."""

    ledger_path: Path

    def create_checkout(self, body: dict) -> tuple[int, dict]:
        amount = (body.get("checkout") or {}).get("amount_money", {}).get("amount")
        assert_intent_on_disk(self.ledger_path, body.get("idempotency_key", ""), amount)
        return super().create_checkout(body)


action = st.one_of(
    st.tuples(st.just("tap"), st.integers(0, 2), st.sampled_from(sorted(PLANS))),
    st.tuples(st.just("tap"), st.integers(0, 2), st.just("pays")),
    st.tuples(st.just("amount"), st.sampled_from([100, 500, 1000])),
    st.tuples(st.just("dismiss")),
    st.tuples(st.just("wait"), st.sampled_from([1_000, 10_000, 40_000])),
    st.tuples(st.just("fault"), st.sampled_from(ROUTES),
              st.lists(st.sampled_from(sorted(FAULTS)), min_size=1, max_size=4)),
    st.tuples(st.just("outage"), st.integers(8, 40)),  # that many dropped requests in a row: the link is down
    st.tuples(st.just("ledger"), st.sampled_from(["up", "down", "dies_after_charge"])),
    st.tuples(st.just("buyer"), st.sampled_from(["complete", "cancel", "tap", "decline"])),
    st.tuples(st.just("restart")),
    st.tuples(st.just("refund")),
)


class Session(ServiceSession):
    def __init__(self, root: Path, fake: WatchedSquare, clock: FixedClock):
        self.fake = fake
        k = Kiosk(root, clock=clock)
        fake.ledger_path = k.ledger_path
        self.payment_get_faulted = False  # GetPayment failed at some point: a gift may be under its checkout
        self.refunded: dict[str, str] = {}  # refund idempotency key -> the provider_ref of the gift refunded
        super().__init__(k, settings(daily_limit_per_card_yen=100_000, method="square"))

    def make_terminal(self) -> SquareTerminal:
        return SquareTerminal(base_url=self.fake.url, token=TOKEN, location_id=LOCATION, device_id=DEVICE,
                              journal=self.k.dir / "square-journal.db", deadline_s=60, answer_grace_s=20,
                              poll_interval_ms=1000, request_timeout_s=5.0, reference_prefix=KIOSK_ID,
                              clock=self.k.clock)

    def unfinished(self) -> list:
        with self.fake.lock:
            return [co for co in self.fake.checkouts.values() if co.status in ("PENDING", "IN_PROGRESS")]

    def act(self, a: tuple) -> None:
        if self.screen_act(a):
            return
        if a[0] == "tap":
            if self.svc.state.name in ("thanks", "error"):
                self.svc.handle(flow.Touch(now_ms=self.svc.now_ms()))  # the next donor touches the screen back first
            self.fake.plan = list(PLANS[a[2]])
            self.svc.reader_event(card(a[1], balance=None))
        elif a[0] == "fault":
            self.payment_get_faulted |= a[1] == "payment_get"
            self.fake.fault(a[1], *(FAULTS[k] for k in a[2]))
        elif a[0] == "outage":
            self.payment_get_faulted = True
            for route in ROUTES:
                self.fake.fault(route, *[Fault("drop")] * a[1])
        elif a[0] == "ledger":
            self.outage.set(a[1] == "down")
            self.die_after_charge = a[1] == "dies_after_charge"
        elif a[0] == "buyer":  # donors at the terminal while the kiosk is not following their checkout
            for co in self.unfinished():
                self.fake.buyer(co.id, a[1])
        elif a[0] == "restart":
            self.boot()
        elif a[0] == "refund":  # staff refund the latest gift (the link may be down: then nothing is sent)
            gifts = entries_of(self.led, "donation")
            if gifts:
                self.refund(gifts[-1])

    def refund(self, gift) -> None:  # noqa: ANN001
        key = f"rf-{gift.seq}"  # the menu's key is the gift's own: a second try never refunds twice
        self.refunded[key] = gift.data["provider_ref"]
        try:
            self.term.refund(gift.data["provider_ref"], gift.data["amount_yen"], key, "mistaken gift")
        except (TerminalUnavailable, RefundRefused) as exc:
            event(f"refund refused or unanswered: {type(exc).__name__}")

    def finish(self, last: str) -> None:
        with self.fake.lock:
            self.fake.faults.clear()  # the link heals
            # Every donor is done with their script: a checkout still PENDING has nobody at the terminal. Its
            # script could otherwise tap during the healthy restart below ("slow": tap, then hundreds of
            # polls), and the restart would rightly leave its intent open (still IN_PROGRESS at the deadline).
            for co in self.fake.checkouts.values():
                co.plan.clear()
            self.fake.plan = []
        for co in self.unfinished():
            if co.status == "IN_PROGRESS":  # a donor mid-payment finishes, one way or the other
                self.fake.buyer(co.id, last)
        self.die_after_charge = False
        self.boot()  # healthy restart: everything open must be settled now
        led = self.led
        assert led.unresolved_intents() == []
        intents = {e.data["idem"]: e for e in entries_of(led, "donation_intent")}
        donations = entries_of(led, "donation")
        failures = entries_of(led, "donation_failed")
        with self.fake.lock:
            checkouts = list(self.fake.checkouts.values())
            payments = dict(self.fake.payments)
        assert all(n == 1 for n in self.fake.count_by_idem().values()), "two checkouts for one intent"
        assert all(co.idem in intents for co in checkouts), "a checkout without an intent"
        assert all(co.status in ("COMPLETED", "CANCELED") for co in checkouts), "a checkout left open at Square"
        paid = {co.idem: co for co in checkouts if co.status == "COMPLETED"}
        settled = [d.data["intent_seq"] for d in donations] + [f.data["intent_seq"] for f in failures]
        assert len(settled) == len(set(settled)) == len(intents), "an intent settled twice, or not at all"
        assert {d.data["idem"] for d in donations} == set(paid), "Square's payments and the ledger's donations differ"
        took = {pid for pid, p in payments.items() if p["status"] in TOOK_MONEY}
        taken = sum(p["amount"] for pid, p in payments.items() if pid in took)
        assert taken == sum(d.data["amount_yen"] for d in donations), "money taken and gifts recorded differ"
        paying: dict[str, str] = {}  # idem -> the payment that took the gift's money
        for d in donations:
            co = paid[d.data["idem"]]
            [pid] = [p for p in co.payment_ids if p in took]
            paying[d.data["idem"]] = pid
            ref = d.data["provider_ref"]
            if ref != pid:  # only when Square could not be asked which of several payments took the money
                assert ref == f"checkout:{co.id}", (ref, co.payment_ids)
                assert len(co.payment_ids) > 1 and self.payment_get_faulted, (ref, co.payment_ids)
            assert d.data["amount_yen"] == payments[pid]["amount"] == intents[d.data["idem"]].data["amount_yen"]
        for row in self.term.journal.rows():  # the payment it names took its own checkout's money
            assert row["payment_id"] is None or (row["payment_id"] in took and payments[row["payment_id"]][
                "checkout_id"] == row["checkout_id"]), (
                f"the journal names payment {row['payment_id']} ({payments[row['payment_id']]['status']}) for "
                f"checkout {row['checkout_id']} ({row['status']})")
        assert self.thanks <= len(donations)
        event(f"declined payments={min(sum(p['status'] == 'FAILED' for p in payments.values()), 2)}")
        event(f"gift under its checkout={any(d.data['provider_ref'].startswith('checkout:') for d in donations)}")

        # Staff refund every gift (the link is healthy): each refund Square made, now or during the session, is of
        # the payment that took the money of the gift it was for, once, for that gift's amount.
        for d in donations:
            self.refund(d)
        by_ref = {f"rf-{d.seq}": d for d in donations}
        with self.fake.lock:
            refunds = dict(self.fake.refunds)
        assert set(refunds) == set(by_ref), "a gift not refunded, or a refund of something else"
        for key, r in refunds.items():
            d = by_ref[key]
            assert r["payment_id"] == paying[d.data["idem"]], (key, r["payment_id"], self.refunded[key])
            assert r["amount_money"] == {"amount": d.data["amount_yen"], "currency": "JPY"}
        assert len({r["payment_id"] for r in refunds.values()}) == len(refunds), "a payment refunded twice"
        event(f"donations={min(len(donations), 3)}")
        event(f"failures={min(len(failures), 3)}")
        event(f"resolved_at_start={bool(self.resolved)}")
        self.k.close()
        assert verify_path(self.k.ledger_path).ok


@pytest.mark.slow
@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, min_size=5, max_size=30), st.sampled_from(["complete", "cancel"]))
def test_random_square_sessions_never_charge_twice_and_never_lose_a_charged_gift(actions, last):
    clock = FixedClock()
    with tempfile.TemporaryDirectory() as d, WatchedSquare(clock=clock.monotonic) as fake:
        s = Session(Path(d), fake, clock)
        try:
            for a in actions:
                s.act(a)
            s.finish(last)
        finally:
            s.k.close()

"""Random sessions of the whole service on real files: taps, terminal moods, ledger outages, restarts.

The terminal is a :class:`SimulatedTerminal` whose ``charge`` first checks, on
a separate read-only connection to the ledger *file*, that the intent for this
idempotency key is already durable: the lowest seam, watching the real order.
Each thank-you is checked the same way against the file. At the end the kiosk
restarts with everything healthy, and the two durable records must agree:
every approved charge is exactly one donation, every donation exactly one
approved charge, and each card's balance went down by exactly what it gave.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kiosk.ledger import verify_path
from kiosk.payment import ChargeResult, SimulatedTerminal
from tests.donation.conftest import (
    Kiosk,
    ServiceSession,
    assert_intent_on_disk,
    card,
    entries_of,
    settings,
    token,
)

START_BALANCE = 3000


class WatchedTerminal(SimulatedTerminal):
    """Refuses to believe in a charge whose intent is not on disk yet (the assertion fails the test)."""

    ledger_path: Path

    def charge(self, amount_yen: int, idempotency_key: str, *, reference: str | None = None) -> ChargeResult:
        assert_intent_on_disk(self.ledger_path, idempotency_key, amount_yen)
        return super().charge(amount_yen, idempotency_key, reference=reference)


action = st.one_of(
    st.tuples(st.just("tap"), st.integers(0, 2), st.sampled_from([None, START_BALANCE])),
    st.tuples(st.just("tap"), st.integers(0, 2), st.sampled_from([None, START_BALANCE])),
    st.tuples(st.just("amount"), st.sampled_from([100, 500, 1000])),
    st.tuples(st.just("dismiss")),
    st.tuples(st.just("wait"), st.sampled_from([1_000, 10_000, 40_000])),
    st.tuples(st.just("mode"), st.sampled_from(["approve", "approve", "decline", "timeout_applied",
                                                "timeout_lost", "offline"])),
    st.tuples(st.just("ledger"), st.sampled_from(["up", "down", "dies_after_charge"])),
    st.tuples(st.just("restart")),
)


class Session(ServiceSession):
    def __init__(self, root: Path):
        super().__init__(Kiosk(root), settings(daily_limit_per_card_yen=100_000))

    def make_terminal(self) -> WatchedTerminal:
        term = WatchedTerminal(self.k.sim_path, default_balance_yen=START_BALANCE)
        term.ledger_path = self.k.ledger_path
        return term

    def act(self, a: tuple) -> None:
        if self.screen_act(a):
            return
        if a[0] == "tap":
            self.svc.reader_event(card(a[1], balance=a[2]))
        elif a[0] == "mode":
            self.term.mode = a[1]
        elif a[0] == "ledger":
            self.outage.set(a[1] == "down")
            self.die_after_charge = a[1] == "dies_after_charge"
        elif a[0] == "restart":
            self.boot()

    def finish(self) -> None:
        self.term.mode = "approve"
        self.boot()  # healthy restart: everything open must be settled now
        led, term = self.led, self.term
        assert led.unresolved_intents() == []
        intents = {e.data["idem"]: e for e in entries_of(led, "donation_intent")}
        donations = entries_of(led, "donation")
        charges = term.charges()
        approved = {c["idem"]: c for c in charges if c["status"] == "approved"}
        assert all(c["idem"] in intents for c in charges), "a charge without an intent"
        assert len({d.data["idem"] for d in donations}) == len(donations), "one intent settled twice"
        assert {d.data["idem"] for d in donations} == set(approved), "charges and donations disagree"
        for d in donations:
            assert d.data["provider_ref"] == approved[d.data["idem"]]["provider_ref"]
            assert d.data["amount_yen"] == approved[d.data["idem"]]["amount_yen"]
        assert self.thanks <= len(donations)
        event(f"donations={min(len(donations), 3)}")
        event(f"resolved_at_start={bool(self.resolved)}")
        for n in range(3):
            spent = sum(c["amount_yen"] for c in approved.values() if c["token"] == token(n).hex)
            bal = term.balance(token(n).hex)
            assert (bal is None and spent == 0) or bal == START_BALANCE - spent, "a card debited twice"
        self.k.close()
        assert verify_path(self.k.ledger_path).ok


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, min_size=5, max_size=30))
def test_random_sessions_never_charge_twice_and_never_lose_a_charged_gift(actions):
    with tempfile.TemporaryDirectory() as d:
        s = Session(Path(d))
        try:
            for a in actions:
                s.act(a)
            s.finish()
        finally:
            s.k.close()

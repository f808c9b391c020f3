"""Issue #15: the Express cancel window and the project picker, as properties of the pure flow.

Random sequences of citizens (taps, touches, やめる, the picker), the clock and the service's answers, with
``express_cancel_ms`` set. Whatever happens:

- an Express gift's intent is committed at once (durable first), its charge is sent only once the window
  has passed, and never after やめる or a lifted card: a withdrawn gift ends in a ``donation_failed`` and
  no charge;
- やめる is offered only while nothing has been charged;
- a gift after choosing an amount is never held;
- the picker only ever opens the amounts of a configured project, and never starts a charge by itself.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kiosk.donation import flow
from kiosk.donation.flow import (
    Cancel,
    Charge,
    ChargeAnswered,
    CommitIntent,
    DonationRecorded,
    FailureRecorded,
    IntentCommitted,
    OpenPicker,
    PickProject,
    Receipt,
    RecordDonation,
    RecordFailure,
    Tap,
    Tick,
    Touch,
)
from tests.donation.conftest import PROJECTS, settings, token

WINDOW = 1_500
S = settings(express_cancel_ms=WINDOW, choose_amount_idle_ms=3_000, tap_card_idle_ms=3_000, thanks_ms=2_000,
             error_ms=2_000)

_ACTIONS = st.one_of(
    st.tuples(st.just("tap"), st.integers(0, 2)),
    st.tuples(st.just("answer"), st.integers(0, 9)),
    st.tuples(st.just("wait"), st.sampled_from([0, 100, 700, 1_499, 1_500, 2_000, 4_000])),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("lift")),
    st.tuples(st.just("touch")),
    st.tuples(st.just("picker")),
    st.tuples(st.just("pick"), st.sampled_from([*PROJECTS, "nope"])),
    st.tuples(st.just("choose"), st.sampled_from([100, 500])),
)


class World:
    def __init__(self) -> None:
        self.now = 0
        self.state = flow.initial(S, 0)
        self.outstanding: list[flow.Effect] = []
        self.intent_at: dict[int, int] = {}  # attempt -> when its intent was asked for
        self.express: dict[int, bool] = {}
        self.committed: set[int] = set()
        self.withdrawn: set[int] = set()
        self.charged: set[int] = set()
        self.seq = 10

    def feed(self, ev: flow.Event) -> None:
        before = self.state
        self.state, effects = flow.step(self.state, ev, S)
        for eff in effects:
            self.check(eff, before, ev)
            self.outstanding.append(eff)
        screen = flow.screen_for(self.state, S)
        if isinstance(screen, flow.ChargingScreen) and screen.can_withdraw:
            d = self.state.donation
            assert d is not None and d.attempt not in self.charged  # やめる only while nothing was charged
        if self.state.name == "choose_amount":
            assert self.state.project in S.projects

    def check(self, eff: flow.Effect, before: flow.FlowState, ev: flow.Event) -> None:
        if isinstance(eff, CommitIntent):
            self.intent_at[eff.attempt] = self.now
            self.express[eff.attempt] = before.name in ("attract", "thanks", "choose_amount", "choose_project",
                                                        "error") and before.name != "tap_card"
            assert not isinstance(ev, (PickProject, OpenPicker, Touch))  # the picker never gives by itself
        if isinstance(eff, Charge):
            assert eff.attempt in self.committed  # durable first
            assert eff.attempt not in self.withdrawn  # never after やめる
            if self.express.get(eff.attempt) and before.donation and before.donation.hold_until_ms is not None:
                assert self.now >= self.intent_at[eff.attempt] + WINDOW  # only once the window passed
            self.charged.add(eff.attempt)
        if isinstance(eff, RecordFailure) and eff.reason == flow.WITHDRAWN:
            assert eff.attempt not in self.charged
            self.withdrawn.add(eff.attempt)

    def answer(self, i: int) -> None:
        if not self.outstanding:
            return
        eff = self.outstanding.pop(i % len(self.outstanding))
        if isinstance(eff, CommitIntent):
            self.seq += 1
            self.committed.add(eff.attempt)
            self.feed(IntentCommitted(now_ms=self.now, attempt=eff.attempt, intent_seq=self.seq, idem=f"k{self.seq}"))
        elif isinstance(eff, Charge):
            self.feed(ChargeAnswered(now_ms=self.now, attempt=eff.attempt, outcome="approved", provider_ref="r"))
        elif isinstance(eff, RecordDonation):
            self.seq += 1
            self.feed(DonationRecorded(now_ms=self.now, attempt=eff.attempt, new_total_yen=100, points_balance=1,
                                       receipt=Receipt(self.seq, b"h" * 32, b"s" * 64, "code")))
        elif isinstance(eff, RecordFailure):
            self.feed(FailureRecorded(now_ms=self.now, attempt=eff.attempt))

    def act(self, a: tuple) -> None:
        kind = a[0]
        if kind == "tap":
            self.feed(Tap(now_ms=self.now, donor=token(a[1]), family="suica", balance_yen=5000, given_today_yen=0))
        elif kind == "answer":
            self.answer(a[1])
        elif kind == "wait":
            self.now += a[1]
            self.feed(Tick(now_ms=self.now))
        elif kind == "cancel":
            self.feed(Cancel(now_ms=self.now))
        elif kind == "lift":
            self.feed(flow.CardLifted(now_ms=self.now))
        elif kind == "touch":
            self.feed(Touch(now_ms=self.now))
        elif kind == "picker":
            self.feed(OpenPicker(now_ms=self.now))
        elif kind == "pick":
            self.feed(PickProject(now_ms=self.now, project=a[1]))
        elif kind == "choose":
            self.feed(flow.ChooseAmount(now_ms=self.now, amount_yen=a[1]))


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ACTIONS, max_size=60))
def test_express_window_and_picker_properties(actions: list[tuple]) -> None:
    w = World()
    for a in actions:
        w.act(a)


def run_express(cancel_at: int | None) -> tuple[World, list[flow.Effect]]:
    w = World()
    w.act(("tap", 0))
    w.answer(0)  # the intent is committed at once
    assert w.state.name == "charging" and w.state.donation.phase == "hold"
    assert flow.screen_for(w.state, S).can_withdraw
    if cancel_at is not None:
        w.act(("wait", cancel_at))
        w.act(("cancel",))
    w.act(("wait", WINDOW))
    return w, list(w.outstanding)


def test_an_express_tap_is_charged_only_after_the_window():
    w, pending = run_express(None)
    assert any(isinstance(e, Charge) for e in pending)
    w.answer(0)
    w.answer(0)
    assert w.state.name == "thanks"


def test_yameru_in_the_window_charges_nothing_and_says_so():
    w, pending = run_express(700)
    assert not any(isinstance(e, Charge) for e in pending)
    (fail,) = [e for e in pending if isinstance(e, RecordFailure)]
    assert fail.reason == flow.WITHDRAWN
    w.answer(0)
    assert (w.state.name, w.state.error.hint) == ("error", "canceled")


def test_yameru_before_the_intent_is_even_committed_closes_it_without_a_charge():
    w = World()
    w.act(("tap", 0))
    w.act(("cancel",))
    w.answer(0)  # the intent commit answers now
    assert [type(e) for e in w.outstanding] == [RecordFailure] and not w.charged


def test_a_card_lifted_in_the_window_gives_nothing():
    w = World()
    w.act(("tap", 0))
    w.answer(0)
    w.act(("lift",))
    (fail,) = [e for e in w.outstanding if isinstance(e, RecordFailure)]
    assert fail.reason == flow.WITHDRAWN and not w.charged


def test_a_tap_on_the_canceled_screen_is_held_for_the_window_again():
    """取り消しました after a brush: the bag's next brush is an Express gift again (window, やめる), never charged
    at once (docs/donation.md)."""
    w = World()
    w.act(("tap", 0))
    w.answer(0)
    w.act(("lift",))
    w.answer(0)
    assert (w.state.name, w.state.error.hint, w.state.error.express) == ("error", "canceled", True)
    w.act(("tap", 0))
    w.answer(0)  # the new intent is committed
    assert w.state.donation.phase == "hold" and flow.screen_for(w.state, S).can_withdraw
    assert not any(isinstance(e, Charge) for e in w.outstanding)
    w.act(("wait", WINDOW))  # held through the window this time: charged then
    assert any(isinstance(e, Charge) for e in w.outstanding)


def test_a_retry_of_a_gift_after_choosing_an_amount_is_not_held():
    w = World()
    w.act(("touch",))
    w.act(("choose", 500))
    w.feed(Tap(now_ms=w.now, donor=token(1), family="suica", balance_yen=50, given_today_yen=0))
    assert (w.state.name, w.state.error.kind, w.state.error.express) == ("error", "balance_low", False)
    w.act(("tap", 2))  # another card, on the screen that says so
    w.answer(0)
    assert any(isinstance(e, Charge) and e.amount_yen == 500 for e in w.outstanding)  # the amount was chosen


def test_a_gift_after_choosing_an_amount_is_not_held():
    w = World()
    w.act(("touch",))
    w.act(("choose", 500))
    w.act(("tap", 1))
    w.answer(0)
    assert any(isinstance(e, Charge) for e in w.outstanding)  # charged at once: the amount was chosen
    assert not flow.screen_for(w.state, S).can_withdraw


def test_the_picker_opens_the_amounts_of_the_project_chosen():
    w = World()
    w.act(("picker",))
    assert w.state.name == "choose_project"
    screen = flow.screen_for(w.state, S)
    assert screen.projects == S.projects
    w.act(("pick", "nope"))
    assert w.state.name == "choose_project"
    w.act(("pick", PROJECTS[-1]))
    assert (w.state.name, w.state.project) == ("choose_amount", PROJECTS[-1])
    w.act(("picker",))
    w.act(("cancel",))
    assert w.state.name == "attract"

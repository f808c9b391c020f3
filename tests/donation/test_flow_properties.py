"""Random event sequences against the pure flow, checked by an independent model of the rules.

The driver plays the outside world: citizens, the reader, the clock, and the
service answering (or failing to answer, or answering late and for the wrong
attempt) each effect. Whatever happens:

- never two charges for one donation, and never a second donation while one is in flight;
- every charge comes after its intent was reported committed, with that intent's idem and amount;
- a donation is recorded only after an approved answer, and thanks only after it was recorded;
- every committed intent respects the card checks and limits of the tap that caused it;
- every state has a screen, and no screen outlives its idle timeout;
- a my-page code is made only for the card tapped on the my-page screen, never starts a donation, and is
  never on screen longer than it is valid.
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kiosk.donation import flow
from kiosk.donation.flow import (
    Charge,
    ChargeAnswered,
    CommitIntent,
    DonationRecorded,
    FailureRecorded,
    IntentCommitted,
    LedgerDown,
    Receipt,
    RecordDonation,
    RecordFailure,
    Tap,
)
from tests.donation.conftest import PROJECTS, settings, token

S = settings(choose_amount_idle_ms=3_000, tap_card_idle_ms=3_000, thanks_ms=2_000, error_ms=2_000, my_page_ms=2_500)

_ACTIONS = {
    "tap": st.tuples(st.just("tap"), st.integers(0, 3), st.sampled_from(["suica", "suica", "pasmo", "unknown"]),
                     st.sampled_from([None, None, 50, 500, 5000]), st.sampled_from([0, 0, 0, 900, 1500, None])),
    "answer": st.tuples(st.just("answer"), st.integers(0, 9)),
    "wait": st.tuples(st.just("wait"), st.sampled_from([0, 50, 500, 1_999, 2_000, 3_000, 4_000])),
    "touch": st.tuples(st.just("touch"), st.sampled_from([None, *PROJECTS, "nope"])),
    "choose": st.tuples(st.just("choose"), st.sampled_from([100, 500, 1000, 200, 5000])),
    "cancel": st.tuples(st.just("cancel")),
    "lang": st.tuples(st.just("lang")),
    "shown": st.tuples(st.just("shown"), st.sampled_from(PROJECTS)),
    "unreadable": st.tuples(st.just("unreadable"), st.booleans()),
    "offline": st.tuples(st.just("offline")),
    "online": st.tuples(st.just("online")),
    "stale": st.tuples(st.just("stale"), st.integers(0, 4), st.integers(-2, 2)),
    "mypage": st.tuples(st.just("mypage")),
    "stale_mypage": st.tuples(st.just("stale_mypage"), st.booleans()),
}
# Taps and answers are drawn most often, so most sequences get far into donations.
_WEIGHTED = (["tap"] * 4 + ["answer"] * 8 + ["wait"] * 2 + ["mypage"] * 2
             + [k for k in _ACTIONS if k not in ("tap", "answer", "wait", "mypage")])
actions = st.sampled_from(_WEIGHTED).flatmap(_ACTIONS.__getitem__)


class World:
    def __init__(self) -> None:
        self.now = 0
        self.state = flow.initial(S, 0)
        self.outstanding: list[flow.Effect] = []
        self.intents: dict[int, CommitIntent] = {}
        self.tap_of: dict[int, Tap] = {}
        self.committed: dict[int, str] = {}  # attempt -> idem we reported committed
        self.charges: dict[int, Charge] = {}
        self.approved: set[int] = set()
        self.recorded: dict[int, Receipt] = {}
        self.records: dict[int, flow.Effect] = {}
        self.seq = 10
        self.fed: list[flow.Event] = []
        self.my_page_issued_at: int | None = None

    # --- feeding -------------------------------------------------------------------
    def feed(self, ev: flow.Event) -> None:
        before = self.state
        self.state, effects = flow.step(before, ev, S)
        self.fed.append(ev)
        self.check_step(before, ev, effects)
        self.outstanding += effects

    def act(self, a: tuple) -> None:  # noqa: C901 - one branch per kind of action
        kind, now = a[0], self.now
        if kind == "wait":
            self.now += a[1]
            self.feed(flow.Tick(now_ms=self.now))
        elif kind == "touch":
            self.feed(flow.Touch(now_ms=now, project=a[1]))
        elif kind == "choose":
            self.feed(flow.ChooseAmount(now_ms=now, amount_yen=a[1]))
        elif kind == "cancel":
            self.feed(flow.Cancel(now_ms=now))
        elif kind == "lang":
            self.feed(flow.ToggleLanguage(now_ms=now))
        elif kind == "shown":
            self.feed(flow.ProjectShown(now_ms=now, project=a[1]))
        elif kind == "tap":
            _, n, family, balance, given = a
            self.feed(Tap(now_ms=now, donor=token(n), family=family, balance_yen=balance, given_today_yen=given))
        elif kind == "unreadable":
            self.feed(flow.CardUnreadable(now_ms=now, not_transit=a[1]))
        elif kind == "offline":
            self.feed(flow.ReaderOffline(now_ms=now))
        elif kind == "online":
            self.feed(flow.ReaderOnline(now_ms=now))
        elif kind == "answer" and self.outstanding:
            self.answer(self.outstanding.pop(0), a[1])
        elif kind == "stale":
            self.stale(a[1], a[2])
        elif kind == "mypage":
            self.feed(flow.AskMyPage(now_ms=now))
        elif kind == "stale_mypage":  # an answer to a my-page effect nobody is waiting for any more
            self.feed(flow.MyPageIssued(now_ms=now, request="stale") if a[1] else flow.MyPageFailed(now_ms=now))

    def answer(self, eff: flow.Effect, choice: int) -> None:
        """The service's answer to ``eff``: success most of the time, each failure some of the time."""
        now = self.now
        if isinstance(eff, CommitIntent):
            if choice < 2:
                self.feed(LedgerDown(now_ms=now, attempt=eff.attempt, stage="intent"))
            else:
                self.seq += 1
                idem = f"idem-{eff.attempt}"
                self.committed[eff.attempt] = idem
                self.feed(IntentCommitted(now_ms=now, attempt=eff.attempt, intent_seq=self.seq, idem=idem))
        elif isinstance(eff, Charge):
            outcome = ["approved"] * 5 + ["declined", "declined", "not_charged", "unknown", "unknown"]
            o = outcome[choice]
            if o == "approved":
                self.approved.add(eff.attempt)
            self.feed(ChargeAnswered(now_ms=now, attempt=eff.attempt, outcome=o,  # type: ignore[arg-type]
                                     provider_ref=f"ref-{eff.attempt}" if o != "not_charged" else None, reason="r"))
        elif isinstance(eff, RecordDonation):
            if choice < 2:
                self.feed(LedgerDown(now_ms=now, attempt=eff.attempt, stage="record"))
            else:
                self.seq += 1
                rc = Receipt(self.seq, b"h", b"s", f"code-{eff.attempt}")
                self.recorded[eff.attempt] = rc
                self.feed(DonationRecorded(now_ms=now, attempt=eff.attempt, receipt=rc, new_total_yen=1,
                                           points_balance=1))
        elif isinstance(eff, RecordFailure):
            self.feed(LedgerDown(now_ms=now, attempt=eff.attempt, stage="record") if choice < 2
                      else FailureRecorded(now_ms=now, attempt=eff.attempt))
        elif isinstance(eff, flow.IssueMyPage):
            self.feed(flow.MyPageFailed(now_ms=now) if choice < 2
                      else flow.MyPageIssued(now_ms=now, request=f"req-{eff.donor.hex[:6]}", donor=eff.donor))

    def stale(self, kind: int, delta: int) -> None:
        """An answer nobody asked for: a wrong attempt, a duplicate, or one out of order."""
        attempt, now = self.state.attempts + delta, self.now
        ev: flow.Event = [
            IntentCommitted(now_ms=now, attempt=attempt, intent_seq=999, idem="stale"),
            ChargeAnswered(now_ms=now, attempt=attempt, outcome="approved", provider_ref="stale"),
            DonationRecorded(now_ms=now, attempt=attempt, receipt=Receipt(999, b"", b"", "stale"), new_total_yen=0,
                             points_balance=0),
            FailureRecorded(now_ms=now, attempt=attempt),
            LedgerDown(now_ms=now, attempt=attempt, stage="record"),
        ][kind]
        if isinstance(ev, IntentCommitted):
            if attempt not in self.committed:
                return  # never claim an intent committed that the flow did not ask for; a duplicate is fair
            ev = IntentCommitted(now_ms=now, attempt=attempt, intent_seq=999, idem=self.committed[attempt])
        if isinstance(ev, ChargeAnswered) and attempt not in self.charges:
            return  # a terminal cannot approve a charge nobody asked for
        if isinstance(ev, ChargeAnswered):
            self.approved.add(attempt)
        if isinstance(ev, DonationRecorded):
            if attempt not in self.records or not isinstance(self.records[attempt], RecordDonation):
                return  # the ledger cannot record what was not asked
            self.recorded.setdefault(attempt, ev.receipt)
        self.feed(ev)

    # --- the rules -----------------------------------------------------------------
    def check_step(self, before: flow.FlowState, ev: flow.Event, effects: tuple[flow.Effect, ...]) -> None:
        st_ = self.state
        assert st_.name in flow.STATES
        scr = flow.screen_for(st_, S)
        assert scr.screen == st_.name
        due = flow.deadline_ms(st_, S)
        assert due is None or ev.now_ms < due, "a screen outlived its idle timeout"
        assert len(effects) <= 1
        if st_.name == "my_page" and st_.my_page is not None:
            if before.name != "my_page" or before.my_page != st_.my_page or isinstance(ev, flow.MyPageIssued):
                assert isinstance(ev, flow.MyPageIssued), "a my-page code shown that the service did not make"
                self.my_page_issued_at = ev.now_ms
            assert self.my_page_issued_at is not None and ev.now_ms < self.my_page_issued_at + S.my_page_ms, \
                "a my-page code on screen past its validity"
        if before.name == "my_page" and before.my_page is not None and isinstance(ev, Tap):
            code, thanked = before.my_page.donor, before.donation.donor if before.donation else None
            if ev.donor not in (code, thanked):  # the lobby's next citizen: the code goes in this very step
                assert st_.my_page is None, "a my-page code left on screen for the next card"
                assert not any(isinstance(e, flow.IssueMyPage) for e in effects), "a page for a card that did not ask"
        if st_.name == "my_page" and before.name != "my_page":
            assert before.name == "thanks" and isinstance(ev, flow.AskMyPage), "my page only from a thank-you"
        for eff in effects:
            if isinstance(eff, flow.IssueMyPage):
                assert isinstance(ev, Tap) and before.name == "my_page", "a my-page code without a tap for it"
                assert eff.donor == ev.donor, "a my-page code for another card than the one tapped"
                continue
            if isinstance(eff, CommitIntent):
                assert isinstance(ev, Tap), "only a tap starts a donation"
                assert before.name != "charging", "a second donation while one is in flight"
                assert eff.attempt not in self.intents
                assert ev.family != "unknown"
                assert eff.amount_yen in S.presets_yen and eff.amount_yen <= S.max_per_transaction_yen
                assert ev.given_today_yen is not None, "a tap whose daily total is unknown got through"
                assert ev.given_today_yen + eff.amount_yen <= S.daily_limit_per_card_yen
                assert ev.balance_yen is None or ev.balance_yen >= eff.amount_yen
                assert eff.donor == ev.donor
                if before.name == "thanks":
                    assert before.donation is not None and ev.donor.hex != before.donation.donor.hex, \
                        "the same card re-tapped on its thank-you started a new charge"
                self.intents[eff.attempt] = eff
                self.tap_of[eff.attempt] = ev
            elif isinstance(eff, Charge):
                assert eff.attempt not in self.charges, "two charges for one donation"
                assert self.committed.get(eff.attempt) == eff.idem, "charge without a committed intent"
                assert isinstance(ev, IntentCommitted) and ev.attempt == eff.attempt
                assert eff.amount_yen == self.intents[eff.attempt].amount_yen
                assert eff.idem not in {c.idem for c in self.charges.values()}
                self.charges[eff.attempt] = eff
            else:
                assert eff.attempt in self.charges, "a result recorded for a charge never made"
                assert eff.attempt not in self.records, "one intent settled twice"
                assert isinstance(ev, ChargeAnswered) and ev.attempt == eff.attempt
                if isinstance(eff, RecordDonation):
                    assert ev.outcome == "approved" and eff.attempt in self.approved
                    assert eff.points == S.points_for(self.intents[eff.attempt].amount_yen)
                else:
                    assert ev.outcome in ("declined", "not_charged")
                self.records[eff.attempt] = eff
        if st_.name == "thanks" and before.name != "thanks":
            assert isinstance(ev, DonationRecorded), "thanks without a recorded donation"
            a = ev.attempt
            assert isinstance(self.records.get(a), RecordDonation) and self.recorded.get(a) == ev.receipt
            assert st_.thanks is not None and st_.thanks.receipt == ev.receipt
            assert st_.thanks.amount_yen == self.intents[a].amount_yen
        if before.name == "charging" and st_.name != "charging" and before.donation is not None:
            assert st_.name in ("thanks", "error"), "left a donation in flight without an outcome"


@hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=15, max_size=100))
def test_random_event_sequences_keep_every_invariant(seq):
    w = World()
    for a in seq:
        w.act(a)
    event(f"charges={min(len(w.charges), 3)}")
    event(f"thanks={min(len(w.recorded), 2)}")
    event(f"my_page={'code' if w.my_page_issued_at is not None else 'none'}")


@hsettings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 9), st.integers(0, 9), st.integers(0, 9)), max_size=25))
def test_a_cooperative_world_gives_thanks_exactly_for_the_recorded_donations(rounds):
    """Taps answered promptly: every thanks matches one RecordDonation, every approved charge gets recorded
    or an 'unavailable_charged' screen, and a declined one never reaches thanks."""
    w = World()
    thanks = 0
    for n, c1, c2, c3 in rounds:
        w.now += 10_000  # past every timeout: each round starts on the loop
        w.feed(flow.Tick(now_ms=w.now))
        assert w.state.name == "attract"
        w.feed(Tap(now_ms=w.now, donor=token(n), family="suica", balance_yen=None, given_today_yen=0))
        for c in (c1, c2, c3):
            if w.outstanding:
                w.answer(w.outstanding.pop(0), c)
        assert not w.outstanding
        a = w.state.attempts
        if w.state.name == "thanks":
            thanks += 1
            assert a in w.recorded
        else:
            assert w.state.name == "error"
            if a in w.approved and a not in w.recorded:
                assert w.state.error.hint == "unavailable_charged"
    assert thanks == len(w.recorded)

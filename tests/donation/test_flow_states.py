"""Every state and transition of the pure donation flow, with time driven by hand."""

from __future__ import annotations

import pytest

from kiosk.config.flow import FlowConfig
from kiosk.donation import flow
from kiosk.donation.flow import (
    Cancel,
    CardUnreadable,
    Charge,
    ChargeAnswered,
    ChooseAmount,
    CommitIntent,
    DonationRecorded,
    FailureRecorded,
    IntentCommitted,
    LedgerDown,
    ProjectShown,
    ReaderOffline,
    ReaderOnline,
    Receipt,
    RecordDonation,
    RecordFailure,
    Tap,
    Tick,
    ToggleLanguage,
    Touch,
    initial,
    replace,
    screen_for,
    step,
)
from tests.donation.conftest import PROJECTS, settings, token

S = settings()
T0 = 1_000_000


class Run:
    """Feeds events at a hand-driven clock and keeps every effect."""

    def __init__(self, s: flow.FlowSettings = S):
        self.s = s
        self.now = T0
        self.state = initial(s, T0)
        self.effects: list[flow.Effect] = []

    def __call__(self, cls, **kw) -> tuple[flow.Effect, ...]:  # noqa: ANN001
        self.state, effects = step(self.state, cls(now_ms=self.now, **kw), self.s)
        self.effects += effects
        return effects

    def wait(self, ms: int) -> None:
        self.now += ms

    def tap(self, n: int = 1, *, balance: int | None = 5000, family: str = "suica", given: int = 0):
        return self(Tap, donor=token(n), family=family, balance_yen=balance, given_today_yen=given)

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def screen(self):  # noqa: ANN201
        return screen_for(self.state, self.s)


def to_charging(r: Run, n: int = 1) -> int:
    """Tap from attract; returns the attempt number."""
    (eff,) = r.tap(n)
    assert isinstance(eff, CommitIntent)
    return eff.attempt


def approve(r: Run, attempt: int, seq: int = 7, idem: str = "idem-x") -> None:
    (charge,) = r(IntentCommitted, attempt=attempt, intent_seq=seq, idem=idem)
    assert charge == Charge(attempt, seq, idem, r.state.donation.amount_yen)
    (rec,) = r(ChargeAnswered, attempt=attempt, outcome="approved", provider_ref="sim-1")
    assert isinstance(rec, RecordDonation)
    r(DonationRecorded, attempt=attempt, receipt=Receipt(seq + 1, b"h" * 32, b"s" * 64, "code"), new_total_yen=900,
      points_balance=12)


# --- attract ---------------------------------------------------------------------------------

def test_starts_on_the_attract_loop_with_the_first_project():
    r = Run()
    assert r.name == "attract" and r.state.loop_project == "kodomo"
    assert r.screen == flow.AttractScreen("kodomo", 100, True, "ja")
    assert flow.deadline_ms(r.state, S) is None  # the loop never times out


def test_the_loop_tells_the_flow_which_project_is_on_screen():
    r = Run()
    r(ProjectShown, project="midori")
    assert r.state.loop_project == "midori"
    r(ProjectShown, project="no-such-project")
    assert r.state.loop_project == "midori"


def test_one_tap_during_attract_gives_the_default_amount_to_the_project_on_screen():
    r = Run()
    r(ProjectShown, project="machi")
    (eff,) = r.tap(3)
    assert eff == CommitIntent(1, "machi", 100, "sim", token(3))
    assert r.name == "charging" and r.screen == flow.ChargingScreen("machi", 100, "ja")


def test_touch_opens_choose_amount_for_the_project_on_screen_or_the_one_touched():
    r = Run()
    r(ProjectShown, project="midori")
    r(Touch)
    assert r.name == "choose_amount" and r.screen == flow.ChooseAmountScreen("midori", (100, 500, 1000), 100, "ja")
    r(Cancel)
    r(Touch, project="machi")
    assert r.state.project == "machi"


def test_no_projects_means_taps_and_touches_do_nothing():
    r = Run(settings(projects=()))
    assert r.tap() == () and r.name == "attract"
    r(Touch)
    assert r.name == "attract"


# --- choose amount ---------------------------------------------------------------------------

def test_choose_amount_accepts_presets_only():
    r = Run()
    r(Touch)
    r(ChooseAmount, amount_yen=200)  # not a preset
    assert r.name == "choose_amount"
    r(ChooseAmount, amount_yen=500)
    assert r.name == "tap_card" and r.screen == flow.TapCardScreen("kodomo", 500, "ja")


def test_per_transaction_maximum_refuses_a_larger_preset():
    r = Run(settings(max_per_transaction_yen=500))
    r(Touch)
    r(ChooseAmount, amount_yen=1000)
    assert r.name == "choose_amount"
    # and a default above the maximum (a config the loader refuses) is still refused at the tap
    r2 = Run(settings(max_per_transaction_yen=50))
    assert r2.tap() == () and r2.state.error.kind == "limit_reached"


def test_choose_amount_idle_timeout_and_touch_keeps_it_awake():
    r = Run()
    r(Touch)
    r.wait(19_999)
    r(Tick)
    assert r.name == "choose_amount"
    r(Touch)  # activity restarts the idle timer
    r.wait(19_999)
    r(Tick)
    assert r.name == "choose_amount"
    assert flow.deadline_ms(r.state, S) == r.now + 1
    r.wait(1)
    r(Tick)
    assert r.name == "attract"


def test_a_tap_on_choose_amount_gives_the_default():
    r = Run()
    r(Touch, project="midori")
    (eff,) = r.tap()
    assert (eff.project, eff.amount_yen) == ("midori", 100)


def test_cancel_from_choose_amount():
    r = Run()
    r(Touch)
    r(Cancel)
    assert r.name == "attract"


# --- tap card --------------------------------------------------------------------------------

def _on_tap_card(amount: int = 500) -> Run:
    r = Run()
    r(Touch)
    r(ChooseAmount, amount_yen=amount)
    return r


def test_tap_on_tap_card_commits_the_intent_for_the_chosen_amount():
    r = _on_tap_card(1000)
    (eff,) = r.tap(2)
    assert eff == CommitIntent(1, "kodomo", 1000, "sim", token(2))


def test_tap_card_idle_timeout():
    r = _on_tap_card()
    r.wait(20_000)
    r(Tick)
    assert r.name == "attract" and r.state.project is None and r.state.amount_yen is None


def test_an_overdue_screen_times_out_before_the_event_is_handled():
    r = _on_tap_card(1000)
    r(ProjectShown, project="machi")
    r.wait(25_000)
    (eff,) = r.tap()  # no Tick came in time: the flow is back on the loop, so it is a one-tap default gift
    assert (eff.project, eff.amount_yen) == ("machi", 100)


def test_tap_card_change_of_amount_cancel_and_touch():
    r = _on_tap_card(500)
    r(ChooseAmount, amount_yen=100)
    assert r.state.amount_yen == 100
    r(ChooseAmount, amount_yen=123)
    assert r.state.amount_yen == 100
    r.wait(15_000)
    r(Touch)
    r.wait(15_000)
    r(Tick)
    assert r.name == "tap_card"
    r(Cancel)
    assert r.name == "attract"


# --- card checks -----------------------------------------------------------------------------

def test_not_a_transit_card():
    r = _on_tap_card()
    assert r.tap(family="unknown") == ()
    assert r.name == "error" and r.screen.kind == "not_transit" and r.screen.hint == "not_transit"
    assert r.screen.text == flow.HINTS["not_transit"]


def test_card_unreadable_and_not_transit_from_read_errors():
    r = _on_tap_card()
    r(CardUnreadable, detail="card lost mid-read")
    assert r.screen.kind == "card_unreadable" and r.screen.amount_yen == 500
    r2 = Run()
    r2(CardUnreadable, not_transit=True)
    assert r2.screen.kind == "not_transit"


def test_balance_low_only_when_the_balance_was_read():
    r = _on_tap_card(1000)
    assert r.tap(balance=999) == ()
    assert r.screen.kind == "balance_low" and r.screen.balance_yen == 999
    r2 = _on_tap_card(1000)
    assert len(r2.tap(balance=None)) == 1  # unknown balance: the terminal will decide
    r3 = _on_tap_card(1000)
    assert len(r3.tap(balance=1000)) == 1


def test_balance_low_suggests_a_smaller_amount_only_when_one_would_do():
    """Issue #15 item 14: with ¥80 on the card no preset goes through, so "choose a smaller amount" is wrong."""
    r = _on_tap_card(1000)
    r.tap(balance=120)  # ¥100 would go through
    assert (r.screen.kind, r.screen.hint) == ("balance_low", "balance_low")
    r2 = _on_tap_card(1000)
    r2.tap(balance=80)  # below the smallest preset (¥100)
    assert (r2.screen.kind, r2.screen.hint) == ("balance_low", "balance_low_none")
    assert "smaller" not in r2.screen.text


def test_daily_limit_per_card():
    r = _on_tap_card(1000)
    assert r.tap(given=1000) == ()  # 1000 + 1000 > 1500
    assert r.screen.kind == "limit_reached" and r.screen.remaining_yen == 500
    assert r.screen.hint == "limit_reached_amount"
    r2 = Run()
    assert r2.tap(given=1450) == ()
    assert r2.screen.remaining_yen == 50 and r2.screen.hint == "limit_reached"
    r3 = Run()
    assert len(r3.tap(given=1400)) == 1  # exactly up to the limit is fine


def test_a_daily_total_that_could_not_be_read_fails_closed():
    r = _on_tap_card()
    assert r(Tap, donor=token(1), family="suica", balance_yen=None, given_today_yen=None) == ()
    assert (r.screen.kind, r.screen.hint) == ("unavailable", "unavailable")


def test_error_with_retry_takes_the_next_tap_with_the_same_project_and_amount():
    r = _on_tap_card(500)
    r.tap(family="unknown")
    (eff,) = r.tap(2)
    assert (eff.project, eff.amount_yen, eff.donor) == ("kodomo", 500, token(2))
    r2 = _on_tap_card(500)
    r2(CardUnreadable)
    r2(CardUnreadable)
    assert r2.screen.kind == "card_unreadable"
    r2(CardUnreadable, not_transit=True)
    assert r2.screen.kind == "not_transit"


# --- charging --------------------------------------------------------------------------------

def test_happy_path_to_thanks_with_all_the_screen_data():
    r = Run()
    a = to_charging(r)
    assert r.state.donation.phase == "intent"
    approve(r, a, seq=7)
    assert r.name == "thanks"
    assert r.screen == flow.ThanksScreen("kodomo", 100, 900, 1, 12, "code", 8, "ja", reference=7)
    rec = [e for e in r.effects if isinstance(e, RecordDonation)]
    assert rec == [RecordDonation(a, 7, "sim-1", 1)]


def test_points_follow_the_configured_rate():
    r = Run(settings(points_per_100_yen=3))
    r(Touch)
    r(ChooseAmount, amount_yen=1000)
    a = to_charging(r)
    approve(r, a)
    assert [e.points for e in r.effects if isinstance(e, RecordDonation)] == [30]
    assert r.screen.points_earned == 30
    assert settings().points_for(199) == 1 and settings().points_for(99) == 0


def test_charging_ignores_taps_touches_cancel_and_time():
    r = Run()
    a = to_charging(r)
    before = r.state
    assert r.tap(1) == () and r.tap(2) == ()
    r(Touch)
    r(Cancel)
    r(CardUnreadable)
    r.wait(10 * 60_000)
    r(Tick)
    assert r.state == before
    assert flow.deadline_ms(r.state, S) is None
    approve(r, a)
    assert r.name == "thanks"


def test_answers_for_another_attempt_or_the_wrong_phase_are_ignored():
    r = Run()
    a = to_charging(r)
    before = r.state
    r(IntentCommitted, attempt=a + 1, intent_seq=3, idem="x")
    r(ChargeAnswered, attempt=a, outcome="approved", provider_ref="early")  # no intent yet
    r(DonationRecorded, attempt=a, receipt=Receipt(1, b"", b"", "c"), new_total_yen=1, points_balance=1)
    r(FailureRecorded, attempt=a)
    r(LedgerDown, attempt=a, stage="record")
    assert r.state == before and not any(isinstance(e, Charge) for e in r.effects)
    r(IntentCommitted, attempt=a, intent_seq=3, idem="x")
    assert r.state.donation.phase == "charge"
    r(IntentCommitted, attempt=a, intent_seq=3, idem="x")  # a duplicate answer asks for no second charge
    assert sum(isinstance(e, Charge) for e in r.effects) == 1
    r(DonationRecorded, attempt=a, receipt=Receipt(1, b"", b"", "c"), new_total_yen=1, points_balance=1)
    assert r.name == "charging"


def test_declined_is_recorded_then_shown_and_a_new_tap_retries():
    r = Run()
    a = to_charging(r)
    r(IntentCommitted, attempt=a, intent_seq=3, idem="x")
    (eff,) = r(ChargeAnswered, attempt=a, outcome="declined", provider_ref="sim-9", reason="card blocked")
    assert eff == RecordFailure(a, 3, "declined: card blocked", "sim-9")
    assert r.name == "charging"  # not before the failure is on the ledger
    r(FailureRecorded, attempt=a)
    assert r.screen.kind == "declined" and r.screen.hint == "declined"
    (retry,) = r.tap(2)
    assert isinstance(retry, CommitIntent) and retry.attempt == a + 1


def test_not_charged_after_a_timeout():
    r = Run()
    a = to_charging(r)
    r(IntentCommitted, attempt=a, intent_seq=3, idem="x")
    (eff,) = r(ChargeAnswered, attempt=a, outcome="not_charged", reason="timeout")
    assert eff.reason == "not charged: timeout"
    r(FailureRecorded, attempt=a)
    assert (r.screen.kind, r.screen.hint) == ("declined", "not_charged")


def test_unknown_outcome_leaves_the_intent_open_and_refuses_taps():
    r = Run()
    a = to_charging(r)
    r(IntentCommitted, attempt=a, intent_seq=3, idem="x")
    assert r(ChargeAnswered, attempt=a, outcome="unknown", reason="timeout") == ()
    assert (r.screen.kind, r.screen.hint) == ("unavailable", "unavailable_pending")
    # Issue #15 item 12: the citizen gets the amount and a number the staff can look the gift up by.
    assert (r.screen.amount_yen, r.screen.reference) == (100, 3)
    assert r.tap(1) == () and r.tap(2) == ()
    r.wait(8_000)
    r(Tick)
    assert r.name == "attract"


def test_ledger_down_at_the_intent_fails_closed():
    r = Run()
    a = to_charging(r)
    assert r(LedgerDown, attempt=a, stage="intent") == ()
    assert (r.screen.kind, r.screen.hint) == ("unavailable", "unavailable")
    assert not any(isinstance(e, Charge) for e in r.effects)
    assert r.tap() == ()


def test_ledger_down_at_the_donation_after_an_approved_charge():
    r = Run()
    a = to_charging(r)
    r(IntentCommitted, attempt=a, intent_seq=3, idem="x")
    r(ChargeAnswered, attempt=a, outcome="approved", provider_ref="sim-1")
    r(LedgerDown, attempt=a, stage="record")
    assert (r.screen.kind, r.screen.hint) == ("unavailable", "unavailable_charged")
    assert r.tap(1) == ()


def test_ledger_down_at_a_failure_record_still_says_declined():
    r = Run()
    a = to_charging(r)
    r(IntentCommitted, attempt=a, intent_seq=3, idem="x")
    r(ChargeAnswered, attempt=a, outcome="declined", reason="no")
    r(LedgerDown, attempt=a, stage="record")
    assert r.screen.kind == "declined"


# --- thanks and error ------------------------------------------------------------------------

def test_thanks_times_out_and_only_its_close_button_dismisses():
    """Issue #15 item 4: pointing at the QR code (a touch anywhere) must not take the receipt away."""
    r = Run()
    approve(r, to_charging(r))
    r.wait(5_999)
    r(Tick)
    assert r.name == "thanks"
    r.wait(1)
    r(Tick)
    assert r.name == "attract"
    approve(r, to_charging(r))
    for _ in range(3):
        r(Touch)
        assert r.name == "thanks"
    r(Cancel)
    assert r.name == "attract"


def test_the_thank_you_lasts_long_enough_to_scan_its_code():
    """Issue #15 item 4: 6 s was too short to take out a phone; the default is now 20 s."""
    assert flow.FlowSettings(projects=("a",)).thanks_ms >= 15_000
    assert FlowConfig().thanks_ms >= 15_000


def test_the_same_card_on_thanks_never_starts_a_second_charge_but_the_next_citizen_can_give():
    r = Run()
    r(Touch, project="midori")
    r(ChooseAmount, amount_yen=500)
    approve(r, to_charging(r, n=1))
    assert r.tap(1) == () and r.name == "thanks"
    (eff,) = r.tap(2)
    assert eff == CommitIntent(2, "midori", 100, "sim", token(2))


def test_error_times_out_and_touch_dismisses():
    r = _on_tap_card()
    r.tap(family="unknown")
    r.wait(7_999)
    r(Tick)
    assert r.name == "error"
    r.wait(1)
    r(Tick)
    assert r.name == "attract"
    r.tap(family="unknown")
    r(Cancel)
    assert r.name == "attract"


# --- reader and language -----------------------------------------------------------------------

def test_reader_offline_and_back():
    r = Run()
    r(ReaderOffline, reason="unplugged")
    assert r.name == "attract" and r.screen.reader_online is False
    r(Touch)
    assert r.screen.kind == "reader_offline" and r.screen.hint == "reader_offline"
    assert r.tap() == ()
    r(ReaderOnline)
    assert r.name == "attract" and r.screen.reader_online
    r(Touch)
    r(ReaderOffline)
    assert r.screen.kind == "reader_offline"
    r(ReaderOnline)
    r(Touch)
    r(ChooseAmount, amount_yen=100)
    r(ReaderOffline)
    assert r.screen.kind == "reader_offline"


def test_reader_offline_during_charging_does_not_interrupt_the_charge():
    r = Run()
    a = to_charging(r)
    r(ReaderOffline)
    assert r.name == "charging" and not r.state.reader_online
    approve(r, a)
    assert r.name == "thanks"


def test_reader_offline_does_not_hide_an_unavailable_message():
    r = Run()
    a = to_charging(r)
    r(IntentCommitted, attempt=a, intent_seq=3, idem="x")
    r(ChargeAnswered, attempt=a, outcome="unknown")
    r(ReaderOffline)
    assert r.screen.kind == "unavailable"


def test_language_toggle_lasts_until_the_loop():
    r = Run()
    r(Touch)
    r(ToggleLanguage)
    assert r.screen.lang == "en"
    r(ChooseAmount, amount_yen=100)
    assert r.screen.lang == "en"
    r(Cancel)
    assert r.screen.lang == "ja"
    r(ToggleLanguage)
    r(ToggleLanguage)
    assert r.screen.lang == "ja"


def test_a_language_chosen_on_the_loop_goes_back_to_the_kiosks_own_when_left_alone():
    r = Run()
    r(ToggleLanguage)  # a visitor switches the loop to English
    assert r.name == "attract" and r.screen.lang == "en"
    assert flow.deadline_ms(r.state, S) == r.now + S.choose_amount_idle_ms  # as long as the amounts would wait
    r.wait(S.choose_amount_idle_ms - 1)
    r(Tick)
    assert r.screen.lang == "en"
    r(ToggleLanguage)  # switched back by hand: the loop as ever, no deadline
    assert r.screen.lang == "ja" and flow.deadline_ms(r.state, S) is None
    r(ToggleLanguage)
    r.wait(S.choose_amount_idle_ms)
    r(Tick)
    assert (r.name, r.screen.lang) == ("attract", "ja") and flow.deadline_ms(r.state, S) is None
    en = Run(settings(language="en"))  # a kiosk whose own language is English goes back to English
    en(ToggleLanguage)
    en.wait(S.choose_amount_idle_ms)
    en(Tick)
    assert en.screen.lang == "en"


def test_every_state_has_a_screen_named_after_it():
    r = Run()
    seen = {r.name: r.screen}
    r(Touch)
    seen[r.name] = r.screen
    r(flow.OpenPicker)
    seen[r.name] = r.screen
    r(flow.PickProject, project=PROJECTS[0])
    r(ChooseAmount, amount_yen=100)
    seen[r.name] = r.screen
    a = to_charging(r)
    seen[r.name] = r.screen
    approve(r, a)
    seen[r.name] = r.screen
    r.tap(9, family="unknown")
    seen[r.name] = r.screen
    m = Run(settings(my_page_ms=180_000))
    approve(m, to_charging(m))
    m(flow.AskMyPage)
    seen[m.name] = m.screen
    p = Run(settings(points_exchange=True))
    p(flow.OpenPoints)
    seen[p.name] = p.screen
    assert set(seen) == set(flow.STATES)
    assert all(s.screen == name for name, s in seen.items())
    with pytest.raises(ValueError):
        screen_for(replace(r.state, error=None), S)


def test_settings_from_a_kiosk_config(tmp_path):
    from kiosk.config import validate_config

    cfg = validate_config({
        "kiosk": {"id": "flow-test", "language": "en"},
        "donation": {"presets_yen": [100, 300], "default_yen": 300, "max_per_transaction_yen": 300,
                     "daily_limit_per_card_yen": 900, "points_per_100_yen": 2},
        "projects": [{"id": "a", "title": "A", "area": "green"}, {"id": "b", "title": "B", "area": "town"}],
    })
    s = flow.FlowSettings.from_config(cfg, method="sim")
    assert (s.projects, s.presets_yen, s.default_yen, s.max_per_transaction_yen, s.daily_limit_per_card_yen,
            s.points_per_100_yen, s.language) == (("a", "b"), (100, 300), 300, 300, 900, 2, "en")
    assert s.thanks_ms == 20_000  # [flow] defaults until the root config has the section

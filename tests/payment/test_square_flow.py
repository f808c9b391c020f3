"""The donation flow with a separate terminal: amount on the kiosk, card on the Square Terminal.

Points need the donor's token, which only the kiosk's reader can give: the
donor may tap it on the tap-card screen (points), or press "pay on the
terminal" and give without one (no points; the ledger records ``donor: null``).
Real ledger, the real adapter and SDK, the fake Square API on loopback.
"""

from __future__ import annotations

import pytest

from kiosk.donation import flow
from kiosk.donation.flow import replace
from kiosk.donation.service import DonationService
from kiosk.ledger import Ledger, verify_path
from kiosk.ui.screens import actions, chrome
from kiosk.ui.widgets import Target
from tests.donation.conftest import KIOSK_ID, card, entries_of, settings
from tests.payment.fake_square import FakeSquare
from tests.payment.test_square_terminal import SleepLog, terminal


@pytest.fixture
def rig(tmp_path, signing_key):
    clk = SleepLog()
    with FakeSquare(clock=clk.monotonic) as fake:
        led = Ledger.open(tmp_path / "ledger.db", signing_key, KIOSK_ID, clock=clk)
        term = terminal(fake, clk, tmp_path)
        seen: list[flow.Screen] = []
        svc = DonationService(led, term, settings(method="square", pay_on_terminal=True), clock=clk)
        term.on_live = lambda live: seen.append(  # what the app does: redraw with the terminal's state
            replace(svc.screen, terminal_state=live.status) if svc.state.name == "charging" else svc.screen)
        svc.start()
        yield fake, led, term, svc, seen
        led.close()
        term.close()
        assert verify_path(tmp_path / "ledger.db").ok


def _to_tap_card(svc: DonationService, amount: int = 500) -> None:
    svc.handle(flow.Touch(now_ms=svc.now_ms()))
    svc.handle(flow.ChooseAmount(now_ms=svc.now_ms(), amount_yen=amount))
    assert svc.state.name == "tap_card"
    screen = svc.screen
    assert isinstance(screen, flow.TapCardScreen) and screen.on_terminal


def test_pay_on_the_terminal_without_a_card_records_a_donation_without_a_donor(rig):
    fake, led, term, svc, seen = rig
    _to_tap_card(svc)
    fake.plan = ["tap", "complete"]
    svc.handle(actions.event_for(Target(None, chrome.PAY_ON_TERMINAL), svc.now_ms()))  # the button
    assert svc.state.name == "thanks"
    thanks = svc.screen
    assert isinstance(thanks, flow.ThanksScreen) and not thanks.has_donor and thanks.points_earned == 0
    [d] = entries_of(led, "donation")
    assert d.data["donor"] is None and d.data["pepper_epoch"] == 0 and d.data["points"] == 0
    assert d.data["amount_yen"] == 500 and d.data["provider_ref"] == fake.only().payment_ids[0]
    # the donor saw the terminal's state while paying, and the thank-you only after the commit
    states = [s.terminal_state for s in seen if isinstance(s, flow.ChargingScreen)]
    assert states[:1] == ["CREATING"] and "IN_PROGRESS" in states and states[-1] == "COMPLETED"
    assert all(s.on_terminal for s in seen if isinstance(s, flow.ChargingScreen))


def test_a_tap_on_the_kiosk_reader_first_earns_points_and_the_balance_it_read_is_not_checked(rig):
    fake, led, term, svc, _seen = rig
    _to_tap_card(svc)
    fake.plan = ["complete"]
    svc.reader_event(card(1, balance=100))  # ¥100 on this card; the donor may pay with another on the terminal
    assert svc.state.name == "thanks"
    thanks = svc.screen
    assert isinstance(thanks, flow.ThanksScreen) and thanks.has_donor and thanks.points_earned == 5
    [d] = entries_of(led, "donation")
    assert d.data["donor"] == card(1).record.token.hex and d.data["points"] == 5


def test_canceled_on_the_terminal_is_a_failure_and_nothing_is_charged(rig):
    fake, led, term, svc, _seen = rig
    _to_tap_card(svc)
    fake.plan = ["cancel"]
    svc.handle(flow.PayOnTerminal(now_ms=svc.now_ms()))
    assert svc.state.name == "error" and svc.screen.hint == "canceled"
    [f] = entries_of(led, "donation_failed")
    assert "BUYER_CANCELED" in f.data["reason"] and entries_of(led, "donation") == []


def test_pay_on_terminal_means_nothing_without_a_separate_terminal():
    s = settings()
    st = flow.initial(s, 0)
    st, _ = flow.step(st, flow.Touch(now_ms=1), s)
    st, _ = flow.step(st, flow.ChooseAmount(now_ms=2, amount_yen=500), s)
    st2, effects = flow.step(st, flow.PayOnTerminal(now_ms=3), s)
    assert st2.name == "tap_card" and effects == ()
    screen = flow.screen_for(st2, s)
    assert isinstance(screen, flow.TapCardScreen) and not screen.on_terminal

"""Square refuses the checkout itself for setup reasons (token, device, location): not a card decline.

A refused CreateTerminalCheckout (400, 401, 403, 404 to the first try) happens before any card is asked for, so it
can never be about the donor's card: telling the citizen "declined, try another card" sends every citizen to
another card that fails the same way, and staff hear nothing. The citizen sees the "temporarily unavailable, not
charged, try again later" screen, the intent is closed as not charged (no checkout exists under its key), and the
terminal's health (status page, portal heartbeat) says ``error`` with Square's words until a checkout is made.
Real ledger, the real adapter and SDK, the fake Square API on loopback.
"""

from __future__ import annotations

import logging

import pytest

from kiosk.donation import flow
from kiosk.donation.service import DonationService
from kiosk.ledger import Ledger, verify_path
from tests.donation.conftest import KIOSK_ID, entries_of, settings
from tests.payment.fake_square import FakeSquare, Fault
from tests.payment.test_square_terminal import IDEM, SleepLog, terminal

SETUP_REFUSALS = [
    pytest.param({"token": "wrong"}, None, "UNAUTHORIZED", id="401-bad-token"),
    pytest.param({"device_id": "device:GONE"}, None, "NOT_FOUND", id="404-unknown-device"),
    pytest.param({}, Fault("status", 403, code="FORBIDDEN"), "FORBIDDEN", id="403-location-mismatch"),
    pytest.param({}, Fault("status", 400, code="INVALID_VALUE"), "INVALID_VALUE", id="400-bad-request"),
]


@pytest.mark.parametrize("kw,fault,code", SETUP_REFUSALS)
def test_the_donor_is_told_try_later_not_another_card_and_nothing_stays_open(tmp_path, signing_key, caplog,
                                                                              kw, fault, code):
    clk = SleepLog()
    with FakeSquare(clock=clk.monotonic) as fake:
        led = Ledger.open(tmp_path / "ledger.db", signing_key, KIOSK_ID, clock=clk)
        term = terminal(fake, clk, tmp_path, **kw)
        svc = DonationService(led, term, settings(method="square", pay_on_terminal=True), clock=clk)
        svc.start()
        if fault is not None:
            fake.fault("create", fault)
        svc.handle(flow.Touch(now_ms=svc.now_ms()))
        svc.handle(flow.ChooseAmount(now_ms=svc.now_ms(), amount_yen=500))
        with caplog.at_level(logging.ERROR, logger="kiosk.payment.square"):
            svc.handle(flow.PayOnTerminal(now_ms=svc.now_ms()))
        screen = svc.screen
        assert isinstance(screen, flow.ErrorScreen)
        # the "cannot take donations right now" screen, never "declined, try another card"
        assert (screen.kind, screen.hint) == ("unavailable", "unavailable")
        assert screen.text == flow.HINTS["unavailable"] and "another card" not in screen.text
        assert svc.state.error is not None and not svc.state.error.retry
        # closed as not charged: Square made no checkout under the key, and nothing stays open
        assert fake.checkouts == {}
        [failed] = entries_of(led, "donation_failed")
        assert failed.data["reason"].startswith("not charged") and code in failed.data["reason"]
        assert entries_of(led, "donation") == [] and svc.resolve_open_intents() == []
        # staff: the log line says what to fix, and the status page's terminal item is an error
        assert any(code in r.getMessage() and "setup" in r.getMessage() for r in caplog.records)
        state, detail = term.health(wait=True)
        assert state == "error" and code in detail
        led.close()
        term.close()
    assert verify_path(tmp_path / "ledger.db").ok


def test_the_terminal_is_reported_ready_again_once_square_makes_a_checkout(fake_clk_term):
    fake, term = fake_clk_term
    fake.fault("create", Fault("status", 403, code="FORBIDDEN"))
    r = term.charge(100, IDEM)
    assert r.status == "declined" and r.unavailable and not r.canceled and "FORBIDDEN" in (r.reason or "")
    assert term.health(wait=True)[0] == "error"
    fake.plan = ["complete"]  # staff fixed the location at Square: the next gift goes through
    assert term.charge(100, "another-key").status == "approved"
    assert term.health(wait=True)[0] == "ready"


def test_a_card_refused_on_the_terminal_is_still_a_plain_decline(fake_clk_term):
    fake, term = fake_clk_term
    fake.plan = ["cancel"]
    r = term.charge(100, IDEM)
    assert r.status == "declined" and not r.unavailable
    assert term.health(wait=True)[0] == "ready"


@pytest.fixture
def fake_clk_term(tmp_path):
    clk = SleepLog()
    with FakeSquare(clock=clk.monotonic) as fake:
        term = terminal(fake, clk, tmp_path)
        yield fake, term
        term.close()

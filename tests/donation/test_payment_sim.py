"""The simulated terminal: durable like a provider, idempotent per key, and every failure mode on demand."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from kiosk.config import validate_config
from kiosk.payment import (
    ChargeResult,
    PaymentConfig,
    PaymentTerminal,
    SimulatedTerminal,
    TerminalUnavailable,
    open_terminal,
)
from tests.donation.conftest import token

CARD = token(1).hex


def _term(tmp_path, **kw) -> SimulatedTerminal:  # noqa: ANN001
    t = SimulatedTerminal(tmp_path / "sim.db", **kw)
    t.card_seen(CARD, 1000)
    return t


def test_a_charge_survives_dropping_the_object_and_reopening_the_file(tmp_path):
    t = _term(tmp_path)
    r = t.charge(300, "key-1")
    assert r.status == "approved" and r.provider_ref and r.provider_ref.startswith("sim-")
    del t  # no close(): the answer must already be durable
    again = SimulatedTerminal(tmp_path / "sim.db")
    assert again.lookup("key-1") == ChargeResult.approved(r.provider_ref)
    assert again.balance(CARD) == 700
    assert again.lookup("other") == ChargeResult.not_found()
    again.close()


def test_the_same_key_twice_debits_once_and_replays_the_first_answer(tmp_path):
    t = _term(tmp_path)
    first = t.charge(500, "key-1")
    second = t.charge(500, "key-1")
    assert second == first
    assert t.balance(CARD) == 500
    t.close()
    reopened = _term(tmp_path)  # after a restart too
    assert reopened.charge(500, "key-1") == first
    assert reopened.balance(CARD) == 500 and len(reopened.charges()) == 1


def test_decline_mode_records_the_decline_and_debits_nothing(tmp_path):
    t = _term(tmp_path, mode="decline", decline_reason="card blocked")
    r = t.charge(100, "k")
    assert r.status == "declined" and r.reason == "card blocked"
    assert t.lookup("k").status == "declined"
    t.mode = "approve"
    assert t.charge(100, "k").status == "declined", "a key keeps its first answer"
    assert t.balance(CARD) is None or t.balance(CARD) == 1000


def test_timeout_with_the_charge_applied_is_found_by_lookup(tmp_path):
    t = _term(tmp_path, mode="timeout_applied")
    r = t.charge(200, "k")
    assert r.status == "unknown"
    found = t.lookup("k")
    assert found.status == "approved" and found.provider_ref
    assert t.balance(CARD) == 800


def test_timeout_with_the_request_lost_leaves_nothing_and_a_retry_charges_once(tmp_path):
    t = _term(tmp_path, mode="timeout_lost")
    assert t.charge(200, "k").status == "unknown"
    assert t.lookup("k") == ChargeResult.not_found()
    assert t.balance(CARD) is None  # never even saw a debit
    t.mode = "approve"
    assert t.charge(200, "k").status == "approved"
    assert t.charge(200, "k").status == "approved"
    assert t.balance(CARD) == 800


def test_offline_mode_fails_lookups(tmp_path):
    t = _term(tmp_path, mode="offline")
    assert t.charge(100, "k").status == "unknown"
    with pytest.raises(TerminalUnavailable):
        t.lookup("k")


def test_slow_mode_answers_late_but_the_charge_is_already_durable(tmp_path):
    seen = []

    def sleep(s: float) -> None:  # look at the file from outside while the answer is held back
        seen.append((s, SimulatedTerminal(tmp_path / "sim.db").lookup("k").status))

    t = _term(tmp_path, slow_ms=1500, sleep=sleep)
    assert t.charge(100, "k").status == "approved"
    assert seen == [(1.5, "approved")]


def test_slow_mode_really_waits(tmp_path):
    t = _term(tmp_path, slow_ms=60)
    t0 = time.monotonic()
    t.charge(100, "k")
    assert time.monotonic() - t0 >= 0.06


def test_balances_no_card_and_unread_balance(tmp_path):
    t = SimulatedTerminal(tmp_path / "sim.db", default_balance_yen=250)
    assert t.charge(100, "a").reason == "no card on the terminal"
    t.card_seen(CARD, None)  # the reader could not read the balance: the simulator's default applies
    assert t.charge(200, "b").status == "approved"
    r = t.charge(100, "c")
    assert r.status == "declined" and "insufficient balance" in (r.reason or "")
    t.card_seen(CARD, 9999)  # once it has debited a card, its own record wins
    assert t.charge(100, "d").status == "declined"
    t.card_seen(None, None)
    assert t.charge(10, "e").reason == "no card on the terminal"
    with pytest.raises(ValueError):
        t.charge(0, "f")
    with pytest.raises(ValueError):
        SimulatedTerminal(tmp_path / "x.db", mode="explode")  # type: ignore[arg-type]


def test_the_base_class_is_only_a_seam():
    with pytest.raises(NotImplementedError):
        PaymentTerminal().charge(100, "k")
    with pytest.raises(NotImplementedError):
        PaymentTerminal().lookup("k")


def test_open_terminal_from_config(tmp_path):
    cfg = validate_config({"kiosk": {"id": "pay-test", "data_dir": str(tmp_path)}})
    t = open_terminal(cfg)  # no [payment] section in the root config yet: defaults
    assert isinstance(t, SimulatedTerminal) and t.path == tmp_path / "payment-sim.db" and t.mode == "approve"
    t.close()
    # Once the root config has a [payment] section, KioskConfig carries it exactly like this.
    with_payment = SimpleNamespace(resolve=cfg.resolve,
                                   payment=PaymentConfig(sim_mode="decline", sim_slow_ms=5, sim_state="pay/sim.db"))
    t = open_terminal(with_payment)
    assert t.path == tmp_path / "pay" / "sim.db" and t.mode == "decline" and t.slow_ms == 5
    t.close()


def test_payment_config_is_strict():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        PaymentConfig.model_validate({"sim_mood": "decline"})
    with pytest.raises(ValidationError):
        PaymentConfig.model_validate({"sim_mode": "sometimes"})
    assert PaymentConfig().terminal == "sim"

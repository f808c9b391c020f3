"""A refund the payment service refuses for good is not met with "press Refund again" (review 8).

The result page said 「完了していません。もう一度『返金』を押してください」 with a Refund again button for every
failure, also for a final refusal (the payment already refunded at the provider, too old, unknown), which no
press will change. A refusal that can change (the network, a busy or offline terminal) still offers it.
Real parts: the real simulated terminal (its own SQLite) charges the card and answers the refunds, the real
menu and ledger.
"""

from __future__ import annotations

from pathlib import Path

from kiosk.payment.sim import SimulatedTerminal

from .conftest import Rig
from .test_menu_words import english_words


def _paid(rig: Rig, tmp_path: Path) -> SimulatedTerminal:
    """A ¥500 gift the simulated terminal really charged, recorded as the donation service records it."""
    term = SimulatedTerminal(tmp_path / "sim-terminal.db")
    token = rig.token(1)
    term.card_seen(token.hex, 2000)
    charge = term.charge(500, "charge-1")
    assert charge.status == "approved" and charge.provider_ref
    intent = rig.ledger.record_intent("kodomo", 500, term.method, token, "charge-1")
    rig.ledger.record_donation(intent.seq, charge.provider_ref, 5)
    rig.services.refund, rig.services.refund_method = term.refund, term.method
    return term


def _refund(rig: Rig) -> None:
    rig.open()
    for action, *value in (("go", "refund"), ("refund_pick", 0), ("refund_run",)):
        rig.menu.model.press(action, *value)
    assert rig.menu.page == "refund_done"


def test_a_final_refusal_says_to_look_at_the_dashboard_without_a_retry_button(rig: Rig, tmp_path: Path) -> None:
    term = _paid(rig, tmp_path)
    # Someone already refunded it at the provider (its dashboard), outside the kiosk: a refusal for good.
    provider_ref = next(e.data["provider_ref"] for e in rig.ledger.iter_entries() if e.type == "donation")
    assert term.refund(provider_ref, 500, "dashboard-refund", "refunded on the dashboard").status == "COMPLETED"
    _refund(rig)
    view = rig.view()
    assert view.notice_level == "red"
    text = "\n".join([view.notice, *view.lines])
    assert "もう一度「返金」を押してください" not in text, text
    assert "変わりません" in text and "ダッシュボード" in text, text
    assert not english_words(text), text
    assert not any(b.action in ("refund_run", "refund_new") for b in view.all_buttons), view.all_buttons
    assert not any(e.type == "void" for e in rig.ledger.iter_entries())  # nothing voided: the gift still counts
    audit = rig.admin()[-1]
    assert audit["action"] == "refund" and "RefundRefused" in audit["outcome"], audit


def test_a_refusal_that_can_change_still_offers_refund_again(rig: Rig, tmp_path: Path) -> None:
    term = _paid(rig, tmp_path)
    term.mode = "offline"  # the terminal cannot be reached: the next press may well work
    _refund(rig)
    view = rig.view()
    assert view.notice_level == "red" and "もう一度「返金」を押してください" in view.notice, view.notice
    assert [b.action for b in view.all_buttons if b.action == "refund_run"] == ["refund_run"]
    term.mode = "approve"
    rig.menu.model.press("refund_run")
    assert rig.view().notice_level == "green"
    assert sum(e.type == "void" for e in rig.ledger.iter_entries()) == 1

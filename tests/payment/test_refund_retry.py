"""A refund the provider REJECTED or FAILED can be asked for again as a *new* request, with a new idempotency key,
and only then (money fails closed: never two live refunds of one gift).

The attempt number, and with it the key, comes from the signed ``admin_action`` trail at the moment staff press:
the highest attempt recorded REJECTED/FAILED, plus one. While an attempt is PENDING, its answer was lost, or it
never reached the ledger (a power cut), the same key is sent again. Both providers: the simulator (its own
SQLite file) and the Square adapter against the fake Square API on loopback (faked only at the HTTP seam); the
real menu on a real ledger, reopened where a test says the kiosk restarted.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from kiosk.ledger.writer import InlineWriter
from kiosk.ops.local_files import open_ledger
from kiosk.payment.sim import SimulatedTerminal
from kiosk.staff.gate import StaffGate
from kiosk.staff.menu import MaintenanceMenu
from kiosk.staff.refund import refund_key, refund_trail
from tests.donation.conftest import card
from tests.payment.fake_square import Fault
from tests.payment.test_refund_status import (
    Provider,
    kit,  # noqa: F401 - the fixture: both providers behind the menu
    refund_first,
    text,
    voids,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "menu"))
from tests.menu.conftest import SIZE, Rig  # noqa: E402

NEW = "もう一度、新しく返金を申し込む"


def refund_actions(rig: Rig) -> list[str]:
    return [b.action for b in rig.view().all_buttons if b.action.startswith("refund_")]


def refunds_admin(rig: Rig) -> list[dict]:
    return [d for d in rig.admin() if d["action"] == "refund"]


def donation_seq(rig: Rig) -> int:
    [don] = [e for e in rig.ledger.iter_entries() if e.type == "donation"]
    return don.seq


def keys_at_provider(p: Provider) -> list[str]:
    if p.fake is not None:
        return list(p.fake.refunds)  # by idempotency key, in the order they were made
    return [r["idem"] for r in p.term.refunds()]


def restart(rig: Rig) -> None:
    """The kiosk restarts (after a power cut: no shutdown checkpoint): the ledger reopened from its file, a new
    writer, gate and menu; nothing of the old menu's memory survives."""
    rig.ledger.close(checkpoint=False)
    rig.ledger = open_ledger(rig.cfg, clock=rig.wall)
    writer = InlineWriter(rig.ledger)
    rig.gate = StaffGate(writer, rig.ops.staff, clock=rig.clock)
    rig.services.writer, rig.services.gate = writer, rig.gate
    rig.menu = MaintenanceMenu(rig.services, clock=rig.clock, screen_size=SIZE)


def pick_first(rig: Rig) -> None:
    rig.menu.model.press("go", "home")
    rig.touch("go", "refund")
    rig.touch("refund_pick", 0)
    assert rig.menu.page == "refund_confirm"


def test_a_rejected_refund_then_a_new_request_that_completes_writes_one_void(kit):  # noqa: F811
    rig, p = kit
    p.steps("REJECTED", "COMPLETED")  # the bank refuses the first request; the second goes through
    seq = donation_seq(rig)
    refund_first(rig)
    assert rig.menu.model.notice_level == "red" and not voids(rig)
    assert refund_actions(rig) == ["refund_new"] and NEW in text(rig), text(rig)
    assert "新しく返金を申し込むことができます。" in text(rig)
    [first] = refunds_admin(rig)
    # Attempt 1 keeps the key kiosks have always sent, so older ledgers and the provider agree.
    assert first["refund_attempt"] == 1 and first["refund_status"] == "REJECTED"
    assert first["refund_key"] == refund_key(rig.services.kiosk_id, seq) == (
        "rf-" + hashlib.sha256(f"{rig.services.kiosk_id}:{seq}".encode()).hexdigest()[:40])

    rig.touch("refund_new")
    assert rig.menu.model.notice_level == "green", text(rig)
    [void] = voids(rig)
    assert void.data["voids_seq"] == seq
    k1, k2 = refund_key(rig.services.kiosk_id, seq), refund_key(rig.services.kiosk_id, seq, 2)
    assert k1 != k2 and len(k2) <= 45
    assert keys_at_provider(p) == [k1, k2]
    assert [s for _, s in p.refunds()] == ["REJECTED", "COMPLETED"]
    second = refunds_admin(rig)[1]
    assert (second["refund_attempt"], second["refund_key"], second["refund_status"]) == (2, k2, "COMPLETED")
    assert second["void_seq"] == void.seq and second["refund_id"] in void.data["reason"]
    rig.touch("back")
    rig.touch("go", "refund")
    assert rig.menu.model.refundables == []  # voided: never offered again
    if p.name == "sim":
        assert p.term.balance(card(1).record.token.hex) == 5000  # credited back once


def test_a_failed_refund_offers_a_new_request_and_a_pending_one_only_a_check(kit):  # noqa: F811
    rig, p = kit
    p.steps("FAILED", "PENDING")
    refund_first(rig)
    assert refund_actions(rig) == ["refund_new"]
    # From the list, after leaving the page: marked, and the confirmation offers the new request only.
    pick_first(rig)
    assert "返金できませんでした" in text(rig), text(rig)  # the list's mark for FAILED
    assert refund_actions(rig) == ["refund_new"] and "これは2回目の返金の申し込みです。" in text(rig)
    assert "決済サービスで失敗しました" in text(rig), text(rig)
    assert len(p.refunds()) == 1  # choosing sent nothing

    rig.touch("refund_new")
    assert rig.menu.model.notice_level == "yellow" and not voids(rig)
    # PENDING: the money may be on its way back, so no new key: only "check", which asks the same refund again.
    assert refund_actions(rig) == ["refund_run"] and "返金の状況を確かめる" in text(rig) and NEW not in text(rig)
    pick_first(rig)
    assert refund_actions(rig) == ["refund_run"] and "返金の状況を確かめる" in text(rig) and NEW not in text(rig)
    rig.touch("refund_run")
    assert not voids(rig) and len(p.refunds()) == 2

    [(_, _), (second_id, status)] = p.refunds()
    assert status == "PENDING"
    p.decide(second_id, "COMPLETED")
    rig.touch("refund_run")
    assert rig.menu.model.notice_level == "green" and len(voids(rig)) == 1 and len(p.refunds()) == 2
    assert [(d["refund_attempt"], d["refund_status"]) for d in refunds_admin(rig)] == [
        (1, "FAILED"), (2, "PENDING"), (2, "PENDING"), (2, "COMPLETED")]


def test_a_lost_answer_to_a_new_request_is_asked_again_with_the_same_key(kit):  # noqa: F811
    rig, p = kit
    p.steps("REJECTED", "PENDING")
    seq = donation_seq(rig)
    refund_first(rig)
    # The provider makes attempt 2, and the answer never reaches the kiosk.
    if p.fake is not None:
        p.fake.fault("refund", Fault("drop_after"), *[Fault("drop")] * 500)
    else:
        p.term.mode = "timeout_applied"
    rig.touch("refund_new")
    assert rig.menu.model.notice_level == "red" and not voids(rig)
    assert refund_actions(rig) == ["refund_run"]  # "Refund again": the same request, not another new one
    assert len(p.refunds()) == 2
    lost = refunds_admin(rig)[-1]
    assert lost["refund_attempt"] == 2 and "refund_status" not in lost and lost["outcome"].startswith("failed")

    # Its status is unknown, so the list does not offer a new request either: Refund replays attempt 2.
    if p.fake is not None:
        p.fake.faults.clear()
    else:
        p.term.mode = "approve"
    pick_first(rig)
    assert refund_actions(rig) == ["refund_run"] and NEW not in text(rig), text(rig)
    rig.touch("refund_run")
    assert rig.menu.model.notice_level == "yellow", text(rig)
    assert keys_at_provider(p) == [refund_key(rig.services.kiosk_id, seq),
                                   refund_key(rig.services.kiosk_id, seq, 2)]
    assert refunds_admin(rig)[-1]["refund_attempt"] == 2


def test_the_attempt_survives_restarts_and_an_unrecorded_attempt_is_replayed(kit):  # noqa: F811
    rig, p = kit
    p.steps("REJECTED", "REJECTED", "COMPLETED")
    seq = donation_seq(rig)
    kid = rig.services.kiosk_id
    refund_first(rig)
    restart(rig)
    rig.open()
    pick_first(rig)
    assert "これは2回目の返金の申し込みです。" in text(rig)
    rig.touch("refund_new")
    assert rig.menu.model.notice_level == "red" and refund_actions(rig) == ["refund_new"]
    restart(rig)
    rig.open()
    pick_first(rig)
    assert "これは3回目の返金の申し込みです。" in text(rig), text(rig)

    # Attempt 3 reaches the provider and the power goes before the ledger hears of it: nothing recorded.
    [don] = [e for e in rig.ledger.iter_entries() if e.type == "donation"]
    p.term.refund(don.data["provider_ref"], don.data["amount_yen"], refund_key(kid, seq, 3), "test")
    restart(rig)
    rig.open()
    pick_first(rig)
    assert "これは3回目の返金の申し込みです。" in text(rig)  # the trail knows nothing of it: still number 3
    rig.touch("refund_new")  # key 3 again: the provider answers with the refund it already made
    assert rig.menu.model.notice_level == "green", text(rig)
    assert keys_at_provider(p) == [refund_key(kid, seq, n) for n in (1, 2, 3)]
    assert len(voids(rig)) == 1
    assert [d["refund_attempt"] for d in refunds_admin(rig)] == [1, 2, 3]


def test_pressing_the_new_request_twice_makes_one_new_refund(kit):  # noqa: F811
    rig, p = kit
    p.steps("REJECTED", "PENDING")
    refund_first(rig)
    stale = rig.menu.model.refund_pick  # the page as drawn: "new request number 2"
    assert stale is not None and stale.refund_new and stale.refund_attempt == 2
    rig.menu.model.press("refund_new")
    rig.menu.model.press("refund_new")  # a double tap before the page changed
    rig.menu.model.refund_pick = stale  # and once more from the stale page
    rig.menu.model.press("refund_new")
    assert len(p.refunds()) == 2 and [s for _, s in p.refunds()] == ["REJECTED", "PENDING"]
    assert [d["refund_attempt"] for d in refunds_admin(rig)] == [1, 2, 2, 2]
    assert not voids(rig)


@pytest.mark.parametrize("script, answers", [
    (("REJECTED", "COMPLETED"), [(1, "REJECTED"), (1, "REJECTED"), (2, "COMPLETED"), (2, "COMPLETED")]),
    (("FAILED", "PENDING", "COMPLETED"), [(1, "FAILED"), (2, "PENDING"), (2, "COMPLETED"), (1, "FAILED")]),
])
def test_the_simulator_plays_a_script_across_attempts(tmp_path: Path, script, answers):
    sim = SimulatedTerminal(tmp_path / "sim.db")
    try:
        tok = card(1).record.token.hex
        sim.card_seen(tok, 5000)
        paid = sim.charge(700, "charge-1")
        assert paid.status == "approved" and sim.balance(tok) == 4300
        sim.refund_steps = script
        got = [(n, sim.refund(paid.provider_ref, 700, f"key-{n}", "test").status) for n, _ in answers]
        assert got == answers
        assert sim.balance(tok) == 5000  # the completed one credited once; the refused/failed one nothing
        assert [r["idem"] for r in sim.refunds()] == ["key-1", "key-2"]
    finally:
        sim.close()


def test_the_trail_decides_the_attempt():
    """Older records carry no attempt (they are attempt 1); a record without a status (a lost answer) means the
    attempt was tried; only a recorded REJECTED/FAILED moves on to the next attempt."""
    assert refund_trail([]).attempt == 1
    old = {"action": "refund", "donation_seq": 5, "refund_status": "REJECTED", "refund_id": "r1"}
    t = refund_trail([old, dict(old)])  # pressed twice on an older kiosk: still one attempt
    assert (t.attempt, t.status, t.refund_id, t.new) == (2, "REJECTED", "r1", True)
    lost = {"action": "refund", "donation_seq": 5, "refund_attempt": 2, "outcome": "failed: TerminalUnavailable"}
    t = refund_trail([old, lost])
    assert (t.attempt, t.status, t.new) == (2, None, False)
    pending = {"action": "refund", "donation_seq": 5, "refund_attempt": 2, "refund_status": "PENDING",
               "refund_id": "r2"}
    assert refund_trail([old, pending, lost]) == refund_trail([old, pending])
    assert (refund_trail([old, pending]).attempt, refund_trail([old, pending]).new) == (2, False)
    bad = {**old, "refund_attempt": True}  # not a number: attempt 1, never a jump
    assert refund_trail([bad]).attempt == 2

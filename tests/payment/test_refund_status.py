"""A refund writes the ledger's ``void`` only when the provider says COMPLETED (money fails closed), and the
refund pages find a gift by the 受付番号 its donor saw.

The provider answers PENDING, COMPLETED, REJECTED or FAILED (Square's Refunds API). Both providers the kiosk
has are exercised: the simulator (its own SQLite file) and the Square adapter with the SDK against the fake
Square API on loopback (faked only at the HTTP seam). The menu is the real menu model on a real ledger.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kiosk.donation.service import DonationService
from kiosk.ledger import settled_report
from kiosk.ledger.clock import FixedClock
from kiosk.payment.sim import SimulatedTerminal
from kiosk.staff.refund import refund_key
from kiosk.staff.words import StaffMessage
from tests.donation.conftest import card, settings
from tests.payment.fake_square import FakeSquare, Fault
from tests.payment.test_square_terminal import terminal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "menu"))
from tests.menu.conftest import Rig, build_rig  # noqa: E402
from tests.payment.test_square_refund import square_kiosk  # noqa: E402


@dataclass
class Provider:
    """One provider behind the menu: how to make its next refunds answer, and what it holds."""

    name: str
    term: Any
    steps: Any  # (*statuses) -> None: what each new refund answers, one step per time it is asked
    decide: Any  # (refund_id, *statuses) -> None: the bank decided (a PENDING one moves on)
    refunds: Any  # () -> list of (refund id, status)
    fake: FakeSquare | None = None


@contextmanager
def provider(kind: str, tmp_path: Path, clk: FixedClock) -> Iterator[Provider]:
    if kind == "sim":
        sim = SimulatedTerminal(tmp_path / "sim.db")

        def steps(*s: str) -> None:
            sim.refund_steps = s

        try:
            yield Provider("sim", sim, steps, sim.set_refund,
                           lambda: [(r["refund_id"], r["status"]) for r in sim.refunds()])
        finally:
            sim.close()
        return
    with FakeSquare(clock=clk.monotonic) as fake:
        term = terminal(fake, clk, tmp_path)

        def steps_sq(*s: str) -> None:
            fake.refund_steps = list(s)

        try:
            yield Provider("square", term, steps_sq, fake.set_refund,
                           lambda: [(r["id"], r["status"]) for r in fake.refunds.values()], fake)
        finally:
            term.close()


def donate(rig: Rig, p: Provider, n: int) -> None:
    if p.fake is not None:
        svc = DonationService(rig.ledger, p.term, settings(projects=("kodomo", "midori"), method="square",
                                                             pay_on_terminal=True), clock=rig.wall)
        p.fake.plan = ["complete"]
    else:
        svc = DonationService(rig.ledger, p.term, settings(projects=("kodomo", "midori")), clock=rig.wall)
    svc.start()
    svc.reader_event(card(n))


def voids(rig: Rig) -> list:
    return [e for e in rig.ledger.iter_entries() if e.type == "void"]


def text(rig: Rig) -> str:
    v = rig.view()
    return "\n".join([v.title, v.notice, *v.lines, *(b.label for b in v.all_buttons),
                      *(b.detail or "" for b in v.all_buttons)])


@pytest.fixture(params=["sim", "square"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Rig, Provider]]:
    rig = build_rig(tmp_path / "kiosk")
    clk = FixedClock()
    with provider(request.param, tmp_path, clk) as p:
        rig.services.refund, rig.services.refund_method = p.term.refund, p.term.method
        donate(rig, p, 1)
        assert len([e for e in rig.ledger.iter_entries() if e.type == "donation"]) == 1
        yield rig, p
    rig.ledger.close(checkpoint=False)


def refund_first(rig: Rig) -> None:
    rig.open()
    rig.touch("go", "refund")
    rig.touch("refund_pick", 0)
    rig.touch("refund_run")
    assert rig.menu.page == "refund_done"


@pytest.mark.parametrize("status", ["REJECTED", "FAILED"])
def test_a_refused_or_failed_refund_voids_nothing(kit, status):
    rig, p = kit
    p.steps(status)
    refund_first(rig)
    assert not voids(rig) and not rig.ledger.view.voided  # the center still holds the money: it still counts
    assert rig.menu.model.notice_level == "red"
    assert "返金されませんでした" in text(rig) and "返金しました" not in text(rig), text(rig)
    # Asking again with the same key would get the same no: only a new request (a new key) is offered.
    assert [b.action for b in rig.view().all_buttons if b.action.startswith("refund_")] == ["refund_new"]
    [act] = [d for d in rig.admin() if d["action"] == "refund"]
    assert act["refund_status"] == status and "void_seq" not in act
    assert settled_report((e.seq, e.obj) for e in rig.ledger.iter_entries())["count"] == 1
    rig.touch("back")
    rig.touch("go", "refund")
    assert rig.menu.model.refundables[0].refund_status == status  # the list says it was refused
    rig.machine.language = "en"
    rig.touch("refund_pick", 0)
    assert [b.action for b in rig.view().all_buttons if b.action.startswith("refund_")] == ["refund_new"]
    assert "Send a new refund request" in text(rig) and "refund request number 2" in text(rig), text(rig)
    assert not voids(rig) and len(p.refunds()) == 1  # choosing it sent nothing


def test_pending_then_completed_writes_exactly_one_void(kit):
    rig, p = kit
    p.steps("PENDING")  # Square: the money is on its way back; the bank has not answered yet
    refund_first(rig)
    assert not voids(rig) and rig.menu.model.notice_level == "yellow"
    assert "返金の手続き中です" in text(rig) and "返金の状況を確かめる" in text(rig), text(rig)
    [(refund_id, status)] = p.refunds()
    assert status == "PENDING"

    # Durable: a new menu (the kiosk restarted) still knows from the signed trail that a refund is under way.
    rig.touch("back")
    rig.touch("go", "refund")
    [pick] = rig.menu.model.refundables
    assert (pick.refund_status, pick.refund_id) == ("PENDING", refund_id)
    assert "返金手続き中" in text(rig)
    rig.touch("refund_pick", 0)
    assert "返金の状況を確かめる" in text(rig)  # the confirmation asks how it stands, not for a new refund
    rig.touch("refund_run")  # still PENDING: asked again, nothing written
    assert not voids(rig) and len(p.refunds()) == 1

    p.decide(refund_id, "COMPLETED")
    rig.touch("refund_run")  # "Check the refund" on the result page
    assert rig.menu.model.notice_level == "green", text(rig)
    [void] = voids(rig)
    assert refund_id in void.data["reason"] and len(p.refunds()) == 1
    rig.touch("back")
    rig.touch("go", "refund")
    assert rig.menu.model.refundables == []  # voided: no longer offered, so never voided twice
    statuses = [d["refund_status"] for d in rig.admin() if d["action"] == "refund"]
    assert statuses == ["PENDING", "PENDING", "COMPLETED"]


def test_a_retry_never_refunds_twice_even_after_a_power_cut(kit):
    rig, p = kit
    p.steps("PENDING", "COMPLETED")
    [don] = [e for e in rig.ledger.iter_entries() if e.type == "donation"]
    # The kiosk asked the provider and died before the ledger heard of it: no staff action, no void.
    first = p.term.refund(don.data["provider_ref"], don.data["amount_yen"], refund_key(rig.services.kiosk_id,
                                                                                     don.seq), "test")
    assert not [d for d in rig.admin() if d["action"] == "refund"]
    rig.open()
    for _ in range(3):  # staff press Refund (and then again) on the restarted kiosk, until it is gone
        rig.menu.model.press("go", "home")
        rig.touch("go", "refund")
        if not rig.menu.model.refundables:
            break
        rig.touch("refund_pick", 0)
        rig.touch("refund_run")
    assert [r[0] for r in p.refunds()] == [first.refund_id]  # one refund at the provider
    assert len(voids(rig)) == 1
    if p.name == "sim":
        assert p.term.balance(card(1).record.token.hex) == 5000  # credited back once


def test_the_refund_result_page_in_both_languages(kit):
    rig, p = kit
    p.steps("PENDING")
    rig.machine.language = "en"
    refund_first(rig)
    assert "Refund under way. The donation still counts until it is finished." in text(rig)
    assert "PENDING" not in text(rig)
    [(refund_id, _)] = p.refunds()
    p.decide(refund_id, "COMPLETED")
    rig.machine.language = "ja"
    rig.touch("refund_run")
    assert "返金しました。台帳でこの寄付を取り消しました。" in text(rig) and "返金が完了しました。" in text(rig)


def test_the_refund_pages_show_and_find_the_number_the_donor_saw(tmp_path: Path):
    """The donor's error screen says 受付番号 N (the intent's seq); the refund pages showed "#M", the donation's
    seq, and had no way to look a gift up by N."""
    rig = build_rig(tmp_path / "kiosk")
    with square_kiosk(rig, tmp_path) as (fake, term, svc):
        fake.plan = ["complete"]
        svc.reader_event(card(1))  # an earlier gift, so the numbers differ
        [other] = [e for e in rig.ledger.iter_entries() if e.type == "donation"]
        fake.plan = ["complete"]
        fake.fault("get", *[Fault("drop_after")] * 2000)  # paid at Square, every answer about it lost
        svc.reader_event(card(2))
        screen = svc.screen
        assert screen.kind == "unavailable" and screen.reference is not None, screen
        seen = screen.reference  # what the donor reads out to staff
        fake.faults.clear()
        svc.resolve_open_intents()
        [don] = [e for e in rig.ledger.iter_entries() if e.type == "donation" and e.data["intent_seq"] == seen]
        assert don.seq != seen

        rig.services.refund, rig.services.refund_method = term.refund, term.method
        rig.open()
        rig.touch("go", "refund")
        labels = [b.label + " " + (b.detail or "") for b in rig.view().all_buttons if b.action == "refund_pick"]
        assert labels[0].startswith(f"受付番号 {seen}  "), labels
        assert not any(f"#{don.seq}" in t for t in labels)
        # Find it by the number, on the keypad (keys as well as touches).
        rig.touch("go", "refund_find")
        for d in str(seen):
            rig.key(d)
        rig.key("enter")
        assert rig.menu.page == "refund_confirm" and rig.menu.model.refund_pick.seq == don.seq
        assert any(line.startswith(f"受付番号 {seen}") for line in rig.view().lines)
        rig.touch("refund_run")
        assert rig.menu.model.notice_level == "green"
        assert rig.view().lines[0].startswith(f"受付番号 {seen}  ")
        assert [v.data["voids_seq"] for v in voids(rig)] == [don.seq]
        # The number again: already refunded, said so in words; an unknown number likewise.
        rig.touch("back")
        rig.touch("go", "refund")
        rig.touch("go", "refund_find")
        for d in str(seen):
            rig.touch("ref_digit", d)
        rig.touch("ref_ok")
        assert rig.menu.page == "refund_find"
        assert f"受付番号 {seen} の寄付は、もう返金されています。" in rig.view().notice
        for _ in str(seen):
            rig.touch("ref_del")
        rig.touch("ref_digit", "9")
        rig.touch("ref_digit", "9")
        rig.touch("ref_ok")
        assert "受付番号 99 の寄付は、このキオスクにありません。" in rig.view().notice
        term.close()
    from kiosk.staff.refund import find_refundable

    with pytest.raises(StaffMessage, match="was not paid on this payment terminal"):
        find_refundable(rig.ledger, "sim", other.data["intent_seq"])
    rig.ledger.close(checkpoint=False)


def test_the_refund_list_says_each_gifts_day_as_staff_say_a_day(tmp_path: Path):
    """The list showed "12/31 23:50": over months and years the staff could not tell which year, nor read it the
    Japanese way. Now each gift's day is said as the other menu pages say a day, with the year when it is not this
    year's."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    rig = build_rig(tmp_path / "kiosk")
    sim = SimulatedTerminal(tmp_path / "sim.db")
    rig.services.refund, rig.services.refund_method = sim.refund, sim.method
    now = rig.wall.wall  # the rig's clock: Friday 2025-11-21 13:40 in Japan
    for at in (datetime(2024, 12, 31, 23, 50), datetime(2025, 11, 21, 9, 5)):
        rig.wall.wall = int(at.replace(tzinfo=ZoneInfo("Asia/Tokyo")).timestamp() * 1000)
        rig.donate(1, "kodomo", 500, sim.method)
    rig.wall.wall = now

    def details() -> list[str]:
        return [b.detail or "" for b in rig.view().all_buttons if b.action == "refund_pick"]

    rig.open()
    rig.touch("go", "refund")
    assert details() == ["11月21日(金) 9:05", "2024年12月31日(火) 23:50"]  # newest first
    rig.machine.language = "en"
    assert details() == ["Fri 21 Nov 09:05", "Tue 31 Dec 2024 23:50"]
    sim.close()
    rig.ledger.close(checkpoint=False)

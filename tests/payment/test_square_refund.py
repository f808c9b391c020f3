"""Refund end to end: a Square donation, a refund from the maintenance menu, the void entry, the
close-out, and the portal's totals and reconciliation (on SQLite, and on PostgreSQL when
$KIOSK_TEST_PG_URL is set: tests/conftest.py's ``db_url``).

Real parts: the ledger, the menu driven by touches, the Square adapter and SDK against the fake
Square API on loopback, and a real portal over HTTP that the kiosk uploads to.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kiosk.donation.service import DonationService
from kiosk.ledger import settled_report, verify_path
from kiosk.ledger.clock import FixedClock
from kiosk.staff.gate import ACTIONS
from kiosk.staff.refund import refund_key
from kiosk.sync.uploader import sync_kiosk
from server_sync.embedded import start_portal
from server_sync.queries import reconciliation
from tests.donation.conftest import card, settings
from tests.payment.fake_square import FakeSquare
from tests.payment.test_square_terminal import terminal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "menu"))
from tests.menu.conftest import Rig, build_rig  # noqa: E402


@contextmanager
def square_kiosk(rig: Rig, tmp_path: Path) -> Iterator[tuple[FakeSquare, Any, DonationService]]:
    """A started donation service on the rig's ledger that pays through the Square adapter, against the
    fake Square API on loopback (stopped when the block ends)."""
    clk = FixedClock()
    with FakeSquare(clock=clk.monotonic) as fake:
        term = terminal(fake, clk, tmp_path)
        svc = DonationService(rig.ledger, term, settings(projects=("kodomo", "midori"), method="square",
                                                         pay_on_terminal=True), clock=rig.wall)
        svc.start()
        yield fake, term, svc


def test_refund_from_the_menu_voids_the_donation_everywhere(tmp_path: Path, db_url: str):
    assert "refund" in ACTIONS
    rig = build_rig(tmp_path / "kiosk")
    with square_kiosk(rig, tmp_path) as (fake, term, svc):
        fake.plan = ["complete"]
        svc.reader_event(card(1))
        fake.plan = ["complete"]
        svc.reader_event(card(2))
        donations = [e for e in rig.ledger.iter_entries() if e.type == "donation"]
        assert len(donations) == 2
        mistaken = donations[-1]

        rig.services.refund = term.refund
        rig.services.refund_method = term.method
        rig.open()
        rig.touch("go", "refund")
        assert rig.menu.page == "refund"
        assert [r.seq for r in rig.menu.model.refundables] == [d.seq for d in reversed(donations)]
        rig.touch("refund_pick", 0)
        assert rig.menu.page == "refund_confirm"
        assert not rig.ledger.view.voided  # nothing happens before the confirmation
        rig.touch("refund_run")
        assert rig.menu.page == "refund_done" and rig.menu.model.notice_level == "green"

        # at Square: one refund of that payment, under the donation's key
        [ref] = fake.refunds.values()
        assert ref["payment_id"] == mistaken.data["provider_ref"]
        assert ref["amount_money"] == {"amount": mistaken.data["amount_yen"], "currency": "JPY"}
        assert refund_key(rig.services.kiosk_id, mistaken.seq) in fake.refunds
        # in the ledger: a void naming the donation and the refund; the staff action with its outcome
        [void] = [e for e in rig.ledger.iter_entries() if e.type == "void"]
        assert void.data["voids_seq"] == mistaken.seq and ref["id"] in void.data["reason"]
        [act] = [d for d in rig.admin() if d["action"] == "refund"]
        assert act["outcome"] == "ok" and act["refund_id"] == ref["id"] and act["void_seq"] == void.seq
        # it is no longer offered for refund
        rig.touch("back")
        rig.touch("go", "refund")
        assert [r.seq for r in rig.menu.model.refundables] == [donations[0].seq]
        rig.touch("back")

        rep = settled_report((e.seq, e.obj) for e in rig.ledger.iter_entries())
        assert rep["count"] == 1 and rep["voided"] == 1
        assert rep["total_yen"] == donations[0].data["amount_yen"]
        rig.touch("go", "z_confirm")
        rig.touch("z_run")
        term.close()

    portal = start_portal(db_url)
    try:
        cfg = rig.cfg
        state = sync_kiosk(cfg, portal.url, code=portal.issue_code(cfg.kiosk.id), writer=rig.services.writer)
        assert state.ok and state.pending == 0, state.last_error
        totals = portal.totals()
        assert totals["total_yen"] == donations[0].data["amount_yen"] and totals["count"] == 1, totals
        [rec] = reconciliation(portal.app.state.engine)
        assert rec["match"], rec
        assert rec["kiosk"]["total_yen"] == rec["portal"]["total_yen"] == donations[0].data["amount_yen"]
    finally:
        portal.stop()
    rig.ledger.close(checkpoint=False)
    assert verify_path(rig.cfg.ledger_path).ok


def test_a_refund_whose_answer_was_lost_is_finished_by_refund_again(tmp_path: Path):
    from tests.payment.fake_square import Fault

    rig = build_rig(tmp_path / "kiosk")
    with square_kiosk(rig, tmp_path) as (fake, term, svc):
        fake.plan = ["complete"]
        svc.reader_event(card(1))
        rig.services.refund, rig.services.refund_method = term.refund, term.method
        rig.open()
        rig.touch("go", "refund")
        rig.touch("refund_pick", 0)
        fake.fault("refund", Fault("drop_after"), *[Fault("drop")] * 500)  # refunded at Square, answer lost
        rig.touch("refund_run")
        assert rig.menu.page == "refund_done" and rig.menu.model.notice_level == "red"
        assert len(fake.refunds) == 1 and not [e for e in rig.ledger.iter_entries() if e.type == "void"]
        fake.faults.clear()
        rig.touch("refund_run")  # "Refund again": the same refund, and now the void
        assert rig.menu.model.notice_level == "green"
        assert len(fake.refunds) == 1
        assert len([e for e in rig.ledger.iter_entries() if e.type == "void"]) == 1
        outcomes = [d["outcome"] for d in rig.admin() if d["action"] == "refund"]
        assert outcomes[0].startswith("failed") and outcomes[1] == "ok"
        term.close()
    rig.ledger.close(checkpoint=False)


def test_after_a_rejected_refund_a_new_request_is_a_second_refundpayment_with_a_new_key(tmp_path: Path):
    """Square's REJECTED is final for that refund: the same key would only get it again. The new request from
    the menu is a second RefundPayment for the same payment and amount, under attempt 2's key."""
    rig = build_rig(tmp_path / "kiosk")
    with square_kiosk(rig, tmp_path) as (fake, term, svc):
        fake.plan = ["complete"]
        svc.reader_event(card(1))
        [don] = [e for e in rig.ledger.iter_entries() if e.type == "donation"]
        rig.services.refund, rig.services.refund_method = term.refund, term.method
        fake.refund_steps = ["REJECTED", "COMPLETED"]
        rig.open()
        rig.touch("go", "refund")
        rig.touch("refund_pick", 0)
        rig.touch("refund_run")
        assert rig.menu.model.notice_level == "red"
        rig.touch("refund_new")
        assert rig.menu.model.notice_level == "green"

        posts = [r for r in fake.requests if r == ("POST", "/v2/refunds")]
        assert len(posts) == 2  # no GetPaymentRefund needed: neither answer was PENDING
        k1, k2 = refund_key(rig.services.kiosk_id, don.seq), refund_key(rig.services.kiosk_id, don.seq, 2)
        assert list(fake.refunds) == [k1, k2]
        first, second = fake.refunds[k1], fake.refunds[k2]
        assert first["payment_id"] == second["payment_id"] == don.data["provider_ref"]
        assert first["amount_money"] == second["amount_money"] == {"amount": don.data["amount_yen"],
                                                                   "currency": "JPY"}
        assert (first["status"], second["status"]) == ("REJECTED", "COMPLETED")
        [void] = [e for e in rig.ledger.iter_entries() if e.type == "void"]
        assert second["id"] in void.data["reason"] and first["id"] not in void.data["reason"]
        term.close()
    rig.ledger.close(checkpoint=False)
    assert verify_path(rig.cfg.ledger_path).ok

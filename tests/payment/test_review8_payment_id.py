"""A COMPLETED checkout whose answer does not (yet) name its payment.

Square documents ``payment_ids`` as "a list of IDs for payments created by this TerminalCheckout", and its payment
lists as eventually consistent. The ledger's ``provider_ref`` is what a refund is made from and what the portal
matches Square's file by, so the adapter asks Square again for the payment id before it answers ``approved``; if
Square still names none, the gift is recorded all the same (the money is taken) as ``checkout:<id>``, and a refund
from the menu resolves that checkout to its payment first.

Real parts: the ledger, the donation service, the maintenance menu driven by touches, the Square adapter and SDK
against the fake Square API on loopback (which can leave ``payment_ids`` out of its first answers).
"""

from __future__ import annotations

from pathlib import Path

from tests.donation.conftest import card, entries_of
from tests.payment.test_square_refund import build_rig, square_kiosk


def test_a_payment_id_that_comes_late_is_the_one_recorded(tmp_path: Path) -> None:
    rig = build_rig(tmp_path / "kiosk")
    with square_kiosk(rig, tmp_path) as (fake, term, svc):
        fake.payment_ids_late = 2  # COMPLETED, and two answers that do not say which payment yet
        fake.plan = ["tap", "complete"]
        svc.reader_event(card(1))
        assert svc.state.name == "thanks", (svc.state.name, svc.state.error)
        [don] = entries_of(rig.ledger, "donation")
        co = fake.only()
        assert don.data["provider_ref"] == co.payment_ids[0]  # the payment Square's file lists, for the auditor
        assert [r["payment_id"] for r in term.journal.rows()] == [co.payment_ids[0]]
        assert fake.count_by_idem() == {co.idem: 1}


def _refund_from_menu(rig) -> None:  # noqa: ANN001
    rig.open()
    rig.touch("go", "refund")
    rig.touch("refund_pick", 0)
    assert rig.menu.page == "refund_confirm"
    rig.touch("refund_run")


def test_a_gift_recorded_under_its_checkout_is_refunded_from_the_menu(tmp_path: Path) -> None:
    rig = build_rig(tmp_path / "kiosk")
    with square_kiosk(rig, tmp_path) as (fake, term, svc):
        fake.payment_ids_late = 1_000  # Square names no payment while the kiosk waits for one
        fake.plan = ["complete"]
        start = term._clock.monotonic()
        svc.reader_event(card(1))
        assert svc.state.name == "thanks", (svc.state.name, svc.state.error)  # paid: thanked and recorded
        assert term._clock.monotonic() - start <= 12  # the donor was kept seconds, not minutes
        co = fake.only()
        [don] = entries_of(rig.ledger, "donation")
        assert don.data["provider_ref"] == f"checkout:{co.id}"

        rig.services.refund = term.refund
        rig.services.refund_method = term.method
        _refund_from_menu(rig)  # Square still names no payment: nothing is refunded, nothing voided
        assert fake.refunds == {} and not rig.ledger.view.voided
        assert rig.menu.page == "refund_done" and rig.menu.model.notice_level != "green"
        assert rig.menu.model.refund_again == "again"  # "Refund again" is offered: it is safe

        co.ids_hidden = 0  # Square now says which payment the checkout made
        rig.touch("refund_run")
        assert rig.menu.page == "refund_done" and rig.menu.model.notice_level == "green", rig.menu.model.notice
        [ref] = fake.refunds.values()
        assert ref["payment_id"] == co.payment_ids[0]
        assert ref["amount_money"] == {"amount": don.data["amount_yen"], "currency": "JPY"}
        [void] = [e for e in rig.ledger.iter_entries() if e.type == "void"]
        assert void.data["voids_seq"] == don.seq and ref["id"] in void.data["reason"]

"""A gift refunded after the day's Z report: the signed close-out still counts it.

Staff close the day (Z), then a donor comes back and staff refund a mistaken gift from the menu. The refund writes a
void; the Z's signed totals (and the close-out CSV the USB export hands to the city) still hold the money. The X page
said 「この日は日計済みです」 in green and the export said nothing: the nightly timer never closes a closed day
again, so the wrong totals stood. Real parts: the menu rig's real ledger, the real Z, refund and USB export; the payment
provider's refund call is the only fake (it answers COMPLETED, as tests/menu/test_menu_words.py does).
"""

from __future__ import annotations

import csv
import dataclasses

from kiosk.payment import RefundResult
from kiosk.staff.usb_export import export_day

from .conftest import Rig


def _close_then_refund(rig: Rig) -> None:
    rig.donate(1, "kodomo", 500, "square")
    rig.donate(2, "midori", 1000, "square")
    rig.services.refund = lambda ref, yen, key, reason: RefundResult("R3fUnDaFtErZ0000001", "COMPLETED")
    rig.services.refund_method = "square"
    rig.open()
    for action, *value in (("go", "z_confirm"), ("z_run",), ("go", "home"),
                           ("go", "refund"), ("refund_pick", 0), ("refund_run",), ("go", "home")):
        rig.menu.model.press(action, *value)
    assert rig.view().page == "home"
    assert sum(e.type == "void" for e in rig.ledger.iter_entries()) == 1


def test_the_x_page_asks_for_a_new_z_after_a_refund_of_a_closed_day(rig: Rig) -> None:
    # Without the nightly close-out ([closeout] auto = false) nothing closes the day again: a job for staff. With
    # it, the X page says the timer will (tests/menu/test_review11b_plain_days.py).
    ops = rig.services.ops
    rig.services.ops = dataclasses.replace(ops, closeout=ops.closeout.model_copy(update={"auto": False}))
    _close_then_refund(rig)
    rig.menu.model.press("go", "x_report")
    view = rig.view()
    assert view.notice_level == "yellow", f"a close-out that still counts a refunded gift shown as fine: {view.notice}"
    assert "返金" in view.notice and "日計（Z）をもう一度" in view.notice, view.notice
    rig.machine.language = "en"
    rig.menu.model.press("back")
    rig.menu.model.press("go", "x_report")
    assert "1 donation was refunded after the close-out" in rig.view().notice, rig.view().notice
    # After the new Z the page is green again: nothing left to do.
    rig.machine.language = "ja"
    for action, *value in (("back",), ("go", "z_confirm"), ("z_run",), ("z_force",), ("go", "home"),
                           ("go", "x_report")):
        rig.menu.model.press(action, *value)
    assert rig.view().notice_level == "green", rig.view().notice


def test_the_usb_export_says_the_csv_is_older_than_a_refund(rig: Rig) -> None:
    _close_then_refund(rig)
    led, cfg, day = rig.ledger, rig.cfg, rig.ledger.business_date()  # the rig's ledger runs on a fixed clock
    rig.services.export = lambda path: export_day(path, led.path, kiosk_id=cfg.kiosk.id, timezone=cfg.kiosk.timezone,
                                                  day=day, logs=None)
    rig.menu.model.press("go", "usb")
    rig.menu.model.press("usb_export", 0)
    assert rig.menu.page == "usb_done"
    text = "\n".join(rig.view().lines)
    assert "CSVに入っていません" in text and "日計（Z）をもう一度" in text, text
    folder = next(rig.stick.iterdir())
    rows = list(csv.reader((folder / f"closeout-{day}.csv").read_text("utf-8-sig").splitlines()))
    total = next(r for r in rows if r[1] == "total")
    assert total[5] == "1500"  # the CSV is the signed close-out, as it was: hence the note
    assert "after the close-out" in (folder / "MANIFEST.txt").read_text()

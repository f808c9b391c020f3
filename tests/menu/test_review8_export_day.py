"""Which day the USB export holds by default: the newest day with donations or a close-out, not today by the
clock (review 8).

Staff who close late run the Z report, then export just after midnight: the export held the new, empty day
(「2025-11-22 はまだ日計していません」, a CSV of zeros) instead of the day they had just closed. Real parts: the
rig's ledger on its fixed wall clock, the real Z report and export_day onto the rig's stick folder.
"""

from __future__ import annotations

import csv
from datetime import datetime
from zoneinfo import ZoneInfo

from kiosk.staff.usb_export import export_day

from .conftest import Rig

TZ = ZoneInfo("Asia/Tokyo")
DAY = "2025-11-21"  # the rig's fixed clock: 2025-11-21 13:40 JST


def _close_late(rig: Rig) -> None:
    rig.donate(1, "kodomo", 500)
    rig.donate(2, "midori", 1000)
    rig.open()
    for action, *value in (("go", "z_confirm"), ("z_run",), ("go", "home")):
        rig.menu.model.press(action, *value)
    assert rig.view().page == "home" and rig.ledger.business_date().isoformat() == DAY
    rig.wall.advance((10 * 3600 + 30 * 60) * 1000)  # 00:10 the next day
    assert rig.ledger.business_date().isoformat() == "2025-11-22"


def test_just_after_midnight_the_menu_exports_the_day_just_closed(rig: Rig) -> None:
    _close_late(rig)
    rig.menu.model.press("go", "usb")
    # The day as staff say it, not 2025-11-21 (review 11).
    assert any("集計（CSV）の日：11月21日(金)" in line for line in rig.view().lines), rig.view().lines
    rig.menu.model.press("usb_export", 0)
    assert rig.view().notice_level == "green", rig.view().notice
    text = "\n".join(rig.view().lines)
    assert f"closeout-{DAY}.csv" in text and "まだ" not in text, text  # the Z's CSV, not running totals
    folder = next(rig.stick.iterdir())
    rows = list(csv.reader((folder / f"closeout-{DAY}.csv").read_text("utf-8-sig").splitlines()))
    assert next(r for r in rows if r[1] == "total")[5] == "1500"
    assert rig.admin()[-1]["business_date"] == DAY


def test_export_day_defaults_to_the_newest_day_with_activity(rig: Rig) -> None:
    _close_late(rig)
    after_midnight = datetime(2025, 11, 22, 0, 10, tzinfo=TZ)
    r = export_day(rig.stick, rig.ledger.path, kiosk_id="test-kiosk-1", now=after_midnight)
    assert r.business_date == DAY and not r.running_totals and r.closeout["close_out_seq"], r.closeout
    # A day asked for by name is still that day (the CLI's --date), even an empty one.
    r = export_day(rig.stick, rig.ledger.path, kiosk_id="test-kiosk-1", now=after_midnight.replace(minute=11),
                   day=after_midnight.date())
    assert r.business_date == "2025-11-22" and r.running_totals

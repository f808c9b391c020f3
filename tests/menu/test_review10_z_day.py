"""Which day the Z report (日計) closes by default: the day staff mean, not today by the clock (review 10).

Staff who close late and open the Z report just after midnight got the new, empty day: they closed it (a signed
close-out of nothing), and the day they meant stayed open. Real parts: the rig's ledger on its fixed wall clock
(2025-11-21 13:40 JST), the real Z report, the nightly timer's own ``auto_close`` and the real ``kiosk closeout``.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from kiosk.cli import main
from kiosk.staff.closeout import auto_close, closed_dates, open_dates

from .conftest import Rig, build_rig

DAY = date(2025, 11, 21)
NEXT = date(2025, 11, 22)
TO_00_10 = (10 * 3600 + 30 * 60) * 1000  # from 13:40 to 00:10 the next day


def _late(rig: Rig) -> None:
    rig.donate(1, "kodomo", 500)
    rig.donate(2, "midori", 1000)
    rig.wall.advance(TO_00_10)
    assert rig.ledger.business_date() == NEXT


def _z_confirm(rig: Rig) -> list[str]:
    rig.open()
    rig.menu.model.press("go", "z_confirm")
    rig.render()
    v = rig.view()
    return [v.big or "", *v.lines, v.notice]


def test_just_after_midnight_the_z_report_closes_the_day_that_ended(rig: Rig) -> None:
    _late(rig)
    shown = _z_confirm(rig)
    assert rig.menu.model.z_day == DAY, shown
    assert shown[0] == "11月21日(金)（昨日）", shown  # the day, said plainly: not today
    assert any("今日ではありません" in s for s in shown), shown
    assert not [b for b in rig.view().buttons if b.action == "z_day"]  # today has no gift: nothing else to close
    rig.menu.model.press("z_run")
    assert rig.menu.page == "z_done", rig.view().notice
    closed = closed_dates(rig.ledger)
    assert set(closed) == {DAY}, closed  # no signed close-out of the empty new day
    z = rig.ledger.entry(closed[DAY]).data
    assert (z["count"], z["total_yen"], z["trigger"]) == (2, 1500, "staff")
    assert open_dates(rig.ledger) == []  # the nightly timer then finds nothing left to close


def test_a_gift_after_midnight_still_offers_the_day_before_first(rig: Rig) -> None:
    _late(rig)
    rig.donate(3, "kodomo", 300)  # 00:10: the new day has a gift now
    _z_confirm(rig)
    assert rig.menu.model.z_day == DAY
    days = [b.value for b in rig.view().buttons if b.action == "z_day"]
    assert days == [NEXT.isoformat()], days  # today may be chosen instead, by its date
    assert [b.label for b in rig.view().buttons if b.action == "z_day"] == ["11月22日(土)（今日）"]
    rig.menu.model.press("z_run")
    z = rig.ledger.entry(closed_dates(rig.ledger)[DAY]).data
    assert (z["count"], z["total_yen"]) == (2, 1500)  # the 00:10 gift belongs to the new day
    # Back to the Z report: the day before is closed, so today (with its gift) is offered now.
    rig.menu.model.press("go", "home")
    rig.menu.model.press("go", "z_confirm")
    assert rig.menu.model.z_day == NEXT and rig.view().big == "11月22日(土)"


def test_choosing_the_other_day_closes_that_day(rig: Rig) -> None:
    _late(rig)
    rig.donate(3, "kodomo", 300)
    _z_confirm(rig)
    rig.touch("z_day", NEXT.isoformat())
    assert rig.menu.model.z_day == NEXT and rig.view().big == "11月22日(土)（今日）"
    assert [b.value for b in rig.view().buttons if b.action == "z_day"] == [DAY.isoformat()]
    rig.touch("z_run")
    assert set(closed_dates(rig.ledger)) == {NEXT}
    assert open_dates(rig.ledger, date(2025, 11, 23)) == [DAY]  # the nightly timer still closes the day before


def test_after_the_timer_closed_the_day_nothing_empty_is_closed(rig: Rig) -> None:
    _late(rig)
    [timer] = auto_close(rig.services.writer)  # 00:05, kiosk-closeout.timer
    assert timer.data["business_date"] == DAY.isoformat()
    shown = _z_confirm(rig)
    assert rig.menu.model.z_day == DAY, shown
    assert rig.view().notice_level == "green" and "日計済み" in rig.view().notice, shown
    rig.menu.model.press("z_run")
    assert rig.menu.page == "z_again"  # says it is closed; an empty 2025-11-22 is not signed
    assert set(closed_dates(rig.ledger)) == {DAY}


def test_in_the_day_the_z_report_is_today_as_before(rig: Rig) -> None:
    rig.donate(1, "kodomo", 500)
    shown = _z_confirm(rig)
    assert rig.menu.model.z_day == DAY and shown[0] == "11月21日(金)", shown
    assert not [b for b in rig.view().buttons if b.action == "z_day"]


def test_english_says_the_day_too(rig: Rig) -> None:
    rig.machine.language = "en"
    _late(rig)
    shown = _z_confirm(rig)
    assert shown[0] == "Fri 21 Nov (yesterday)", shown
    assert any("This is not today" in s for s in shown), shown


def test_cli_without_a_date_and_without_the_timer_closes_the_day_that_ended(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    import time_machine

    r = build_rig(tmp_path)
    r.donate(1, "kodomo", 500)
    r.ledger.close(checkpoint=False)
    config = tmp_path / "site" / "kiosk.toml"
    config.write_text(config.read_text("utf-8") + "\n[closeout]\nauto = false\n", "utf-8")
    capsys.readouterr()
    with time_machine.travel(datetime(2025, 11, 22, 0, 10, tzinfo=ZoneInfo("Asia/Tokyo")), tick=False):
        assert main(["closeout", "--config", str(config), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["business_date"] == DAY.isoformat()
        assert main(["closeout", "--config", str(config)]) == 1  # closed: not the empty 2025-11-22 instead
        assert "2025-11-21" in capsys.readouterr().err
    from kiosk.ops.local_files import open_ledger

    led = open_ledger(r.cfg, boot=False)
    try:
        assert set(closed_dates(led)) == {DAY}
    finally:
        led.close(checkpoint=False)


def test_the_keyboard_starts_on_cancel_not_on_another_day(rig: Rig) -> None:
    _late(rig)
    rig.donate(3, "kodomo", 300)
    _z_confirm(rig)
    assert rig.view().all_buttons[rig.menu.model.focus].action == "back"
    rig.key_to("z_day")  # then Enter on the other date chooses it, writing nothing
    assert rig.menu.model.z_day == NEXT and closed_dates(rig.ledger) == {}

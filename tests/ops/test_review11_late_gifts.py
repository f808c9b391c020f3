"""Gifts after an early Z (review 11): staff close the day in the afternoon, the kiosk keeps taking gifts.

Before, the nightly `kiosk closeout` skipped every day that had a close-out, so the gifts after the afternoon Z
(and a refund of a gift it counted) were in no Z report: the day's signed totals, the USB CSV and the portal's
Z column stayed short for good. Now the timer writes a new, whole-day close-out for such a day, superseding the
afternoon one (``supersedes_seq``), as staff would with "close again": every gift is counted once, in the
newest Z of its day. Real parts: a real ledger, the real `kiosk closeout` the timer runs, at 00:05 by the wall
clock.
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine

from kiosk.cli import main
from kiosk.ledger import settled_report, verify_path
from kiosk.ledger.writer import InlineWriter
from kiosk.ops.local_files import open_ledger
from kiosk.staff.closeout import auto_close, closed_dates, open_dates, stale_dates, z_report

from .conftest import DAY1, DAY2, donate

TOKYO = ZoneInfo("Asia/Tokyo")
AT_0005_DAY2 = datetime(2025, 11, 22, 0, 5, tzinfo=TOKYO)


def settled(led, day):  # noqa: ANN001, ANN201
    return settled_report(((e.seq, e.obj) for e in led.iter_entries()), day)


def timer_run(site, capsys):  # noqa: ANN001, ANN201
    """`kiosk closeout --config …` at 00:05 on DAY2, as kiosk-closeout.timer runs it."""
    capsys.readouterr()
    with time_machine.travel(AT_0005_DAY2, tick=False):
        assert main(["closeout", "--config", str(site.config_path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_timer_closes_again_a_day_with_gifts_and_a_refund_after_an_afternoon_z(site, capsys):
    led, p, card = site.ledger, site.pepper, site.idms
    first = donate(led, p, card[0], "kodomo", 500, "sim", "a1")  # 13:40
    donate(led, p, card[1], "midori", 1000, "sim", "a2")
    staff_z = z_report(site.writer, DAY1, trigger="staff")  # staff close the day in the afternoon
    assert staff_z.data["count"] == 2 and staff_z.data["total_yen"] == 1500
    site.clock.advance(150 * 60_000)  # 16:10: the kiosk is still on, and takes two more gifts
    donate(led, p, card[2], "kodomo", 300, "suica-terminal", "a3")
    donate(led, p, card[0], "midori", 200, "sim", "a4")
    led.void(first, "refund at the desk")  # and a gift the afternoon Z counted is refunded
    led.close(checkpoint=False)

    written = timer_run(site, capsys)
    assert [w["business_date"] for w in written] == [DAY1.isoformat()], written
    [z] = written
    assert z["trigger"] == "timer" and z["supersedes_seq"] == staff_z.seq
    led = open_ledger(site.cfg, boot=False)
    try:
        # The new Z is the whole day, once: not only what came after, and not the afternoon's added to it.
        day = settled(led, DAY1)
        assert (z["count"], z["total_yen"]) == (day["count"], day["total_yen"]) == (3, 1500)
        assert z["projects"] == day["projects"] and z["methods"] == day["methods"]
        # The day's newest close-out is the one the reports and the portal read: every gift in exactly one.
        assert closed_dates(led)[DAY1] == z["seq"]
        assert stale_dates(led, DAY2) == [] and open_dates(led, DAY2) == []
        assert verify_path(led.path).ok
    finally:
        led.close(checkpoint=False)
    assert timer_run(site, capsys) == []  # the next run finds nothing left to do


def test_timer_leaves_a_closed_day_alone_when_nothing_changed_after_its_z(site, capsys):
    led, p, card = site.ledger, site.pepper, site.idms
    donate(led, p, card[0], "kodomo", 500, "sim", "b1")
    staff_z = z_report(site.writer, DAY1, trigger="staff")
    site.clock.advance(60_000)
    # A gift after the Z that was refunded the same day changes nothing the Z says.
    late = donate(led, p, card[1], "midori", 1000, "sim", "b2")
    led.void(late, "wrong amount")
    site.clock.advance(24 * 3600_000)  # and gifts of the next day do not make the closed day stale either
    donate(led, p, card[2], "kodomo", 700, "sim", "b3")
    assert stale_dates(led, DAY2) == []
    assert auto_close(InlineWriter(led), today=DAY2) == []
    assert closed_dates(led)[DAY1] == staff_z.seq


def test_a_day_older_than_the_look_back_is_not_closed_again(site):
    led, p, card = site.ledger, site.pepper, site.idms
    donate(led, p, card[0], "kodomo", 500, "sim", "c1")
    z_report(site.writer, DAY1, trigger="staff")
    donate(led, p, card[1], "kodomo", 500, "sim", "c2")
    assert stale_dates(led, DAY2) == [DAY1]
    assert stale_dates(led, DAY2, lookback_days=0) == []
    assert stale_dates(led, DAY1) == []  # today is not ended: the staff's own Z again, or tonight's run

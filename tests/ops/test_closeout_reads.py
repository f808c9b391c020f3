"""The close-out reports read their days, not the whole history (docs/ledger.md, "Reads that do not grow with the
history"), and say what reading every entry says.

The references below are the reports as they were first written: every entry of the ledger parsed and counted.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from contextlib import closing
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.cli import main
from kiosk.ledger import Ledger, Pepper, settled_report
from kiosk.ledger.clock import FixedClock
from kiosk.ledger.report import business_date, day_window_ms
from kiosk.ledger.store import report_query
from kiosk.ledger.writer import InlineWriter
from kiosk.staff import closeout
from kiosk.staff.closeout import closed_dates, open_dates, x_report, z_report

ZONES = ("Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/New_York", "Europe/London",
         "Australia/Lord_Howe")
START = date(2026, 3, 6)  # a week that holds the spring change of clocks in New York and London's is near


# --- the references: every entry read ---------------------------------------------------------------------
def everything(led: Ledger, stop: int | None = None) -> list[tuple[int, dict[str, Any]]]:
    return [(e.seq, e.obj) for e in led.iter_entries(stop=stop)]


def ref_closed(led: Ledger) -> dict[date, int]:
    return {date.fromisoformat(o["data"]["business_date"]): s for s, o in everything(led) if o["type"] == "close_out"}


def ref_x(led: Ledger, day: date) -> dict[str, Any]:
    rep = settled_report(everything(led), day)
    closed = ref_closed(led).get(day)
    after = 0 if closed is None else settled_report(
        [(s, o) for s, o in everything(led) if s > closed or o["type"] == "genesis"], day)["count"]
    return {**rep, "kind": "X", "closed_seq": closed, "after_close": after}


def ref_plan(led: Ledger, day: date, stop: int | None) -> tuple[int | None, dict[str, Any]]:
    got = everything(led, stop)
    previous = None
    for s, o in got:
        if o["type"] == "close_out" and date.fromisoformat(o["data"]["business_date"]) == day:
            previous = s
    return previous, settled_report(got, day)


def ref_open(led: Ledger, today: date, lookback: int) -> list[date]:
    """The ended days with gifts and no close-out within the look-back, and any older day of a gift written after
    the newest close-out of a day before the look-back (a clock far behind: kiosk/staff/closeout.py)."""
    tz = ZoneInfo(led.timezone)
    oldest = today - timedelta(days=lookback)
    closed = ref_closed(led)
    since = max((seq for d, seq in closed.items() if d < oldest), default=0)
    days: set[date] = set()
    for seq, o in everything(led):
        if o["type"] == "genesis":
            tz = ZoneInfo(o["data"]["timezone"])
        elif o["type"] == "donation":
            d = business_date(o["wall_ms"], tz)
            if oldest <= d < today or (d < oldest and seq > since):
                days.add(d)
    return sorted(days - closed.keys())


# --- ledgers ----------------------------------------------------------------------------------------------
def scratch() -> Path:
    # Each example writes a ledger (an fsync an entry): on tmpfs where there is one.
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="closeout-reads-", dir=base))


def local_ms(tz: str, day: date, second: int) -> int:
    """Wall time of ``second`` seconds after ``day``'s midnight in ``tz`` (across a change of clocks: the
    seconds are counted on from midnight, so the local time shifts and the date may not)."""
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    return int(start.timestamp() * 1000) + second * 1000


def gift(led: Ledger, pepper: Pepper, i: int, yen: int, project: str = "kodomo") -> int:
    intent = led.record_intent(project, yen, "sim", pepper.token(i.to_bytes(8, "big")), f"idem-{i}")
    return led.record_donation(intent.seq, f"ref-{i}", yen // 100).seq


# Midnight, the seconds just before and after it, and the rest of a day.
SECONDS = st.one_of(st.sampled_from([0, 1, 86_399, 86_400 - 3600, 3600]), st.integers(0, 86_399))
EVENTS = st.lists(st.one_of(
    st.tuples(st.just("gift"), st.integers(0, 6), SECONDS, st.sampled_from([100, 500, 1000])),
    st.tuples(st.just("void"), st.integers(0, 1000)),
    st.tuples(st.just("z"), st.integers(0, 6)),
    st.tuples(st.just("config"),),
    st.tuples(st.just("clock"), st.integers(0, 6), SECONDS),
), min_size=1, max_size=24)


def build(work: Path, tz: str, events: list[tuple[Any, ...]]) -> tuple[Ledger, FixedClock]:
    clock = FixedClock(wall_ms=local_ms(tz, START, 9 * 3600))
    led = Ledger.open(work / "ledger.db", Ed25519PrivateKey.generate(), "k-reads", timezone=tz, clock=clock)
    pepper = Pepper.create(work / "pepper.json")
    gifts: list[int] = []
    for i, ev in enumerate(events):
        if ev[0] == "gift":
            clock.wall = local_ms(tz, START + timedelta(days=ev[1]), ev[2])
            gifts.append(gift(led, pepper, i, ev[3]))
        elif ev[0] == "void" and gifts:
            target = gifts[ev[1] % len(gifts)]
            if target not in led.st.voided:
                led.void(target, "staff correction")
        elif ev[0] == "z":
            z_report(InlineWriter(led), START + timedelta(days=ev[1]), force=True)
        elif ev[0] == "config":
            led.append("config_change", {"version": i, "digest": "ab" * 32, "source": "portal"})
        elif ev[0] == "clock":  # the kiosk's clock now (what "today" is)
            clock.wall = local_ms(tz, START + timedelta(days=ev[1]), ev[2])
    return led, clock


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tz=st.sampled_from(ZONES), events=EVENTS)
def test_the_reports_of_a_day_say_what_reading_every_entry_says(tz: str, events: list[tuple[Any, ...]]) -> None:
    work = scratch()
    led, _ = build(work, tz, events)
    try:
        assert closed_dates(led) == ref_closed(led)
        for offset in range(-2, 9):
            day = START + timedelta(days=offset)
            assert x_report(led, day) == ref_x(led, day)
            for stop in (None, max(1, led.size // 2)):
                assert closeout._plan(led, day, stop) == ref_plan(led, day, stop)
            for lookback in (1, 3, 31):
                assert open_dates(led, day, lookback) == ref_open(led, day, lookback)
        last = led.last_of_type("config_change")
        configs = [s for s, o in everything(led) if o["type"] == "config_change"]
        assert (last.seq if last else None) == (configs[-1] if configs else None)
    finally:
        led.close(checkpoint=False)


def test_the_cli_report_of_a_day_is_the_whole_ledgers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = [("gift", d, s, 500) for d in range(3) for s in (0, 43_200, 86_399)] + [("void", 1), ("z", 1)]
    led, _ = build(tmp_path, "Pacific/Kiritimati", events)
    path = led.path
    everyone = everything(led)
    led.close(checkpoint=False)
    for offset in range(-1, 4):
        day = START + timedelta(days=offset)
        capsys.readouterr()
        assert main(["ledger", "report", str(path), "--date", day.isoformat(), "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == settled_report(everyone, day)


def test_gifts_after_the_z_are_counted_in_the_kiosks_own_time_zone(tmp_path: Path) -> None:
    # 23:30 in New York is 13:30 the next day in Tokyo: counted in Tokyo's zone (as the X report once did for
    # the gifts after a Z, having left the genesis out), the gift after the Z fell on another day.
    led, clock = build(tmp_path, "America/New_York", [("gift", 0, 3600, 500), ("z", 0)])
    clock.wall = local_ms("America/New_York", START, 23 * 3600 + 1800)
    gift(led, Pepper.create(tmp_path / "pepper2.json"), 99, 1000)
    rep = x_report(led, START)
    assert rep["closed_seq"] is not None and rep["after_close"] == 1 and rep["count"] == 2
    led.close(checkpoint=False)


def test_the_day_window_holds_every_zones_day() -> None:
    day = date(2026, 3, 8)
    lo, hi = day_window_ms(day, day)
    for tz in ZONES + ("Etc/GMT+12", "Etc/GMT-14"):
        first = local_ms(tz, day, 0)
        last = local_ms(tz, day + timedelta(days=1), 0) - 1
        assert lo <= first and last < hi, tz
        assert business_date(first, ZoneInfo(tz)) == day == business_date(last, ZoneInfo(tz))
    assert day_window_ms(date.min, date.max)[0] < 0 < day_window_ms(date.min, date.max)[1]


def plan_of(conn: sqlite3.Connection, sql: str, args: list[Any]) -> str:
    return " | ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args))


def walks(plan: str) -> bool:
    """Whether a plan reads entries by walking the table: all of it, or every seq below the bound."""
    return "SCAN entries" in plan.replace("SCAN entries USING", "") or "(rowid<?)" in plan


def test_the_reports_and_the_start_read_through_their_indexes(tmp_path: Path) -> None:
    events = [("gift", d % 7, 3600 * (d % 20), 500) for d in range(40)] + [("void", 3), ("z", 2), ("config",)]
    led, _ = build(tmp_path, "Asia/Tokyo", events)
    path = led.path
    led.close(checkpoint=False)
    statements = {
        "report": report_query(START, START, 50),
        "config": ("SELECT seq FROM entries WHERE type = 'config_change' ORDER BY seq DESC LIMIT 1", []),
        "spent": ("SELECT points, amount_yen, body FROM entries WHERE type = 'points_spent' AND seq <= ?", [50]),
    }
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("ANALYZE")
        plans = {name: plan_of(conn, sql, args) for name, (sql, args) in statements.items()}
        assert "entries_donations_wall" in plans["report"] and plans["report"].count("entries_rare_kinds") == 2
        assert "entries_rare_kinds" in plans["config"] and "entries_rare_kinds" in plans["spent"]
        for name, plan in plans.items():
            assert not walks(plan), (name, plan)
    # What the same statements do on a ledger without the indexes (schema 2): walk every entry.
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DROP INDEX entries_donations_wall")
        conn.execute("DROP INDEX entries_rare_kinds")
    with closing(sqlite3.connect(path)) as conn:
        for name, (sql, args) in statements.items():
            assert walks(plan_of(conn, sql, args)), name


def test_a_ledger_from_before_the_indexes_gets_them_at_its_next_open(tmp_path: Path) -> None:
    led, _ = build(tmp_path, "Asia/Tokyo", [("gift", 0, 3600, 500), ("z", 0), ("config",)])
    path, key = led.path, led._sk  # noqa: SLF001 - the same kiosk opens its ledger again
    before = x_report(led, START)
    led.close(checkpoint=False)
    with closing(sqlite3.connect(path)) as conn, conn:  # as schema 2 left it
        conn.execute("DROP INDEX entries_donations_wall")
        conn.execute("DROP INDEX entries_rare_kinds")
        conn.execute("PRAGMA user_version=2")
    led = Ledger.open(path, key, "k-reads", boot=False)
    with closing(sqlite3.connect(path)) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"entries_donations_wall", "entries_rare_kinds"} <= names
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    assert x_report(led, START) == before
    led.close(checkpoint=False)

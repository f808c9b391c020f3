"""The portal reckons every day and time in Japan's zone, set in one place (``server_sync.policy.TZ``): a pool's
days, a project's dates, the reconciliation's business days, the public days and the pages' times. Five modules
each kept their own ``ZoneInfo("Asia/Tokyo")``, free to drift apart; the source check below fails on a new one.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import time_machine

import server_sync
from server_sync import pages, points_ui, policy, pools

JAPAN = ZoneInfo("Asia/Tokyo")  # the truth the test holds the portal to, not the portal's own constant


def _zones_set(path: Path) -> list[int]:
    """Lines of ``path`` that make a time zone from a constant: ``ZoneInfo("…")``, ``timezone(timedelta(…))``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        first = node.args[0] if node.args else None
        if (name == "ZoneInfo" and isinstance(first, ast.Constant)) or (
                name == "timezone" and isinstance(first, ast.Call) and getattr(first.func, "id", "") == "timedelta"):
            lines.append(node.lineno)
    return lines


def test_the_portal_sets_its_time_zone_in_one_place():
    root = Path(server_sync.__file__).parent
    found = {str(p.relative_to(root)): n for p in sorted(root.rglob("*.py")) if (n := _zones_set(p))}
    assert list(found) == ["policy.py"] and len(found["policy.py"]) == 1, found
    assert policy.TZ.key == "Asia/Tokyo"


def test_midnight_in_japan_is_the_same_day_for_every_part(server_zone):
    """At 00:00:30 on 1 December in Japan (15:00 on 30 November in UTC, the server's own zone here) the pools,
    the points months and the pages all say 1 December; a moment before midnight is still 30 November."""
    server_zone("UTC")
    midnight = dt.datetime(2026, 12, 1, tzinfo=JAPAN)
    ms = int(midnight.timestamp() * 1000)
    with time_machine.travel(midnight + dt.timedelta(seconds=30), tick=False):
        assert pools.japan_today() == dt.date(2026, 12, 1)
    assert policy._day(ms) == "2026-12-01" and policy._day(ms - 1) == "2026-11-30"
    assert points_ui._month(ms) == "2026-12" and points_ui._month(ms - 1) == "2026-11"
    assert points_ui.month_starts(ms - 1, ms) == [("2026-11", ms - 30 * 86_400_000), ("2026-12", ms)]
    assert pages.day(ms) == "2026年12月1日" and pages.day(ms - 1) == "2026年11月30日"
    assert pages.when(ms) == "2026年12月1日 0:00" and pages.iso(ms) == "2026-12-01T00:00:00+09:00"

"""The staff points report (server_sync/points_ui.py ``report``) sums the points issued for giving a month at a
time in the database, on SQLite and PostgreSQL, and says what reading every donation of the history said:
the month boundaries are Japan's months, exactly, whatever the server's own time zone.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server_sync import points_ui, totals
from server_sync.db import create_schema, entries, make_engine

ZONES = ("Asia/Tokyo", "UTC", "America/Sao_Paulo", "Australia/Adelaide", "Asia/Kathmandu", "America/New_York")


# Each example sets the zone it draws; the fixture only puts the process's zone back at the end.
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(ZONES), t=st.integers(946_684_800_000, 2_209_000_000_000),
       span=st.integers(0, 3 * 366 * 86_400_000))
def test_month_starts_place_every_time_in_its_month_in_japan(server_zone, name: str, t: int, span: int) -> None:  # noqa: ANN001
    server_zone(name)
    lo, hi = t - span // 2, t + span - span // 2
    starts = points_ui.month_starts(lo, hi)
    assert starts[0][1] <= lo and all(a[1] < b[1] for a, b in zip(starts, starts[1:], strict=False))
    label = [m for m, s in starts if s <= t][-1]
    assert label == points_ui._month(t)
    assert label == dt.datetime.fromtimestamp(t / 1000, ZoneInfo("Asia/Tokyo")).strftime("%Y-%m")


def _rows() -> list[dict[str, Any]]:
    """Gifts over three months (voided, held and pointless ones among them), volunteer points and exchanges."""
    base = {"entry_hash": bytes(32), "signature": bytes(64), "boot": 1, "mono_ms": 5, "clock_synced": True,
            "time_fixed": True, "voided": False, "received_ms": 1_796_000_000_000, "quarantine": None,
            "project": "kodomo", "amount_yen": 500, "points": 5, "body": b"{}", "type": "donation"}
    out = []
    t0 = 1_798_000_000_000  # 2026-12-23
    for s in range(1, 301):
        t = t0 + s * 5 * 3_600_000  # every five hours: into February 2027
        row = {**base, "kiosk_id": f"pts-{s % 2}", "seq": s, "wall_ms": t, "time_ms": t, "points": s % 7}
        if s % 11 == 0:
            row["voided"] = True
        if s % 13 == 0:
            row["quarantine"] = "held"
        if s % 17 == 0:
            row |= {"type": "points_grant", "project": None, "amount_yen": None,
                    "body": json.dumps({"data": {"activity": "park-cleanup" if s % 2 else "reading"}}).encode()}
        if s % 19 == 0:
            row |= {"type": "points_spent", "amount_yen": 10 * (s % 7),
                    "body": json.dumps({"data": {"pool": "midori-bank"}}).encode()}
        out.append(row)
    return out


def _expected(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the report said when it read every row: the old loop, written out."""
    issued: dict[tuple[str, str], int] = {}
    for r in rows:
        if r["quarantine"] is not None or not r["points"] or r["type"] == "points_spent":
            continue
        if r["type"] == "donation" and r["voided"]:
            continue
        what = "giving" if r["type"] == "donation" else "volunteer:" + json.loads(r["body"])["data"]["activity"]
        key = (points_ui._month(r["time_ms"]), what)
        issued[key] = issued.get(key, 0) + r["points"]
    return [{"month": m, "what": w, "points": p} for (m, w), p in sorted(issued.items())]


@pytest.mark.parametrize("name", ["Asia/Tokyo", "UTC"])
def test_the_report_sums_a_month_at_a_time_what_every_row_says(db_url: str, server_zone, name: str) -> None:  # noqa: ANN001
    server_zone(name)
    eng = make_engine(db_url)
    try:
        create_schema(eng)
        rows = _rows()
        with eng.begin() as conn:
            conn.execute(entries.insert(), rows)
        totals.recount_all(eng)
        got = points_ui.report(eng)
        assert got["issued"] == _expected(rows)
        assert len({i["month"] for i in got["issued"] if i["what"] == "giving"}) == 3  # Dec, Jan, Feb
        spent = [r for r in rows if r["type"] == "points_spent" and r["quarantine"] is None]
        assert sum(x["points"] for x in got["exchanged"]) == sum(r["points"] for r in spent)
        assert sum(x["yen"] for x in got["exchanged"]) == sum(r["amount_yen"] for r in spent)
    finally:
        eng.dispose()

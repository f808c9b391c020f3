"""The public JSON gives no more about a recent gift than the public pages show (docs/privacy.md, "What the
public pages and the public API show"): its day in Japan, its amount and its project. Never the kiosk and
never the time of day, which together would tie a gift to whoever stood at that kiosk at that moment.

A real kiosk ledger syncs over loopback HTTP to a portal (SQLite, and PostgreSQL with KIOSK_TEST_PG_URL);
its gifts are made at 08:03 in Japan, which is still the day before in UTC, so a day taken in the wrong time
zone shows too.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
from sqlalchemy import select
from sync_helpers import PROJECTS, enrolled, make_rig

from kiosk.ledger.clock import FixedClock
from server_sync.configstore import publish
from server_sync.db import entries

JST = ZoneInfo("Asia/Tokyo")
PUBLIC_GIFT = {"date", "amount_yen", "project"}
# Yesterday in Japan, 08:03:27.417: 23:03 the day before in UTC.
_yesterday = datetime.now(JST).date() - timedelta(days=1)
MOMENT = datetime(_yesterday.year, _yesterday.month, _yesterday.day, 8, 3, 27, 417_000, tzinfo=JST)
# One gift as a public page lists it (server_sync/templates/_macros.html, ``recent``).
_ITEM = re.compile(r'<li><span class="day">([^<]*)</span>(?: · ([^<]*))? · <strong>([^<]*)</strong></li>')


def _ja_day(iso: str) -> str:
    """A JSON day ("2026-12-06") as the Japanese page shows it (「2026年12月6日」)."""
    y, m, d = (int(x) for x in iso.split("-"))
    return f"{y}年{m}月{d}日"


def _page_items(text: str) -> list[tuple[str, str | None, str]]:
    block = text.split('id="recent"', 1)[1].split("</ul>", 1)[0]
    return [(d, html.unescape(p) if p else None, a) for d, p, a in _ITEM.findall(block)]


def _gift_times(engine: Any, kiosk_id: str) -> list[int]:
    with engine.connect() as conn:
        return [t for (t,) in conn.execute(select(entries.c.time_ms).where(entries.c.kiosk_id == kiosk_id,
                                                                          entries.c.type == "donation"))]


def _assert_nothing_finer_than_a_day(answer: requests.Response, kiosk_id: str, times_ms: list[int]) -> None:
    recent = answer.json()["recent"]
    assert recent
    for gift in recent:
        assert set(gift) == PUBLIC_GIFT, gift  # no kiosk_id, no time_ms, nothing else
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", gift["date"]), gift  # a day: no hour, minute or second
    # Nowhere in the answer: the kiosk, a gift's millisecond or second, or its time of day.
    assert kiosk_id not in answer.text
    for t in times_ms:
        assert str(t) not in answer.text and str(t // 1000) not in answer.text
        clock = datetime.fromtimestamp(t / 1000, JST)
        assert clock.strftime("%H:%M") not in answer.text and clock.isoformat()[:16] not in answer.text


def test_public_project_and_area_json_give_only_what_their_pages_show(portal: Any, tmp_path: Path) -> None:
    engine = portal.app.state.engine
    # Two projects in one area, so its page names each gift's project.
    publish(engine, {"projects": [{**p, "area": "children"} if p["id"] == "midori" else p for p in PROJECTS]})
    rig = make_rig(tmp_path, "lobby-kiosk", clock=FixedClock(wall_ms=int(MOMENT.timestamp() * 1000)))
    try:
        rig.donate(9)
        assert enrolled(rig, portal).sync_once().ok
    finally:
        rig.ledger.close(checkpoint=False)
    times = _gift_times(engine, rig.kiosk_id)
    assert len(times) == 9
    day = MOMENT.date().isoformat()
    assert {datetime.fromtimestamp(t / 1000, JST).date().isoformat() for t in times} == {day}
    assert datetime.fromtimestamp(times[0] / 1000, ZoneInfo("UTC")).date().isoformat() != day  # the test's point

    # One project: the JSON carries each gift's day, amount and project, and the page shows the same gifts.
    answer = requests.get(portal.url + "/api/v1/projects/kodomo", timeout=10)
    assert answer.status_code == 200
    _assert_nothing_finer_than_a_day(answer, rig.kiosk_id, times)
    recent = answer.json()["recent"]
    assert all(g["project"] == "kodomo" and g["date"] == day for g in recent)
    page = requests.get(portal.url + "/p/kodomo", timeout=10).text
    shown = _page_items(page)
    assert shown and len(shown) <= len(recent)
    assert shown == [(_ja_day(g["date"]), None, f"¥{g['amount_yen']:,}") for g in recent[:len(shown)]]
    assert rig.kiosk_id not in page  # what the JSON now matches: the page never showed the kiosk

    # One policy area, several projects: the page names each gift's project, the JSON gives its id.
    area = requests.get(portal.url + "/api/v1/areas/children", timeout=10)
    assert area.status_code == 200
    _assert_nothing_finer_than_a_day(area, rig.kiosk_id, times)
    gifts = area.json()["recent"]
    assert {g["project"] for g in gifts} == {"kodomo", "midori"} and all(g["date"] == day for g in gifts)
    titles = {p["id"]: p["title"] for p in PROJECTS}
    shown = _page_items(requests.get(portal.url + "/a/children", timeout=10).text)
    assert shown and len(shown) <= len(gifts)
    assert shown == [(_ja_day(g["date"]), titles[g["project"]], f"¥{g['amount_yen']:,}") for g in gifts[:len(shown)]]


def test_openapi_describes_a_public_gift_as_day_amount_and_project(portal: Any) -> None:
    doc = requests.get(portal.url + "/openapi.json", timeout=10).json()
    schemas = doc["components"]["schemas"]

    def model(path: str) -> dict[str, Any]:
        ref = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        found: dict[str, Any] = schemas[ref.rsplit("/", 1)[1]]
        return found

    for path in ("/api/v1/projects/{project_id}", "/api/v1/areas/{area}"):
        item = model(path)["properties"]["recent"]["items"]["$ref"].rsplit("/", 1)[1]
        assert set(schemas[item]["properties"]) == PUBLIC_GIFT, path


"""The portal's own clock on the staff pages (issue #19, "Clocks"): each donation of a kiosk-day shows the
kiosk's time and the portal's receive time ("受信"), marked where they differ by more than 10 minutes, and a
day whose entries the kiosk dated with an unsynchronised clock says "時計未同期の日" on the day's page and in
the month's list. Real portal on loopback (SQLite and PostgreSQL), the kiosk's real ledger and uploader, a
staff sign-in over HTTP, and the day's page in headless Chromium.
"""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import requests
from sync_helpers import PASSWORD, PROJECTS, enrolled, needs_chromium, staff_page

from kiosk.ledger.writer import InlineWriter
from kiosk.staff.closeout import z_report
from server_sync import reconcile
from server_sync.configstore import publish
from server_sync.staff import add_user

TOKYO = ZoneInfo("Asia/Tokyo")
DAY = 86_400_000


def _login(url: str) -> requests.Session:
    s = requests.Session()
    assert s.post(url + "/staff/login", data={"username": "clerk", "password": PASSWORD}, timeout=10).status_code == 200
    return s


def _hm(ms: int) -> str:
    t = datetime.fromtimestamp(ms / 1000, TOKYO)
    return f"{t.year}年{t.month}月{t.day}日 {t.hour}:{t.minute:02d}"  # as the Japanese staff pages show it


def _day_with(rig, portal, *, synced: bool, behind_ms: int):  # noqa: ANN001, ANN202
    """Three gifts and a Z report written with the kiosk clock ``behind_ms`` behind and (un)synced, then synced
    to the portal: (the donation entries, the close_out entry, the business date, the portal's time)."""
    publish(portal.app.state.engine, {"projects": PROJECTS})
    add_user(portal.app.state.engine, "clerk", PASSWORD)
    rig.clock.is_synced = synced
    rig.clock.wall = int(time.time() * 1000) - behind_ms
    gifts = rig.donate(3)
    z = z_report(InlineWriter(rig.ledger))
    assert enrolled(rig, portal).sync_once().ok
    return gifts, z, rig.ledger.business_date(), int(time.time() * 1000)


def test_an_unsynced_day_is_marked_and_each_gift_shows_the_portals_receive_time(portal, rig):
    gifts, z, day, now = _day_with(rig, portal, synced=False, behind_ms=40 * DAY)
    assert z.data["clock_unsynced"] == 3  # the kiosk's own Z report says so (tests/menu: the screen)
    r = reconcile.kiosk_day(portal.app.state.engine, rig.kiosk_id, day)
    assert r is not None and r["clock_unsynced"] == 4 and r["time_gaps"] == 3  # three gifts and the Z entry
    for row, g in zip(r["rows"], gifts, strict=True):
        assert row["seq"] == g.seq and row["wall_ms"] == g.obj["wall_ms"] and not row["clock_synced"]
        assert abs(row["received_ms"] - now) < 120_000 and row["time_gap"]
    s = _login(portal.url)
    page = s.get(f"{portal.url}/staff/reconciliation/{rig.kiosk_id}/{day}", timeout=10).text
    assert "時計未同期の日" in page and "4 件が端末自身の時計（未同期）で記録されています" in page
    assert "受信（ポータルの時刻）" in page and page.count('class="warn time-gap"') == 3
    for row in r["rows"]:
        assert _hm(row["received_ms"]) in page and _hm(row["wall_ms"]) in page
    month = s.get(f"{portal.url}/staff/reconciliation?month={day:%Y-%m}", timeout=10).text
    assert "時計未同期の日" in month


def test_a_synced_day_on_time_has_no_mark(portal, rig):
    gifts, z, day, now = _day_with(rig, portal, synced=True, behind_ms=5_000)
    assert "clock_unsynced" not in z.data
    r = reconcile.kiosk_day(portal.app.state.engine, rig.kiosk_id, day)
    assert r is not None and r["clock_unsynced"] == 0 and r["time_gaps"] == 0
    assert all(row["clock_synced"] and not row["time_gap"] for row in r["rows"])
    s = _login(portal.url)
    page = s.get(f"{portal.url}/staff/reconciliation/{rig.kiosk_id}/{day}", timeout=10).text
    assert "受信（ポータルの時刻）" in page  # the column is always there
    assert "時計未同期" not in page and 'class="warn time-gap"' not in page
    assert "時計未同期の日" not in s.get(f"{portal.url}/staff/reconciliation?month={day:%Y-%m}", timeout=10).text


def test_a_synced_kiosk_that_uploads_late_is_marked_but_not_unsynced(portal, rig):
    """Offline for hours: the clock was right, so no 時計未同期, but kiosk time and receipt are far apart."""
    _, _, day, _ = _day_with(rig, portal, synced=True, behind_ms=3 * 3_600_000)
    r = reconcile.kiosk_day(portal.app.state.engine, rig.kiosk_id, day)
    assert r is not None and r["clock_unsynced"] == 0 and r["time_gaps"] == 3




@needs_chromium
def test_staff_see_the_receive_time_and_the_unsynced_day_in_chromium(portal, rig, browser):  # noqa: ANN001
    gifts, _, day, _ = _day_with(rig, portal, synced=False, behind_ms=2 * DAY)
    page = staff_page(browser, portal.url, "clerk", size=(1000, 900))
    page.goto(f"{portal.url}/staff/reconciliation/{rig.kiosk_id}/{day}")
    assert "時計未同期の日" in page.locator("#clock-unsynced").inner_text()
    headers = page.locator("#donations tr").first.inner_text()
    assert "時刻 (端末)" in headers and "受信（ポータルの時刻）" in headers
    row = page.locator(f"#donations tr[data-seq='{gifts[0].seq}']")
    assert row.locator("td.kiosk-time").inner_text().startswith(_hm(gifts[0].obj["wall_ms"]))
    assert "時計未同期" in row.locator("td.kiosk-time").inner_text()
    mark = row.locator("td.received .time-gap")
    assert mark.is_visible() and "10分" in mark.get_attribute("title")
    assert page.locator("#time-gaps").is_visible()

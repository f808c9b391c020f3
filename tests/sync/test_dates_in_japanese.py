"""Dates on the portal's pages as people read them, in Japan time: 「2026年12月7日 5:06」 on the Japanese pages,
"7 Dec 2026, 05:06" on the English ones, and a day alone as 「2026年12月7日」 / "7 Dec 2026" (server_sync/pages.py
``when`` and ``day``). Machine-readable outputs keep ISO 8601: the ``datetime`` of each ``<time>``, the donations
CSV and the public JSON.

A real portal on loopback (SQLite), a kiosk's real ledger synced to it, and the receipt page, the my page and a
staff page in headless Chromium.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import requests
from sync_helpers import PASSWORD, PROJECTS, enrolled, fake_idm, make_rig, needs_chromium, staff_page, staff_session

from kiosk.ledger import keys
from kiosk.ledger.clock import FixedClock
from server_sync.configstore import publish
from server_sync.staff import add_user
from server_sync.wire import mypage as W
from server_sync.wire.receipt import receipt_code

pytestmark = needs_chromium  # the browser fixture: tests/sync/conftest.py

JST = ZoneInfo("Asia/Tokyo")
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
# Yesterday in Japan at 05:06 (20:06 the day before in UTC): an hour below ten and a minute below ten.
_yesterday = datetime.now(JST).date() - timedelta(days=1)
MOMENT = datetime(_yesterday.year, _yesterday.month, _yesterday.day, 5, 6, tzinfo=JST)
ENGINEER = re.compile(r"\d{4}-\d{2}-\d{2}")  # the old style, which no visible date may use


def _ja(t: datetime) -> str:
    return f"{t.year}年{t.month}月{t.day}日 {t.hour}:{t.minute:02d}"


def _en(t: datetime) -> str:
    return f"{t.day} {MONTHS[t.month - 1]} {t.year}, {t.hour:02d}:{t.minute:02d}"


def _ja_day(t: Any) -> str:
    return f"{t.year}年{t.month}月{t.day}日"


def _en_day(t: Any) -> str:
    return f"{t.day} {MONTHS[t.month - 1]} {t.year}"


def _local(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, JST)


def _gifts(portal: Any, tmp_path: Any, n: int = 3) -> tuple[Any, list[Any]]:
    """``n`` gifts of card 1 from a kiosk whose clock says MOMENT (synchronised), synced to the portal."""
    publish(portal.app.state.engine, {"projects": PROJECTS})
    rig = make_rig(tmp_path, "dates-kiosk", clock=FixedClock(wall_ms=int(MOMENT.timestamp() * 1000)))
    gifts = rig.donate(n, card=1)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal, pepper=rig.pepper).sync_once().ok
    return rig, gifts


def _check(page: Any, url: str) -> str:
    page.goto("about:blank")  # the same URL again would be a same-document (fragment) navigation: no reload
    page.goto(url)
    page.wait_for_selector("#check[data-result]", timeout=15_000)
    return str(page.locator("#check").get_attribute("data-result"))


def test_the_receipt_page_shows_the_time_in_japanese_and_in_english_in_chromium(portal, tmp_path, browser):
    rig, gifts = _gifts(portal, tmp_path)
    try:
        gift, kid = gifts[1], rig.ledger.key_id
        t = _local(gift.obj["wall_ms"])
        assert (t.date(), t.hour, t.minute) == (MOMENT.date(), 5, 6)
        code = receipt_code(gift)
        # What the portal writes, before any script: the Japanese words, ISO for machines.
        html = requests.get(f"{portal.url}/r/{code}", timeout=10).text
        assert f'<time id="time" datetime="{t.isoformat(timespec="seconds")}">{_ja(t)}</time>' in html

        page = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP")
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # Checked in the browser: the script shows the signed body's time, in the page's words too.
        assert _check(page, f"{portal.url}/r/{code}#k={kid}") == "ok"
        assert page.locator("#time").inner_text() == _ja(t)  # e.g. 2026年12月6日 5:06
        assert page.locator("#time").get_attribute("datetime") == t.isoformat(timespec="seconds")
        assert not ENGINEER.search(page.locator("#facts").inner_text())

        assert _check(page, f"{portal.url}/r/{code}?lang=en#k={kid}") == "ok"
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.locator("#time").inner_text() == _en(t)  # e.g. 6 Dec 2026, 05:06
        assert page.locator("#time").get_attribute("datetime") == t.isoformat(timespec="seconds")
        assert not ENGINEER.search(page.locator("#facts").inner_text())
        assert errors == []
    finally:
        rig.ledger.close(checkpoint=False)


def test_my_page_lists_each_gift_with_a_japanese_or_english_date_in_chromium(portal, tmp_path, browser):
    rig, gifts = _gifts(portal, tmp_path)
    try:
        # The QR is shown on the same kiosk right after: its expiry is in the kiosk's clock (corrected by the portal).
        token = rig.pepper.card_token(fake_idm(1))
        request = W.make_request(keys.load_private(rig.cfg.private_key_path), rig.kiosk_id, token.all_hexes,
                                 rig.clock.wall_ms(), 180_000)
    finally:
        rig.ledger.close(checkpoint=False)
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP")
    page.goto(f"{portal.url}/me/new#{request}")
    page.wait_for_url(re.compile(r"/me/[A-Za-z0-9_-]{43}$"))
    times = sorted({_local(g.obj["wall_ms"]) for g in gifts}, reverse=True)
    items = page.locator("#history li")
    assert items.count() == len(gifts)
    shown = [items.nth(i).inner_text() for i in range(items.count())]
    assert all(s.startswith(_ja(MOMENT) + " · ") for s in shown), shown  # the gifts are 700 ms apart
    assert not ENGINEER.search(page.locator("#history").inner_text())
    stamps = page.locator("#history li time")
    assert {stamps.nth(i).get_attribute("datetime") for i in range(stamps.count())} \
        == {t.isoformat(timespec="seconds") for t in times}

    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    shown = [items.nth(i).inner_text() for i in range(items.count())]
    assert all(s.startswith(_en(MOMENT) + " · ") for s in shown), shown
    assert not ENGINEER.search(page.locator("#history").inner_text())


def test_a_staff_page_shows_japanese_dates_and_the_csv_keeps_iso_in_chromium(portal, tmp_path, browser):
    rig, gifts = _gifts(portal, tmp_path)
    try:
        day = rig.ledger.business_date()
    finally:
        rig.ledger.close(checkpoint=False)
    add_user(portal.app.state.engine, "clerk", PASSWORD)
    page = staff_page(browser, portal.url, "clerk", size=(1000, 900))
    page.goto(f"{portal.url}/staff/reconciliation/{rig.kiosk_id}/{day}")
    assert _ja_day(day) in page.locator("h2").first.inner_text()
    for g in gifts:
        cell = page.locator(f"#donations tr[data-seq='{g.seq}'] td.kiosk-time").inner_text()
        assert cell == _ja(_local(g.obj["wall_ms"])), cell
    assert not ENGINEER.search(page.locator("main").inner_text() if page.locator("main").count()
                               else page.locator("body").inner_text())
    page.goto(f"{portal.url}/staff/reconciliation?month={day:%Y-%m}")
    link = page.locator(f"#reconciliation tr[data-day='{day.isoformat()}'] a").first
    assert link.inner_text() == _ja_day(day)  # its address keeps the ISO day
    assert link.get_attribute("href") == f"/staff/reconciliation/{rig.kiosk_id}/{day.isoformat()}"

    # In English (the staff member's switch), the same page in English words.
    s, _ = staff_session(portal.url, "clerk", lang="en")
    en = s.get(f"{portal.url}/staff/reconciliation/{rig.kiosk_id}/{day}", timeout=10).text
    assert _en_day(day) in en and _en(_local(gifts[0].obj["wall_ms"])) in en

    # The CSV for accounting stays machine-readable: ISO date and time in Japan time, to the second.
    answer = s.get(f"{portal.url}/staff/donations.csv", timeout=30)
    assert answer.status_code == 200
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    got = [r[0] for r in rows[1:] if r[1] == rig.kiosk_id]
    assert got == [_local(g.obj["wall_ms"]).strftime("%Y-%m-%d %H:%M:%S") for g in gifts]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", v) for v in got)


def test_recent_donations_show_the_day_in_words_and_the_json_keeps_iso(portal, tmp_path):
    rig, gifts = _gifts(portal, tmp_path)
    rig.ledger.close(checkpoint=False)
    project = gifts[0].data["project"]
    ja = requests.get(f"{portal.url}/p/{project}", timeout=10).text
    en = requests.get(f"{portal.url}/p/{project}?lang=en", timeout=10).text
    days = re.findall(r'<span class="day">([^<]*)</span>', ja.split('id="recent"', 1)[1])
    assert days and set(days) == {_ja_day(MOMENT)}
    days = re.findall(r'<span class="day">([^<]*)</span>', en.split('id="recent"', 1)[1])
    assert days and set(days) == {_en_day(MOMENT)}
    recent = requests.get(f"{portal.url}/api/v1/projects/{project}", timeout=10).json()["recent"]
    assert recent and {g["date"] for g in recent} == {MOMENT.date().isoformat()}

"""The playlist's hours take a time as staff type it, and an end before the start is asked about before it is
published (docs/portal.md, "Playlists and targets").

A real portal on loopback; the playlist page is filled and published in headless Chromium, and what was published
is read back from the portal's configuration. Before: 「930」 (a phone's number pad, which the field asks for, has no
colon), 「9:30」 and a Japanese keyboard's 「９：３０」 were refused with 「時刻を 09:30 の形で入力してください。」; and
17:00 – 9:00 (the two swapped) was published without a word as a window through the night, so the video never
played while the center was open.
"""

from __future__ import annotations

import time

import pytest
from sync_helpers import PASSWORD, PROJECTS, needs_chromium, staff_page

from server_sync import catalog, configstore
from server_sync.db import media_info, writing
from server_sync.embedded import start_portal
from server_sync.operator import hhmm
from server_sync.staff import add_user


@pytest.fixture
def center(tmp_path):  # noqa: ANN001
    handle = start_portal(f"sqlite:///{tmp_path}/portal.db")
    eng = handle.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    add_user(eng, "staff1", PASSWORD, "staff")
    sha = configstore.add_media(eng, b"clip " * 60, "video/mp4")
    with writing(eng) as conn:
        conn.execute(media_info.insert().values(sha256=sha, name="紹介動画", group_id=None, project_id="kodomo",
                                                created_ms=int(time.time() * 1000)))
    yield handle
    handle.stop()


def windows(portal) -> list:  # noqa: ANN001
    with portal.app.state.engine.connect() as conn:
        cur = configstore.current(conn, target="all")
    return [] if cur is None else [i["windows"] for i in cur["config"]["playlist"]]


def open_playlist(page, url: str, start: str, end: str) -> None:  # noqa: ANN001
    page.goto(url + "/staff/playlists?target=all")
    page.select_option("#f-i0_clip", index=1)
    page.select_option("#f-i0_project", "kodomo")
    page.fill("input[name=i0_start]", start)
    page.fill("input[name=i0_end]", end)


@needs_chromium
def test_times_typed_as_people_type_them(center, browser) -> None:  # noqa: ANN001
    page = staff_page(browser, center.url, "staff1", size=(1000, 900))
    open_playlist(page, center.url, "９：３０", "1700")
    page.click("#publish")
    page.wait_for_url("**/staff/playlists?done=published")
    assert windows(center)[0][0]["start"] == "09:30" and windows(center)[0][0]["end"] == "17:00"
    # The form shows them back as the kiosks read them.
    page.goto(center.url + "/staff/playlists?target=all")
    assert page.input_value("input[name=i0_start]") == "09:30"
    assert page.input_value("input[name=i0_end]") == "17:00"


@pytest.mark.parametrize("typed, read", [
    ("9:30", "09:30"), ("930", "09:30"), ("0930", "09:30"), ("9", "09:00"), ("9時", "09:00"), ("9時30分", "09:30"),
    ("9時半", "09:30"), ("１７：００", "17:00"), ("2400", "24:00"), ("24:00", "24:00"),
    ("25:00", "25:00"), ("12:60", "12:60"), ("9:5", "9:5"), ("あさ", "あさ"),  # not a time: kept for the message
])
def test_hhmm(typed: str, read: str) -> None:
    assert hhmm(typed) == read


@needs_chromium
def test_an_end_before_the_start_is_asked_about_once(center, browser) -> None:  # noqa: ANN001
    page = staff_page(browser, center.url, "staff1", size=(1000, 900))
    open_playlist(page, center.url, "17:00", "9:00")
    page.click("#publish")
    page.wait_for_load_state()
    ask = page.locator('.err[data-for="i0_overnight"]')
    assert ask.count() == 1, page.locator("main").inner_text()[:500]
    assert "夜の 17:00 から翌朝 09:00 まで" in ask.inner_text() and "もう一度「端末に公開」" in ask.inner_text()
    assert windows(center) == [], "nothing is published on the first press"
    # The form kept what was typed; pressing again publishes it as meant.
    assert page.input_value("input[name=i0_start]") == "17:00" and page.input_value("input[name=i0_end]") == "9:00"
    page.click("#publish")
    page.wait_for_url("**/staff/playlists?done=published")
    assert windows(center) == [[{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "17:00",
                                 "end": "09:00"}]]
    # Opened again and published unchanged (another row added), the stored night window is not asked about again.
    page.goto(center.url + "/staff/playlists?target=all")
    page.fill("input[name=i0_repeat]", "2")
    page.click("#publish")
    page.wait_for_url("**/staff/playlists?done=published")
    # A day window typed the usual way is never asked about.
    open_playlist(page, center.url, "9:00", "17:00")
    page.click("#publish")
    page.wait_for_url("**/staff/playlists?done=published")
    assert windows(center)[0][0]["start"] == "09:00"

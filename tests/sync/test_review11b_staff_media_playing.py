"""The videos page says of each video whether it plays on the kiosks now, as the movies page does
(docs/portal.md, "Videos"). Before, /staff/media listed name, project, group, length and date only: staff could not
tell which videos the kiosks were showing without opening every playlist.

A real portal on loopback HTTP (SQLite) with two videos; a staff member publishes the all-kiosks playlist with one of
them through the playlist form, and the videos page is read in headless Chromium.
"""

from __future__ import annotations

import re
import time

import pytest
from sync_helpers import PASSWORD, PROJECTS, needs_chromium, staff_page, staff_session

from server_sync import catalog, configstore
from server_sync.db import media_info, writing
from server_sync.embedded import start_portal
from server_sync.staff import add_user

EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@pytest.fixture
def center(tmp_path):  # noqa: ANN001
    handle = start_portal(f"sqlite:///{tmp_path}/portal.db")
    eng = handle.app.state.engine
    catalog.import_catalog(eng, {"groups": [{"id": "kodomo-club", "name": "子ども応援団"}],
                                 "projects": [{**p, "group_id": "kodomo-club"} for p in PROJECTS]})
    add_user(eng, "staff1", PASSWORD, "staff")
    shas = []
    for n, project in enumerate(("kodomo", "midori")):
        sha = configstore.add_media(eng, b"clip %d " % n * 40, "video/mp4")
        with writing(eng) as conn:
            conn.execute(media_info.insert().values(sha256=sha, name=f"紹介動画{n}", group_id="kodomo-club",
                                                    project_id=project, created_ms=int(time.time() * 1000)))
        shas.append(sha)
    handle.shas = shas  # type: ignore[attr-defined]
    yield handle
    handle.stop()


@needs_chromium
def test_the_videos_page_says_which_videos_play_on_the_kiosks(center, browser, tmp_path) -> None:  # noqa: ANN001
    playing, waiting = center.shas
    page = staff_page(browser, center.url, "staff1", size=(1100, 800))
    page.goto(center.url + "/staff/media")
    for sha in (playing, waiting):  # no playlist yet
        assert page.locator(f'tr[data-sha="{sha}"] td.playing').inner_text() == "端末のプレイリストに入っていません"

    s, token = staff_session(center.url, "staff1")
    form = s.get(center.url + "/staff/playlists?target=all", timeout=10).text
    r = s.post(center.url + "/staff/playlists", timeout=10, data={
        "csrf": token, "target": "all", "base": re.search(r'name="base" value="(\d+)"', form)[1],
        "i0_clip": playing, "i0_project": "kodomo", "i0_repeat": "1", "i0_days": EVERY_DAY,
        "i0_start": "09:00", "i0_end": "17:00"})
    assert r.url.endswith("done=published"), r.text[:300]

    page.reload()
    page.screenshot(path=str(tmp_path / "media.png"), full_page=True)
    assert page.locator("table#media th").nth(5).inner_text() == "端末での再生"
    cell = page.locator(f'tr[data-sha="{playing}"] td.playing')
    assert cell.inner_text() == "端末で流れています" and cell.locator(".ok").count() == 1
    assert page.locator(f'tr[data-sha="{waiting}"] td.playing').inner_text() == "端末のプレイリストに入っていません"
    page.goto(center.url + "/staff/lang?to=en&next=/staff/media")
    assert page.locator(f'tr[data-sha="{playing}"] td.playing').inner_text() == "playing on the kiosks"

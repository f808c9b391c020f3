"""A form that reaches the portal twice (a double tap on a slow phone line, a resent request) is saved once and
says so, instead of calling the staff member's own first save a colleague's change (docs/portal.md, "Two people
editing the same project or group" and "Several people publishing at once").

A real portal on loopback HTTP (SQLite); the same signed-in form is posted twice as a browser resends it. Before: the
second answer was 409, 「このページを開いた後に、ほかの人がこのプレイリストを変更しました。そのため、あなたの変更は
公開されていません。」 (or 「ほかの人がこの団体を変更しました」) although the change had been published and no one
else had touched it.
"""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import func, select
from sync_helpers import PASSWORD, PROJECTS, staff_session

from server_sync import catalog, configstore
from server_sync.db import configs, media_info, writing
from server_sync.embedded import start_portal
from server_sync.staff import add_user

EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@pytest.fixture
def center(tmp_path):  # noqa: ANN001
    handle = start_portal(f"sqlite:///{tmp_path}/portal.db")
    eng = handle.app.state.engine
    catalog.import_catalog(eng, {"groups": [{"id": "kodomo-club", "name": "子ども応援団"}],
                                 "projects": [{**p, "group_id": "kodomo-club"} for p in PROJECTS]})
    for user in ("staff1", "staff2"):
        add_user(eng, user, PASSWORD, "staff")
    for n, project in enumerate(("kodomo", "midori")):
        sha = configstore.add_media(eng, b"clip %d " % n * 40, "video/mp4")
        with writing(eng) as conn:
            conn.execute(media_info.insert().values(sha256=sha, name=f"紹介動画{n}", group_id="kodomo-club",
                                                    project_id=project, created_ms=int(time.time() * 1000)))
    yield handle
    handle.stop()


def versions(portal) -> int:  # noqa: ANN001
    with portal.app.state.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(configs)).scalar_one()


def playlist_form(s, url: str, token: str, project: str, repeat: str) -> dict:  # noqa: ANN001
    """The all-kiosks playlist page as opened now, filled with one video of ``project``."""
    page = s.get(url + "/staff/playlists?target=all", timeout=10).text
    clips = dict(re.findall(r'<option value="([0-9a-f]{64})"[^>]*>[^<]*– ([^<]+)</option>', page))
    sha = next(k for k, v in clips.items() if v == next(p["title"] for p in PROJECTS if p["id"] == project))
    return {"csrf": token, "target": "all", "base": re.search(r'name="base" value="(\d+)"', page)[1],
            "i0_clip": sha, "i0_project": project, "i0_repeat": repeat, "i0_days": EVERY_DAY,
            "i0_start": "09:00", "i0_end": "17:00"}


def test_a_playlist_sent_twice_is_published_once_and_says_published(center) -> None:  # noqa: ANN001
    s, token = staff_session(center.url, "staff1")
    form = playlist_form(s, center.url, token, "kodomo", "2")
    first = s.post(center.url + "/staff/playlists", data=form, timeout=10, allow_redirects=False)
    again = s.post(center.url + "/staff/playlists", data=form, timeout=10, allow_redirects=False)
    assert first.status_code == again.status_code == 303, again.text[:300]
    assert again.headers["location"] == "/staff/playlists?done=published"
    assert versions(center) == 1, "the second sending publishes nothing new"
    shown = s.get(center.url + again.headers["location"], timeout=10).text
    assert "公開しました" in shown and "ほかの人" not in shown


def test_a_different_playlist_from_an_older_page_is_still_refused(center) -> None:  # noqa: ANN001
    """The check is for the very same form: a second tab (or a colleague) with other videos gets the 409 as before."""
    s1, t1 = staff_session(center.url, "staff1")
    s2, t2 = staff_session(center.url, "staff2")
    mine_old_tab = playlist_form(s1, center.url, t1, "midori", "1")
    colleague = playlist_form(s2, center.url, t2, "kodomo", "1")
    assert s1.post(center.url + "/staff/playlists", data=playlist_form(s1, center.url, t1, "kodomo", "3"),
                   timeout=10, allow_redirects=False).status_code == 303
    # My other, older tab with another video: refused, nothing published.
    r = s1.post(center.url + "/staff/playlists", data=mine_old_tab, timeout=10, allow_redirects=False)
    assert r.status_code == 409 and "ほかの人がこのプレイリストを変更しました" in r.text
    # A colleague's form that happens to hold what I published, but is theirs: still their stale page.
    r = s2.post(center.url + "/staff/playlists", data={**colleague, "i0_repeat": "3"}, timeout=10,
                allow_redirects=False)
    assert r.status_code == 409
    assert versions(center) == 1


def test_a_group_or_project_edit_sent_twice_is_saved(center) -> None:  # noqa: ANN001
    s, token = staff_session(center.url, "staff1")
    page = s.get(center.url + "/staff/groups?edit=kodomo-club", timeout=10).text
    seen = re.search(r'name="seen" value="(\d+)"', page)[1]
    form = {"csrf": token, "editing": "kodomo-club", "seen": seen, "id": "kodomo-club", "name": "子ども応援団",
            "description": "毎週土曜にこども食堂を開いています", "contact": "090-0000-0000"}
    answers = [s.post(center.url + "/staff/groups", data=form, timeout=10, allow_redirects=False) for _ in (1, 2)]
    assert [a.status_code for a in answers] == [303, 303], answers[1].text[:300]
    assert answers[1].headers["location"] == "/staff/groups?done=saved"

    page = s.get(center.url + "/staff/projects/kodomo", timeout=10).text
    seen = re.search(r'name="seen" value="(\d+)"', page)[1]
    form = {"csrf": token, "editing": "kodomo", "seen": seen, "title": "こども食堂", "title_en": "Kids cafeteria",
            "summary": "", "summary_en": "", "group_id": "kodomo-club", "area": "children", "goal_yen": "60,000",
            "start": "", "end": "", "active": "1"}
    answers = [s.post(center.url + "/staff/projects", data=form, timeout=10, allow_redirects=False) for _ in (1, 2)]
    assert [a.status_code for a in answers] == [303, 303], answers[1].text[:300]
    with center.app.state.engine.connect() as conn:
        assert catalog.project(conn, "kodomo")["goal_yen"] == 60000
    # A colleague's different value over that same old page is still the 409 with the table of differences.
    r = s.post(center.url + "/staff/projects", data={**form, "goal_yen": "70000"}, timeout=10, allow_redirects=False)
    assert r.status_code == 409 and "ほかの人がこのプロジェクトを変更しました" in r.text

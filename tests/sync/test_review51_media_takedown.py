"""Review 51: a published video or movie could not be taken down in the portal's web UI. When someone in the photos
withdrew their consent, or a group asked for its video to go, the videos page offered only Edit (name, project):
neither the group's editor nor the center staff could remove it from the project's public page or the kiosks.

Now the video's page has 「この動画を削除する…」, a page that says what goes and which kiosk playlists it is taken out
of, and a POST form (the session's CSRF token) that removes it (server_sync/movies.py ``take_down``, docs/portal.md
"Removing a video"). Whoever may edit the video may remove it: its group's editor, the center staff.

A real portal on loopback HTTP with a real SQLite file (and PostgreSQL when $KIOSK_TEST_PG_URL is set); videos are
small stored files with their media rows, as an upload leaves them (no transcoding: not what is tested here).
What a kiosk is told is what the portal's config endpoint answers it (``configstore.current`` for the kiosk).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from staff_words_check import assert_plain_japanese
from sync_helpers import PASSWORD, staff_session

from server_sync import catalog, configstore
from server_sync.db import kiosk_info, media, media_info, media_jobs, projects, writing
from server_sync.embedded import start_portal
from server_sync.staff import add_user

CATALOG = {"groups": [{"id": "group-a", "name": "Aの会"}, {"id": "group-b", "name": "Bの会"}],
           "projects": [{"id": "proj-a", "group_id": "group-a", "title": "Aのプロジェクト", "area": "green",
                         "goal_yen": 1000},
                        {"id": "proj-b", "group_id": "group-b", "title": "Bのプロジェクト", "area": "children",
                         "goal_yen": 1000}]}
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _clip(engine: Any, n: int, name: str, group: str, project: str, created_ms: int) -> str:
    sha = configstore.add_media(engine, b"clip %d " % n * 30, "video/mp4")
    poster = configstore.add_media(engine, b"poster %d " % n * 10, "image/jpeg")
    with writing(engine) as conn:
        conn.execute(media_info.insert().values(sha256=sha, name=name, group_id=group, project_id=project,
                                                poster_sha256=poster, created_ms=created_ms))
    return sha


def _item(sha: str, project: str) -> dict[str, Any]:
    return {"sha256": sha, "name": sha[:8], "project": project, "repeat": 1,
            "windows": [{"days": EVERY_DAY, "start": "09:00", "end": "17:00"}]}


@pytest.fixture
def center(db_url: str, tmp_path: Path):
    """Group A has two videos (the newer, 「夏祭り」, is on proj-a's public page), group B one. The playlists: for all
    kiosks [夏祭り, B's]; for kiosk group 「lobby」 (kiosk k1) [A's older one], published after it, so k1 plays it;
    for kiosk k2 [夏祭り] alone, published last. Kiosk k3 has no group and no playlist of its own."""
    handle = start_portal(db_url, spool_dir=str(tmp_path / "spool"))
    eng = handle.app.state.engine
    catalog.import_catalog(eng, CATALOG)
    add_user(eng, "editor-a", PASSWORD, "editor", "group-a")
    add_user(eng, "editor-b", PASSWORD, "editor", "group-b")
    add_user(eng, "staff1", PASSWORD, "staff")
    now = int(time.time() * 1000)
    older = _clip(eng, 1, "春の活動", "group-a", "proj-a", now - 60_000)
    summer = _clip(eng, 2, "夏祭り", "group-a", "proj-a", now)
    other = _clip(eng, 3, "Bの紹介", "group-b", "proj-b", now)
    with writing(eng) as conn:
        conn.execute(kiosk_info.insert().values(kiosk_id="k1", kiosk_group="lobby"))
        conn.execute(kiosk_info.insert().values(kiosk_id="k2", kiosk_group=None))
    configstore.republish(eng, "all", "staff1", playlist=[_item(summer, "proj-a"), _item(other, "proj-b")])
    configstore.republish(eng, "group:lobby", "staff1", playlist=[_item(older, "proj-a")])
    configstore.republish(eng, "kiosk:k2", "staff1", playlist=[_item(summer, "proj-a")])
    handle.clips = {"older": older, "summer": summer, "other": other}  # type: ignore[attr-defined]
    yield handle
    handle.stop()


def _kiosk_runs(engine: Any, kiosk: str) -> dict[str, Any]:
    with engine.connect() as conn:
        cur = configstore.current(conn, kiosk_id=kiosk)
    assert cur is not None
    return {"target": cur["target"], "shas": [it["sha256"] for it in cur["config"]["playlist"]]}


def _poster(engine: Any, sha: str) -> str:
    with engine.connect() as conn:
        return conn.execute(media_info.select().where(media_info.c.sha256 == sha)).mappings().one()["poster_sha256"]


def _ask(s: requests.Session, url: str, sha: str) -> requests.Response:
    return s.get(f"{url}/staff/media/{sha}/remove", timeout=10)


def _listed(page: str) -> str:
    m = re.search(r'name="playlists" value="([^"]*)"', page)
    assert m, "no removal form on the page"
    return m[1]


def test_an_editor_removes_their_groups_video_from_the_public_page_the_portal_and_the_playlists(center) -> None:
    eng, url, summer = center.app.state.engine, center.url, center.clips["summer"]
    poster = _poster(eng, summer)
    assert f"/api/v1/media/{summer}" in requests.get(f"{url}/p/proj-a", timeout=10).text
    served = requests.get(f"{url}/api/v1/media/{summer}", timeout=10)
    assert served.status_code == 200
    # Cached for an hour, not for good: a proxy in front of the portal must not keep serving a removed video.
    assert served.headers["Cache-Control"] == "public, max-age=3600"
    s, token = staff_session(url, "editor-a")

    edit = s.get(f"{url}/staff/media/{summer}", timeout=10).text
    assert f'href="/staff/media/{summer}/remove"' in edit and "この動画を削除する…" in edit
    ask = _ask(s, url, summer)
    assert ask.status_code == 200
    assert "動画「夏祭り」を削除しますか？" in ask.text and "元には戻せません" in ask.text
    # The playlists it is in, and the one it is alone in (those kiosks would have nothing to play) said so.
    assert re.findall(r'<li data-target="([^"]+)"', ask.text) == ["all", "kiosk:k2"]
    assert "全端末のプレイリスト" in ask.text and "端末 k2 のプレイリスト" in ask.text
    assert ask.text.count("data-alone") == 1
    assert "/staff/playlists?target=" not in ask.text  # an editor cannot open the playlists: no link there
    assert _listed(ask.text) == "all kiosk:k2"

    r = s.post(f"{url}/staff/media/{summer}/remove", data={"csrf": token, "playlists": _listed(ask.text)},
               timeout=10)
    assert r.status_code == 200 and r.url.endswith("/staff/media?done=removed_from_playlists"), r.url
    assert "動画を削除しました。" in r.text and "端末に送り直しました" in r.text
    assert f'data-sha="{summer}"' not in r.text and f'data-sha="{center.clips["older"]}"' in r.text

    # Gone from the portal and the project's public page (which shows the group's older video now).
    for sha in (summer, poster):
        assert requests.get(f"{url}/api/v1/media/{sha}", timeout=10).status_code == 404
    public = requests.get(f"{url}/p/proj-a", timeout=10).text
    assert summer not in public and f"/api/v1/media/{center.clips['older']}" in public
    assert s.get(f"{url}/staff/media/{summer}", timeout=10).status_code == 404

    # Each kiosk runs the playlist it ran before (lobby's stays lobby's, k2's own stays its own), without the video,
    # and every file it is told to fetch is served.
    runs = {k: _kiosk_runs(eng, k) for k in ("k1", "k2", "k3")}
    assert runs == {"k1": {"target": "group:lobby", "shas": [center.clips["older"]]},
                    "k2": {"target": "kiosk:k2", "shas": []},
                    "k3": {"target": "all", "shas": [center.clips["other"]]}}
    for run in runs.values():
        for sha in run["shas"]:
            assert requests.get(f"{url}/api/v1/media/{sha}", timeout=10).status_code == 200
    with eng.connect() as conn:
        newest = configstore.current(conn, target="kiosk:k2")
    assert newest is not None and newest["published_by"] == "editor-a"


def test_another_groups_editor_cannot_remove_it(center) -> None:
    url, summer = center.url, center.clips["summer"]
    s, token = staff_session(url, "editor-b")
    assert _ask(s, url, summer).status_code == 403
    r = s.post(f"{url}/staff/media/{summer}/remove", data={"csrf": token, "playlists": "all kiosk:k2"}, timeout=10)
    assert r.status_code == 403
    assert requests.get(f"{url}/api/v1/media/{summer}", timeout=10).status_code == 200
    assert summer in _kiosk_runs(center.app.state.engine, "k2")["shas"]
    # Without the session's token nothing happens either, even for the video's own group.
    a, _ = staff_session(url, "editor-a")
    assert a.post(f"{url}/staff/media/{summer}/remove", data={"csrf": "x", "playlists": "all kiosk:k2"},
                  timeout=10).status_code == 403
    assert requests.get(f"{url}/api/v1/media/{summer}", timeout=10).status_code == 200


def test_a_playlist_changed_after_the_page_was_opened_asks_again_and_removes_nothing(center) -> None:
    eng, url, older = center.app.state.engine, center.url, center.clips["older"]
    s, token = staff_session(url, "staff1")
    ask = _ask(s, url, older)
    assert _listed(ask.text) == "group:lobby"
    assert 'href="/staff/playlists?target=group%3Alobby"' in ask.text  # staff may open it
    # A colleague puts it in the playlist for all kiosks meanwhile.
    configstore.republish(eng, "all", "staff2", playlist=[_item(older, "proj-a")])
    r = s.post(f"{url}/staff/media/{older}/remove", data={"csrf": token, "playlists": _listed(ask.text)}, timeout=10)
    assert r.status_code == 409
    assert "まだ何も削除していません" in r.text
    assert _listed(r.text) == "all group:lobby"
    assert requests.get(f"{url}/api/v1/media/{older}", timeout=10).status_code == 200
    r = s.post(f"{url}/staff/media/{older}/remove", data={"csrf": token, "playlists": _listed(r.text)}, timeout=10)
    assert r.url.endswith("done=removed_from_playlists")
    assert requests.get(f"{url}/api/v1/media/{older}", timeout=10).status_code == 404
    assert {k: _kiosk_runs(eng, k)["shas"] for k in ("k1", "k3")} == {"k1": [], "k3": []}


def test_staff_remove_a_video_in_no_playlist(center) -> None:
    eng, url = center.app.state.engine, center.url
    lone = _clip(eng, 4, "使っていない動画", "group-b", "proj-b", int(time.time() * 1000))
    s, token = staff_session(url, "staff1")
    ask = _ask(s, url, lone)
    assert "この動画は、端末のどのプレイリストにも入っていません。" in ask.text and _listed(ask.text) == ""
    with eng.connect() as conn:
        versions = configstore.newest_version(conn)
    r = s.post(f"{url}/staff/media/{lone}/remove", data={"csrf": token, "playlists": ""}, timeout=10)
    assert r.url.endswith("done=removed") and "動画を削除しました。" in r.text
    assert requests.get(f"{url}/api/v1/media/{lone}", timeout=10).status_code == 404
    with eng.connect() as conn:
        assert configstore.newest_version(conn) == versions  # no playlist had it: nothing sent to the kiosks


def test_a_removed_movie_leaves_the_movie_makers_pages_working(center) -> None:
    """A movie made with the movie maker, published by its editor, then removed: the movies page lists it no more
    (not a draft to publish again with its file gone), its old link says it is not there, with the way back."""
    eng, url = center.app.state.engine, center.url
    sha = configstore.add_media(eng, b"a rendered movie " * 40, "video/mp4")
    poster = configstore.add_media(eng, b"its poster frame " * 10, "image/jpeg")
    now = int(time.time() * 1000)
    with writing(eng) as conn:
        conn.execute(media_jobs.insert().values(id="m" * 24, status="done", progress=100, message="", name="みんなの畑",
                                                group_id="group-a", project_id="proj-a", sha256=sha,
                                                poster_sha256=poster, uploaded_by="editor-a", kind="movie",
                                                duration_s=15, created_ms=now, updated_ms=now))
    s, token = staff_session(url, "editor-a")
    r = s.post(f"{url}/staff/movies/{'m' * 24}/publish", data={"csrf": token}, timeout=10)
    assert r.status_code == 200 and "done=published" in r.url
    assert f"/api/v1/media/{sha}" in requests.get(f"{url}/p/proj-a", timeout=10).text

    r = s.post(f"{url}/staff/media/{sha}/remove", data={"csrf": token, "playlists": _listed(_ask(s, url, sha).text)},
               timeout=10)
    assert r.url.endswith("done=removed")
    movies_page = s.get(f"{url}/staff/movies", timeout=10)
    assert movies_page.status_code == 200 and "みんなの畑" not in movies_page.text
    gone = s.get(f"{url}/staff/movies/{'m' * 24}", timeout=10)
    assert gone.status_code == 404 and 'href="/staff/movies"' in gone.text
    assert s.get(f"{url}/staff/movies/{'m' * 24}/preview", timeout=10).status_code == 404
    for sha_ in (sha, poster):
        assert requests.get(f"{url}/api/v1/media/{sha_}", timeout=10).status_code == 404
    with eng.connect() as conn:
        assert conn.execute(media.select().where(media.c.sha256.in_([sha, poster]))).first() is None
    assert f"/api/v1/media/{sha}" not in requests.get(f"{url}/p/proj-a", timeout=10).text


def test_the_removal_page_speaks_plain_japanese_when_it_cannot_remove(center) -> None:
    """A playlist that cannot be sent again (no project runs any more) keeps the video, and says so in Japanese."""
    eng, url, summer = center.app.state.engine, center.url, center.clips["summer"]
    with writing(eng) as conn:
        conn.execute(projects.update().values(active=False))
    s, token = staff_session(url, "editor-a")
    r = s.post(f"{url}/staff/media/{summer}/remove", data={"csrf": token, "playlists": "all kiosk:k2"}, timeout=10)
    assert r.status_code == 422
    assert_plain_japanese(re.findall(r'<p class="bad" id="error">(.*?)</p>', r.text, flags=re.S))
    assert requests.get(f"{url}/api/v1/media/{summer}", timeout=10).status_code == 200

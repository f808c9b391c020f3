"""The operator UI's rules over real HTTP (SQLite and PostgreSQL): who may see and change what, CSRF,
form checking in Japanese with nothing lost, bad uploads that leave nothing behind, per-target
playlists with windows and slides that a kiosk adopts, and an older database that gains the new columns."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests
from movies import solid_movie
from sqlalchemy import func, select
from sync_helpers import PASSWORD, enrolled, make_rig, staff_session

from kiosk.sync.adopt import overlay
from kiosk.sync.configapply import load_applied
from server_sync import catalog, configstore
from server_sync.db import configs, create_schema, media, media_info, media_jobs, projects, writing
from server_sync.embedded import start_portal
from server_sync.staff import add_user, list_users

CATALOG = {
    "groups": [{"id": "group-a", "name": "Aの会", "contact": "a@example.jp"},
               {"id": "group-b", "name": "Bの会", "contact": "b@example.jp"}],
    "projects": [{"id": "proj-a", "group_id": "group-a", "title": "Aのプロジェクト", "area": "green", "goal_yen": 1000},
                 {"id": "proj-b", "group_id": "group-b", "title": "Bのプロジェクト", "area": "town", "goal_yen": 2000}],
}
STAFF_PAGES = ["/staff", "/staff/kiosks", "/staff/groups", "/staff/projects", "/staff/projects/new",
               "/staff/projects/proj-a", "/staff/media", "/staff/playlists", "/staff/playlists?target=all",
               "/staff/volunteer", "/staff/users", "/staff/reconciliation", "/staff/points", "/staff/catalog",
               "/staff/donations.csv"]


@pytest.fixture
def op(db_url: str, tmp_path: Path):
    handle = start_portal(db_url, media_size=(160, 90), spool_dir=str(tmp_path / "spool"), upload_limit=2 * 1024 * 1024)
    engine = handle.app.state.engine
    catalog.import_catalog(engine, CATALOG)
    add_user(engine, "admin", PASSWORD)
    add_user(engine, "staff1", PASSWORD, "staff")
    add_user(engine, "editor-a", PASSWORD, "editor", "group-a")
    yield handle
    handle.stop()


def seed_media(engine, name: str, group_id: str, project_id: str) -> str:  # noqa: ANN001
    sha = configstore.add_media(engine, name.encode() * 100, "video/mp4")
    with writing(engine) as conn:
        conn.execute(media_info.insert().values(sha256=sha, name=name, group_id=group_id, project_id=project_id,
                                                created_ms=int(time.time() * 1000)))
    return sha


def errors_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="bad err" data-for="([^"]+)">([^<]*)</p>', html))


def wait_job(s: requests.Session, url: str, job: str) -> dict:
    for _ in range(300):
        j = s.get(f"{url}/staff/media-jobs/{job}", timeout=10).json()
        if j["status"] in ("done", "failed"):
            return j
        time.sleep(0.1)
    raise AssertionError("media job did not finish")


def test_a_logged_out_visitor_sees_no_staff_page(op):
    for path in STAFF_PAGES + ["/staff/media/" + "0" * 64, "/staff/lang?to=en&next=/staff/users"]:
        r = requests.get(op.url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 303 and r.headers["location"].startswith("/staff"), path
        if path.startswith("/staff/lang"):
            continue  # sets a language cookie, and then the next page asks for a login
        assert r.headers["location"] == "/staff/login" and "Aの会" not in r.text, path
    for path in ("/staff/groups", "/staff/projects", "/staff/users", "/staff/playlists", "/staff/kiosks/code"):
        r = requests.post(op.url + path, data={"name": "x"}, allow_redirects=False, timeout=10)
        assert r.status_code == 303 and r.headers["location"] == "/staff/login", path
    r = requests.post(op.url + "/staff/media-upload", data=b"x", headers={"X-Project": "proj-a"}, timeout=10)
    assert r.status_code == 401 and "ログイン" in r.json()["reason"]
    assert requests.get(op.url + "/staff/media-jobs/abc", timeout=10).status_code == 401
    # A forged cookie is no login either.
    r = requests.get(op.url + "/staff", cookies={"kiosk_staff": "YWRtaW58OTk5OTk5OTk5OTk5OQ.00"},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 303


def test_a_group_editor_cannot_touch_another_groups_projects_or_media(op):
    engine = op.app.state.engine
    sha_a = seed_media(engine, "a.mp4", "group-a", "proj-a")
    sha_b = seed_media(engine, "b.mp4", "group-b", "proj-b")
    s, token = staff_session(op.url, "editor-a")

    # Their own group's project and video: yes.
    assert s.get(op.url + "/staff/projects/proj-a", timeout=10).status_code == 200
    r = s.post(op.url + "/staff/projects", data={"csrf": token, "editing": "proj-a", "title": "Aの新しい題名",
                                                 "group_id": "group-a", "area": "green", "goal_yen": "1500",
                                                 "active": "1"}, timeout=10)
    assert r.status_code == 200 and r.url.endswith("/staff/projects?done=saved")
    assert s.get(op.url + f"/staff/media/{sha_a}", timeout=10).status_code == 200
    listing = s.get(op.url + "/staff/projects", timeout=10).text
    assert "Aの新しい題名" in listing and "Bのプロジェクト" not in listing
    assert sha_b not in s.get(op.url + "/staff/media", timeout=10).text

    # Another group's: 403, and nothing changes.
    assert s.get(op.url + "/staff/projects/proj-b", timeout=10).status_code == 403
    r = s.post(op.url + "/staff/projects", data={"csrf": token, "editing": "proj-b", "title": "乗っ取り",
                                                 "group_id": "group-a", "area": "town", "goal_yen": "1"}, timeout=10)
    assert r.status_code == 403 and "許可されていません" in r.text
    r = s.post(op.url + "/staff/projects", data={"csrf": token, "editing": "", "id": "sneaky", "title": "X",
                                                 "group_id": "group-b", "area": "town", "goal_yen": "1"}, timeout=10)
    assert r.status_code == 403
    assert s.get(op.url + f"/staff/media/{sha_b}", timeout=10).status_code == 403
    r = s.post(op.url + f"/staff/media/{sha_b}", data={"csrf": token, "name": "renamed", "project_id": "proj-a"},
               timeout=10)
    assert r.status_code == 403
    r = s.post(op.url + "/staff/media-upload", data=b"\x00" * 100, timeout=10,
               headers={"X-CSRF-Token": token, "X-File-Name": "x.mp4", "X-Project": "proj-b",
                        "Content-Type": "video/mp4"})
    assert r.status_code == 403 and "自分の団体" in r.json()["reason"]
    with engine.connect() as conn:
        titles = {p["id"]: p["title"] for p in catalog.list_projects(conn)}
        name_b = conn.execute(select(media_info.c.name).where(media_info.c.sha256 == sha_b)).scalar_one()
    assert titles == {"proj-a": "Aの新しい題名", "proj-b": "Bのプロジェクト"} and name_b == "b.mp4"

    # Center-staff pages are not an editor's either; the users page is an administrator's only.
    for path in ("/staff/kiosks", "/staff/groups", "/staff/playlists", "/staff/volunteer", "/staff/users",
                 "/staff/donations.csv", "/staff/catalog"):
        assert s.get(op.url + path, timeout=10).status_code == 403, path
    r = s.post(op.url + "/staff/playlists", data={"csrf": token, "target": "all"}, timeout=10)
    assert r.status_code == 403
    staff_s, _ = staff_session(op.url, "staff1")
    assert staff_s.get(op.url + "/staff/users", timeout=10).status_code == 403
    assert staff_s.get(op.url + "/staff/projects/proj-b", timeout=10).status_code == 200


def test_a_project_moved_to_another_group_takes_its_videos_along(op):
    """The project's group now decides: after staff move proj-a to group B (on the projects page, or by a
    catalog import), its video is B's editor's to rename or detach, and A's editor gets 403 and changes nothing."""
    engine = op.app.state.engine
    add_user(engine, "editor-b", PASSWORD, "editor", "group-b")
    sha = seed_media(engine, "a.mp4", "group-a", "proj-a")
    other = seed_media(engine, "a-own.mp4", "group-a", None)  # not of the project: stays group A's
    staff_s, token_s = staff_session(op.url, "staff1")
    r = staff_s.post(op.url + "/staff/projects", timeout=10, data={
        "csrf": token_s, "editing": "proj-a", "title": "Aのプロジェクト", "group_id": "group-b", "area": "green",
        "goal_yen": "1000", "active": "1"})
    assert r.status_code == 200 and r.url.endswith("done=saved")
    sa, token_a = staff_session(op.url, "editor-a")
    sb, token_b = staff_session(op.url, "editor-b")
    assert sa.get(f"{op.url}/staff/media/{sha}", timeout=10).status_code == 403
    assert sha not in sa.get(op.url + "/staff/media", timeout=10).text
    for project in ("", "proj-a"):  # rename it, or detach it from the project
        r = sa.post(f"{op.url}/staff/media/{sha}", data={"csrf": token_a, "name": "by A", "project_id": project},
                    timeout=10)
        assert r.status_code == 403, project
    assert sb.get(f"{op.url}/staff/media/{sha}", timeout=10).status_code == 200
    assert sha in sb.get(op.url + "/staff/media", timeout=10).text
    r = sb.post(f"{op.url}/staff/media/{sha}", data={"csrf": token_b, "name": "by B", "project_id": "proj-a"},
                timeout=10)
    assert r.status_code == 200 and r.url.endswith("done=saved")
    with engine.connect() as conn:
        rows = {r.sha256: (r.name, r.group_id, r.project_id) for r in conn.execute(select(media_info))}
    assert rows == {sha: ("by B", "group-b", "proj-a"), other: ("a-own.mp4", "group-a", None)}
    # A catalog import that hands the project back moves its video back in the same transaction.
    catalog.import_catalog(engine, {"projects": [{**CATALOG["projects"][0], "group_id": "group-a"}]})
    assert sa.get(f"{op.url}/staff/media/{sha}", timeout=10).status_code == 200
    assert sb.get(f"{op.url}/staff/media/{sha}", timeout=10).status_code == 403


def test_media_a_project_left_behind_in_its_old_group_move_at_the_next_start(op):
    """A portal from before media followed their project left a moved project's videos and movie drafts in the
    old group: the next start (create_schema) gives them the project's group, and leaves the rest alone."""
    engine = op.app.state.engine
    with writing(engine) as conn:  # as the older portal left it: the project moved, its media did not
        conn.execute(projects.update().where(projects.c.id == "proj-a").values(group_id="group-b"))
    sha = seed_media(engine, "a.mp4", "group-a", "proj-a")
    own = seed_media(engine, "own.mp4", "group-a", None)
    gone = seed_media(engine, "gone.mp4", "group-a", "no-such-project")
    with writing(engine) as conn:
        conn.execute(media_jobs.insert().values(id="j" * 32, status="done", progress=100, message="", name="draft",
                                                group_id="group-a", project_id="proj-a", kind="movie",
                                                created_ms=1, updated_ms=1))
    create_schema(engine)
    with engine.connect() as conn:
        assert dict(conn.execute(select(media_info.c.sha256, media_info.c.group_id)).all()) == {
            sha: "group-b", own: "group-a", gone: "group-a"}
        assert conn.execute(select(media_jobs.c.group_id)).scalar_one() == "group-b"


def test_every_form_needs_its_sessions_csrf_token(op):
    s, token = staff_session(op.url, "admin")
    other, other_token = staff_session(op.url, "staff1")
    assert token != other_token
    for data in ({}, {"csrf": "forged"}, {"csrf": other_token}):
        r = s.post(op.url + "/staff/groups", data={**data, "editing": "", "id": "new-group", "name": "新"},
                   timeout=10)
        assert r.status_code == 403 and "期限切れ" in r.text
    r = s.post(op.url + "/staff/media-upload", data=b"x", timeout=10,
               headers={"X-CSRF-Token": other_token, "X-Project": "proj-a", "X-File-Name": "x.mp4"})
    assert r.status_code == 403
    assert s.post(op.url + "/staff/logout", data={}, allow_redirects=False, timeout=10).status_code == 403
    with op.app.state.engine.connect() as conn:
        assert "new-group" not in {g["id"] for g in catalog.list_groups(conn)}
    r = s.post(op.url + "/staff/logout", data={"csrf": token}, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and s.get(op.url + "/staff", allow_redirects=False, timeout=10).status_code == 303


def test_a_non_ascii_token_or_cookie_is_refused_like_any_wrong_one(op):
    """hmac.compare_digest raises TypeError on a non-ASCII str: such a token or cookie is a plain "no", not a 500."""
    s, token = staff_session(op.url, "admin")
    for bad in ("é", token[:-1] + "é", "ｘ" * len(token)):
        r = s.post(op.url + "/staff/groups", data={"csrf": bad, "editing": "", "id": "new-group", "name": "新"},
                   timeout=10)
        assert r.status_code == 403 and "期限切れ" in r.text, bad
    r = s.post(op.url + "/staff/media-upload", data=b"x", timeout=10,
               headers={"X-CSRF-Token": "é".encode(), "X-Project": "proj-a", "X-File-Name": "x.mp4"})
    assert r.status_code == 403
    with op.app.state.engine.connect() as conn:
        assert "new-group" not in {g["id"] for g in catalog.list_groups(conn)}
    cookie = s.cookies["kiosk_staff"]
    for bad in (cookie[:-1] + "é", "abc.é", "é.abc"):
        r = requests.get(op.url + "/staff", allow_redirects=False, timeout=10,
                         headers={"Cookie": b"kiosk_staff=" + bad.encode()})
        assert r.status_code == 303 and r.headers["location"] == "/staff/login", bad
    assert s.get(op.url + "/staff", allow_redirects=False, timeout=10).status_code == 200  # the real one still works


def test_bad_forms_come_back_in_japanese_with_what_was_typed_and_nothing_stored(op):
    engine = op.app.state.engine
    s, token = staff_session(op.url, "admin")
    r = s.post(op.url + "/staff/projects", timeout=10, data={
        "csrf": token, "editing": "", "id": "Bad ID!", "title": "", "title_en": "Kept English", "summary": "残る概要",
        "group_id": "nobody", "area": "sports", "goal_yen": "-5", "start": "2026-13-01", "end": ""})
    assert r.status_code == 422
    e = errors_of(r.text)
    assert e["id"].startswith("半角の小文字") and e["title"] == "題名を入力してください。"
    assert e["group_id"] == "団体を選んでください。" and e["area"] == "政策分野を選んでください。"
    assert e["goal_yen"] == "目標金額を1円以上の整数で入力してください。" and e["start"].startswith("日付を")
    assert 'value="Kept English"' in r.text and "残る概要" in r.text and 'value="Bad ID!"' in r.text
    r = s.post(op.url + "/staff/projects", timeout=10, data={
        "csrf": token, "editing": "", "id": "dated", "title": "期間", "group_id": "group-a", "area": "green",
        "goal_yen": "100", "start": "2026-05-01", "end": "2026-04-01"})
    assert errors_of(r.text) == {"end": "終了日が開始日より前になっています。"}
    r = s.post(op.url + "/staff/groups", data={"csrf": token, "editing": "", "id": "group-c", "name": "Aの会"},
               timeout=10)
    assert r.status_code == 422 and errors_of(r.text) == {"name": "同じ名前の団体がすでにあります。"}
    r = s.post(op.url + "/staff/users", timeout=10, data={"csrf": token, "username": "new-editor",
                                                          "password": "short", "role": "editor", "group_id": ""})
    assert errors_of(r.text) == {"password": "パスワードは 8 文字以上にしてください。",
                                 "group_id": "団体編集者には団体を選んでください。"}
    r = s.post(op.url + "/staff/kiosks/code", data={"csrf": token, "kiosk_id": "ロビー", "days": "365"}, timeout=10)
    assert set(errors_of(r.text)) == {"kiosk_id", "days"} and 'value="ロビー"' in r.text
    r = s.post(op.url + "/staff/volunteer", timeout=10, data={
        "csrf": token, "a0_id": "park", "a0_title": "公園清掃", "a0_title_en": "", "a0_points": "50",
        "a0_max_points": "10", "a1_id": "park", "a1_title": "二重", "a1_title_en": "", "a1_points": "1",
        "a1_max_points": "1"})
    assert errors_of(r.text) == {"a0_max_points": "上限ポイントは通常ポイント以上にしてください。",
                                 "a0_id": "このIDが2回使われています。", "a1_id": "このIDが2回使われています。"}
    sha = seed_media(engine, "a.mp4", "group-a", "proj-a")
    r = s.post(op.url + "/staff/playlists", timeout=10, data={
        "csrf": token, "target": "all", "i0_clip": sha, "i0_project": "", "i0_days": [], "i0_start": "25:00",
        "i0_end": "", "i0_repeat": "1", "s0_title": "", "s0_date": "2026-02-30", "s0_time": "", "s0_place": "",
        "s0_note": ""})
    e = errors_of(r.text)
    assert r.status_code == 422 and e["i0_project"] == "この動画のプロジェクトを選んでください。"
    assert e["i0_days"] == "曜日を1つ以上選んでください。" and e["i0_start"] == "時刻を 09:30 の形で入力してください。"
    assert e["s0_title"] == "催しの名前を入力してください。" and e["s0_date"].startswith("日付を")
    assert f'<option value="{sha}" selected>' in r.text  # the chosen video is still chosen
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(configs)).scalar_one() == 0  # nothing published
        assert conn.execute(select(func.count()).select_from(projects)).scalar_one() == 2
    assert {u["username"] for u in list_users(engine)} == {
        "admin", "staff1", "editor-a"}


def test_the_slide_forms_limits_are_the_published_documents(op):
    """An event slide's time is 100 characters in the pushed document (configdoc.Slide): 101 is refused beside the
    field in Japanese, never later by the schema in English under the playlist; 100, and the longest title, place
    and note the document takes, publish."""
    from server_sync.wire.configdoc import Slide

    sha = seed_media(op.app.state.engine, "a.mp4", "group-a", "proj-a")
    s, token = staff_session(op.url, "staff1")
    form = {"csrf": token, "target": "all", "i0_clip": sha, "i0_project": "proj-a", "i0_repeat": "1",
            "s0_title": "夏まつり", "s0_date": "2026-08-01", "s0_time": "午" * 101, "s0_place": "", "s0_note": ""}
    r = s.post(op.url + "/staff/playlists", data=form, timeout=10)
    assert r.status_code == 422 and errors_of(r.text) == {"s0_time": "長すぎます。100 文字までにしてください。"}
    longest = {k: Slide.model_fields[k].metadata[-1].max_length for k in ("title", "time", "place", "note")}
    assert longest == {"title": 200, "time": 100, "place": 200, "note": 200}
    r = s.post(op.url + "/staff/playlists", data={**form, **{f"s0_{k}": "あ" * n for k, n in longest.items()}},
               allow_redirects=False, timeout=10)
    assert r.status_code == 303, errors_of(r.text)
    with op.app.state.engine.connect() as conn:
        [slide] = configstore.current(conn, target="all")["config"]["slides"]
    assert slide["time"] == "あ" * 100 and slide["note"] == "あ" * 200
    r = s.post(op.url + "/staff/playlists", data={**form, "s0_time": "", "s0_note": "あ" * 201, "i0_repeat": "101"},
               timeout=10)
    assert errors_of(r.text) == {"s0_note": "長すぎます。200 文字までにしてください。",
                                 "i0_repeat": "1 から 100 までの数を入力してください。"}


def test_bad_uploads_get_a_clear_message_and_leave_nothing(op, tmp_path):
    engine = op.app.state.engine
    s, token = staff_session(op.url, "editor-a")
    head = {"X-CSRF-Token": token, "X-Project": "proj-a", "X-File-Name": "clip.mp4", "Content-Type": "video/mp4"}
    r = s.post(op.url + "/staff/media-upload", data=b"this is not a movie" * 50, headers=head, timeout=10)
    assert r.status_code == 202
    j = wait_job(s, op.url, r.json()["job"])
    assert j["status"] == "failed" and j["sha256"] is None
    assert j["message"].startswith("この動画は使えませんでした（ポータルで読める動画ファイルではありません）")
    r = s.post(op.url + "/staff/media-upload", data=b"hello", timeout=10,
               headers={**head, "Content-Type": "text/plain"})
    assert r.status_code == 415 and "動画ファイルではありません" in r.json()["reason"]
    r = s.post(op.url + "/staff/media-upload", data=b"\x00" * (2 * 1024 * 1024 + 1), headers=head, timeout=30)
    assert r.status_code == 413 and "2 MB" in r.json()["reason"]
    r = s.post(op.url + "/staff/media-upload", data=b"", headers=head, timeout=10)
    assert r.status_code == 422 and "空" in r.json()["reason"]
    r = s.post(op.url + "/staff/media-upload", data=b"x", headers={**head, "X-Project": "nope"}, timeout=10)
    assert r.status_code == 422
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(media_info)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(media)).scalar_one() == 0
    assert not list((tmp_path / "spool").iterdir())

    # A good one, for contrast: transcoded to the kiosk format at the portal's media size.
    movie = solid_movie(tmp_path / "good.mp4", (10, 200, 10), size=(320, 180), seconds=0.5)
    r = s.post(op.url + "/staff/media-upload", data=movie.read_bytes(), headers=head, timeout=10)
    j = wait_job(s, op.url, r.json()["job"])
    assert j["status"] == "done" and j["progress"] == 100
    data, ctype = configstore.get_media(engine, j["sha256"])  # type: ignore[misc]
    assert ctype == "video/mp4" and data != movie.read_bytes()
    (tmp_path / "out.mp4").write_bytes(data)
    from kiosk.player.transcode import probe

    info = probe(tmp_path / "out.mp4")
    assert (info.codec, info.width, info.height, info.closed_gop, info.faststart) == ("h264", 160, 90, True, True)
    assert not list((tmp_path / "spool").iterdir())


def test_a_playlist_for_a_kiosk_group_with_windows_and_slides_reaches_only_that_group(op, tmp_path):
    engine = op.app.state.engine
    in_group, outside = make_rig(tmp_path / "a", "lobby-kiosk-1"), make_rig(tmp_path / "b", "hall-kiosk-1")
    try:
        ups = [enrolled(rig, op) for rig in (in_group, outside)]
        for up in ups:
            assert up.sync_once().ok
        s, token = staff_session(op.url, "staff1")
        sha = seed_media(engine, "a.mp4", "group-a", "proj-a")
        r = s.post(op.url + "/staff/playlists", timeout=10, data={
            "csrf": token, "target": "all", "i0_clip": sha, "i0_project": "proj-a", "i0_repeat": "1",
            "i0_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "i0_start": "", "i0_end": ""})
        assert r.url.endswith("done=published")
        r = s.post(op.url + "/staff/kiosks/lobby-kiosk-1/group", data={"csrf": token, "kiosk_group": "lobby"},
                   timeout=10)
        assert r.url.endswith("done=saved")
        r = s.post(op.url + "/staff/playlists", timeout=10, data={
            "csrf": token, "target": "group:lobby", "i0_clip": sha, "i0_project": "proj-a", "i0_repeat": "2",
            "i0_days": ["sat", "sun"], "i0_start": "10:00", "i0_end": "16:00",
            "s0_title": "夏まつり", "s0_date": "2026-08-01", "s0_time": "10:00〜", "s0_place": "広場", "s0_note": "",
            "s0_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "s0_start": "", "s0_end": ""})
        assert r.url.endswith("done=published"), errors_of(r.text)
        targets = s.get(op.url + "/staff/playlists", timeout=10).text
        assert 'data-target="group:lobby"' in targets and "端末グループ lobby" in targets
        with engine.connect() as conn:
            assert configstore.current_version(conn, "lobby-kiosk-1") == 2
            assert configstore.current_version(conn, "hall-kiosk-1") == 1
        for up in ups:
            assert up.sync_once().ok
        got = overlay(in_group.cfg, load_applied(in_group.cfg.data_dir)["config"])  # type: ignore[index]
        item = got.player.playlist[0]
        assert (item.project, item.clip, item.repeat) == ("proj-a", sha, 2)
        assert [(w.days, w.start, w.end) for w in item.windows] == [(["sat", "sun"], "10:00", "16:00")]
        assert [(sl.title, sl.place, str(sl.date)) for sl in got.player.slides] == [("夏まつり", "広場", "2026-08-01")]
        other = overlay(outside.cfg, load_applied(outside.cfg.data_dir)["config"])  # type: ignore[index]
        assert other.player.playlist[0].windows == [] and other.player.slides == []
        kiosks = s.get(op.url + "/staff/kiosks", timeout=10).text
        assert kiosks.count('data-config="ok">最新のプレイリストで動いています') == 2
        # Activities published from the volunteer page reach every kiosk.
        r = s.post(op.url + "/staff/volunteer", timeout=10, data={
            "csrf": token, "a0_id": "park-cleanup", "a0_title": "公園清掃", "a0_title_en": "Park cleanup",
            "a0_points": "10", "a0_max_points": "50"})
        assert r.url.endswith("done=published"), errors_of(r.text)
        for rig, up in zip((in_group, outside), ups, strict=True):
            assert up.sync_once().ok
            got = overlay(rig.cfg, load_applied(rig.cfg.data_dir)["config"])  # type: ignore[index]
            assert [(a.id, a.points, a.max_points) for a in got.volunteer.activities] == [("park-cleanup", 10, 50)]
        # ...and the kiosk group kept its own playlist (published again, newest for it, after the all-kiosks one).
        assert [(w.days, w.start) for w in got.player.playlist[0].windows] == [] and rig is outside
        grp = overlay(in_group.cfg, load_applied(in_group.cfg.data_dir)["config"])  # type: ignore[index]
        assert [(w.days, w.start) for w in grp.player.playlist[0].windows] == [(["sat", "sun"], "10:00")]
        assert [sl.title for sl in grp.player.slides] == ["夏まつり"]
    finally:
        for rig in (in_group, outside):
            rig.ledger.close(checkpoint=False)


def test_an_older_portal_database_gains_roles_and_targets(db_url):
    """A portal created before roles and targets: its staff are administrators, its configs are for all."""
    from sqlalchemy import text

    from server_sync.db import create_schema, drop_schema, make_engine, metadata
    from server_sync.staff import who

    eng = make_engine(db_url)
    try:
        drop_schema(eng)
        with writing(eng) as conn:
            conn.execute(text("CREATE TABLE portal_staff (username VARCHAR(64) PRIMARY KEY, "
                              "password_hash VARCHAR(200) NOT NULL, created_ms BIGINT NOT NULL)"))
            conn.execute(text("INSERT INTO portal_staff VALUES ('old-admin', 'x', 1)"))
            conn.execute(text("CREATE TABLE portal_configs (version INTEGER PRIMARY KEY, digest VARCHAR(64) NOT NULL, "
                              "document TEXT NOT NULL, created_ms BIGINT NOT NULL)"))
        create_schema(eng)
        create_schema(eng)  # and again: nothing to add the second time
        assert who(eng, "old-admin") is not None and who(eng, "old-admin").role == "admin"  # type: ignore[union-attr]
        catalog.import_catalog(eng, CATALOG)
        out = configstore.publish(eng, {})
        assert out["target"] == "all" and out["version"] == 1
    finally:
        metadata.drop_all(eng)
        eng.dispose()


def test_staff_add_makes_any_role_and_the_media_options_come_from_the_environment(db_url, monkeypatch, capsys):
    from server_sync.app import options_from_env
    from server_sync.db import make_engine
    from server_sync.portal_cli import main as portal_main
    from server_sync.staff import who

    monkeypatch.setenv("KIOSK_PORTAL_PASSWORD", PASSWORD)
    assert portal_main(["staff-add", "--db", db_url, "--user", "ed", "--role", "editor", "--group", "nobody"]) == 2
    assert "no group 'nobody'" in capsys.readouterr().err
    eng = make_engine(db_url)
    try:
        catalog.import_catalog(eng, CATALOG)
        assert portal_main(["staff-add", "--db", db_url, "--user", "ed", "--role", "editor", "--group",
                            "group-b"]) == 0
        assert portal_main(["staff-add", "--db", db_url, "--user", "boss"]) == 0
        assert who(eng, "ed") == who(eng, "ed") and who(eng, "ed").group_id == "group-b"  # type: ignore[union-attr]
        assert who(eng, "ed").may_edit_group("group-b") and not who(eng, "ed").may_edit_group("group-a")  # type: ignore[union-attr]
        assert who(eng, "boss").is_admin  # type: ignore[union-attr]
    finally:
        eng.dispose()
    monkeypatch.setenv("KIOSK_PORTAL_MEDIA_SIZE", "1920x1080")
    monkeypatch.setenv("KIOSK_PORTAL_UPLOAD_MB", "50")
    assert options_from_env() == {"media_size": (1920, 1080), "upload_limit": 50 * 1024 * 1024}
    monkeypatch.setenv("KIOSK_PORTAL_MEDIA_SIZE", "big")
    with pytest.raises(RuntimeError, match="WIDTHxHEIGHT"):
        options_from_env()


def test_the_payment_terminals_state_travels_in_the_heartbeat_to_the_kiosks_page(op, tmp_path):
    """Issue #13: the portal sees what the kiosk's own terminal says (state and detail), not a constant; a kiosk
    that reports nothing (a sync tool outside `kiosk run`) shows as not reported, and an unusable report is a 422."""
    quiet = make_rig(tmp_path, "kiosk-quiet")
    up_quiet = enrolled(quiet, op)
    assert up_quiet.sync_once().ok
    rig = make_rig(tmp_path, "kiosk-pay")
    report = {"terminal": "square", "state": "offline", "detail": "Square unreachable (timeout) " + "x" * 300}
    up = enrolled(rig, op, payment_health=lambda: dict(report))
    assert up.sync_once().ok
    s, _ = staff_session(op.url, "staff1")
    page = s.get(op.url + "/staff/kiosks", timeout=10).text
    row = re.search(r'<tr data-kiosk="kiosk-pay">.*?</tr>', page, re.S).group(0)
    assert "つながりません" in row and "(square)" in row and "Square unreachable (timeout)" in row
    assert "x" * 201 not in row  # the kiosk cuts the line to the protocol's limit
    quiet_row = re.search(r'<tr data-kiosk="kiosk-quiet">.*?</tr>', page, re.S).group(0)
    assert "報告なし" in quiet_row
    report.update(state="ready", detail="last checkout: approved")
    assert up.sync_once().ok
    row = re.search(r'<tr data-kiosk="kiosk-pay">.*?</tr>',
                    s.get(op.url + "/staff/kiosks", timeout=10).text, re.S).group(0)
    assert "使えます" in row and "last checkout: approved" in row and "つながりません" not in row
    # A kiosk that failed closed (kiosk/app/staffside.py reports it "offline"): said as stopped, not unreachable.
    report.update(state="offline", detail="the kiosk failed closed")
    assert up.sync_once().ok
    row = re.search(r'<tr data-kiosk="kiosk-pay">.*?</tr>',
                    s.get(op.url + "/staff/kiosks", timeout=10).text, re.S).group(0)
    assert 'data-payment="stopped"' in row and "支払いを止めています" in row
    assert "ネットワークや決済端末の問題ではありません" in row
    assert "つながりません" not in row and "詳細（管理者向け）: square: the kiosk failed closed" in row
    # The portal refuses a state outside the protocol rather than storing it.
    report.update(state="on fire")
    st = up.sync_once(max_attempts=1)
    assert not st.ok and "payment" in (st.last_error or "")
    up.close()
    up_quiet.close()


def test_a_slide_with_letters_the_kiosks_cannot_draw_is_refused_beside_the_field(op):
    """The kiosks draw an event slide's title, time, place and note in the vendored font: an emoji or 髙 would be an
    empty box on the lobby screen, so each field that has one is refused beside it, naming the characters, and
    nothing is published; written another way, it publishes."""
    sha = seed_media(op.app.state.engine, "a.mp4", "group-a", "proj-a")
    s, token = staff_session(op.url, "staff1")
    form = {"csrf": token, "target": "all", "i0_clip": sha, "i0_project": "proj-a", "i0_repeat": "1",
            "s0_title": "夏まつり🎉", "s0_date": "2026-08-01", "s0_time": "10:00〜", "s0_place": "髙島公園",
            "s0_note": "①受付"}
    r = s.post(op.url + "/staff/playlists", data=form, timeout=10)
    e = errors_of(r.text)
    assert r.status_code == 422 and set(e) == {"s0_title", "s0_place", "s0_note"}, e
    assert e["s0_place"].startswith("端末の画面では次の文字を表示できません：髙。") and "🎉" in e["s0_title"]
    assert 'value="髙島公園"' in r.text  # the typing is kept
    with op.app.state.engine.connect() as conn:
        assert configstore.current(conn, target="all") is None
    r = s.post(op.url + "/staff/playlists", allow_redirects=False, timeout=10,
               data={**form, "s0_title": "夏まつり", "s0_place": "高島公園", "s0_note": "1 受付"})
    assert r.status_code == 303, errors_of(r.text)

"""The staff actions record (docs/portal.md, "Staff actions record"), what it names and how.

A user, group, project or kiosk code saved on a form whose address names nothing was recorded with an empty "on
what", so an administrator could not tell which user was changed; now the route's handler names it (its ID only,
never what else the form held). A video edited or removed was named only by its 64-character sha256; now by its
name while the portal has it, and a removed one in plain words beside the start of its hash. A failed sign-in
looked its user up twice (once to check the password, once to decide whether to keep the name); now once.

The real portal on loopback HTTP, SQLite and PostgreSQL (the ``portal`` fixture's ``db_url``); the page in headless
Chromium at a phone's and a PC's width.
"""

from __future__ import annotations

import re
import time
from typing import Any

import requests
from sqlalchemy import event, select
from sync_helpers import PASSWORD, needs_chromium, seed_playlist_center, staff_page, staff_session

from server_sync import configstore, staff, staff_actions
from server_sync.db import media_info, writing
from server_sync.db import staff_actions as actions_table
from server_sync.staff import add_user

NEW_PASSWORD = "tanaka-no-himitsu-99"


def rows(engine: Any) -> list[tuple[str, str, str, int]]:
    with engine.connect() as conn:
        got = conn.execute(select(actions_table.c.username, actions_table.c.action, actions_table.c.target,
                                  actions_table.c.status).order_by(actions_table.c.id)).all()
    return [(r[0], r[1], r[2], r[3]) for r in got]


def post(s: requests.Session, url: str, path: str, data: dict[str, str]) -> requests.Response:
    return s.post(url + path, data=data, allow_redirects=False, timeout=10)


def table_lines(page: str) -> list[str]:
    return re.findall(r"<tr data-action=.*?</tr>", page[page.index('<table id="actions">'):], flags=re.S)


def test_a_form_whose_address_names_nothing_is_recorded_with_the_id_of_what_it_saved(portal):
    eng = portal.app.state.engine
    seed_playlist_center(eng, users=())
    add_user(eng, "kanri", PASSWORD, "admin")
    url = portal.url
    s, token = staff_session(url, "kanri")

    user = post(s, url, "/staff/users", {"csrf": token, "action": "add", "username": "tanaka", "role": "staff",
                                         "password": NEW_PASSWORD})
    group = post(s, url, "/staff/groups", {"csrf": token, "editing": "", "id": "midori-kai", "name": "みどりの会",
                                           "description": "", "contact": ""})
    project = {"csrf": token, "title": "Aの新しい題名", "group_id": "group-a", "area": "green", "goal_yen": "1000"}
    changed = post(s, url, "/staff/projects", {**project, "editing": "proj-a", "id": "proj-a"})
    bad_id = post(s, url, "/staff/projects", {**project, "editing": "", "id": "Not an ID!"})  # refused: not kept
    code = post(s, url, "/staff/kiosks/code", {"csrf": token, "kiosk_id": "center-1f", "days": "7"})
    assert [r.status_code for r in (user, group, changed, bad_id, code)] == [303, 303, 303, 422, 200]

    got = rows(eng)[1:]  # after kanri's sign-in
    assert got == [("kanri", "/staff/users", "tanaka", 303), ("kanri", "/staff/groups", "midori-kai", 303),
                   ("kanri", "/staff/projects", "proj-a", 303), ("kanri", "/staff/projects", "", 422),
                   ("kanri", "/staff/kiosks/code", "center-1f", 200)]
    stored = repr(rows(eng))
    for secret in (NEW_PASSWORD, PASSWORD, token, "Not an ID!", "みどりの会", "Aの新しい題名"):
        assert secret not in stored

    page = s.get(url + "/staff/actions", timeout=10).text
    lines = table_lines(page)  # newest first
    assert "ユーザーを追加・変更" in lines[4] and "<code>tanaka</code>" in lines[4]
    assert "<code>midori-kai</code>" in lines[3] and "<code>proj-a</code>" in lines[2]
    assert "<code>center-1f</code>" in lines[0]


def test_a_video_is_named_by_its_name_while_the_portal_has_it_and_in_words_once_removed(portal):
    eng = portal.app.state.engine
    kept = seed_playlist_center(eng, users=("yamada",))
    add_user(eng, "kanri", PASSWORD, "admin")
    gone = configstore.add_media(eng, b"other" * 100, "video/mp4")
    with writing(eng) as conn:
        conn.execute(media_info.insert().values(sha256=gone, name="消える動画.mp4", group_id="group-a",
                                                project_id="proj-a", created_ms=int(time.time() * 1000)))
    url = portal.url
    s, token = staff_session(url, "yamada")
    renamed = post(s, url, f"/staff/media/{kept}", {"csrf": token, "name": "こども食堂の紹介", "project_id": "proj-a"})
    assert renamed.status_code == 303, renamed.text[:300]
    ask = s.get(f"{url}/staff/media/{gone}/remove", timeout=10).text
    listed = re.search(r'name="playlists" value="([^"]*)"', ask)
    assert listed is not None
    removed = post(s, url, f"/staff/media/{gone}/remove", {"csrf": token, "playlists": listed[1]})
    assert removed.status_code == 303, removed.text[:300]

    kanri, _ = staff_session(url, "kanri")
    page = kanri.get(url + "/staff/actions", timeout=10).text
    removal, edit = table_lines(page)[1:3]  # newest first, after kanri's sign-in
    assert "動画を削除" in removal and "ポータルに残っていない動画" in removal and "消える動画" not in removal
    assert f"<code title=\"{gone}\" style=\"white-space:nowrap\">{gone[:8]}…</code>" in removal
    assert "こども食堂の紹介" in edit
    assert f"<code title=\"{kept}\" style=\"white-space:nowrap\">{kept[:8]}…</code>" in edit
    assert "ポータルに残っていない動画" not in edit



@needs_chromium
def test_the_actions_page_fits_a_phone_and_a_pc_in_japanese(staff_site, browser):
    eng, url = staff_site.app.state.engine, staff_site.url
    sha = seed_playlist_center(eng, users=())
    add_user(eng, "kanri", PASSWORD, "admin")
    s, token = staff_session(url, "kanri")
    assert post(s, url, f"/staff/media/{sha}", {"csrf": token, "name": "こども食堂の紹介" * 3,
                                                 "project_id": "proj-a"}).status_code == 303
    assert post(s, url, "/staff/users", {"csrf": token, "action": "add", "username": "tanaka.ichiro@center.example.jp",
                                         "role": "staff", "password": NEW_PASSWORD}).status_code == 303
    for width, height in ((375, 740), (1280, 800)):
        page = staff_page(browser, url, "kanri", size=(width, height))
        page.goto(url + "/staff/actions")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{width} px scrolls sideways"
        heads = page.locator("#actions th").all_inner_texts()
        assert len(heads) == 5 and all(re.search(r"[ぁ-んァ-ヶ一-龯]", h) for h in heads), heads
        assert page.locator("#actions tr", has_text="こども食堂の紹介").first.is_visible()
        assert page.locator("#actions tr", has_text="ユーザーを追加・変更").first.is_visible()
        page.close()


def test_a_failed_sign_in_looks_its_user_up_once_and_keeps_only_a_users_name(portal):
    eng = portal.app.state.engine
    add_user(eng, "kanri", PASSWORD, "admin")
    lookups: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if re.search(r"\bportal_staff\b", statement):  # the users' table (not its sessions', nor the record's)
            lookups.append(statement)

    event.listen(eng, "before_cursor_execute", seen)
    try:
        for name, password, kept in (("kanri", "wrong-password-1", "kanri"),
                                     ("hunter2-typed-as-name", "wrong-password-2", staff_actions.UNKNOWN),
                                     ("kanri", PASSWORD, "kanri")):
            lookups.clear()
            result = staff.check_login(eng, name, password)
            staff_actions.sign_in(eng, name, result, 303 if result else 401)
            assert len(lookups) == 1, (name, lookups)
            assert rows(eng)[-1][0] == kept
    finally:
        event.remove(eng, "before_cursor_execute", seen)
    # A name typed without a password is never checked against a hash, so the record looks it up itself.
    staff_actions.sign_in(eng, "nobody-here", False, 401)
    staff_actions.sign_in(eng, "kanri", False, 401)
    assert [r[0] for r in rows(eng)[-2:]] == [staff_actions.UNKNOWN, "kanri"]


def test_a_staff_form_reads_the_session_before_its_route_once_and_an_auditor_is_still_refused(portal):
    """The record and the read-only check (operator.ReadOnlyRoles) share one read of the session before the route;
    the route reads it again after the form (a session ended meanwhile must refuse it): two reads, not three."""
    eng = portal.app.state.engine
    seed_playlist_center(eng, users=("yamada",))
    add_user(eng, "kansa", PASSWORD, "auditor")
    url = portal.url
    s, token = staff_session(url, "yamada")
    auditor, a_token = staff_session(url, "kansa")
    reads: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if re.search(r"\bportal_staff_sessions\b", statement) and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    event.listen(eng, "before_cursor_execute", seen)
    try:
        saved = post(s, url, "/staff/groups", {"csrf": token, "editing": "", "id": "midori-kai", "name": "みどりの会",
                                               "description": "", "contact": ""})
        assert saved.status_code == 303 and len(reads) == 2, reads
        reads.clear()
        refused = post(auditor, url, "/staff/groups", {"csrf": a_token, "editing": "", "id": "kansa-no-kai",
                                                       "name": "監査の会", "description": "", "contact": ""})
        assert refused.status_code == 403 and len(reads) == 1, reads  # refused before the route: one read
    finally:
        event.remove(eng, "before_cursor_execute", seen)
    assert rows(eng)[-2:] == [("yamada", "/staff/groups", "midori-kai", 303), ("kansa", "/staff/groups", "", 403)]

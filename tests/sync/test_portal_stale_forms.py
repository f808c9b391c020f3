"""Staff edit forms opened before a colleague's save (SQLite and PostgreSQL, real portal on loopback).

A group's or project's edit form carries the version it was opened at (hidden ``seen``: the row's ``updated_ms``).
Its save changes the row only if it is still at that version (server_sync/catalog.py ``save_project``,
``save_group``); else the answer is 409: the form shows what is stored now, with what the staff member typed kept
beside it and a plain message, and nothing the colleague saved is undone.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sync_helpers import PASSWORD, needs_chromium, staff_page, staff_session

from server_sync import catalog
from server_sync.db import groups, projects, writing
from server_sync.embedded import start_portal
from server_sync.staff import add_user

CATALOG = {
    "groups": [{"id": "group-a", "name": "Aの会", "description": "地域の会", "contact": "a@example.jp"}],
    "projects": [{"id": "kodomo", "group_id": "group-a", "title": "こども食堂", "area": "children", "goal_yen": 5000}],
}
STALE_JA = ("ほかの人がこのプロジェクトを変更しました。最新の内容を表示しています。"
            "必要ならもう一度変更して保存してください。")


@pytest.fixture
def op(db_url: str, tmp_path: Path):
    handle = start_portal(db_url, media_size=(160, 90), spool_dir=str(tmp_path / "spool"))
    engine = handle.app.state.engine
    catalog.import_catalog(engine, CATALOG)
    add_user(engine, "staff1", PASSWORD, "staff")
    add_user(engine, "staff2", PASSWORD, "staff")
    yield handle
    handle.stop()


def page_fields(html: str) -> dict[str, str]:
    """What a browser sends back from a page's inputs (hidden ones too), the CSRF token left out."""
    fields = dict(re.findall(r'<input[^>]* name="([^"]+)"[^>]* value="([^"]*)"', html))
    fields.pop("csrf", None)
    return fields


def stored(op: Any, pid: str = "kodomo") -> dict[str, Any]:
    """The project as stored now, with its version (``updated_ms``)."""
    with op.app.state.engine.connect() as conn:
        p = next(p for p in catalog.list_projects(conn) if p["id"] == pid)
        version = conn.execute(select(projects.c.updated_ms).where(projects.c.id == pid)).scalar_one()
    return {**p, "updated_ms": int(version)}


def stored_group(op: Any) -> dict[str, Any]:
    with op.app.state.engine.connect() as conn:
        return dict(conn.execute(select(groups).where(groups.c.id == "group-a")).mappings().one())


def typed_rows(html: str) -> dict[str, str]:
    """The "what you typed (not saved)" column of the stale box, by field name."""
    return {m[0]: m[1] for m in re.findall(
        r'<tr data-field="([^"]+)"><td>[^<]*</td><td class="typed"[^>]*>([^<]*)</td>', html)}


# --- projects ------------------------------------------------------------------------------------------------------
def test_a_project_form_opened_before_a_colleagues_save_does_not_silently_undo_it(op):
    """Two staff open the same project. Staff 2 raises the goal and saves. Staff 1, on the page opened before,
    corrects the title and saves. The goal must stay raised, or staff 1 must be told the project changed."""
    s1, t1 = staff_session(op.url, "staff1")
    s2, t2 = staff_session(op.url, "staff2")
    page1 = s1.get(op.url + "/staff/projects/kodomo", timeout=10).text
    fields = dict(re.findall(r'<input[^>]* name="([^"]+)"[^>]* value="([^"]*)"', page1))
    base = {k: v for k, v in fields.items() if k != "csrf"}
    base.update({"group_id": "group-a", "area": "children", "active": "1"})
    assert base.get("goal_yen") == "5000", base
    r = s2.post(op.url + "/staff/projects", data={**base, "csrf": t2, "goal_yen": "20000"}, timeout=10)
    assert r.url.endswith("done=saved"), r.text[:300]
    r = s1.post(op.url + "/staff/projects", data={**base, "csrf": t1, "title": "こども食堂（毎週土曜）"}, timeout=10)
    p = stored(op)
    told = not r.url.endswith("done=saved")
    assert told or (p["goal_yen"], p["title"]) == (20000, "こども食堂（毎週土曜）"), (
        f"staff 1's save answered {r.url.split('/')[-1]}: goal ¥{p['goal_yen']:,} (staff 2 saved ¥20,000), "
        "and nobody was told")


def test_a_stale_project_save_answers_409_with_the_stored_project_and_what_was_typed(op):
    s1, t1 = staff_session(op.url, "staff1")
    s2, t2 = staff_session(op.url, "staff2")
    base = {**page_fields(s1.get(op.url + "/staff/projects/kodomo", timeout=10).text),
            "group_id": "group-a", "area": "children", "active": "1"}
    assert base["seen"] == str(stored(op)["updated_ms"])
    assert s2.post(op.url + "/staff/projects", data={**base, "csrf": t2, "goal_yen": "20000"},
                   timeout=10).url.endswith("done=saved")

    r = s1.post(op.url + "/staff/projects", data={**base, "csrf": t1, "title": "こども食堂（毎週土曜）"}, timeout=10)
    assert r.status_code == 409, r.text[:300]
    assert STALE_JA in r.text
    assert (stored(op)["goal_yen"], stored(op)["title"]) == (20000, "こども食堂"), "nothing of the refused save"
    again = page_fields(r.text)
    assert again["goal_yen"] == "20000" and again["title"] == "こども食堂", "the form shows what is stored now"
    assert again["seen"] == str(stored(op)["updated_ms"]) != base["seen"]
    assert typed_rows(r.text) == {"title": "こども食堂（毎週土曜）", "goal_yen": "5000"}, "typed, kept beside it"

    # Staff 1 makes the change again on the refreshed form: both changes are kept.
    r = s1.post(op.url + "/staff/projects", data={**again, "csrf": t1, "group_id": "group-a", "area": "children",
                                                  "active": "1", "title": "こども食堂（毎週土曜）"}, timeout=10)
    assert r.url.endswith("done=saved"), r.text[:300]
    assert (stored(op)["goal_yen"], stored(op)["title"]) == (20000, "こども食堂（毎週土曜）")


def test_the_stale_message_is_in_english_for_an_english_page(op):
    s1, t1 = staff_session(op.url, "staff1", lang="en")
    base = {**page_fields(s1.get(op.url + "/staff/projects/kodomo", timeout=10).text),
            "group_id": "group-a", "area": "children", "active": "1"}
    catalog.set_active(op.app.state.engine, "kodomo", False)  # e.g. staff 2 hides it from the projects list
    r = s1.post(op.url + "/staff/projects", data={**base, "csrf": t1, "title_en": "Kids cafeteria"}, timeout=10)
    assert r.status_code == 409
    assert "Someone else changed this project. The latest content is shown." in r.text and STALE_JA not in r.text
    rows = dict(re.findall(r'<tr data-field="([^"]+)"><td>([^<]*)</td>', r.text))
    assert rows == {"title_en": "Title (English)", "active": "Shown on kiosks and the public pages"}
    assert stored(op)["active"] is False and stored(op)["title_en"] == ""


def test_a_save_held_between_reading_and_writing_cannot_slip_past_a_colleagues_save(op):
    """Staff 2's save has updated the row but not committed yet when staff 1's save, from a page opened before,
    arrives: the check is part of staff 1's UPDATE (after staff 2's commit), not a read before it."""
    engine = op.app.state.engine
    s1, t1 = staff_session(op.url, "staff1")
    s2, t2 = staff_session(op.url, "staff2")
    base = {**page_fields(s1.get(op.url + "/staff/projects/kodomo", timeout=10).text),
            "group_id": "group-a", "area": "children", "active": "1"}
    hold, held = threading.Event(), threading.Event()

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        mine = threading.current_thread() is threading.main_thread()
        if not mine and statement.startswith("UPDATE portal_projects") and not held.is_set():
            held.set()
            hold.wait(30)
    event.listen(engine, "after_cursor_execute", after)
    out: dict[str, Any] = {}
    t = threading.Thread(target=lambda: out.setdefault("r", s2.post(
        op.url + "/staff/projects", data={**base, "csrf": t2, "goal_yen": "20000"}, timeout=60)), daemon=True)
    t.start()
    try:
        assert held.wait(30), "staff 2's save never updated the project"
        late: dict[str, Any] = {}
        t1_thread = threading.Thread(target=lambda: late.setdefault("r", s1.post(
            op.url + "/staff/projects", data={**base, "csrf": t1, "title": "こども食堂（毎週土曜）"}, timeout=60)),
            daemon=True)
        t1_thread.start()
        t1_thread.join(2)  # it waits for staff 2's write lock (SQLite) or row lock (PostgreSQL)
    finally:
        hold.set()
    t.join(60)
    t1_thread.join(60)
    assert out["r"].url.endswith("done=saved")
    assert late["r"].status_code == 409, late["r"].url
    assert (stored(op)["goal_yen"], stored(op)["title"]) == (20000, "こども食堂")


def test_two_saves_in_one_millisecond_are_two_versions(op):
    """A colleague's save in the same millisecond as the version a form was opened at still makes it stale."""
    engine = op.app.state.engine
    seen = stored(op)["updated_ms"]
    p = catalog.ProjectIn(id="kodomo", group_id="group-a", title="こども食堂", area="children", goal_yen=20000)
    with writing(engine) as conn:
        catalog.save_project(conn, p, now_ms=seen, seen_ms=seen)  # staff 2, in the very same millisecond
    assert stored(op)["updated_ms"] > seen
    with pytest.raises(catalog.StaleEdit), writing(engine) as conn:
        catalog.save_project(conn, p.model_copy(update={"title": "別の題名", "goal_yen": 5000}), now_ms=seen,
                             seen_ms=seen)
    assert (stored(op)["goal_yen"], stored(op)["title"]) == (20000, "こども食堂")


def test_adding_a_project_is_not_a_stale_edit(op):
    s1, t1 = staff_session(op.url, "staff1")
    new = page_fields(s1.get(op.url + "/staff/projects/new", timeout=10).text)
    assert "seen" not in new
    r = s1.post(op.url + "/staff/projects", timeout=10, data={
        **new, "csrf": t1, "id": "midori", "title": "雑木林", "group_id": "group-a", "area": "green",
        "goal_yen": "8000", "active": "1"})
    assert r.url.endswith("done=saved"), r.text[:300]
    assert stored(op, "midori")["goal_yen"] == 8000


# --- groups --------------------------------------------------------------------------------------------------------
def test_a_group_form_opened_before_a_colleagues_save_does_not_silently_undo_it(op):
    """Staff 2 changes the group's contact; staff 1, on the group page opened before, fixes the description. The
    new contact (whom the center calls) must not silently go back to the old one."""
    s1, t1 = staff_session(op.url, "staff1")
    s2, t2 = staff_session(op.url, "staff2")
    base = page_fields(s1.get(op.url + "/staff/groups?edit=group-a", timeout=10).text)
    base["description"] = "地域の会"  # the textarea's text
    assert base["contact"] == "a@example.jp" and base["editing"] == "group-a"
    r = s2.post(op.url + "/staff/groups", data={**base, "csrf": t2, "contact": "090-1234-5678"}, timeout=10)
    assert r.url.endswith("done=saved"), r.text[:300]

    r = s1.post(op.url + "/staff/groups", data={**base, "csrf": t1, "description": "毎月第2土曜に集まる会"},
                timeout=10)
    g = stored_group(op)
    assert r.status_code == 409 and g["contact"] == "090-1234-5678", (
        f"staff 1's save answered {r.status_code} {r.url.split('/')[-1]}: contact {g['contact']!r} "
        "(staff 2 saved 090-1234-5678)")
    assert "ほかの人がこの団体を変更しました。最新の内容を表示しています。" in r.text
    again = page_fields(r.text)
    assert again["contact"] == "090-1234-5678" and again["seen"] == str(g["updated_ms"])
    assert typed_rows(r.text) == {"description": "毎月第2土曜に集まる会", "contact": "a@example.jp"}
    r = s1.post(op.url + "/staff/groups", data={**again, "csrf": t1, "description": "毎月第2土曜に集まる会"},
                timeout=10)
    assert r.url.endswith("done=saved"), r.text[:300]
    g = stored_group(op)
    assert (g["contact"], g["description"]) == ("090-1234-5678", "毎月第2土曜に集まる会")


# --- in the browser: two staff, two browser contexts ---------------------------------------------------------------
@needs_chromium
def test_two_staff_in_browsers_the_later_save_shows_the_change_and_keeps_the_typing(op, browser):
    url = op.url
    one, two = staff_page(browser, url, "staff1"), staff_page(browser, url, "staff2")
    assert one.context is not two.context
    one.goto(url + "/staff/projects/kodomo")
    two.goto(url + "/staff/projects/kodomo")
    two.fill("#f-goal_yen", "20,000")
    two.click("#project-form button[type=submit]")
    two.wait_for_url("**/staff/projects?done=saved")

    one.fill("#f-title", "こども食堂（毎週土曜）")
    with one.expect_navigation():
        one.click("#project-form button[type=submit]")
    assert one.locator("#stale").count() == 1, f"no word of the colleague's change on {one.url}"
    assert one.locator("#stale p.bad").inner_text() == STALE_JA
    assert one.input_value("#f-goal_yen") == "20000", "the form shows the goal staff 2 saved"
    assert one.input_value("#f-title") == "こども食堂"
    typed = one.locator("#stale-typed tr[data-field=title] td.typed")
    assert typed.inner_text() == "こども食堂（毎週土曜）" and typed.is_visible(), "what staff 1 typed, to copy"
    assert stored(op)["goal_yen"] == 20000

    one.fill("#f-title", typed.inner_text())  # copied into the refreshed form, saved again
    one.click("#project-form button[type=submit]")
    one.wait_for_url("**/staff/projects?done=saved")
    assert (stored(op)["goal_yen"], stored(op)["title"]) == (20000, "こども食堂（毎週土曜）")

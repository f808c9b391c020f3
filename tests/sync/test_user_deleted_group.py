"""Changing a user to a group that was deleted meanwhile (SQLite, the real portal on loopback, real Chromium).

The users page checks the chosen group when the form arrives, and ``staff.update_user`` checks it again in the
write transaction that changes the user: a group deleted between the two (or before, by a script) is refused with
a plain message beside the group, nothing is saved (role, group, password, sessions), and the form keeps what was
typed. Before, the user was saved as an editor of a group that no longer existed.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
from races import PauseAfter, staff_portal
from sqlalchemy import select
from sync_helpers import PASSWORD, needs_chromium, staff_page, staff_session

from server_sync import staff
from server_sync.db import groups, staff_users, writing
from tests.portal_db import fresh_db

# group-b has no project, so it can be deleted (a project's group is a foreign key).
CATALOG = {"groups": [{"id": "group-a", "name": "Aの会", "contact": "a@example.jp"},
                      {"id": "group-b", "name": "Bの会", "contact": "b@example.jp"}],
           "projects": [{"id": "kodomo", "group_id": "group-a", "title": "こども食堂", "area": "children",
                         "goal_yen": 5000}]}
GONE_JA = ("選んだ団体はもうありません（このページを開いたあとで削除されたのかもしれません）。"
           "何も保存していません。ほかの団体を選んでください。")
GONE_EN = "The group you chose no longer exists"
# The users page reading the groups when a save arrives (operator.group_names: catalog.list_groups).
READS_GROUPS = r"FROM portal_groups ORDER BY"


@pytest.fixture
def op(tmp_path: Path):
    with staff_portal(fresh_db("sqlite", tmp_path), tmp_path, CATALOG) as handle:
        staff.add_user(handle.app.state.engine, "yamada", PASSWORD, "staff")
        yield handle


def stored_user(op: Any, name: str = "yamada") -> dict[str, Any]:
    with op.app.state.engine.connect() as conn:
        return dict(conn.execute(select(staff_users.c.role, staff_users.c.group_id, staff_users.c.password_hash)
                                 .where(staff_users.c.username == name)).mappings().one())


def delete_group(op: Any, gid: str = "group-b") -> None:
    """What deleting a group does to the database (the portal has no page for it: a script, a maintenance query)."""
    with writing(op.app.state.engine) as conn:
        assert conn.execute(groups.delete().where(groups.c.id == gid)).rowcount == 1


def error_of(html: str, field: str) -> str:
    m = re.search(rf'<p class="bad err" data-for="{field}">([^<]*)</p>', html)
    return m.group(1) if m else ""


@needs_chromium
def test_changing_a_user_to_a_group_deleted_meanwhile_is_refused_and_keeps_the_typing(op, browser):
    """An administrator changes yamada (center staff) to an editor of "Bの会" and saves; the group is deleted while
    the save is on its way (after the form's own check read the groups, before the user is written). The page says
    in Japanese, beside the group, that the group is gone and nothing was saved; the form still says "change",
    yamada, editor and the password typed; yamada is still center staff with the old password and session."""
    before = stored_user(op)
    yamada, _ = staff_session(op.url, "yamada")
    page = staff_page(browser, op.url, "admin")
    page.goto(op.url + "/staff/users")
    page.check("#f-action-change")
    page.fill("#f-username", "yamada")
    page.fill("#f-password", "new-password-77")
    page.select_option("#f-role", "editor")
    page.select_option("#f-group_id", "group-b")

    pause = PauseAfter(op.app.state.engine, READS_GROUPS)

    def colleague() -> None:  # deletes the group while the save is held right after the form's check
        try:
            pause.wait_hit(60)
            delete_group(op)
        finally:
            pause.release()
    t = threading.Thread(target=colleague, daemon=True)
    t.start()
    with page.expect_navigation():
        page.click("#user-form button[type=submit]")
    t.join(60)
    assert pause.hit.is_set(), "the save never read the groups"

    assert "done=" not in page.url, f"yamada was changed to a deleted group: {page.url}"
    said = page.locator("p.bad.err[data-for=group_id]")
    assert said.count() == 1 and said.is_visible() and said.inner_text() == GONE_JA, said.all_inner_texts()
    assert page.is_checked("#f-action-change") and page.input_value("#f-username") == "yamada"
    assert page.input_value("#f-role") == "editor" and page.input_value("#f-password") == "new-password-77"
    assert page.locator("#f-group_id option[value=group-b]").count() == 0, "the deleted group is no choice"
    assert stored_user(op) == before, "yamada was changed"
    assert yamada.get(op.url + "/staff", timeout=10).url.endswith("/staff"), "yamada's session was ended"


def test_update_user_refuses_a_deleted_group_and_saves_nothing(op):
    """``staff.update_user`` to a group that is not there raises ``NoSuchGroup``: role, group and password stay and
    the user's sessions are not ended (a new password would end them)."""
    engine = op.app.state.engine
    cookie = staff.make_cookie(engine, "yamada")
    before = stored_user(op)
    delete_group(op)
    with pytest.raises(staff.NoSuchGroup):
        staff.update_user(engine, "yamada", "editor", "group-b", "new-password-77")
    assert stored_user(op) == before
    assert staff.user_from_cookie(engine, cookie) == "yamada"
    assert staff.login(engine, "yamada", PASSWORD) and not staff.login(engine, "yamada", "new-password-77")
    assert staff.update_user(engine, "yamada", "editor", "group-a", None)  # a group that is there: saved
    assert (stored_user(op)["role"], stored_user(op)["group_id"]) == ("editor", "group-a")


def test_a_group_deleted_before_the_save_is_worded_plainly_on_both_forms(op):
    """A group deleted before the save arrives is caught by the form's own check, with the same plain words (not
    "a group editor needs a group", which says the administrator chose none), for an add and for a change, in
    Japanese and English. Choosing no group at all still says that an editor needs one."""
    delete_group(op)
    a, ka = staff_session(op.url, "admin")
    base = {"csrf": ka, "role": "editor", "group_id": "group-b"}
    r = a.post(op.url + "/staff/users", data={**base, "action": "change", "username": "yamada", "password": ""},
               timeout=10)
    assert r.status_code == 422 and error_of(r.text, "group_id") == GONE_JA, error_of(r.text, "group_id")
    r = a.post(op.url + "/staff/users", data={**base, "action": "add", "username": "suzuki",
                                              "password": "suzuki-pass-1"}, timeout=10)
    assert r.status_code == 422 and error_of(r.text, "group_id") == GONE_JA, error_of(r.text, "group_id")
    r = a.post(op.url + "/staff/users", data={**base, "group_id": "", "action": "add", "username": "suzuki",
                                              "password": "suzuki-pass-1"}, timeout=10)
    assert error_of(r.text, "group_id") == "団体編集者には団体を選んでください。"
    en, ke = staff_session(op.url, "admin2", lang="en")
    r = en.post(op.url + "/staff/users", data={**base, "csrf": ke, "action": "change", "username": "yamada",
                                               "password": ""}, timeout=10)
    assert r.status_code == 422 and error_of(r.text, "group_id").startswith(GONE_EN), error_of(r.text, "group_id")
    assert stored_user(op)["role"] == "staff"
    with op.app.state.engine.connect() as conn:
        assert conn.execute(select(staff_users.c.username).where(staff_users.c.username == "suzuki")).first() is None

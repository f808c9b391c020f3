"""An "add" form sent twice (a double tap, a slow line that makes staff press again) is answered as saved when what
is stored under its name is exactly what the form holds: its first copy added it (docs/portal.md, "A form sent
twice"). Before, the second copy said 「このIDはすでに使われています」 or 「yamada というユーザーはすでに
います」, so staff believed nothing was added, or that a colleague had taken the name. An add that differs from
what is stored is still refused and changes nothing. SQLite and PostgreSQL, the real portal on loopback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from races import overlap, staff_portal
from sqlalchemy import func, select
from sync_helpers import staff_session

from server_sync import staff
from server_sync.db import groups, projects, staff_users

CATALOG = {"groups": [{"id": "group-a", "name": "Aの会", "contact": "a@example.jp"}], "projects": []}


@pytest.fixture
def op(db_url: str, tmp_path: Path):
    with staff_portal(db_url, tmp_path, CATALOG) as handle:
        yield handle


def error_of(html: str, field: str) -> str:
    m = re.search(rf'<p class="bad err" data-for="{field}">([^<]*)</p>', html)
    return m.group(1) if m else ""


def count(op: Any, table: Any) -> int:
    with op.app.state.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_new_group_and_project_sent_twice_are_saved_once(op):
    s, token = staff_session(op.url, "staff1")
    group = {"csrf": token, "editing": "", "id": "midori", "name": "みどりの会", "description": "公園の花壇",
             "contact": "midori@example.jp"}
    for _ in range(2):
        r = s.post(op.url + "/staff/groups", data=group, timeout=10)
        assert r.url.endswith("done=saved"), f"{r.status_code}: {error_of(r.text, 'id')}"
    assert count(op, groups) == 2
    # Another group under the same ID is still refused, and the stored one kept.
    r = s.post(op.url + "/staff/groups", data={**group, "name": "別の会"}, timeout=10)
    assert r.status_code == 422 and "このIDはすでに使われています" in error_of(r.text, "id")

    project = {"csrf": token, "id": "kadan", "title": "花壇づくり", "title_en": "", "summary": "", "summary_en": "",
               "group_id": "midori", "area": "green", "goal_yen": "５０,０００", "start": "2026/04/01",
               "end": "", "active": "1"}
    for _ in range(2):
        r = s.post(op.url + "/staff/projects", data=project, timeout=10)
        assert r.url.endswith("done=saved"), f"{r.status_code}: {error_of(r.text, 'id')}"
    assert count(op, projects) == 1
    r = s.post(op.url + "/staff/projects", data={**project, "goal_yen": "60000"}, timeout=10)
    assert r.status_code == 422 and "このIDはすでに使われています" in error_of(r.text, "id")


def user_form(token: str, password: str, role: str = "staff") -> dict[str, str]:
    return {"csrf": token, "action": "add", "username": "yamada", "password": password, "role": role, "group_id": ""}


def test_a_new_user_sent_twice_is_saved_once(op):
    a, ka = staff_session(op.url, "admin")
    for _ in range(2):
        r = a.post(op.url + "/staff/users", data=user_form(ka, "yamada-pass-1"), timeout=10)
        assert r.url.endswith("done=saved"), f"{r.status_code}: {error_of(r.text, 'username')}"
    # The same name with another password or role is not this form sent twice: refused, nothing changed.
    for other in (user_form(ka, "other-pass-22"), user_form(ka, "yamada-pass-1", role="admin")):
        r = a.post(op.url + "/staff/users", data=other, timeout=10)
        assert r.status_code == 422 and "yamada というユーザーはすでにいます" in error_of(r.text, "username")
    assert [u["role"] for u in staff.list_users(op.app.state.engine) if u["username"] == "yamada"] == ["staff"]


def test_a_new_user_sent_twice_at_the_same_moment_is_saved_once(op):
    """The two copies overlap: the first held right after it stored the user, uncommitted. Both say saved."""
    a, ka = staff_session(op.url, "admin")
    r1, r2 = overlap(op.app.state.engine, r"INSERT INTO portal_staff \(",
                     lambda: a.post(op.url + "/staff/users", data=user_form(ka, "yamada-pass-1"), timeout=60),
                     lambda: a.post(op.url + "/staff/users", data=user_form(ka, "yamada-pass-1"), timeout=60),
                     grace_s=0.5)
    assert r1.url.endswith("done=saved") and r2.url.endswith("done=saved"), (r2.status_code,
                                                                               error_of(r2.text, "username"))
    assert count(op, staff_users) == 5
    r = staff_session(op.url, "yamada", password="yamada-pass-1")[0]
    assert r.get(op.url + "/staff", timeout=10).status_code == 200

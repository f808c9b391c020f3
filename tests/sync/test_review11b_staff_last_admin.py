"""Two administrators demoting or deleting each other at the same moment leave one administrator, never none
(docs/portal.md, "Users"; SQLite and PostgreSQL, the real portal on loopback).

Each form only stops an administrator from demoting or deleting themselves, so admin A taking admin2's role while
admin2 takes A's passed both checks, and the portal was left with no administrator at all (nobody could open the
users page again). ``staff.update_user`` and ``staff.delete_user`` now check, inside their own write transaction
and with the administrators' rows locked on PostgreSQL, that another administrator remains. races.py holds the
first request right after it wrote the user's row (uncommitted) while the second one runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from races import overlap, staff_portal
from sync_helpers import staff_session

from server_sync import staff

CATALOG = {"groups": [{"id": "group-a", "name": "Aの会", "contact": "a@example.jp"}], "projects": []}
LAST_JA = "はただ一人残った管理者です"


@pytest.fixture
def op(db_url: str, tmp_path: Path):
    with staff_portal(db_url, tmp_path, CATALOG) as handle:
        yield handle


def admins(op: Any) -> list[str]:
    return [u["username"] for u in staff.list_users(op.app.state.engine) if u["role"] == "admin"]


def error_of(html: str, field: str) -> str:
    m = re.search(rf'<p class="bad err" data-for="{field}">([^<]*)</p>', html)
    return m.group(1) if m else ""


def demote(session: Any, token: str, url: str, name: str) -> Any:
    return session.post(url + "/staff/users", data={"csrf": token, "action": "change", "username": name,
                                                    "password": "", "role": "staff", "group_id": ""}, timeout=60)


def test_two_administrators_demoting_each_other_at_once_leave_one(op):
    a, ka = staff_session(op.url, "admin")
    b, kb = staff_session(op.url, "admin2")
    r1, r2 = overlap(op.app.state.engine, r"UPDATE portal_staff SET",
                     lambda: demote(a, ka, op.url, "admin2"), lambda: demote(b, kb, op.url, "admin"),
                     grace_s=0.5)
    assert admins(op) == ["admin"], f"administrators left: {admins(op)}"
    assert r1.url.endswith("done=saved"), r1.text[:300]
    assert r2.status_code == 422, f"{r2.status_code} {r2.url}"
    said = error_of(r2.text, "role")
    assert said.startswith("admin " + LAST_JA) and "何も変更していません" in said, said or r2.text[:500]


def test_two_administrators_deleting_each_other_at_once_leave_one(op):
    a, ka = staff_session(op.url, "admin")
    b, kb = staff_session(op.url, "admin2")
    r1, r2 = overlap(op.app.state.engine, r"DELETE FROM portal_staff WHERE",
                     lambda: a.post(op.url + "/staff/users/admin2/delete", data={"csrf": ka}, timeout=60),
                     lambda: b.post(op.url + "/staff/users/admin/delete", data={"csrf": kb}, timeout=60),
                     grace_s=0.5)
    assert admins(op) == ["admin"], f"administrators left: {admins(op)}"
    assert r1.url.endswith("done=deleted"), r1.text[:300]
    assert r2.status_code == 422 and LAST_JA in error_of(r2.text, "delete"), r2.text[:500]


def test_an_administrator_among_others_can_still_be_demoted_and_deleted(op):
    """The check refuses only the last one: with two administrators, either can go (one at a time)."""
    a, ka = staff_session(op.url, "admin")
    assert demote(a, ka, op.url, "admin2").url.endswith("done=saved")
    assert admins(op) == ["admin"]
    with pytest.raises(staff.LastAdmin):
        staff.delete_user(op.app.state.engine, "admin")
    with pytest.raises(staff.LastAdmin):
        staff.update_user(op.app.state.engine, "admin", "staff", None, None)
    assert admins(op) == ["admin"]
    assert staff.update_user(op.app.state.engine, "admin2", "admin", None, None)
    assert staff.delete_user(op.app.state.engine, "admin2") and admins(op) == ["admin"]

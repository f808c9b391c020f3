"""Two administrators or staff saving the same user or the same kiosk's group at once (SQLite and PostgreSQL, the
real portal on loopback; races.py holds the first request right after a chosen SQL statement).

The users page says what a save does ("add a new user" or "change an existing user", chosen on the page), never
guessed from whether the name is taken when the save arrives: an add of a name a colleague has just added is
refused in plain words and changes nothing. A kiosk's group is saved in one upsert, so two saves at once for the
same kiosk both succeed, the later one winning.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from races import overlap, staff_portal
from sqlalchemy import select
from sync_helpers import PASSWORD, staff_session

from server_sync import staff
from server_sync.db import kiosk_info, kiosks, staff_users, writing

CATALOG = {"groups": [{"id": "group-a", "name": "Aの会", "contact": "a@example.jp"}],
           "projects": [{"id": "kodomo", "group_id": "group-a", "title": "こども食堂", "area": "children",
                         "goal_yen": 5000}]}
TAKEN_JA = "yamada というユーザーはすでにいます。何も追加・変更していません"
TAKEN_EN = "A user named yamada already exists, so nothing was added or changed"
# The statement that stores a new login (not its sessions).
INSERTS_USER = r"INSERT INTO portal_staff \("


@pytest.fixture
def op(db_url: str, tmp_path: Path):
    with staff_portal(db_url, tmp_path, CATALOG) as handle:
        yield handle


def user_form(token: str, name: str, role: str, password: str, action: str | None = "add") -> dict[str, Any]:
    form = {"csrf": token, "username": name, "password": password, "role": role,
            "group_id": "group-a" if role == "editor" else ""}
    if action is not None:
        form["action"] = action
    return form


def stored_user(op: Any, name: str) -> dict[str, Any] | None:
    with op.app.state.engine.connect() as conn:
        row = conn.execute(select(staff_users.c.role, staff_users.c.group_id, staff_users.c.password_hash)
                           .where(staff_users.c.username == name)).mappings().first()
    return dict(row) if row else None


def signs_in(op: Any, name: str, password: str) -> bool:
    r = requests.post(op.url + "/staff/login", data={"username": name, "password": password}, timeout=10)
    return r.status_code == 200 and 'name="csrf"' in r.text


def error_of(html: str, field: str) -> str:
    m = re.search(rf'<p class="bad err" data-for="{field}">([^<]*)</p>', html)
    return m.group(1) if m else ""


# --- users ---------------------------------------------------------------------------------------------------------
def test_adding_a_name_a_colleague_has_just_added_is_refused_and_changes_nothing(op):
    """Admin B adds "yamada" as center staff. Admin A, on the users page opened before, adds "yamada" as an
    administrator with another password. A is told in Japanese that the name is taken; B's user keeps its role
    and password (before, A's add silently made B's yamada an administrator with A's password)."""
    a, ka = staff_session(op.url, "admin")
    b, kb = staff_session(op.url, "admin2")
    r = b.post(op.url + "/staff/users", data=user_form(kb, "yamada", "staff", PASSWORD), timeout=10)
    assert r.url.endswith("done=saved"), r.text[:300]
    before = stored_user(op, "yamada")

    r = a.post(op.url + "/staff/users", data=user_form(ka, "yamada", "admin", "another-pass-99"), timeout=10)
    assert r.status_code == 422, f"{r.status_code} {r.url}: admin A's add of a taken name was not refused"
    assert TAKEN_JA in error_of(r.text, "username"), error_of(r.text, "username") or r.text[:500]
    assert stored_user(op, "yamada") == before, "admin B's user was changed by admin A's add"
    assert signs_in(op, "yamada", PASSWORD) and not signs_in(op, "yamada", "another-pass-99")

    en, ke = staff_session(op.url, "admin", lang="en")
    r = en.post(op.url + "/staff/users", data=user_form(ke, "yamada", "admin", "another-pass-99"), timeout=10)
    assert r.status_code == 422 and TAKEN_EN in error_of(r.text, "username")
    assert stored_user(op, "yamada") == before


def test_change_is_explicit_and_a_change_of_a_name_no_one_has_adds_nobody(op):
    """"Change an existing user" changes the role (and the password when one is typed); for a name that is not
    there (deleted meanwhile, a typo) it adds nobody and says so. A form without the choice (a script, a page of
    an older portal) still works as before."""
    a, ka = staff_session(op.url, "admin")
    assert a.post(op.url + "/staff/users", data=user_form(ka, "yamada", "staff", PASSWORD),
                  timeout=10).url.endswith("done=saved")
    r = a.post(op.url + "/staff/users", data=user_form(ka, "yamada", "editor", "", action="change"), timeout=10)
    assert r.url.endswith("done=saved"), r.text[:300]
    assert stored_user(op, "yamada")["role"] == "editor" and signs_in(op, "yamada", PASSWORD)

    r = a.post(op.url + "/staff/users", data=user_form(ka, "suzuki", "staff", PASSWORD, action="change"), timeout=10)
    assert r.status_code == 422 and "suzuki というユーザーはいません" in error_of(r.text, "username")
    assert stored_user(op, "suzuki") is None

    r = a.post(op.url + "/staff/users", data=user_form(ka, "tanaka", "staff", PASSWORD, action=None), timeout=10)
    assert r.url.endswith("done=saved") and stored_user(op, "tanaka")["role"] == "staff"
    r = a.post(op.url + "/staff/users", data=user_form(ka, "tanaka", "admin", "", action=None), timeout=10)
    assert r.url.endswith("done=saved") and stored_user(op, "tanaka")["role"] == "admin"


def test_two_adds_of_one_name_at_once_give_one_user_and_one_clear_refusal(op):
    """Two administrators add "yamada" at the same moment (the first add is held right after it stored the
    user, uncommitted). One is saved, the other refused in plain words: never a 500 (PostgreSQL's duplicate
    key), never both "saved" with the later silently replacing the earlier (SQLite)."""
    a, ka = staff_session(op.url, "admin")
    b, kb = staff_session(op.url, "admin2")
    r1, r2 = overlap(op.app.state.engine, INSERTS_USER,
                     lambda: a.post(op.url + "/staff/users", data=user_form(ka, "yamada", "admin", "first-pass-11"),
                                    timeout=60),
                     lambda: b.post(op.url + "/staff/users", data=user_form(kb, "yamada", "staff", "second-pass-22"),
                                    timeout=60))
    answers = sorted((r.status_code, r.url.endswith("done=saved")) for r in (r1, r2))
    assert answers == [(200, True), (422, False)], f"answers {answers}: {r1.text[:200]} | {r2.text[:200]}"
    won, lost = (r1, r2) if r1.url.endswith("done=saved") else (r2, r1)
    assert TAKEN_JA in error_of(lost.text, "username"), lost.text[:500]
    role, password = ("admin", "first-pass-11") if won is r1 else ("staff", "second-pass-22")
    assert stored_user(op, "yamada")["role"] == role and signs_in(op, "yamada", password)
    assert len([u for u in staff.list_users(op.app.state.engine) if u["username"] == "yamada"]) == 1


# --- a kiosk's group ----------------------------------------------------------------------------------------------
def add_kiosk(op: Any, kiosk_id: str) -> None:
    with writing(op.app.state.engine) as conn:
        conn.execute(kiosks.insert().values(id=kiosk_id, public_key=b"\0" * 32, key_id="0" * 16,
                                            enrolled_ms=int(time.time() * 1000), tip=b"\0" * 32))


@pytest.mark.parametrize("had_group", [False, True])
def test_two_group_saves_for_one_kiosk_at_once_both_succeed(op, had_group):
    """Two staff set the same kiosk's group at the same moment (the first save held right after it wrote the
    kiosk's row, uncommitted). Both are told "saved" and the kiosk has one group, the later save's: before, the
    save deleted and re-inserted the row, and on PostgreSQL the second insert hit the first's new row (a 500)."""
    add_kiosk(op, "lobby-kiosk-1")
    s1, t1 = staff_session(op.url, "staff1")
    s2, t2 = staff_session(op.url, "staff2")
    if had_group:
        assert s1.post(op.url + "/staff/kiosks/lobby-kiosk-1/group", data={"csrf": t1, "kiosk_group": "old"},
                       timeout=10).url.endswith("done=saved")
    r1, r2 = overlap(op.app.state.engine, r"INSERT INTO portal_kiosk_info",
                     lambda: s1.post(op.url + "/staff/kiosks/lobby-kiosk-1/group",
                                     data={"csrf": t1, "kiosk_group": "lobby"}, timeout=60),
                     lambda: s2.post(op.url + "/staff/kiosks/lobby-kiosk-1/group",
                                     data={"csrf": t2, "kiosk_group": "hall"}, timeout=60))
    assert (r1.status_code, r2.status_code) == (200, 200), (r1.status_code, r1.text[:300], r2.status_code,
                                                            r2.text[:300])
    assert r1.url.endswith("done=saved") and r2.url.endswith("done=saved")
    with op.app.state.engine.connect() as conn:
        rows = conn.execute(select(kiosk_info.c.kiosk_group).where(kiosk_info.c.kiosk_id == "lobby-kiosk-1")).all()
    assert [g for (g,) in rows] == ["hall"], "the later save (staff 2's) is the kiosk's group"

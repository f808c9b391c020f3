"""The staff actions record: a failed sign-in on the page looks its user up once; a saved points pool is named
(server_sync/app.py, server_sync/points_ui.py)."""

from __future__ import annotations

import re
from typing import Any

import requests
from sqlalchemy import event, select
from sync_helpers import PASSWORD, seed_playlist_center, staff_session

from server_sync import staff_actions
from server_sync.db import staff_actions as actions_table
from server_sync.staff import add_user


def rows(engine: Any) -> list[tuple[str, str, str, int]]:
    with engine.connect() as conn:
        got = conn.execute(select(actions_table.c.username, actions_table.c.action, actions_table.c.target,
                                  actions_table.c.status).order_by(actions_table.c.id)).all()
    return [(r[0], r[1], r[2], r[3]) for r in got]


def test_a_failed_sign_in_on_the_page_looks_its_user_up_once(portal):
    eng = portal.app.state.engine
    add_user(eng, "kanri", PASSWORD, "admin")
    lookups: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if re.search(r"\bportal_staff\b", statement):
            lookups.append(statement)

    event.listen(eng, "before_cursor_execute", seen)
    try:
        for name in ("kanri", "hunter2-typed-as-name"):
            lookups.clear()
            r = requests.post(portal.url + "/staff/login", data={"username": name, "password": "wrong-1"}, timeout=10)
            assert r.status_code == 401 and len(lookups) == 1, lookups
    finally:
        event.remove(eng, "before_cursor_execute", seen)
    assert [r[0] for r in rows(eng)] == ["kanri", staff_actions.UNKNOWN]


def test_a_saved_pool_is_named_in_the_record(portal):
    eng = portal.app.state.engine
    seed_playlist_center(eng, users=())  # a project that runs: a pool is published with it
    add_user(eng, "kanri", PASSWORD, "admin")
    s, token = staff_session(portal.url, "kanri")
    form = {"id": "midori-bank", "sponsor": "みどり銀行", "sponsor_en": "", "funded_yen": "10000",
            "yen_per_point": "1", "per_kiosk_yen": "3000", "areas": ["green"], "start": "2026-04-01", "end": "",
            "action": "add", "csrf": token}
    r = s.post(portal.url + "/staff/pools", data=form, allow_redirects=False, timeout=10)
    assert r.status_code == 303, re.findall(r"data-for=\"[^\"]*\"[^<]*<[^<]*", r.text)
    assert rows(eng)[-1] == ("kanri", "/staff/pools", "midori-bank", 303)

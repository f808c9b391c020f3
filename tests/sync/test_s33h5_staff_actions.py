"""The staff actions record (docs/portal.md, "Staff actions record"): who did what on the staff pages, and when.

A video removed because someone in it withdrew their consent, a kiosk suspended, a user changed: the portal kept no
"who did what, when" an administrator could look at. Now every form a signed-in user sends under /staff/ is recorded
once it is answered (server_sync/staff_actions.py: the user, the route, its path parameters, the answer's status),
sign-ins (failed ones too) and sign-outs with them, and administrators read it on /staff/actions in plain Japanese.
A form's content never is: no password, not even a name typed at a failed sign-in that no user has.

The real portal on loopback HTTP, SQLite and PostgreSQL (the ``portal`` fixture's ``db_url``).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import requests
from sqlalchemy import select, text
from sync_helpers import PASSWORD, seed_playlist_center, staff_session

from server_sync import pages, staff_actions
from server_sync.db import kiosks, writing
from server_sync.db import staff_actions as actions_table
from server_sync.staff import add_user

KIOSK = "kiosk-7"


def rows(engine: Any) -> list[tuple[str, str, str, int]]:
    with engine.connect() as conn:
        got = conn.execute(select(actions_table.c.username, actions_table.c.action, actions_table.c.target,
                                  actions_table.c.status).order_by(actions_table.c.id)).all()
    return [(r[0], r[1], r[2], r[3]) for r in got]


def suspension(s: requests.Session, token: str, url: str, action: str) -> requests.Response:
    return s.post(f"{url}/staff/kiosks/{KIOSK}/suspension", data={"csrf": token, "action": action},
                  allow_redirects=False, timeout=10)


def test_a_removed_video_and_a_suspended_kiosk_are_recorded_and_shown_to_administrators_only(portal):
    eng = portal.app.state.engine
    sha = seed_playlist_center(eng, users=("yamada",))
    add_user(eng, "kanri", PASSWORD, "admin")
    with writing(eng) as conn:
        conn.execute(kiosks.insert().values(id=KIOSK, public_key=b"k" * 32, key_id="k1", enrolled_ms=1, tip=b"\0" * 32))
    url = portal.url

    yamada, yk = staff_session(url, "yamada")
    ask = yamada.get(f"{url}/staff/media/{sha}/remove", timeout=10)
    listed = re.search(r'name="playlists" value="([^"]*)"', ask.text)
    assert listed is not None, ask.text[:300]
    removed = yamada.post(f"{url}/staff/media/{sha}/remove", data={"csrf": yk, "playlists": listed[1]},
                          allow_redirects=False, timeout=10)
    assert removed.status_code == 303, removed.text[:300]
    kanri, kk = staff_session(url, "kanri")
    assert suspension(kanri, kk, url, "suspend").status_code == 303
    assert suspension(kanri, kk, url, "resume").status_code == 303
    assert suspension(yamada, yk, url, "suspend").status_code == 403  # suspending is the administrators'

    login = staff_actions.LOGIN
    assert rows(eng) == [("yamada", login, "", 303), ("yamada", "/staff/media/{sha}/remove", sha, 303),
                         ("kanri", login, "", 303), ("kanri", staff_actions.SUSPENDED, KIOSK, 303),
                         ("kanri", staff_actions.RESUMED, KIOSK, 303), ("yamada", staff_actions.SUSPENSION, KIOSK, 403)]

    page = kanri.get(f"{url}/staff/actions", timeout=10)
    assert page.status_code == 200 and 'href="/staff/actions"' in page.text
    table = page.text[page.text.index('<table id="actions">'):]
    lines = re.findall(r"<tr data-action=.*?</tr>", table)
    assert len(lines) == 6
    newest, removal = lines[0], lines[-2]  # newest first
    assert "yamada" in newest and "端末の停止・解除" in newest and "できなかった" in newest
    assert "端末を停止" in lines[2] and "端末の停止を解除" in lines[1] and "完了" in lines[1]
    with eng.connect() as conn:
        at = conn.execute(select(actions_table.c.at_ms).where(actions_table.c.target == sha)).scalar_one()
    assert "動画を削除" in removal and sha in removal and pages.when(at, "ja") in removal and "完了" in removal
    assert "操作の記録" in page.text

    assert yamada.get(f"{url}/staff/actions", timeout=10).status_code == 403  # center staff, not an administrator
    anonymous = requests.get(f"{url}/staff/actions", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/staff/login"


def test_sign_ins_are_recorded_without_what_was_typed_and_a_lost_record_does_not_fail_the_action(portal, caplog):
    eng = portal.app.state.engine
    add_user(eng, "kanri", PASSWORD, "admin")
    url = portal.url
    wrong, typed_as_name = "kanri-no-himitsu-42", "hunter2-in-the-name-box"
    for user, password in (("kanri", wrong), (typed_as_name, wrong)):
        r = requests.post(f"{url}/staff/login", data={"username": user, "password": password}, timeout=10)
        assert r.status_code == 401
    s, token = staff_session(url, "kanri")
    login = staff_actions.LOGIN
    assert rows(eng) == [("kanri", login, "", 401), (staff_actions.UNKNOWN, login, "", 401), ("kanri", login, "", 303)]
    page = s.get(f"{url}/staff/actions", timeout=10).text
    assert page.count("ログイン失敗") == 2 and "（登録されていない名前）" in page
    assert ">unknown<" not in page  # the stored marker is said in the page's words
    stored, shown = repr(rows(eng)), page[page.index("<main>"):]  # the page's menu holds its own form token
    for secret in (wrong, typed_as_name, PASSWORD, token):
        assert secret not in stored and secret not in shown

    # Three years are kept: an older row goes at the next start (create_app calls prune).
    now = time.time_ns() // 1_000_000
    with writing(eng) as conn:
        conn.execute(actions_table.insert().values(at_ms=now - staff_actions.KEEP_MS - 1, username="old",
                                                   action="/staff/playlists", target="", status=303))
    assert staff_actions.prune(eng) == 1 and len(rows(eng)) == 3

    # The record cannot be written (its table is gone): signing out still works, and the log says what was lost.
    with writing(eng) as conn:
        conn.execute(text("DROP TABLE portal_staff_actions"))
    with caplog.at_level(logging.WARNING, logger="server_sync.staff_actions"):
        out = s.post(f"{url}/staff/logout", data={"csrf": token}, allow_redirects=False, timeout=10)
    assert out.status_code == 303 and out.headers["location"] == "/staff/login?out=1"
    assert any("staff action not recorded: /staff/logout" in r.getMessage() for r in caplog.records), caplog.text

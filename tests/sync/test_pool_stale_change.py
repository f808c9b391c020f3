"""A sponsor pool changed from a pools page opened before a colleague changed it (SQLite and PostgreSQL, the real
portal on loopback, real Chromium).

The pools page carries the version of each pool it shows (hidden ``seen``: ``{"pool id": version}``; the
``version`` column of ``portal_sponsor_pools``, one higher at every change of the pool's form fields). A change of a
pool someone else has changed (or added) since the page was opened is refused with 409 and a plain message above
the form: nothing saved, the colleague's pool and the config the kiosks are sent unchanged, what was typed still in
the form, what is saved now beside it. The check is part of the UPDATE (``WHERE version = :seen``). A form without
``seen`` (a script, a page of an older portal) saves as before. Before, the later change silently replaced the
colleague's (lost update).
"""

from __future__ import annotations

import html as htmllib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from races import overlap, staff_portal
from sqlalchemy import inspect, select, text
from sync_helpers import PASSWORD, needs_chromium, staff_page, staff_session

from server_sync import catalog, configstore, pools
from server_sync.db import create_schema, make_engine, sponsor_pools
from server_sync.embedded import start_portal
from server_sync.staff import add_user

CATALOG = {"groups": [{"id": "group-a", "name": "Aの会", "contact": "a@example.jp"}],
           "projects": [{"id": "kodomo", "group_id": "group-a", "title": "こども食堂", "area": "children",
                         "goal_yen": 5000}]}
CHANGED_JA = ("このページを開いたあとに、ほかの人が基金 shoutenkai を変更しました。"
              "何も保存していません（端末への配信もしていません）。"
              "いま保存されている内容を下の表で確かめてください。あなたの入力はフォームに残っています。"
              "その内容でよければ、もう一度「保存して端末に配信する」を押してください。")
ADDED_JA = "このページを開いたあとに、ほかの人が基金 shoutenkai を追加しました。何も保存していません"
CHANGED_EN = "Someone else changed the pool shoutenkai after you opened this page. Nothing was saved"
POOL = {"id": "shoutenkai", "sponsor": "駅前商店会", "sponsor_en": "", "funded_yen": 10000, "yen_per_point": 1,
        "per_kiosk_yen": 3000, "areas": [], "start": None, "end": None}


@pytest.fixture
def op(db_url: str, tmp_path: Path):
    with staff_portal(db_url, tmp_path, CATALOG) as handle:
        yield handle


def with_pool(op: Any) -> Any:
    pools.save_pool(op.app.state.engine, POOL, new=True)
    return op


def pool_form(token: str, sponsor: str, funded: str, action: str | None = "change", **more: str) -> dict[str, Any]:
    form = {"csrf": token, "id": "shoutenkai", "sponsor": sponsor, "sponsor_en": "", "funded_yen": funded,
            "yen_per_point": "1", "per_kiosk_yen": "3000", "start": "", "end": "", **more}
    if action is not None:
        form["action"] = action
    return form


def seen_of(page: str) -> str:
    """The hidden ``seen`` of a pools page, as a browser sends it back."""
    m = re.search(r'<input type="hidden" name="seen" value="([^"]*)"', page)
    assert m, "the pools page carries no seen"
    return htmllib.unescape(m.group(1))


def stored_pool(op: Any) -> dict[str, Any] | None:
    with op.app.state.engine.connect() as conn:
        return next((p for p in pools.list_pools(conn) if p["id"] == "shoutenkai"), None)


def published_pools(op: Any) -> list[dict[str, Any]]:
    """The pools of the config all kiosks are sent now."""
    with op.app.state.engine.connect() as conn:
        cur = configstore.current(conn, target="all")
    return list((cur or {}).get("config", {}).get("pools") or [])


def rows_of(page: str) -> dict[str, tuple[str, str]]:
    """The table beside a refused change: field → (saved now, what was typed)."""
    return {m[0]: (m[1], m[2]) for m in re.findall(
        r'<tr data-field="([^"]+)"><td>[^<]*</td><td class="now"[^>]*>([^<]*)</td><td class="typed"[^>]*>([^<]*)</td>',
        page)}


# --- in the browser: two administrators, each with the pools page open ---------------------------------------------
@needs_chromium
def test_a_change_from_a_page_opened_before_a_colleagues_change_is_refused_and_keeps_the_typing(op, browser):
    """Administrators A and B open the pools page. B raises the shoutenkai pool to ¥30,000 and saves. A, on the page
    opened before, changes the same pool (¥12,000, another sponsor name). A is told in Japanese that B changed it and
    nothing was saved; A's typing is still in the form, with what is saved now beside it; B's pool and what the
    kiosks are sent are unchanged. Then A saves again, deliberately, and it is saved."""
    url = with_pool(op).url
    one, two = staff_page(browser, url, "admin"), staff_page(browser, url, "admin2")
    one.goto(url + "/staff/pools")
    two.goto(url + "/staff/pools")

    two.check("#f-action-change")
    two.fill("#f-id", "shoutenkai")
    two.fill("#f-sponsor", "駅前商店会")
    two.fill("#f-funded_yen", "30000")
    two.fill("#f-per_kiosk_yen", "3000")
    two.click("#pool button[type=submit]")
    two.wait_for_url("**/staff/pools?done=pool_saved")
    before, sent = stored_pool(op), published_pools(op)
    assert before is not None and before["funded_yen"] == 30000
    assert [p["sponsor"] for p in sent] == ["駅前商店会"]

    one.check("#f-action-change")
    one.fill("#f-id", "shoutenkai")
    one.fill("#f-sponsor", "駅前商店会（協賛）")
    one.fill("#f-funded_yen", "12,000")
    one.fill("#f-per_kiosk_yen", "3000")
    with one.expect_navigation():
        one.click("#pool button[type=submit]")
    after = stored_pool(op)
    assert "done=" not in one.url and after == before, (
        f"A's change from the older page was saved over B's: {one.url}, funded ¥{after and after['funded_yen']:,} "
        "(B saved ¥30,000), and nobody was told")
    box = one.locator("#stale p.bad")
    assert box.count() == 1 and box.is_visible(), "no word of the colleague's change"
    assert box.inner_text() == CHANGED_JA
    assert published_pools(op) == sent, "the kiosks were sent A's change"
    kept = {f: one.input_value(f"#f-{f}") for f in ("id", "sponsor", "funded_yen", "per_kiosk_yen")}
    assert kept == {"id": "shoutenkai", "sponsor": "駅前商店会（協賛）", "funded_yen": "12,000",
                    "per_kiosk_yen": "3000"}
    assert one.is_checked("#f-action-change")
    now = one.locator("#stale-typed tr[data-field=funded_yen] td.now")
    assert now.inner_text() == "30,000" and now.is_visible(), "what B saved, beside A's typing"
    assert one.locator("#stale-typed tr[data-field=funded_yen] td.typed").inner_text() == "12,000"
    assert one.locator("#stale-typed tr[data-field]").count() == 2  # the sponsor and the money differ
    assert one.locator("#pools tr[data-id=shoutenkai] td").nth(2).inner_text() == "¥30,000"

    one.click("#pool button[type=submit]")  # A has seen B's change and saves again: deliberate
    one.wait_for_url("**/staff/pools?done=pool_saved")
    last = stored_pool(op)
    assert last is not None and (last["sponsor"], last["funded_yen"]) == ("駅前商店会（協賛）", 12000)
    assert [p["sponsor"] for p in published_pools(op)] == ["駅前商店会（協賛）"]


# --- over HTTP ------------------------------------------------------------------------------------------------------
def test_a_stale_change_answers_409_and_an_up_to_date_one_or_an_old_form_saves(op):
    with_pool(op)
    a, ka = staff_session(op.url, "admin")
    b, kb = staff_session(op.url, "admin2", lang="en")
    seen_a = seen_of(a.get(op.url + "/staff/pools", timeout=10).text)
    seen_b = seen_of(b.get(op.url + "/staff/pools", timeout=10).text)
    assert json.loads(seen_a) == {"shoutenkai": stored_pool(op)["version"]}

    r = a.post(op.url + "/staff/pools", data=pool_form(ka, "駅前商店会", "30000", seen=seen_a), timeout=10)
    assert r.url.endswith("done=pool_saved"), r.text[:300]
    r = b.post(op.url + "/staff/pools", data=pool_form(kb, "Ekimae", "12000", seen=seen_b), timeout=10)
    assert r.status_code == 409 and CHANGED_EN in r.text, r.text[:300]
    assert stored_pool(op)["funded_yen"] == 30000
    assert rows_of(r.text) == {"sponsor": ("駅前商店会", "Ekimae"), "funded_yen": ("30,000", "12000")}
    refreshed = seen_of(r.text)
    assert json.loads(refreshed) == {"shoutenkai": stored_pool(op)["version"]} != json.loads(seen_b)
    r = b.post(op.url + "/staff/pools", data=pool_form(kb, "Ekimae", "12000", seen=refreshed), timeout=10)
    assert r.url.endswith("done=pool_saved"), r.text[:300]
    assert (stored_pool(op)["sponsor"], stored_pool(op)["funded_yen"]) == ("Ekimae", 12000)

    # A form without seen (a script, a page of an older portal), with or without the choice: saved as before.
    for action, funded in (("change", "15000"), (None, "16000")):
        r = a.post(op.url + "/staff/pools", data=pool_form(ka, "駅前商店会", funded, action=action), timeout=10)
        assert r.url.endswith("done=pool_saved") and stored_pool(op)["funded_yen"] == int(funded)
    # A seen that does not read as the page writes it is refused, not saved on a guess.
    r = a.post(op.url + "/staff/pools", data=pool_form(ka, "駅前商店会", "17000", seen="garbage"), timeout=10)
    assert r.status_code == 409 and stored_pool(op)["funded_yen"] == 16000


def test_a_change_of_a_pool_added_after_the_page_was_opened_is_refused(op):
    """A opens the pools page while no pool exists; B adds shoutenkai; A's "change shoutenkai" would overwrite B's
    new pool without A ever having seen it: refused, saying it was added."""
    a, ka = staff_session(op.url, "admin")
    b, kb = staff_session(op.url, "admin2")
    seen_a = seen_of(a.get(op.url + "/staff/pools", timeout=10).text)
    assert json.loads(seen_a) == {}
    r = b.post(op.url + "/staff/pools", data=pool_form(kb, "駅前商店会", "10000", action="add"), timeout=10)
    assert r.url.endswith("done=pool_saved")
    before, sent = stored_pool(op), published_pools(op)
    r = a.post(op.url + "/staff/pools", data=pool_form(ka, "みどり銀行", "50000", seen=seen_a), timeout=10)
    assert r.status_code == 409 and ADDED_JA in r.text, r.text[:300]
    assert stored_pool(op) == before and published_pools(op) == sent


def test_two_changes_from_one_page_at_the_same_moment_save_one_and_refuse_the_other(op):
    """Both administrators change shoutenkai from pages showing the same version; the first is held right after its
    UPDATE, uncommitted, while the second arrives. The second is refused: the check is in its UPDATE, after the
    first's commit, so it cannot slip past on a version read before."""
    with_pool(op)
    a, ka = staff_session(op.url, "admin")
    b, kb = staff_session(op.url, "admin2")
    seen = seen_of(a.get(op.url + "/staff/pools", timeout=10).text)
    r1, r2 = overlap(op.app.state.engine, r"UPDATE portal_sponsor_pools SET sponsor",
                     lambda: a.post(op.url + "/staff/pools", data=pool_form(ka, "駅前商店会", "30000", seen=seen),
                                    timeout=60),
                     lambda: b.post(op.url + "/staff/pools", data=pool_form(kb, "みどり銀行", "12000", seen=seen),
                                    timeout=60))
    assert r1.url.endswith("done=pool_saved"), r1.text[:300]
    assert r2.status_code == 409, f"{r2.status_code} {r2.url}: the second change was saved over the first"
    pool = stored_pool(op)
    assert pool is not None and (pool["sponsor"], pool["funded_yen"]) == ("駅前商店会", 30000)
    assert [(p["sponsor"]) for p in published_pools(op)] == ["駅前商店会"]


# --- a database made by an older portal -----------------------------------------------------------------------------
def test_a_portal_made_before_the_version_column_gets_it_and_older_writers_still_work(db_url: str, tmp_path: Path):
    """The pools table of an older portal (no ``version``) gets the column at the next start, its pools at version 0;
    a process of the older release writing meanwhile (rolling upgrade: inserts and updates naming only the columns it
    knows) keeps working; the new page then guards changes of those pools too."""
    eng = make_engine(db_url)
    try:
        create_schema(eng)
        with eng.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE portal_sponsor_pools DROP COLUMN version")
            conn.execute(text("INSERT INTO portal_sponsor_pools (id, sponsor, funded_yen, created_ms) "
                              "VALUES ('shoutenkai', '駅前商店会', 10000, 1)"))
        assert "version" not in {c["name"] for c in inspect(eng).get_columns("portal_sponsor_pools")}
        create_schema(eng)  # what every portal start runs
        create_schema(eng)  # and again: nothing to do
        assert "version" in {c["name"] for c in inspect(eng).get_columns("portal_sponsor_pools")}
        with eng.begin() as conn:  # the older release, still running: it names none of the new column
            conn.execute(text("INSERT INTO portal_sponsor_pools (id, sponsor, funded_yen, created_ms) "
                              "VALUES ('midori', 'みどり銀行', 5000, 2)"))
            conn.execute(text("UPDATE portal_sponsor_pools SET funded_yen = 20000 WHERE id = 'shoutenkai'"))
        with eng.connect() as conn:
            assert dict(conn.execute(select(sponsor_pools.c.id, sponsor_pools.c.version)).all()) == {
                "shoutenkai": 0, "midori": 0}
    finally:
        eng.dispose()

    handle = start_portal(db_url, media_size=(160, 90), spool_dir=str(tmp_path / "spool"))
    try:
        catalog.import_catalog(handle.app.state.engine, CATALOG)  # a pool is published only with a running project
        add_user(handle.app.state.engine, "admin", PASSWORD, "admin")
        a, ka = staff_session(handle.url, "admin")
        seen = seen_of(a.get(handle.url + "/staff/pools", timeout=10).text)
        assert json.loads(seen) == {"midori": 0, "shoutenkai": 0}
        r = a.post(handle.url + "/staff/pools", data=pool_form(ka, "駅前商店会", "25000", seen=seen), timeout=10)
        assert r.url.endswith("done=pool_saved"), r.text[:300]
        with handle.app.state.engine.connect() as conn:
            assert conn.execute(select(sponsor_pools.c.funded_yen, sponsor_pools.c.version)
                                .where(sponsor_pools.c.id == "shoutenkai")).one() == (25000, 1)
        r = a.post(handle.url + "/staff/pools", data=pool_form(ka, "駅前商店会", "26000", seen=seen), timeout=10)
        assert r.status_code == 409, "the page opened before the change above is stale now"
    finally:
        handle.stop()



def test_a_form_sent_back_for_a_typing_mistake_still_knows_the_page_was_opened_before(op):
    """A's change comes back for a missing sponsor name (nothing about B's change said); corrected and sent again
    from that page, it is still refused: the page keeps the version A's page was opened at."""
    with_pool(op)
    a, ka = staff_session(op.url, "admin")
    b, kb = staff_session(op.url, "admin2")
    seen = seen_of(a.get(op.url + "/staff/pools", timeout=10).text)
    assert b.post(op.url + "/staff/pools", data=pool_form(kb, "駅前商店会", "30000", seen=seen),
                  timeout=10).url.endswith("done=pool_saved")
    r = a.post(op.url + "/staff/pools", data=pool_form(ka, "", "12000", seen=seen), timeout=10)
    assert r.status_code == 422 and seen_of(r.text) == seen
    r = a.post(op.url + "/staff/pools", data=pool_form(ka, "駅前商店会", "12000", seen=seen_of(r.text)), timeout=10)
    assert r.status_code == 409 and stored_pool(op)["funded_yen"] == 30000

"""A sponsor pool's "変更する" (change) link on the pools page (SQLite, the real portal on loopback, real Chromium).

Center staff changing a pool used to choose "change an existing pool" and type every field again by hand (sponsor
names, amounts, rate, areas, dates): one mistyped field silently changed the pool. Each listed pool now has a plain
link (``/staff/pools?edit=<id>``, no script needed) that opens the form filled with the pool as saved, "change"
chosen and the page's version of the pool carried (the stale-change guard still holds), so staff change only what
they mean to. An ID no pool has gives a plain note and the empty "add" form; "add" stays the default otherwise; IDs
are escaped in the link and on the page; a form opened for one pool cannot change another by an edited ID.
"""

from __future__ import annotations

import html as htmllib
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from races import staff_portal
from sqlalchemy import text
from sync_helpers import PASSWORD, needs_chromium, staff_session

from server_sync import configstore, pools
from tests.portal_db import fresh_db

CATALOG = {"groups": [{"id": "group-a", "name": "Aの会", "contact": "a@example.jp"}],
           "projects": [{"id": "kodomo", "group_id": "group-a", "title": "こども食堂", "area": "children",
                         "goal_yen": 5000}]}
SHOUTENKAI = {"id": "shoutenkai", "sponsor": "駅前商店会", "sponsor_en": "Ekimae Shopping Street",
              "funded_yen": 120000, "yen_per_point": 3, "per_kiosk_yen": 4000, "areas": ["children", "green"],
              "start": "2026-04-01", "end": "2099-03-31"}
MIDORI = {"id": "midori", "sponsor": "みどり銀行", "sponsor_en": "", "funded_yen": 50000, "yen_per_point": 1,
          "per_kiosk_yen": 3000, "areas": [], "start": None, "end": None}
FIELDS = ("id", "sponsor", "sponsor_en", "funded_yen", "yen_per_point", "per_kiosk_yen", "start", "end")
EDITING_JA = ("基金 shoutenkai を変更しています。いま保存されている内容を下に入れてあります。"
              "変えたいところだけ直して、「保存して端末に配信する」を押してください。")
MISSING_JA = ("nanohana というIDの基金はないので、変更するものがありません。基金を変更するときは、"
              "上の一覧でその基金の「変更する」を押してください。下のフォームは新しい基金の追加になっています。")
OTHER_ID_JA = "このフォームは基金 shoutenkai の変更なので、IDはここでは変えられません。何も保存していません。"
CHANGED_JA = "このページを開いたあとに、ほかの人が基金 shoutenkai を変更しました。何も保存していません"


@pytest.fixture
def op(tmp_path: Path):
    with staff_portal(fresh_db("sqlite", tmp_path), tmp_path, CATALOG) as handle:
        for p in (SHOUTENKAI, MIDORI):
            pools.save_pool(handle.app.state.engine, p, new=True)
        yield handle


def stored(op: Any) -> dict[str, dict[str, Any]]:
    with op.app.state.engine.connect() as conn:
        return {p["id"]: p for p in pools.list_pools(conn)}


def published(op: Any) -> dict[str, dict[str, Any]]:
    """The pools of the config all kiosks are sent now, by ID."""
    with op.app.state.engine.connect() as conn:
        cur = configstore.current(conn, target="all")
    return {p["id"]: p for p in (cur or {}).get("config", {}).get("pools") or []}


def no_script_page(browser: Any, url: str, user: str = "admin") -> Any:
    """A Chromium page with JavaScript off, signed in as ``user`` (the change link must work without script)."""
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP", java_script_enabled=False)
    page.goto(url + "/staff/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/staff")
    return page


def typed(page: Any) -> dict[str, str]:
    return {f: page.input_value(f"#f-{f}") for f in FIELDS}


def hidden(page_html: str, name: str) -> str | None:
    m = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page_html)
    return htmllib.unescape(m.group(1)) if m else None


def form_of(page_html: str) -> dict[str, Any]:
    """The pools form as a browser would send it from this page (text fields, checked boxes, hidden fields)."""
    form: dict[str, Any] = {}
    for name in FIELDS:
        m = re.search(rf'<input id="f-{name}" name="{name}" type="text" value="([^"]*)"', page_html)
        assert m, f"no field {name}"
        form[name] = htmllib.unescape(m.group(1))
    form["areas"] = re.findall(r'<input type="checkbox" name="areas" value="([^"]+)" checked>', page_html)
    form["action"] = re.search(r'<input type="radio" name="action" value="(\w+)" id="f-action-\w+" checked>',
                               page_html).group(1)
    for name in ("csrf", "seen", "editing"):
        if (v := hidden(page_html, name)) is not None:
            form[name] = v
    return form


# --- in the browser, without JavaScript -----------------------------------------------------------------------------
@needs_chromium
def test_change_link_fills_the_form_and_a_save_changes_only_the_field_changed(op, browser):
    """Staff open the pools page: the form adds a new pool (empty, "add" chosen). They press 変更する beside
    shoutenkai: the form holds everything saved for it (sponsor names, money, rate, per-kiosk amount, areas, dates),
    "change" chosen. They change only the rate and save: in the database and in the config the kiosks are sent,
    only the rate of shoutenkai is different; midori is untouched."""
    before, sent = stored(op), published(op)
    assert set(sent) == {"shoutenkai", "midori"}
    page = no_script_page(browser, op.url)
    page.goto(op.url + "/staff/pools")
    assert page.is_checked("#f-action-add") and not page.is_checked("#f-action-change"), "add is the default"
    assert typed(page)["id"] == "" and typed(page)["sponsor"] == ""
    assert page.locator("#editing").count() == 0 and page.locator("#edit-missing").count() == 0

    link = page.locator("#pools tr[data-id=shoutenkai] a.edit")
    assert link.inner_text() == "変更する"
    link.click()
    page.wait_for_url("**/staff/pools?edit=shoutenkai*")
    assert typed(page) == {"id": "shoutenkai", "sponsor": "駅前商店会", "sponsor_en": "Ekimae Shopping Street",
                           "funded_yen": "120000", "yen_per_point": "3", "per_kiosk_yen": "4000",
                           "start": "2026-04-01", "end": "2099-03-31"}
    assert [a for a in ("children", "welfare", "green", "culture", "town")
            if page.is_checked(f"input[name=areas][value={a}]")] == ["children", "green"]
    assert page.is_checked("#f-action-change") and not page.is_checked("#f-action-add")
    assert page.locator("#editing").inner_text().startswith(EDITING_JA)

    page.fill("#f-yen_per_point", "2")
    with page.expect_navigation():
        page.click("#pool button[type=submit]")
    assert page.url.endswith("/staff/pools?done=pool_saved"), page.url
    after, now_sent = stored(op), published(op)
    changed = {k for k in before["shoutenkai"] if before["shoutenkai"][k] != after["shoutenkai"][k]}
    assert changed == {"yen_per_point", "version"}, f"fields changed besides the rate: {changed}"
    assert after["shoutenkai"]["yen_per_point"] == 2
    assert after["midori"] == before["midori"]
    assert now_sent["shoutenkai"] == {**sent["shoutenkai"], "yen_per_point": 2}
    assert now_sent["midori"] == sent["midori"]
    # Back on the page: the form adds a new pool again.
    assert page.is_checked("#f-action-add") and typed(page)["id"] == ""


@needs_chromium
def test_an_unknown_pool_id_gives_a_plain_note_and_the_add_form(op, browser):
    page = no_script_page(browser, op.url)
    answer = page.goto(op.url + "/staff/pools?edit=nanohana")
    assert answer is not None and answer.status == 200
    note = page.locator("#edit-missing")
    assert note.is_visible() and note.inner_text() == MISSING_JA
    assert page.is_checked("#f-action-add") and typed(page)["id"] == "" and typed(page)["sponsor"] == ""
    assert page.locator("#pools tr[data-id]").count() == 2, "the list is shown as usual"

    # Whatever is in the address is shown as text, never as markup.
    evil = '<b id="injected">x</b>"><script>document.title="pwned"</script>'
    page.goto(op.url + "/staff/pools?edit=" + quote(evil, safe=""))
    assert page.locator("#injected").count() == 0 and page.title() != "pwned"
    assert page.locator("#edit-missing").inner_text().startswith(evil[:60] + "… というIDの基金はないので")
    assert page.is_checked("#f-action-add")


@needs_chromium
def test_a_pool_id_with_unusual_characters_is_escaped_in_the_link_and_the_form(op, browser):
    """A pool whose ID is not of the form's letters (written by a script or an older portal straight into the
    database): its link still opens that pool, and the ID and sponsor name come back exactly, as text."""
    odd = 'a&b "c"<i>#?x=1+2%'
    with op.app.state.engine.begin() as conn:
        conn.execute(text("INSERT INTO portal_sponsor_pools (id, sponsor, funded_yen, created_ms) "
                          "VALUES (:id, :sponsor, 7000, 3)"), {"id": odd, "sponsor": '<b id="bold">商店会</b>&amp;'})
    page = no_script_page(browser, op.url)
    page.goto(op.url + "/staff/pools")
    rows = page.locator("#pools tr[data-id]")
    assert rows.count() == 3
    row = next(rows.nth(i) for i in range(3) if rows.nth(i).get_attribute("data-id") == odd)
    assert row.locator("td").first.inner_text() == odd
    assert page.locator("#bold").count() == 0
    row.locator("a.edit").click()
    page.wait_for_load_state()
    assert typed(page)["id"] == odd and typed(page)["sponsor"] == '<b id="bold">商店会</b>&amp;'
    assert typed(page)["funded_yen"] == "7000" and page.is_checked("#f-action-change")
    assert page.locator("#edit-missing").count() == 0 and page.locator("#bold").count() == 0
    assert page.locator("#editing").inner_text().startswith(f"基金 {odd} を変更しています。")
    assert page.locator("input[type=hidden][name=editing]").get_attribute("value") == odd


# --- over HTTP ------------------------------------------------------------------------------------------------------
def test_a_form_opened_by_the_link_keeps_the_stale_change_guard(op):
    """A opens shoutenkai's change link; B changes shoutenkai; A saves the form the link filled: refused as stale
    (409), B's change kept. Saved again from the page that says so, it is A's deliberate choice and is saved."""
    a, _ = staff_session(op.url, "admin")
    b, kb = staff_session(op.url, "admin2")
    form = form_of(a.get(op.url + "/staff/pools?edit=shoutenkai", timeout=10).text)
    assert form["action"] == "change" and form["editing"] == "shoutenkai"
    assert form["areas"] == ["children", "green"]
    colleague = {**form_of(b.get(op.url + "/staff/pools?edit=shoutenkai", timeout=10).text), "csrf": kb,
                 "funded_yen": "150000"}
    assert b.post(op.url + "/staff/pools", data=colleague, timeout=10).url.endswith("done=pool_saved")

    r = a.post(op.url + "/staff/pools", data={**form, "per_kiosk_yen": "5000"}, timeout=10)
    assert r.status_code == 409 and CHANGED_JA in r.text, r.text[:300]
    assert (stored(op)["shoutenkai"]["funded_yen"], stored(op)["shoutenkai"]["per_kiosk_yen"]) == (150000, 4000)
    again = form_of(r.text)
    assert again["per_kiosk_yen"] == "5000" and again["editing"] == "shoutenkai"
    assert a.post(op.url + "/staff/pools", data=again, timeout=10).url.endswith("done=pool_saved")
    assert stored(op)["shoutenkai"]["per_kiosk_yen"] == 5000


def test_a_form_opened_for_one_pool_does_not_change_another_by_its_id(op):
    """The change form of shoutenkai with its ID edited to midori would put shoutenkai's values on midori: refused
    beside the ID, nothing saved. Choosing "add" with a new ID adds a copy, as staff may mean."""
    a, _ = staff_session(op.url, "admin")
    before, sent = stored(op), published(op)
    form = form_of(a.get(op.url + "/staff/pools?edit=shoutenkai", timeout=10).text)
    r = a.post(op.url + "/staff/pools", data={**form, "id": "midori"}, timeout=10)
    said = re.search(r'<p class="bad err" data-for="id">([^<]*)</p>', r.text)
    assert r.status_code == 422 and "done=" not in r.url and said, r.text[:300]
    assert said.group(1).startswith(OTHER_ID_JA), said.group(1)
    assert stored(op) == before and published(op) == sent
    r = a.post(op.url + "/staff/pools", data={**form, "id": "shoutenkai-2027", "action": "add"}, timeout=10)
    assert r.url.endswith("done=pool_saved"), r.text[:300]
    copy = stored(op)["shoutenkai-2027"]
    assert {k: copy[k] for k in SHOUTENKAI if k != "id"} == {k: v for k, v in SHOUTENKAI.items() if k != "id"}

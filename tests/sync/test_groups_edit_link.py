"""The staff groups page's "編集" (Edit) link and ``?edit=<id>`` (SQLite, the real portal on loopback, real Chromium).

An ID no group has in ``/staff/groups?edit=<id>`` (an old bookmark, a group renamed by a catalog import, a typo) used
to answer the "not allowed" page (403), as if the staff member had no right to the page. It now shows the page as
usual: the list, a plain note that there is no such group, and the empty "add" form (as the pools page does).

The Edit link put the ID into the address as it is (``?edit={{ g.id }}``). The form and catalog imports allow only
lowercase letters, digits and hyphens, which need no encoding; but a group written straight into the database (a
script, an older portal) may have any ID, and an ``&``, ``#`` or ``+`` in it opened another group or none. The ID is
now URL-encoded in the link.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from races import staff_portal
from sqlalchemy import text
from sync_helpers import PASSWORD, needs_chromium, staff_session

from tests.portal_db import fresh_db

CATALOG = {"groups": [{"id": "midori-kai", "name": "みどりの会", "description": "雑木林の手入れ",
                       "contact": "090-1111"},
                      {"id": "kodomo-club", "name": "子ども応援団", "contact": "kodomo@example.jp"}],
           "projects": [{"id": "kodomo", "group_id": "kodomo-club", "title": "こども食堂", "area": "children",
                         "goal_yen": 5000}]}
MISSING_JA = ("nanohana というIDの団体はないので、変更するものがありません。団体を変更するときは、"
              "上の一覧でその団体の「編集」を押してください。下のフォームは新しい団体の追加になっています。")
ODD = 'a&edit=midori-kai b#?x=1+2%'


@pytest.fixture
def op(tmp_path: Path):
    with staff_portal(fresh_db("sqlite", tmp_path), tmp_path, CATALOG) as handle:
        yield handle


def signed_in(browser: Any, url: str, user: str = "staff1") -> Any:
    """A Chromium page at phone size with JavaScript off (the link must work without script), signed in."""
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP", java_script_enabled=False)
    page.goto(url + "/staff/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/staff")
    return page


def edit_link(page: Any, group_id: str) -> Any:
    """The Edit link in the row of the group whose ID the row shows."""
    rows = page.locator("#groups tr")
    for i in range(rows.count()):
        code = rows.nth(i).locator("code")
        if code.count() and code.inner_text() == group_id:
            return rows.nth(i).locator("a[href*='edit=']")
    raise AssertionError(f"no row for {group_id!r}")


@needs_chromium
def test_an_unknown_group_id_gives_a_plain_note_and_the_add_form(op, browser):
    page = signed_in(browser, op.url)
    answer = page.goto(op.url + "/staff/groups?edit=nanohana")
    assert answer is not None and answer.status == 200, answer and answer.status
    note = page.locator("#edit-missing")
    assert note.is_visible() and note.inner_text() == MISSING_JA
    assert page.locator("#f-id").is_visible() and page.input_value("#f-id") == ""
    assert page.input_value("#f-name") == ""
    assert page.locator("#group-form input[type=hidden][name=editing]").get_attribute("value") == ""
    assert sorted(page.locator("#groups code").all_inner_texts()) == ["kodomo-club", "midori-kai"], (
        "the list is shown as usual")

    # The form below adds a group, as it says.
    page.fill("#f-id", "nanohana")
    page.fill("#f-name", "菜の花の会")
    with page.expect_navigation():
        page.click("#group-form button[type=submit]")
    assert "#edit-missing" not in page.content() and page.locator("#edit-missing").count() == 0
    assert "nanohana" in page.locator("#groups").inner_text()

    # Whatever is in the address is shown as text, never as markup.
    evil = '<b id="injected">x</b>"><script>document.title="pwned"</script>' * 2
    answer = page.goto(op.url + "/staff/groups?edit=" + quote(evil, safe=""))
    assert answer is not None and answer.status == 200
    assert page.locator("#injected").count() == 0 and page.title() != "pwned"
    assert page.locator("#edit-missing").inner_text().startswith(evil[:60] + "… というIDの団体はないので")
    page.close()


def test_an_unknown_group_id_in_english(op):
    """In English the note is in English, and the page is the "add" form."""
    s, _ = staff_session(op.url, "staff2", lang="en")
    r = s.get(op.url + "/staff/groups?edit=nanohana", timeout=10)
    assert r.status_code == 200
    assert "There is no group with the ID nanohana, so there is nothing to change." in r.text
    assert 'name="editing" value=""' in r.text


@needs_chromium
def test_the_edit_link_encodes_the_id_and_opens_that_group(op, browser):
    """A group with an ID the form would not allow (written straight into the database), whose characters mean
    something in an address: its link carries the ID encoded, and opens that group (not みどりの会, not none)."""
    with op.app.state.engine.begin() as conn:
        conn.execute(text("INSERT INTO portal_groups (id, name, description, contact, created_ms, updated_ms) "
                          "VALUES (:id, '古い団体', '', '', 1, 1)"), {"id": ODD})
    page = signed_in(browser, op.url)
    page.goto(op.url + "/staff/groups")
    for gid in ("midori-kai", "kodomo-club", ODD):
        href = edit_link(page, gid).get_attribute("href") or ""
        parts = urlsplit(href)
        assert parts.path == "/staff/groups" and parts.fragment == "", href
        assert parse_qs(parts.query) == {"edit": [gid]}, f"the link {href!r} does not carry the ID {gid!r}"

    edit_link(page, ODD).click()
    page.wait_for_load_state()
    assert page.locator("#edit-missing").count() == 0
    assert page.input_value("#f-name") == "古い団体"
    assert page.locator("#group-form input[type=hidden][name=editing]").get_attribute("value") == ODD

    page.goto(op.url + "/staff/groups")
    edit_link(page, "midori-kai").click()
    page.wait_for_url("**/staff/groups?edit=midori-kai")
    assert (page.input_value("#f-name"), page.input_value("#f-contact")) == ("みどりの会", "090-1111")
    page.close()

"""Saving a group from the staff groups page when the stored group is not one the form would make (SQLite, the real
portal on loopback, real Chromium for the page).

A group whose stored ID the form would not take (the form allows only lowercase letters, digits and hyphens; an older
release or a script wrote it straight into the database) answered 500 when saved: the catalog's input model checked
the ID again and refused it, uncaught. Its name and contact can now be changed; its ID stays as stored (projects and
users refer to it).

A save of a group removed after the page was opened answered the "not allowed" page (403), as if the staff member had
no right to the page, and what they typed was lost. It now answers the page with a plain note that the group is no
longer there and nothing was saved, and the "add" form holding what was typed (saving it adds the group again).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from races import staff_portal
from sqlalchemy import select, text
from sync_helpers import PASSWORD, needs_chromium, staff_session

from server_sync.db import groups
from tests.portal_db import fresh_db

CATALOG = {"groups": [{"id": "midori-kai", "name": "みどりの会", "description": "雑木林の手入れ",
                       "contact": "090-1111"},
                      {"id": "kodomo-club", "name": "子ども応援団", "contact": "kodomo@example.jp"}],
           "projects": [{"id": "kodomo", "group_id": "kodomo-club", "title": "こども食堂", "area": "children",
                         "goal_yen": 5000}]}
OLD_IDS = ["Old_Group", "旧みなみ会", " padded ", "a&b#c"]
GONE_JA = ("IDが midori-kai の団体は、このページを開いた後で削除されたため、何も保存していません。入力した内容は"
           "下のフォームに残しています。新しい団体としてもう一度追加するときは、IDを確かめて「保存」を押してください。")
GONE_EN = "The group midori-kai was removed after this page was opened, so nothing was saved."


@pytest.fixture
def op(tmp_path: Path):
    with staff_portal(fresh_db("sqlite", tmp_path), tmp_path, CATALOG) as handle:
        yield handle


def put_group(op: Any, gid: str, name: str) -> None:
    with op.app.state.engine.begin() as conn:
        conn.execute(text("INSERT INTO portal_groups (id, name, description, contact, created_ms, updated_ms) "
                          "VALUES (:id, :name, '', '', 1, 1)"), {"id": gid, "name": name})


def stored(op: Any) -> dict[str, dict[str, Any]]:
    with op.app.state.engine.connect() as conn:
        return {r["id"]: dict(r) for r in conn.execute(select(groups)).mappings()}


def form_fields(page: str) -> dict[str, str]:
    """What a browser sends back from the group form (its inputs, hidden ones too, and the textarea)."""
    form = page[page.index('id="group-form"'):]
    form = form[:form.index("</form>")]
    fields = {k: html.unescape(v) for k, v in re.findall(r'<input[^>]* name="([^"]+)"[^>]* value="([^"]*)"', form)}
    for name, body in re.findall(r'<textarea[^>]* name="([^"]+)"[^>]*>(.*?)</textarea>', form, flags=re.S):
        fields[name] = html.unescape(body)
    fields.pop("csrf", None)
    return fields


@pytest.mark.parametrize("gid", OLD_IDS)
def test_a_group_with_an_id_the_form_would_not_take_can_be_saved(op, gid):
    put_group(op, gid, "古い団体")
    s, token = staff_session(op.url, "staff1")
    opened = s.get(op.url + "/staff/groups", params={"edit": gid}, timeout=10)
    assert opened.status_code == 200
    fields = form_fields(opened.text)
    assert fields["editing"] == gid and fields["name"] == "古い団体"
    r = s.post(op.url + "/staff/groups", timeout=10,
               data={**fields, "csrf": token, "name": "新しい名前の会", "contact": "090-2222-3333"})
    assert r.status_code == 200 and r.url.endswith("/staff/groups?done=saved"), (r.status_code, r.text[:300])
    g = stored(op)
    assert set(g) == {"midori-kai", "kodomo-club", gid}, "the ID is kept as stored; no group added or lost"
    assert (g[gid]["name"], g[gid]["contact"]) == ("新しい名前の会", "090-2222-3333")
    assert g["midori-kai"]["name"] == "みどりの会"

    # The form's own checks still apply to such a group: a name another group has is refused beside the field.
    fields = form_fields(s.get(op.url + "/staff/groups", params={"edit": gid}, timeout=10).text)
    r = s.post(op.url + "/staff/groups", data={**fields, "csrf": token, "name": "みどりの会"}, timeout=10)
    assert r.status_code == 422 and "同じ名前の団体がすでにあります。" in r.text, r.text[:300]
    assert form_fields(r.text)["editing"] == gid, "the form still edits that group"
    assert stored(op)[gid]["name"] == "新しい名前の会"


def test_saving_a_group_removed_meanwhile_keeps_the_typing_and_offers_to_add_it(op):
    s, token = staff_session(op.url, "staff1")
    fields = form_fields(s.get(op.url + "/staff/groups?edit=midori-kai", timeout=10).text)
    assert fields["editing"] == "midori-kai" and fields["seen"]
    with op.app.state.engine.begin() as conn:  # a script removes the group while the page is open
        conn.execute(text("DELETE FROM portal_groups WHERE id = 'midori-kai'"))

    typed = {"name": "みどりの会（新）", "description": "毎月第2土曜に集まる", "contact": "090-9999"}
    r = s.post(op.url + "/staff/groups", data={**fields, **typed, "csrf": token}, timeout=10)
    assert r.status_code == 409, (r.status_code, r.text[:300])
    note = re.search(r'<p class="bad" id="group-gone"[^>]*>(.*?)</p>', r.text)
    assert note is not None and note.group(1) == GONE_JA
    again = form_fields(r.text)
    assert again["editing"] == "", "the form is the 'add' form"
    assert {k: again[k] for k in ("id", *typed)} == {"id": "midori-kai", **typed}, "what was typed is kept"
    assert "midori-kai" not in stored(op), "nothing was saved"

    # Saving that form adds the group again, as the note says.
    r = s.post(op.url + "/staff/groups", data={**again, "csrf": token}, timeout=10)
    assert r.url.endswith("/staff/groups?done=saved"), r.text[:300]
    g = stored(op)["midori-kai"]
    assert (g["name"], g["description"], g["contact"]) == ("みどりの会（新）", "毎月第2土曜に集まる", "090-9999")


def test_a_group_removed_meanwhile_in_english_and_an_odd_id_left_for_staff_to_choose(op):
    put_group(op, "Old_Group", "古い団体")
    s, token = staff_session(op.url, "staff2", lang="en")
    fields = form_fields(s.get(op.url + "/staff/groups?edit=midori-kai", timeout=10).text)
    old = form_fields(s.get(op.url + "/staff/groups?edit=Old_Group", timeout=10).text)
    with op.app.state.engine.begin() as conn:
        conn.execute(text("DELETE FROM portal_groups WHERE id IN ('midori-kai', 'Old_Group')"))
    r = s.post(op.url + "/staff/groups", data={**fields, "csrf": token}, timeout=10)
    assert r.status_code == 409 and GONE_EN in r.text
    # An ID the form would not take is not put in the form's ID field: the staff member chooses a new one.
    r = s.post(op.url + "/staff/groups", data={**old, "csrf": token, "name": "別の名前"}, timeout=10)
    assert r.status_code == 409 and "The group Old_Group was removed" in r.text
    again = form_fields(r.text)
    assert (again["id"], again["name"], again["editing"]) == ("", "別の名前", "")


@needs_chromium
def test_in_chromium_a_removed_group_shows_the_note_beside_the_form_with_the_typing(op, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP")
    page.goto(op.url + "/staff/login")
    page.fill("input[name=username]", "staff1")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/staff")
    page.goto(op.url + "/staff/groups?edit=midori-kai")
    page.fill("#f-contact", "080-7777-6666")
    with op.app.state.engine.begin() as conn:
        conn.execute(text("DELETE FROM portal_groups WHERE id = 'midori-kai'"))
    with page.expect_navigation() as nav:
        page.click("#group-form button[type=submit]")
    assert nav.value is not None and nav.value.status == 409
    note = page.locator("#group-gone")
    assert note.is_visible() and note.inner_text() == GONE_JA
    box, form = note.bounding_box(), page.locator("#group-form").bounding_box()
    assert box is not None and form is not None and box["y"] < form["y"], "the note is just above the form"
    assert page.input_value("#f-id") == "midori-kai" and page.input_value("#f-contact") == "080-7777-6666"
    assert page.input_value("#f-name") == "みどりの会"
    with page.expect_navigation():
        page.click("#group-form button[type=submit]")
    assert page.url.endswith("/staff/groups?done=saved")
    assert stored(op)["midori-kai"]["contact"] == "080-7777-6666"
    page.close()

"""A group editor's journey besides the movie maker (a volunteer, often older, on a phone, reading Japanese, no IT
skills), in headless Chromium against a real portal (conftest's ``editor_site``: one group and its editor):

- the project form refused the dates and goal as a Japanese keyboard types them: 「2026/4/1」 and
  「2026年4月1日」 got 「日付を 2026-04-01 の形で入力してください。」, 「８０，０００」 (full-width comma)
  「目標金額を1円以上の整数で…」; they are now read as meant, and the same form sent twice is still 「保存しました。」;
- on a phone the projects table scrolls sideways in its box and its "編集" link was the last column, out of sight,
  and nothing led to the public page to see whether a change worked; both links now sit under the title;
- the sign-in page said only "Staff login / 職員ログイン" (a volunteer is not 職員) and nothing about a forgotten
  password; it now says who signs in there and to ask the center staff for a new password.
"""

from __future__ import annotations

import re

import pytest
from sync_helpers import PASSWORD, needs_chromium, staff_page, staff_session

from server_sync import catalog

PHONE = (390, 844)
LAPTOP = (1280, 800)

pytestmark = needs_chromium


def stored(portal) -> dict:  # noqa: ANN001
    with portal.app.state.engine.connect() as conn:
        p = catalog.project(conn, "kodomo-shokudo")
    assert p is not None
    return p


def test_dates_and_goal_typed_on_a_japanese_keyboard_are_saved_as_meant(editor_site, browser):
    page = staff_page(browser, editor_site.url, "editor1", PASSWORD, size=PHONE)
    page.goto(editor_site.url + "/staff/projects/kodomo-shokudo")
    page.fill("#f-title", "こども食堂 ひまわり")
    page.fill("#f-goal_yen", "８０，０００円")
    page.fill("#f-start", "2026/4/1")
    page.fill("#f-end", "２０２７年３月３１日")
    page.click("#project-form button[type=submit]")
    page.wait_for_url("**/staff/projects?done=saved")
    assert page.inner_text("#notice") == "保存しました。"
    p = stored(editor_site)
    assert (p["title"], p["goal_yen"], str(p["start"]), str(p["end"])) == (
        "こども食堂 ひまわり", 80000, "2026-04-01", "2027-03-31")
    # A date that is no date is still refused beside its field, as typed, nothing saved.
    page.goto(editor_site.url + "/staff/projects/kodomo-shokudo")
    page.fill("#f-start", "2026/13/1")
    page.click("#project-form button[type=submit]")
    assert "日付を" in page.inner_text(".err[data-for=start]")
    assert page.input_value("#f-start") == "2026/13/1"  # as typed, to correct
    assert str(stored(editor_site)["start"]) == "2026-04-01"


def test_the_same_form_with_a_slashed_date_sent_twice_is_saved_not_a_colleagues_change(editor_site):
    s, token = staff_session(editor_site.url, "editor1")
    form_page = s.get(editor_site.url + "/staff/projects/kodomo-shokudo", timeout=10).text
    seen = re.search(r'name="seen" value="(\d+)"', form_page)
    assert seen is not None
    form = {"csrf": token, "editing": "kodomo-shokudo", "seen": seen[1], "title": "みんなのこども食堂",
            "summary": "毎週土曜の食堂です", "group_id": "kodomo-club", "area": "children", "goal_yen": "５０，０００",
            "start": "2026/4/1", "end": "", "active": "1"}
    answers = [s.post(editor_site.url + "/staff/projects", data=form, timeout=10) for _ in (1, 2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert all("保存しました。" in a.text for a in answers), answers[1].text
    assert str(stored(editor_site)["start"]) == "2026-04-01"


@pytest.mark.parametrize("size", [PHONE, LAPTOP], ids=["phone", "laptop"])
def test_edit_and_the_public_page_are_in_sight_and_the_public_page_shows_the_change(editor_site, browser, size):
    url = editor_site.url
    page = staff_page(browser, url, "editor1", PASSWORD, size=size)
    if size == PHONE:  # on a phone the staff menu opens under 「メニュー」 (base.html)
        page.click("header summary")
    page.click("a[href='/staff/projects']")
    row = page.locator("tr[data-project=kodomo-shokudo]")
    edit = row.locator("a.edit-project")
    box = edit.bounding_box()
    assert box is not None and box["x"] + box["width"] <= size[0], f"the Edit link is out of sight: {box}"
    assert row.locator("a.public-page").is_visible()
    edit.click()
    page.wait_for_url("**/staff/projects/kodomo-shokudo")
    page.fill("#f-title", "こども食堂 ひまわり")
    page.click("#project-form button[type=submit]")
    page.wait_for_url("**/staff/projects?done=saved")
    page.locator("tr[data-project=kodomo-shokudo] a.public-page").click()
    page.wait_for_url("**/p/kodomo-shokudo")
    assert "こども食堂 ひまわり" in page.inner_text("main")


def test_a_hidden_project_without_donations_has_no_public_page_link(editor_site, browser):
    catalog.import_catalog(editor_site.app.state.engine, {"projects": [
        {"id": "kodomo-shokudo", "group_id": "kodomo-club", "title": "みんなのこども食堂", "area": "children",
         "goal_yen": 50000, "active": False}]})
    page = staff_page(browser, editor_site.url, "editor1", PASSWORD, size=PHONE)
    page.goto(editor_site.url + "/staff/projects")
    row = page.locator("tr[data-project=kodomo-shokudo]")
    assert row.locator("a.edit-project").is_visible()
    assert row.locator("a.public-page").count() == 0  # /p/… would answer "not found"
    assert browser.new_page().goto(editor_site.url + "/p/kodomo-shokudo").status == 404


def test_the_sign_in_page_says_who_signs_in_and_what_to_do_about_a_forgotten_password(editor_site, browser):
    page = browser.new_page(viewport={"width": PHONE[0], "height": PHONE[1]}, locale="ja-JP")
    page.goto(editor_site.url + "/staff/login")
    assert "団体の編集者" in page.inner_text("#who-signs-in")
    forgot = page.inner_text("#forgot")
    assert "パスワードやユーザー名を忘れたときは、センターの職員に伝えてください" in forgot
    assert forgot.isascii() is False and "password" not in forgot.lower()
    # Still there after a wrong password, when it is needed.
    page.fill("input[name=username]", "editor1")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert page.locator("#forgot").is_visible()

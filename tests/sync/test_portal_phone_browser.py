"""The portal's pages as the people who use them: a group editor and center staff on a phone (360×740,
touch, headless Chromium), against a real portal on loopback (SQLite and PostgreSQL).

- Everything a finger presses (the header's menu, buttons, fields, "show the numbers as a table") is at
  least 44 px high, and no page scrolls sideways.
- Deleting a user, discarding a finished movie and revoking a kiosk's key ask first: one tap never does
  it (the two pages' Publish and Discard sat touching, one under the other).
- Saving point rules, a sponsor pool or volunteer activities before the first project says why in
  Japanese, with what was typed kept, not the publisher's English.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from photos import photo
from sync_helpers import PASSWORD, PROJECTS, enrolled, needs_chromium, staff_page, staff_session

from server_sync import catalog, staff
from server_sync.configstore import publish
from server_sync.embedded import start_portal
from server_sync.staff import add_user

pytestmark = needs_chromium

PHONE = (360, 740)
SIZE = (192, 108)  # the movie maker's output here: small, so a movie is made in seconds
GROUP = {"id": "kodomo-club", "name": "子ども応援団", "contact": "090-0000-1111"}

# What a finger presses. Links inside a sentence or a table cell are text (WCAG 2.5.8 exempts them); the
# header's menu links are not. A checkbox counts by its label, which is what the finger presses.
TARGETS = """() => {
  const out = [];
  const sel = 'header nav a, button, select, summary, input:not([type=hidden]):not([type=checkbox]):not([type=radio]),'
            + ' label:has(> input[type=checkbox])';
  for (const el of document.querySelectorAll(sel)) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;  // hidden (a closed <details>, a hidden box)
    const text = (el.innerText || el.value || '').trim().slice(0, 20);
    const what = `${el.tagName.toLowerCase()}[${el.id || el.name || ''}]`;
    if (r.height < 44) out.push(`${what} "${text}" ${Math.round(r.height)}px`);
  }
  return out;
}"""


def phone(browser, url: str, user: str):  # noqa: ANN001, ANN201
    return staff_page(browser, url, user, size=PHONE)


@pytest.fixture
def center(db_url: str, tmp_path: Path):
    handle = start_portal(db_url, media_size=SIZE, movie_size=SIZE, spool_dir=str(tmp_path / "spool"),
                          secret_file=tmp_path / "secret")
    eng = handle.app.state.engine
    add_user(eng, "admin", PASSWORD)
    add_user(eng, "staff1", PASSWORD, "staff")
    yield handle
    handle.stop()


def test_every_button_menu_link_and_field_is_a_finger_high_on_a_phone(center, rig, browser):
    url, eng = center.url, center.app.state.engine
    publish(eng, {"projects": PROJECTS})
    catalog.import_catalog(eng, {"groups": [GROUP], "projects": [
        {"id": "kodomo", "group_id": GROUP["id"], "title": "こども食堂", "area": "children", "goal_yen": 5000}]})
    rig.donate(4)  # the charts and their "show the numbers" switches
    rig.ledger.checkpoint()
    assert enrolled(rig, center).sync_once().ok
    add_user(eng, "editor1", PASSWORD, "editor", GROUP["id"])
    pages = {
        "editor1": ["/staff", "/staff/projects", "/staff/projects/new", "/staff/media", "/staff/movies"],
        "admin": ["/staff/kiosks", "/staff/playlists?target=all", "/staff/volunteer", "/staff/groups",
                  "/staff/users", "/staff/point-rules", "/staff/pools", "/staff/reconciliation"],
    }
    small: dict[str, list[str]] = {}
    for user, paths in pages.items():
        page = phone(browser, url, user)
        assert page.evaluate("navigator.maxTouchPoints") >= 0
        for path in paths:
            page.goto(url + path)
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0], path
            got = page.evaluate(TARGETS)
            if got:
                small[path] = got
        page.close()
    public = browser.new_page(viewport={"width": PHONE[0], "height": PHONE[1]}, locale="ja-JP", has_touch=True)
    for path in ("/", "/a/children", "/p/kodomo", "/points/rules", "/staff/login"):
        public.goto(url + path)
        assert public.evaluate("document.documentElement.scrollWidth") <= PHONE[0], path
        got = public.evaluate(TARGETS)
        if got:
            small[path] = got
    assert small == {}, small


def test_deleting_a_user_asks_first_and_then_deletes(center, browser):
    url, eng = center.url, center.app.state.engine
    add_user(eng, "clerk", PASSWORD, "staff")
    admin = phone(browser, url, "admin")
    admin.goto(url + "/staff/users")
    row = admin.locator("#users tr[data-user=clerk]")
    row.locator("summary").click()  # the first tap: the question, nothing deleted yet
    assert "clerk" in {u["username"] for u in staff.list_users(eng)}
    question = row.locator(".question").inner_text()
    assert "clerk" in question and "元に戻せません" in question
    yes = row.locator("button[type=submit]")
    assert yes.inner_text() == "削除する" and yes.is_visible()
    yes.click()
    admin.wait_for_url("**/staff/users?done=deleted")
    assert "clerk" not in {u["username"] for u in staff.list_users(eng)}
    assert admin.locator("#users tr[data-user=clerk]").count() == 0


def test_discarding_a_finished_movie_asks_first_and_publish_is_not_next_to_it(center, browser, tmp_path):
    url, eng = center.url, center.app.state.engine
    catalog.import_catalog(eng, {"groups": [GROUP], "projects": [
        {"id": "kodomo", "group_id": GROUP["id"], "title": "こども食堂", "area": "children", "goal_yen": 5000}]})
    add_user(eng, "editor1", PASSWORD, "editor", GROUP["id"])
    editor = phone(browser, url, "editor1")
    editor.goto(url + "/staff/movies")
    for i in range(3):
        editor.set_input_files(f"#f-photo{i}", str(photo(tmp_path / f"p{i}.jpg", i, size=(400, 300))))
        editor.fill(f"#f-caption{i}", f"夏まつり{i + 1}")
    editor.click("#movie-send")
    editor.wait_for_url("**/staff/movies/*", timeout=60_000)
    job = editor.url.rsplit("/", 1)[1]
    editor.wait_for_selector("#preview", timeout=180_000)  # the page follows the job, then shows the preview
    publish_box = editor.locator("#publish").bounding_box()
    discard_box = editor.locator("#discard-ask").bounding_box()
    assert publish_box and discard_box
    # A thumb aiming at one does not land on the other: apart, not stacked edge to edge.
    gap = max(discard_box["y"] - (publish_box["y"] + publish_box["height"]),
              discard_box["x"] - (publish_box["x"] + publish_box["width"]))
    assert gap >= 8, (publish_box, discard_box)
    editor.click("#discard-ask")  # the first tap only asks
    assert center.app.state.jobs.get(job) is not None
    assert "元に戻せません" in editor.locator("details.confirm .question").inner_text()
    editor.click("#discard")
    editor.wait_for_url("**/staff/movies?done=discarded")
    assert center.app.state.jobs.get(job) is None


def test_revoking_a_kiosks_key_asks_first(center, rig, browser):
    url, eng = center.url, center.app.state.engine
    publish(eng, {"projects": PROJECTS})
    rig.donate(2)
    rig.ledger.checkpoint()
    assert enrolled(rig, center).sync_once().ok
    admin = phone(browser, url, "admin")
    admin.goto(url + "/staff/kiosks")
    row = admin.locator(f"tr[data-kiosk='{rig.kiosk_id}']")
    form = row.locator(f"form[action='/staff/kiosks/{rig.kiosk_id}/revocation']")
    assert not form.is_visible()  # nothing to press by mistake until it is asked for
    row.locator("summary").click()
    assert form.is_visible() and "元に戻せません" in form.locator(".question").inner_text()


@pytest.mark.parametrize("path, fields, kept", [
    ("/staff/point-rules", {"#f-points_per_100_yen": "2", "#f-r0_id": "seisou", "#f-r0_title": "公園の清掃",
                            "#f-r0_points": "10", "#f-r0_description": "公園を1時間清掃します"}, "#f-r0_title"),
    ("/staff/pools", {"#f-id": "shoutenkai", "#f-sponsor": "駅前商店会", "#f-funded_yen": "10000",
                      "#f-yen_per_point": "1", "#f-per_kiosk_yen": "5000"}, "#f-sponsor"),
    ("/staff/volunteer", {"#f-a0_id": "seisou", "#f-a0_title": "公園の清掃", "#f-a0_points": "10",
                          "#f-a0_max_points": "100"}, "#f-a0_title"),
])
def test_saving_before_the_first_project_says_why_in_japanese_and_keeps_the_form(center, browser, path, fields,
                                                                                   kept):
    url = center.url
    admin = phone(browser, url, "admin")
    admin.goto(url + path)
    for sel, value in fields.items():
        admin.fill(sel, value)
    admin.locator("main form button[type=submit]").last.click()
    admin.wait_for_load_state()
    errors = [t for t in admin.locator("main p.bad").all_inner_texts() if t.strip()]
    assert errors, admin.content()[-2000:]
    for text in errors:
        assert not re.search(r"[A-Za-z]{3,}", text), text  # no English, no field names
    assert any("プロジェクト" in t for t in errors), errors
    assert admin.input_value(kept) == fields[kept]  # nothing typed is lost
    # With the English switch: the same, in plain English, not the publisher's wording.
    s, token = staff_session(url, "admin", lang="en")
    r = s.post(url + path, data={"csrf": token, **{k.removeprefix("#f-"): v for k, v in fields.items()}}, timeout=10)
    assert r.status_code == 422 and "Projects page" in r.text and "catalog has no running project" not in r.text


def test_the_english_reason_stays_for_the_command_line():
    from server_sync import pages
    from server_sync.wire.configdoc import ConfigDocError

    # The words come from the refusal's code (tests/sync/test_staff_words.py), the English stays in str().
    exc = ConfigDocError("projects: the catalog has no running project (add one, or make one active)",
                         "no_running_project")
    ja = pages.staff_text("Could not publish: %(reason)s", "ja", reason=pages.refusal(exc, "ja"))
    en = pages.staff_text("Could not publish: %(reason)s", "en", reason=pages.refusal(exc, "en"))
    assert "プロジェクト" in ja and str(exc) not in ja and str(exc) not in en and "Projects page" in en
    assert pages.staff_text("Could not publish: %(reason)s", "ja", reason="x") == "公開できませんでした: x"

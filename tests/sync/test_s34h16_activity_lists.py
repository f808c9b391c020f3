"""Session 34 (h16): the volunteer and point-rules forms never wipe every kiosk's activities by accident, and the
activity, point-rules and sponsor-pool forms refuse letters the kiosks' font cannot draw.

- A volunteer or point-rules form that arrives with no activity rows at all (the page always sends some, empty ones
  included: a page cut off while loading or sending, a script) was read as "no activities" and published an empty
  list to every kiosk, whose staff menu then hid 「ボランティア」: no volunteer points could be recorded. Now refused
  in plain Japanese; nothing is published and the page shows the activities in force.
- Staff who empty every row on purpose are asked first (「すべての活動を消して公開します。よろしいですか？」); only
  the answer's own button publishes the empty list. Nothing to take away (the kiosks have none now): not asked.
- An activity's or a sponsor's name with ｱ or ① was saved as typed and shown as empty boxes on the kiosk; refused
  beside the field, naming the letters, with the message the slide form uses (operator.SLIDE_GLYPHS).

A real portal on loopback (SQLite and PostgreSQL), real headless Chromium for the page's question.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sync_helpers import PASSWORD, PROJECTS, needs_chromium, staff_page, staff_session

from server_sync import catalog, configstore, pointrules, pools
from server_sync.staff import add_user

VOLUNTEER = {"a0_id": "park-cleanup", "a0_title": "公園の清掃", "a0_title_en": "Park cleanup", "a0_points": "10",
             "a0_max_points": "50", "a1_id": "reception", "a1_title": "受付", "a1_title_en": "", "a1_points": "5",
             "a1_max_points": "5"}
EMPTY_ROWS = {f"a{i}_{k}": "" for i in range(5) for k in ("id", "title", "title_en", "points", "max_points")}
RULES = {"points_per_100_yen": "1", "r0_id": "event-shift", "r0_title": "イベントの受付", "r0_title_en": "",
         "r0_points": "10", "r0_description": "催しで2時間、受付をする", "r0_description_en": ""}
EMPTY_RULES = {"points_per_100_yen": "2", **{f"r{i}_{k}": "" for i in range(4) for k in (
    "id", "title", "title_en", "points", "description", "description_en")}}
QUESTION = "すべての活動を消して公開します。よろしいですか？"
LIST_MISSING = "フォームに活動の一覧が入っていなかったため"
TOFU = "端末の画面では次の文字を表示できません："


@pytest.fixture
def site(portal):  # noqa: ANN001
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    add_user(eng, "admin", PASSWORD)
    add_user(eng, "staff1", PASSWORD, "staff")
    return portal


def _now(site) -> dict[str, Any]:  # noqa: ANN001
    with site.app.state.engine.connect() as conn:
        cur = configstore.current(conn, target="all")
    assert cur is not None
    return cur


def _base(page: str) -> str:
    m = re.search(r'name="base" value="(\d+)"', page)
    assert m is not None
    return m.group(1)


def _answer_form(page: str) -> dict[str, str]:
    """The hidden fields of the question's own form (#confirm-empty), as a browser would send them."""
    m = re.search(r'<form[^>]*id="confirm-empty".*?</form>', page, re.S)
    assert m is not None, "no question on the page"
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', m.group(0)))


def test_a_volunteer_form_without_its_list_publishes_nothing_and_emptying_every_row_is_asked_first(site):
    s, token = staff_session(site.url, "staff1")
    assert s.post(site.url + "/staff/volunteer", data={**VOLUNTEER, "csrf": token}, timeout=10).status_code == 200
    before = _now(site)
    assert [a["id"] for a in before["config"]["activities"]] == ["park-cleanup", "reception"]

    # The reviewers' form: the CSRF token only. Refused in plain words; the page shows what the kiosks have now.
    r = s.post(site.url + "/staff/volunteer", data={"csrf": token}, timeout=10)
    assert r.status_code == 422 and LIST_MISSING in r.text and "公開しました" not in r.text
    assert 'value="公園の清掃"' in r.text and 'value="受付"' in r.text
    assert _now(site)["version"] == before["version"]

    # Every row emptied on the page: a question, nothing published yet.
    page = s.get(site.url + "/staff/volunteer", timeout=10).text
    asked = s.post(site.url + "/staff/volunteer", data={**EMPTY_ROWS, "base": _base(page), "csrf": token},
                   timeout=10)
    assert asked.status_code == 200 and QUESTION in asked.text and 'id="confirm-empty-yes"' in asked.text
    assert _now(site)["version"] == before["version"]
    # The same form sent again (the main button, or Enter in a field) is asked again; only the answer publishes.
    again = s.post(site.url + "/staff/volunteer", data={**EMPTY_ROWS, "base": _base(page), "csrf": token},
                   timeout=10)
    assert QUESTION in again.text and _now(site)["version"] == before["version"]
    done = s.post(site.url + "/staff/volunteer", data=_answer_form(asked.text), timeout=10)
    assert done.status_code == 200 and "公開しました。各端末は次の通信で受け取ります。" in done.text
    assert _now(site)["config"]["activities"] == []

    # Nothing left to take away: an empty form is published without a question.
    page = s.get(site.url + "/staff/volunteer", timeout=10).text
    r = s.post(site.url + "/staff/volunteer", data={**EMPTY_ROWS, "base": _base(page), "csrf": token}, timeout=10)
    assert QUESTION not in r.text and "公開しました" in r.text


def test_a_point_rules_form_without_its_list_saves_nothing_and_emptying_every_row_is_asked_first(site):
    s, token = staff_session(site.url, "admin")
    assert s.post(site.url + "/staff/point-rules", data={**RULES, "csrf": token}, timeout=10).status_code == 200
    with site.app.state.engine.connect() as conn:
        assert [v["version"] for v in pointrules.history(conn)] == [1]

    r = s.post(site.url + "/staff/point-rules", data={"points_per_100_yen": "3", "csrf": token}, timeout=10)
    assert r.status_code == 422 and LIST_MISSING in r.text and 'value="イベントの受付"' in r.text
    page = s.get(site.url + "/staff/point-rules", timeout=10).text
    asked = s.post(site.url + "/staff/point-rules", data={**EMPTY_RULES, "base": _base(page), "csrf": token},
                   timeout=10)
    assert asked.status_code == 200 and QUESTION in asked.text
    with site.app.state.engine.connect() as conn:
        assert [v["version"] for v in pointrules.history(conn)] == [1]
    answer = _answer_form(asked.text)
    assert answer["points_per_100_yen"] == "2"  # the rate as typed rides along with the answer
    done = s.post(site.url + "/staff/point-rules", data=answer, timeout=10)
    assert done.status_code == 200 and 'id="notice"' in done.text
    cur = _now(site)["config"]
    assert cur["activities"] == [] and cur["points_rules"]["activities"] == []
    assert cur["points_rules"]["points_per_100_yen"] == 2


def test_activity_and_sponsor_names_the_kiosks_cannot_draw_are_refused_beside_the_field(site):
    s, token = staff_session(site.url, "staff1")
    r = s.post(site.url + "/staff/volunteer", data={**VOLUNTEER, "a0_title": "ｺﾞﾐ拾い", "a1_title_en": "Desk ①",
                                                    "csrf": token}, timeout=10)
    assert r.status_code == 422 and "公開しました" not in r.text
    assert re.search(rf'data-for="a0_title">{TOFU}ｺ ﾞ ﾐ', r.text), r.text
    assert re.search(rf'data-for="a1_title_en">{TOFU}①', r.text)
    with site.app.state.engine.connect() as conn:
        assert not (configstore.current(conn, target="all") or {"config": {}})["config"].get("activities")

    admin, token = staff_session(site.url, "admin")
    r = admin.post(site.url + "/staff/point-rules", data={**RULES, "r0_title": "受付①", "csrf": token}, timeout=10)
    assert r.status_code == 422 and re.search(rf'data-for="r0_title">{TOFU}①', r.text)
    with site.app.state.engine.connect() as conn:
        assert pointrules.history(conn) == []

    pool = {"action": "add", "id": "sample", "sponsor": "ｻﾝﾌﾟﾙ商店", "sponsor_en": "Sample ©", "funded_yen": "10000",
            "yen_per_point": "1", "per_kiosk_yen": "5000"}
    r = admin.post(site.url + "/staff/pools", data={**pool, "csrf": token}, timeout=10)
    assert r.status_code == 422 and re.search(rf'data-for="sponsor">{TOFU}ｻ ﾝ ﾌ ﾟ ﾙ', r.text)
    assert re.search(rf'data-for="sponsor_en">{TOFU}©', r.text)
    with site.app.state.engine.connect() as conn:
        assert pools.list_pools(conn) == []
    # Written another way, as the message says: saved.
    r = admin.post(site.url + "/staff/pools", data={**pool, "sponsor": "サンプル商店", "sponsor_en": "Sample Co.",
                                                    "csrf": token}, timeout=10)
    assert r.status_code == 200 and 'id="notice"' in r.text


@needs_chromium
def test_staff_who_empty_every_row_in_the_browser_are_asked_and_can_keep_or_remove_them(staff_site, browser):
    site = staff_site  # the page's own behaviour: SQLite only (the HTTP tests above run on both databases)
    catalog.import_catalog(site.app.state.engine, {"projects": PROJECTS})
    s, token = staff_session(site.url, "staff1")
    assert s.post(site.url + "/staff/volunteer", data={**VOLUNTEER, "csrf": token}, timeout=10).status_code == 200
    version = _now(site)["version"]
    page = staff_page(browser, site.url, "staff1")

    def empty_every_row() -> None:
        page.goto(site.url + "/staff/volunteer")
        typed = page.evaluate("[...document.querySelectorAll('#activities input:not([type=hidden])')]"
                              ".filter(i => i.value).map(i => i.id)")
        assert len(typed) == 9, typed  # the two activities (受付 has no English name)
        for field in typed:
            page.fill("#" + field, "")

    empty_every_row()
    with page.expect_navigation():
        page.locator("#f-a0_title").press("Enter")  # Enter in a field: the main form, which asks
    assert page.inner_text("#confirm-empty-question").startswith(QUESTION)
    with page.expect_navigation():
        page.locator("#f-a0_title").press("Enter")  # Enter again never answers the question
    assert page.locator("#confirm-empty-question").is_visible() and _now(site)["version"] == version
    with page.expect_navigation():
        page.click("#confirm-empty-no")  # keep them: the page as the kiosks have it
    assert page.input_value("#f-a0_title") == "公園の清掃" and _now(site)["version"] == version

    empty_every_row()
    with page.expect_navigation():
        page.click("#activities button[type=submit]")
    with page.expect_navigation():
        page.click("#confirm-empty-yes")
    assert page.inner_text("#notice") == "公開しました。各端末は次の通信で受け取ります。"
    assert _now(site)["config"]["activities"] == []

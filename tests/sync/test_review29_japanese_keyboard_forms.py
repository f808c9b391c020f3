"""Every staff form that takes a date or a whole number reads them as a Japanese keyboard types them (a phone or a
PC in Japanese input mode): 「2026/4/1」, 「2026年4月1日」, full-width digits 「２０２６」, amounts 「８０，０００」,
「1,000円」, 「￥3,000」. Before, only the project form did (operator.project_as_meant); the shared readers
(operator._date, operator._int) refused them on the sponsor pools, point rules, volunteer activities and
playlist event slides with 「日付を 2026-04-01 の形で入力してください。」 or 「… までの数を入力してください。」.
Now they are read in one place (operator.typed_day, operator.typed_number). What is really wrong (2026/13/1,
12abc) is still refused beside its field, in Japanese, as typed, and nothing is saved.

And the public project page dropped the line breaks a group typed in its summary (「です。\\n誰でも」 showed as
「です。 誰でも」); it now keeps them, the text still escaped.

A real portal on loopback (conftest's ``staff_site`` and ``editor_site``), real HTTP; real headless Chromium where
what the page shows matters.
"""

from __future__ import annotations

import re
from typing import Any

import requests
from sync_helpers import PASSWORD, needs_chromium, seed_playlist_center, staff_page, staff_session

from server_sync import catalog, configstore, pointrules, pools
from server_sync.staff import add_user

NO_SUCH_DAY = "日付を確かめてください。ない月か、その月にない日になっています。"


def errors_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="bad err" data-for="([^"]+)">([^<]*)</p>', html))


def center(site: Any) -> str:
    """``site`` with one running project and its video (a playlist can name it), staff ``yamada`` and an
    administrator ``boss``; the video's sha256."""
    sha = seed_playlist_center(site.app.state.engine, users=("yamada",))
    add_user(site.app.state.engine, "boss", PASSWORD, "admin")
    return sha


def all_kiosks_config(site: Any) -> dict[str, Any]:
    with site.app.state.engine.connect() as conn:
        cur = configstore.current(conn, target="all")
    assert cur is not None, "nothing published"
    return cur["config"]


def test_a_sponsor_pool_typed_on_a_japanese_keyboard_is_saved_as_meant(staff_site):
    center(staff_site)
    s, token = staff_session(staff_site.url, "boss")
    form = {"csrf": token, "action": "add", "id": "shoutenkai", "sponsor": "駅前商店会", "sponsor_en": "",
            "funded_yen": "12abc", "yen_per_point": "１", "per_kiosk_yen": "￥3,000", "start": "2026/13/1",
            "end": "来年の3月"}
    r = s.post(staff_site.url + "/staff/pools", data=form, timeout=10)
    assert r.status_code == 422
    assert errors_of(r.text) == {"funded_yen": "1 から 10,000,000,000 までの数を入力してください。",
                                 "start": NO_SUCH_DAY,
                                 "end": "日付を 2026-04-01 や 2026/4/1 の形で入力してください。"}
    assert 'value="2026/13/1"' in r.text and 'value="12abc"' in r.text  # as typed, to correct
    with staff_site.app.state.engine.connect() as conn:
        assert pools.list_pools(conn) == []
    typed = {"funded_yen": "８０，０００円", "start": "2026/4/1", "end": "２０２７年３月３１日"}
    r = s.post(staff_site.url + "/staff/pools", data={**form, **typed}, timeout=10)
    assert r.url.endswith("done=pool_saved"), errors_of(r.text)
    with staff_site.app.state.engine.connect() as conn:
        [pool] = pools.list_pools(conn)
    assert (pool["funded_yen"], pool["yen_per_point"], pool["per_kiosk_yen"], str(pool["start"]),
            str(pool["end"])) == (80000, 1, 3000, "2026-04-01", "2027-03-31")


def test_point_rules_typed_on_a_japanese_keyboard_are_saved_as_meant(staff_site):
    center(staff_site)
    s, token = staff_session(staff_site.url, "boss")
    r = s.post(staff_site.url + "/staff/point-rules", timeout=10, data={
        "csrf": token, "points_per_100_yen": "２", "r0_id": "park-cleanup", "r0_title": "公園の清掃",
        "r0_title_en": "", "r0_points": "１，０００ ", "r0_description": "月に一度の公園清掃に参加する",
        "r0_description_en": ""})
    assert r.url.endswith("done=saved"), errors_of(r.text)
    with staff_site.app.state.engine.connect() as conn:
        rules = pointrules.current(conn)
    assert rules is not None
    assert (rules["points_per_100_yen"], [a["points"] for a in rules["activities"]]) == (2, [1000])


def test_volunteer_activities_typed_on_a_japanese_keyboard_are_published_as_meant(staff_site):
    center(staff_site)
    s, token = staff_session(staff_site.url, "yamada")
    form = {"csrf": token, "a0_id": "park-cleanup", "a0_title": "公園清掃", "a0_title_en": "", "a0_points": "１０",
            "a0_max_points": "5０abc"}
    r = s.post(staff_site.url + "/staff/volunteer", data=form, timeout=10)
    assert r.status_code == 422 and errors_of(r.text) == {
        "a0_max_points": "1 から 10,000 までの数を入力してください。"}
    r = s.post(staff_site.url + "/staff/volunteer", data={**form, "a0_max_points": "１，０００"}, timeout=10)
    assert r.url.endswith("done=published"), errors_of(r.text)
    assert [(a["id"], a["points"], a["max_points"]) for a in all_kiosks_config(staff_site)["activities"]] == [
        ("park-cleanup", 10, 1000)]


def test_an_event_slide_dated_on_a_japanese_keyboard_is_published_as_meant(staff_site):
    sha = center(staff_site)
    s, token = staff_session(staff_site.url, "yamada")
    form = {"csrf": token, "target": "all", "i0_clip": sha, "i0_project": "proj-a", "i0_repeat": "２",
            "s0_title": "夏まつり", "s0_date": "２０２６年８月１日", "s0_time": "10:00〜", "s0_place": "広場",
            "s0_note": ""}
    r = s.post(staff_site.url + "/staff/playlists", data={**form, "s0_date": "2026/2/30"}, timeout=10)
    assert r.status_code == 422 and errors_of(r.text) == {"s0_date": NO_SUCH_DAY}
    assert "例: 2026-07-12 や 2026/7/12" in r.text  # the hint under the field says what works
    r = s.post(staff_site.url + "/staff/playlists", data=form, timeout=10)
    assert r.url.endswith("done=published"), errors_of(r.text)
    config = all_kiosks_config(staff_site)
    assert [(i["project"], i["repeat"]) for i in config["playlist"]] == [("proj-a", 2)]
    assert [(sl["title"], sl["date"]) for sl in config["slides"]] == [("夏まつり", "2026-08-01")]


def test_a_project_date_refused_comes_back_as_typed_and_the_hint_says_what_works(editor_site):
    s, token = staff_session(editor_site.url, "editor1")
    form_page = s.get(editor_site.url + "/staff/projects/kodomo-shokudo", timeout=10).text
    assert "例: 2026-04-01 や 2026/4/1。空欄なら今から" in form_page
    seen = re.search(r'name="seen" value="(\d+)"', form_page)
    assert seen is not None
    form = {"csrf": token, "editing": "kodomo-shokudo", "seen": seen[1], "title": "みんなのこども食堂",
            "summary": "", "group_id": "kodomo-club", "area": "children", "goal_yen": "1,000円",
            "start": "2026/13/1", "end": "", "active": "1"}
    r = s.post(editor_site.url + "/staff/projects", data=form, timeout=10)
    assert r.status_code == 422 and errors_of(r.text) == {"start": NO_SUCH_DAY}
    assert 'value="2026/13/1"' in r.text and 'value="1,000円"' in r.text
    r = s.post(editor_site.url + "/staff/projects", data={**form, "start": "2026.4.1"}, timeout=10)
    assert "保存しました。" in r.text
    with editor_site.app.state.engine.connect() as conn:
        p = catalog.project(conn, "kodomo-shokudo")
    assert p is not None and (p["goal_yen"], str(p["start"])) == (1000, "2026-04-01")


@needs_chromium
def test_the_public_project_page_keeps_the_line_breaks_of_the_summary(editor_site, browser):
    page = staff_page(browser, editor_site.url, "editor1", PASSWORD)
    page.goto(editor_site.url + "/staff/projects/kodomo-shokudo")
    page.fill("#f-summary", "毎週土曜の食堂です。\n誰でも来られます。\n<b>無料</b>")
    page.click("#project-form button[type=submit]")
    page.wait_for_url("**/staff/projects?done=saved")
    page.goto(editor_site.url + "/p/kodomo-shokudo")
    assert page.inner_text("#summary") == "毎週土曜の食堂です。\n誰でも来られます。\n<b>無料</b>"  # escaped, not bold
    raw = requests.get(editor_site.url + "/p/kodomo-shokudo", timeout=10).text
    assert "&lt;b&gt;無料&lt;/b&gt;" in raw

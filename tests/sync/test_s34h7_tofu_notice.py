"""Session 34 (h7): names and titles stored before the portal checked them, that the kiosks draw as empty boxes.

The staff forms and the catalog import refuse a name or title with letters the kiosks' font lacks
(tests/sync/test_review51_catalog_glyphs.py), but a text stored before that check existed, written by a script or
checked against an older font was only refused the next time its form was saved, and nothing listed them: the lobby
showed empty boxes (tofu) and staff did not know. The staff dashboard now says 「端末で表示できない文字があります」
and lists each stored text the kiosks draw with such letters (a project's titles, a group's name, an event slide,
a sponsor's name, a volunteer activity's name), which letters, and a link to the form that fixes it. Texts no kiosk
draws (a summary, an inactive or ended project, a past slide, a version no kiosk runs) are not listed. An editor
sees their own group's; the auditor, who changes nothing, none.

A real portal on loopback with a real SQLite file (and PostgreSQL with $KIOSK_TEST_PG_URL); the old texts are
written into the database as a script or an older portal would have; headless Chromium at 375 px for the notice.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path
from typing import Any

import pytest
from staff_words_check import assert_plain_japanese
from sync_helpers import PASSWORD, needs_chromium, staff_page, staff_session

from server_sync import catalog, configstore, pools
from server_sync.db import groups, kiosk_info, projects, sponsor_pools, writing
from server_sync.embedded import start_portal
from server_sync.policy import TZ
from server_sync.staff import add_user

CLEAN = {"groups": [{"id": "takahashi", "name": "高橋の会"}, {"id": "midori", "name": "みどりの会"}],
         "projects": [{"id": "kodomo", "group_id": "takahashi", "title": "こども食堂", "title_en": "Kids' Kitchen",
                       "area": "children", "goal_yen": 5000},
                      {"id": "mori", "group_id": "midori", "title": "雑木林", "area": "green", "goal_yen": 8000},
                      {"id": "old", "group_id": "midori", "title": "夏祭り", "area": "town", "goal_yen": 3000},
                      {"id": "done", "group_id": "midori", "title": "春祭り", "area": "town", "goal_yen": 3000}]}


def today() -> dt.date:
    return dt.datetime.now(TZ).date()


def portal_with_old_texts(db_url: str):
    """A center whose catalog and published version hold texts stored without the check (as an older portal or a
    script stored them), with staff, an editor of each group and the auditor."""
    handle = start_portal(db_url)
    eng = handle.app.state.engine
    catalog.import_catalog(eng, CLEAN)
    for user, role, group in (("admin1", "admin", None), ("staff1", "staff", None), ("ed-taka", "editor", "takahashi"),
                              ("ed-midori", "editor", "midori"), ("audit1", "auditor", None)):
        add_user(eng, user, PASSWORD, role, group)
    with writing(eng) as conn:
        conn.execute(groups.update().where(groups.c.id == "takahashi").values(name="髙橋の会"))
        conn.execute(projects.update().where(projects.c.id == "kodomo").values(title="①こども食堂", title_en="Café"))
        # The kiosks draw none of these: a summary, an inactive project's title, an ended project's title.
        conn.execute(projects.update().where(projects.c.id == "mori").values(summary="髙橋さんの雑木林🌳"))
        conn.execute(projects.update().where(projects.c.id == "old").values(title="夏祭り🎆", active=False))
        conn.execute(projects.update().where(projects.c.id == "done").values(
            title="春祭り🌸", end_date=today() - dt.timedelta(days=1)))
        conn.execute(kiosk_info.insert().values(kiosk_id="lobby-1", kiosk_group="lobby"))
        conn.execute(sponsor_pools.insert().values(id="aozora", sponsor="ｱｵｿﾞﾗ銀行", sponsor_en="Aozora Bank",
                                                   funded_yen=10000, created_ms=1))
        pushed = pools.pushed_pools(conn)
    soon, past = (today() + dt.timedelta(days=5)).isoformat(), (today() - dt.timedelta(days=1)).isoformat()
    configstore.publish(eng, {"slides": [{"title": "パソコン教室 ②", "date": soon, "place": "3階 会議室"}]},
                        "group:nobody")  # a kiosk group no kiosk is in: no kiosk draws it
    configstore.publish(eng, {"slides": [{"title": "古い催し🎉", "date": soon}]}, "kiosk:lobby-1")  # replaced below
    configstore.publish(eng, {
        "slides": [{"title": "ボランティア説明会", "date": soon, "place": "ｾﾝﾀｰ 2階"},
                   {"title": "終わった催し🎉", "date": past}],
        "activities": [{"id": "cleanup", "title": "公園のそうじ", "title_en": "Park cleanup ✿"}],
        "pools": pushed}, "all")
    return handle


@pytest.fixture
def center(db_url: str):
    handle = portal_with_old_texts(db_url)
    yield handle
    handle.stop()


def listed(page: str) -> dict[tuple[str, str, str], dict[str, str]]:
    """The notice's items by (kind, id, field): the line as read, and the link's address."""
    out = {}
    for m in re.finditer(r'<li class="tofu" data-kind="([^"]+)" data-id="([^"]*)" data-field="([^"]+)"[^>]*>(.*?)</li>',
                         page, re.S):
        link = re.search(r'<a class="fix" href="([^"]+)"', m.group(4))
        out[(m.group(1), html.unescape(m.group(2)), m.group(3))] = {
            "text": html.unescape(re.sub(r"<[^>]+>", " ", m.group(4))).strip(),
            "link": html.unescape(link.group(1)) if link else ""}
    return out


def test_the_dashboard_lists_each_stored_text_the_kiosks_draw_as_boxes_with_its_letters_and_the_form_to_fix_it(center):
    s, token = staff_session(center.url, "admin1")
    page = s.get(center.url + "/staff", timeout=10).text
    assert "端末で表示できない文字があります" in page
    items = listed(page)
    assert set(items) == {("project", "kodomo", "title"), ("project", "kodomo", "title_en"),
                          ("group", "takahashi", "name"), ("slide", "ボランティア説明会", "place"),
                          ("pool", "aozora", "sponsor"), ("activity", "cleanup", "title_en")}, items
    assert "「①こども食堂」" in items[("project", "kodomo", "title")]["text"]
    assert "表示できない字：①" in items[("project", "kodomo", "title")]["text"]
    assert "表示できない字：é" in items[("project", "kodomo", "title_en")]["text"]
    assert "表示できない字：髙" in items[("group", "takahashi", "name")]["text"]
    assert "表示できない字：ｾ ﾝ ﾀ ｰ" in items[("slide", "ボランティア説明会", "place")]["text"]
    assert "全端末" in items[("slide", "ボランティア説明会", "place")]["text"]
    assert "表示できない字：ｱ ｵ ｿ ﾞ ﾗ" in items[("pool", "aozora", "sponsor")]["text"]
    assert "表示できない字：✿" in items[("activity", "cleanup", "title_en")]["text"]
    box = re.search(r'<section id="tofu".*?</section>', page, re.S)
    assert box is not None
    said = [html.unescape(re.sub(r"<[^>]+>", "", t)).strip() for t in re.findall(r"<(?:h2|p)[^>]*>(.*?)</(?:h2|p)>",
                                                                                  box.group(0), re.S)]
    assert_plain_japanese(said)
    # Each link opens the form holding that text.
    stored = {"project": {"title": "①こども食堂", "title_en": "Café"}, "group": {"name": "髙橋の会"},
              "slide": {"place": "ｾﾝﾀｰ 2階"}, "pool": {"sponsor": "ｱｵｿﾞﾗ銀行"},
              "activity": {"title_en": "Park cleanup ✿"}}
    for key, item in items.items():
        r = s.get(center.url + item["link"], timeout=10)
        assert r.status_code == 200, (key, item["link"], r.status_code)
        assert stored[key[0]][key[2]] in html.unescape(r.text), (key, item["link"])

    # Fixed in its form, a name leaves the list; a center with nothing to fix sees no notice.
    form = s.get(center.url + "/staff/groups?edit=takahashi", timeout=10).text
    seen = re.search(r'name="seen" value="([^"]*)"', form)
    assert seen is not None
    r = s.post(center.url + "/staff/groups", timeout=10,
               data={"csrf": token, "editing": "takahashi", "id": "takahashi", "name": "高橋の会", "description": "",
                     "contact": "", "seen": seen.group(1)})
    assert r.status_code == 200, r.text[:400]
    assert set(listed(s.get(center.url + "/staff", timeout=10).text)) == set(items) - {("group", "takahashi", "name")}
    eng = center.app.state.engine
    with writing(eng) as conn:
        conn.execute(projects.update().where(projects.c.id == "kodomo").values(title="1こども食堂", title_en="Cafe"))
        conn.execute(sponsor_pools.update().values(sponsor="アオゾラ銀行"))
        pushed = pools.pushed_pools(conn)
    configstore.publish(eng, {"slides": [], "activities": [], "pools": pushed}, "all")
    page = s.get(center.url + "/staff", timeout=10).text
    assert 'id="tofu"' not in page and "端末で表示できない文字" not in page


def test_each_role_sees_what_it_may_fix(tmp_path: Path):
    """An editor sees their own group's texts; staff see the pools' too, with whom to ask; the auditor none."""
    center = portal_with_old_texts(f"sqlite:///{tmp_path / 'portal.db'}")
    try:
        roles_see(center)
    finally:
        center.stop()


def roles_see(center: Any) -> None:
    s, _ = staff_session(center.url, "ed-taka")
    items = listed(s.get(center.url + "/staff", timeout=10).text)
    assert set(items) == {("project", "kodomo", "title"), ("project", "kodomo", "title_en"),
                          ("group", "takahashi", "name")}, items
    # The group's name is changed by the center's staff: said so, and no link to a page the editor may not open.
    assert items[("group", "takahashi", "name")]["link"] == ""
    assert "センターの職員に直してもらってください" in items[("group", "takahashi", "name")]["text"]
    assert s.get(center.url + items[("project", "kodomo", "title")]["link"], timeout=10).status_code == 200
    s2, _ = staff_session(center.url, "ed-midori")
    assert 'id="tofu"' not in s2.get(center.url + "/staff", timeout=10).text
    s3, _ = staff_session(center.url, "audit1")
    assert 'id="tofu"' not in s3.get(center.url + "/staff", timeout=10).text
    # Staff fix the catalog and the slides; a pool's sponsor and the point rules are the administrators'.
    s4, _ = staff_session(center.url, "staff1")
    items = listed(s4.get(center.url + "/staff", timeout=10).text)
    assert len(items) == 6 and items[("group", "takahashi", "name")]["link"] == "/staff/groups?edit=takahashi"
    assert items[("pool", "aozora", "sponsor")]["link"] == ""
    assert "管理者に直してもらってください" in items[("pool", "aozora", "sponsor")]["text"]


@needs_chromium
def test_the_notice_reads_on_a_phone(tmp_path: Path, browser):
    handle = portal_with_old_texts(f"sqlite:///{tmp_path / 'portal.db'}")
    try:
        page = staff_page(browser, handle.url, "staff1", size=(375, 667))
        notice = page.locator("#tofu")
        assert notice.is_visible()
        assert "端末で表示できない文字があります" in notice.inner_text()
        width = page.evaluate("document.documentElement.clientWidth")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        for link in page.locator("#tofu a.fix").all():
            box = link.bounding_box()
            assert box is not None and box["x"] + box["width"] <= width and box["height"] >= 40, box
        page.locator('#tofu li[data-kind="group"] a.fix').click()
        page.wait_for_url("**/staff/groups?edit=takahashi")
        assert page.locator("input[name=name]").input_value() == "髙橋の会"
    finally:
        handle.stop()

"""Session 34 (h10): the staff pages' shared frame on a phone, their word for the device, their empty tables.

- At 375 px the staff menu wrapped to five lines (about 300 px of links before any content) on every staff page. It
  is now folded under a large 「メニュー」 button (a native details: no script), the English switch in sight beside
  it: the header takes under 120 px. Opened, it is one link a line, each a finger high, the page open now marked,
  nothing wider than the screen. At 1280 px the links read in two rows as before, English in its old place.
- The pools and point-rules pages said キオスク where every other staff page says 端末.
- /staff/points-report and the point rules' 「これまでの版」 showed rows of headings with nothing under them; now a
  sentence. The versions' headings broke inside a word on a phone (日/時); they break between words only.

A real portal on loopback with a real SQLite file, headless Chromium.
"""

from __future__ import annotations

from sync_helpers import PASSWORD, PROJECTS, needs_chromium, staff_page

from server_sync import catalog, pointrules, pools
from server_sync.staff import add_user

pytestmark = needs_chromium  # the browser fixture: tests/sync/conftest.py

PHONE, DESK = (375, 667), (1280, 800)
ACTIVITY = {"id": "park-cleanup", "title": "公園の清掃", "title_en": "Park cleanup", "points": 5,
            "description": "月に一度の公園清掃に参加する", "description_en": "Monthly park cleanup"}
# Each header link or button in sight: its words, left, top, height, right.
IN_SIGHT = """() => [...document.querySelectorAll('header a, header button, header summary')]
  .filter(e => e.getClientRects().length && e.checkVisibility())
  .map(e => { const r = e.getBoundingClientRect(); return [e.textContent.trim(), r.x, r.y, r.height, r.right]; })"""
# The column headings of a table that are one word (no space) but take more than one line.
BROKEN_HEADS = """(sel) => [...document.querySelectorAll(sel + ' th')].filter(th => {
  const text = th.textContent.trim(), range = document.createRange();
  range.selectNodeContents(th);
  return !/\\s/.test(text) && new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1;
}).map(th => th.textContent.trim())"""


def test_the_staff_menu_folds_on_a_phone_opens_and_leads_on_and_stays_as_it_was_on_a_desk(staff_site, browser):
    url, eng = staff_site.url, staff_site.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})  # a version is published with the running projects
    add_user(eng, "admin1", PASSWORD, "admin")
    page = staff_page(browser, url, "admin1", size=PHONE)
    page.goto(url + "/staff/points-report")

    # Folded: the title, the button, the English switch, who is signed in; the page's own content right under.
    header = page.locator("header").bounding_box()
    assert header and header["height"] < 120, header
    shown = page.evaluate(IN_SIGHT)
    assert [s[0] for s in shown] == ["メニュー", "English"], shown
    assert all(s[3] >= 44 for s in shown), shown
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0]
    # Nothing issued, exchanged nor funded yet: three sentences, not three rows of headings.
    assert page.locator("main table").count() == 0
    assert [page.inner_text(s) for s in ("#no-issued", "#no-exchanged", "#no-pools")] == [
        "まだポイントの付与はありません。", "まだポイントの交換はありません。", "まだ協賛基金がありません。"]

    # Opened: one link a line, a finger high, inside the screen; the page open now is marked.
    page.click("header summary")
    shown = page.evaluate(IN_SIGHT)
    assert len(shown) == 20 and all(s[3] >= 44 and s[4] <= PHONE[0] for s in shown), shown
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0]
    assert page.locator("nav.staffnav a[aria-current=page]").inner_text() == "ポイント集計"
    page.click("nav.staffnav a[href='/staff/point-rules']")
    page.wait_for_url("**/staff/point-rules")
    assert page.locator("table#versions").count() == 0
    assert page.inner_text("#no-versions") == "まだ保存された版はありません。"
    assert page.inner_text("form#rules button[type=submit]") == "保存して端末に配信する"

    # A version saved: its headings (版, 日時, 変更した人, 活動) each on one line; the table scrolls in its box.
    pointrules.save(eng, 1, [ACTIVITY], by="admin1")
    page.reload()
    assert page.locator("table#versions tr").count() == 2
    assert page.evaluate(BROKEN_HEADS, "table#versions") == []
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0]

    # At 1280 px: no button, every link in sight in two rows, in the order they always had (English among them).
    pools.save_pool(eng, {"id": "midori-bank-2026", "sponsor": "みどり銀行", "sponsor_en": "Midori Bank",
                          "funded_yen": 100000, "yen_per_point": 1, "per_kiosk_yen": 5000, "areas": [],
                          "start": "2026-01-01", "end": "2027-03-31"})
    page.set_viewport_size({"width": DESK[0], "height": DESK[1]})
    page.goto(url + "/staff/pools")
    shown = page.evaluate(IN_SIGHT)
    words = [s[0] for s in sorted(shown, key=lambda s: (round(s[2]), s[1]))]
    assert words[0] == "ダッシュボード", words
    assert words[-4:] == ["操作の記録", "English", "パスワードを変える", "ログアウト"], words
    assert len(words) == 19 and "メニュー" not in words and all(s[3] >= 44 for s in shown), shown
    assert len({round(s[2]) for s in shown}) == 2, shown  # two rows
    body = page.inner_text("body")
    assert "端末への割り当て" in body and "キオスク" not in body, body
    page.close()

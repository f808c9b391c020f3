"""Session 34 (h2): the staff lists a phone user acts on, and one word on the receipt page.

- /staff/media at 375 px: the videos table scrolled inside its box and its last column, 再生 · 編集 (what staff
  come to the list for), was off-screen. Under 40rem each video is now a card of labelled lines (table.stack in
  portal.css): every cell, and both links, are in sight without sideways scrolling, and the links are a finger
  high. The projects and sponsor pools lists read the same way. At 1280 px they are the plain tables, as before.
- /r/{code}: the checked steps said 「表示の金額と事業が…」 while the mismatch line and the rest of the page say
  プロジェクト; a citizen now reads one word.

A real portal on loopback with a real SQLite file, headless Chromium.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sync_helpers import PASSWORD, PROJECTS, enrolled, needs_chromium, staff_page, staff_session
from test_receipt_browser import _check

from server_sync import catalog, configstore, pools
from server_sync.configstore import publish
from server_sync.db import media_info, writing
from server_sync.embedded import start_portal
from server_sync.staff import add_user
from server_sync.wire.receipt import receipt_code

pytestmark = needs_chromium  # the browser fixture: tests/sync/conftest.py

PHONE, DESK = (375, 667), (1280, 800)
LONG_NAME = "子ども食堂の一日_2024年度版_夏祭りの様子_みんなで踊りました_長いファイル名.mp4"

# Every cell of the list's rows whose right edge is past the page's visible width, or whose box scrolls sideways;
# and the page's own overflow.
OUT_OF_SIGHT = """(sel) => {
  const w = document.documentElement.clientWidth, out = [];
  if (document.documentElement.scrollWidth > w) out.push('page ' + document.documentElement.scrollWidth);
  const t = document.querySelector(sel), box = t.closest('.scroll');
  if (box && box.scrollWidth > box.clientWidth) out.push('box ' + box.scrollWidth + ' > ' + box.clientWidth);
  for (const el of t.querySelectorAll('tbody td, tbody a')) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > w + 0.5) out.push(el.tagName + ' ' + el.textContent.trim().slice(0, 20) + ' ' + r.right);
  }
  return out;
}"""


@pytest.fixture
def center(tmp_path: Path):
    handle = start_portal(f"sqlite:///{tmp_path / 'portal.db'}")
    eng = handle.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    add_user(eng, "admin1", PASSWORD, "admin")
    now = int(time.time() * 1000)
    for i, name in enumerate((LONG_NAME, "a.mp4")):
        sha = configstore.add_media(eng, b"clip%d" % i * 100, "video/mp4")
        with writing(eng) as conn:
            conn.execute(media_info.insert().values(sha256=sha, name=name, project_id=PROJECTS[i]["id"],
                                                    created_ms=now, duration_s=15))
    pools.save_pool(eng, {"id": "midori-bank-2026", "sponsor": "みどり銀行", "sponsor_en": "Midori Bank",
                          "funded_yen": 100000, "yen_per_point": 1, "per_kiosk_yen": 5000, "areas": [],
                          "start": "2026-01-01", "end": "2027-03-31"})
    yield handle
    handle.stop()


def test_the_videos_list_is_usable_on_a_phone_without_sideways_scrolling(center, browser):
    url = center.url
    page = staff_page(browser, url, "admin1", size=PHONE)
    wide: dict[str, list[str]] = {}
    for path, table in (("/staff/media", "table#media"), ("/staff/projects", "table#projects"),
                        ("/staff/pools", "table#pools")):
        page.goto(url + path)
        if out := page.evaluate(OUT_OF_SIGHT, table):
            wide[path] = out
    assert wide == {}, wide
    page.goto(url + "/staff/media")
    rows = page.locator("table#media tbody tr")
    assert rows.count() == 2
    for i in range(2):  # 再生 and 編集 of each video: in sight and a finger high
        for a in (rows.nth(i).locator("a").nth(0), rows.nth(i).locator("a").nth(1)):
            box = a.bounding_box()
            assert box and box["height"] >= 44 and box["x"] + box["width"] <= PHONE[0], (a.inner_text(), box)
    label = rows.first.locator("td").nth(1).evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"プロジェクト"', label  # each line says what it is
    page.close()

    # At 1280 px it is the table it was: headings shown, a video's name and its links on one line.
    page = staff_page(browser, url, "admin1", size=DESK)
    page.goto(url + "/staff/media")
    assert page.locator("table#media th").nth(5).inner_text() == "端末での再生"
    row = page.locator("table#media tbody tr").first
    name, watch = row.locator("td").first.bounding_box(), row.locator("a").first.bounding_box()
    assert name and watch and abs(name["y"] - watch["y"]) < 8 and watch["x"] > name["x"] + 600, (name, watch)
    assert page.evaluate(OUT_OF_SIGHT, "table#media") == []
    page.close()


def test_the_receipt_page_says_project_in_every_place(center, rig, browser):
    portal = center  # the words do not depend on the database: SQLite only
    publish(portal.app.state.engine, {"projects": PROJECTS})
    gift = rig.donate(2, card=1)[1]
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    page = browser.new_page(viewport={"width": PHONE[0], "height": PHONE[1]}, locale="ja-JP")
    try:
        assert _check(page, f"{portal.url}/r/{receipt_code(gift)}#k={rig.ledger.key_id}")[0] == "ok"
        page.locator("#details summary").click()
        steps = page.locator("#steps").inner_text()
        assert "表示の金額と寄付先のプロジェクトが署名された記録のとおり" in steps, steps
        assert page.locator("#mismatch").get_attribute("data-project") == "寄付先のプロジェクト"
        assert "事業" not in page.content()  # not in what is shown, nor in the words the script may show
    finally:
        page.close()


def test_the_pools_page_without_a_pool_says_so_instead_of_a_row_of_headings(staff_site):
    add_user(staff_site.app.state.engine, "admin2", PASSWORD, "admin")  # the pools are administrators' only
    s, _ = staff_session(staff_site.url, "admin2")
    page = s.get(staff_site.url + "/staff/pools", timeout=10).text
    assert 'id="no-pools">まだ協賛基金がありません。<' in page and 'id="pools"' not in page

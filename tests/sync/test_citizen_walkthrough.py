"""A citizen who gave at the lobby kiosk, on a phone (390×844, Japanese, headless Chromium), against a real portal
on loopback with real synced donations: the receipt link and the my page, also with JavaScript off.

- Without JavaScript nothing checks a receipt or opens a my page: the pages say so, instead of "確認しています…" /
  "ページを開いています…" for ever beside it.
- The my page shows a number of points: it says what points are and links to the public rules page, which the
  citizen can open and come back from.
"""

from __future__ import annotations

import re

from sync_helpers import enrolled, fake_idm, needs_chromium

from kiosk.ledger import keys
from server_sync.wire import mypage as W
from server_sync.wire.receipt import receipt_code

pytestmark = needs_chromium  # the browser fixture: tests/sync/conftest.py

PHONE = {"width": 390, "height": 844}


def _phone(browser, js: bool = True):  # noqa: ANN001, ANN202
    return browser.new_context(viewport=PHONE, locale="ja-JP", java_script_enabled=js).new_page()


def test_receipt_without_javascript_says_it_cannot_be_checked_not_checking_for_ever(portal, rig, browser):
    up = enrolled(rig, portal, pepper=rig.pepper)
    gift = rig.donate(1, card=3)[0]
    rig.ledger.checkpoint()
    assert up.sync_once().ok
    url = f"{portal.url}/r/{receipt_code(gift)}#k={rig.ledger.key_id}"

    page = _phone(browser, js=False)
    page.goto(url)
    assert page.locator("#amount").inner_text() == f"¥{gift.data['amount_yen']:,}"
    assert not page.locator("#check").is_visible()  # "確認しています…" would never change
    note = page.locator("#no-script")
    assert note.is_visible()
    assert note.inner_text().startswith("この受領証を確かめるには、JavaScript を有効にしてください。")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page = _phone(browser)  # with JavaScript the check runs and the note is not shown
    page.goto(url)
    page.locator("#check", has_text="この寄付は確認できました").wait_for()
    assert page.locator("#no-script").count() == 0 or not page.locator("#no-script").is_visible()


def test_my_page_link_without_javascript_says_what_to_do_not_opening_for_ever(portal, browser):
    page = _phone(browser, js=False)
    page.goto(f"{portal.url}/me/new#AAAA")
    assert not page.locator("#status").is_visible()  # "ページを開いています…" would never change
    assert page.locator("#no-script").is_visible()
    assert page.locator("#no-script").inner_text() == "ページを開くには JavaScript を有効にしてください。"


def test_my_page_says_what_points_are_and_links_to_the_rules(portal, rig, browser):
    up = enrolled(rig, portal, pepper=rig.pepper)
    rig.donate(2, card=4)
    rig.donate(1, card=5)
    assert up.sync_once().ok
    token = rig.pepper.card_token(fake_idm(4))
    sk = keys.load_private(rig.cfg.private_key_path)
    request = W.make_request(sk, rig.kiosk_id, token.all_hexes, rig.clock.wall_ms(), 180_000)

    page = _phone(browser)
    page.goto(f"{portal.url}/me/new#{request}")
    page.wait_for_url(re.compile(r"/me/[A-Za-z0-9_-]{43}$"))
    mine = page.url
    about = page.locator("#points-about")
    assert about.is_visible()
    assert "寄付やボランティア活動でたまります" in about.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.evaluate("document.documentElement.style.fontSize = '200%'")  # large text: still no sideways scroll
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.locator("#points-rules").click()
    page.wait_for_url(re.compile(r"/points/rules\?lang=ja$"))
    assert page.locator("h2").first.inner_text() == "ポイントのつけ方"
    page.go_back()  # and back to the citizen's own page
    assert page.url == mine and page.locator("#points").is_visible()

    page.goto(f"{mine}?lang=en")
    assert "add up when you give or volunteer" in page.locator("#points-about").inner_text()
    assert page.locator("#points-rules").get_attribute("href") == "/points/rules?lang=en"

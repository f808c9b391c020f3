"""A donor's my page in headless Chromium (Debian's, via Playwright): the kiosk's QR link opens the private
page (the one-time request travels in the fragment and is posted by the page's script), shows the card's
points, switches language, closes for good; expired, used and missing codes say what to do."""

from __future__ import annotations

import re

from sync_helpers import enrolled, fake_idm, needs_chromium

from kiosk.ledger import keys
from server_sync.wire import mypage as W

pytestmark = needs_chromium  # the browser fixture: tests/sync/conftest.py



def test_my_page_opens_from_the_kiosk_link_shows_points_and_closes_in_chromium(portal, rig, browser):
    up = enrolled(rig, portal, pepper=rig.pepper)
    rig.donate(3, card=4)
    rig.donate(2, card=9)
    assert up.sync_once().ok
    token = rig.pepper.card_token(fake_idm(4))
    mine = [e for e in rig.ledger.iter_entries() if e.type == "donation" and e.data["donor"] in token.all_hexes]
    sk = keys.load_private(rig.cfg.private_key_path)
    request = W.make_request(sk, rig.kiosk_id, token.all_hexes, rig.clock.wall_ms(), 180_000)

    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP")  # a phone
    page.goto(f"{portal.url}/me/new#{request}")
    page.wait_for_url(re.compile(r"/me/[A-Za-z0-9_-]{43}$"))  # (no wait_for_function: the CSP forbids eval)
    link = page.url
    assert "#" not in link and request not in link
    assert page.locator("html").get_attribute("lang") == "ja"
    assert page.locator("#points").inner_text() == str(sum(e.data["points"] for e in mine))
    assert page.locator("#history li").count() == len(mine)
    assert page.get_by_text("マイページ").count() >= 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#points").inner_text() == str(sum(e.data["points"] for e in mine))

    # The same QR code again (a photo of the lobby screen): used.
    other = browser.new_page(locale="ja-JP")
    other.goto(f"{portal.url}/me/new#{request}")
    other.locator("#status.bad").wait_for()
    assert other.locator("#status").inner_text().startswith("この QR コードはすでに使われています")
    assert "#" not in other.url  # the script cleared the fragment from the address bar and history

    page.get_by_role("button", name="Close this page for good").click()
    page.wait_for_url(re.compile(r"/me/closed"))
    assert page.locator("#closed").count() == 1
    page.goto(link)
    assert page.locator("#gone").count() == 1 and page.locator("#points").count() == 0

    expired = W.make_request(sk, rig.kiosk_id, token.all_hexes, rig.clock.wall_ms() - 200_000, 180_000)
    other = browser.new_page(locale="ja-JP")
    other.goto(f"{portal.url}/me/new#{expired}")
    other.locator("#status.bad").wait_for()
    assert other.locator("#status").inner_text().startswith("この QR コードは有効期限が切れました")
    other.goto(f"{portal.url}/me/new?lang=en")
    other.locator("#status.bad").wait_for()
    assert other.locator("#status").inner_text() == "Open this page from the QR code on the kiosk."

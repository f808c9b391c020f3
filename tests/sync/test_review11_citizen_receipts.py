"""A donor's receipt link and my page on a phone (390×844, Japanese, headless Chromium) against a real portal on
loopback, for the two cases the plain "verified" page got wrong:

- a gift refunded since (the kiosk's ``void`` entry reached the portal): the page said 「✓ この寄付は確認できました。」
  in green with a bare 「取消」 under it; now it says the record is confirmed and the gift was canceled and
  returned, in words, not faded with the unchecked facts. The my page no longer lists points beside it (they are
  not counted);
- a receipt the phone could not load (no signal, the portal rate-limiting a lobby's shared address): the page said
  「✗ この寄付は確認できませんでした。」, as if the gift were wrong, when nothing had been checked; now it says it could
  not be loaded and offers to try again.
"""

from __future__ import annotations

import re

from sync_helpers import enrolled, fake_idm, needs_chromium

from kiosk.ledger import keys
from server_sync.embedded import start_portal
from server_sync.ratelimit import RateLimits
from server_sync.wire import mypage as W
from server_sync.wire.receipt import receipt_code

pytestmark = needs_chromium  # the browser fixture: tests/sync/conftest.py

PHONE = {"width": 390, "height": 844}


def _phone(browser):  # noqa: ANN001, ANN202
    return browser.new_context(viewport=PHONE, locale="ja-JP").new_page()


def test_a_refunded_gift_is_not_only_confirmed_it_says_it_was_canceled(portal, rig, browser):
    up = enrolled(rig, portal, pepper=rig.pepper)
    kept, refunded = rig.donate(2, card=6)
    rig.ledger.void(refunded.seq, "refund")  # what kiosk/staff/refund.py writes once the provider has refunded
    rig.ledger.checkpoint()
    assert up.sync_once().ok
    page = _phone(browser)

    page.goto(f"{portal.url}/r/{receipt_code(refunded)}#k={rig.ledger.key_id}")
    check = page.locator("#check[data-result=ok]")
    check.wait_for()
    assert check.inner_text() == "✓ この寄付の記録は確認できました。この寄付は、そのあと取り消されています。"
    voided = page.locator("#voided")
    assert voided.is_visible()
    assert voided.inner_text() == "この寄付は、そのあと取り消され、返金されました。寄付の合計には数えていません。"
    assert voided.evaluate("e => getComputedStyle(e).opacity") == "1"  # not faded with what is unchecked
    assert page.locator("#checked-note").get_attribute("hidden") is None  # the check passed: the note may say so
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.goto("about:blank")
    page.goto(f"{portal.url}/r/{receipt_code(kept)}#k={rig.ledger.key_id}")
    page.locator("#check[data-result=ok]").wait_for()
    assert page.locator("#check").inner_text() == "✓ この寄付は確認できました。"
    assert page.locator("#voided").count() == 0

    # The my page: the canceled gift is listed as canceled, without the points it no longer gives.
    token = rig.pepper.card_token(fake_idm(6))
    sk = keys.load_private(rig.cfg.private_key_path)
    page.goto(f"{portal.url}/me/new#{W.make_request(sk, rig.kiosk_id, token.all_hexes, rig.clock.wall_ms(), 180_000)}")
    page.wait_for_url(re.compile(r"/me/[A-Za-z0-9_-]{43}$"))
    assert page.locator("#points").inner_text() == str(kept.data["points"])
    line = page.locator("#history li.voided")
    assert "(取り消し)" in line.inner_text() and "ポイント" not in line.inner_text()
    assert "ポイント" in page.locator("#history li:not(.voided)").inner_text()


def test_a_receipt_the_phone_could_not_load_says_so_and_offers_to_try_again(db_url, rig, browser):
    # One receipt request a minute per address: the page itself takes it, so its check's fetch is answered 429,
    # as a lobby's phones behind one address are when many donors open their receipts at once.
    handle = start_portal(db_url, rate_limits=RateLimits(receipts="1/minute"))
    try:
        up = enrolled(rig, handle, pepper=rig.pepper)
        gift = rig.donate(1, card=7)[0]
        rig.ledger.checkpoint()
        assert up.sync_once().ok
        page = _phone(browser)
        page.goto(f"{handle.url}/r/{receipt_code(gift)}#k={rig.ledger.key_id}")
        # The check has ended (a locator, not wait_for_function: the portal's CSP forbids the eval that one polls
        # with, so it failed whenever the answer came after its first look).
        page.locator("#check[data-result]").wait_for()
        check = page.locator("#check")
        assert check.get_attribute("data-result") == "unreachable"
        assert check.inner_text() == ("受領証を読み込めなかったため、まだ確かめていません。"
                                      "通信の状態を確かめて、少し待ってから、もう一度お試しください。")
        assert "確認できませんでした" not in page.locator("main").inner_text()
        assert page.locator("#checked-note").get_attribute("hidden") is not None  # nothing checked: not said
        retry = page.locator("#retry")
        assert retry.is_visible() and retry.inner_text() == "もう一度確かめる"
        assert retry.bounding_box()["height"] >= 44
        with page.expect_response(re.compile(r"/api/v1/receipts/")) as answer:
            retry.click()  # asks again (still over the limit here: the same honest answer)
        assert answer.value.status == 429
        page.locator("#check[data-result=unreachable]").wait_for()
        assert retry.is_visible()
    finally:
        handle.stop()

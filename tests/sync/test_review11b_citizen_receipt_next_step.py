"""A donor's receipt on a phone (390×844, Japanese, headless Chromium) against a real portal on loopback, when the
check does not pass:

- the record genuinely does not check (a portal serving a signature the kiosk did not make): the page said only
  「✗ この寄付は確認できませんでした。」 and left the donor there; now it says what to do: keep the page's address
  and tell the staff of the center where the kiosk stands, with the kiosk and number, which the center checks
  against the kiosk's own record;
- a browser too old for WebCrypto Ed25519 (Chrome before 137, Safari before 17): the page said the same
  「✗ この寄付は確認できませんでした。」, as if the gift were wrong, when nothing had been checked; now it says this
  browser cannot check the receipt, that nothing is wrong with the gift, and to open it in an up-to-date browser.
"""

from __future__ import annotations

import requests
from sync_helpers import enrolled, needs_chromium
from test_receipt_browser import Malicious, _check
from test_receipts import tamperings

from server_sync.wire.receipt import receipt_code

pytestmark = needs_chromium  # the browser fixture: tests/sync/conftest.py

PHONE = {"width": 390, "height": 844}
SHOTS = None  # a folder to save screenshots into while looking at the page (None in CI)

# An older browser: WebCrypto without Ed25519 refuses the key as an unknown algorithm.
NO_ED25519 = """
const importKey = crypto.subtle.importKey.bind(crypto.subtle);
crypto.subtle.importKey = (format, key, alg, ...rest) =>
  alg && (alg === "Ed25519" || alg.name === "Ed25519")
    ? Promise.reject(new DOMException("Unrecognized name.", "NotSupportedError"))
    : importKey(format, key, alg, ...rest);
"""


def _shot(page, name: str) -> None:  # noqa: ANN001
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def test_a_receipt_that_does_not_check_says_what_to_do_next(portal, rig, browser):
    gift = rig.donate(3, card=2)[1]
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    code, kid = receipt_code(gift), rig.ledger.key_id
    honest = requests.get(f"{portal.url}/api/v1/receipts/{code}", timeout=10).json()
    page = browser.new_context(viewport=PHONE, locale="ja-JP").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # The honest receipt: confirmed, and no advice to go to the center.
    assert _check(page, f"{portal.url}/r/{code}#k={kid}")[0] == "ok"
    assert not page.locator("#bad-help").is_visible() and not page.locator("#no-crypto-help").is_visible()

    mal = Malicious(portal.url)
    try:
        mal.doc = tamperings(honest)["signature"]
        result, text = _check(page, f"{mal.url}/r/{code}#k={kid}")
        assert result == "failed" and text == "✗ この寄付は確認できませんでした。"
        help_ = page.locator("#bad-help")
        assert help_.is_visible()
        said = help_.inner_text()
        assert said.startswith("どうすればよいか：このページのアドレスをブックマークなどで残しておき、"
                               "端末が置いてあるセンターの職員にお知らせください。"), said
        assert f"（{rig.kiosk_id} #{gift.seq}）" in said, said
        assert "端末に残っている記録と照らし合わせて確かめます" in said
        assert not page.locator("#no-crypto-help").is_visible()
        assert not page.locator("#retry").is_visible()
        # Read right under the result, before the (faded) figures, in the page's normal size, inside the phone.
        check, helpbox = page.locator("#check").bounding_box(), help_.bounding_box()
        assert check and helpbox and check["y"] < helpbox["y"] < page.locator("#facts").bounding_box()["y"]
        assert help_.evaluate("e => parseFloat(getComputedStyle(e).fontSize)") >= 16
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        _shot(page, "bad")
    finally:
        mal.close()
    assert errors == []


def test_a_browser_too_old_to_check_is_not_told_the_gift_failed(portal, rig, browser):
    gift = rig.donate(1, card=3)[0]
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    page = browser.new_context(viewport=PHONE, locale="ja-JP").new_page()
    page.add_init_script(NO_ED25519)
    result, text = _check(page, f"{portal.url}/r/{receipt_code(gift)}#k={rig.ledger.key_id}")
    assert result == "nocrypto"
    assert text == "このブラウザーでは、この受領証を確かめられません。"
    assert "確認できませんでした" not in page.locator("main").inner_text()
    said = page.locator("#no-crypto-help")
    assert said.is_visible()
    assert said.inner_text().startswith("寄付に問題があるという意味ではありません。新しいブラウザー")
    assert not page.locator("#bad-help").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shot(page, "nocrypto")

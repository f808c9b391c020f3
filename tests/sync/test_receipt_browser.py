"""The receipt page's in-browser check in headless Chromium (Debian's, via Playwright): WebCrypto Ed25519 and
SHA-256 against the kiosk key id in the link's fragment, trusting nothing the portal says.

A malicious portal is a real HTTP server on loopback that serves the real page and script but an
altered receipt JSON (amount, body, signature, proof, checkpoint, or all of it re-signed by its own
key); each must be refused on the page. The honest receipt, through the same server, passes.
"""

from __future__ import annotations

import json

import requests
from sync_helpers import PROJECTS, enrolled, needs_chromium
from test_receipts import tamperings

from server_sync.configstore import publish
from server_sync.wire.receipt import receipt_code
from tests.loopback import Handler, LoopbackServer

pytestmark = needs_chromium  # the browser fixture: tests/sync/conftest.py



class Malicious:
    """A portal that relays the real one but answers receipt JSON with ``self.doc`` (when set)."""

    def __init__(self, upstream: str):
        self.upstream, self.doc, self.page_edit = upstream, None, None
        outer = self

        class Relay(Handler):
            def do_GET(self) -> None:  # noqa: N802
                r = requests.get(outer.upstream + self.path, timeout=10)
                body, ctype = r.content, r.headers.get("content-type", "text/plain")
                if self.path.startswith("/api/v1/receipts/") and outer.doc is not None:
                    body, ctype = json.dumps(outer.doc).encode(), "application/json"
                elif self.path.startswith("/r/") and outer.page_edit is not None:
                    body = outer.page_edit(body.decode()).encode()
                self.answer(r.status_code, body, ctype)

        self.http = LoopbackServer(Relay)
        self.url = self.http.url

    def close(self) -> None:
        self.http.close()


def _check(page, url: str) -> tuple[str, str]:  # noqa: ANN001
    page.goto("about:blank")  # the same URL again would be a same-document (fragment) navigation: no reload
    page.goto(url)
    page.wait_for_selector("#check[data-result]", timeout=15_000)
    return page.locator("#check").get_attribute("data-result"), page.locator("#check").inner_text()


def test_the_page_verifies_a_real_receipt_and_refuses_every_altered_one(portal, rig, browser):
    publish(portal.app.state.engine, {"projects": PROJECTS})
    gifts = rig.donate(12, card=1)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    gift, kid = gifts[7], rig.ledger.key_id
    code = receipt_code(gift)
    honest = requests.get(f"{portal.url}/api/v1/receipts/{code}", timeout=10).json()

    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP")  # a phone
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # The real portal, the QR's link: checked, in plain Japanese, details one click away.
    result, text = _check(page, f"{portal.url}/r/{code}#k={kid}")
    assert result == "ok" and "この寄付は確認できました" in text
    assert page.locator("#amount").inner_text() == f"¥{gift.data['amount_yen']:,}"
    assert page.locator("#steps li.ok").count() == 6 and page.locator("#steps li.bad").count() == 0
    assert not page.locator("#steps").is_visible()  # inside the closed <details>
    page.locator("#details summary").click()
    assert page.locator("#steps").is_visible()
    assert "このブラウザーが端末の署名を自分で確かめました" in page.locator("#details").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # Opened without the QR's fragment (a typed code): nothing to check the portal's key against.
    result, text = _check(page, f"{portal.url}/r/{code}")
    assert result == "nokey" and "QRコード" in text

    mal = Malicious(portal.url)
    try:
        mal.doc = honest  # the relay itself changes nothing: the honest receipt passes through it
        assert _check(page, f"{mal.url}/r/{code}#k={kid}")[0] == "ok"
        # The page's own figures are the portal's word too: the script shows the signed body's amount.
        mal.page_edit = lambda html: html.replace(f"¥{gift.data['amount_yen']:,}", "¥999,999")
        assert _check(page, f"{mal.url}/r/{code}#k={kid}")[0] == "ok"
        assert page.locator("#amount").inner_text() == f"¥{gift.data['amount_yen']:,}"
        mal.page_edit = None
        for what, bad in tamperings(honest).items():
            mal.doc = bad
            result, text = _check(page, f"{mal.url}/r/{code}#k={kid}")
            assert result == "failed", what
            assert "この寄付は確認できませんでした" in text, what
            assert page.locator("#steps li.bad").count() == 1, what
            assert "unverified" in (page.locator("#facts").get_attribute("class") or ""), what
    finally:
        mal.close()
        page.close()
    assert errors == []


def test_the_page_in_english_and_before_a_checkpoint(portal, rig, browser):
    publish(portal.app.state.engine, {"projects": PROJECTS})
    gift = rig.donate(1)[0]
    up = enrolled(rig, portal)
    assert up.sync_once().ok  # the donation is at the portal, no checkpoint covers it yet
    code, kid = receipt_code(gift), rig.ledger.key_id
    page = browser.new_page(locale="en-US")
    try:
        result, text = _check(page, f"{portal.url}/r/{code}?lang=en#k={kid}")
        assert result == "pending" and "Not checkable yet" in text
        rig.ledger.checkpoint()
        assert up.sync_once().ok
        result, text = _check(page, f"{portal.url}/r/{code}?lang=en#k={kid}")
        assert result == "ok" and text == "✓ This donation has been confirmed."
        # Switching to Japanese keeps the key id: the check runs again there.
        page.locator("a[hreflang=ja]").click()
        page.wait_for_url(f"**/r/{code}?lang=ja#k={kid}")
        page.wait_for_selector("#check[data-result]")
        assert "この寄付は確認できました" in page.locator("#check").inner_text()
    finally:
        page.close()


def test_the_page_follows_a_key_change_signed_by_the_previous_key(portal, rig, browser):
    from test_receipts import rekeyed

    before, _after, old_kid = rekeyed(portal, rig)
    page = browser.new_page(locale="ja-JP")
    try:
        result, text = _check(page, f"{portal.url}/r/{receipt_code(before[0])}#k={old_kid}")
        assert result == "ok", page.locator("#steps").text_content()
        assert page.locator("#steps li.ok").count() == 7  # the six checks and the key's hand-over
        assert "前の鍵から正しく引き継がれている" in (page.locator("#steps").text_content() or "")
        # The new key id in an old gift's link: the gift was not signed by it.
        assert _check(page, f"{portal.url}/r/{receipt_code(before[0])}#k={rig.ledger.key_id}")[0] == "failed"
    finally:
        page.close()

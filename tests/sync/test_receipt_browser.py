"""The receipt page's in-browser check in headless Chromium (Debian's, via Playwright): WebCrypto Ed25519 and
SHA-256 against the kiosk key id in the link's fragment, trusting nothing the portal says.

A malicious portal is a real HTTP server on loopback that serves the real page and script but an
altered receipt JSON (amount, body, signature, proof, checkpoint, or all of it re-signed by its own
key, or another gift's genuine receipt relabelled with the donor's code); each must be refused on the
page. The honest receipt, through the same server, passes. The page's receipt code (WebCrypto SHA-256,
base32) is Python's ``receipt_code_of`` for arbitrary bodies and signatures.
"""

from __future__ import annotations

import base64
import copy
import json
import os

import requests
from sync_helpers import PROJECTS, enrolled, needs_chromium
from test_receipts import relabelled, tamperings

from server_sync.configstore import publish
from server_sync.wire.receipt import receipt_code, receipt_code_of
from tests.loopback import Handler, LoopbackServer

pytestmark = needs_chromium  # the browser fixture: tests/sync/conftest.py



class Malicious:
    """A portal that relays the real one but answers receipt JSON with ``self.doc`` (when set), and any
    receipt page with the page at ``self.page_from`` (when set)."""

    def __init__(self, upstream: str):
        self.upstream, self.doc, self.page_edit, self.page_from = upstream, None, None, None
        outer = self

        class Relay(Handler):
            def do_GET(self) -> None:  # noqa: N802
                path = self.path
                if path.startswith("/r/") and outer.page_from is not None:
                    path = outer.page_from
                r = requests.get(outer.upstream + path, timeout=10)
                status, body, ctype = r.status_code, r.content, r.headers.get("content-type", "text/plain")
                if self.path.startswith("/api/v1/receipts/") and outer.doc is not None:
                    status, body, ctype = 200, json.dumps(outer.doc).encode(), "application/json"
                elif self.path.startswith("/r/") and outer.page_edit is not None:
                    body = outer.page_edit(body.decode()).encode()
                self.answer(status, body, ctype)

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
    assert page.locator("#steps li.ok").count() == 7 and page.locator("#steps li.bad").count() == 0
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
        assert page.locator("#steps li.ok").count() == 8  # the seven checks and the key's hand-over
        assert "前の鍵から正しく引き継がれている" in (page.locator("#steps").text_content() or "")
        # The new key id in an old gift's link: the gift was not signed by it.
        assert _check(page, f"{portal.url}/r/{receipt_code(before[0])}#k={rig.ledger.key_id}")[0] == "failed"
    finally:
        page.close()


CODE_STEP = "署名された記録がこの受領証コードの寄付のもの"  # the ja catalog's words for the code step


def test_the_page_refuses_another_gifts_genuine_receipt_relabelled_with_the_donors_code(portal, rig, browser):
    mine, other, lie = relabelled(portal, rig)
    code, kid = receipt_code(mine), rig.ledger.key_id
    page = browser.new_page(locale="ja-JP")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    mal = Malicious(portal.url)
    try:
        # My code answered with the other gift's genuine receipt (real signature, proof and checkpoint of the
        # same kiosk key), relabelled as mine, the page's own data-code too: refused, in plain Japanese.
        mal.doc = lie
        mal.page_edit = lambda html: html.replace(code, receipt_code(other))
        result, text = _check(page, f"{mal.url}/r/{code}#k={kid}")
        assert result == "failed" and "この寄付は確認できませんでした" in text
        assert page.locator("#steps li").all_text_contents() == ["✗ " + CODE_STEP]
        assert "unverified" in (page.locator("#facts").get_attribute("class") or "")
        assert page.locator("#amount").inner_text() != f"¥{other.data['amount_yen']:,}"
        # The same in English.
        mal.page_edit = None
        result, text = _check(page, f"{mal.url}/r/{code}?lang=en#k={kid}")
        assert result == "failed" and text == "✗ This donation could not be confirmed."
        steps = page.locator("#steps li").all_text_contents()
        assert steps == ["✗ The signed record is the one this receipt code names"]
        # The honest answer to my code, through the same relay: verified, the code step first.
        mal.doc = requests.get(f"{portal.url}/api/v1/receipts/{code}", timeout=10).json()
        result, text = _check(page, f"{mal.url}/r/{code}#k={kid}")
        assert result == "ok" and "この寄付は確認できました" in text
        assert page.locator("#steps li").first.text_content() == "✓ " + CODE_STEP
        assert page.locator("#amount").inner_text() == f"¥{mine.data['amount_yen']:,}"
    finally:
        mal.close()
        page.close()
    assert errors == []


def test_the_pages_receipt_code_is_pythons_receipt_code_of(portal, rig, browser):
    """Arbitrary bodies and signatures served under the page of a real receipt: the code step holds exactly
    when the address's code is ``receipt_code_of(body, signature)`` (then the signature step fails)."""
    publish(portal.app.state.engine, {"projects": PROJECTS})
    gift = rig.donate(1)[0]
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    real, kid = receipt_code(gift), rig.ledger.key_id
    honest = requests.get(f"{portal.url}/api/v1/receipts/{real}", timeout=10).json()
    cases = [(b"", os.urandom(64)), (bytes(range(256)) * 3, os.urandom(64)), ("寄付 ¥500".encode(), bytes(64)),
             (gift.body, os.urandom(64)), (os.urandom(1), b"\xff" * 64)]
    page = browser.new_page(locale="ja-JP")
    mal = Malicious(portal.url)
    mal.page_from = f"/r/{real}"  # the real page and script, whatever code the address names
    try:
        for body, sig in cases:
            want = receipt_code_of(body, sig)
            doc = copy.deepcopy(honest)
            doc["verification"].update(entry_body=base64.b64encode(body).decode(), entry_signature=sig.hex())
            mal.doc = doc
            for asked, same in ((want, True), (want.lower(), True), (receipt_code_of(body + b"x", sig), False)):
                result, _ = _check(page, f"{mal.url}/r/{asked}#k={kid}")
                steps = page.locator("#steps li").all_text_contents()
                assert result == "failed" and steps[0] == ("✓ " if same else "✗ ") + CODE_STEP, (body[:16], asked)
                assert len(steps) == (3 if same else 1), steps  # then the key holds and the signature fails
        # And the real gift, under its own code, verifies through the same relay.
        mal.doc = honest
        assert _check(page, f"{mal.url}/r/{real}#k={kid}")[0] == "ok"
    finally:
        mal.close()
        page.close()

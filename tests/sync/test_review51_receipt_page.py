"""Review 51: the facts printed beside the receipt page's ✓ are the verified ones, not the portal's HTML.

receipt.js checks the receipt JSON (signature, checkpoint, proof, the amount shown), but the page around it is the
portal's HTML: the 「端末 X #seq」 line a donor quotes to the center, and the key id and checkpoint root under
「どのように確かめたか」. A dishonest portal could print another kiosk, number, key or root beside a genuine ✓. After a
check that passes the script writes the signed ones over them and, when the page had printed something else, says
so (#mismatch). A real portal on loopback, a real receipt, headless Chromium; only the page's HTML is altered, by a
relay in front of the portal (the network seam, ``Malicious`` in test_receipt_browser.py); the receipt JSON is the
portal's own, untouched.

Session 33: the line names which facts differed, in a donor's words (端末・番号・金額・寄付先のプロジェクト・
署名の鍵・記録の要約; not 「ルート」, which stays in the details for auditors), in Japanese and in English, and carries
the center's contact, the same line as the advice under "could not be confirmed".
"""

from __future__ import annotations

import requests
from sync_helpers import PROJECTS, enrolled, needs_chromium
from test_receipt_browser import Malicious, _check

from server_sync import center
from server_sync.configstore import publish
from server_sync.wire.receipt import receipt_code

pytestmark = needs_chromium  # the browser fixture: tests/sync/conftest.py


def test_a_page_that_prints_another_kiosk_number_key_or_root_shows_the_signed_ones_and_says_so(portal, rig, browser):
    publish(portal.app.state.engine, {"projects": PROJECTS})
    center.save(portal.app.state.engine, {"name": "市民活動推進センター", "phone": "03-1234-5678", "note": "月曜休館"},
                "admin", None)
    contact = "センターの連絡先： 市民活動推進センター 電話 03-1234-5678 （月曜休館）"
    gifts = rig.donate(3, card=1)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    gift, kid = gifts[1], rig.ledger.key_id
    code = receipt_code(gift)
    v = requests.get(f"{portal.url}/api/v1/receipts/{code}", timeout=10).json()["verification"]
    kiosk, seq, root, size = rig.kiosk_id, str(gift.seq), v["checkpoint_root"], str(v["checkpoint_size"])
    amount, project = f"¥{gift.data['amount_yen']:,}", gift.data["project"]
    other = next(p["id"] for p in PROJECTS if p["id"] != project)
    facts = {"kiosk": kiosk, "seq": seq, "key-id": kid, "root": root, "root-size": size}

    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    mal = Malicious(portal.url)
    try:
        # The honest page: the same facts, nothing flagged.
        result, text = _check(page, f"{mal.url}/r/{code}#k={kid}")
        assert result == "ok" and "この寄付は確認できました" in text
        assert {k: page.locator(f"#{k}").text_content() for k in facts} == facts
        assert page.locator("#check").get_attribute("data-mismatch") == ""
        assert not page.locator("#mismatch").is_visible()

        # The portal's HTML names another kiosk, number, amount and project (and key and root) beside the genuine
        # receipt.
        lie = {"kiosk": "other-kiosk-9", "seq": "99", "key-id": "00" * 8, "root": "ab" * 32, "root-size": "1"}

        def tamper(html: str) -> str:
            for k, value in facts.items():
                tag = "code" if k in ("key-id", "root") else "span"
                real = f'<{tag} id="{k}">{value}</{tag}>'
                assert real in html, k
                html = html.replace(real, f'<{tag} id="{k}">{lie[k]}</{tag}>')
            for real, fake in ((f'id="amount">{amount}<', 'id="amount">¥999,999<'),
                               (f'data-project-id="{project}"', f'data-project-id="{other}"')):
                assert real in html, real
                html = html.replace(real, fake)
            return html

        mal.page_edit = tamper
        result, text = _check(page, f"{mal.url}/r/{code}#k={kid}")
        assert result == "ok" and "この寄付は確認できました" in text  # the signed gift holds
        assert {k: page.locator(f"#{k}").text_content() for k in facts} == facts  # ...and only its facts are shown
        line = page.locator("#facts").inner_text()
        assert f"{kiosk} #{seq}" in line and "other-kiosk-9" not in line and "#99" not in line
        assert page.locator("#amount").inner_text() == amount and page.locator("#project").inner_text() == project
        assert not page.locator("#area").is_visible()  # the portal's area of the other project: left out
        assert page.locator("#check").get_attribute("data-mismatch") == "kiosk seq amount project key root size"
        warn = page.locator("#mismatch")
        assert warn.is_visible()
        said = warn.inner_text()
        # Which ones, in a donor's words (root and size are one: the summary), and whom to tell: the center's line.
        assert said.startswith("この寄付は確認できました。ただし、このページに最初に表示された"
                               "端末、番号、金額、寄付先のプロジェクト、署名の鍵、記録の要約が、端末の署名した記録と違って"
                               "いました。"), said
        assert "ルート" not in said and "root" not in said
        words = "端末、番号、金額、寄付先のプロジェクト、署名の鍵、記録の要約"
        assert page.locator("#mismatch-items").inner_text() == words
        assert said.strip().endswith(contact), said
        assert page.locator("#center-contact").count() == 1  # copied, not a second element of the same id
        assert page.locator("#mismatch-center-phone").inner_text() == "電話 03-1234-5678"
        assert not page.locator("#bad-help").is_visible()  # the gift checked: not the "could not be confirmed" advice
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        # Only the number differs, and the root is left out of the page: only those are named; the root is shown.
        mal.page_edit = lambda html: html.replace(f'<span id="seq">{seq}</span>', '<span id="seq">1</span>').replace(
            f'<code id="root">{root}</code>', '<code id="root"></code>')
        assert _check(page, f"{mal.url}/r/{code}#k={kid}")[0] == "ok"
        assert page.locator("#seq").text_content() == seq and page.locator("#root").text_content() == root
        assert page.locator("#root-line").get_attribute("hidden") is None
        assert page.locator("#check").get_attribute("data-mismatch") == "seq root"
        assert page.locator("#mismatch-items").inner_text() == "番号、記録の要約"
        assert page.locator("#area").is_visible()  # the project is the signed one: its area stays

        # In English, the same words: which facts, and the center's line.
        assert _check(page, f"{mal.url}/r/{code}?lang=en#k={kid}")[0] == "ok"
        said = page.locator("#mismatch").inner_text()
        assert said.startswith("This donation has been confirmed. But the number and the summary of the kiosk records "
                               "first shown on this page did not match what the kiosk signed;"), said
        assert said.strip().endswith("The center: 市民活動推進センター Phone 03-1234-5678 (月曜休館)"), said
    finally:
        mal.close()
        page.close()
    assert errors == []

    # Without JavaScript nothing is checked: the page says the kiosk and number, too, are only the portal's word.
    page = browser.new_context(locale="ja-JP", java_script_enabled=False).new_page()
    try:
        page.goto(f"{portal.url}/r/{code}#k={kid}")
        note = page.locator("#no-script")
        assert note.is_visible() and not page.locator("#check").is_visible()
        assert "下の金額・日時・端末と番号は、ポータルの表示にすぎません" in note.inner_text()
        assert not page.locator("#mismatch").is_visible()
    finally:
        page.close()


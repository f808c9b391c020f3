"""The public pages, a receipt page and the staff login in headless Chromium (Debian's, via Playwright)."""

from __future__ import annotations

from sync_helpers import PROJECTS, enrolled, needs_chromium

from server_sync.configstore import publish
from server_sync.staff import add_user
from server_sync.wire.receipt import receipt_code

pytestmark = needs_chromium  # the browser fixture: tests/sync/conftest.py



def test_public_pages_receipt_and_staff_login_in_chromium(portal, rig, browser):
    publish(portal.app.state.engine, {"projects": PROJECTS})
    mine = rig.donate(4, card=1)
    rig.donate(3, card=2)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    add_user(portal.app.state.engine, "clerk", "correct horse battery")
    tot = rig.ledger.totals()

    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP")  # a phone
    page.goto(portal.url + "/")
    assert page.locator("html").get_attribute("lang") == "ja"
    assert page.locator("#total").inner_text() == f"¥{tot['total_yen']:,}"
    assert page.locator("#projects li").count() == len(PROJECTS)
    assert page.locator("[role=progressbar]").count() >= len(PROJECTS)
    assert page.get_by_text("こども食堂").count() >= 1
    # No horizontal scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_text("Kids cafeteria").count() >= 1

    page.goto(f"{portal.url}/p/kodomo")
    assert "こども食堂" in page.title()

    code = receipt_code(mine[0])
    page.goto(f"{portal.url}/r/{code}#k={rig.ledger.key_id}")  # the QR's link (tests/sync/test_receipt_browser.py)
    page.wait_for_selector("#check[data-result]")
    assert page.locator("#check").inner_text().startswith("✓")
    assert page.locator("#amount").inner_text() == f"¥{mine[0].data['amount_yen']:,}"
    assert page.locator("#history").count() == 0 and page.locator("#points").count() == 0  # that gift only
    assert mine[0].data["donor"] not in page.content()

    page.goto(f"{portal.url}/r/{'B' * 26}")
    assert "見つかりません" in page.content()

    page.goto(portal.url + "/staff")
    assert page.url.endswith("/staff/login")
    page.fill("input[name=username]", "clerk")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/staff")
    assert page.locator("#fleet").get_by_text(rig.kiosk_id).count() == 1
    page.close()

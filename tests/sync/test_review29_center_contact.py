"""The center's own contact (docs/portal.md, "The center's contact"), against a real portal on loopback (SQLite, and
PostgreSQL when KIOSK_TEST_PG_URL is set), with headless Chromium where a page is looked at:

- a donor whose receipt does not check was told 「端末が置いてあるセンターの職員にお知らせください」 with no way
  to reach the center: the portal kept no contact of the center itself. Administrators now set its name, phone
  number and a short note on /staff/center (linked from the staff navigation), and the receipt's next step shows
  them, escaped, never as a link; with nothing set the line is left out;
- only administrators may see or change it; the form needs its CSRF token; a form sent twice is saved once and
  answered "saved"; a form opened before a colleague's save is refused (409) with both versions shown.
"""

from __future__ import annotations

import json
import re

import requests
from sqlalchemy import select
from staff_words_check import assert_plain_japanese, messages
from sync_helpers import PASSWORD, enrolled, needs_chromium, staff_page, staff_session
from test_receipt_browser import Malicious, _check
from test_receipts import tamperings

from server_sync import center
from server_sync.db import settings
from server_sync.staff import add_user
from server_sync.wire.receipt import receipt_code

PHONE = {"width": 390, "height": 844}
EVIL = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
NAME = "市民活動推進センター"


def _stored(portal) -> dict:  # noqa: ANN001
    with portal.app.state.engine.connect() as conn:
        raw = conn.execute(select(settings.c.value).where(settings.c.name == center.SETTING)).scalar()
    return json.loads(raw) if raw else {}


def _seen(html: str) -> str:
    m = re.search(r'name="seen" value="(\d*)"', html)
    assert m is not None, "the center form carries the version it was opened at"
    return m[1]


def _form(s: requests.Session, url: str, token: str, **fields: str) -> dict[str, str]:
    """The center's form as an administrator opens it now, with ``fields`` typed over it."""
    page = s.get(url + "/staff/center", timeout=10)
    assert page.status_code == 200, page.status_code
    return {"csrf": token, "seen": _seen(page.text), "name": "", "phone": "", "note": "", **fields}


@needs_chromium
def test_an_administrator_sets_the_contact_and_a_receipt_that_does_not_check_shows_it(portal, rig, browser):
    eng = portal.app.state.engine
    add_user(eng, "admin", PASSWORD)
    gift = rig.donate(1, card=2)[0]
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    code, kid = receipt_code(gift), rig.ledger.key_id

    # The administrator finds the page in the staff navigation and fills it in on a phone, in Japanese; the phone
    # number typed with a Japanese keyboard's full-width digits.
    staff = staff_page(browser, portal.url, "admin")
    staff.click("header summary")  # on a phone the staff menu opens under 「メニュー」 (base.html)
    staff.click("nav.staffnav a[href='/staff/center']")
    staff.wait_for_url("**/staff/center")
    assert staff.locator("h2").first.inner_text() == "センターの連絡先"
    staff.fill("#f-name", NAME)
    staff.fill("#f-phone", "０３－１２３４－５６７８")
    staff.fill("#f-note", f"9:00–21:00、月曜休館 {EVIL}")
    staff.click("#center-form button[type=submit]")
    staff.wait_for_selector("#notice")
    assert staff.locator("#notice").inner_text() == "保存しました。受領証のページに、この連絡先を表示します。"
    assert staff.input_value("#f-phone") == "03-1234-5678"
    assert staff.input_value("#f-note") == f"9:00–21:00、月曜休館 {EVIL}"
    assert staff.locator("nav.staffnav a[aria-current=page]").text_content() == "センターの連絡先"  # folded menu

    page = browser.new_context(viewport=PHONE, locale="ja-JP").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # An honest receipt: confirmed; no advice, and so no contact, in sight.
    assert _check(page, f"{portal.url}/r/{code}#k={kid}")[0] == "ok"
    assert not page.locator("#bad-help").is_visible() and not page.locator("#center-contact").is_visible()

    mal = Malicious(portal.url)
    try:
        mal.doc = tamperings(requests.get(f"{portal.url}/api/v1/receipts/{code}", timeout=10).json())["signature"]
        assert _check(page, f"{mal.url}/r/{code}#k={kid}")[0] == "failed"
        said = page.locator("#bad-help").inner_text()
        assert said.startswith("どうすればよいか：このページのアドレスを"), said
        contact = page.locator("#center-contact")
        assert contact.is_visible()
        assert contact.inner_text().strip() == (
            f"センターの連絡先： {NAME} 電話 03-1234-5678 （9:00–21:00、月曜休館 {EVIL}）")
        # Text, not markup and not a link: no script of the note's, no tel: or other address made from it.
        assert page.evaluate("[...document.scripts].filter(s => !s.src).length") == 0
        assert page.locator("#bad-help a").count() == 0
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        mal.close()
    assert errors == []

    en = requests.get(f"{portal.url}/r/{code}?lang=en", timeout=10).text
    assert (f'The center: <span id="center-name">{NAME}</span> <span id="center-phone">Phone 03-1234-5678</span> '
            f'<span id="center-note">(9:00–21:00、月曜休館 {ESCAPED})</span>') in en


def test_with_no_contact_set_the_receipt_leaves_the_line_out_and_an_emptied_form_takes_it_off(portal, rig):
    eng = portal.app.state.engine
    add_user(eng, "admin", PASSWORD)
    gift = rig.donate(1)[0]
    assert enrolled(rig, portal).sync_once().ok
    url = f"{portal.url}/r/{receipt_code(gift)}"
    before = requests.get(url, timeout=10).text
    assert 'id="bad-help"' in before and "center-contact" not in before

    s, token = staff_session(portal.url, "admin")
    assert s.post(portal.url + "/staff/center", data=_form(s, portal.url, token, phone="03-1234-5678"),
                  timeout=10).status_code == 200  # followed to the page, saved
    assert '<span id="center-phone">電話 03-1234-5678</span>' in requests.get(url, timeout=10).text
    assert "center-name" not in requests.get(url, timeout=10).text  # only what is set is shown

    cleared = s.post(portal.url + "/staff/center", data=_form(s, portal.url, token), timeout=10)
    assert "保存しました。連絡先は空です。" in cleared.text
    assert "center-contact" not in requests.get(url, timeout=10).text
    # An unknown receipt code's page has no next step, and no contact.
    assert "center-contact" not in requests.get(f"{portal.url}/r/AAAA-BBBB-CCCC", timeout=10).text


def test_only_administrators_change_it_with_the_forms_token_and_a_wrong_phone_is_said_beside_it(portal):
    eng = portal.app.state.engine
    add_user(eng, "admin", PASSWORD)
    add_user(eng, "staff1", PASSWORD, "staff")
    s, token = staff_session(portal.url, "staff1")
    assert "/staff/center" not in s.get(portal.url + "/staff", timeout=10).text  # not in a staff member's menu
    assert s.get(portal.url + "/staff/center", timeout=10).status_code == 403
    r = s.post(portal.url + "/staff/center", data={"csrf": token, "seen": "0", "name": "x"}, timeout=10)
    assert r.status_code == 403 and _stored(portal) == {}

    a, atoken = staff_session(portal.url, "admin")
    r = a.post(portal.url + "/staff/center", data={**_form(a, portal.url, atoken, name="x"), "csrf": "forged"},
               timeout=10, allow_redirects=False)
    assert r.status_code == 403 and "このフォームは期限切れです。" in r.text and _stored(portal) == {}

    typed = _form(a, portal.url, atoken, name=NAME, phone="03-1234-5678 内線12", note="受付\t9時")
    r = a.post(portal.url + "/staff/center", data=typed, timeout=10)
    assert r.status_code == 422 and _stored(portal) == {}
    assert '<p class="bad err" data-for="phone">数字とハイフンだけで書いてください。例：03-1234-5678</p>' in r.text
    assert ('<p class="bad err" data-for="note">改行、タブ、目に見えない制御文字は使えません。1行で書いてください。</p>'
            in r.text)
    assert f'value="{NAME}"' in r.text and 'value="03-1234-5678 内線12"' in r.text  # the typing kept
    assert_plain_japanese(messages(r.text))
    r = a.post(portal.url + "/staff/center", data={**typed, "phone": "", "note": "", "name": "セ" * 101}, timeout=10)
    assert r.status_code == 422 and "長すぎます。100 文字までにしてください。" in r.text and _stored(portal) == {}


def test_a_form_sent_twice_is_saved_once_and_a_colleagues_save_is_not_overwritten(portal):
    eng = portal.app.state.engine
    add_user(eng, "admin", PASSWORD)
    add_user(eng, "admin2", PASSWORD)
    a, atoken = staff_session(portal.url, "admin")
    b, btoken = staff_session(portal.url, "admin2")
    mine = _form(a, portal.url, atoken, name=NAME, phone="03-1234-5678")
    first = a.post(portal.url + "/staff/center", data=mine, timeout=10, allow_redirects=False)
    saved = _stored(portal)
    # The same form again (a double tap, a resent request): answered as saved, and nothing is written again.
    again = a.post(portal.url + "/staff/center", data=mine, timeout=10, allow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"] == "/staff/center?done=saved"
    assert _stored(portal) == saved and saved["by"] == "admin" and saved["phone"] == "03-1234-5678"

    # admin opens the page; admin2 saves another number meanwhile; admin's save is refused, both versions shown.
    opened = _form(a, portal.url, atoken, name=NAME, phone="03-1111-2222")
    assert b.post(portal.url + "/staff/center", data=_form(b, portal.url, btoken, name=NAME, phone="03-9999-0000"),
                  timeout=10, allow_redirects=False).status_code == 303
    r = a.post(portal.url + "/staff/center", data=opened, timeout=10)
    assert r.status_code == 409 and _stored(portal)["phone"] == "03-9999-0000"
    assert "ほかの人がセンターの連絡先を変更しました" in r.text
    assert re.search(r'<tr data-field="phone"><td>電話番号</td><td class="typed"[^>]*>03-1111-2222</td>'
                     r'<td[^>]*>03-9999-0000</td></tr>', r.text), r.text
    assert 'id="f-phone" name="phone" type="tel" value="03-9999-0000"' in r.text  # the form: what is stored now
    # Saving again from that page is a deliberate choice, and is saved.
    r = a.post(portal.url + "/staff/center", data={**opened, "seen": _seen(r.text)}, timeout=10,
               allow_redirects=False)
    assert r.status_code == 303 and _stored(portal)["phone"] == "03-1111-2222"

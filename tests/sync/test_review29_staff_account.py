"""A staff user's own account, as they meet it (docs/portal.md, "Accounts"), against a real portal on loopback
(SQLite, and PostgreSQL when KIOSK_TEST_PG_URL is set) and in headless Chromium on a phone:

- every role changes its own password on /staff/password (linked from the header): before, the password an
  administrator chose and handed over to a group's volunteer stayed in use for good. The current password, the new
  one twice, at least staff.MIN_PASSWORD characters, plain Japanese errors beside the boxes; the same form sent
  twice is not an error; the user's other sessions end and this browser stays signed in (under a new session
  id, and past a few wrong current passwords the page waits: test_staff_password_guard.py);
- signing out lands on the sign-in page saying 「ログアウトしました。」;
- the header says what the pages are for the one signed in (a group's editor is not 「ポータル職員」);
- the sign-in page's "forgot your password?" line shows the center's contact when one is set (text, escaped);
- an administrator's dashboard says when the center's contact is not set, with a link to set it.

The auditor's side of the password page (a read-only role that may change its own password and nothing else) is
in test_review29_auditor.py.
"""

from __future__ import annotations

import re

import requests
from sync_helpers import PASSWORD, needs_chromium, staff_page, staff_session

from server_sync import catalog, center, staff
from server_sync.staff import add_user

NEW = "a new one only I know"


def _signed_in(s: requests.Session, url: str) -> bool:
    return s.get(url + "/staff", timeout=10, allow_redirects=False).status_code == 200


def _error(html: str, field: str) -> str:
    m = re.search(rf'<p class="bad err" data-for="{field}">([^<]+)</p>', html)
    return m[1] if m else ""


def test_an_editor_changes_their_own_password_and_their_other_sessions_end(portal):
    url, eng = portal.url, portal.app.state.engine
    catalog.import_catalog(eng, {"groups": [{"id": "g", "name": "Gの会", "contact": "x"}], "projects": []})
    add_user(eng, "admin", PASSWORD)
    add_user(eng, "ed", PASSWORD, "editor", "g")
    here, token = staff_session(url, "ed")
    elsewhere, _ = staff_session(url, "ed")  # the same volunteer, still signed in on the center's PC
    admin, _ = staff_session(url, "admin")
    own = {"Origin": url}

    def send(s: requests.Session, **fields: str) -> requests.Response:
        return s.post(url + "/staff/password", data={"csrf": token, **fields}, headers=own, timeout=10,
                      allow_redirects=False)

    page = here.get(url + "/staff/password", timeout=10)
    assert page.status_code == 200 and "<h2>パスワードを変える</h2>" in page.text
    assert "8文字以上" in page.text
    # Each mistake in plain Japanese beside its box, the passwords typed never put back, nothing changed.
    r = send(here, current="not it at all", new=NEW, again=NEW)
    assert r.status_code == 422
    assert _error(r.text, "current") == "いま使っているパスワードと違います。もう一度入れてください。"
    assert "not it at all" not in r.text and NEW not in r.text
    r = send(here, current=PASSWORD, new=NEW, again=NEW + "x")
    assert r.status_code == 422 and "同じではありません" in _error(r.text, "again")
    r = send(here, current=PASSWORD, new="short", again="short")
    assert r.status_code == 422 and _error(r.text, "new") == "パスワードは 8 文字以上にしてください。"
    r = send(here, current=PASSWORD, new=PASSWORD, again=PASSWORD)
    assert r.status_code == 422 and "いまのパスワードと同じ" in _error(r.text, "new")
    r = send(here, current="", new=NEW, again=NEW)
    assert r.status_code == 422 and _error(r.text, "current") == "いま使っているパスワードを入れてください。"
    assert staff.login(eng, "ed", PASSWORD) and _signed_in(elsewhere, url)
    # Without the form's token: refused, nothing changed.
    r = here.post(url + "/staff/password", data={"current": PASSWORD, "new": NEW, "again": NEW}, headers=own,
                  timeout=10, allow_redirects=False)
    assert r.status_code == 403 and staff.login(eng, "ed", PASSWORD)

    r = send(here, current=PASSWORD, new=NEW, again=NEW)
    assert r.status_code == 303 and r.headers["location"] == "/staff/password?done=password"
    assert "パスワードを変えました" in here.get(url + r.headers["location"], timeout=10).text
    assert _signed_in(here, url)  # this browser stays signed in (in a new session: test_staff_password_guard.py)
    assert not _signed_in(elsewhere, url)  # the other one ended
    assert _signed_in(admin, url)  # nobody else's
    assert staff.login(eng, "ed", NEW) and not staff.login(eng, "ed", PASSWORD)
    # The same form resent from this browser: its token was the old session's, so the form has expired (the 403
    # page says to reload) and nothing changes. (A double tap's second copy: test_staff_password_guard.py.)
    r = send(here, current=PASSWORD, new=NEW, again=NEW)
    assert r.status_code == 403 and staff.login(eng, "ed", NEW) and _signed_in(here, url)
    # The role and group are as they were.
    assert staff.who(eng, "ed") == staff.Who("ed", "editor", "g")


def test_the_dashboard_tells_an_administrator_the_centers_contact_is_unset(portal):
    url, eng = portal.url, portal.app.state.engine
    add_user(eng, "admin", PASSWORD)
    add_user(eng, "staff1", PASSWORD, "staff")
    admin, _ = staff_session(url, "admin")
    colleague, _ = staff_session(url, "staff1")
    dash = admin.get(url + "/staff", timeout=10).text
    line = re.search(r'<p class="bad" id="contact-unset">(.*?)</p>', dash)
    assert line is not None and "センターの連絡先が設定されていません" in line[1]
    assert '<a href="/staff/center">センターの連絡先を設定する</a>' in line[1]
    assert 'id="contact-unset"' not in colleague.get(url + "/staff", timeout=10).text  # not theirs to set
    center.save(eng, {"name": "市民活動推進センター", "phone": "", "note": ""}, "admin", None)
    assert 'id="contact-unset"' not in admin.get(url + "/staff", timeout=10).text


def test_the_sign_in_page_shows_the_centers_contact_as_text(portal):
    url, eng = portal.url, portal.app.state.engine
    page = requests.get(url + "/staff/login", timeout=10).text
    assert 'id="center-contact"' not in page  # none set: the line says "ask the center staff" only
    center.save(eng, {"name": "<b>センター</b>", "phone": "03-1234-5678", "note": "平日 9時〜17時"}, "admin", None)
    for page in (requests.get(url + "/staff/login", timeout=10).text,
                 requests.post(url + "/staff/login", data={"username": "nobody", "password": "wrong pass"},
                               timeout=10).text):
        forgot = re.search(r'<p class="hint" id="forgot">(.*?)</p>', page, re.S)
        assert forgot is not None
        assert "&lt;b&gt;センター&lt;/b&gt;" in forgot[1] and "<b>" not in forgot[1]
        assert "電話 03-1234-5678" in forgot[1] and "（平日 9時〜17時）" in forgot[1]
        assert "<a " not in forgot[1]


@needs_chromium
def test_in_chromium_a_volunteer_changes_the_password_they_were_given_and_signs_out(staff_site, browser, tmp_path):
    url, eng = staff_site.url, staff_site.app.state.engine
    catalog.import_catalog(eng, {"groups": [{"id": "g", "name": "Gの会", "contact": "x"}], "projects": []})
    add_user(eng, "ed", PASSWORD, "editor", "g")
    add_user(eng, "kansa", PASSWORD, "auditor")
    center.save(eng, {"name": "市民活動推進センター", "phone": "03-1234-5678", "note": ""}, "admin", None)
    elsewhere, _ = staff_session(url, "ed")
    page = staff_page(browser, url, "ed")
    assert page.inner_text("header h1") == "団体の編集ページ"  # a volunteer, not 「ポータル職員」
    page.click("header summary")  # on a phone the staff menu opens under 「メニュー」 (base.html)
    page.click("#own-password")
    page.wait_for_url("**/staff/password")
    page.fill("#f-current", "not my password")
    page.fill("#f-new", NEW)
    page.fill("#f-again", NEW)
    page.click("#password-form button[type=submit]")
    err = page.locator('p.err[data-for="current"]')
    err.wait_for()
    assert err.inner_text() == "いま使っているパスワードと違います。もう一度入れてください。"
    # The error stands right under its own box.
    assert page.evaluate("document.querySelector('p.err[data-for=current]').previousElementSibling.id") == \
        "f-current"
    assert page.input_value("#f-new") == ""  # passwords are typed again, never kept in the page
    page.screenshot(path=str(tmp_path / "password-error.png"), full_page=True)
    page.fill("#f-current", PASSWORD)
    page.fill("#f-new", NEW)
    page.fill("#f-again", NEW)
    page.click("#password-form button[type=submit]")
    page.wait_for_selector("#notice")
    assert "パスワードを変えました" in page.inner_text("#notice")
    page.screenshot(path=str(tmp_path / "password-done.png"), full_page=True)
    assert not _signed_in(elsewhere, url)
    page.goto(url + "/staff")
    assert page.url.endswith("/staff")  # still signed in here
    page.click("header summary")
    page.click("nav.staffnav form button")  # ログアウト
    page.wait_for_url("**/staff/login*")
    assert page.inner_text("#signed-out") == "ログアウトしました。"
    assert "電話 03-1234-5678" in page.inner_text("#forgot")
    page.screenshot(path=str(tmp_path / "signed-out.png"), full_page=True)
    page.fill("input[name=username]", "ed")
    page.fill("input[name=password]", NEW)
    page.click("button[type=submit]")
    page.wait_for_url("**/staff")
    auditor = staff_page(browser, url, "kansa")
    assert auditor.inner_text("header h1") == "監査用ページ（見るだけ）"
    assert auditor.locator("#own-password").text_content() == "パスワードを変える"  # in the folded menu
    assert staff_page(browser, url, "staff1").inner_text("header h1") == "ポータル職員"

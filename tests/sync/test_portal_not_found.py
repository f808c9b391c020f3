"""What a person sees when the portal has nothing at an address, or turns down what they typed, in a real
headless Chromium against a real portal on loopback (SQLite and PostgreSQL); the JSON answers over real HTTP.

- A wrong password on the staff sign-in page keeps the user name that was typed (never the password).
- An address the portal does not know, opened in a browser, is the portal's own "not found" page in Japanese
  with a way back to the top page, not the raw ``{"error": "not_found"}`` of the kiosk protocol; the kiosks,
  the public JSON (/api/) and anything that does not ask for HTML keep that JSON exactly.
- A staff member opening a project, movie, video or kiosk-day that does not exist is told it was not found
  (404, with a link back to its list), not that their role does not allow it; an item that exists but is
  another group's keeps the 403.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
import requests
from sync_helpers import PASSWORD, PROJECTS, enrolled, needs_chromium, staff_page, staff_session

from server_sync import catalog
from server_sync.configstore import publish
from server_sync.embedded import start_portal
from server_sync.staff import add_user

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
CATALOG = {"groups": [{"id": "group-a", "name": "Aの会"}, {"id": "group-b", "name": "Bの会"}],
           "projects": [{"id": "proj-a", "group_id": "group-a", "title": "Aのプロジェクト", "area": "green",
                         "goal_yen": 1000},
                        {"id": "proj-b", "group_id": "group-b", "title": "Bのプロジェクト", "area": "town",
                         "goal_yen": 1000}]}
ROLE_REFUSAL = "あなたの役割では"  # staff_forbidden.html's default text: "your role does not allow this"


@pytest.fixture
def center(db_url: str, tmp_path: Path):
    handle = start_portal(db_url, spool_dir=str(tmp_path / "spool"), secret_file=tmp_path / "secret")
    eng = handle.app.state.engine
    catalog.import_catalog(eng, CATALOG)
    add_user(eng, "admin", PASSWORD)
    add_user(eng, "editor-a", PASSWORD, "editor", "group-a")
    yield handle
    handle.stop()


def _no_json(text: str) -> None:
    assert '"error"' not in text and "not_found" not in text, text[:500]


# --- 1. the sign-in form after a wrong password ----------------------------------------------------------------
@needs_chromium
def test_a_wrong_password_keeps_the_user_name_typed_and_never_the_password(center, browser):
    page = browser.new_page(locale="ja-JP")
    page.goto(center.url + "/staff/login")
    page.fill("input[name=username]", "editor-a")
    page.fill("input[name=password]", "not the password")
    with page.expect_response(lambda r: r.url.endswith("/staff/login") and r.request.method == "POST") as got:
        page.click("button[type=submit]")
    assert got.value.status == 401
    page.wait_for_load_state()
    assert "wrong user or password" in page.locator("main").inner_text()
    assert page.input_value("input[name=username]") == "editor-a"  # not typed again
    assert page.input_value("input[name=password]") == ""
    assert "not the password" not in page.content()
    # Only the password is left to type: the right one signs in.
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/staff")


def test_the_user_name_kept_on_the_sign_in_page_is_text_not_markup(center):
    typed = '"><script>alert(1)</script>'
    r = requests.post(center.url + "/staff/login", data={"username": typed, "password": "x"}, timeout=10)
    assert r.status_code == 401
    assert "<script>alert(1)" not in r.text
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in r.text, r.text[-1500:]


# --- 2. an address the portal does not know ------------------------------------------------------------------
@needs_chromium
@pytest.mark.parametrize("path", ["/nonexistent", "/staff/typo", "/p/no-such-project", "/staff/reconciliation/2025-01"])
def test_an_unknown_address_in_a_browser_is_the_portals_own_page_with_a_way_to_the_top(center, browser, path):
    publish(center.app.state.engine, {"projects": PROJECTS})
    page = browser.new_page(locale="ja-JP")
    r = page.goto(center.url + path)
    assert r is not None and r.status == 404 and r.headers["content-type"].startswith("text/html")
    assert page.locator("html").get_attribute("lang") == "ja"
    body = page.locator("body").inner_text()
    _no_json(body)
    assert page.locator("main h2").inner_text() == "見つかりません"
    top = page.locator("main a[href^='/']").first  # in the page itself, not only the header's menu
    assert "トップ" in top.inner_text()
    top.click()
    page.wait_for_url(re.compile(r".*/(\?lang=ja)?$"))
    assert "こども食堂" in page.locator("main").inner_text()  # the top page, with its projects
    # In English when asked.
    r = page.goto(center.url + path + "?lang=en")
    assert r is not None and r.status == 404
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("main h2").inner_text() == "Not found"


def test_unknown_addresses_keep_their_json_for_kiosks_the_api_and_scripts(center):
    url = center.url
    exact = {"error": "not_found", "reason": "Not Found"}
    for path, accept in (("/api/v1/nope", BROWSER_ACCEPT), ("/api/v1/kiosks/k1/nope", BROWSER_ACCEPT),
                         ("/api/v1/nope", None), ("/nonexistent", None), ("/nonexistent", "*/*"),
                         ("/nonexistent", "application/json"), ("/staff/typo", "application/json, text/html")):
        r = requests.get(url + path, headers={"Accept": accept} if accept else {}, timeout=10)
        assert (r.status_code, r.headers["content-type"], r.json()) == (404, "application/json", exact), (path, accept)
    r = requests.get(url + "/api/v1/projects/no-such-project", headers={"Accept": BROWSER_ACCEPT}, timeout=10)
    assert (r.status_code, r.json()) == (404, {"error": "not_found", "reason": "no project 'no-such-project'"})
    # Another method on a known address is still the JSON 405.
    r = requests.delete(url + "/api/v1/totals", headers={"Accept": BROWSER_ACCEPT}, timeout=10)
    assert (r.status_code, r.json()["error"]) == (405, "method_not_allowed")
    r = requests.get(url + "/nonexistent", headers={"Accept": BROWSER_ACCEPT}, timeout=10)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store" and "見つかりません" in r.text


# --- 3. a staff member and an item that does not exist ---------------------------------------------------------
def _missing(center, rig) -> dict[str, str]:  # noqa: ANN001
    """Addresses of items that do not exist, each with the list it belongs to."""
    return {"/staff/projects/no-such-project": "/staff/projects",
            f"/staff/movies/{secrets.token_hex(12)}": "/staff/movies",
            f"/staff/movies/{secrets.token_hex(12)}/preview": "/staff/movies",
            f"/staff/media/{secrets.token_hex(32)}": "/staff/media",
            f"/staff/reconciliation/{rig.kiosk_id}/2020-01-01": "/staff/reconciliation",
            "/staff/reconciliation/no-such-kiosk/2025-01-01": "/staff/reconciliation"}
# (A day that is no date, /staff/reconciliation/{kiosk}/2025-02-30, is a 400 that says how to write one:
# tests/sync/test_s54hk_reconcile_csv.py.)


@needs_chromium
def test_a_staff_member_opening_an_item_that_does_not_exist_is_told_it_was_not_found(center, rig, browser):
    publish(center.app.state.engine, {"projects": PROJECTS})
    rig.donate(1)
    rig.ledger.checkpoint()
    assert enrolled(rig, center).sync_once().ok
    url = center.url
    admin = staff_page(browser, url, "admin")
    for path, back in _missing(center, rig).items():
        r = admin.goto(url + path)
        assert r is not None and r.status == 404, (path, r and r.status)
        text = admin.locator("main").inner_text()
        assert "見つかりません" in text and ROLE_REFUSAL not in text, (path, text)
        assert not re.search(r"[A-Za-z]{4,}", text), (path, text)  # plain Japanese, no English or codes
        link = admin.locator(f"main a[href='{back}']")
        assert link.count() == 1, (path, admin.content()[-1500:])
        link.click()
        admin.wait_for_url("**" + back)
        assert admin.locator("main").count() == 1 and ROLE_REFUSAL not in admin.locator("main").inner_text()
    # A group editor: the same for what does not exist; another group's project that does exist stays refused.
    editor = staff_page(browser, url, "editor-a")
    r = editor.goto(url + "/staff/projects/no-such-project")
    assert r is not None and r.status == 404 and "見つかりません" in editor.locator("main").inner_text()
    r = editor.goto(url + "/staff/projects/proj-b")
    assert r is not None and r.status == 403 and ROLE_REFUSAL in editor.locator("main").inner_text()
    r = editor.goto(url + "/staff/projects/proj-a")
    assert r is not None and r.status == 200


def test_saving_an_item_that_does_not_exist_is_not_found_and_stores_nothing(center, rig):
    url, eng = center.url, center.app.state.engine
    s, token = staff_session(url, "admin")
    r = s.post(url + "/staff/projects", timeout=10, data={
        "csrf": token, "editing": "no-such-project", "title": "新しい題名", "group_id": "group-a", "area": "green",
        "goal_yen": "1000", "active": "1"})
    assert r.status_code == 404 and "見つかりません" in r.text and ROLE_REFUSAL not in r.text
    with eng.connect() as conn:
        assert sorted(p["id"] for p in catalog.list_projects(conn)) == ["proj-a", "proj-b"]
    r = s.post(f"{url}/staff/media/{secrets.token_hex(32)}", data={"csrf": token, "name": "x"}, timeout=10)
    assert r.status_code == 404 and 'href="/staff/media"' in r.text
    for action in ("publish", "discard"):
        r = s.post(f"{url}/staff/movies/{secrets.token_hex(12)}/{action}", data={"csrf": token}, timeout=10)
        assert r.status_code == 404 and 'href="/staff/movies"' in r.text, action
    # An editor and another group's project, which exists: still 403, and it is not changed.
    se, token_e = staff_session(url, "editor-a")
    r = se.post(url + "/staff/projects", timeout=10, data={
        "csrf": token_e, "editing": "proj-b", "title": "乗っ取り", "group_id": "group-a", "area": "green",
        "goal_yen": "1000", "active": "1"})
    assert r.status_code == 403 and ROLE_REFUSAL in r.text
    # In English for a staff member who chose it.
    se_en, _ = staff_session(url, "admin", lang="en")
    r = se_en.get(url + "/staff/projects/no-such-project", timeout=10)
    assert r.status_code == 404 and "Not found" in r.text and "Back to the projects" in r.text

"""The city's auditor (監査) gets their own read-only login (docs/portal.md, "Roles"; docs/receipts.md, "An auditor's
walkthrough"), against a real portal on loopback (SQLite, and PostgreSQL when KIOSK_TEST_PG_URL is set), with
headless Chromium for the pages as they are seen:

- before, only center staff could download the month's CSV and the donations CSV, so the auditor had to ask the
  people being audited for the files, and a staff login would have let them refund, publish and change kiosks;
- an administrator adds an auditor on /staff/users (or ``kiosk-portal staff-add --role auditor``); the auditor
  opens the dashboard's totals, the reconciliation (its days and 会計用 CSV), the donations CSV, the points
  report and the kiosks page (read only, for its key events), and every other staff page answers the plain
  Japanese 403 page;
- every POST the staff UI has (walked over the app's routes, so forms added later are covered) answers an auditor
  with that same 403 page before its handler runs, and stores nothing; signing out still works, and so does
  changing their own password (/staff/password), which changes nothing else whatever the form holds.
"""

from __future__ import annotations

import csv
import io
import re
import time

import requests
from fastapi.routing import APIRoute
from sync_helpers import PASSWORD, enrolled, needs_chromium, staff_page, staff_session

from server_sync import catalog, staff
from server_sync.portal_cli import main as portal_main
from server_sync.staff import add_user

REFUSED = "あなたの役割ではこのページまたは項目を扱えません"
# The pages an auditor opens (staff.PAGE_ROLES "everyone" and "audit"); every other staff page is refused.
AUDIT_PAGES = {"/staff", "/staff/reconciliation", "/staff/reconciliation.csv", "/staff/donations.csv",
               "/staff/points-report", "/staff/points-report.csv",
               "/staff/kiosks",  # read only, for its key events: `--trust-key` (tests/sync/test_s54_auditor_keys.py)
               "/staff/password"}  # and the page where every role changes its own password
OPEN_TO_ALL = {"/staff/login", "/staff/lang"}  # signing in and the language switch


def _routes(app, methods: set[str]) -> list[str]:  # noqa: ANN001
    out = set()
    for r in app.routes:
        if isinstance(r, APIRoute) and r.methods & methods and (r.path == "/staff" or r.path.startswith("/staff/")):
            out.add(r.path)
    return sorted(out)


def _auditor_portal(portal, rig) -> tuple[requests.Session, str]:  # noqa: ANN001
    """Two donations synced, an administrator, and an auditor the administrator adds on the users page."""
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"groups": [{"id": "g", "name": "G", "contact": "g@example.jp"}], "projects": []})
    add_user(eng, "admin", PASSWORD)
    rig.clock.wall = int(time.time() * 1000)  # this month, as the dashboard and the reconciliation count it
    rig.donate(2, amounts=(300, 700))
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    admin, token = staff_session(portal.url, "admin")
    r = admin.post(portal.url + "/staff/users", data={"csrf": token, "action": "add", "username": "kansa",
                                                      "password": PASSWORD, "role": "auditor", "group_id": ""},
                   timeout=10, allow_redirects=False)
    assert r.status_code == 303, r.text
    assert [u["role"] for u in staff.list_users(eng) if u["username"] == "kansa"] == ["auditor"]
    return staff_session(portal.url, "kansa")


def test_every_staff_post_refuses_an_auditor_with_the_403_page_and_stores_nothing(portal, rig):
    auditor, token = _auditor_portal(portal, rig)
    eng = portal.app.state.engine
    paths = _routes(portal.app, {"POST", "PUT", "PATCH", "DELETE"})
    assert {"/staff/users", "/staff/groups", "/staff/kiosks/code", "/staff/playlists", "/staff/media-upload",
            "/staff/reconciliation/provider", "/staff/movies", "/staff/center", "/staff/pools"} <= set(paths)
    users_before = staff.list_users(eng)
    with eng.connect() as conn:
        groups_before = catalog.list_groups(conn)
    own = {"Origin": portal.url}
    # The fields of many forms at once, the user form's among them: an auditor trying to make themselves admin.
    form = {"csrf": token, "action": "change", "username": "kansa", "password": PASSWORD + "!", "role": "admin",
            "id": "g9", "name": "G9", "kiosk_id": "k9", "days": "7", "title": "T", "group_id": "g"}
    walked = 0
    assert "/staff/password" in paths  # open to an auditor: their own password only (below)
    for path in paths:
        if path in ("/staff/login", "/staff/logout", "/staff/password"):
            continue
        url = portal.url + re.sub(r"\{[^}]+\}", "x", path)
        for sent in (dict(data=form), dict(data=form, files={"file": ("a.csv", b"a,b\n")}),
                     # the videos page's upload: the file as the body, the token in a header
                     dict(data=b"\x00" * 10, headers={"x-csrf-token": token, "x-project": "p",
                                                      "x-file-name": "a.mp4", "content-type": "video/mp4"})):
            headers = {**own, **sent.pop("headers", {})}
            r = auditor.post(url, headers=headers, timeout=10, allow_redirects=False, **sent)
            assert r.status_code == 403, (path, r.status_code, r.text[:200])
            assert r.headers["content-type"].startswith("text/html"), (path, r.headers["content-type"])
            assert REFUSED in r.text, (path, r.text[:300])
            assert "監査（見るだけ）" in r.text  # the same staff page, saying who is signed in and as what
            walked += 1
    assert walked == 3 * (len(paths) - 3) and len(paths) > 15, (walked, paths)
    assert staff.list_users(eng) == users_before  # still an auditor, nobody added
    with eng.connect() as conn:
        assert catalog.list_groups(conn) == groups_before
    assert staff.login(eng, "kansa", PASSWORD) and staff.login(eng, "admin", PASSWORD)
    # Their own password is theirs to change (/staff/password, every role): the same fields of every form, which
    # name the administrator and the admin role, change the auditor's own password and nothing else.
    r = auditor.post(portal.url + "/staff/password", headers=own, timeout=10, allow_redirects=False,
                     data={**form, "username": "admin", "current": PASSWORD, "new": "kansa's own", "again":
                           "kansa's own"})
    assert r.status_code == 303 and r.headers["location"] == "/staff/password?done=password", r.text[:300]
    assert staff.login(eng, "kansa", "kansa's own") and not staff.login(eng, "kansa", PASSWORD)
    assert staff.login(eng, "admin", PASSWORD)  # the administrator's password is as it was
    assert staff.list_users(eng) == users_before  # and so are every role and group
    # Still signed in (in a new session, with its own form token), and signing out works for an auditor too.
    page = auditor.get(portal.url + "/staff", timeout=10, allow_redirects=False)
    assert page.status_code == 200
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]  # type: ignore[index]
    r = auditor.post(portal.url + "/staff/logout", data={"csrf": token}, headers=own, timeout=10,
                     allow_redirects=False)
    assert r.status_code == 303
    assert auditor.get(portal.url + "/staff", timeout=10, allow_redirects=False).status_code == 303


def test_an_auditor_opens_the_figures_and_no_other_staff_page(portal, rig):
    auditor, _token = _auditor_portal(portal, rig)
    url = portal.url
    day = re.search(r'href="/staff/reconciliation/([^/"]+)/(\d{4}-\d{2}-\d{2})"',
                    auditor.get(url + "/staff/reconciliation", timeout=10).text)
    assert day is not None, "the month lists the kiosk's day"
    for path in _routes(portal.app, {"GET"}):
        if path in OPEN_TO_ALL:
            continue
        got = re.sub(r"\{kiosk_id\}", day[1], path)
        got = re.sub(r"\{day\}", day[2], got)
        got = re.sub(r"\{[^}]+\}", "x", got)
        r = auditor.get(url + got, timeout=10, allow_redirects=False)
        if path in AUDIT_PAGES or path == "/staff/reconciliation/{kiosk_id}/{day}":
            assert r.status_code == 200, (path, r.status_code)
        elif "{" not in path:
            assert r.status_code == 403 and REFUSED in r.text, (path, r.status_code)
        else:  # another page's item (a video, a movie, a job): never shown to an auditor
            assert r.status_code in (403, 404), (path, r.status_code)
    # The figures: the center's totals (not a group's), the month CSV's rows, every donation in the donations CSV.
    dash = auditor.get(url + "/staff", timeout=10).text
    month = re.search(r'id="month">([^<]+)<', dash)
    assert month is not None and month[1].replace("￥", "¥").strip() == "¥1,000", dash[:800]
    assert 'id="audit"' in dash and 'href="/staff/projects"' not in dash
    rows = list(csv.DictReader(io.StringIO(auditor.get(url + "/staff/reconciliation.csv", timeout=10)
                                           .content.decode("utf-8-sig"))))
    totals = [r for r in rows if r["row"] == "total"]
    assert [(r["kiosk_id"], r["count"], r["total_yen"]) for r in totals] == [(rig.kiosk_id, "2", "1000")]
    donations = auditor.get(url + "/staff/donations.csv", timeout=10).content.decode("utf-8-sig").splitlines()
    assert len(donations) == 1 + 2
    # The reconciliation page shows what was imported, but no import form to an auditor (staff still have it).
    seen = auditor.get(url + "/staff/reconciliation", timeout=10).text
    assert 'id="import"' not in seen and "精算ファイルを取り込む" not in seen
    assert "<h2>取り込み済みの決済事業者の精算ファイル</h2>" in seen  # what the list below the heading is
    admin, _ = staff_session(url, "admin")
    assert 'id="import"' in admin.get(url + "/staff/reconciliation", timeout=10).text


def test_kiosk_portal_staff_add_makes_an_auditor(portal, monkeypatch, capsys):
    monkeypatch.setenv("KIOSK_PORTAL_PASSWORD", PASSWORD)
    assert portal_main(["staff-add", "--db", portal.db_url, "--user", "kansa", "--role", "auditor"]) == 0
    assert staff.who(portal.app.state.engine, "kansa") == staff.Who("kansa", "auditor", None)


@needs_chromium
def test_in_chromium_an_administrator_adds_an_auditor_who_sees_only_the_figures(portal, rig, browser):
    _auditor_portal(portal, rig)  # data and users (the auditor made over HTTP); then one more, in the browser
    admin = staff_page(browser, portal.url, "admin")
    admin.goto(portal.url + "/staff/users")
    admin.fill("#f-username", "kansa2")
    admin.fill("#f-password", PASSWORD)
    admin.select_option("#f-role", label="監査（見るだけ）")
    admin.click("#user-form button[type=submit]")
    admin.wait_for_selector("#notice")
    assert "監査（見るだけ）" in admin.inner_text('tr[data-user="kansa2"]')
    page = staff_page(browser, portal.url, "kansa2")
    links = page.eval_on_selector_all("nav.staffnav a", "els => els.map(e => e.getAttribute('href'))")
    assert [h for h in links if not h.startswith("/staff/lang")] == [
        "/staff", "/staff/kiosks", "/staff/reconciliation", "/staff/donations.csv", "/staff/points-report",
        "/staff/password"]
    assert "監査（見るだけ）" in page.inner_text("p.who")
    page.click("header summary")  # on a phone the staff menu opens under 「メニュー」 (base.html)
    page.click("nav.staffnav a[href='/staff/reconciliation']")
    page.wait_for_url("**/staff/reconciliation")
    assert page.locator("#import").count() == 0
    with page.expect_download() as dl:
        page.click("text=会計用 CSV")
    assert dl.value.suggested_filename.startswith("reconciliation-")

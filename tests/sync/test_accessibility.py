"""The portal's pages against WCAG 2.1 A and AA, checked by axe-core (the PyPI package ``axe-playwright-python``,
which bundles it) in headless Chromium, on SQLite and PostgreSQL, with a catalog like the demo's.

Citizens (many elderly; some with a screen reader or the page zoomed) and center staff use these pages: every
form field has a label, text has enough contrast, the page says its language, links and buttons have names,
headings and landmarks are in order. axe runs on the page as the browser shows it, at a phone's width (after the
page's own script: the receipt's check, the my page's opening). No rule is turned off; a finding fails the test
with axe's words, the element and how to fix it. Pages: the top page, a project, a real receipt (a kiosk's
ledger synced), the my page, the staff sign-in, the dashboard, a project's edit form, the password form.

What it found, fixed in the templates: progress bars without a name; the charts' sideways-scrolling box out of the
keyboard's reach; the staff forms' autocomplete (and inputmode) attributes escaped into text no browser reads.
And, beside axe (it cannot judge it): the other language's link says which language its word is in.
"""

from __future__ import annotations

import re
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from sync_helpers import PASSWORD, PROJECTS, enrolled, fake_idm, needs_chromium

from kiosk.ledger import keys
from server_sync import catalog
from server_sync.staff import add_user
from server_sync.wire import mypage as W
from server_sync.wire.receipt import receipt_code

pytestmark = needs_chromium  # the browser fixture: tests/sync/conftest.py

WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE = Axe()
PHONE = {"width": 390, "height": 844}

# Like the demo's catalog (config/defaults/demo.toml): groups with a contact, projects with summaries and goals;
# the project ids are the test kiosk's (sync_helpers.PROJECTS), so its donations count against them.
CATALOG = {
    "groups": [{"id": "kodomo-club", "name": "子ども応援団", "description": "地域の子どもを見守る会です",
                "contact": "kodomo@example.jp"},
               {"id": "midori-kai", "name": "みどりの会", "contact": "090-0000-0000"}],
    "projects": [{**p, "group_id": "kodomo-club" if p["id"] == "kodomo" else "midori-kai",
                  "summary": f"{p['title']}の活動を応援してください", "summary_en": f"Support {p['title_en']}"}
                 for p in PROJECTS]}


def violations(page: Any) -> list[str]:
    """axe's WCAG 2.1 A/AA findings on the page as it is now, one readable line per element."""
    found = AXE.run(page, options={"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]})
    assert len(found.response["passes"]) > 10, f"axe checked next to nothing on {page.url}"
    return [f"{page.url}: {v['id']} ({v['impact']}): {v['help']} — {' '.join(map(str, n['target']))}: "
            f"{n['failureSummary']}"
            for v in found.response["violations"] for n in v["nodes"]]


def _context(browser: Any) -> Any:
    # The portal's Content-Security-Policy stays on (no bypass_csp): Playwright's page.evaluate, which injects axe,
    # runs through the DevTools protocol, which the CSP does not govern (only wait_for_function is refused).
    return browser.new_context(viewport=PHONE, locale="ja-JP")


def test_citizen_pages_meet_wcag_21_aa(portal, rig, browser):
    catalog.import_catalog(portal.app.state.engine, CATALOG)
    up = enrolled(rig, portal, pepper=rig.pepper)
    gift = rig.donate(3, card=4)[1]
    rig.ledger.checkpoint()
    assert up.sync_once().ok
    token = rig.pepper.card_token(fake_idm(4))
    request = W.make_request(keys.load_private(rig.cfg.private_key_path), rig.kiosk_id, token.all_hexes,
                             rig.clock.wall_ms(), 180_000)

    page = _context(browser).new_page()
    found: list[str] = []
    page.goto(portal.url + "/")
    found += violations(page)
    # What axe cannot tell (WCAG 3.1.2): the language link's word "English" is marked English, so a Japanese
    # screen reader does not read it out in katakana.
    assert page.locator("header a[hreflang=en]").get_attribute("lang") == "en"
    page.goto(portal.url + "/p/kodomo")
    found += violations(page)
    page.goto(f"{portal.url}/r/{receipt_code(gift)}#k={rig.ledger.key_id}")
    page.locator("#check[data-result=ok]").wait_for()  # the page as the citizen reads it: checked
    found += violations(page)
    page.goto(f"{portal.url}/me/new#{request}")
    page.wait_for_url(re.compile(r"/me/[A-Za-z0-9_-]{43}$"))
    page.locator("#points").wait_for()
    found += violations(page)
    assert found == [], "\n".join(found)


def test_staff_pages_meet_wcag_21_aa(portal, browser):
    catalog.import_catalog(portal.app.state.engine, CATALOG)
    add_user(portal.app.state.engine, "staff1", PASSWORD, "staff")

    page = _context(browser).new_page()
    page.goto(portal.url + "/staff/login")
    found = violations(page)
    page.fill("input[name=username]", "staff1")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/staff")  # the dashboard
    found += violations(page)
    assert page.locator("#lang").get_attribute("lang") == "en"  # "English" in the staff menu (WCAG 3.1.2)
    page.goto(portal.url + "/staff/projects/kodomo")
    page.locator("form input[name=title]").wait_for()
    found += violations(page)
    # A phone shows its number keyboard for the goal (not the kana one): the attribute is real, not escaped text.
    assert page.locator("#f-goal_yen").get_attribute("inputmode") == "numeric"
    page.goto(portal.url + "/staff/password")  # a password manager fills and suggests: autocomplete as axe reads it
    found += violations(page)
    assert found == [], "\n".join(found)

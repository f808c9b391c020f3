"""English staff pages said "1 donation(s), ¥700, after the close-out" (the reconciliation's notes), "Imported 1
payments" and, in the movie maker's caption boxes, "1 characters left": the count's singular now where the count is
1 (gettext plurals: i18n.ntext, ngettext in the templates), and the Japanese reads as before (one form: 「1 件」,
「あと 1 文字」). A real portal on loopback (SQLite, and PostgreSQL when KIOSK_TEST_PG_URL is set), a real kiosk
ledger syncing to it, headless Chromium for the movie maker's counting script.
"""

from __future__ import annotations

import html

from sync_helpers import PASSWORD, PROJECTS, enrolled, movie_maker_page, needs_chromium, staff_session
from test_reconcile import give

from kiosk.ledger.writer import InlineWriter
from kiosk.staff.closeout import z_report
from server_sync import movies
from server_sync.configstore import publish
from server_sync.staff import add_user


def test_the_reconciliation_says_1_donation_and_2_donations_in_english(portal, rig):
    publish(portal.app.state.engine, {"projects": PROJECTS})
    add_user(portal.app.state.engine, "clerk", PASSWORD)
    give(rig, "kodomo", 100, "sq-pay-1")
    z_report(InlineWriter(rig.ledger))
    give(rig, "kodomo", 700, "sq-pay-2")
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    en, _ = staff_session(portal.url, "clerk", lang="en")
    ja, _ = staff_session(portal.url, "clerk")
    day = rig.ledger.business_date()
    paths = [f"/staff/reconciliation?month={day:%Y-%m}", f"/staff/reconciliation/{rig.kiosk_id}/{day}"]
    for path in paths:
        assert "1 donation, ¥700, after the close-out: not in the Z report." in \
            en.get(portal.url + path, timeout=10).text
        assert "締め後の寄付 1 件（¥700）: 日計に含まれていません。" in ja.get(portal.url + path, timeout=10).text
    give(rig, "kodomo", 500, "sq-pay-3")
    assert up.sync_once().ok
    for path in paths:
        assert "2 donations, ¥1,200, after the close-out: not in the Z report." in \
            en.get(portal.url + path, timeout=10).text
        assert "締め後の寄付 2 件（¥1,200）" in ja.get(portal.url + path, timeout=10).text
    # The notice after a provider file's import: its count of payments.
    for n, words in ((1, "Imported 1 payment from the provider's file."),
                     (2, "Imported 2 payments from the provider's file.")):
        assert words in html.unescape(en.get(f"{portal.url}{paths[0]}&imported={n}", timeout=10).text)
        assert f"決済事業者の明細から {n} 件の決済を取り込みました。" in \
            ja.get(f"{portal.url}{paths[0]}&imported={n}", timeout=10).text


@needs_chromium
def test_a_caption_box_says_1_character_left_in_english(editor_site, browser):
    page = movie_maker_page(browser, editor_site.url)
    counter, most = page.locator("#f-caption0-left"), movies.MAX_CAPTION
    page.fill("#f-caption0", "あ" * (most - 1))
    assert counter.inner_text() == "あと 1 文字"
    page.goto(editor_site.url + "/staff/lang?to=en&next=/staff/movies")
    for typed, said in ((most - 1, "1 character left"), (most - 2, "2 characters left"), (0, f"{most} characters left"),
                        (most + 1, f"1 character too many: at most {most} characters."),
                        (most + 2, f"2 characters too many: at most {most} characters.")):
        page.fill("#f-caption0", "a" * typed)
        assert counter.inner_text() == said, typed

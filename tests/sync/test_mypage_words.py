"""The citizen's my page in words a citizen reads: a volunteer grant by the activity's title (not its id), and a
plain sentence when gifts the kiosk just thanked for are not on the page yet (docs/privacy.md, "My page, step by
step"). Real parts only: a real portal on loopback (SQLite, and PostgreSQL with KIOSK_TEST_PG_URL), real kiosk
ledgers, keys and peppers syncing over HTTP, the staff's real point-rules form, the kiosk's real volunteer grant.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from sync_helpers import PASSWORD, PROJECTS, Rig, enrolled, fake_idm, make_rig, staff_session

from kiosk.ledger import keys
from kiosk.ledger.writer import InlineWriter
from kiosk.staff.volunteer import grant
from kiosk.sync.adopt import overlay
from server_sync import catalog, configstore
from server_sync.staff import add_user
from server_sync.wire import mypage as W

CARD = 7
RULES_FORM = {
    "points_per_100_yen": "1",
    "r0_id": "event-shift", "r0_title": "イベントの受付（2時間）", "r0_title_en": "Event shift (2 hours)",
    "r0_points": "10", "r0_description": "センターの催しで2時間、受付や案内をする",
    "r0_description_en": "Two hours at the reception of a center event",
}
NEWER_RULES_FORM = {  # the next version: event-shift retired, another activity in its place
    "points_per_100_yen": "1",
    "r0_id": "park-cleanup", "r0_title": "公園の清掃（1時間）", "r0_title_en": "Park cleanup (1 hour)",
    "r0_points": "5", "r0_description": "近くの公園を1時間きれいにする",
    "r0_description_en": "One hour cleaning a nearby park",
}
ARRIVAL_WORDS = ("まだ届いて", "しばらく", "時間がかかる", "反映")
NOT_ARRIVED_JA = "の新しい記録は、まだここに届いていません"
NOT_ARRIVED_EN = "its newest records have not arrived here yet"


@pytest.fixture
def site(portal):  # noqa: ANN001, ANN201
    """tests/sync/conftest.py's portal, with the projects' catalog and an administrator."""
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    add_user(eng, "admin", PASSWORD)
    return portal


@pytest.fixture
def kiosk(tmp_path: Path):  # noqa: ANN201
    r = make_rig(tmp_path)
    yield r
    r.ledger.close(checkpoint=False)


def _request(rig: Rig, card: int = CARD) -> str:
    """What the kiosk's my-page screen shows as a QR code after ``card`` was tapped (its signer's inputs)."""
    sk = keys.load_private(rig.cfg.private_key_path)
    token = rig.pepper.card_token(fake_idm(card))
    return W.make_request(sk, rig.kiosk_id, token.all_hexes, rig.clock.wall_ms(), rig.cfg.portal.my_page_qr_s * 1000)


def _claim(url: str, request: str) -> str:
    """The my page's address (its secret), as the phone is sent to it."""
    r = requests.post(url + "/me/claim", json={"request": request}, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["url"])


def _show(url: str, path: str, lang: str = "ja") -> str:
    page = requests.get(url + path + f"?lang={lang}", timeout=10)
    assert page.status_code == 200
    return page.text


def _open_my_page(url: str, request: str, lang: str = "ja") -> str:
    return _show(url, _claim(url, request), lang)


def _points_on(html: str) -> int:
    m = re.search(r'id="points">(\d+)<', html)
    assert m, html[:500]
    return int(m.group(1))


def _visible_text(html: str) -> str:
    body = re.sub(r"<style.*?</style>|<script.*?</script>", "", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def _save_rules(url: str, form: dict[str, str]) -> None:
    s, token = staff_session(url, "admin")
    assert s.post(url + "/staff/point-rules", data={**form, "csrf": token}, timeout=10).status_code == 200


# --- a volunteer grant, in words ---------------------------------------------------------------------------------

def test_my_page_names_a_volunteer_activity_in_words_not_by_its_internal_id(site, kiosk):
    """A volunteer's grant on the my page: the citizen reads what they did (the point rules' title, as the public
    rules page and the kiosk's menu show it), not the activity's id, an English slug. The title stays after the
    rules retire the activity: the grant was made under a version that named it."""
    up = enrolled(kiosk, site)
    kiosk.donate(1, card=CARD)
    _save_rules(site.url, RULES_FORM)
    assert up.sync_once().ok  # the rules reach the kiosk in its config
    with site.app.state.engine.connect() as conn:
        pushed = configstore.current(conn, kiosk.kiosk_id)
    vol = overlay(kiosk.cfg, pushed["config"]).volunteer
    kiosk.clock.advance(60_000)
    grant(InlineWriter(kiosk.ledger), vol, "event-shift", 10, kiosk.pepper.token(fake_idm(CARD)))
    assert up.sync_once().ok

    ja = _visible_text(_open_my_page(site.url, _request(kiosk)))
    assert "event-shift" not in ja, "the my page shows the activity's internal id to the citizen"
    assert "ボランティア: イベントの受付（2時間）" in ja
    en = _visible_text(_open_my_page(site.url, _request(kiosk), lang="en"))
    assert "event-shift" not in en
    assert "Volunteering: Event shift (2 hours)" in en

    _save_rules(site.url, NEWER_RULES_FORM)  # event-shift is retired
    path = _claim(site.url, _request(kiosk))
    ja = _visible_text(_show(site.url, path))
    assert "event-shift" not in ja, "an activity retired since shows by its id"
    assert "ボランティア: イベントの受付（2時間）" in ja
    assert "公園の清掃" not in ja  # the newer rules' activity is not this grant's
    assert "Volunteering: Event shift (2 hours)" in _visible_text(_show(site.url, path, "en"))


# --- gifts not arrived yet ---------------------------------------------------------------------------------------

def test_my_page_says_when_gifts_the_kiosk_just_thanked_for_have_not_arrived(site, kiosk):
    """The kiosk lost its network after an earlier sync; the donor gives again, the thank-you shows the card's
    points (this kiosk's ledger), and the donor opens the my page from the same thank-you. The page's total lacks
    the new gift; it must say so in plain words instead of showing a smaller total as if it were everything."""
    up = enrolled(kiosk, site, pepper=kiosk.pepper)
    kiosk.donate(2, card=CARD)
    assert up.sync_once().ok
    kiosk.clock.advance(120_000)
    kiosk.donate(2, card=CARD)  # not synced: the network is down
    hexes = list(kiosk.pepper.card_token(fake_idm(CARD)).all_hexes)
    thank_you_balance = kiosk.ledger.donor_points(hexes)

    html = _open_my_page(site.url, _request(kiosk))
    shown = _points_on(html)
    assert shown < thank_you_balance  # the situation under test
    text = _visible_text(html)
    said = [w for w in ARRIVAL_WORDS if w in text]
    assert said, (f"the my page shows {shown} points, the thank-you just showed {thank_you_balance}, and nothing "
                  f"on the page says recent gifts may not be here yet: {text[:600]}")
    assert NOT_ARRIVED_JA not in text  # the portal has not heard of the new entries: it claims nothing more
    en = _visible_text(_open_my_page(site.url, _request(kiosk), lang="en"))
    assert "can take a while to appear here" in en


def test_my_page_names_a_kiosk_of_its_history_whose_newest_records_have_not_arrived(site, kiosk):
    """The kiosk's heartbeat got through (it told the portal how long its ledger is), its upload did not: the
    portal knows this kiosk's newest records are missing, and the page, which already names the kiosk on each
    gift, says so of that kiosk. Once they arrive the sentence goes and the total is whole."""
    up = enrolled(kiosk, site, pepper=kiosk.pepper)
    kiosk.donate(2, card=CARD)
    assert up.sync_once().ok
    path = _claim(site.url, _request(kiosk))
    assert NOT_ARRIVED_JA not in _visible_text(_show(site.url, path))
    kiosk.clock.advance(120_000)
    kiosk.donate(1, card=CARD)
    up.heartbeat()  # the batch after it is lost with the network

    text = _visible_text(_show(site.url, path))
    assert f"キオスク {kiosk.kiosk_id} {NOT_ARRIVED_JA}" in text, text[:800]
    assert "端末" not in text  # staff's word; a citizen's pages say キオスク, as the device's own screens do
    assert any(w in text for w in ARRIVAL_WORDS)
    assert f"Kiosk {kiosk.kiosk_id}: {NOT_ARRIVED_EN}" in _visible_text(_show(site.url, path, "en"))

    assert up.sync_once().ok
    html = _show(site.url, path)
    assert NOT_ARRIVED_JA not in _visible_text(html)
    hexes = list(kiosk.pepper.card_token(fake_idm(CARD)).all_hexes)
    assert _points_on(html) == kiosk.ledger.donor_points(hexes)


def test_my_page_made_at_a_kiosk_not_in_its_history_says_so_without_naming_it(site, kiosk, tmp_path):
    """The card gave before only at the lobby kiosk; today it gives at the city-hall kiosk, whose upload is
    lost after its heartbeat, and the donor makes the page there. The page says the kiosk where it was made has
    records not arrived, without adding that kiosk's id (the page names only kiosks of its gifts)."""
    hall = make_rig(tmp_path, "city-hall-2f")
    try:
        up = enrolled(kiosk, site, pepper=kiosk.pepper)
        up_hall = enrolled(hall, site, pepper=hall.pepper)
        assert up.sync_once().ok and up_hall.sync_once().ok  # both hold the city's pepper: one token
        kiosk.donate(1, card=CARD)
        assert up.sync_once().ok
        hall.donate(1, card=CARD)
        up_hall.heartbeat()  # the batch after it is lost

        path = _claim(site.url, _request(hall))
        text = _visible_text(_show(site.url, path))
        assert f"このページを作ったキオスク{NOT_ARRIVED_JA}" in text, text[:800]
        assert "端末" not in text, text[:800]
        assert hall.kiosk_id not in text, "the page names a kiosk none of its gifts was made at"
        assert f"キオスク {kiosk.kiosk_id} {NOT_ARRIVED_JA}" not in text  # the lobby kiosk sent everything
        en = _visible_text(_show(site.url, path, "en"))
        assert f"The kiosk where you made this page: {NOT_ARRIVED_EN}" in en and hall.kiosk_id not in en

        assert up_hall.sync_once().ok  # the gift arrives: the kiosk is now on the page, with nothing missing
        text = _visible_text(_show(site.url, path))
        assert hall.kiosk_id in text and NOT_ARRIVED_JA not in text
    finally:
        hall.ledger.close(checkpoint=False)

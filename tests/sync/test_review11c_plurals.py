"""Counts in English say "1 donation" and "2 donations" (gettext plurals: ``ngettext`` in the templates,
``i18n.ntext`` in Python), while the Japanese pages, whose language has one form (``nplurals=1``), read as
before ("1 件", "2 件"). A real portal over HTTP on loopback (SQLite, and PostgreSQL when KIOSK_TEST_PG_URL is
set), a real kiosk ledger syncing to it, a real my-page claim.
"""

from __future__ import annotations

import re
import time
import uuid

import requests
from sync_helpers import PASSWORD, PROJECTS, enrolled, fake_idm, make_rig, staff_session

from kiosk.ledger import keys
from kiosk.ledger.clock import FixedClock
from server_sync import charts, i18n, pointrules
from server_sync.configstore import publish
from server_sync.staff import add_user
from server_sync.wire import mypage as W

CARD = 7
# A number and a counted word in English: the word must be singular exactly when the number is 1.
COUNTED = re.compile(r"(?<![\d,.¥])(\d+) (donation|kiosk|point|record)(s?)\b")


def _wrong_counts(html: str) -> list[str]:
    return [m.group(0) for m in COUNTED.finditer(html) if (m.group(1) == "1") != (m.group(3) == "")]


def _get(url: str, path: str, lang: str, session: requests.Session | None = None) -> str:
    r = (session or requests).get(f"{url}{path}{'&' if '?' in path else '?'}lang={lang}", timeout=10)
    assert r.status_code == 200, (path, r.status_code)
    return r.text


def test_english_pages_say_1_donation_and_2_donations_and_japanese_reads_as_before(portal, tmp_path):
    eng = portal.app.state.engine
    publish(eng, {"projects": PROJECTS})
    add_user(eng, "admin", PASSWORD)
    pointrules.save(eng, 1, [])  # the default: 1 point for every ¥100
    rig = make_rig(tmp_path, clock=FixedClock(wall_ms=int(time.time() * 1000) - 10_000))
    up = enrolled(rig, portal, pepper=rig.pepper)

    def give(amount: int) -> None:
        """A gift by CARD to the first project (kodomo, policy area "children")."""
        token = rig.pepper.token(fake_idm(CARD))
        intent = rig.ledger.record_intent(PROJECTS[0]["id"], amount, "sim", token, uuid.uuid4().hex)
        rig.clock.advance(700)
        rig.ledger.record_donation(intent.seq, f"sim-{intent.seq}", amount // 100)
        assert up.sync_once().ok

    give(100)
    sk = keys.load_private(rig.cfg.private_key_path)
    request = W.make_request(sk, rig.kiosk_id, rig.pepper.card_token(fake_idm(CARD)).all_hexes,
                             rig.clock.wall_ms(), 180_000)
    me = requests.post(portal.url + "/me/claim", json={"request": request}, timeout=10).json()["url"]
    staff = {lang: staff_session(portal.url, "admin", lang=lang)[0] for lang in ("ja", "en")}
    paths = ["/", "/a/children", f"/p/{PROJECTS[0]['id']}", me, "/points/rules"]

    def pages(lang: str) -> dict[str, str]:
        shown = {p: _get(portal.url, p, lang) for p in paths}
        shown["/staff"] = _get(portal.url, "/staff", lang, staff[lang])
        return shown

    en, ja = pages("en"), pages("ja")
    for path, html in en.items():
        assert not _wrong_counts(html), (path, _wrong_counts(html))
    home = en["/"]
    assert '<div class="big" id="total">¥100</div><div class="muted">1 donation</div>' in home
    assert "(1 donation)" in home and "(0 donations)" in home  # kodomo's area and project; the others
    assert "Total ¥100, 1 donation. Highest:" in home and "Children and the future: ¥100 (1 donation)</title>" in home
    assert '<p class="muted">1 donation</p>' in en["/a/children"] and '<p class="muted">1 donation</p>' in en[paths[2]]
    assert "1 donation · 1 kiosk</p>" in en[me] and "· 1 point " in en[me]
    assert '<p id="rate">1 point for every ¥100 you give.</p>' in en["/points/rules"]
    assert '<div class="muted">1 donation</div>' in en["/staff"]
    # Japanese: one form for every number, as it always read.
    assert '<div class="muted">1 件</div>' in ja["/"] and "(1 件)" in ja["/"] and "(0 件)" in ja["/"]
    assert "合計 ¥100、1 件。" in ja["/"] and "子ども・未来: ¥100 (1 件)</title>" in ja["/"]
    assert '<p class="muted">1 件</p>' in ja["/a/children"] and '<p class="muted">1 件</p>' in ja[paths[2]]
    assert "1 件 · キオスク 1 台</p>" in ja[me] and "· 1 ポイント " in ja[me]
    assert '<p id="rate">寄付 100 円ごとに 1 ポイント。</p>' in ja["/points/rules"]
    assert '<div class="muted">1 件</div>' in ja["/staff"]
    for path, html in ja.items():
        assert not COUNTED.search(html), (path, COUNTED.search(html))

    give(500)
    en, ja = pages("en"), pages("ja")
    for path, html in en.items():
        assert not _wrong_counts(html), (path, _wrong_counts(html))
    assert '<div class="muted">2 donations</div>' in en["/"] and "(2 donations)" in en["/"]
    assert "Total ¥600, 2 donations. Highest:" in en["/"]
    assert "Children and the future: ¥600 (2 donations)</title>" in en["/"]
    assert '<p class="muted">2 donations</p>' in en[paths[2]]
    assert "2 donations · 1 kiosk</p>" in en[me] and "· 5 points " in en[me] and "· 1 point " in en[me]
    assert '<div class="muted">2 donations</div>' in en["/staff"]
    assert '<div class="muted">2 件</div>' in ja["/"] and "(2 件)" in ja["/"] and "合計 ¥600、2 件。" in ja["/"]
    assert "2 件 · キオスク 1 台</p>" in ja[me] and "· 5 ポイント " in ja[me]
    assert '<div class="muted">2 件</div>' in ja["/staff"]


def test_python_text_and_charts_use_the_plural_for_the_count():
    assert [i18n.ntext("%(count)s donation", "%(count)s donations", n, "en") for n in (0, 1, 2)] == \
        ["0 donations", "1 donation", "2 donations"]
    assert [i18n.ntext("%(count)s donation", "%(count)s donations", n, "ja") for n in (0, 1, 2)] == \
        ["0 件", "1 件", "2 件"]
    series = [{"key": "a", "label": "A", "yen": [100, 300], "count": [1, 2]}]
    for lang, one, two, total in (("en", "(1 donation)", "(2 donations)", "3 donations."),
                                  ("ja", "(1 件)", "(2 件)", "3 件。")):
        svg = str(charts.stacked_bars("c", "t", ["d1", "d2"], series, lang, lambda m, **kw: m % kw))
        assert f"A: ¥100 {one}</title>" in svg and f"A: ¥300 {two}</title>" in svg and total in svg, svg


def test_a_kiosk_days_unsynced_clock_note_counts_entries_in_english(portal, rig):
    """The staff reconciliation page of one kiosk-day: "1 entry dated by the kiosk's own clock", not "entry(ies)"."""
    eng = portal.app.state.engine
    publish(eng, {"projects": PROJECTS})
    add_user(eng, "admin", PASSWORD)
    rig.clock.is_synced = False
    rig.clock.wall = int(time.time() * 1000) - 40 * 86_400_000
    up = enrolled(rig, portal)
    sessions = {lang: staff_session(portal.url, "admin", lang=lang)[0] for lang in ("ja", "en")}
    said = "dated by the kiosk's own clock, which was not synchronised"
    for n, words in ((1, "1 entry"), (2, "2 entries")):
        rig.donate(1)
        assert up.sync_once().ok
        path = f"/staff/reconciliation/{rig.kiosk_id}/{rig.ledger.business_date()}"
        en = _get(portal.url, path, "en", sessions["en"])
        ja = _get(portal.url, path, "ja", sessions["ja"])
        assert f"{words} {said}" in en, en
        assert f"{n} 件が端末自身の時計（未同期）で記録されています。" in ja, ja

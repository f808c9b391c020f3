"""Points exchanged for sponsor-matched gifts, end to end (issue #17, docs/points.md).

Two real kiosk ledgers (the same card's token at both, as with the city's pepper) sync over loopback HTTP
to one real portal (SQLite and PostgreSQL). The portal hands each kiosk a share of a sponsor's pool in
the signed config and a card's points on request; then both kiosks spend offline. Neither the card nor
the pool is ever overdrawn, the balances stay right everywhere, and the portal shows the sponsor's money
apart from cash.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
import requests
from sqlalchemy import select
from sync_helpers import PASSWORD, PROJECTS, Rig, enrolled, fake_idm, make_rig, staff_session

from kiosk.donation.exchange import ExchangeRefused, card_spendable, exchange, hexes_of, pool_left, pools_for
from kiosk.sync import pointsync
from kiosk.sync.configapply import load_applied
from kiosk.sync.uploader import SyncError
from server_sync import catalog, pools
from server_sync.db import entries, make_engine
from server_sync.staff import add_user

CARD = 7
AREA = {p["id"]: p["area"] for p in PROJECTS}
TODAY = dt.date.today()


def _spendable(rig: Rig, up, online: bool) -> int:  # noqa: ANN001
    """What the exchange screen would show for the card: ask the portal when online, else its last word."""
    token = rig.pepper.token(fake_idm(CARD))
    if online:  # telling the portal what this ledger spent for the card, as kiosk run does
        pointsync.ask(up, token, hexes_of(token), rig.ledger.points_spent(hexes_of(token))[0])
    return card_spendable(rig.ledger, token, pointsync.last_word(rig.cfg.data_dir, hexes_of(token)))


def _spend(rig: Rig, points: int, project: str):  # noqa: ANN001, ANN202
    token = rig.pepper.token(fake_idm(CARD))
    return exchange(rig.ledger, token, points, project, AREA[project], pools_for(load_applied(rig.cfg.data_dir),
                    rig.kiosk_id), pointsync.last_word(rig.cfg.data_dir, hexes_of(token)), TODAY)


def _fund(portal) -> None:  # noqa: ANN001
    pools.save_pool(portal.app.state.engine, {
        "id": "midori-bank", "sponsor": "みどり銀行", "sponsor_en": "Midori Bank", "funded_yen": 10_000,
        "yen_per_point": 10, "per_kiosk_yen": 1000, "areas": ["children", "green"], "start": None, "end": None})


def _cash(portal) -> dict:  # noqa: ANN001
    return requests.get(portal.url + "/api/v1/totals", timeout=10).json()


def test_two_kiosks_spend_one_card_and_one_pool_offline_and_neither_is_overdrawn(portal, two):
    a, b = two
    up_a, up_b = enrolled(a, portal), enrolled(b, portal)
    a.donate(1, card=CARD, amounts=(1000,))
    a.donate(1, card=CARD, amounts=(500,))
    b.donate(1, card=CARD, amounts=(1000,))
    b.donate(2, card=3, amounts=(100,))  # someone else's cash gifts
    assert up_a.sync_once().ok and up_b.sync_once().ok
    # A sponsor funds ¥300 at ¥10 a point for children and greenery; each kiosk is handed up to ¥200.
    eng = portal.app.state.engine
    pools.save_pool(eng, {"id": "midori-bank", "sponsor": "みどり銀行", "sponsor_en": "Midori Bank",
                          "funded_yen": 300, "yen_per_point": 10, "per_kiosk_yen": 200,
                          "areas": ["children", "green"], "start": None, "end": None})
    with eng.connect() as conn:
        handed = pools.list_pools(conn)[0]["allocations"]
    assert handed == {"center-1f": 200, "city-hall": 100}  # never more than funded
    assert up_a.sync_once().ok and up_b.sync_once().ok  # the signed config carries the allocations
    pa, pb = (pools_for(load_applied(r.cfg.data_dir), r.kiosk_id)[0] for r in (a, b))
    assert (pa.allocation_yen, pb.allocation_yen) == (200, 100)

    # Online, kiosk A is handed all 25 points of the card; B, asking next, gets none of them.
    assert _spendable(a, up_a, online=True) == 25
    assert _spendable(b, up_b, online=True) == 0
    # The card earns 5 more at B; once the portal has seen them, B is handed those.
    b.donate(1, card=CARD, amounts=(500,))
    assert up_b.sync_once().ok
    assert _spendable(b, up_b, online=True) == 5

    # Both kiosks go offline (the portal cannot be reached: its last word stands).
    gone_a, gone_b = a.uploader("http://127.0.0.1:9"), b.uploader("http://127.0.0.1:9")
    with pytest.raises(SyncError):
        pointsync.ask(gone_a, a.pepper.token(fake_idm(CARD)), hexes_of(a.pepper.token(fake_idm(CARD))))
    assert _spendable(a, gone_a, online=False) == 25
    assert _spend(a, 12, "kodomo").data["amount_yen"] == 120
    with pytest.raises(ExchangeRefused) as refused:  # ¥100 more: kiosk A holds only ¥80 of the pool
        _spend(a, 10, "kodomo")
    assert refused.value.reason == "pool"
    _spend(a, 8, "midori")  # A's share of the pool is now used up
    assert pool_left(a.ledger, pools_for(load_applied(a.cfg.data_dir), a.kiosk_id)[0]) == 0
    with pytest.raises(ExchangeRefused) as refused:
        _spend(a, 6, "kodomo")  # the card has 5 left at A
    assert refused.value.reason == "card"
    with pytest.raises(ExchangeRefused) as refused:
        _spend(b, 6, "kodomo")  # and 5 at B, not the 10 a naive sum of both ledgers would give
    assert refused.value.reason == "card"
    with pytest.raises(ExchangeRefused) as refused:
        _spend(b, 5, "ongaku")  # culture: not an area this sponsor gives to
    assert refused.value.reason == "pool"
    gift_b = _spend(b, 5, "midori")
    assert gift_b.data == {**gift_b.data, "points": 5, "amount_yen": 50, "pool": "midori-bank", "project": "midori"}
    assert _spendable(b, gone_b, online=False) == 0
    # Each kiosk's own ledger sees only its own entries: A spent points the card earned at B. The card's
    # balance is the portal's (below); a kiosk shows what the card may spend there.
    token = a.pepper.token(fake_idm(CARD))
    assert a.ledger.donor_points(hexes_of(token)) == 15 - 20 and b.ledger.donor_points(hexes_of(token)) == 15 - 5

    # Back online: the portal's figures.
    assert up_a.sync_once().ok and up_b.sync_once().ok
    with eng.connect() as conn:
        q = conn.execute(select(entries.c.seq).where(entries.c.type == "points_spent",
                                                     entries.c.quarantine.is_not(None))).all()
        assert q == []
        bal = pools.balances(conn)[0]
        sponsor = pools.sponsor_totals(conn)
    assert (bal["funded_yen"], bal["spent_yen"], bal["left_yen"]) == (300, 250, 50)
    assert all(not k["over"] for k in bal["kiosks"])
    assert sponsor == {"total_yen": 250, "points": 25, "projects": {"kodomo": 120, "midori": 130},
                       "pools": {"midori-bank": 250}}
    assert requests.get(portal.url + "/api/v1/points/totals", timeout=10).json() == sponsor
    # Cash totals are the kiosks' cash gifts only: the sponsor's ¥250 is not in them.
    cash = _cash(portal)
    ta, tb = a.ledger.totals(), b.ledger.totals()
    assert cash["total_yen"] == ta["total_yen"] + tb["total_yen"] == 1000 + 500 + 1000 + 200 + 500
    assert cash["count"] == ta["count"] + tb["count"]
    # The card's balance as the portal knows it: 30 earned, 25 spent; nothing more to hand out.
    assert pools.allot(eng, "city-hall", hexes_of(token)) == {"allotted": 5, "balance": 5}
    # The pool is fully handed out: a top-up finds nothing to hand, however low a kiosk runs.
    assert pools.top_up(eng) is False
    with eng.connect() as conn:
        assert sum(pools.list_pools(conn)[0]["allocations"].values()) == 300

    # The project page: the sponsor's share of the gifts, apart from the cash total.
    page = requests.get(portal.url + "/p/kodomo", timeout=10).text
    assert 'id="sponsored"' in page and "このうち ¥120 は、ポイントに みどり銀行 が協賛した寄付です。" in page
    en = requests.get(portal.url + "/p/midori?lang=en", timeout=10).text
    assert "¥130 of this came from points matched by Midori Bank." in en
    assert 'id="sponsored"' not in requests.get(portal.url + "/p/ongaku", timeout=10).text
    # The card's my page: the exchanges, and the balance the portal knows (30 earned, 25 used).
    from kiosk.ledger import keys
    from server_sync.wire import mypage as W

    req = W.make_request(keys.load_private(a.cfg.private_key_path), a.kiosk_id, hexes_of(token), a.clock.wall_ms(),
                         180_000)
    link = requests.post(portal.url + "/me/claim", json={"request": req}, timeout=10).json()["url"]
    mine = requests.get(portal.url + link, timeout=10).text
    assert re.search(r'id="points">5<', mine) and mine.count('class="points_spent') == 3
    assert "みどり銀行 から ¥120" in mine and "−12" in mine

    # The report and its CSV (UTF-8 with BOM): points issued for giving, exchanged from the pool.
    s = requests.Session()
    assert s.post(portal.url + "/staff/login", data={"username": "staff1", "password": PASSWORD},
                  timeout=10).status_code == 200
    raw = s.get(portal.url + "/staff/points-report.csv", timeout=10)
    assert raw.status_code == 200 and raw.content.startswith(b"\xef\xbb\xbf")
    rows = raw.content.decode("utf-8-sig").splitlines()
    month = pools.japan_today().strftime("%Y-%m")
    assert f"exchanged,{month},pool:midori-bank,25,250,みどり銀行,,," in rows
    assert f"issued,{month},giving,32,,寄付,,," in rows  # 10 + 5 + 10 + 1 + 1 + 5
    assert "pool_balance,,pool:midori-bank,25,,みどり銀行,300,250,50" in rows  # funded, spent, left
    page = s.get(portal.url + "/staff/points-report", timeout=10).text
    assert "midori-bank" in page and "¥250" in page
    # Reconciliation keeps it apart from cash: its own table, the month's sponsor total.
    rec = s.get(portal.url + "/staff/reconciliation", timeout=10).text
    assert re.search(r'id="sponsor-total">¥250<', rec)


def test_a_forged_exchange_is_quarantined(portal, two):
    a, _ = two
    up = enrolled(a, portal)
    a.donate(1, card=CARD, amounts=(1000,))
    eng = portal.app.state.engine
    pools.save_pool(eng, {"id": "city", "sponsor": "市", "sponsor_en": "The city", "funded_yen": 1000,
                          "yen_per_point": 1, "per_kiosk_yen": 500, "areas": ["green"], "start": None, "end": None})
    assert up.sync_once().ok
    token = a.pepper.token(fake_idm(CARD))
    ok = a.ledger.spend_points(token, 5, "midori", 5, "city")
    wrong_rate = a.ledger.spend_points(token, 5, "midori", 500, "city")
    wrong_area = a.ledger.spend_points(token, 5, "kodomo", 5, "city")
    no_pool = a.ledger.spend_points(token, 5, "midori", 5, "nobody")
    assert up.sync_once().ok
    with eng.connect() as conn:
        q = dict(conn.execute(select(entries.c.seq, entries.c.quarantine).where(
            entries.c.type == "points_spent")).all())
        assert pools.sponsor_totals(conn)["total_yen"] == 5
    assert q[ok.seq] is None
    assert q[wrong_rate.seq].startswith("amount:") and q[wrong_area.seq].startswith("pool:")
    assert q[no_pool.seq].startswith("pool:")
    body = json.loads(requests.get(portal.url + "/api/v1/points/totals", timeout=10).text)
    assert body["projects"] == {"midori": 5}
    make_engine(portal.db_url).dispose()


def test_administrators_fund_pools_on_the_operator_ui(portal, two):
    a, b = two
    enrolled(a, portal)
    enrolled(b, portal)
    eng = portal.app.state.engine
    add_user(eng, "admin", PASSWORD)

    form = {"id": "midori-bank", "sponsor": "みどり銀行", "sponsor_en": "Midori Bank", "funded_yen": "10,000",
            "yen_per_point": "1", "per_kiosk_yen": "3000", "areas": ["green"], "start": "2026-04-01", "end": ""}
    s, token = staff_session(portal.url, "staff1")
    assert s.get(portal.url + "/staff/pools", timeout=10).status_code == 403
    assert s.post(portal.url + "/staff/pools", data={**form, "csrf": token}, timeout=10).status_code == 403
    s, token = staff_session(portal.url, "admin")
    bad = s.post(portal.url + "/staff/pools", data={**form, "csrf": token, "funded_yen": "-5", "end": "2026-01-01"},
                 timeout=10)
    assert bad.status_code == 422 and 'data-for="funded_yen"' in bad.text and 'data-for="end"' in bad.text
    with eng.connect() as conn:
        assert pools.list_pools(conn) == []
    ok = s.post(portal.url + "/staff/pools", data={**form, "csrf": token}, timeout=10)
    assert ok.status_code == 200 and 'id="notice"' in ok.text
    assert "¥10,000" in ok.text and "¥6,000" in ok.text  # funded; handed out (¥3,000 to each of two kiosks)
    with eng.connect() as conn:
        p = pools.list_pools(conn)[0]
    assert p["areas"] == ["green"] and p["start"] == "2026-04-01" and p["allocations"] == {
        "center-1f": 3000, "city-hall": 3000}
    # Less money than is already handed to kiosks would let them overdraw it offline: refused.
    less = s.post(portal.url + "/staff/pools", data={**form, "csrf": token, "funded_yen": "5000"}, timeout=10)
    assert less.status_code == 422 and 'data-for="funded_yen"' in less.text and "¥6,000" in less.text
    assert "already handed to kiosks" not in less.text  # the staff member's words (tests/sync/test_staff_words.py)


def test_kiosk_run_asks_the_portal_and_falls_back_to_its_last_word(portal, two):
    """The desk `kiosk run` gives the donation service (kiosk/app/points.py): the portal's answer when it is
    reachable, its last word when not, and the pools of the applied config."""
    from kiosk.app.points import PointsOffer, points_desk
    from kiosk.donation.flow import FlowSettings

    a, _ = two
    up = enrolled(a, portal)
    a.donate(1, card=CARD, amounts=(1000,))
    assert up.sync_once().ok

    def button() -> bool:  # as `kiosk run` decides it (kiosk/app/points.py)
        offer = PointsOffer(a.cfg, load_applied(a.cfg.data_dir))
        return offer.apply(FlowSettings.from_config(a.cfg), a.ledger, a.ledger.business_date()).points_exchange

    assert not button()
    pools.save_pool(portal.app.state.engine, {"id": "city", "sponsor": "市", "sponsor_en": "", "funded_yen": 800,
                                              "yen_per_point": 1, "per_kiosk_yen": 500, "areas": [], "start": None,
                                              "end": None})
    assert up.sync_once().ok
    desk = points_desk(a.cfg)
    token = a.pepper.token(fake_idm(CARD))
    assert button()
    assert [(p.id, p.allocation_yen) for p in desk.pools()] == [("city", 500)]
    assert desk.ask(token, 0) == (10, 10) and desk.last_word(token) == 10
    portal.stop()  # the portal goes away: the last word stands, the balance is unknown
    assert desk.ask(token, 0) == (10, None)
    assert desk.ask(a.pepper.token(fake_idm(CARD + 1)), 0) == (0, None)  # never answered for here: nothing


def test_a_refunded_gifts_points_are_taken_back_from_the_kiosk_that_holds_them(portal, two):
    """A gift refunded after its points were handed to a kiosk: the next answer to that kiosk takes back what
    it holds unspent, never below what it spent; the card's next points fill the rest before any are handed."""
    a, b = two
    up_a, up_b = enrolled(a, portal), enrolled(b, portal)
    [big] = a.donate(1, card=CARD, amounts=(1000,))  # 10 points
    [small] = a.donate(1, card=CARD, amounts=(500,))  # 5 points
    assert up_a.sync_once().ok and up_b.sync_once().ok
    eng = portal.app.state.engine
    _fund(portal)
    assert up_a.sync_once().ok and up_b.sync_once().ok
    token = a.pepper.token(fake_idm(CARD))
    assert _spendable(a, up_a, online=True) == 15
    _spend(a, 4, "kodomo")
    # Staff refund the ¥1,000 gift (the provider said COMPLETED; kiosk/staff/refund.py writes this void).
    a.ledger.void(big.seq, "refunded: test")
    assert up_a.sync_once().ok
    assert pools.allot(eng, "center-1f", hexes_of(token)) == {"allotted": 5, "balance": 1}  # 10 taken back
    assert _spendable(a, up_a, online=True) == 1  # the kiosk keeps the lower answer: 5 handed, 4 spent
    _spend(a, 1, "kodomo")
    a.ledger.void(small.seq, "refunded: test")  # its 5 points are spent already: the card is 5 short
    assert up_a.sync_once().ok
    assert _spendable(a, up_a, online=True) == 0
    assert pools.allot(eng, "center-1f", hexes_of(token)) == {"allotted": 5, "balance": -5}  # never below spent
    # The card earns 10 at city hall: 5 fill the shortfall, city hall is handed the other 5.
    b.donate(1, card=CARD, amounts=(1000,))
    assert up_b.sync_once().ok
    assert _spendable(b, up_b, online=True) == 5
    assert pools.allot(eng, "city-hall", hexes_of(token)) == {"allotted": 5, "balance": 5}
    with eng.connect() as conn:
        assert pools.spent_by_kiosk(conn, hexes_of(token)) == {"center-1f": 5}


def test_a_take_back_never_goes_below_what_the_kiosk_spent_offline(portal, two):
    """The kiosk tells the portal what its ledger spent for the card: points it spent offline from what it held
    before a refund stay counted as held, so the card's next points are not handed out again meanwhile."""
    a, b = two
    up_a, up_b = enrolled(a, portal), enrolled(b, portal)
    [gift] = b.donate(1, card=CARD, amounts=(1000,))
    assert up_b.sync_once().ok and up_a.sync_once().ok
    _fund(portal)
    assert up_a.sync_once().ok and up_b.sync_once().ok
    assert _spendable(a, up_a, online=True) == 10  # the center's kiosk is handed the card's 10 points
    _spend(a, 8, "kodomo")  # and spends 8 of them; its entries have not reached the portal yet
    b.ledger.void(gift.seq, "refunded: test")  # city hall refunds the gift
    assert up_b.sync_once().ok
    assert _spendable(a, up_a, online=True) == 0  # 2 taken back, not 10: it says it spent 8
    b.donate(1, card=CARD, amounts=(500,))
    assert up_b.sync_once().ok
    assert _spendable(b, up_b, online=True) == 0  # the 5 new points fill part of the shortfall
    token = a.pepper.token(fake_idm(CARD))
    eng = portal.app.state.engine
    assert pools.allot(eng, "city-hall", hexes_of(token)) == {"allotted": 0, "balance": 5}  # as far as it has seen
    assert up_a.sync_once().ok
    assert pools.allot(eng, "city-hall", hexes_of(token)) == {"allotted": 0, "balance": -3}
    # A kiosk's figure counts only in its own ask (it is not kept): saying it spent more than it holds (a forged
    # figure) takes nothing from the card's next points, which go to the kiosks that ask for them.
    assert pools.allot(eng, "city-hall", hexes_of(token), spent_here=10**9) == {"allotted": 0, "balance": -3}
    b.donate(1, card=CARD, amounts=(1000,))
    assert up_b.sync_once().ok
    assert _spendable(b, up_b, online=True) == 7  # 3 filled the shortfall
    assert pools.allot(eng, "center-1f", hexes_of(token), spent_here=10**9) == {"allotted": 8, "balance": 7}


def test_the_newest_answer_is_the_last_word_over_every_token_of_the_card(tmp_path):
    old, new = "aa" * 16, "bb" * 16  # one card's tokens under the previous pepper epoch and the current one
    pointsync.remember(tmp_path, old, 12)
    assert pointsync.last_word(tmp_path, [new, old]) == 12
    pointsync.remember(tmp_path, new, 7, [new, old])  # lower: a refunded gift's points were taken back
    assert pointsync.last_word(tmp_path, [new, old]) == 7
    assert json.loads((tmp_path / pointsync.FILE).read_text()) == {new: 7}
    pointsync.remember(tmp_path, new, 9, [new, old])
    assert pointsync.last_word(tmp_path, [new, old]) == 9


def _pool(i: int, funded: int = 10_000, end: str | None = None) -> dict:
    return {"id": f"pool-{i}", "sponsor": f"sponsor {i}", "sponsor_en": "", "funded_yen": funded,
            "yen_per_point": 1, "per_kiosk_yen": 1000, "areas": [], "start": None, "end": end}


def test_ended_pools_leave_the_pushed_config_and_a_pool_over_its_limit_is_not_saved(portal, tmp_path):
    """Pools are never deleted: over the years the ended ones filled the pushed config's 50, the 51st was stored
    (and money handed to kiosks in the database) though it could not be published, and then no pool could be
    changed at all."""
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    rig = make_rig(tmp_path, "center-1f")
    up = enrolled(rig, portal)
    long_ago = (pools.japan_today() - dt.timedelta(days=pools.KEEP_ENDED_DAYS + 1)).isoformat()
    recently = (pools.japan_today() - dt.timedelta(days=pools.KEEP_ENDED_DAYS)).isoformat()
    try:
        for i in range(30):
            pools.save_pool(eng, _pool(i, end=long_ago))  # ended: no kiosk may exchange into them
        for i in range(30, 30 + pools.MAX_PUSHED - 1):
            pools.save_pool(eng, _pool(i))
        pools.save_pool(eng, _pool(100, end=recently))  # the limit's last place: ended, but only just
        with eng.connect() as conn:
            assert [p["id"] for p in pools.pushed_pools(conn)] == [
                f"pool-{i}" for i in sorted([*range(30, 30 + pools.MAX_PUSHED - 1), 100])]
        with pytest.raises(pools.TooManyPools):
            pools.save_pool(eng, _pool(200))
        with eng.connect() as conn:
            assert "pool-200" not in {p["id"] for p in pools.list_pools(conn)}  # nothing of it stored
        pools.save_pool(eng, _pool(31, funded=20_000))  # a sponsor's top-up of a running pool still publishes
        assert up.sync_once().ok
        pushed = {p.id: p for p in pools_for(load_applied(rig.cfg.data_dir), rig.kiosk_id)}
        assert len(pushed) == pools.MAX_PUSHED and "pool-0" not in pushed and "pool-31" in pushed
        # On the pools page the admin is told why, in Japanese, beside the id.
        add_user(eng, "admin", PASSWORD)
        s, token = staff_session(portal.url, "admin")
        r = s.post(portal.url + "/staff/pools", timeout=10, data={
            "csrf": token, "id": "pool-201", "sponsor": "新しい基金", "funded_yen": "1000", "yen_per_point": "1",
            "per_kiosk_yen": "100"})
        assert r.status_code == 422 and "同時に使えるスポンサー基金" in r.text, r.text[-2000:]
    finally:
        up.close()
        rig.ledger.close(checkpoint=False)


def test_the_desk_knows_the_area_of_a_project_a_push_added(two):
    """`kiosk run`'s desk read the projects' areas once, at start: a project a push added (adopt_config replaces
    ``cfg.projects``) had no area, so a pool given to its area refused the exchange until a restart."""
    from kiosk.app.points import points_desk
    from kiosk.config.donation import Project

    a, _ = two
    desk = points_desk(a.cfg)
    assert "hoikuen" not in desk.areas
    a.cfg.projects = [*a.cfg.projects, Project(id="hoikuen", title="保育園の絵本", area="children")]
    assert desk.areas.get("hoikuen") == "children"
    assert dict(desk.areas) == {p.id: p.area for p in a.cfg.projects}

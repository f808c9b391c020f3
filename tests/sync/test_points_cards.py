"""One card, whichever kiosk asks (docs/points.md, "One card, whichever kiosk asks").

Each kiosk keeps the pepper epoch it made itself before it joined the city, so a card is one city token plus
a different own token at each kiosk, and each kiosk's ask lists the tokens it can make: kiosk A sends
[city, a_own], kiosk B [city, b_own]. The portal links the tokens of every list into one card
(``portal_card_tokens``), counts the card's earned, held and spent points over all of them, and takes the
card's lock, the same at every kiosk. Real kiosks (ledgers, peppers, uploaders) and a real portal over
loopback HTTP, SQLite and PostgreSQL; the race at the end runs on PostgreSQL only.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event
from sync_helpers import PROJECTS, Rig, enrolled, fake_idm, make_rig

from kiosk.donation.exchange import card_spendable, hexes_of
from kiosk.ledger import DonorToken, Pepper
from kiosk.sync import pointsync
from server_sync import catalog, citypepper, pools
from server_sync.embedded import start_portal

CARD = 9


@pytest.fixture
def two(portal, tmp_path):  # noqa: ANN001
    catalog.import_catalog(portal.app.state.engine, {"projects": PROJECTS})
    a, b = make_rig(tmp_path, "center-1f"), make_rig(tmp_path, "city-hall")
    yield a, b
    for r in (a, b):
        r.ledger.close(checkpoint=False)


def _ask(rig: Rig, up, token: DonorToken) -> int:  # noqa: ANN001
    """What kiosk run does at the exchange screen: ask with every token of the card it can make and what its
    ledger spent for the card; returns what the card may spend here."""
    pointsync.ask(up, token, hexes_of(token), rig.ledger.points_spent(hexes_of(token))[0])
    return card_spendable(rig.ledger, token, pointsync.last_word(rig.cfg.data_dir, hexes_of(token)))


def test_asking_never_destroys_points_earned_before_the_kiosks_joined_the_city(portal, two):
    a, b = two
    # Before the kiosks joined the city (each its own pepper, epoch 1): 100 points at A, 30 at B.
    a.donate(10, card=CARD, amounts=(1000,))
    b.donate(3, card=CARD, amounts=(1000,))
    ups = [enrolled(r, portal, pepper=r.pepper) for r in (a, b)]  # each adopts the city's pepper
    try:
        for up in ups:
            assert up.sync_once().ok
        ta, tb = (r.pepper.card_token(fake_idm(CARD)) for r in (a, b))
        assert ta.hex == tb.hex and ta.older != tb.older  # one city token, each kiosk its own old one
        # B, A, B: each answer counts the whole card (130), whichever kiosk's tokens it was asked with.
        assert [_ask(b, ups[1], tb), _ask(a, ups[0], ta), _ask(b, ups[1], tb)] == [30, 100, 30]
        eng = portal.app.state.engine
        assert pools.allot(eng, "center-1f", hexes_of(ta)) == {"allotted": 100, "balance": 130}
        assert pools.allot(eng, "city-hall", hexes_of(tb)) == {"allotted": 30, "balance": 130}
    finally:
        for up in ups:
            up.close()


def test_a_kiosk_without_the_city_pepper_and_a_rotation_count_the_same_card(portal, two):
    """A kiosk that has not adopted the city's pepper asks with its own token alone: the portal cannot know
    it is the card the others ask about, and counts it apart (its points, its allotments). When the kiosk
    lists its own token with a city one, the two are one card. After a rotation a kiosk that adopted the new
    epoch lists [city 2, city 1, own] and one that has not [city 1, own]: still one card."""
    a, b = two
    a.donate(10, card=CARD, amounts=(1000,))
    b.donate(3, card=CARD, amounts=(1000,))
    own_a = Pepper.load(a.cfg.pepper_path)  # A as it was before it adopted the city's pepper
    ups = [enrolled(r, portal, pepper=r.pepper) for r in (a, b)]
    try:
        for up in ups:
            assert up.sync_once().ok
        eng = portal.app.state.engine
        alone = own_a.card_token(fake_idm(CARD))
        assert hexes_of(alone) == [alone.hex]
        assert _ask(a, ups[0], alone) == 100  # its own token alone: the points it earned under it
        tb = b.pepper.card_token(fake_idm(CARD))
        assert _ask(b, ups[1], tb) == 30  # B's list does not link A's own token: A's 100 are not B's to count
        assert citypepper.rotate(eng) > max(a.pepper.epochs)
        assert ups[0].sync_once().ok  # A adopts the new epoch; B has not synced since
        ta = a.pepper.card_token(fake_idm(CARD))
        assert len(hexes_of(ta)) == 3 and ta.hex != tb.hex and set(hexes_of(tb)) & set(hexes_of(ta))
        a.donate(1, card=CARD, amounts=(1000,))  # 10 more at A, under the new city token
        assert ups[0].sync_once().ok
        assert _ask(a, ups[0], ta) == 110  # its list links its own token and both city ones: one card of 140
        assert _ask(b, ups[1], tb) == 30  # B, without the new epoch, sees the same card and keeps its 30
        assert pools.allot(eng, "city-hall", hexes_of(tb)) == {"allotted": 30, "balance": 140}
        assert pools.allot(eng, "center-1f", hexes_of(ta)) == {"allotted": 110, "balance": 140}
    finally:
        for up in ups:
            up.close()


def test_every_kiosks_ask_about_one_card_takes_the_cards_lock(portal, two, monkeypatch):  # noqa: ANN001
    """The lock key of each ask is the card's, whichever kiosk's tokens the ask lists: recorded from the
    statements the portal runs (on SQLite, whose one writer is the lock, allot takes PostgreSQL's path here
    against stand-in functions)."""
    a, b = two
    own_a = Pepper.load(a.cfg.pepper_path)  # A as it was before it adopted the city's pepper
    ups = [enrolled(r, portal, pepper=r.pepper) for r in (a, b)]
    try:
        # A card whose lists have different lowest tokens at the two kiosks (a lock keyed by it would differ).
        n = next(n for n in range(64) if min(hexes_of(a.pepper.card_token(fake_idm(n))))
                 != min(hexes_of(b.pepper.card_token(fake_idm(n)))))
        ta, tb = (r.pepper.card_token(fake_idm(n)) for r in (a, b))
        eng = portal.app.state.engine
        keys: list[str] = []

        @event.listens_for(eng, "before_cursor_execute")
        def _record(_conn, _cur, statement, params, _ctx, _many):  # noqa: ANN001
            if "pg_advisory_xact_lock(hashtext(" in statement:  # a card's lock (not the config publishers')
                keys.append(params["k"] if isinstance(params, dict) else params[0])

        if eng.dialect.name == "sqlite":
            @event.listens_for(eng, "connect")
            def _fns(dbapi_conn, _rec):  # noqa: ANN001
                dbapi_conn.create_function("hashtext", 1, lambda s: s)
                dbapi_conn.create_function("pg_advisory_xact_lock", 1, lambda k: 0)

            eng.dispose()
            monkeypatch.setattr(pools, "is_sqlite", lambda _e: False)
        for rig, up, tok in ((a, ups[0], ta), (b, ups[1], tb), (a, ups[0], ta)):
            _ask(rig, up, tok)
        assert len(keys) == 3 and len(set(keys)) == 1, f"one card, several locks: {keys}"
        # A kiosk without the city's pepper asks about a card the portal cannot link yet: a lock of its own.
        # When its list links that card's token to a known card, the ask takes both locks and the card keeps
        # one key from then on, whichever kiosk asks.
        m = n + 1
        keys.clear()
        _ask(a, ups[0], own_a.card_token(fake_idm(m)))
        _ask(b, ups[1], b.pepper.card_token(fake_idm(m)))
        assert len(set(keys)) == 2
        keys.clear()
        _ask(a, ups[0], a.pepper.card_token(fake_idm(m)))
        assert len(keys) == 2
        merged = min(keys)
        keys.clear()
        _ask(b, ups[1], b.pepper.card_token(fake_idm(m)))
        _ask(a, ups[0], own_a.card_token(fake_idm(m)))
        assert keys == [merged, merged]
    finally:
        for up in ups:
            up.close()


def test_two_kiosks_asking_for_one_card_at_once_never_both_receive_its_points(pg_db_url, tmp_path):
    """PostgreSQL: two kiosks ask for the same cards at the same moment, each with its own list of the card's
    tokens; no card is handed out more than it earned (a lock keyed by each list's lowest token let both read
    the same points as free)."""
    handle = start_portal(pg_db_url)
    eng = handle.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    a, b = make_rig(tmp_path, "center-1f"), make_rig(tmp_path, "city-hall")
    ups = [enrolled(r, handle, pepper=r.pepper) for r in (a, b)]
    cards = range(40)
    try:
        for c in cards:
            a.donate(1, card=c, amounts=(1000,))  # 10 points a card, under the city token
        assert ups[0].sync_once().ok and ups[1].sync_once().ok
        got: dict[tuple[int, int], int] = {}
        gate = threading.Barrier(2)

        def run(i: int) -> None:
            rig = (a, b)[i]
            for c in cards:
                t = rig.pepper.card_token(fake_idm(c))
                gate.wait(timeout=30)
                got[(i, c)] = pointsync.ask(ups[i], t, hexes_of(t)).allotted

        threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert len(got) == 2 * len(cards)
        over = {c: (got[(0, c)], got[(1, c)]) for c in cards if got[(0, c)] + got[(1, c)] > 10}
        assert not over, f"cards handed out twice (card: (A, B)): {over}"
    finally:
        for up in ups:
            up.close()
        for r in (a, b):
            r.ledger.close(checkpoint=False)
        handle.stop()

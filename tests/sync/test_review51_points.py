"""Review 51, points: a suspended kiosk is handed no card's points, and a kiosk that spent more of a card than the
portal had handed it is handed the card's free points whole (docs/points.md, "Why neither a card nor a pool can be
overdrawn").

Real kiosk ledgers sync over loopback HTTP to a real portal (SQLite and PostgreSQL); the kiosk asks as `kiosk run`
does (kiosk/app/points.py), and the staff suspend the kiosk with `kiosk-portal kiosk suspend`.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sync_helpers import Rig, enrolled, fake_idm

from kiosk.donation.exchange import card_spendable, hexes_of
from kiosk.sync import pointsync
from kiosk.sync.uploader import SyncError
from server_sync import pools
from server_sync.db import point_allotments
from server_sync.portal_cli import main as portal_cli

CARD = 7
TODAY = dt.date.today()


def _fund(portal) -> None:  # noqa: ANN001
    pools.save_pool(portal.app.state.engine, {
        "id": "midori-bank", "sponsor": "みどり銀行", "sponsor_en": "Midori Bank", "funded_yen": 10_000,
        "yen_per_point": 10, "per_kiosk_yen": 1000, "areas": [], "start": None, "end": None})


def _ask(rig: Rig, up) -> int:  # noqa: ANN001
    """What the exchange screen shows the card may spend here after asking the portal, as `kiosk run` asks."""
    token = rig.pepper.token(fake_idm(CARD))
    pointsync.ask(up, token, hexes_of(token), rig.ledger.points_spent(hexes_of(token))[0])
    return card_spendable(rig.ledger, token, pointsync.last_word(rig.cfg.data_dir, hexes_of(token)))


def _held(portal) -> dict[str, int]:  # noqa: ANN001
    """Points of the card handed to each kiosk, as the portal keeps them."""
    with portal.app.state.engine.connect() as conn:
        out: dict[str, int] = {}
        for k, p in conn.execute(point_allotments.select().with_only_columns(
                point_allotments.c.kiosk_id, point_allotments.c.points)):
            out[k] = out.get(k, 0) + int(p)
        return out


def test_a_suspended_kiosk_is_handed_none_of_a_cards_points(portal, two):
    """Staff suspend a kiosk (lost or stolen, or suspended by the portal for signing two histories): its uploads
    are held and counted nowhere. Its asks for a card's points are refused (403 kiosk_suspended) and move nothing,
    so the card's points stay free for the kiosks that work; before, the suspended kiosk was handed every free
    point of any card it named, and they stayed with it for good."""
    a, b = two
    up_a, up_b = enrolled(a, portal), enrolled(b, portal)
    b.donate(1, card=CARD, amounts=(1000,))  # 10 points earned at city hall
    assert up_a.sync_once().ok and up_b.sync_once().ok
    _fund(portal)
    assert up_a.sync_once().ok and up_b.sync_once().ok
    assert portal_cli(["kiosk", "suspend", "--db", portal.db_url, a.kiosk_id, "--reason", "lost at the fair"]) == 0

    with pytest.raises(SyncError, match="kiosk_suspended"):
        _ask(a, up_a)
    token = a.pepper.token(fake_idm(CARD))
    assert pointsync.last_word(a.cfg.data_dir, hexes_of(token)) == 0  # nothing kept: nothing to spend there
    assert _held(portal) == {}
    assert _ask(b, up_b) == 10  # the kiosk that works is handed the card's points

    # Resumed, it asks as any kiosk: the card's points are with city hall now, and it is handed what is new.
    assert portal_cli(["kiosk", "resume", "--db", portal.db_url, a.kiosk_id]) == 0
    assert _ask(a, up_a) == 0
    b.donate(1, card=CARD, amounts=(500,))
    assert up_b.sync_once().ok
    assert _ask(a, up_a) == 5
    assert _held(portal) == {"center-1f": 5, "city-hall": 10}


def test_the_kiosk_run_desk_falls_back_to_its_last_word_at_a_suspended_kiosk(portal, two):
    """At a suspended kiosk the citizen's lookup is answered with what the portal handed the kiosk before the
    suspension (its last word, as offline): a refused ask is never a stuck screen."""
    from kiosk.app.points import points_desk

    a, _ = two
    up = enrolled(a, portal)
    a.donate(1, card=CARD, amounts=(1000,))
    assert up.sync_once().ok
    _fund(portal)
    assert up.sync_once().ok
    desk = points_desk(a.cfg)
    token = a.pepper.token(fake_idm(CARD))
    assert desk.ask(token, 0) == (10, 10)
    a.donate(1, card=CARD, amounts=(500,))
    assert up.sync_once().ok
    assert portal_cli(["kiosk", "suspend", "--db", portal.db_url, a.kiosk_id]) == 0
    assert desk.ask(token, 0) == (10, None)  # the 5 new points are not handed to it
    assert _held(portal) == {"center-1f": 10}


def test_a_kiosk_that_spent_more_than_it_was_handed_gets_the_cards_free_points_whole(portal, two):
    """A kiosk whose spends of a card are more than the portal handed it (spends made before it was ever handed
    any: a release before allotments, or a portal put back from a backup) is handed the card's free points on top
    of what it spent, in one answer. Before, the answer was its handed points plus the free ones, from which the
    kiosk takes off what it spent: the citizen saw less than the card's balance until the next ask, though no
    other kiosk could be handed those points."""
    a, b = two
    up_a, up_b = enrolled(a, portal), enrolled(b, portal)
    a.donate(1, card=CARD, amounts=(1000,))  # 10 points
    assert up_a.sync_once().ok
    _fund(portal)
    assert up_a.sync_once().ok and up_b.sync_once().ok
    token = a.pepper.token(fake_idm(CARD))
    a.ledger.spend_points(token, 4, "kodomo", 40, "midori-bank")  # spent before any answer for the card here
    assert up_a.sync_once().ok
    eng = portal.app.state.engine
    with eng.connect() as conn:
        assert pools.spent_by_kiosk(conn, hexes_of(token)) == {"center-1f": 4}

    assert _ask(a, up_a) == 6  # the card's balance, at once (before: 2, and the other 4 at the next ask)
    assert _held(portal) == {"center-1f": 10}
    assert _ask(b, up_b) == 0  # nothing is handed twice
    assert _ask(a, up_a) == 6
    assert pools.allot(eng, "center-1f", hexes_of(token), 4) == {"allotted": 10, "balance": 6}
    # The card earns 5 more: handed once, to the kiosk that asks first.
    b.donate(1, card=CARD, amounts=(500,))
    assert up_b.sync_once().ok
    assert _ask(b, up_b) == 5
    assert _ask(a, up_a) == 6
    assert _held(portal) == {"center-1f": 10, "city-hall": 5}

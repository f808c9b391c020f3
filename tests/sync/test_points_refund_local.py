"""A gift refunded at the kiosk where its points are held (docs/points.md, "A refund at the same kiosk").

The portal hands a kiosk a card's points; staff then refund one of the card's gifts at that same kiosk (the
maintenance menu's refund writes a ``void`` into the kiosk's ledger). Until the void reached the portal and the
kiosk asked again, the refunded gift's points stayed spendable there, though the kiosk itself had written the
refund. Now the kiosk takes them off its kept word at once, and once the portal's answer counts the refund they are
not taken off a second time.

A real kiosk (ledger, keys, pepper) and a real portal over loopback HTTP (SQLite and PostgreSQL), the kiosk's own
points desk (kiosk/app/points.py, what `kiosk run` asks with), its donation service, its "use your points" offer,
and the staff refund (kiosk/staff/refund.py) with the provider's answer as the only stand-in.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from sync_helpers import PROJECTS, enrolled, fake_idm, make_rig, points_screen, points_service

from kiosk.app.points import points_desk
from kiosk.donation import flow
from kiosk.donation.exchange import ExchangeRefused, PointsDesk, exchange
from kiosk.donation.service import DonationService
from kiosk.ledger.writer import InlineWriter
from kiosk.payment import open_terminal
from kiosk.payment.base import RefundResult
from kiosk.staff.refund import find_refundable, refund_donation
from kiosk.sync import pointsync
from server_sync import catalog, pools

CARD = 11


@pytest.fixture
def kiosk(portal, tmp_path: Path):  # noqa: ANN001, ANN201
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    rig = make_rig(tmp_path, "center-1f")
    up = enrolled(rig, portal, pepper=rig.pepper)
    terminal = open_terminal(rig.cfg)
    yield rig, up, eng, terminal
    terminal.close()
    up.close()
    rig.ledger.close(checkpoint=False)


def _offline(desk: PointsDesk) -> PointsDesk:
    """The desk of a kiosk that cannot reach the portal: its ask falls back to the last word (kiosk/app/points.py)."""
    return msgspec.structs.replace(desk, ask=lambda token, _spent: (desk.last_word(token), None))


def _spend_on_writer(rig, desk: PointsDesk, token, points: int) -> None:  # noqa: ANN001
    """The writer's own check, as the service makes it for a spend (against the kept word, not the screen)."""
    exchange(rig.ledger, token, points, "kodomo", "children", desk.pools(), desk.last_word(token),
             rig.ledger.business_date_at_least())


def _spend(svc: DonationService, points: int) -> flow.PointsScreen:
    now = svc.now_ms()
    for ev in (flow.ChoosePoints(now_ms=now, points=points), flow.ChoosePointsProject(now_ms=now, project="kodomo"),
               flow.ConfirmPoints(now_ms=now)):
        svc.handle(ev)
    screen = svc.screen
    assert isinstance(screen, flow.PointsScreen)
    return screen


def _refund_here(rig, gift):  # noqa: ANN001, ANN202
    """Staff refund the gift from the maintenance menu; the provider says the money went back."""
    d = find_refundable(rig.ledger, "sim", gift.data["intent_seq"])
    result, void = refund_donation(InlineWriter(rig.ledger), lambda *_a: RefundResult("rf-1", "COMPLETED"),
                                   rig.kiosk_id, d)
    assert result.status == "COMPLETED" and void is not None and void.data["voids_seq"] == gift.seq
    return void


def _fund(eng) -> None:  # noqa: ANN001
    pools.save_pool(eng, {"id": "midori-bank", "sponsor": "みどり銀行", "sponsor_en": "Midori Bank",
                          "funded_yen": 10_000, "yen_per_point": 10, "per_kiosk_yen": 2_000, "areas": [],
                          "start": None, "end": None})


def test_a_gift_refunded_here_is_not_spendable_here_before_the_portal_hears_of_it(kiosk):  # noqa: ANN001
    rig, up, eng, terminal = kiosk
    gifts = rig.donate(3, card=CARD, amounts=(1000,))  # 30 points
    assert up.sync_once().ok
    _fund(eng)
    assert up.sync_once().ok  # the signed config hands this kiosk ¥2,000 of the pool
    svc = points_service(rig, terminal, points_desk(rig.cfg))
    token = rig.pepper.card_token(fake_idm(CARD))

    assert points_screen(svc, token).spendable == 30  # online: the portal hands this kiosk the card's 30 points
    void = _refund_here(rig, gifts[1])  # 10 of them were never earned

    # Online again before the next sync: the portal has not seen the refund and answers 30; the kiosk knows better.
    looked = points_screen(svc, token)
    assert (looked.spendable, looked.balance, looked.presets) == (20, 30, (10,))  # the balance: the portal's
    svc.handle(flow.ChoosePoints(now_ms=svc.now_ms(), points=30))
    assert svc.screen.points is None  # not offered, not taken
    # The spend's own check on the writer (against the kept word, whatever a screen was told) refuses it too.
    desk = points_desk(rig.cfg)
    with pytest.raises(ExchangeRefused) as refused:
        _spend_on_writer(rig, desk, token, 21)
    assert refused.value.reason == "card" and rig.ledger.points_spent(list(token.all_hexes))[0] == 0
    assert desk.last_word(token) == 20  # offline, the same: the kept word less the refund
    assert _spend(svc, 20).phase == "done"
    assert rig.ledger.points_spent(list(token.all_hexes))[0] == 20
    assert points_screen(svc, token).spendable == 0

    # The refund and the spend reach the portal; its next answer counts the refund: not taken off twice.
    assert up.sync_once().ok
    assert points_screen(svc, token).spendable == 0
    kept, covers = pointsync.kept(rig.cfg.data_dir, list(token.all_hexes))
    assert kept == 20 and covers is not None and covers[0] > void.seq  # the portal's word (30 - 10) counts the void
    rig.donate(1, card=CARD, amounts=(500,))  # 5 new points, seen by the portal
    assert up.sync_once().ok
    assert points_screen(svc, token).spendable == 5  # 25 handed, 20 spent; not 25 - 20 - 10


def test_an_answer_kept_before_the_refund_is_read_less_the_refund_after_a_restart(kiosk):  # noqa: ANN001
    """The marks are kept with the answer in points-allotted.json: a restart (a new desk, a new service) offline
    still takes the refund off; a file written by an older release, without marks, reads as it did."""
    rig, up, eng, terminal = kiosk
    gifts = rig.donate(2, card=CARD, amounts=(1000,))
    assert up.sync_once().ok
    _fund(eng)
    assert up.sync_once().ok
    token = rig.pepper.card_token(fake_idm(CARD))
    assert points_desk(rig.cfg).ask(token, 0) == (20, 20)
    # A gift made after the answer and refunded here: its points were never in the word, nothing is taken off.
    later = rig.donate(1, card=CARD, amounts=(1000,))[0]
    _refund_here(rig, later)
    assert points_desk(rig.cfg).last_word(token) == 20
    _refund_here(rig, gifts[0])

    restarted = points_desk(rig.cfg)  # kiosk run again, offline: only the file and the ledger
    assert restarted.last_word(token) == 10
    svc = points_service(rig, terminal, _offline(restarted))
    assert points_screen(svc, token).spendable == 10
    with pytest.raises(ExchangeRefused) as refused:
        _spend_on_writer(rig, restarted, token, 11)
    assert refused.value.reason == "card"
    assert _spend(svc, 10).phase == "done" and rig.ledger.points_spent(list(token.all_hexes))[0] == 10

    # The same answer as an older release kept it: no marks, so nothing is known of what it covers (as before).
    path = rig.cfg.data_dir / pointsync.FILE
    doc = json.loads(path.read_text())
    assert set(doc) == {token.hex, pointsync.MARKS}
    path.write_text(json.dumps({token.hex: doc[token.hex]}))
    assert pointsync.kept(rig.cfg.data_dir, list(token.all_hexes)) == (20, None)
    assert points_desk(rig.cfg).last_word(token) == 20  # as before this release: the answer alone

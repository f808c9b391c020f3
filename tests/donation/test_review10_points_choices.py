"""The points exchange offers only amounts the sponsor pools here can give (docs/points.md, "At the kiosk").

Before, the choose screen offered every amount the card could afford: with this kiosk's share of a pool nearly given,
a citizen chose 50 points, a project, pressed give, and was refused. Now the amounts and the projects are those an
exchange can pass (``FlowSettings.points_room``, from ``room_by_project`` over this kiosk's ledger, as the app sets
it), and when the pools have less than the smallest amount left the screen says the sponsor's gifts are used up
(``refused="pool_empty"``), not that the card has no points. Real ledger, real donation service.
"""

from __future__ import annotations

from kiosk.donation import flow
from kiosk.donation.exchange import PointsDesk, PoolTerms, room_by_project
from tests.donation.conftest import entries_of, settings, token

S = settings(points_exchange=True, points_presets=(10, 50, 100))
AREAS = {"kodomo": "children", "midori": "green", "machi": "town"}
POOL = PoolTerms("bank", "みどり銀行", "", 10, ("children",), None, None, 700)  # ¥10 a point, children only


def _open_choose(svc, kiosk, card: int) -> flow.PointsScreen:  # noqa: ANN001
    """The room as the app reads it (this ledger, today), then a citizen opens the exchange and taps a card."""
    led = svc.ledger
    room = room_by_project(led, [POOL], AREAS, led.business_date_at_least())
    svc.settings = flow.replace(svc.settings, points_room=tuple(sorted(room.items())))
    now = kiosk.clock.mono_ms()
    svc.handle(flow.OpenPoints(now_ms=now))
    svc.handle(flow.Tap(now_ms=now, donor=token(card), family="suica", balance_yen=5000))
    screen = svc.screen
    assert isinstance(screen, flow.PointsScreen) and screen.phase == "choose" and screen.spendable == 300
    return screen


def test_only_amounts_and_projects_the_pool_can_give_are_offered(kiosk) -> None:  # noqa: ANN001
    desk = PointsDesk(ask=lambda t, spent: (300, 300), last_word=lambda t: 300, pools=lambda: [POOL], areas=AREAS)
    led, _term, svc = kiosk.open(flow=S, points=desk)
    led.spend_points(token(9), 40, "kodomo", 400, "bank")  # an earlier citizen: ¥300 of ¥700 left, 30 points
    screen = _open_choose(svc, kiosk, 1)
    assert screen.presets == (10,), "the card affords 50 and 100, the pool here only 30 points"
    assert screen.projects == ("kodomo",), "the pool gives to children's projects only"
    now = kiosk.clock.mono_ms()
    # 50 points cannot be chosen (nothing is offered for it), so nothing is refused and nothing written.
    for ev in (flow.ChoosePoints(now_ms=now, points=50), flow.ChoosePointsProject(now_ms=now, project="kodomo"),
               flow.ConfirmPoints(now_ms=now)):
        svc.handle(ev)
    assert svc.screen.phase == "choose" and svc.screen.refused is None and len(entries_of(led, "points_spent")) == 1
    # A project the pool gives nothing to cannot be chosen either.
    svc.handle(flow.ChoosePoints(now_ms=now, points=10))
    svc.handle(flow.ChoosePointsProject(now_ms=now, project="midori"))
    assert svc.screen.project == "kodomo"
    svc.handle(flow.ConfirmPoints(now_ms=now))
    done = svc.screen
    assert done.phase == "done" and (done.points, done.yen) == (10, 100)


def test_a_pool_with_less_than_the_smallest_amount_says_so(kiosk) -> None:  # noqa: ANN001
    desk = PointsDesk(ask=lambda t, spent: (300, 300), last_word=lambda t: 300, pools=lambda: [POOL], areas=AREAS)
    led, _term, svc = kiosk.open(flow=S, points=desk)
    led.spend_points(token(9), 65, "kodomo", 650, "bank")  # ¥50 left here: 5 points, less than the smallest 10
    screen = _open_choose(svc, kiosk, 1)
    assert screen.presets == () and screen.refused == "pool_empty", "the pool's shortage, not 'no points on this card'"

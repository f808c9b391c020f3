"""The points exchange in the pure flow and the donation service (issue #17, docs/points.md).

Property: random sequences of citizens, cards, answers and time against the flow, checked by the rules:

- the points screen opens only where the exchange is on, from the loop or a thank-you, with a reader;
- points are spent (a SpendPoints effect) only for the card whose lookup answered last, a project the kiosk
  has, and a number from 1 to what that answer said the card may spend here;
- no money moves on the points screen (never an intent or a charge), and a spend is never asked twice
  before its answer;
- every points screen has its data, and none outlives its idle timeout (asking and spending wait for the
  service, which always answers).

Then the service with a real ledger: the card and the pool are checked again on the writer's side, and a
refusal writes nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kiosk.donation import flow
from kiosk.donation.exchange import PointsDesk, PoolTerms
from tests.donation.conftest import KIOSK_ID, PROJECTS, entries_of, settings, token

S = settings(choose_amount_idle_ms=3_000, tap_card_idle_ms=3_000, thanks_ms=2_000, error_ms=2_000,
             points_exchange=True, points_presets=(10, 50, 100))

ACTIONS = st.one_of(
    st.tuples(st.just("open")),
    st.tuples(st.just("tap"), st.integers(0, 2)),
    st.tuples(st.just("looked"), st.integers(0, 2), st.integers(-5, 200)),
    st.tuples(st.just("project"), st.sampled_from([*PROJECTS, "nope"])),
    st.tuples(st.just("points"), st.integers(-1, 250)),
    st.tuples(st.just("confirm")),
    st.tuples(st.just("spent")),
    st.tuples(st.just("refused"), st.sampled_from(["card", "pool", "points", "unavailable"])),
    st.tuples(st.just("touch")),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("wait"), st.sampled_from([0, 500, 2_999, 3_000, 5_000])),
    st.tuples(st.just("offline")),
    st.tuples(st.just("online")),
)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ACTIONS, min_size=1, max_size=40), st.booleans())
def test_points_are_spent_only_as_the_rules_say(steps, exchange_on):  # noqa: ANN001
    s = S if exchange_on else settings(points_exchange=False)
    state = flow.initial(s, 0)
    now = 0
    looked: dict[str, int] = {}  # the last lookup answer per card: what it may spend here
    asked: str | None = None  # the card whose lookup is awaited
    spending = False
    for act in steps:
        kind = act[0]
        before = state
        if kind == "open":
            ev: flow.Event = flow.OpenPoints(now_ms=now)
        elif kind == "tap":
            ev = flow.Tap(now_ms=now, donor=token(act[1]), family="suica", balance_yen=5000)
        elif kind == "looked":
            ev = flow.PointsLooked(now_ms=now, donor_hex=token(act[1]).hex, spendable=act[2])
        elif kind == "project":
            ev = flow.ChoosePointsProject(now_ms=now, project=act[1])
        elif kind == "points":
            ev = flow.ChoosePoints(now_ms=now, points=act[1])
        elif kind == "confirm":
            ev = flow.ConfirmPoints(now_ms=now)
        elif kind == "spent":
            ev = flow.PointsSpent(now_ms=now, points=10, yen=10, sponsor="s", spendable=0)
        elif kind == "refused":
            ev = flow.PointsRefused(now_ms=now, reason=act[1])
        elif kind == "touch":
            ev = flow.Touch(now_ms=now)
        elif kind == "cancel":
            ev = flow.Cancel(now_ms=now)
        elif kind == "offline":
            ev = flow.ReaderOffline(now_ms=now)
        elif kind == "online":
            ev = flow.ReaderOnline(now_ms=now)
        else:
            now += act[1]
            ev = flow.Tick(now_ms=now)
        state, effects = flow.step(state, ev, s)
        if state.name == "points" and before.name != "points":
            assert exchange_on and isinstance(ev, flow.OpenPoints) and before.name in ("attract", "thanks")
            assert before.reader_online
        if state.name == "points" or before.name == "points":
            assert not any(isinstance(e, (flow.CommitIntent, flow.Charge)) for e in effects), "money on points"
        for eff in effects:
            if isinstance(eff, flow.LookupPoints):
                asked = eff.donor.hex
                spending = False
            if isinstance(eff, flow.SpendPoints):
                assert before.name == "points" and before.points is not None and not spending
                assert eff.donor.hex == before.points.donor.hex
                assert eff.project in PROJECTS and 1 <= eff.points <= looked[eff.donor.hex]
                spending = True
        if isinstance(ev, flow.PointsLooked) and before.name == "points" and before.points is not None \
                and before.points.phase == "asking" and ev.donor_hex == asked:
            looked[ev.donor_hex] = max(0, ev.spendable)
        if isinstance(ev, (flow.PointsSpent, flow.PointsRefused)) or state.name != "points":
            spending = spending and state.name == "points" and state.points is not None \
                and state.points.phase == "spending"
        if state.name == "points":
            screen = flow.screen_for(state, s)
            assert isinstance(screen, flow.PointsScreen)
            assert all(p <= screen.spendable for p in screen.presets)
            due = flow.deadline_ms(state, s)
            if state.points is not None and state.points.phase in ("asking", "spending"):
                assert due is None
            else:
                assert due is not None and due <= now + 3_000


def _desk(allotted: int, pools: list[PoolTerms]) -> PointsDesk:
    return PointsDesk(ask=lambda t, spent: (allotted, allotted), last_word=lambda t: allotted, pools=lambda: pools,
                      areas={"kodomo": "children", "midori": "green", "machi": "town"},
                      today=lambda: dt.date(2026, 12, 3))


def test_the_service_spends_what_the_card_and_the_pool_allow_and_writes_nothing_else(kiosk):
    pool = PoolTerms("bank", "みどり銀行", "Midori Bank", 10, ("children", "green"), None, None, 500)
    led, _term, svc = kiosk.open(flow=S, points=_desk(60, [pool]))
    now = kiosk.clock.mono_ms()
    svc.handle(flow.OpenPoints(now_ms=now))
    svc.handle(flow.Tap(now_ms=now, donor=token(1), family="suica", balance_yen=5000))
    screen = svc.screen
    assert isinstance(screen, flow.PointsScreen) and screen.phase == "choose" and screen.spendable == 60
    assert screen.presets == (10, 50)
    for ev in (flow.ChoosePoints(now_ms=now, points=50), flow.ChoosePointsProject(now_ms=now, project="kodomo"),
               flow.ConfirmPoints(now_ms=now)):
        svc.handle(ev)
    done = svc.screen
    assert isinstance(done, flow.PointsScreen) and done.phase == "done"
    assert (done.yen, done.sponsor, done.spendable) == (500, "みどり銀行", 10)
    [spent] = entries_of(led, "points_spent")
    assert spent.data == {**spent.data, "points": 50, "amount_yen": 500, "pool": "bank", "project": "kodomo"}
    assert entries_of(led, "donation_intent") == []  # no money moved
    # The pool is used up on this kiosk: the next citizen's 10 points are refused and nothing is written.
    svc.handle(flow.Cancel(now_ms=now))
    svc.handle(flow.OpenPoints(now_ms=now))
    svc.handle(flow.Tap(now_ms=now, donor=token(2), family="suica", balance_yen=5000))
    for ev in (flow.ChoosePoints(now_ms=now, points=10), flow.ChoosePointsProject(now_ms=now, project="midori"),
               flow.ConfirmPoints(now_ms=now)):
        svc.handle(ev)
    refused = svc.screen
    assert isinstance(refused, flow.PointsScreen) and refused.phase == "choose" and refused.refused == "pool"
    assert len(entries_of(led, "points_spent")) == 1
    # A project outside the pool's areas is refused the same way.
    svc.handle(flow.ChoosePointsProject(now_ms=now, project="machi"))
    svc.handle(flow.ConfirmPoints(now_ms=now))
    assert svc.screen.refused == "pool" and len(entries_of(led, "points_spent")) == 1


def test_a_pools_period_is_judged_on_the_kiosks_day_in_tokyo_as_the_portal_judges_it(kiosk, monkeypatch):
    """The operating system's date is not the day: here the system is on UTC and the kiosk's clock says 01:00 on
    3 December in Tokyo (16:00 on the 2nd in UTC). The portal dates the entry by its clock in Tokyo."""
    from server_sync import policy

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        kiosk.clock.wall = int(dt.datetime(2026, 12, 3, 1, 0, tzinfo=ZoneInfo("Asia/Tokyo")).timestamp() * 1000)
        one_day = PoolTerms("bank", "みどり銀行", "", 10, (), "2026-12-03", "2026-12-03", 500)
        ended = PoolTerms("old", "昨日までの基金", "", 10, (), "2026-12-02", "2026-12-02", 500)
        desk = PointsDesk(ask=lambda t, spent: (60, 60), last_word=lambda t: 60, pools=lambda: [ended, one_day],
                          areas={"kodomo": "children"})  # as `kiosk run` builds it: no day of its own
        led, _term, svc = kiosk.open(flow=S, points=desk)
        now = kiosk.clock.mono_ms()
        for ev in (flow.OpenPoints(now_ms=now), flow.Tap(now_ms=now, donor=token(1), family="suica", balance_yen=500),
                   flow.ChoosePoints(now_ms=now, points=10), flow.ChoosePointsProject(now_ms=now, project="kodomo"),
                   flow.ConfirmPoints(now_ms=now)):
            svc.handle(ev)
        [spent] = entries_of(led, "points_spent")
        assert spent.data["pool"] == "bank"  # the pool of Tokyo's day; not the one that ended on UTC's day
        pools = [{"id": p.id, "sponsor": p.sponsor, "yen_per_point": 10, "areas": [], "start": p.start,
                  "end": p.end, "allocations": {KIOSK_ID: 500}} for p in (ended, one_day)]
        ctx = policy.Context(kiosk_id=KIOSK_ID, received_ms=kiosk.clock.wall + 60_000,
                             config={"pools": pools, "projects": [{"id": "kodomo", "area": "children"}]})
        assert policy.violation(spent.obj, ctx) is None  # the portal agrees: nothing quarantined
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_an_unreachable_portal_leaves_nothing_to_spend(kiosk):
    def ask(_t, _spent):  # noqa: ANN001, ANN202
        raise OSError("portal unreachable and no last word")

    desk = PointsDesk(ask=ask, last_word=lambda t: 0, pools=lambda: [], areas={})
    _led, _term, svc = kiosk.open(flow=S, points=desk)
    now = kiosk.clock.mono_ms()
    svc.handle(flow.OpenPoints(now_ms=now))
    svc.handle(flow.Tap(now_ms=now, donor=token(1), family="suica", balance_yen=5000))
    screen = svc.screen
    assert isinstance(screen, flow.PointsScreen) and screen.spendable == 0 and screen.presets == ()
    svc.handle(flow.ChoosePoints(now_ms=now, points=10))
    svc.handle(flow.ConfirmPoints(now_ms=now))
    assert svc.screen.phase == "choose"  # nothing to confirm: no effect was asked for


def test_the_loop_and_the_thank_you_offer_use_your_points_only_where_the_exchange_is_on():
    import pygame

    from kiosk.ui.screens import ScreenContext, actions, render

    pygame.font.init()
    surface = pygame.Surface((1280, 720))
    for on in (True, False):
        for data in (flow.AttractScreen("kodomo", 100, True, "ja", points_exchange=on),
                     flow.ThanksScreen("kodomo", 500, 1000, 5, 17, "ABCD", 1, "ja", points_exchange=on)):
            targets = render(data, surface, 0, ctx=ScreenContext())
            hits = [t for t in targets if t.action == "points_open"]
            assert len(hits) == (1 if on else 0), data
            if on:
                ev = actions.touch(targets, hits[0].rect.center, 5)
                assert isinstance(ev, flow.OpenPoints)
                state, _ = flow.step(flow.initial(S, 0), ev, S)
                assert state.name == "points"
    # The flow turns the button on from its settings.
    assert flow.screen_for(flow.initial(S, 0), S).points_exchange
    assert not flow.screen_for(flow.initial(settings(), 0), settings()).points_exchange

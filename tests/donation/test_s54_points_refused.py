"""A refused points exchange does not lead straight back to the same refusal, and the choose screen explains why the
card's balance is more than it may spend here (docs/points.md, "At the kiosk").

Before, a refusal because the project's sponsor money here was used up (``refused="pool"``) left that project chosen
and "Give 50 pt" live: the next tap sent the same exchange and got the same refusal. Now the project is unchosen and
not offered again for that many points in this visit; fewer points, or another project, can still be chosen. A
refusal of the card's points looks the card up again (the amount unchosen, the project kept); one of the desk
("unavailable") keeps the choice, so trying again later is one tap.

The choose screen showed 「このキオスクで使えるポイント：85」 and 「ポータルでの残高：120 ポイント」 with nothing on why
35 points were missing. Now it says, in one plain line, where the other 35 are.

The flow is pure: the events are fed to ``flow.step`` and the screens drawn from ``flow.screen_for`` on real pygame
surfaces.
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, given  # noqa: E402
from hypothesis import settings as hsettings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kiosk.donation import flow  # noqa: E402
from kiosk.ui import widgets as ui  # noqa: E402
from kiosk.ui.screens import chrome, points, render  # noqa: E402
from tests.app.app_samples import CTX, backdrop  # noqa: E402
from tests.donation.conftest import PROJECTS, settings, token  # noqa: E402

S = settings(points_exchange=True, points_presets=(10, 50, 100), choose_amount_idle_ms=60_000,
             tap_card_idle_ms=60_000)


def _choose(s: flow.FlowSettings = S, spendable: int = 85, balance: int | None = 120) -> flow.FlowState:
    state = flow.initial(s, 0)
    for ev in (flow.OpenPoints(now_ms=1), flow.Tap(now_ms=2, donor=token(1), family="suica", balance_yen=5000),
               flow.PointsLooked(now_ms=3, donor_hex=token(1).hex, spendable=spendable, balance=balance)):
        state, _ = flow.step(state, ev, s)
    assert state.points is not None and state.points.phase == "choose"
    return state


def _refused_after_give(s: flow.FlowSettings, project: str, pts: int, reason: str,
                        state: flow.FlowState | None = None) -> tuple[flow.FlowState, flow.Effects]:
    state = state or _choose(s)
    for ev in (flow.ChoosePoints(now_ms=4, points=pts), flow.ChoosePointsProject(now_ms=5, project=project)):
        state, _ = flow.step(state, ev, s)
    state, effects = flow.step(state, flow.ConfirmPoints(now_ms=6), s)
    assert effects == (flow.SpendPoints(token(1), pts, project),)
    return flow.step(state, flow.PointsRefused(now_ms=7, reason=reason), s)  # type: ignore[arg-type]


def test_a_pool_refusal_unchooses_the_project_and_give_cannot_repeat_it() -> None:
    state, effects = _refused_after_give(S, "kodomo", 50, "pool")
    assert effects == ()
    screen = flow.screen_for(state, S)
    assert isinstance(screen, flow.PointsScreen) and screen.refused == "pool"
    assert screen.project is None and "kodomo" not in screen.projects, "the refused project is not offered for 50"
    assert screen.points == 50 and set(screen.projects) == {"midori", "machi"}
    # Give does nothing: no project is chosen, and choosing the refused one again for 50 is not accepted.
    for ev in (flow.ConfirmPoints(now_ms=8), flow.ChoosePointsProject(now_ms=9, project="kodomo"),
               flow.ConfirmPoints(now_ms=10)):
        state, effects = flow.step(state, ev, S)
        assert effects == ()
    assert state.points is not None and state.points.project is None
    # Another project takes the 50 points.
    state, _ = flow.step(state, flow.ChoosePointsProject(now_ms=11, project="midori"), S)
    _, effects = flow.step(state, flow.ConfirmPoints(now_ms=12), S)
    assert effects == (flow.SpendPoints(token(1), 50, "midori"),)
    # Fewer points, as the refusal says: the refused project is offered again for them.
    state, _ = flow.step(state, flow.ChoosePoints(now_ms=13, points=10), S)
    screen = flow.screen_for(state, S)
    assert isinstance(screen, flow.PointsScreen) and "kodomo" in screen.projects and screen.refused is None
    state, _ = flow.step(state, flow.ChoosePointsProject(now_ms=14, project="kodomo"), S)
    _, effects = flow.step(state, flow.ConfirmPoints(now_ms=15), S)
    assert effects == (flow.SpendPoints(token(1), 10, "kodomo"),)


def test_a_pool_refusal_is_remembered_when_another_card_taps_in_the_same_visit() -> None:
    state, _ = _refused_after_give(S, "kodomo", 50, "pool")
    for ev in (flow.Tap(now_ms=8, donor=token(2), family="suica", balance_yen=0),
               flow.PointsLooked(now_ms=9, donor_hex=token(2).hex, spendable=300, balance=300),
               flow.ChoosePoints(now_ms=10, points=100)):
        state, _ = flow.step(state, ev, S)
    screen = flow.screen_for(state, S)
    assert isinstance(screen, flow.PointsScreen) and "kodomo" not in screen.projects
    # A new visit (back to the loop) starts afresh: the app reads the pools' room again then.
    state, _ = flow.step(state, flow.Cancel(now_ms=11), S)
    state, _ = flow.step(state, flow.OpenPoints(now_ms=12), S)
    assert state.points is not None and state.points.pool_refused == ()


def test_when_every_project_is_refused_the_screen_says_the_gifts_here_are_used_up() -> None:
    s = settings(projects=("kodomo",), points_exchange=True, points_presets=(10, 50))
    state, _ = _refused_after_give(s, "kodomo", 10, "pool", _choose(s))
    screen = flow.screen_for(state, s)
    assert isinstance(screen, flow.PointsScreen)
    assert screen.presets == () and screen.points is None and screen.refused == "pool_empty"
    for ev in (flow.ChoosePoints(now_ms=8, points=10), flow.ChoosePointsProject(now_ms=9, project="kodomo"),
               flow.ConfirmPoints(now_ms=10)):
        state, effects = flow.step(state, ev, s)
        assert effects == ()


def test_with_the_room_known_the_refused_amount_is_unchosen_when_no_project_can_take_it() -> None:
    s = settings(points_exchange=True, points_presets=(10, 50, 100),
                 points_room=(("kodomo", 100), ("midori", 20), ("machi", 0)))
    state, _ = _refused_after_give(s, "kodomo", 50, "pool", _choose(s))
    screen = flow.screen_for(state, s)
    assert isinstance(screen, flow.PointsScreen)
    assert screen.points is None and screen.presets == (10,) and screen.project is None
    assert set(screen.projects) == {"kodomo", "midori"}, "10 points: kodomo may still take them"


def test_a_card_refusal_keeps_the_project_and_looks_the_card_up_again() -> None:
    state, effects = _refused_after_give(S, "kodomo", 50, "card")
    assert effects == (flow.LookupPoints(token(1)),)
    assert state.points is not None and state.points.phase == "asking" and state.points.points is None
    state, _ = flow.step(state, flow.PointsLooked(now_ms=8, donor_hex=token(1).hex, spendable=20, balance=120), S)
    screen = flow.screen_for(state, S)
    assert isinstance(screen, flow.PointsScreen)
    assert (screen.project, screen.points, screen.presets, screen.refused) == ("kodomo", None, (10,), "card")


def test_an_unavailable_refusal_keeps_the_choice_for_a_later_try() -> None:
    state, effects = _refused_after_give(S, "kodomo", 50, "unavailable")
    assert effects == ()
    screen = flow.screen_for(state, S)
    assert isinstance(screen, flow.PointsScreen) and (screen.project, screen.points) == ("kodomo", 50)
    _, effects = flow.step(state, flow.ConfirmPoints(now_ms=8), S)
    assert effects == (flow.SpendPoints(token(1), 50, "kodomo"),)


ACTIONS = st.one_of(
    st.tuples(st.just("project"), st.sampled_from(PROJECTS)),
    st.tuples(st.just("points"), st.sampled_from([10, 50, 100])),
    st.tuples(st.just("confirm")),
    st.tuples(st.just("refused"), st.sampled_from(["card", "pool", "points", "unavailable"])),
    st.tuples(st.just("looked"), st.integers(0, 200)),
    st.tuples(st.just("tap")),
)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ACTIONS, min_size=1, max_size=40),
       st.one_of(st.none(), st.tuples(*(st.integers(0, 120) for _ in PROJECTS))))
def test_no_exchange_is_sent_again_for_a_project_and_amount_its_pools_refused(steps, room) -> None:  # noqa: ANN001
    s = settings(points_exchange=True, points_presets=(10, 50, 100),
                 points_room=None if room is None else tuple(zip(PROJECTS, room, strict=True)))
    state = _choose(s, spendable=150)
    refused: dict[str, int] = {}  # the fewest points the pools refused per project, this visit
    sent: flow.SpendPoints | None = None
    for act in steps:
        if act[0] == "project":
            ev: flow.Event = flow.ChoosePointsProject(now_ms=10, project=act[1])
        elif act[0] == "points":
            ev = flow.ChoosePoints(now_ms=10, points=act[1])
        elif act[0] == "confirm":
            ev = flow.ConfirmPoints(now_ms=10)
        elif act[0] == "refused":
            ev = flow.PointsRefused(now_ms=10, reason=act[1])
        elif act[0] == "looked":
            ev = flow.PointsLooked(now_ms=10, donor_hex=token(1).hex, spendable=act[1], balance=200)
        else:
            ev = flow.Tap(now_ms=10, donor=token(1), family="suica", balance_yen=0)
        before = state
        state, effects = flow.step(state, ev, s)
        for eff in effects:
            if isinstance(eff, flow.SpendPoints):
                assert eff.points < refused.get(eff.project, eff.points + 1), (eff, refused)
                sent = eff
        if isinstance(ev, flow.PointsRefused) and before.points is not None and before.points.phase == "spending":
            assert sent is not None
            p = state.points
            assert p is not None
            if ev.reason == "pool":
                refused[sent.project] = min(sent.points, refused.get(sent.project, sent.points))
                assert p.project is None, "the refused project stays chosen"
            elif ev.reason == "card":
                assert p.phase == "asking" and p.points is None and p.project == sent.project
            else:
                assert p.project == sent.project
        screen = flow.screen_for(state, s)
        assert isinstance(screen, flow.PointsScreen)
        assert screen.project is None or screen.project in screen.projects
        need = screen.points or (screen.presets[0] if screen.presets else 1)
        assert all(need < refused[pid] for pid in screen.projects if pid in refused), "a refused project offered"


# --- the screens drawn --------------------------------------------------------------------------------------------

SIZES = [(1280, 720), (1920, 1080)]
SAMPLE_PROJECTS = tuple(CTX.projects)


@pytest.fixture(autouse=True, scope="module")
def _pg():  # noqa: ANN202
    pygame.font.init()
    yield


def _draw(screen: flow.PointsScreen, size: tuple[int, int]) -> tuple[list[ui.DrawnText], list[ui.Target]]:
    surface = backdrop(size)
    with ui.measure_boxes() as boxes:
        targets = render(screen, surface, 0, ctx=CTX)
    return boxes, targets


@pytest.mark.parametrize("size", SIZES, ids=["720p", "1080p"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_after_a_pool_refusal_the_screen_has_no_give_button_and_no_refused_project(size, lang) -> None:  # noqa: ANN001
    s = settings(projects=SAMPLE_PROJECTS, points_exchange=True, points_presets=(10, 50), language=lang)
    state, _ = _refused_after_give(s, "kodomo-shokudo", 50, "pool", _choose(s))
    screen = flow.screen_for(state, s)
    assert isinstance(screen, flow.PointsScreen)
    boxes, targets = _draw(screen, size)
    assert not [t for t in targets if t.action == points.CONFIRM], "give is live after the refusal"
    offered = {t.value for t in targets if t.action == points.PROJECT}
    assert "kodomo-shokudo" not in offered and offered, offered
    _ = chrome.tr(lang)
    assert _(points.REFUSALS["pool"]) in {b.text for b in boxes} or any(
        b.text and b.text in _(points.REFUSALS["pool"]) for b in boxes)


@pytest.mark.parametrize("size", SIZES, ids=["720p", "1080p"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_choose_screen_says_where_the_rest_of_the_balance_is(size, lang) -> None:  # noqa: ANN001
    screen = flow.PointsScreen("choose", 85, 120, SAMPLE_PROJECTS, "kodomo-shokudo", 50, (10, 50), 0, "", None, lang)
    boxes, targets = _draw(screen, size)
    text = "".join(b.text for b in boxes)
    assert "35" in text, "the 35 points not spendable here are accounted for"
    assert "120" not in text, "no second figure left unexplained"
    if lang == "ja":
        assert "残りの 35 ポイントは" in text and "ほかのキオスク" in text
    else:
        assert "The other 35 points are at other kiosks" in text.replace("\n", " ")
    w, h = size
    line = [b for b in boxes if "35" in b.text or "キオスクの分" in b.text or "just used" in b.text]
    assert line
    for b in boxes:  # large, on the screen, and under no button
        assert b.size >= round(0.03 * h), b
        assert pygame.Rect(0, 0, w, h).contains(b.rect), b
    for b in line:
        assert not any(t.rect.colliderect(b.rect) for t in targets), b
    # The same balance as here: nothing else to explain, one figure.
    same = flow.PointsScreen("choose", 85, 85, SAMPLE_PROJECTS, None, None, (10, 50), 0, "", None, lang)
    boxes, _ = _draw(same, size)
    assert not any("キオスクの分" in b.text or "other kiosks" in b.text for b in boxes)

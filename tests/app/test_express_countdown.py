"""Issue #15: the Express window is shown. A tap with no amount chosen waits ``[flow] express_cancel_ms`` with the
card on the reader before it is charged (docs/donation.md); the charging screen shows that window as a bar that
runs out, "カードをそのままに" and やめる. The bar is read from the flow's deadline and the clock the screen is
drawn at, never from a timer of the screen's own, so it reaches zero exactly when the flow charges.

Here the pure flow and the real renderer at several moments of the window; through a real App:
tests/app/test_express_window.py."""

from __future__ import annotations

import pygame
import pytest
from app_samples import CTX, backdrop

from kiosk.donation import flow
from kiosk.donation.flow import Cancel, Charge, IntentCommitted, RecordFailure, Tap, Tick, ToggleLanguage
from kiosk.ui import widgets as ui
from kiosk.ui.screens import charging, chrome, render
from kiosk.ui.widgets import THEME
from tests.donation.conftest import settings, token

WINDOW = 1_000
S = settings(express_cancel_ms=WINDOW)
T0 = 50_000  # the tap
SIZES = [(1280, 720), (1920, 1080)]


@pytest.fixture(autouse=True, scope="module")
def _pg():
    pygame.font.init()
    yield


def express_tap(lang_toggle_at: int | None = None) -> tuple[flow.FlowState, list[flow.Effect]]:
    """A tap on the loop at T0; its intent committed 40 ms later (the window is then on hold)."""
    state = flow.initial(S, 0)
    state, _ = flow.step(state, flow.ProjectShown(now_ms=T0 - 5_000, project=S.projects[0]), S)
    state, effects = flow.step(state, Tap(now_ms=T0, donor=token(1), family="suica", balance_yen=5000,
                                          given_today_yen=0), S)
    (commit,) = effects
    state, effects = flow.step(state, IntentCommitted(now_ms=T0 + 40, attempt=commit.attempt, intent_seq=7,
                                                      idem="k7"), S)
    assert effects == () and state.donation.phase == "hold"
    if lang_toggle_at is not None:
        state, _ = flow.step(state, ToggleLanguage(now_ms=lang_toggle_at), S)
    return state, list(effects)


def bar_fill(surface: pygame.Surface) -> float:
    """The filled share of the countdown bar, measured on the pixels of its middle row."""
    bar = charging.countdown_rect(surface)
    row = [surface.get_at((x, bar.centery))[:3] for x in range(bar.left, bar.right)]
    return sum(1 for c in row if c == THEME.accent) / bar.width


MOMENTS = [(0, 1.0), (250, 0.75), (500, 0.5), (900, 0.1), (999, 0.001), (1_000, 0.0), (1_300, 0.0)]


@pytest.mark.parametrize("size", SIZES, ids=["720p", "1080p"])
def test_the_bar_runs_out_with_the_flow_deadline(size):
    state, _ = express_tap(lang_toggle_at=T0 + 300)  # a language switch does not restart the window
    screen = flow.screen_for(state, S)
    assert screen.can_withdraw and (screen.withdraw_from_ms, screen.withdraw_until_ms) == (T0, T0 + WINDOW)
    for dt, left in MOMENTS:
        assert charging.countdown_fraction(screen, T0 + dt) == pytest.approx(left), dt
        s = backdrop(size)
        with ui.measure_text() as drawn:
            targets = render(screen, s, T0 + dt, ctx=CTX)
        assert bar_fill(s) == pytest.approx(left, abs=0.01), dt
        assert any(t.action == chrome.CANCEL for t in targets), dt  # やめる for the whole window
        assert min(drawn)[0] >= round(0.03 * size[1])  # the readability floor (test_screens_readable)


def test_the_screen_keeps_no_clock_of_its_own():
    """The same screen data drawn at the same moment draws the same bar, whenever and however often it is drawn."""
    state, _ = express_tap()
    screen = flow.screen_for(state, S)
    fills = []
    for now in (T0 + 600, T0 + 200, T0 + 600):
        s = backdrop()
        render(screen, s, now, ctx=CTX)
        fills.append(bar_fill(s))
    assert fills[0] == fills[2] == pytest.approx(0.4, abs=0.01) and fills[1] == pytest.approx(0.8, abs=0.01)


def test_the_flow_charges_once_when_the_bar_is_empty():
    state, _ = express_tap()
    charges: list[Charge] = []
    for dt in (100, 250, 500, 750, 999, 1_000, 1_250, 1_500, 3_000):
        before = flow.screen_for(state, S)
        state, effects = flow.step(state, Tick(now_ms=T0 + dt), S)
        new = [e for e in effects if isinstance(e, Charge)]
        if new:  # the charge goes out only once the bar the donor saw has run out
            assert charging.countdown_fraction(before, T0 + dt) == 0.0, dt
        else:
            assert dt < WINDOW or charges, dt
        charges += new
    assert len(charges) == 1 and (charges[0].intent_seq, charges[0].idem) == (7, "k7")
    after = flow.screen_for(state, S)
    assert not after.can_withdraw and charging.countdown_fraction(after, T0 + 3_000) is None


@pytest.mark.parametrize("how", ["cancel", "lift"])
def test_stopped_in_the_window_it_is_never_charged_and_the_bar_goes(how):
    state, _ = express_tap()
    ev = Cancel(now_ms=T0 + 600) if how == "cancel" else flow.CardLifted(now_ms=T0 + 600)
    state, effects = flow.step(state, ev, S)
    assert [type(e) for e in effects] == [RecordFailure] and effects[0].reason == flow.WITHDRAWN
    screen = flow.screen_for(state, S)
    assert not screen.can_withdraw and charging.countdown_fraction(screen, T0 + 700) is None
    s = backdrop()
    targets = render(screen, s, T0 + 700, ctx=CTX)
    assert not any(t.action == chrome.CANCEL for t in targets)
    for dt in (1_000, 1_001, 2_000, 10_000):
        state, effects = flow.step(state, Tick(now_ms=T0 + dt), S)
        assert not any(isinstance(e, Charge) for e in effects), dt

"""The my-page QR screen's way out and its countdown, drawn by the real renderer (goldens: my_page_qr, my_page_tap).

A code left on the lobby's public screen is the next visitor's to scan, so the screen says how long it stays (a
countdown read from the flow's deadline and the clock it is drawn at) and offers a large 終わる / Done button
that goes back to the loop."""

from __future__ import annotations

import pygame
import pytest
from app_samples import CTX, backdrop, my_page_request

from kiosk.donation import flow
from kiosk.ui.screens import actions, chrome, mypage, render
from kiosk.ui.widgets import THEME
from tests.donation.conftest import settings, token

SIZES = [(1280, 720), (1920, 1080)]
S = settings(my_page_ms=60_000)


@pytest.fixture(autouse=True, scope="module")
def _pg():
    pygame.font.init()
    yield


def _code_state() -> flow.FlowState:
    st = flow.replace(flow.initial(S, 0), name="my_page", since_ms=1_000,
                      my_page=flow.MyPageInfo(my_page_request(), token(1)))
    return st


def _bar_fill(surface: pygame.Surface, top: int) -> float:
    bar = mypage.countdown_rect(surface)
    row = [surface.get_at((x, top + bar.height // 2))[:3] for x in range(bar.left, bar.right)]
    return sum(1 for c in row if c == THEME.accent) / bar.width


def _bar_top(surface: pygame.Surface) -> int:
    """The countdown bar's row: the first row, below the heading, where the bar's left end is drawn."""
    bar = mypage.countdown_rect(surface)
    x = bar.left + bar.height  # inside the rounded end
    for y in range(surface.get_height() // 4, surface.get_height() * 3 // 4):
        if surface.get_at((x, y))[:3] in (THEME.accent, (60, 70, 90)):
            return y
    raise AssertionError("no countdown bar")


@pytest.mark.parametrize("size", SIZES, ids=["720p", "1080p"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_large_done_button_takes_the_code_off_the_screen(size, lang):
    st = flow.replace(_code_state(), lang=lang)
    scr = flow.screen_for(st, S)
    s = backdrop(size)
    targets = render(scr, s, 1_000, ctx=CTX)
    (done,) = [t for t in targets if t.action == chrome.CANCEL]
    w, h = size
    assert done.rect.width >= w * 0.45 and done.rect.height >= 1.5 * THEME.min_target(s) - 1, done.rect
    assert done.rect.bottom <= h and done.rect.right < w * 0.62, "beside the code, never over it"
    ev = actions.touch(targets, done.rect.center, 2_000)
    assert isinstance(ev, flow.Cancel)
    after, _ = flow.step(st, ev, S)
    assert after.name == "attract" and after.my_page is None
    # While waiting for the tap, the same place closes too.
    s2 = backdrop(size)
    waiting = render(flow.MyPageScreen(None, 60, lang), s2, 0, ctx=CTX)
    assert [t.rect for t in waiting if t.action == chrome.CANCEL] == [done.rect]


@pytest.mark.parametrize("size", SIZES, ids=["720p", "1080p"])
def test_the_countdown_runs_out_with_the_flow_deadline(size):
    scr = flow.screen_for(_code_state(), S)
    assert scr.until_ms == 61_000
    assert [mypage.seconds_left(scr, t) for t in (1_000, 30_500, 59_999, 60_001, 61_000, 70_000)] == \
        [60, 31, 2, 1, 0, 0]
    fills = []
    for now in (1_000, 31_000, 55_000):
        s = backdrop(size)
        render(scr, s, now, ctx=CTX)
        fills.append(_bar_fill(s, _bar_top(s)))
    assert fills[0] > 0.97 and 0.45 < fills[1] < 0.55 and fills[2] < 0.15, fills

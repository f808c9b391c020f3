"""The donation screens, drawn over the movie loop: one module per screen, one entry point.

::

    from kiosk.ui.screens import ScreenContext, render
    ctx = ScreenContext.from_config(cfg, totals_yen=..., receipt_base_url=None)
    targets = render(service.screen, surface, now_ms, ctx=ctx)   # draw; returns touch targets
    event = actions.touch(targets, pos, now_ms)                   # a touch -> a flow event

Each screen is a pure function of the flow's screen data (``kiosk.donation.flow.screen_for``),
the context and ``now_ms`` (animation only): the same inputs draw the same
pixels, which is what the golden-image tests rely on.
"""

from __future__ import annotations

from collections.abc import Callable

import pygame

from kiosk.donation import flow
from kiosk.ui import widgets as ui
from kiosk.ui.screens import actions, amount, attract, charging, chrome, error, mypage, picker, thanks
from kiosk.ui.screens import points as points_screen  # use your points (issue #17)
from kiosk.ui.screens.context import DEFAULT_RECEIPT_BASE, ProjectInfo, ScreenContext
from kiosk.ui.widgets import THEME, Target, Theme

__all__ = ["COVERS_MOVIE", "DEFAULT_RECEIPT_BASE", "RENDERERS", "ProjectInfo", "ScreenContext", "actions",
           "card_read_mark", "chrome", "keeps_reader_clear", "render"]

Renderer = Callable[..., list[Target]]

RENDERERS: dict[str, Renderer] = {
    "attract": attract.render,
    "choose_amount": amount.render_choose,
    "choose_project": picker.render,
    "tap_card": amount.render_tap,
    "charging": charging.render,
    "thanks": thanks.render,
    "error": error.render,
    "my_page": mypage.render,
    "points": points_screen.render,
}
"""Screen name (``flow.Screen.screen``) → its renderer."""

COVERS_MOVIE: frozenset[str] = frozenset(RENDERERS) - {"attract"}
"""Screens that begin with the opaque ``chrome.scrim``: the movie frame under them is never seen, so the render
loop need not draw it (issue #16: a 1080p frame copy less on the tap-to-thank-you frame).
``tests/app/test_tap_path.py`` checks each draws the same pixels over any movie."""


def render(data: flow.Screen, surface: pygame.Surface, now_ms: int, theme: Theme = THEME, *,
           ctx: ScreenContext | None = None) -> list[Target]:
    """Draw ``data``'s screen over whatever ``surface`` holds (the movie frame); returns its touch targets,
    last drawn on top (see :func:`kiosk.ui.widgets.hit`).

    On a panel narrower than 3:2 (portrait signage, 4:3) the screen is laid out in a 3:2 area at the bottom
    (:func:`kiosk.ui.widgets.layout_rect`); a screen that covers the movie covers the rest of the panel too."""
    area = ui.layout_rect(surface.get_size())
    if area.size == surface.get_size():
        return RENDERERS[data.screen](data, surface, now_ms, ctx or ScreenContext(), theme)
    if data.screen in COVERS_MOVIE:
        chrome.scrim(surface, theme)
    targets = RENDERERS[data.screen](data, surface.subsurface(area), now_ms, ctx or ScreenContext(), theme)
    return ui.on_screen(targets, area, surface.get_rect())


def keeps_reader_clear(data: flow.Screen) -> bool:
    """Whether ``data``'s screen waits for the card on our reader, or holds it there, and keeps the reader
    pointer's place (``chrome.reader_pointer_rect``) clear of its text and buttons at every ``[reader] position``:
    the loop, the tap-your-card screen and the charging screen. The green "card read" check is drawn only over
    these. A screen that answers the card (the thank-you with its receipt code and QR, an error, my page, points)
    is itself the answer, and the check would hide what it says; the picker and the amounts do not wait for it."""
    if isinstance(data, flow.AttractScreen):
        return data.reader_online
    if isinstance(data, (flow.TapCardScreen, flow.ChargingScreen)):
        return not data.on_terminal  # on a separate terminal the card goes there, and these screens use the place
    return False


def card_read_mark(surface: pygame.Surface, data: flow.Screen, position: str, now_ms: int,
                   theme: Theme = THEME) -> pygame.Rect | None:
    """The green "card read" check at the reader (the visual half of the gate's "pi"), drawn over ``data``'s
    screen if it keeps the place clear (:func:`keeps_reader_clear`); returns where, or ``None`` when not drawn."""
    if not keeps_reader_clear(data):
        return None
    return chrome.reader_pointer(surface, position, data.lang, now_ms, theme, detected=True)

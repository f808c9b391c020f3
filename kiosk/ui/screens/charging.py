"""While the intent is committed, the terminal charges and the donation is committed: keep the card still.

No buttons but the language toggle: the flow ignores cancels and taps here, so
offering them would only suggest a second try (the double-charge complaint).
"""

from __future__ import annotations

import math

import pygame

from kiosk.donation.flow import ChargingScreen
from kiosk.ui.i18n import yen
from kiosk.ui.screens import chrome
from kiosk.ui.screens.context import ScreenContext
from kiosk.ui.widgets import THEME, Target, Theme


def spinner(surface: pygame.Surface, center: tuple[int, int], radius: int, now_ms: int, theme: Theme = THEME) -> None:
    """Eight dots chasing round once a second: visibly alive even when the terminal is slow."""
    for i in range(8):
        a = 2 * math.pi * i / 8
        phase = ((now_ms / 1000.0) * 8 - i) % 8
        shade = max(0.25, 1.0 - phase / 8)
        color = tuple(int(c * shade) for c in theme.accent)
        pos = (center[0] + int(radius * math.cos(a)), center[1] + int(radius * math.sin(a)))
        pygame.draw.circle(surface, color, pos, max(2, radius // 5))


def render(data: ChargingScreen, surface: pygame.Surface, now_ms: int, ctx: ScreenContext,
           theme: Theme = THEME) -> list[Target]:
    _ = chrome.tr(data.lang)
    chrome.scrim(surface, theme, alpha=235)
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    spinner(surface, (w // 2, int(h * 0.3)), px(0.09), now_ms, theme)
    box = pygame.Rect(int(w * 0.1), int(h * 0.46), int(w * 0.8), px(0.2))
    chrome.fit_text(surface, _("Processing… please keep your card still"), box, px(0.07), theme.text, bold=True,
                    anchor="midtop")
    p = ctx.project(data.project)
    line = f"{yen(data.amount_yen)}  {p.name(data.lang)}"
    box = pygame.Rect(int(w * 0.1), int(h * 0.7), int(w * 0.8), px(0.15))
    chrome.fit_text(surface, line, box, px(0.05), theme.accent, bold=True, anchor="midtop")
    return [chrome.lang_toggle(surface, data.lang, theme)]

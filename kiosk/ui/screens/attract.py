"""The attract loop's overlay: which project is on screen, how far it is, and that one tap gives.

Most of the screen stays movie: one translucent band along the bottom. The
whole screen is a touch target (a touch opens the amount choice for the
project on screen); the language toggle sits on top of it.
"""

from __future__ import annotations

import pygame

from kiosk.donation.flow import AttractScreen
from kiosk.ui import widgets as ui
from kiosk.ui.i18n import yen
from kiosk.ui.screens import chrome
from kiosk.ui.screens.context import ScreenContext
from kiosk.ui.widgets import THEME, Target, Theme


def render(data: AttractScreen, surface: pygame.Surface, now_ms: int, ctx: ScreenContext,
           theme: Theme = THEME) -> list[Target]:
    _ = chrome.tr(data.lang)
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    targets = [Target(surface.get_rect(), chrome.TOUCH, data.project)]

    band = pygame.Rect(0, int(h * 0.56), w, h - int(h * 0.56))
    chrome.shade(surface, band, theme)
    margin = px(0.04)
    left = pygame.Rect(margin, band.top + px(0.03), int(w * 0.6) - margin, band.height - px(0.06))
    right = pygame.Rect(int(w * 0.63), band.top + px(0.03), w - int(w * 0.63) - margin, band.height - px(0.06))

    if data.project is not None:
        p = ctx.project(data.project)
        chip = chrome.area_chip(surface, p.area, data.lang, left.topleft, theme)
        if p.group:
            ui.text(surface, p.group, (chip.right + px(0.02), chip.centery), px(0.038), theme.muted, anchor="midleft")
        title_box = pygame.Rect(left.left, chip.bottom + px(0.012), left.width, px(0.17))
        chrome.fit_text(surface, p.name(data.lang), title_box, px(0.075), theme.text, bold=True)
        bar = pygame.Rect(left.left, left.bottom - px(0.095), left.width, px(0.095))
        chrome.progress_block(surface, ctx.total(p.id), p.goal_yen, data.lang, bar, theme)

    # The call to action: what one tap does, and the way to choose another amount.
    pygame.draw.line(surface, theme.muted, (right.left - px(0.015), right.top), (right.left - px(0.015), right.bottom),
                     max(1, px(0.004)))
    call = pygame.Rect(right.left, right.top, right.width, px(0.13))
    c = chrome.fit_text(surface, _("Tap your IC card to give"), call, px(0.05), theme.text, bold=True)
    amount = ui.text(surface, yen(data.default_yen), (right.left, c.bottom + px(0.005)), px(0.1), theme.accent,
                     bold=True)
    hint = pygame.Rect(right.left, amount.bottom + px(0.005), right.width, right.bottom - amount.bottom)
    chrome.fit_text(surface, _("Touch the screen to choose an amount"), hint, px(0.036), theme.muted)

    if not data.reader_online:
        # A tap cannot work right now: say so before anyone tries.
        strip = pygame.Rect(0, 0, w, px(0.17))
        pygame.draw.rect(surface, theme.bad, strip)
        ui.text(surface, _("Card reader is offline"), (margin, px(0.02)), px(0.055), theme.text, bold=True)
        ui.text(surface, _("Please ask the center staff for help."), (margin, px(0.095)), px(0.04), theme.text)

    targets.append(chrome.lang_toggle(surface, data.lang, theme))
    return targets

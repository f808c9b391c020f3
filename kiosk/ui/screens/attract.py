"""The attract loop's overlay: which project is on screen, how far it is, and that one tap gives.

Most of the screen stays movie: one translucent band along the bottom. The
whole screen is a touch target (a touch opens the amount choice for the
project on screen); the language toggle sits on top of it.
"""

from __future__ import annotations

import msgspec
import pygame

from kiosk.donation.flow import AttractScreen
from kiosk.ui import widgets as ui
from kiosk.ui.i18n import yen
from kiosk.ui.screens import chrome
from kiosk.ui.screens.context import ScreenContext
from kiosk.ui.widgets import THEME, Target, Theme


class Line(msgspec.Struct, frozen=True):
    msgid: str
    size: float
    box: float
    bold: bool = False
    accent: bool = False


def call_to_action(data: AttractScreen) -> list[Line]:
    """What the band invites the citizen to do. With the reader offline a tap cannot work, so the band does
    not invite one (issue #15 item 11: a red "reader offline" strip above "tap your card" contradicted itself)."""
    if not data.reader_online:
        return [Line("Donations cannot be taken right now", 0.05, 0.13, bold=True),
                Line("Please ask the center staff for help.", 0.042, 0.12)]
    return [Line("Tap your IC card to give", 0.05, 0.13, bold=True), Line("{amount}", 0.1, 0.12, accent=True),
            Line("Touch the screen to choose an amount", 0.042, 0.12)]


def _picker_button(surface: pygame.Surface, lang: str, theme: Theme) -> Target:
    """Choose a project instead of waiting for its movie: beside the language button (the top-left corner
    belongs to the staff gesture)."""
    w = surface.get_width()
    side = theme.min_target(surface)
    pick = pygame.Rect(0, theme.px(surface, 0.03), int(w * 0.3), side)
    pick.right = w - theme.px(surface, 0.03) - max(int(w * 0.17), side * 2) - theme.px(surface, 0.03)
    return ui.button(surface, pick, chrome.tr(lang)("Choose a project"), chrome.PICKER, theme=theme,
                     size=theme.px(surface, 0.045))


def _points_button(surface: pygame.Surface, lang: str, theme: Theme) -> Target:
    """Use your points (docs/points.md): left of the project button, on the same row."""
    side = theme.min_target(surface)
    w = surface.get_width()
    rect = pygame.Rect(0, theme.px(surface, 0.03), int(w * 0.24), side)
    rect.right = w - theme.px(surface, 0.03) - max(int(w * 0.17), side * 2) - theme.px(surface, 0.03) - int(
        w * 0.3) - theme.px(surface, 0.03)
    return ui.button(surface, rect, chrome.tr(lang)("Use your points"), "points_open", theme=theme,
                     size=theme.px(surface, 0.045))


def render(data: AttractScreen, surface: pygame.Surface, now_ms: int, ctx: ScreenContext,
           theme: Theme = THEME) -> list[Target]:
    _ = chrome.tr(data.lang)
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    if ctx.slide_showing and data.reader_online:
        # An event slide: its date, place and note fill the screen, and no project is on it, so no band and
        # no gift to whichever project played last (issue #15 item 2). A touch opens the project picker.
        targets = [Target(surface.get_rect(), chrome.PICKER)]
        targets.append(_picker_button(surface, data.lang, theme))
        targets.append(chrome.lang_toggle(surface, data.lang, theme))
        return targets
    targets = [Target(surface.get_rect(), chrome.TOUCH, data.project)]

    band = pygame.Rect(0, int(h * 0.56), w, h - int(h * 0.56))
    chrome.shade(surface, band, theme, 255)  # opaque: the movie's own captions must not show through
    margin = px(0.04)
    left = pygame.Rect(margin, band.top + px(0.03), int(w * 0.6) - margin, band.height - px(0.06))
    right = pygame.Rect(int(w * 0.63), band.top + px(0.03), w - int(w * 0.63) - margin, band.height - px(0.06))

    pointer = chrome.reader_pointer_rect(surface, ctx.reader_position, data.lang, theme)
    if data.reader_online and pointer.colliderect(band):  # lay the band out around the reader pointer
        if pointer.left < w // 2 < pointer.right:  # a reader under the middle: the project keeps left of it
            left.width = min(left.width, pointer.left - px(0.02) - left.left)
            right.width -= max(0, pointer.right + px(0.02) - right.left)
            right.left = max(right.left, pointer.right + px(0.02))
        elif pointer.centerx > w // 2:
            right.width = pointer.left - px(0.02) - right.left
            if right.width < w * 0.25:  # too narrow for the invitation: give the project less room
                right.left = pointer.left - px(0.02) - int(w * 0.27)
                right.width = int(w * 0.27)
                left.width = right.left - px(0.03) - left.left
        else:
            left.width -= pointer.right + px(0.02) - left.left
            left.left = pointer.right + px(0.02)

    if data.project is not None:
        p = ctx.project(data.project)
        chip = chrome.area_chip(surface, p.area, data.lang, left.topleft, theme)
        group = p.group_name(data.lang)
        room = left.right - chip.right - px(0.02)
        size = px(0.038)
        while size > px(0.03) and ui.font(size).size(group)[0] > room:
            size -= 1
        beside = bool(group) and ui.font(size).size(group)[0] <= room
        if beside:  # one readable line beside the chip
            ui.text(surface, group, (chip.right + px(0.02), chip.centery), size, theme.muted, anchor="midleft")
        title_box = pygame.Rect(left.left, chip.bottom + px(0.012), left.width, px(0.17))
        title = chrome.fit_text(surface, p.name(data.lang), title_box, px(0.075), theme.text, bold=True)
        bar = pygame.Rect(left.left, left.bottom - px(0.095), left.width, px(0.095))
        if group and not beside:
            # Too long beside the chip (most English group names): under a one-line title, where there is room
            # above the progress bar, rather than left out (1080p golden review, issue #15).
            size = px(0.038)
            while size > px(0.03) and ui.font(size).size(group)[0] > left.width:
                size -= 1
            f = ui.font(size)
            if f.size(group)[0] <= left.width and title.bottom + px(0.005) + f.get_height() <= bar.top:
                ui.text(surface, group, (left.left, title.bottom + px(0.005)), size, theme.muted)
        chrome.progress_block(surface, ctx.total(p.id), p.goal_yen, data.lang, bar, theme)

    pygame.draw.line(surface, theme.muted, (right.left - px(0.015), right.top), (right.left - px(0.015), right.bottom),
                     max(1, px(0.004)))
    for line in call_to_action(data):
        right.top = chrome.fit_text(surface, _(line.msgid).format(amount=yen(data.default_yen)),
                                    pygame.Rect(right.left, right.top, right.width, px(line.box)), px(line.size),
                                    theme.accent if line.accent else (theme.text if line.bold else theme.muted),
                                    bold=line.bold or line.accent).bottom + px(0.005)
    if data.reader_online:
        chrome.reader_pointer(surface, ctx.reader_position, data.lang, now_ms, theme)
        targets.append(_picker_button(surface, data.lang, theme))
        if data.points_exchange:
            targets.append(_points_button(surface, data.lang, theme))
    else:
        # A tap cannot work right now: say so before anyone tries.
        strip = pygame.Rect(0, 0, w, px(0.17))
        pygame.draw.rect(surface, theme.bad, strip)
        ui.text(surface, _("Card reader is offline"), (margin, px(0.02)), px(0.055), theme.text, bold=True)
        ui.text(surface, _("Please ask the center staff for help."), (margin, px(0.095)), px(0.042), theme.text)

    targets.append(chrome.lang_toggle(surface, data.lang, theme))
    return targets

"""Choose an amount, then tap the card: the two steps after a touch on the loop.

Both keep the amount buttons on screen (a change of mind on the tap step is
allowed by the flow), both have a Cancel back to the loop, and both remind
that a tap right away gives the default / chosen amount.
"""

from __future__ import annotations

import pygame

from kiosk.donation.flow import ChooseAmountScreen, TapCardScreen
from kiosk.ui import widgets as ui
from kiosk.ui.i18n import yen
from kiosk.ui.screens import chrome
from kiosk.ui.screens.context import ScreenContext
from kiosk.ui.widgets import THEME, Target, Theme


def _header(data: ChooseAmountScreen | TapCardScreen, surface: pygame.Surface, ctx: ScreenContext,
            theme: Theme) -> list[Target]:
    chrome.scrim(surface, theme)
    w, _h = surface.get_size()
    margin = theme.px(surface, 0.05)
    toggle = chrome.lang_toggle(surface, data.lang, theme)
    box = pygame.Rect(margin, theme.px(surface, 0.04), toggle.rect.left - 2 * margin, theme.px(surface, 0.3))
    chrome.project_header(surface, ctx.project(data.project), data.lang, box, theme, title_frac=0.06)
    return [toggle]


def _cancel(surface: pygame.Surface, lang: str, theme: Theme, pointer: pygame.Rect | None = None) -> Target:
    h = surface.get_height()
    rect = pygame.Rect(theme.px(surface, 0.05), 0, int(surface.get_width() * 0.22), theme.min_target(surface))
    rect.bottom = h - theme.px(surface, 0.05)
    if pointer is not None and rect.colliderect(pointer):  # a reader at the bottom left: beside its place
        rect.left = pointer.right + theme.px(surface, 0.03)
    return ui.button(surface, rect, chrome.tr(lang)("Cancel"), chrome.CANCEL, theme=theme,
                     size=theme.px(surface, 0.045))


def amount_buttons(surface: pygame.Surface, presets: tuple[int, ...], selected: int | None, area: pygame.Rect,
                   theme: Theme = THEME, *, label_frac: float = 0.075) -> list[Target]:
    n = max(1, len(presets))
    gap = theme.px(surface, 0.03)
    bw = (area.width - gap * (n - 1)) // n
    out = []
    for i, amount in enumerate(presets):
        rect = pygame.Rect(area.left + i * (bw + gap), area.top, bw, area.height)
        out.append(ui.button(surface, rect, yen(amount), chrome.AMOUNT, amount, theme=theme,
                             selected=amount == selected, size=theme.px(surface, label_frac)))
    return out


def render_choose(data: ChooseAmountScreen, surface: pygame.Surface, now_ms: int, ctx: ScreenContext,
                  theme: Theme = THEME) -> list[Target]:
    _ = chrome.tr(data.lang)
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    targets = _header(data, surface, ctx, theme)
    ui.text(surface, _("Choose an amount"), (w // 2, int(h * 0.36)), px(0.065), theme.text, bold=True, anchor="midtop")
    row = pygame.Rect(int(w * 0.08), int(h * 0.5), int(w * 0.84), px(0.19))
    targets += amount_buttons(surface, data.presets_yen, data.default_yen, row, theme)
    hint = _("Or tap your card now to give {amount}").format(amount=yen(data.default_yen))
    # Centred under the amounts it belongs to, and above the bottom buttons (a longer line shrinks or wraps
    # there, never under やめる or ほかのプロジェクト).
    buttons_top = h - px(0.05) - theme.min_target(surface)
    box = pygame.Rect(row.left, row.bottom + px(0.03), row.width, buttons_top - px(0.02) - row.bottom - px(0.03))
    chrome.fit_text(surface, hint, box, px(0.042), theme.muted, anchor="midtop")
    targets.append(_cancel(surface, data.lang, theme))
    other = pygame.Rect(0, 0, int(w * 0.3), theme.min_target(surface))
    other.bottomright = (w - px(0.05), h - px(0.05))
    targets.append(ui.button(surface, other, _("Other projects"), chrome.PICKER, theme=theme, size=px(0.045)))
    return targets


def render_tap(data: TapCardScreen, surface: pygame.Surface, now_ms: int, ctx: ScreenContext,
               theme: Theme = THEME) -> list[Target]:
    _ = chrome.tr(data.lang)
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    targets = _header(data, surface, ctx, theme)
    left = int(w * 0.06)
    # Our own reader takes the card: its pointer (then the green "card read" check) has a place the rest keeps
    # clear of, at whichever edge [reader] position says.
    pointer = None if data.on_terminal else chrome.reader_pointer_rect(surface, ctx.reader_position, data.lang, theme)
    column = chrome.clear_of(pygame.Rect(left, int(h * 0.33), int(w * 0.6), px(0.4)), pointer, px(0.03))
    left = column.left
    amount = ui.text(surface, yen(data.amount_yen), (left, int(h * 0.33)), px(0.15), theme.accent, bold=True)
    box = pygame.Rect(left, amount.bottom + px(0.02), int(w * 0.66) - left, px(0.2))
    if data.on_terminal:
        # The card is presented on the separate terminal; our reader only identifies the donor for points.
        chrome.fit_text(surface, _("To earn points, tap your card on this reader first"), box, px(0.055),
                        theme.text, bold=True, one_line_down_to=0.75)
        chrome.card_icon(surface, (int(w * 0.8), int(h * 0.42)), px(0.26), now_ms, theme)
        pay = pygame.Rect(0, 0, int(w * 0.3), theme.min_target(surface))
        pay.midbottom = (int(w * 0.8), h - 2 * px(0.05) - theme.min_target(surface))
        targets.append(ui.button(surface, pay, _("Pay on the terminal"), chrome.PAY_ON_TERMINAL, theme=theme,
                                 selected=True, size=px(0.045)))
    else:
        chrome.fit_text(surface, _("Now tap your IC card on the reader"), box, px(0.065), theme.text, bold=True,
                        one_line_down_to=0.75)
        chrome.card_icon(surface, (int(w * 0.8), int(h * 0.5)), px(0.34), now_ms, theme)
    if not data.on_terminal:  # our own reader takes the card: point at it
        pointer = chrome.reader_pointer(surface, ctx.reader_position, data.lang, now_ms, theme)
    cancel = _cancel(surface, data.lang, theme, pointer)
    if ctx.presets_yen:
        row = pygame.Rect(int(w * 0.36), h - px(0.05) - theme.min_target(surface), int(w * 0.6),
                          theme.min_target(surface))
        if cancel.rect.right + px(0.03) > row.left:  # やめる moved right of a reader at the bottom left
            row.width -= cancel.rect.right + px(0.03) - row.left
            row.left = cancel.rect.right + px(0.03)
        if pointer is not None and pointer.colliderect(row):  # the amounts make room for the pointer
            if pointer.centerx > w // 2:
                row.width = pointer.left - px(0.03) - row.left
            else:
                row.width -= pointer.right + px(0.03) - row.left
                row.left = pointer.right + px(0.03)
        targets += amount_buttons(surface, ctx.presets_yen, data.amount_yen, row, theme, label_frac=0.05)
    targets.append(cancel)
    return targets

"""While the intent is committed, the terminal charges and the donation is committed: keep the card still.

No buttons but the language toggle: the flow ignores cancels and taps here, so
offering them would only suggest a second try (the double-charge complaint).

With a separate terminal (Square) the donor acts on that terminal, so this
screen says so ("カードを決済端末にタッチしてください") and shows the terminal's
live state. Its やめる goes to the terminal (CancelTerminalCheckout), not to the
flow: the gift ends only when the terminal says CANCELED or COMPLETED.
"""

from __future__ import annotations

import math

import pygame

from kiosk.donation.flow import ChargingScreen
from kiosk.ui import widgets as ui
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


TERMINAL_LINES: dict[str, str] = {
    # What the separate terminal is doing, in the donor's words (English ids; Japanese in the catalog).
    "CREATING": "Preparing the payment terminal…",
    "PENDING": "The terminal is waiting for your card",
    "IN_PROGRESS": "Payment in progress on the terminal. Please wait.",
    "CANCEL_REQUESTED": "Canceling…",
    "CANCELED": "Canceled",
    "COMPLETED": "Payment received. Recording your donation…",
    "UNREACHABLE": "Connecting to the payment service…",
}


def terminal_line(data: ChargingScreen) -> str:
    """The English id of the status line for ``data`` (a separate terminal)."""
    if data.cancel_refused:
        return "Please finish or cancel the payment on the terminal"
    if data.cancel_requested and data.terminal_state in (None, "CREATING", "PENDING", "IN_PROGRESS"):
        return TERMINAL_LINES["CANCEL_REQUESTED"]
    return TERMINAL_LINES.get(data.terminal_state or "CREATING", TERMINAL_LINES["CREATING"])


def can_cancel(data: ChargingScreen) -> bool:
    """やめる is offered while the terminal waits and nobody asked yet (and the provider has not refused)."""
    return (data.on_terminal and data.terminal_state in ("PENDING", "IN_PROGRESS") and not data.cancel_requested
            and not data.cancel_refused)


def render_terminal(data: ChargingScreen, surface: pygame.Surface, now_ms: int, ctx: ScreenContext,
                    theme: Theme = THEME) -> list[Target]:
    """The donor pays on the separate terminal: say where, show its live state, offer やめる while it waits."""
    _ = chrome.tr(data.lang)
    chrome.scrim(surface, theme, alpha=235)
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    p = ctx.project(data.project)
    head = pygame.Rect(int(w * 0.06), px(0.05), int(w * 0.62), px(0.1))
    chrome.fit_text(surface, f"{yen(data.amount_yen)}  {p.name(data.lang)}", head, px(0.05), theme.accent,
                    bold=True)
    big = pygame.Rect(int(w * 0.06), px(0.2), int(w * 0.56), px(0.3))
    line = terminal_line(data)
    waiting = line in (TERMINAL_LINES["CREATING"], TERMINAL_LINES["PENDING"], TERMINAL_LINES["UNREACHABLE"])
    # While the terminal waits for the card the instruction is the headline and the state is under it;
    # once the donor acted, the state itself is the headline (no "touch your card" after they did).
    headline = "Touch your card on the payment terminal" if waiting else line
    chrome.fit_text(surface, _(headline), big, px(0.08), theme.warn if data.cancel_refused else theme.text,
                    bold=True, one_line_down_to=0.95)
    below = line if waiting else (TERMINAL_LINES["IN_PROGRESS"] if data.cancel_refused else None)
    if below is not None:
        state = pygame.Rect(int(w * 0.06), px(0.55), int(w * 0.56), px(0.14))
        chrome.fit_text(surface, _(below), state, px(0.055), theme.muted, bold=True, one_line_down_to=0.7)
    if line != TERMINAL_LINES["CANCELED"]:  # "canceled" is an end, not a wait: no spinner under it
        spinner(surface, (int(w * 0.8), int(h * 0.45)), px(0.09), now_ms, theme)
    targets = [chrome.lang_toggle(surface, data.lang, theme)]
    if can_cancel(data):
        rect = pygame.Rect(px(0.05), 0, int(w * 0.22), theme.min_target(surface))
        rect.bottom = h - px(0.05)
        targets.append(ui.button(surface, rect, _("Cancel"), chrome.TERMINAL_CANCEL, theme=theme, size=px(0.045)))
    return targets


def countdown_fraction(data: ChargingScreen, now_ms: int) -> float | None:
    """How much of an Express gift's cancel window is left at ``now_ms`` (the flow's clock), 1.0 → 0.0.

    Read from the screen data's deadline, never from a timer of the screen's own: the flow decides when the
    charge goes out, and the bar must reach zero exactly then. ``None`` outside a window."""
    if not data.can_withdraw or data.withdraw_until_ms is None or data.withdraw_from_ms is None:
        return None
    length = data.withdraw_until_ms - data.withdraw_from_ms
    if length <= 0:
        return 0.0
    return min(1.0, max(0.0, (data.withdraw_until_ms - now_ms) / length))


def countdown_rect(surface: pygame.Surface, theme: Theme = THEME) -> pygame.Rect:
    """Where the Express window's bar is drawn (its full length; the filled part shrinks to the left)."""
    w, h = surface.get_size()
    rect = pygame.Rect(0, 0, int(w * 0.7), theme.px(surface, 0.06))
    rect.midtop = (w // 2, int(h * 0.38))
    return rect


def render_express(data: ChargingScreen, surface: pygame.Surface, now_ms: int, ctx: ScreenContext,
                   theme: Theme = THEME) -> list[Target]:
    """An Express gift's cancel window (docs/donation.md): hold the card, a bar running out until the charge,
    and やめる. Nothing has been charged yet; lifting the card or やめる ends the gift with nothing charged."""
    _ = chrome.tr(data.lang)
    chrome.scrim(surface, theme, alpha=235)
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    # The green "card read" check may sit at the reader over this screen: its text and やめる keep clear.
    pointer = chrome.reader_pointer_rect(surface, ctx.reader_position, data.lang, theme)
    head = chrome.clear_of(pygame.Rect(int(w * 0.08), int(h * 0.17), int(w * 0.84), px(0.18)), pointer, px(0.02),
                           centred=True)
    chrome.fit_text(surface, _("Keep your card on the reader"), head, px(0.1), theme.text, bold=True,
                    anchor="midtop", one_line_down_to=0.8)
    bar = countdown_rect(surface, theme)
    frac = countdown_fraction(data, now_ms) or 0.0
    pygame.draw.rect(surface, theme.button, bar, border_radius=bar.height // 2)
    fill = pygame.Rect(bar.left, bar.top, round(bar.width * frac), bar.height)
    if fill.width > 0:
        pygame.draw.rect(surface, theme.accent, fill, border_radius=bar.height // 2)
    pygame.draw.rect(surface, theme.text, bar, width=max(2, px(0.004)), border_radius=bar.height // 2)
    how = chrome.clear_of(pygame.Rect(int(w * 0.1), bar.bottom + px(0.05), int(w * 0.8), px(0.15)), pointer, px(0.02),
                          centred=True)
    chrome.fit_text(surface, _("To stop, lift your card or touch Cancel"), how, px(0.055), theme.text,
                    anchor="midtop")
    p = ctx.project(data.project)
    line = chrome.clear_of(pygame.Rect(int(w * 0.1), how.bottom + px(0.02), int(w * 0.8), px(0.1)), pointer, px(0.02),
                           centred=True)
    chrome.fit_text(surface, f"{yen(data.amount_yen)}  {p.name(data.lang)}", line, px(0.05), theme.accent,
                    bold=True, anchor="midtop")
    targets = [chrome.lang_toggle(surface, data.lang, theme)]
    rect = pygame.Rect(0, 0, int(w * 0.3), theme.min_target(surface))
    rect.midbottom = (w // 2, h - px(0.04))
    if rect.colliderect(pointer):  # a reader under the middle of the screen: やめる moves beside its place
        rect.right = pointer.left - px(0.03)
    targets.append(ui.button(surface, rect, _("Cancel"), chrome.CANCEL, theme=theme, size=px(0.055)))
    return targets


def render(data: ChargingScreen, surface: pygame.Surface, now_ms: int, ctx: ScreenContext,
           theme: Theme = THEME) -> list[Target]:
    if data.on_terminal:
        return render_terminal(data, surface, now_ms, ctx, theme)
    if data.can_withdraw:  # an Express gift's window: hold the card, or stop it (docs/donation.md)
        return render_express(data, surface, now_ms, ctx, theme)
    _ = chrome.tr(data.lang)
    chrome.scrim(surface, theme, alpha=235)
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    spinner(surface, (w // 2, int(h * 0.3)), px(0.09), now_ms, theme)
    pointer = chrome.reader_pointer_rect(surface, ctx.reader_position, data.lang, theme)  # the "card read" check
    box = chrome.clear_of(pygame.Rect(int(w * 0.1), int(h * 0.46), int(w * 0.8), px(0.2)), pointer, px(0.02),
                          centred=True)
    chrome.fit_text(surface, _("Processing… please keep your card still"), box, px(0.07), theme.text, bold=True,
                    anchor="midtop")
    p = ctx.project(data.project)
    line = f"{yen(data.amount_yen)}  {p.name(data.lang)}"
    box = chrome.clear_of(pygame.Rect(int(w * 0.1), int(h * 0.7), int(w * 0.8), px(0.15)), pointer, px(0.02),
                          centred=True)
    chrome.fit_text(surface, line, box, px(0.05), theme.accent, bold=True, anchor="midtop")
    return [chrome.lang_toggle(surface, data.lang, theme)]

"""My page, by consent (docs/privacy.md): "tap your card", then a one-time QR code for the donor's phone.

The QR code is ``{portal}/me/new#{request}``: the signed one-time request rides in the fragment, which
the phone's browser never sends to a server, so it is in no log. It works once, for the seconds the screen
counts down (``[portal] my_page_qr_s``), and the screen goes back to the loop when they are over (the flow's
timeout), at a press of the large 終わる button, or at the next citizen's card (kiosk.donation.flow).
"""

from __future__ import annotations

import pygame

from kiosk.donation.flow import MyPageScreen
from kiosk.ui import widgets as ui
from kiosk.ui.screens import chrome
from kiosk.ui.screens.context import ScreenContext
from kiosk.ui.screens.receipt import receipt_qr
from kiosk.ui.widgets import THEME, Target, Theme


def my_page_url(ctx: ScreenContext, request: str) -> str:
    return f"{ctx.receipt_base_url.rstrip('/')}/me/new#{request}"


def render(data: MyPageScreen, surface: pygame.Surface, now_ms: int, ctx: ScreenContext,
           theme: Theme = THEME) -> list[Target]:
    _ = chrome.tr(data.lang)
    chrome.scrim(surface, theme, alpha=235)
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    targets: list[Target] = []
    margin = px(0.05)
    col = pygame.Rect(margin, px(0.05), int(w * (0.6 if data.request else 0.9)) - margin, h - px(0.1))
    head = ui.text(surface, _("My page"), col.topleft, px(0.09), theme.accent, bold=True)
    y = head.bottom + px(0.03)
    if data.request is None:
        box = pygame.Rect(col.left, y, col.width, px(0.2))
        t = chrome.fit_text(surface, _("Tap your IC card to see your gifts and points on your phone"), box,
                            px(0.06), theme.text, bold=True, one_line_down_to=0.75)
        box = pygame.Rect(col.left, max(t.bottom, box.top) + px(0.03), int(w * 0.55), px(0.25))
        chrome.fit_text(surface, _("Only you decide: your gifts are linked only when you ask here."), box, px(0.045),
                        theme.muted)
        chrome.card_icon(surface, (int(w * 0.78), int(h * 0.58)), px(0.32), now_ms, theme)
    else:
        box = pygame.Rect(col.left, y, col.width, px(0.14))
        t = chrome.fit_text(surface, _("Scan this code with your phone"), box, px(0.065), theme.text, bold=True,
                            one_line_down_to=0.75)
        y = max(t.bottom, box.top) + px(0.03)
        left_ms = seconds_left(data, now_ms) * 1000
        b = pygame.Rect(col.left, y, col.width, px(0.07))
        r = chrome.fit_text(surface, _("It works once. Time left: {seconds} s").format(
            seconds=seconds_left(data, now_ms)), b, px(0.05), theme.text, bold=True, one_line_down_to=0.7)
        y = max(r.bottom, b.top + px(0.05)) + px(0.015)
        bar = countdown_rect(surface, theme)
        bar.top = y
        ui.progress(surface, bar, left_ms / max(1, data.valid_s * 1000), theme=theme)
        y = bar.bottom + px(0.03)
        for line in (_("Keep the link private. You can close your page at any time."),
                     _("When you have scanned it, press Done.")):
            b = pygame.Rect(col.left, y, col.width, px(0.11))
            r = chrome.fit_text(surface, line, b, px(0.042), theme.muted)
            y = max(r.bottom, b.top + px(0.05)) + px(0.02)
        # A white card, as for the receipt: phone cameras need the contrast.
        card = pygame.Rect(int(w * 0.64), px(0.2), int(w * 0.32), h - px(0.3))
        pygame.draw.rect(surface, (255, 255, 255), card, border_radius=px(0.025))
        size = min(card.width, card.height) - px(0.05)
        code = receipt_qr(my_page_url(ctx, data.request), size)
        surface.blit(code, code.get_rect(center=card.center))
    # The way out, large and plain: a code left on the lobby's public screen is the next visitor's to scan.
    close = close_rect(surface, theme)
    label = _("Close") if data.request is None else _("Done")
    targets.append(ui.button(surface, close, label, chrome.CANCEL, theme=theme, size=px(0.065)))
    targets.append(chrome.lang_toggle(surface, data.lang, theme))
    return targets


def seconds_left(data: MyPageScreen, now_ms: int) -> int:
    """Whole seconds until the code leaves the screen (rounded up: it never says 0 while it is still shown)."""
    if data.until_ms is None:
        return data.valid_s
    return max(0, -(-(data.until_ms - now_ms) // 1000))


def close_rect(surface: pygame.Surface, theme: Theme = THEME) -> pygame.Rect:
    """The 終わる / とじる button: half the screen wide and half again as tall as a touch target needs."""
    w, h = surface.get_size()
    tall = int(theme.min_target(surface) * 1.5)
    return pygame.Rect(theme.px(surface, 0.05), h - theme.px(surface, 0.04) - tall, int(w * 0.5), tall)


def countdown_rect(surface: pygame.Surface, theme: Theme = THEME) -> pygame.Rect:
    """The bar that runs out as the code's time does (its top is set by the text above it)."""
    w, _h = surface.get_size()
    margin = theme.px(surface, 0.05)
    return pygame.Rect(margin, 0, int(w * 0.6) - 2 * margin, theme.px(surface, 0.025))

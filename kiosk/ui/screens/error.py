"""Error screens: what went wrong in a few words, and what to do next in a sentence.

The what-to-do text is :data:`kiosk.donation.flow.HINTS` (the English msgids), picked by
the flow's hint key; the title is per hint, so "charged but not yet recorded"
never reads like a failure. A touch anywhere (or the Back button) returns to
the loop; where the flow allows a retry, the hint says to tap again.
"""

from __future__ import annotations

import pygame

from kiosk.donation.flow import HINTS, ErrorScreen
from kiosk.ui import widgets as ui
from kiosk.ui.i18n import yen
from kiosk.ui.screens import chrome
from kiosk.ui.screens.context import ScreenContext
from kiosk.ui.widgets import THEME, Target, Theme

TITLES: dict[str, str] = {
    "card_unreadable": "Card could not be read",
    "not_transit": "This is not a transit IC card",
    "balance_low": "Balance too low",
    "balance_low_none": "Balance too low",
    "limit_reached": "Daily limit reached",
    "limit_reached_amount": "Amount too large",
    "declined": "Payment was declined",
    "canceled": "Canceled",
    "not_charged": "Payment did not go through",
    "reader_offline": "Card reader is offline",
    "unavailable": "Temporarily unavailable",
    "unavailable_charged": "Your donation was received",
    "unavailable_pending": "Payment not confirmed",
    "my_page_unavailable": "My page is not available",
}
"""Title msgid per hint key (every key of HINTS has one)."""

# Hints after which money may have moved: amber, not red, so nobody is alarmed into tapping again.
CAUTION = {"unavailable_charged", "unavailable_pending"}

SHOW_REFERENCE: dict[str, str] = {
    "unavailable_charged": "For your receipt or any question, show the number below to the center staff.",
}
"""Said after the hint when the screen shows the 受付番号 (msgid per hint key): what the number is for. Charged with
no receipt shown, the donor has nothing else the staff can find the gift by. (``unavailable_pending``'s own hint
already says it.)"""


def hint_text(data: ErrorScreen) -> str:
    """The what-to-do sentence(s), in ``data.lang``."""
    _ = chrome.tr(data.lang)
    text = _(HINTS.get(data.hint, data.text))
    if data.reference is not None and data.hint in SHOW_REFERENCE:
        more = _(SHOW_REFERENCE[data.hint])
        text += ("" if text.endswith("。") else " ") + more
    return text


def details(data: ErrorScreen) -> list[str]:
    """The figures behind the error, as msgids to format: balance read, what the card may still give."""
    _ = chrome.tr(data.lang)
    out = []
    if data.amount_yen is not None and data.kind in ("balance_low", "limit_reached", "declined", "unavailable"):
        out.append(f"{_('Amount')} {yen(data.amount_yen)}")
    if data.balance_yen is not None:
        out.append(f"{_('Balance on card')} {yen(data.balance_yen)}")
    if data.remaining_yen is not None:
        out.append(f"{_('You can still give today')} {yen(data.remaining_yen)}")
    if data.reference is not None:  # what the staff look the gift up by (the intent's seq on this kiosk)
        out.append(f"{_('Reference')} {data.reference}")
    return out


def render(data: ErrorScreen, surface: pygame.Surface, now_ms: int, ctx: ScreenContext,
           theme: Theme = THEME) -> list[Target]:
    _ = chrome.tr(data.lang)
    chrome.scrim(surface, theme, alpha=235)
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    targets = [Target(surface.get_rect(), chrome.TOUCH)]
    colour = theme.warn if data.hint in CAUTION else theme.bad
    pygame.draw.rect(surface, colour, pygame.Rect(0, 0, w, px(0.025)))

    # An exclamation mark in a circle: understood without reading.
    r = px(0.1)
    center = (px(0.05) + r, px(0.12) + r)
    pygame.draw.circle(surface, colour, center, r)
    # Dark on the amber of a caution (white on it is 1.9:1), white on the red (3.8:1): WCAG AA for large text.
    ui.text(surface, "!", center, int(r * 1.5), theme.bg if colour == theme.warn else theme.text, bold=True,
            anchor="center")

    left = center[0] + r + px(0.05)
    toggle = chrome.lang_toggle(surface, data.lang, theme)
    title_box = pygame.Rect(left, px(0.12), toggle.rect.left - left - px(0.02), px(0.2))
    t = chrome.fit_text(surface, _(TITLES.get(data.hint, TITLES.get(data.kind, "Temporarily unavailable"))),
                        title_box, px(0.075), theme.text, bold=True)
    hint_box = pygame.Rect(left, t.bottom + px(0.04), w - left - px(0.06), px(0.32))
    hb = chrome.fit_text(surface, hint_text(data), hint_box, px(0.058), theme.text)
    y = max(hb.bottom, t.bottom) + px(0.04)
    for line in details(data):
        y = ui.text(surface, line, (left, y), px(0.045), theme.accent, bold=True).bottom + px(0.01)

    back = pygame.Rect(0, 0, int(w * 0.22), theme.min_target(surface))
    back.bottomright = (w - px(0.05), h - px(0.05))
    targets.append(ui.button(surface, back, _("Back"), chrome.TOUCH, theme=theme, size=px(0.045)))
    targets.append(toggle)
    return targets

"""The thank-you, drawn only for a donation the ledger has committed (the flow guarantees it).

It shows the amount and the project, the gift's 受付番号 (the number the staff menu finds it by),
the project's new total against its goal, the points earned and the balance, and a QR code of the
receipt URL with the code written out for people who cannot scan.
"""

from __future__ import annotations

import pygame

from kiosk.donation.flow import ThanksScreen
from kiosk.ui import widgets as ui
from kiosk.ui.i18n import yen
from kiosk.ui.screens import chrome
from kiosk.ui.screens.context import ScreenContext
from kiosk.ui.screens.receipt import receipt_qr
from kiosk.ui.widgets import THEME, Target, Theme


def spaced_code(code: str) -> str:
    """``ZHMWMD2CPFYY...`` → ``ZHMW MD2C PFYY ...``: easier to read aloud or type."""
    return " ".join(code[i:i + 4] for i in range(0, len(code), 4))


def two_lines(spaced: str) -> str:
    """The spaced code over two lines, split between groups (a real code: 4 groups over 3)."""
    groups = spaced.split(" ")
    half = (len(groups) + 1) // 2
    return " ".join(groups[:half]) + ("\n" + " ".join(groups[half:]) if groups[half:] else "")


def receipt_card_rect(surface: pygame.Surface, theme: Theme = THEME) -> pygame.Rect:
    """Where the white receipt card sits: the right third of the screen, below the language button."""
    w, h = surface.get_size()
    return pygame.Rect(int(w * 0.64), theme.px(surface, 0.2), int(w * 0.32), h - theme.px(surface, 0.3))


def render(data: ThanksScreen, surface: pygame.Surface, now_ms: int, ctx: ScreenContext,
           theme: Theme = THEME) -> list[Target]:
    _ = chrome.tr(data.lang)
    chrome.scrim(surface, theme, alpha=230)
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    # No full-screen touch target: pointing at the QR code, or holding a phone up to it, must not end the
    # thank-you (issue #15 item 4). The close button does.
    targets: list[Target] = []
    p = ctx.project(data.project)
    margin = px(0.05)
    col = pygame.Rect(margin, px(0.05), int(w * 0.6) - margin, h - px(0.1))

    head = ui.text(surface, _("Thank you!"), col.topleft, px(0.1), theme.ok, bold=True)
    gave = _("You gave {amount} to {project}").format(amount=yen(data.amount_yen), project=p.name(data.lang))
    box = pygame.Rect(col.left, head.bottom + px(0.02), col.width, px(0.16))
    g = chrome.fit_text(surface, gave, box, px(0.055), theme.text, bold=True, one_line_down_to=0.75)

    y = max(g.bottom, box.top) + px(0.04)
    if data.reference is not None:
        # The 受付番号 the staff menu finds this gift by (a refund, when the wrong amount was pressed): small, at
        # the end of the row under the thanks, clear of the receipt card and of the card reader's place at the
        # bottom. Where that row is too narrow, on a line of its own.
        ref = f"{_('Reference')} {data.reference}"
        total_w = ui.font(px(0.04)).size(_("Project total"))[0]
        if ui.font(px(0.04)).size(ref)[0] + total_w + px(0.04) > col.width:
            y = ui.text(surface, ref, (col.left, y - px(0.02)), px(0.04), theme.muted).bottom + px(0.02)
        else:
            ui.text(surface, ref, (col.right, y), px(0.04), theme.muted, anchor="topright")
    ui.text(surface, _("Project total"), (col.left, y), px(0.04), theme.muted)
    bar = pygame.Rect(col.left, y + px(0.06), col.width, px(0.1))
    chrome.progress_block(surface, data.new_total_yen, p.goal_yen, data.lang, bar, theme)

    y = bar.bottom + px(0.05)
    points_bottom = y
    half = col.width // 2
    if not data.has_donor:  # paid on the terminal with no card on our reader: nobody to give points to
        box = pygame.Rect(col.left, y, col.width, px(0.14))
        chrome.fit_text(surface, _("Paid on the terminal (no points)"), box, px(0.045), theme.muted, bold=True)
    for i, (label, value) in enumerate(((_("Points earned"), f"+{data.points_earned}"),
                                        (_("Your points"), str(data.points_balance))) if data.has_donor else ()):
        x = col.left + i * half
        ui.text(surface, label, (x, y), px(0.04), theme.muted)
        v = ui.text(surface, value, (x, y + px(0.055)), px(0.085), theme.accent, bold=True)
        ui.text(surface, _("pt"), (v.right + px(0.01), v.bottom - px(0.012)), px(0.04), theme.muted,
                anchor="bottomleft")
        points_bottom = max(points_bottom, v.bottom)

    # The receipt: a white card so the QR code has the contrast phone cameras need.
    card = receipt_card_rect(surface, theme)
    pygame.draw.rect(surface, (255, 255, 255), card, border_radius=px(0.025))
    caption = pygame.Rect(card.left + px(0.02), card.top + px(0.02), card.width - px(0.04), px(0.1))
    cap = chrome.fit_text(surface, _("Scan to check your receipt"), caption, px(0.036), theme.bg, bold=True,
                          anchor="midtop")
    code_h = px(0.17)  # its label and two lines of the code, readable from two metres (issue #15)
    qr_size = min(card.width - px(0.06), card.bottom - cap.bottom - code_h - px(0.04))
    code = receipt_qr(ctx.receipt_url(data.receipt_code), qr_size, data.receipt_code)
    qr_rect = code.get_rect(midtop=(card.centerx, cap.bottom + px(0.015)))
    surface.blit(code, qr_rect)
    code_label = ui.text(surface, _("Receipt code"), (card.centerx, qr_rect.bottom + px(0.005)), px(0.03),
                         (70, 80, 95), anchor="midtop")
    # A real code is 26 characters: kept inside the card (dark text on the dark scrim cannot be read),
    # on one line while that stays large, else broken between groups of four and shrunk to fit.
    code_box = pygame.Rect(card.left + px(0.02), code_label.bottom, card.width - px(0.04),
                           card.bottom - px(0.012) - code_label.bottom)
    chrome.fit_text(surface, two_lines(spaced_code(data.receipt_code)), code_box, px(0.042), theme.bg, bold=True,
                    anchor="midbottom")

    side = theme.min_target(surface)
    close = pygame.Rect(col.left, 0, int(w * 0.22), side)
    close.bottom = h - px(0.04)
    mine: pygame.Rect | None = None
    use: pygame.Rect | None = None
    if data.my_page and data.has_donor:  # by consent: the donor asks, then taps again (docs/privacy.md)
        mine = pygame.Rect(0, 0, int(w * 0.26), side)
        mine.bottomright = (col.right, h - px(0.04))  # level with the close button
    if data.points_exchange and data.has_donor:  # use your points (docs/points.md): between close and my page
        use = pygame.Rect(0, 0, int(w * 0.26), side)
        use.bottomright = (col.right, h - px(0.04) - side - px(0.02))  # above my page
        if use.top < points_bottom and mine is None:
            use.bottom = close.bottom  # the point balance keeps the room above: my page's place is free
        elif use.top < points_bottom and mine is not None:
            # Not 16:9 (a 5:3 or 3:2 panel, an ultra-wide one): the figures above run lower, and the button
            # would cover the donor's point balance. The three buttons share the bottom row instead.
            gap = px(0.02)
            bw = (col.width - 2 * gap) // 3
            close = pygame.Rect(col.left, close.top, bw, side)
            use = pygame.Rect(close.right + gap, close.top, bw, side)
            mine = pygame.Rect(use.right + gap, close.top, col.right - use.right - gap, side)
    if mine is not None:
        targets.append(ui.button(surface, mine, _("My page"), chrome.MY_PAGE, theme=theme, size=px(0.05)))
    if use is not None:
        targets.append(ui.button(surface, use, _("Use your points"), "points_open", theme=theme, size=px(0.045)))
    targets.append(ui.button(surface, close, _("Close"), chrome.CANCEL, theme=theme, size=px(0.05)))
    targets.append(chrome.lang_toggle(surface, data.lang, theme))
    return targets

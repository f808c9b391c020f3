"""Pieces every donation screen shares: translation, fitted text, the language toggle, the project header.

Lengths are fractions of the screen height (``Theme.px``), so one layout reads
the same on a 640×360 golden image, a 720p window and a 1080p lobby TV.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import pygame

from kiosk.player.slides import AREA_COLOURS
from kiosk.ui import widgets as ui
from kiosk.ui.i18n import gettext_for, yen
from kiosk.ui.screens.context import ProjectInfo
from kiosk.ui.widgets import THEME, Color, Target, Theme

# Target actions; kiosk.ui.screens.actions turns them into flow events.
TOUCH = "touch"
AMOUNT = "amount"
CANCEL = "cancel"
LANG = "lang"
PAY_ON_TERMINAL = "pay_on_terminal"
"""Start the gift on the separate payment terminal without a card on the kiosk's reader (no points)."""
MY_PAGE = "my_page"
"""The thank-you screen's "my page" button (docs/privacy.md): asks for a tap, then shows a one-time QR code."""
PICKER = "picker"
"""Open the project picker (by policy area), instead of waiting for a project's movie."""
PICK_PROJECT = "pick_project"
"""A project on the picker (value: its id)."""
TERMINAL_CANCEL = "terminal_cancel"
"""やめる while a separate terminal waits: the app asks the terminal to cancel (the worker is busy charging)."""

AREA_MSGIDS: dict[str, str] = {
    "children": "Children and the future",
    "welfare": "Health and welfare",
    "green": "Greenery and climate",
    "culture": "Culture and arts",
    "town": "A lively town",
}

SEP = {"ja": "・", "en": " | "}
"""Between group and area: the font subset has the katakana middle dot but not U+00B7."""


def tr(lang: str) -> Callable[[str], str]:
    return gettext_for(lang if lang in ("ja", "en") else "ja")


def area_label(area: str, lang: str) -> str:
    msgid = AREA_MSGIDS.get(area)
    return tr(lang)(msgid) if msgid else area


@lru_cache(maxsize=1024)
def fitted_size(s: str, max_w: int, max_h: int, size: int, *, bold: bool = False, min_size: int = 10,
                line_spacing: float = 1.15) -> int:
    """The largest font size <= ``size`` at which ``s`` wraps into ``max_w`` × ``max_h`` (cached: a pure
    function of its arguments and the vendored fonts, asked again on every frame)."""
    while size > min_size:
        f = ui.font(size, bold)
        lines = ui.wrap(s, f, max_w)
        height = int(f.get_linesize() * line_spacing) * (len(lines) - 1) + f.get_height()
        if height <= max_h and all(f.size(ln)[0] <= max_w for ln in lines):
            return size
        size = max(min_size, int(size * 0.9))
    return min_size


def fit_text(surface: pygame.Surface, s: str, rect: pygame.Rect, size: int, color: Color = THEME.text, *,
             bold: bool = False, anchor: str = "topleft", one_line_down_to: float = 0.0) -> pygame.Rect:
    """Text wrapped into ``rect``, shrunk until it fits: long English titles must never be clipped.

    With ``one_line_down_to`` (a fraction of ``size``), a slightly smaller single line is preferred
    to a wrap: Japanese may break between any two characters, and a sentence cut before its last
    two kana reads badly.
    """
    one = size
    while one_line_down_to and one >= size * one_line_down_to:
        if ui.font(one, bold).size(s)[0] <= rect.width:
            return ui.text(surface, s, getattr(rect, anchor), one, color, bold=bold, anchor=anchor)
        one -= max(1, one // 20)
    size = fitted_size(s, rect.width, rect.height, size, bold=bold)
    pos = getattr(rect, anchor)
    return ui.text(surface, s, pos, size, color, bold=bold, anchor=anchor, max_width=rect.width)


DANGLING = frozenset({"a", "an", "the", "and", "or", "of", "for", "to", "in", "on", "with", "at", "by", "your"})
"""English words a label's first line should not end on: "A playroom / for young families" reads as two
phrases, "A playroom for / young families" does not."""


def two_lines(s: str, f: pygame.font.Font, max_width: int | None = None) -> tuple[str, str] | None:
    """``s`` cut in two at a break (BudouX phrase or space): of the cuts whose lines fit ``max_width``, one
    whose first line does not end on a small word (:data:`DANGLING`), then the one whose wider line is
    narrowest, so a label on two lines reads as two halves ("Children and / the future")."""
    parts = ui.chunks(s)
    best: tuple[tuple[bool, int], tuple[str, str]] | None = None
    for i in range(1, len(parts)):
        a, b = "".join(parts[:i]).rstrip(), "".join(parts[i:]).strip()
        if not (a and b):
            continue
        width = max(f.size(a)[0], f.size(b)[0])
        if max_width is not None and width > max_width:
            continue
        key = (a.rsplit(" ", 1)[-1].lower() in DANGLING, width)
        if best is None or key < best[0]:
            best = (key, (a, b))
    return best[1] if best else None


TWO_LINE_STEP = 0.92
"""Line step of a two-line label, in the font's line size: Noto Sans JP's line size is 1.45 em (room for
kana above and below), looser than a label of two short lines needs."""


def label_lines(s: str, rect: pygame.Rect, size: int, *, bold: bool = True,
                min_size: int = 10) -> tuple[int, tuple[str, ...]]:
    """The largest size <= ``size`` at which ``s`` fits ``rect`` on one line, or on two balanced lines (one
    line preferred at a size), and the lines."""
    while True:
        f = ui.font(size, bold)
        if f.size(s)[0] <= rect.width and f.get_height() <= rect.height:
            return size, (s,)
        halves = two_lines(s, f, rect.width)
        if halves is not None and int(f.get_linesize() * TWO_LINE_STEP) + f.get_height() <= rect.height:
            return size, halves
        if size <= min_size:
            halves = two_lines(s, f)
            return size, (s,) if halves is None else halves
        size = max(min_size, size - max(1, size // 30))


def fit_label(surface: pygame.Surface, s: str, rect: pygame.Rect, size: int, color: Color = THEME.text, *,
              bold: bool = True) -> pygame.Rect:
    """A button's or a chip's label centred in ``rect``: one line, or two balanced lines, at the largest size
    that fits (:func:`label_lines`). Returns the area drawn."""
    size, lines = label_lines(s, rect, size, bold=bold)
    f = ui.font(size, bold)
    step = int(f.get_linesize() * TWO_LINE_STEP)
    total = step * (len(lines) - 1) + f.get_height()
    top = rect.centery - total // 2
    drawn = pygame.Rect(rect.centerx, top, 0, 0)
    for i, line in enumerate(lines):
        drawn.union_ip(ui.text(surface, line, (rect.centerx, top + i * step), size, color, bold=bold,
                               anchor="midtop"))
    return drawn


@lru_cache(maxsize=16)
def _layer(size: tuple[int, int], color: Color, alpha: int) -> pygame.Surface:
    layer = pygame.Surface(size, pygame.SRCALPHA)
    layer.fill((*color, alpha))
    return layer


def shade(surface: pygame.Surface, rect: pygame.Rect, theme: Theme = THEME, alpha: int | None = None) -> None:
    """``ui.panel`` with the translucent layer kept between frames: a full-screen SRCALPHA surface
    allocated and filled every frame costs milliseconds at 1080p, on the tap-to-thank-you path."""
    a = theme.panel_alpha if alpha is None else alpha
    if a >= 255:
        surface.fill(theme.panel, rect)
        return
    layer = _layer(rect.size, theme.panel, a)
    surface.blit(layer, rect.topleft)


def scrim(surface: pygame.Surface, theme: Theme = THEME, alpha: int | None = None) -> None:
    """Cover the movie for a full-screen step. Opaque whatever ``alpha`` a caller asks: a movie's own titles
    showing through named another project behind the current gift (issue #15 item 10)."""
    shade(surface, surface.get_rect(), theme, 255)


def lang_toggle(surface: pygame.Surface, lang: str, theme: Theme = THEME) -> Target:
    """Top-right 日本語 / English button; it names the language it switches *to*, in that language."""
    w, h = surface.get_size()
    label = tr("ja")("English") if lang == "ja" else "日本語"
    side = theme.min_target(surface)
    rect = pygame.Rect(0, 0, max(int(w * 0.17), side * 2), side)
    rect.topright = (w - theme.px(surface, 0.03), theme.px(surface, 0.03))
    return ui.button(surface, rect, label, LANG, theme=theme, size=theme.px(surface, 0.045))


def area_chip(surface: pygame.Surface, area: str, lang: str, topleft: tuple[int, int],
              theme: Theme = THEME) -> pygame.Rect:
    """The policy area as a coloured label (same colours as the demo cards and slides)."""
    size = theme.px(surface, 0.038)
    label = area_label(area, lang)
    f = ui.font(size, True)
    tw, th = f.size(label)
    pad = size // 2
    rect = pygame.Rect(topleft, (tw + 2 * pad, th + pad // 2))
    pygame.draw.rect(surface, AREA_COLOURS.get(area, theme.button), rect, border_radius=rect.height // 3)
    ui.text(surface, label, rect.center, size, theme.text, bold=True, anchor="center")
    return rect


def project_header(surface: pygame.Surface, p: ProjectInfo, lang: str, rect: pygame.Rect,
                   theme: Theme = THEME, *, title_frac: float = 0.065) -> pygame.Rect:
    """Area chip, title and group at the top of a full-screen step; returns the area used."""
    chip = area_chip(surface, p.area, lang, rect.topleft, theme)
    gap = theme.px(surface, 0.015)
    title_box = pygame.Rect(rect.left, chip.bottom + gap, rect.width, theme.px(surface, title_frac * 2.4))
    t = fit_text(surface, p.name(lang), title_box, theme.px(surface, title_frac), theme.text, bold=True)
    bottom = t.bottom
    if p.group_name(lang):
        g = ui.text(surface, p.group_name(lang), (rect.left, bottom + gap // 2), theme.px(surface, 0.04), theme.muted,
                    max_width=rect.width)
        bottom = g.bottom
    return pygame.Rect(rect.left, rect.top, rect.width, bottom - rect.top)


def progress_block(surface: pygame.Surface, total_yen: int, goal_yen: int, lang: str, rect: pygame.Rect,
                   theme: Theme = THEME) -> pygame.Rect:
    """Progress bar of a project's total against its goal, with both figures under it."""
    _ = tr(lang)
    bar = pygame.Rect(rect.left, rect.top, rect.width, theme.px(surface, 0.035))
    ui.progress(surface, bar, total_yen / goal_yen if goal_yen > 0 else 0.0, theme=theme)
    size = theme.px(surface, 0.042)
    y = bar.bottom + theme.px(surface, 0.012)
    left = ui.text(surface, yen(total_yen), (rect.left, y), size, theme.accent, bold=True)
    pct = min(999, int(total_yen * 100 / goal_yen)) if goal_yen > 0 else 0
    ui.text(surface, f"{_('Goal')} {yen(goal_yen)} ({pct}%)", (rect.right, y), size, theme.muted, anchor="topright")
    return pygame.Rect(rect.left, rect.top, rect.width, left.bottom - rect.top)


def pulse(now_ms: int, period_ms: int = 1600) -> float:
    """0..1..0 over ``period_ms``: gentle motion that says 'waiting for you'."""
    return 0.5 - 0.5 * math.cos(2 * math.pi * (now_ms % period_ms) / period_ms)


def card_icon(surface: pygame.Surface, center: tuple[int, int], height: int, now_ms: int, theme: Theme = THEME) -> None:
    """A card over a reader with rings that breathe: the gesture to make, without words."""
    cx, cy = center
    reader = pygame.Rect(0, 0, int(height * 0.9), int(height * 0.28))
    reader.midbottom = (cx, cy + height // 2)
    pygame.draw.rect(surface, theme.muted, reader, border_radius=reader.height // 4)
    card = pygame.Rect(0, 0, int(height * 0.62), int(height * 0.4))
    lift = int(height * 0.12 * pulse(now_ms))
    card.midbottom = (cx, reader.top - height // 20 - lift)
    pygame.draw.rect(surface, theme.accent, card, border_radius=card.height // 6)
    pygame.draw.rect(surface, theme.bg, card.inflate(-card.width // 2, -card.height // 2).move(-card.width // 8, 0),
                     width=max(2, height // 60), border_radius=card.height // 10)
    for i in range(3):
        r = int(height * (0.16 + 0.1 * i + 0.05 * pulse(now_ms)))
        arc_rect = pygame.Rect(0, 0, 2 * r, 2 * r)
        arc_rect.center = (card.centerx, card.top - height // 30)
        pygame.draw.arc(surface, theme.text, arc_rect, math.radians(50), math.radians(130), max(2, height // 40))


READER_POSITIONS = ("below-right", "below-center", "below-left", "right", "left")


def clear_of(rect: pygame.Rect, pointer: pygame.Rect | None, gap: int, *, centred: bool = False) -> pygame.Rect:
    """``rect`` narrowed to keep clear of the reader pointer's place beside it (or ended above it, a pointer under
    its middle), by ``gap``; unchanged where they do not meet. ``centred``: cut both sides alike, so text centred
    in it stays centred on the screen."""
    if pointer is None or not rect.colliderect(pointer):
        return rect
    r = rect.copy()
    if pointer.left < r.centerx < pointer.right and pointer.top > r.top:  # under its middle: end above it
        r.height = pointer.top - gap - r.top
        return r
    if centred:
        cut = r.right - pointer.left + gap if pointer.centerx >= r.centerx else pointer.right + gap - r.left
        return r.inflate(-2 * cut, 0)
    if pointer.centerx >= r.centerx:
        r.width = pointer.left - gap - r.left
    else:
        r.width -= pointer.right + gap - r.left
        r.left = pointer.right + gap
    return r


def reader_pointer_rect(surface: pygame.Surface, position: str, lang: str, theme: Theme = THEME, *,
                        detected: bool = False) -> pygame.Rect:
    """Where :func:`reader_pointer` draws (so a screen can lay its text out around it)."""
    return reader_pointer(surface, position, lang, 0, theme, detected=detected, draw=False)


def reader_pointer(surface: pygame.Surface, position: str, lang: str, now_ms: int, theme: Theme = THEME, *,
                   detected: bool = False, draw: bool = True) -> pygame.Rect:
    """"ここにタッチ" and an arrow at the screen edge nearest the card reader (``reader.position``).

    ``detected`` turns it into a green check (the card
    was just read: the visual half of the gate's "pi"), in exactly the pointer's place: a screen that keeps the
    pointer's place clear keeps the check's clear too, and "読み取りました" is shrunk to the pointer's width
    rather than the box grown over the screen (it hid the receipt code on the thank-you). Returns the area drawn.

    On a panel narrower than 3:2 it is drawn in the screens' layout area (:func:`kiosk.ui.widgets.layout_rect`),
    where the screen under it was laid out: the app draws the green check on the whole panel.
    """
    area = ui.layout_rect(surface.get_size())
    if area.size != surface.get_size():
        return reader_pointer(surface.subsurface(area), position, lang, now_ms, theme, detected=detected,
                              draw=draw).move(area.topleft)
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    pos = position if position in READER_POSITIONS else "below-right"
    size = px(0.05)
    label = tr(lang)("Card read") if detected else tr(lang)("Touch here")
    f = ui.font(size, True)
    tw, th = f.size(tr(lang)("Touch here"))  # the place is the pointer's, whichever is drawn
    arrow = px(0.07)
    bob = 0  # still: a moving arrow on the attract loop competes with the movie (and screens stay golden)
    box = pygame.Rect(0, 0, max(tw, arrow) + px(0.04), th + arrow + px(0.05))
    if pos.startswith("below"):
        x = {"below-right": w, "below-center": w // 2, "below-left": 0}[pos]
        box.midbottom = (min(max(x, box.width // 2 + px(0.02)), w - box.width // 2 - px(0.02)), h - px(0.005))
    else:
        box.midright = (w - px(0.005), h // 2) if pos == "right" else (0, 0)
        if pos == "left":
            box.midleft = (px(0.005), h // 2)
    if not draw:
        return box
    colour = theme.ok if detected else theme.accent
    pygame.draw.rect(surface, theme.panel, box, border_radius=px(0.02))
    pygame.draw.rect(surface, colour, box, width=max(2, px(0.006)), border_radius=px(0.02))
    while size > px(0.03) and ui.font(size, True).size(label)[0] > box.width - px(0.02):
        size -= 1  # "読み取りました" in the place of "ここにタッチ"
    ui.text(surface, label, (box.centerx, box.top + px(0.015) + (th - ui.font(size, True).get_height()) // 2), size,
            colour, bold=True, anchor="midtop")
    cx, top = box.centerx, box.top + px(0.02) + th
    if detected:
        r = arrow // 2
        centre = (cx, top + r)
        pygame.draw.circle(surface, colour, centre, r)
        pts = [(cx - r // 2, top + r), (cx - r // 8, top + r + r // 2), (cx + r // 2, top + r // 2)]
        pygame.draw.lines(surface, theme.text, False, pts, max(3, r // 4))
        return box
    # The arrow: down for a reader under the screen, sideways for one beside it.
    a = arrow
    if pos.startswith("below"):
        y0 = top + bob
        pts = [(cx - a // 2, y0 + a // 3), (cx + a // 2, y0 + a // 3), (cx, y0 + a)]
        pygame.draw.rect(surface, colour, pygame.Rect(cx - a // 8, y0, a // 4, a // 3 + 1))
    else:
        sign = 1 if pos == "right" else -1
        cy = top + a // 2
        x0 = cx - sign * a // 2 + sign * bob
        pts = [(x0 + sign * a // 3, cy - a // 2), (x0 + sign * a // 3, cy + a // 2), (x0 + sign * a, cy)]
        pygame.draw.rect(surface, colour, pygame.Rect(min(x0, x0 + sign * a // 3), cy - a // 8, a // 3 + 1, a // 4))
    pygame.draw.polygon(surface, colour, pts)
    return box

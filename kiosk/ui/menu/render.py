"""Draws a menu :class:`View` full-screen and returns the touch targets, one per pressable button.

Opaque, not over the movie: staff read figures off this screen, and a
moving background makes small numbers hard to read. Sizes are fractions of
the screen height (``Theme.px``) so the 640×360 golden images and a 1080p
panel show the same layout; every button is at least ``Theme.min_target``
tall. Labels shrink to fit their button and wrap only as a last resort, so
nothing is clipped in either language.
"""

from __future__ import annotations

from math import ceil

import pygame

from kiosk.ui import widgets as ui
from kiosk.ui.menu.view import Button, Level, View
from kiosk.ui.widgets import THEME, Color, Target, Theme

FILL: dict[str, Color] = {
    "normal": THEME.button, "key": THEME.button, "primary": (26, 128, 74), "danger": (176, 48, 38),
    "on": (26, 128, 74), "off": (70, 78, 92), "row": (24, 42, 70),
}
DISABLED: Color = (48, 54, 64)
LEVEL_COLOURS: dict[str, Color] = {"green": THEME.ok, "yellow": THEME.warn, "red": THEME.bad}


def level_colour(level: Level | str) -> Color:
    return LEVEL_COLOURS.get(level, THEME.muted)


def fit_size(s: str, max_w: int, size: int, *, bold: bool = False, min_size: int = 8) -> int:
    """The largest size <= ``size`` at which ``s`` fits ``max_w`` on one line (``min_size`` if none does)."""
    while size > min_size and ui.font(size, bold).size(s)[0] > max_w:
        size = max(min_size, size - max(1, size // 12))
    return size


def line(surface: pygame.Surface, s: str, pos: tuple[int, int], size: int, max_w: int, color: Color, *,
         bold: bool = False, anchor: str = "topleft", min_frac: float = 0.6, floor: int = 8,
         max_h: int | None = None) -> pygame.Rect:
    """One line shrunk to fit ``max_w``; wrapped when that would make it smaller than ``min_frac`` of ``size``
    or than ``floor``. Wrapped lines shrink (not below ``floor``) to fit ``max_h``; what still does not fit is
    cut, the last line ending in "…" (a title from the portal may be 200 characters long)."""
    small = fit_size(s, max_w, size, bold=bold)
    if small >= size * min_frac and small >= floor:
        return ui.text(surface, s, pos, small, color, bold=bold, anchor=anchor)
    size = max(floor, int(size * min_frac))
    if max_h is None:
        return ui.text(surface, s, pos, size, color, bold=bold, anchor=anchor, max_width=max_w)
    while True:
        f = ui.font(size, bold)
        lines = ui.wrap(s, f, max_w)
        step = int(f.get_linesize() * ui.LINE_SPACING)
        room = max(1, (max_h - f.get_height()) // step + 1)
        if len(lines) <= room or size <= floor:
            break
        size -= 1
    if len(lines) > room:
        lines = lines[:room]
        lines[-1] = _ellipsized(lines[-1], f, max_w)
    # Line by line, each a string of its own (as ``widgets.text`` draws wrapped text), in one box at ``anchor``.
    box = pygame.Rect(0, 0, max(f.size(ln)[0] for ln in lines), step * (len(lines) - 1) + f.get_height())
    setattr(box, anchor, pos)
    for n, ln in enumerate(lines):
        y = box.top + n * step
        if "right" in anchor:
            ui.text(surface, ln, (box.right, y), size, color, bold=bold, anchor="topright")
        elif anchor in ("center", "midtop", "midbottom"):
            ui.text(surface, ln, (box.centerx, y), size, color, bold=bold, anchor="midtop")
        else:
            ui.text(surface, ln, (box.left, y), size, color, bold=bold)
    return box


def dot(surface: pygame.Surface, center: tuple[int, int], radius: int, level: Level | str) -> None:
    pygame.draw.circle(surface, level_colour(level), center, radius)
    pygame.draw.circle(surface, THEME.text, center, radius, width=max(1, radius // 6))


def label_size(surface: pygame.Surface, rect: pygame.Rect, b: Button, theme: Theme = THEME) -> int:
    """The size ``b``'s label would be drawn at in ``rect`` on its own (shrunk to fit its width)."""
    pad = max(4, rect.height // 8)
    width = rect.width - 2 * pad - (3 * min(rect.height // 5, theme.px(surface, 0.03)) if b.dot else 0)
    size = int(min(rect.height * 0.42, theme.px(surface, 0.085)))
    return fit_size(b.label, width, size, bold=True, min_size=min(size, text_floor(surface, theme)))


def text_floor(surface: pygame.Surface, theme: Theme = THEME) -> int:
    """The smallest text on the menu: 3 % of the screen height (32 px at 1080p), the citizen screens' floor. A
    label that would be smaller wraps instead (issue #15: readable from two metres)."""
    return theme.px(surface, TEXT_FLOOR)


TEXT_FLOOR = 0.03


def draw_button(surface: pygame.Surface, rect: pygame.Rect, b: Button, *, focused: bool, theme: Theme = THEME,
                size: int | None = None) -> None:
    radius = max(4, min(rect.height, rect.width) // 6)
    fill = FILL.get(b.style, theme.button) if b.enabled else DISABLED
    pygame.draw.rect(surface, fill, rect, border_radius=radius)
    edge = theme.muted if b.style == "row" or not b.enabled else theme.text
    pygame.draw.rect(surface, edge, rect, width=max(1, rect.height // 30), border_radius=radius)
    if focused:
        ring = rect.inflate(theme.px(surface, 0.018) * 2, theme.px(surface, 0.018) * 2)
        pygame.draw.rect(surface, theme.accent, ring, width=max(3, theme.px(surface, 0.012)), border_radius=radius + 4)
    pad = max(4, rect.height // 8)
    inner = rect.inflate(-2 * pad, 0)
    colour = theme.button_text if b.enabled else theme.muted
    if b.dot:
        r = min(rect.height // 5, theme.px(surface, 0.03))
        dot(surface, (inner.left + r, rect.centery), r, b.dot)
        inner.width -= 3 * r
        inner.left += 3 * r
    anchor = "midleft" if b.style == "row" else "center"
    if not b.detail:
        # ``size``: one size for a whole row of buttons (issue #15: labels of wildly different sizes side by side).
        size = size or int(min(rect.height * 0.42, theme.px(surface, 0.085)))
        line(surface, b.label, getattr(inner, anchor), size, inner.width, colour, bold=True, anchor=anchor,
             floor=min(size, text_floor(surface, theme)), max_h=rect.height - 2 * pad)
        return
    label_size = int(min(rect.height * 0.36, theme.px(surface, 0.07)))
    # Never below 3 % of the screen height (32 px at 1080p), the floor the citizen screens keep too: the status
    # rows' values were 21 px at 720p (issue #15, readable from two metres).
    detail_size = max(text_floor(surface, theme), int(min(rect.height * 0.27, theme.px(surface, 0.05))))
    top = pygame.Rect(inner.left, rect.top, inner.width, int(rect.height * 0.56))
    bottom = pygame.Rect(inner.left, top.bottom - rect.height // 20, inner.width, rect.bottom - top.bottom)
    ds = fit_size(b.detail, inner.width, detail_size, min_size=text_floor(surface, theme))
    la, da = ("midleft", "midleft") if anchor == "midleft" else ("center", "center")
    # An activity's or a project's title from the portal: shrunk to one line, or wrapped within the label's half
    # of the button, never below the floor (a 180-character title was one 8 px line three screens wide).
    line(surface, b.label, getattr(top, la), label_size, inner.width, colour, bold=True, anchor=la, min_frac=0,
         floor=min(label_size, text_floor(surface, theme)), max_h=top.height)
    # A value too long for its row even at the floor (a 3:2 or portrait panel's narrower columns) ends in "…"
    # inside the button, never past its edge: touching the row shows it whole (the status item page).
    line(surface, b.detail, getattr(bottom, da), ds, inner.width, theme.muted if b.style == "row" else colour,
         anchor=da, min_frac=0, floor=min(ds, text_floor(surface, theme)), max_h=bottom.height)


def _grid(surface: pygame.Surface, area: pygame.Rect, buttons: tuple[Button, ...], columns: int, gap: int,
          focus: int, offset: int, max_row_h: int) -> list[Target]:
    targets: list[Target] = []
    if not buttons:
        return targets
    cols = max(1, min(columns, len(buttons)))
    rows = ceil(len(buttons) / cols)
    row_h = min(max_row_h, (area.height - gap * (rows - 1)) // rows)
    col_w = (area.width - gap * (cols - 1)) // cols
    cell = pygame.Rect(0, 0, col_w, row_h)
    # The grid's labels share one size: the largest at which every one of them fits its button.
    plain = [b for b in buttons if not b.detail]
    common = min((label_size(surface, cell, b) for b in plain), default=None)
    for n, b in enumerate(buttons):
        r, c = divmod(n, cols)
        rect = pygame.Rect(area.left + c * (col_w + gap), area.top + r * (row_h + gap), col_w, row_h)
        draw_button(surface, rect, b, focused=(offset + n) == focus, size=common)
        if b.enabled:
            targets.append(Target(rect, b.action, b.value))
    return targets


def _ellipsized(s: str, f: pygame.font.Font, max_w: int) -> str:
    """``s`` shortened until it and a closing "…" fit ``max_w`` in ``f``: the mark that text was cut."""
    s = s.rstrip()
    while s and f.size(s + "…")[0] > max_w:
        s = s[:-1].rstrip()
    return s + "…"


def _cut_to(sentences: tuple[str, ...], f: pygame.font.Font, max_w: int, room: int) -> list[str]:
    """The wrapped lines of ``sentences`` in ``f``, at most ``room`` of them. When they do not fit at the text
    floor, the sentence with the most lines gives up its last line first (a 200-character activity title from
    the portal, not the short instruction after it), and a sentence that lost lines ends in "…"."""
    pieces = [ui.wrap(s, f, max_w) for s in sentences]
    cut = [False] * len(pieces)
    while sum(map(len, pieces)) > room:
        longest = max(range(len(pieces)), key=lambda i: len(pieces[i]))
        if len(pieces[longest]) > 1:
            pieces[longest], cut[longest] = pieces[longest][:-1], True
        else:  # one line each and still too many: the last sentences go
            pieces = [p for p in pieces if p][:-1]
            cut = cut[:len(pieces)]
            if not pieces:
                break
            cut[-1] = True
    out = []
    for p, c in zip(pieces, cut, strict=True):
        out += p[:-1] + [_ellipsized(p[-1], f, max_w) if c else p[-1]]
    return out


def _text_block(surface: pygame.Surface, view: View, area: pygame.Rect, theme: Theme, *, centered: bool) -> None:
    px = lambda f: theme.px(surface, f)  # noqa: E731
    anchor = "midtop" if centered else "topleft"
    x = area.centerx if centered else area.left
    y = area.top
    if view.notice:
        y = line(surface, view.notice, (x, y), px(0.062), area.width, level_colour(view.notice_level), bold=True,
                 anchor=anchor).bottom + px(0.02)
    if view.big:
        y = line(surface, view.big, (x, y), px(0.13), area.width, theme.text, bold=True, anchor=anchor,
                 min_frac=0.45).bottom + px(0.02)
    if view.lines:
        # The model pages long text (LINES_PER_PAGE), so every line handed over must fit: shrink until it does.
        # Sentences wrap (Japanese between any two characters); the size is the largest at which all fit.
        room = max(1, area.bottom - y)
        size = px(0.065)
        while True:
            f = ui.font(size)
            wrapped = [w for s in view.lines for w in ui.wrap(s, f, area.width)]
            if size <= text_floor(surface, theme) or len(wrapped) * f.get_linesize() <= room:
                break
            size -= 1
        colour = theme.muted if not view.big else theme.text
        for s in _cut_to(view.lines, f, area.width, max(1, room // f.get_linesize())):
            y = ui.text(surface, s, (x, y), size, colour, anchor=anchor).bottom


def draw(surface: pygame.Surface, view: View, focus: int = -1, *, theme: Theme = THEME) -> list[Target]:
    """Fill the whole surface and draw ``view``; on a panel narrower than 3:2 (portrait, 4:3) in a 3:2 area at its
    bottom (:func:`kiosk.ui.widgets.layout_rect`), as the citizen screens are."""
    area = ui.layout_rect(surface.get_size())
    if area.size == surface.get_size():
        return _draw(surface, view, focus, theme=theme)
    surface.fill(theme.bg)
    return ui.on_screen(_draw(surface.subsurface(area), view, focus, theme=theme), area, surface.get_rect())


def _draw(surface: pygame.Surface, view: View, focus: int = -1, *, theme: Theme = THEME) -> list[Target]:
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    pad, gap = px(0.03), px(0.02)
    surface.fill(theme.bg)

    title_h = px(0.15)
    pygame.draw.rect(surface, theme.panel, pygame.Rect(0, 0, w, title_h))
    x = pad
    if view.dot:
        r = px(0.042)
        dot(surface, (x + r, title_h // 2), r, view.dot)
        x += 2 * r + pad // 2
    line(surface, view.title, (x, title_h // 2), px(0.085), w - x - pad, theme.text, bold=True, anchor="midleft")

    foot_h = max(theme.min_target(surface) + 2 * gap, px(0.17))
    body = pygame.Rect(pad, title_h + gap, w - 2 * pad, h - title_h - foot_h - 2 * gap)
    targets: list[Target] = []
    n_grid = len(view.buttons)

    if view.layout == "keypad":
        left = pygame.Rect(body.left, body.top, int(body.width * 0.42), body.height)
        pad_area = pygame.Rect(left.right + pad, body.top, body.right - left.right - pad, body.height)
        _text_block(surface, view, left, theme, centered=True)
        targets += _grid(surface, pad_area, view.buttons, view.columns, gap // 2, focus, 0, body.height)
    else:
        has_text = bool(view.notice or view.big or view.lines)
        rows = ceil(n_grid / max(1, view.columns)) if n_grid else 0
        if rows and has_text:
            # The text takes what it needs (estimated), the buttons the rest, within sensible row heights.
            want_text = (px(0.1) if view.notice else 0) + (px(0.2) if view.big else 0) + len(view.lines) * px(0.085)
            grid_h = max(rows * theme.min_target(surface), min(body.height - want_text, rows * px(0.2)))
            grid_h = min(grid_h, body.height - px(0.08))
        else:
            grid_h = body.height if rows else 0
        text_area = pygame.Rect(body.left, body.top, body.width, body.height - grid_h - (gap if rows else 0))
        if has_text:
            _text_block(surface, view, text_area, theme, centered=not rows or view.big != "")
        grid_area = pygame.Rect(body.left, body.bottom - grid_h, body.width, grid_h)
        targets += _grid(surface, grid_area, view.buttons, view.columns, gap, focus, 0, px(0.26))

    if view.footer:
        n = len(view.footer)
        fw = min((w - pad * (n + 1)) // n, int(w * 0.34))
        fh = foot_h - 2 * gap
        y = h - foot_h + gap
        common = min((label_size(surface, pygame.Rect(0, 0, fw, fh), b) for b in view.footer if not b.detail),
                     default=None)
        for i, b in enumerate(view.footer):
            # Back sits bottom-left; the rest line up to its right, confirm buttons last (away from Back).
            rect = pygame.Rect(pad + i * (fw + pad), y, fw, fh)
            draw_button(surface, rect, b, focused=(n_grid + i) == focus, size=common)
            if b.enabled:
                targets.append(Target(rect, b.action, b.value))
    return targets

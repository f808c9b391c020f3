"""A small drawing toolkit for screens over the movie: text, buttons, bars, QR codes.

Sizes scale with the screen height, so the same screen reads well on a 720p
test surface and a 1080p lobby TV. Text is large and high-contrast, and every
touch target is at least ``Theme.min_target`` pixels tall (about 9 mm on a
32" panel).

Screens draw with these helpers and return :class:`Target` rectangles, so a
touch is hit-tested against exactly what was drawn.
"""

from __future__ import annotations

import unicodedata
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec
import pygame

from kiosk.player.palette import drawable

FONT_DIR = Path(__file__).resolve().parent / "assets" / "fonts"

Color = tuple[int, int, int]


class Theme(msgspec.Struct, frozen=True):
    bg: Color = (14, 27, 48)
    panel: Color = (10, 20, 36)
    text: Color = (255, 255, 255)
    muted: Color = (200, 210, 225)
    accent: Color = (255, 196, 0)  # amber: readable on dark blue, and for the colour-blind
    ok: Color = (46, 204, 113)
    warn: Color = (255, 170, 0)
    bad: Color = (231, 76, 60)
    button: Color = (33, 97, 180)
    button_text: Color = (255, 255, 255)
    panel_alpha: int = 215

    def px(self, screen: pygame.Surface, fraction: float) -> int:
        """A length as a fraction of the screen height."""
        return max(1, round(screen.get_height() * fraction))

    def min_target(self, screen: pygame.Surface) -> int:
        return self.px(screen, 0.11)


THEME = Theme()


@lru_cache(maxsize=64)
def font(size: int, bold: bool = False) -> pygame.font.Font:
    if not pygame.font.get_init():
        pygame.font.init()
    name = "NotoSansJP-Bold-subset.otf" if bold else "NotoSansJP-Regular-subset.otf"
    path = FONT_DIR / name
    return pygame.font.Font(str(path) if path.exists() else None, max(8, size))


CLOSING = "、。，．・」』）！？"
"""Marks that may not begin a line (Japanese kinsoku)."""


@lru_cache(maxsize=1)
def _ja_parser() -> Any:
    import budoux  # BudouX: phrase boundaries from a small trained model, not hand-made character rules

    return budoux.load_default_japanese_parser()


def _wide(c: str) -> bool:
    return unicodedata.east_asian_width(c) in "WF"


@lru_cache(maxsize=2048)
def chunks(para: str) -> tuple[str, ...]:
    """``para`` cut where a line may break: Japanese at BudouX's phrase boundaries ("ありがとう|ございます"),
    Latin after spaces. Joined back together they give ``para`` unchanged."""
    if not any(_wide(c) for c in para):
        parts = para.split(" ")
        return tuple(w + " " for w in parts[:-1]) + (parts[-1],)
    out: list[str] = []
    for phrase in _ja_parser().parse(para):
        # Inside a phrase, Latin words (an amount, a card name) still break at their spaces.
        pieces = phrase.split(" ")
        out += [w + " " for w in pieces[:-1]] + [pieces[-1]]
    # Kinsoku: a closing mark never starts a line (BudouX may start a phrase with "。" before Latin text).
    merged: list[str] = []
    for c in out:
        while merged and c and c[0] in CLOSING:
            merged[-1] += c[0]
            c = c[1:]
        if c:
            merged.append(c)
    return tuple(merged)


def _split_long(chunk: str, f: pygame.font.Font, max_width: int) -> list[str]:
    """A single phrase wider than the line: cut it by characters (the last resort)."""
    lines, line = [], ""
    for ch in chunk:
        if line and f.size(line + ch)[0] > max_width:
            if ch in CLOSING and len(line) > 1:  # kinsoku: the mark takes the character before it along
                lines.append(line[:-1])
                line = line[-1] + ch
                continue
            lines.append(line)
            line = ch
        else:
            line += ch
    return lines + [line]


def wrap(text: str, f: pygame.font.Font, max_width: int) -> list[str]:
    """``text`` broken into lines no wider than ``max_width`` in ``f`` (cached: screens redraw every frame)."""
    return list(_wrap(text, f, max_width))


@lru_cache(maxsize=1024)
def _wrap(text: str, f: pygame.font.Font, max_width: int) -> tuple[str, ...]:
    # Keyed by the Font object itself (``font`` hands out one per size and weight), so two sizes never share.
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for chunk in chunks(para):
            trial = line + chunk
            if f.size(trial.rstrip())[0] <= max_width or not line.strip():
                line = trial
            else:
                lines.append(line.rstrip())
                line = chunk.lstrip()
            if f.size(line.rstrip())[0] > max_width:
                *full, line = _split_long(line, f, max_width)
                lines += full
        lines.append(line.rstrip())
    return tuple(lines)


LINE_CACHE_BYTES = 12 * 2**20
"""Pixels kept by :func:`rendered_line`: a 1080p thank-you's lines are about 5 MB (32-bit, a line of large
text is 100-700 KB), the attract band and the charging step 1-2 MB each. Bounded by bytes, not by count:
playback's RSS budget is 200 MB."""

_lines: OrderedDict[tuple[pygame.font.Font, str, tuple[int, ...]], pygame.Surface] = OrderedDict()
_lines_bytes = 0


LINE_SPACING = 1.15
"""Line pitch of wrapped text, in font line heights (:func:`text`; the menu counts the lines that fit a button
with it)."""


def rendered_line(f: pygame.font.Font, line: str, color: Color) -> pygame.Surface:
    """One antialiased line of text, kept (least recently used first out, up to ``LINE_CACHE_BYTES``): the
    thank-you and the attract band redraw the same words every frame, and glyph rendering was a third of the
    thank-you's first frame. Main thread only (drawing); callers only blit the result.

    Titles come from the portal as they were typed: an undrawable character (``palette.UNDRAWABLE``: a NUL,
    a lone surrogate, a line separator) is drawn as a space, and a line with no visible width (only a
    right-to-left override or a zero-width space) is an empty surface of the font's height. pygame raises on
    both, and a screen that raises is not drawn at all."""
    global _lines_bytes
    key = (f, line, tuple(color))
    surf = _lines.get(key)
    if surf is not None:
        _lines.move_to_end(key)
        return surf
    clean = line if line.isprintable() else drawable(line)
    if f.size(clean)[0] == 0:
        surf = pygame.Surface((0, f.get_height()), pygame.SRCALPHA)
    else:
        surf = f.render(clean, True, color)
    _lines[key] = surf
    _lines_bytes += surf.get_pitch() * surf.get_height()
    while _lines_bytes > LINE_CACHE_BYTES and len(_lines) > 1:
        _, old = _lines.popitem(last=False)
        _lines_bytes -= old.get_pitch() * old.get_height()
    return surf


def clear_text_cache() -> None:
    """Forget every cached line, wrap and phrase split (tests compare against a cold draw)."""
    global _lines_bytes
    _lines.clear()
    _lines_bytes = 0
    _wrap.cache_clear()
    chunks.cache_clear()


def text(surface: pygame.Surface, s: str, pos: tuple[int, int], size: int, color: Color = THEME.text, *,
         bold: bool = False, anchor: str = "topleft", max_width: int | None = None,
         line_spacing: float = LINE_SPACING) -> pygame.Rect:
    """Draw (wrapped) text; returns the bounding rectangle."""
    f = font(size, bold)
    if TEXT_SIZES is not None:
        TEXT_SIZES.append((max(8, size), s))
    if not s.isprintable():  # measured as drawn (rendered_line); isprintable: a fast test for the usual text
        s = "\n".join(drawable(p) for p in s.split("\n"))
    lines = wrap(s, f, max_width) if max_width else s.split("\n")
    rendered = [rendered_line(f, ln, color) for ln in lines]
    height = int(f.get_linesize() * line_spacing) * (len(rendered) - 1) + (rendered[-1].get_height() if rendered else 0)
    width = max((r.get_width() for r in rendered), default=0)
    box = pygame.Rect(0, 0, width, height)
    setattr(box, anchor, pos)
    y = box.top
    for r in rendered:
        rr = r.get_rect()
        if "right" in anchor:
            rr.topright = (box.right, y)
        elif anchor in ("center", "midtop", "midbottom"):
            rr.midtop = (box.centerx, y)
        else:
            rr.topleft = (box.left, y)
        if TEXT_INK is not None:
            _record_ink(surface, rr, r, max(8, size), bold, color, s)
        surface.blit(r, rr)
        y += int(f.get_linesize() * line_spacing)
    if TEXT_BOXES is not None:
        TEXT_BOXES.append(DrawnText(box.move(surface.get_abs_offset()), max(8, size), s))
    return box


TEXT_SIZES: list[tuple[int, str]] | None = None
"""While :func:`measure_text` runs: every (font size in pixels, text) drawn (the readability test reads it)."""


@contextmanager
def measure_text() -> Iterator[list[tuple[int, str]]]:
    """Collect the size of every text drawn inside the block (one global: for tests, on one thread)."""
    global TEXT_SIZES
    TEXT_SIZES = []
    try:
        yield TEXT_SIZES
    finally:
        TEXT_SIZES = None


class DrawnText(msgspec.Struct, frozen=True):
    """One text drawn while :func:`measure_boxes` runs: where on the screen (a layout area's subsurface
    counted in), at what font size, and what."""

    rect: pygame.Rect
    size: int
    text: str


TEXT_BOXES: list[DrawnText] | None = None


@contextmanager
def measure_boxes() -> Iterator[list[DrawnText]]:
    """Collect where every text inside the block was drawn, in screen coordinates (tests, one thread)."""
    global TEXT_BOXES
    TEXT_BOXES = []
    try:
        yield TEXT_BOXES
    finally:
        TEXT_BOXES = None


class DrawnInk(msgspec.Struct, frozen=True):
    """One line of text drawn while :func:`measure_ink` runs: its colour, size and weight, the glyphs as
    rendered (per-pixel alpha) and a copy of the pixels they were drawn over, so a test can check the
    contrast of what is really on the screen (``tests/app/test_screens_contrast.py``)."""

    rect: pygame.Rect
    size: int
    bold: bool
    color: Color
    text: str
    glyphs: pygame.Surface
    under: pygame.Surface


TEXT_INK: list[DrawnInk] | None = None


def _record_ink(surface: pygame.Surface, rr: pygame.Rect, line: pygame.Surface, size: int, bold: bool,
                color: Color, s: str) -> None:
    clip = rr.clip(surface.get_rect())
    if clip.width == 0 or clip.height == 0 or TEXT_INK is None:
        return
    TEXT_INK.append(DrawnInk(clip.move(surface.get_abs_offset()), size, bold, (color[0], color[1], color[2]), s,
                             line.subsurface(clip.move(-rr.x, -rr.y)).copy(), surface.subsurface(clip).copy()))


@contextmanager
def measure_ink() -> Iterator[list[DrawnInk]]:
    """Collect every line of text drawn inside the block with what was under it (tests, one thread)."""
    global TEXT_INK
    TEXT_INK = []
    try:
        yield TEXT_INK
    finally:
        TEXT_INK = None


MIN_LAYOUT_ASPECT = 1.5
"""The narrowest panel shape (width / height) the screens and the menu are laid out for: 3:2. They place things
by fractions of the width and size them by fractions of the height, so on a narrower panel (4:3, and every
portrait one: 1080×1920 signage, 720×1280) buttons would be narrower than their labels and text would run off
the screen. There they are drawn in a 3:2 area as wide as the panel, at its bottom edge (:func:`layout_rect`)."""


def layout_rect(size: tuple[int, int]) -> pygame.Rect:
    """Where the screens lay out on a panel of ``size``: all of it from 3:2 to the widest, else a 3:2 area the
    panel's width at its bottom, next to a card reader under the screen and within a standing person's reach
    (the movie keeps the rest on the attract loop; the other steps cover it)."""
    w, h = size
    if w >= h * MIN_LAYOUT_ASPECT:
        return pygame.Rect(0, 0, w, h)
    lh = max(1, min(h, int(w / MIN_LAYOUT_ASPECT)))
    return pygame.Rect(0, h - lh, w, lh)


def on_screen(targets: list[Target], area: pygame.Rect, screen: pygame.Rect) -> list[Target]:
    """``targets`` drawn in ``area`` (a subsurface), in screen coordinates. A target that covers the whole area
    (a touch anywhere on the loop or an error) covers the whole screen."""
    whole = pygame.Rect((0, 0), area.size)
    return [Target(screen.copy() if t.rect == whole else t.rect.move(area.topleft), t.action, t.value)
            for t in targets]


class Target(msgspec.Struct, frozen=True):
    """A touchable rectangle and the action it stands for."""

    rect: pygame.Rect
    action: str
    value: Any = None


def button(surface: pygame.Surface, rect: pygame.Rect, label: str, action: str, value: Any = None, *,
           theme: Theme = THEME, selected: bool = False, size: int | None = None) -> Target:
    rect = rect.copy()
    rect.height = max(rect.height, theme.min_target(surface))
    radius = rect.height // 5
    pygame.draw.rect(surface, theme.accent if selected else theme.button, rect, border_radius=radius)
    pygame.draw.rect(surface, theme.text, rect, width=max(2, rect.height // 30), border_radius=radius)
    color = theme.bg if selected else theme.button_text
    size = size or int(rect.height * 0.42)
    room = rect.width - 2 * max(2, rect.height // 30) - 2
    while size > 8 and font(size, True).size(label)[0] > room:  # a label never runs past its button's edge
        size -= 1
    text(surface, label, rect.center, size, color, bold=True, anchor="center")
    return Target(rect, action, value)


def panel(surface: pygame.Surface, rect: pygame.Rect, *, theme: Theme = THEME, alpha: int | None = None) -> None:
    """A translucent box over the movie, so text stays readable on any frame."""
    layer = pygame.Surface(rect.size, pygame.SRCALPHA)
    layer.fill((*theme.panel, theme.panel_alpha if alpha is None else alpha))
    surface.blit(layer, rect.topleft)


def progress(surface: pygame.Surface, rect: pygame.Rect, fraction: float, *, theme: Theme = THEME) -> None:
    fraction = min(1.0, max(0.0, fraction))
    radius = rect.height // 2
    pygame.draw.rect(surface, (60, 70, 90), rect, border_radius=radius)
    if fraction > 0:
        filled = rect.copy()
        filled.width = max(rect.height, round(rect.width * fraction))
        pygame.draw.rect(surface, theme.accent, filled, border_radius=radius)


def qr(data: str, size: int, *, dark: Color = (0, 0, 0), light: Color = (255, 255, 255)) -> pygame.Surface:
    """A QR code (segno, error correction M, quiet zone 2) scaled to ``size`` pixels square."""
    import segno  # off the start path: its writers pull in urllib, http and email

    code = segno.make(data, error="m", micro=False)
    matrix = [list(row) for row in code.matrix]
    quiet = 2
    n = len(matrix) + 2 * quiet
    small = pygame.Surface((n, n))
    small.fill(light)
    for y, row in enumerate(matrix):
        for x, bit in enumerate(row):
            if bit:
                small.set_at((x + quiet, y + quiet), dark)
    scale = max(1, size // n)
    return pygame.transform.scale(small, (n * scale, n * scale))


def hit(targets: list[Target], pos: tuple[int, int]) -> Target | None:
    """The target under a touch; the last drawn wins when targets overlap."""
    for t in reversed(targets):
        if t.rect.collidepoint(pos):
            return t
    return None


@dataclass
class GoldenResult:
    ok: bool
    mean_diff: float
    changed_fraction: float
    detail: str = ""
    extra: dict = field(default_factory=dict)


def compare_images(actual: pygame.Surface, golden: pygame.Surface, *, mean_tol: float = 2.0,
                   changed_tol: float = 0.01, pixel_tol: int = 48) -> GoldenResult:
    """Compare two renders with a tolerance for anti-aliasing and font hinting differences.

    ``mean_diff`` is the mean absolute channel difference (0-255); ``changed_fraction`` the share of
    pixels whose largest channel difference exceeds ``pixel_tol``.
    """
    if actual.get_size() != golden.get_size():
        return GoldenResult(False, 255.0, 1.0, f"size {actual.get_size()} != golden {golden.get_size()}")
    # numpy (a test dependency; this function only serves tests): a 1080p image in milliseconds, not seconds.
    import numpy as np

    a = np.frombuffer(pygame.image.tobytes(actual, "RGB"), dtype=np.uint8).reshape(-1, 3).astype(np.int16)
    g = np.frombuffer(pygame.image.tobytes(golden, "RGB"), dtype=np.uint8).reshape(-1, 3).astype(np.int16)
    d = np.abs(a - g)
    mean = float(d.mean())
    frac = float((d.max(axis=1) > pixel_tol).mean())
    ok = mean <= mean_tol and frac <= changed_tol
    return GoldenResult(ok, mean, frac, "" if ok else f"mean diff {mean:.2f} (tol {mean_tol}), "
                                                     f"changed {frac:.2%} (tol {changed_tol:.2%})")

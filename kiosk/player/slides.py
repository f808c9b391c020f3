"""Still slides the kiosk draws itself: upcoming events, and the fallback shown when no clip can play.

Slides are rendered once per (slide, screen size) and cached, so showing one
costs a blit. The font is injectable: the lead vendors a Noto Sans JP subset
under ``kiosk/ui/assets/fonts`` later; until then pygame's default font is used
and Japanese text may show as boxes, in which case English titles are
preferred where the config has them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pygame

from kiosk.config.plain import data_of
from kiosk.player.palette import AREA_COLOURS, ASSET_FONTS  # noqa: F401 - imported from here too

if TYPE_CHECKING:
    from kiosk.config.player import EventSlide

log = logging.getLogger("kiosk.player.slides")

SLIDE_BG = (24, 62, 112)
STILL_BG = (40, 64, 96)
INK = (255, 255, 255)
SOFT_INK = (214, 226, 240)


def find_font(configured: str | Path | None = None) -> Path | None:
    """The configured font file, else the first vendored ``kiosk/ui/assets/fonts/*.otf|*.ttf``, else ``None``
    (pygame's default)."""
    if configured:
        p = Path(configured)
        if p.is_file():
            return p
        log.warning("player: font %s not found; using the default font", p)
    if ASSET_FONTS.is_dir():
        for pattern in ("*.otf", "*.ttf"):
            found = sorted(ASSET_FONTS.glob(pattern))
            if found:
                return found[0]
    return None


class Fonts:
    """Font objects by pixel size for one font file (``None``: pygame's default font)."""

    def __init__(self, path: Path | None):
        if not pygame.font.get_init():
            pygame.font.init()
        self.path = path
        self._cache: dict[int, pygame.font.Font] = {}
        self._cjk: bool | None = None

    def get(self, px: int) -> pygame.font.Font:
        px = max(8, int(px))
        if px not in self._cache:
            self._cache[px] = pygame.font.Font(str(self.path) if self.path else None, px)
        return self._cache[px]

    @property
    def has_japanese(self) -> bool:
        """Whether the font draws kanji: a font without them draws the same box for every one."""
        if self._cjk is None:
            f = self.get(32)
            a, b = f.render("市", True, INK), f.render("場", True, INK)
            self._cjk = pygame.image.tobytes(a, "RGBA") != pygame.image.tobytes(b, "RGBA")
        return self._cjk

    def pick(self, ja: str, en: str) -> str:
        return ja if (self.has_japanese or not en) else en


def _fit(fonts: Fonts, text: str, px: int, max_w: int, colour: tuple[int, int, int] = INK) -> pygame.Surface:
    """Render ``text`` as large as ``px`` but shrunk until it fits ``max_w``."""
    while True:
        surf = fonts.get(px).render(text, True, colour)
        if surf.get_width() <= max_w or px <= 10:
            return surf
        px = int(px * max(0.5, max_w / surf.get_width()))


def _compose(size: tuple[int, int], bg: tuple[int, int, int], lines: list[tuple[str, float, tuple[int, int, int]]],
             fonts: Fonts, accent: tuple[int, int, int] | None = None) -> pygame.Surface:
    w, h = size
    surf = pygame.Surface(size)
    surf.fill(bg)
    # A soft band at the top and bottom so the slide reads as designed, not as an error screen.
    band = max(4, h // 60)
    pygame.draw.rect(surf, accent or SOFT_INK, (0, 0, w, band))
    pygame.draw.rect(surf, accent or SOFT_INK, (0, h - band, w, band))
    rendered = []
    for text, rel, colour in lines:
        if not text:
            continue
        rendered.append(_fit(fonts, text, int(h * rel), int(w * 0.9), colour))
    gap = h // 30
    total = sum(s.get_height() for s in rendered) + gap * max(0, len(rendered) - 1)
    y = (h - total) // 2
    for s in rendered:
        surf.blit(s, ((w - s.get_width()) // 2, y))
        y += s.get_height() + gap
    return surf


class SlideRenderer:
    def __init__(self, font_path: Path | None = None):
        self.fonts = Fonts(font_path)
        self._cache: dict[tuple, pygame.Surface] = {}
        if not self.fonts.has_japanese:
            log.info("player: font has no Japanese glyphs; set player.font (or vendor kiosk/ui/assets/fonts) "
                     "for 日本語")

    def clear(self) -> None:
        self._cache.clear()

    def event(self, slide: EventSlide, size: tuple[int, int]) -> pygame.Surface:
        key = ("event", repr(data_of(slide)), size)  # a model or its plain copy (kiosk/config/plain.py) alike
        if key not in self._cache:
            d = slide.date
            date = f"{d.year}年{d.month}月{d.day}日({'月火水木金土日'[d.weekday()]})" if self.fonts.has_japanese \
                else d.strftime("%a %Y-%m-%d")
            when = " ".join(x for x in (date, slide.time) if x)
            self._cache[key] = _compose(
                size, SLIDE_BG,
                [(self.fonts.pick("お知らせ", "Upcoming event"), 0.06, SOFT_INK), (slide.title, 0.11, INK),
                 (when, 0.07, INK), (slide.place, 0.07, INK), (slide.note, 0.05, SOFT_INK)],
                self.fonts, accent=(250, 190, 60),
            )
        return self._cache[key]

    def still(self, size: tuple[int, int], title: str, lines: list[str]) -> pygame.Surface:
        """The fallback slide shown when nothing is playable: never a black screen."""
        key = ("still", title, tuple(lines), size)
        if key not in self._cache:
            body = [(line, 0.05, SOFT_INK) for line in lines[:6]]
            self._cache[key] = _compose(size, STILL_BG, [(title, 0.1, INK), *body], self.fonts)
        return self._cache[key]

"""Colour contrast of every text really drawn on the lobby screens and the staff menu: WCAG 2.1 AA (1.4.3).

Each screen is drawn as the golden tests draw it (the donation screens over ``app_samples.backdrop``, the
movie stand-in, and the attract band over a real event slide; the menu pages from the menu golden setups)
while ``widgets.measure_ink`` records, for every line of text, its colour, size and weight, its glyphs and
the pixels it was drawn over. The background is read under the glyphs' solid strokes (alpha >= 0.8), so
a translucent band over a busy movie frame is judged by what shows through it, not by the theme's numbers.

Thresholds: 4.5:1, or 3:1 for large text. "Large" as WCAG defines it (18 pt = 24 px, or 14 pt bold =
18.66 px), taken on the 1280×720 render the goldens use: a font size of >= 24 px, or >= 19 px bold. Relative
luminance and the contrast ratio are WCAG 2.1's own formulas, computed in tests/app/wcag.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygame
import pytest
from app_samples import CTX, EXTRA_SCREENS, backdrop, screens
from wcag import ratio

from kiosk.ui import widgets as ui
from kiosk.ui.screens import render

SIZE = (1280, 720)
NORMAL, LARGE = 4.5, 3.0
SOLID = 204
"""Glyph alpha (0-255) from which a pixel counts as the stroke itself, not its anti-aliased edge."""
SPECKS = 0.02
"""Share of a line's stroke pixels allowed below the ratio: a stroke crossing the anti-aliased rim of a shape
drawn before it. A line on a wrong colour is far above this."""


@pytest.fixture(autouse=True, scope="module")
def _pg():
    pygame.font.init()
    yield


def is_large(ink: ui.DrawnInk, height: int) -> bool:
    px = ink.size * SIZE[1] / height  # the size at 1280×720
    return px >= 24 or (ink.bold and px >= 18.66)


def failures(inks: list[ui.DrawnInk], height: int) -> list[str]:
    """One line per text whose strokes (but for ``SPECKS``) do not reach its threshold."""
    out = []
    for ink in inks:
        alpha = pygame.surfarray.pixels_alpha(ink.glyphs).copy() if ink.glyphs.get_flags() & pygame.SRCALPHA \
            else np.full(ink.glyphs.get_size(), 255, np.uint8)
        strokes = alpha >= SOLID
        if not strokes.any():
            continue
        under = pygame.surfarray.array3d(ink.under)[strokes]
        r = ratio(np.array(ink.color), under)
        need = LARGE if is_large(ink, height) else NORMAL
        low = r < need
        if low.mean() > SPECKS:
            worst = tuple(int(v) for v in under[np.argmin(r)])
            out.append(f"{ink.text!r} {ink.color} on {worst}: {float(np.quantile(r, SPECKS)):.2f}"
                       f" < {need} ({ink.size}px{' bold' if ink.bold else ''}, {low.mean():.0%} of strokes)")
    return out


def _donation(name: str, lang: str) -> tuple[pygame.Surface, list[ui.DrawnInk]]:
    s = backdrop(SIZE)
    with ui.measure_ink() as inks:
        if name in EXTRA_SCREENS:
            EXTRA_SCREENS[name](s, lang)
        else:
            render(screens(lang)[name], s, 0, ctx=CTX)
    return s, inks


DONATION = sorted(screens("ja")) + sorted(EXTRA_SCREENS)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_text_on_every_donation_screen_meets_wcag_aa(lang: str) -> None:
    bad = {}
    for name in DONATION:
        _, inks = _donation(name, lang)
        assert inks, name
        if f := failures(inks, SIZE[1]):
            bad[name] = f
    assert not bad, "\n".join(f"{n}: {line}" for n, lines in bad.items() for line in lines)


@pytest.mark.parametrize("frame", [(255, 255, 255), (0, 0, 0), (255, 214, 0)], ids=["white", "black", "yellow"])
def test_the_attract_band_is_readable_over_any_movie_frame(frame: tuple[int, int, int]) -> None:
    """The band is translucent: text on it must stay readable over the brightest and the darkest frame."""
    bad = {}
    for name in ("attract", "attract_offline", "attract_points"):
        for lang in ("ja", "en"):
            s = pygame.Surface(SIZE)
            s.fill(frame)
            with ui.measure_ink() as inks:
                render(screens(lang)[name], s, 0, ctx=CTX)
            if f := failures(inks, SIZE[1]):
                bad[f"{name}.{lang}"] = f
    assert not bad, "\n".join(f"{n}: {line}" for n, lines in bad.items() for line in lines)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_text_on_every_menu_page_meets_wcag_aa(tmp_path: Path, lang: str) -> None:
    from tests.menu.conftest import build_rig
    from tests.menu.test_menu_golden import SETUPS

    bad = {}
    for name, setup in SETUPS.items():
        rig = build_rig(tmp_path / f"{name}-{lang}")
        try:
            rig.machine.language = lang
            setup(rig)
            with ui.measure_ink() as inks:
                rig.menu.render(pygame.Surface(SIZE), 0)
        finally:
            rig.ledger.close(checkpoint=False)
        assert inks, name
        if f := failures(inks, SIZE[1]):
            bad[name] = f
    assert not bad, "\n".join(f"{n}: {line}" for n, lines in bad.items() for line in lines)


def test_the_formula_is_wcags() -> None:
    assert float(ratio(np.array((0, 0, 0)), np.array((255, 255, 255)))) == pytest.approx(21.0)
    assert float(ratio(np.array((119, 119, 119)), np.array((255, 255, 255)))) == pytest.approx(4.48, abs=0.01)
    assert float(ratio(np.array((118, 118, 118)), np.array((255, 255, 255)))) == pytest.approx(4.54, abs=0.01)


def test_a_low_contrast_text_is_caught() -> None:
    """The check can fail: grey text on the thank-you's dark ground, and the thank-you's dark code on white made
    light grey, are both found, at the threshold their size calls for."""
    s = backdrop(SIZE)
    with ui.measure_ink() as inks:
        render(screens("ja")["thanks"], s, 0, ctx=CTX)
        ui.text(s, "small", (40, 600), 20, (90, 100, 115))  # under 24 px: 4.5:1 needed
        ui.text(s, "large", (40, 640), 30, (60, 70, 85))
    found = failures(inks, SIZE[1])
    assert len(found) == 2 and "'small'" in found[0] and "< 4.5" in found[0] and "< 3.0" in found[1], found
    card = pygame.Surface((400, 100))
    card.fill((255, 255, 255))
    with ui.measure_ink() as inks:
        ui.text(card, "ABCD EFGH", (10, 10), 30, (190, 190, 190), bold=True)
        ui.text(card, "ABCD EFGH", (10, 50), 30, (14, 27, 48), bold=True)
    found = failures(inks, SIZE[1])
    assert len(found) == 1 and "(190, 190, 190)" in found[0], found


def test_every_area_colour_carries_white_title_text() -> None:
    """The policy areas' colours (kiosk/player/palette.py) are also the grounds of white title text this test does
    not draw: the demo movies' title cards and the movie maker's opening and closing cards (large text, 3:1). The
    children's orange was (236, 128, 44), 2.73:1 behind white."""
    from kiosk.player.palette import AREA_COLOURS
    from kiosk.player.slides import INK

    low = {a: round(float(ratio(np.array(c), np.array(INK))), 2) for a, c in AREA_COLOURS.items()
           if float(ratio(np.array(c), np.array(INK))) < 3.0}
    assert not low, f"white text on these area colours is under 3:1: {low}"

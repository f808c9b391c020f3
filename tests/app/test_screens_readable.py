"""Issue #15: large text, readable at 1080p from two metres. The smallest text drawn on every citizen screen is
measured (the font size of every string the screen draws), in both languages, at 1280×720 and 1920×1080.

The floor is 3 % of the screen height: 32 px at 1080p, about 12 mm on a 32" panel and 16 mm on a 43" one,
above the 7 mm a 2 m viewing distance needs. Contrast: text is drawn on the opaque panel colour or white, and
the colours used are checked against WCAG's 4.5:1.
"""

from __future__ import annotations

import pygame
import pytest
from app_samples import CTX, backdrop, screens
from wcag import contrast

from kiosk.ui import widgets as ui
from kiosk.ui.screens import render
from kiosk.ui.widgets import THEME

FLOOR = 0.03
NAMES = sorted(screens("ja"))


@pytest.fixture(autouse=True, scope="module")
def _pg():
    pygame.font.init()
    yield


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)], ids=["720p", "1080p"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_no_text_below_the_floor_on_any_screen(size: tuple[int, int], lang: str) -> None:
    too_small = {}
    for name in NAMES:
        s = backdrop(size)
        with ui.measure_text() as drawn:
            render(screens(lang)[name], s, 0, ctx=CTX)
        assert drawn, name
        smallest = min(drawn)
        if smallest[0] < round(FLOOR * size[1]):
            too_small[name] = smallest
    assert not too_small, f"text below {FLOOR * size[1]:.0f} px: {too_small}"


def test_text_colours_have_high_contrast_on_the_panel() -> None:
    for colour in (THEME.text, THEME.muted, THEME.accent, THEME.ok, THEME.warn):
        assert contrast(colour, THEME.panel) >= 4.5, colour
    assert contrast(THEME.button_text, THEME.button) >= 4.5
    assert contrast(THEME.bg, (255, 255, 255)) >= 4.5  # the receipt card: dark text on white

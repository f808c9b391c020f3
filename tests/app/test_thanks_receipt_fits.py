"""Issue #15 defect 1: the receipt code must be drawn inside its white card, never on the dark scrim.

Measured on real pygame Surfaces at the kiosk's two sizes, in both languages: the screen is drawn
twice with two receipt codes, and every pixel that differs (the QR and the written-out code, nothing
else depends on the code) must lie inside the card's rectangle, away from its rounded corners.
"""

from __future__ import annotations

import pygame
import pytest
from app_samples import CTX, backdrop

from kiosk.donation import flow
from kiosk.ui.screens import render
from kiosk.ui.screens.thanks import receipt_card_rect
from kiosk.ui.widgets import THEME
from server_sync.wire.receipt import receipt_code_of

# A real code (26 base32 characters, as the portal makes it) and the widest the alphabet allows.
CODES = (receipt_code_of(b"sample donation", b"signature"), "MW" * 13)
CASES = [(size, lang) for size in ((1280, 720), (1920, 1080)) for lang in ("ja", "en")]


@pytest.fixture(autouse=True, scope="module")
def _pg():
    pygame.font.init()
    yield


def draw(size: tuple[int, int], code: str, lang: str) -> pygame.Surface:
    s = backdrop(size)
    render(flow.ThanksScreen("kodomo-shokudo", 500, 12_800, 5, 17, code, 42, lang), s, 0, ctx=CTX)
    return s


def changed_box(a: pygame.Surface, b: pygame.Surface) -> pygame.Rect:
    """Bounding box of every pixel that differs between two drawings."""
    diff = pygame.PixelArray(a).compare(pygame.PixelArray(b), distance=0.0)
    surf = diff.make_surface()
    del diff
    mask = pygame.mask.from_threshold(surf, (0, 0, 0), (1, 1, 1, 255))  # compare() marks differences black
    rects = mask.get_bounding_rects()
    assert rects, "the receipt code changed nothing on screen"
    return rects[0].unionall(rects[1:])


@pytest.mark.parametrize("size,lang", CASES, ids=[f"{w}x{h}-{lang}" for (w, h), lang in CASES])
def test_receipt_code_is_drawn_inside_the_white_card(size: tuple[int, int], lang: str) -> None:
    a, b = (draw(size, code, lang) for code in CODES)
    card = receipt_card_rect(a, THEME)
    # The rectangle really is the white card that was drawn (its middle edges are white).
    for x, y in (card.midleft, (card.right - 1, card.centery), card.midtop, (card.centerx, card.bottom - 1)):
        assert a.get_at((x, y))[:3] == (255, 255, 255), (x, y)
    box = changed_box(a, b)
    inner = card.inflate(-2 * THEME.px(a, 0.01), -2 * THEME.px(a, 0.01))
    assert inner.contains(box), f"receipt drawing {box} leaves the card {card} (inner {inner})"

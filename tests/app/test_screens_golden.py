"""Golden images of every donation screen at 1280×720 and 1920×1080, in Japanese and English.

The framework is ``tests/goldenkit.py``: regenerate after an intended change with
``KIOSK_UPDATE_GOLDEN=1 pytest tests/app/test_screens_golden.py``, then look at every changed PNG in
tests/golden/donation/<W>x<H>/ (``python -m tests.goldenkit sheet`` lays the four renders of a screen
side by side) before committing them.
"""

from __future__ import annotations

import pygame
import pytest
from app_samples import CTX, EXTRA_SCREENS, backdrop, screens

from kiosk.donation import flow
from kiosk.ui import widgets as ui
from kiosk.ui.screens import render
from tests import goldenkit

NAMES = sorted(screens("ja")) + sorted(EXTRA_SCREENS)
SIZE = goldenkit.SIZES[0]


@pytest.fixture(autouse=True, scope="module")
def _pg():
    pygame.font.init()
    yield


def draw(data: flow.Screen, now_ms: int = 0, size: tuple[int, int] = SIZE) -> pygame.Surface:
    s = backdrop(size)
    render(data, s, now_ms, ctx=CTX)
    return s


def draw_named(name: str, size: tuple[int, int], lang: str) -> pygame.Surface:
    if name in EXTRA_SCREENS:
        s = backdrop(size)
        EXTRA_SCREENS[name](s, lang)
        return s
    return draw(screens(lang)[name], 0, size)


@pytest.mark.parametrize("name,size,lang", goldenkit.cases(NAMES))
def test_screen_matches_golden(name: str, size: tuple[int, int], lang: str) -> None:
    goldenkit.check(draw_named(name, size, lang), "donation", name, lang)


def test_every_screen_and_error_kind_has_a_golden_at_every_size_and_language() -> None:
    for (size, lang), names in goldenkit.names_on_disk("donation").items():
        where = f"{size[0]}x{size[1]} {lang}"
        assert set(NAMES) <= names, f"{where}: missing {sorted(set(NAMES) - names)}"
        assert names <= set(NAMES), f"{where}: stale goldens {sorted(names - set(NAMES))}"
        for hint in flow.HINTS:
            assert f"error_{hint}" in names, where
    assert {f"error_{e.hint}" for e in screens().values() if isinstance(e, flow.ErrorScreen)} >= {
        f"error_{k}" for k in flow.ERROR_KINDS}


@pytest.mark.parametrize("golden,different", [
    ("thanks", flow.ThanksScreen("kodomo-shokudo", 1000, 13_300, 10, 22, "ZHMWMD2CPFYYXEFQP5IPXGEOCU", 42, "ja")),
    ("thanks", flow.ThanksScreen("kodomo-shokudo", 500, 12_800, 5, 17, "zzzzzzzzzzzzzzzz", 42, "ja")),
    ("attract", flow.AttractScreen("kodomo-shokudo", 100, True, "en")),
    ("attract", flow.AttractScreen("kodomo-shokudo", 100, False, "ja")),
    ("error_declined", screens()["error_not_charged"]),
    ("choose_amount", flow.ChooseAmountScreen("kodomo-shokudo", (100, 500, 1000), 500, "ja")),
])
def test_a_different_screen_does_not_match(golden: str, different: flow.Screen) -> None:
    """The comparison can fail: another amount, receipt code, language or hint is caught."""
    path = goldenkit.path_for("donation", SIZE, golden, "ja")
    result = ui.compare_images(draw(different), pygame.image.load(str(path)))
    assert not result.ok, result


def test_only_the_animation_moves_with_time() -> None:
    # Attract, choose and thanks are still; tap and charging animate (so they are golden at now_ms=0 only).
    for name in ("attract", "choose_amount", "thanks", "error_declined"):
        assert ui.compare_images(draw(screens()[name], 0), draw(screens()[name], 777)).mean_diff == 0
    assert ui.compare_images(draw(screens()["charging"], 0), draw(screens()["charging"], 400)).mean_diff > 0

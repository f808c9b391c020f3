"""Golden images of every donation screen (640×360), Japanese and English, compared with a tolerance.

Regenerate after an intended change with ``KIOSK_UPDATE_GOLDEN=1 pytest tests/app`` and look at
the PNGs in tests/golden/donation before committing them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pygame
import pytest
from app_samples import CTX, SIZE, backdrop, screens

from kiosk.donation import flow
from kiosk.ui import widgets as ui
from kiosk.ui.screens import render

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "donation"
UPDATE = os.environ.get("KIOSK_UPDATE_GOLDEN") == "1"
ENGLISH = ("attract", "choose_amount", "tap_card", "charging", "thanks", "error_declined", "tap_card_terminal",
           "charging_terminal_pending", "charging_terminal_cancel_refused", "thanks_no_points")

CASES = [(name, "ja") for name in screens("ja")] + [(name, "en") for name in ENGLISH]


@pytest.fixture(autouse=True, scope="module")
def _pg():
    pygame.font.init()
    yield


def draw(data: flow.Screen, now_ms: int = 0) -> pygame.Surface:
    s = backdrop(SIZE)
    render(data, s, now_ms, ctx=CTX)
    return s


def golden_path(name: str, lang: str) -> Path:
    return GOLDEN / f"{name}{'_en' if lang == 'en' else ''}.png"


@pytest.mark.parametrize("name,lang", CASES, ids=[f"{n}-{lang}" for n, lang in CASES])
def test_screen_matches_golden(name: str, lang: str) -> None:
    surface = draw(screens(lang)[name])
    path = golden_path(name, lang)
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"no golden image {path.name}; run with KIOSK_UPDATE_GOLDEN=1 and review it")
        path.parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(surface, str(path))
    result = ui.compare_images(surface, pygame.image.load(str(path)))
    assert result.ok, f"{path.name}: {result.detail}"


def test_every_screen_and_error_kind_has_a_golden() -> None:
    names = {p.stem for p in GOLDEN.glob("*.png")}
    for screen in ("attract", "choose_amount", "tap_card", "charging", "thanks"):
        assert screen in names and f"{screen}_en" in names
    for hint in flow.HINTS:
        assert f"error_{hint}" in names
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
    result = ui.compare_images(draw(different), pygame.image.load(str(GOLDEN / f"{golden}.png")))
    assert not result.ok, result


def test_only_the_animation_moves_with_time() -> None:
    # Attract, choose and thanks are still; tap and charging animate (so they are golden at now_ms=0 only).
    for name in ("attract", "choose_amount", "thanks", "error_declined"):
        assert ui.compare_images(draw(screens()[name], 0), draw(screens()[name], 777)).mean_diff == 0
    assert ui.compare_images(draw(screens()["charging"], 0), draw(screens()["charging"], 400)).mean_diff > 0

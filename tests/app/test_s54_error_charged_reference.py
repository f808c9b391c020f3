"""s54: the "charged, but no receipt" error shows a 受付番号 and now says what it is for, as its sister screen
(payment not confirmed) does: the donor paid and has no receipt, and this number is how the staff find the gift."""

from __future__ import annotations

import pygame
import pytest
from app_samples import CTX, backdrop, screens

from kiosk.ui import widgets as ui
from kiosk.ui.screens import render
from tests.panels import layout_problems

SIZES = [(640, 360), (1280, 720), (1080, 1920)]
SAY = {"ja": "下の番号をセンターの職員にお見せください", "en": "show the number below to the center staff"}


@pytest.fixture(autouse=True, scope="module")
def _pg():
    pygame.font.init()
    yield


def drawn_texts(name: str, lang: str, size: tuple[int, int]) -> tuple[list[ui.Target], list[ui.DrawnText]]:
    s = backdrop(size)
    with ui.measure_boxes() as drawn:
        targets = render(screens(lang)[name], s, 0, ctx=CTX)
    return targets, list(drawn)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_charged_error_says_to_show_the_number_to_the_staff(size: tuple[int, int], lang: str) -> None:
    targets, drawn = drawn_texts("error_unavailable_charged", lang, size)
    squeezed = " ".join(" ".join(d.text for d in drawn).split())
    if lang == "ja":  # a line break between Japanese words is no space
        squeezed = squeezed.replace(" ", "")
    assert SAY[lang] in squeezed, squeezed
    number = {"ja": "受付番号 42", "en": "Reference 42"}[lang]
    assert any(d.text == number for d in drawn), [d.text for d in drawn]
    assert not layout_problems(size, targets, drawn)


def test_the_pending_error_is_not_told_twice_and_no_number_no_sentence() -> None:
    from msgspec.structs import replace
    _, drawn = drawn_texts("error_unavailable_pending", "ja", (1280, 720))
    assert "".join(d.text for d in drawn).count("下の番号") == 1
    s = backdrop((1280, 720))
    with ui.measure_boxes() as boxes:
        render(replace(screens("ja")["error_unavailable_charged"], reference=None), s, 0, ctx=CTX)
    assert "下の番号" not in "".join(d.text for d in boxes)

"""Issue #15 item 14: Japanese lines break at BudouX's phrase boundaries, never inside a word.

The old hand-made rule broke between any two kana, giving "ありがと/うございます", "寄/付", "もらっ/て".
Every width from one character to the whole sentence is tried, so each possible break is exercised.
"""

from __future__ import annotations

import pygame
import pytest

from kiosk.donation.flow import HINTS
from kiosk.ui import widgets as ui
from kiosk.ui.i18n import gettext_for

WORDS = ("ありがとう", "ございます", "寄付", "もらって")
SENTENCES = ("ありがとうございます！", "ご寄付ありがとうございます。「みんなのこども食堂」に¥500を寄付しました",
             "ポイントをもらって、寄付をしてくださいね", "ありがとうございます。寄付をもらってください")


@pytest.fixture(autouse=True)
def _pg():
    pygame.font.init()
    yield


def never_split(lines: list[str], words: tuple[str, ...]) -> list[str]:
    """The words of ``words`` that appear in the joined text but are cut across two lines."""
    joined = "".join(lines)
    bad = []
    for word in words:
        start = joined.find(word)
        while start != -1:
            # The offsets where lines end; a word straddles one when a boundary falls strictly inside it.
            edge, bounds = 0, []
            for ln in lines[:-1]:
                edge += len(ln)
                bounds.append(edge)
            if any(start < b < start + len(word) for b in bounds):
                bad.append(word)
            start = joined.find(word, start + 1)
    return bad


@pytest.mark.parametrize("sentence", SENTENCES)
def test_japanese_words_are_never_split_at_any_width(sentence: str) -> None:
    f = ui.font(40)
    full = f.size(sentence)[0]
    widest = max(f.size(c)[0] for c in ui.chunks(sentence))  # narrower forces a cut inside a phrase
    for width in range(widest, full + 1, 7):
        lines = ui.wrap(sentence, f, width)
        assert "".join(lines) == sentence
        assert not never_split(lines, WORDS), (width, lines)


def test_the_issue_examples_stay_whole() -> None:
    f = ui.font(40)
    assert ui.wrap("ありがとうございます", f, f.size("ありがとうござ")[0]) == ["ありがとう", "ございます"]
    lines = ui.wrap("ご寄付をありがとう", f, max(f.size("ご寄付を")[0], f.size("ありがとう")[0]) + 2)
    assert lines == ["ご寄付を", "ありがとう"], lines
    lines = ui.wrap("カードをもらってください", f, f.size("カードをもらっ")[0])
    assert "もらって" in "".join(lines) and not never_split(lines, ("もらって",)), lines


def test_every_japanese_hint_wraps_at_phrases() -> None:
    """The real screen sentences: no line starts with closing punctuation, and nothing is lost."""
    f = ui.font(40)
    ja = gettext_for("ja")
    for msgid in HINTS.values():
        text = ja(msgid)
        for width in (f.size(text)[0] // 2, f.size(text)[0] // 3):
            lines = ui.wrap(text, f, width)
            assert "".join(lines).replace(" ", "") == text.replace(" ", "")
            assert not any(ln.startswith(("。", "、", "」", "！", "？")) for ln in lines), lines
            assert not never_split(lines, WORDS), lines


def test_a_phrase_wider_than_the_line_is_still_cut_to_fit() -> None:
    f = ui.font(40)
    width = f.size("ありが")[0]
    lines = ui.wrap("ありがとうございます", f, width)
    assert "".join(lines) == "ありがとうございます"
    assert all(f.size(ln)[0] <= width for ln in lines)

"""The screen toolkit: wrapping, touch targets, QR codes and the golden-image comparison."""

from __future__ import annotations

import pygame
import pytest
import segno

from kiosk.ui import widgets as ui


@pytest.fixture(autouse=True)
def _pg():
    pygame.init()
    yield


def test_japanese_wraps_between_characters_but_not_before_closing_punctuation():
    f = ui.font(24)
    lines = ui.wrap("ICカードをタッチして寄付してください。ありがとう", f, f.size("ICカードをタッチして寄")[0])
    assert len(lines) >= 2
    assert "".join(lines) == "ICカードをタッチして寄付してください。ありがとう"
    assert all(not ln.startswith(("。", "、", "ー")) for ln in lines)
    assert all(f.size(ln)[0] <= f.size("ICカードをタッチして寄")[0] for ln in lines)


def test_english_wraps_at_spaces():
    f = ui.font(24)
    lines = ui.wrap("Tap your IC card on the reader to give", f, f.size("Tap your IC card")[0])
    assert lines[0] == "Tap your IC card"
    assert " ".join(lines) == "Tap your IC card on the reader to give"


def test_buttons_are_finger_sized_and_hit_tested():
    s = pygame.Surface((1280, 720))
    t = ui.button(s, pygame.Rect(10, 10, 200, 20), "¥100", "amount", 100)
    assert t.rect.height >= ui.THEME.min_target(s) >= 70
    other = ui.button(s, pygame.Rect(300, 10, 200, 100), "¥500", "amount", 500)
    assert ui.hit([t, other], (20, 20)).value == 100
    assert ui.hit([t, other], (350, 50)).value == 500
    assert ui.hit([t, other], (1000, 600)) is None


def test_qr_surface_matches_segno_matrix():
    data = "https://portal.example.jp/r/k7q2m9x4c8d1"
    surf = ui.qr(data, 200)
    matrix = [list(r) for r in segno.make(data, error="m", micro=False).matrix]
    n = len(matrix) + 4
    scale = surf.get_width() // n
    assert scale >= 2 and surf.get_width() <= 200
    for y in range(len(matrix)):
        for x in range(len(matrix)):
            px = surf.get_at(((x + 2) * scale + scale // 2, (y + 2) * scale + scale // 2))[:3]
            assert (px == (0, 0, 0)) == bool(matrix[y][x])


def test_compare_images_tolerates_noise_but_not_changes():
    a = pygame.Surface((200, 100))
    a.fill((20, 30, 40))
    ui.text(a, "寄付", (10, 10), 40)
    b = a.copy()
    b.set_at((5, 5), (25, 30, 40))  # one slightly different pixel
    assert ui.compare_images(a, b).ok
    c = a.copy()
    ui.text(c, "ありがとう", (10, 50), 30)
    r = ui.compare_images(a, c)
    assert not r.ok and r.changed_fraction > 0.01
    assert not ui.compare_images(a, pygame.Surface((100, 100))).ok


@pytest.mark.parametrize("s", ["受付\x00係", "\u202e", "\u200b", "\u202e\u200b"],
                         ids=["nul", "rtl-override-only", "zwsp-only", "invisible-only"])
def test_any_title_from_the_portal_draws(s):
    """A portal title is drawn whatever it holds: pygame raised on a NUL ("A null character was found in the
    text") and on a line of no width ("Text has zero width"), every frame, so the screen was never drawn."""
    f = ui.font(24)
    line = ui.rendered_line(f, s, (255, 255, 255))
    assert line.get_height() == f.get_height()
    box = ui.text(pygame.Surface((400, 200)), s, (10, 10), 24, max_width=300)
    assert box.height >= f.get_height()


def test_an_undrawable_character_is_drawn_as_a_space():
    f = ui.font(24)
    assert ui.rendered_line(f, "受付\x00係", (255, 255, 255)).get_size() == f.size("受付 係")
    assert ui.rendered_line(f, "\u202e", (255, 255, 255)).get_width() == 0

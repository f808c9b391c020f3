"""Found in the 1080p golden review of the citizen screens (issue #15).

The amount screen's "or tap your card now to give ¥100" line: it started at
30 % of the width, so it sat off-centre under the amount buttons it explains (the Japanese line ran far to the
right), and its box reached down under the bottom buttons, where a longer line would have been drawn under
やめる and ほかのプロジェクト. It is now centred under the amounts and kept above the bottom buttons."""

from __future__ import annotations

import numpy as np
import pygame
import pytest
from app_samples import CTX, backdrop

from kiosk.donation import flow
from kiosk.ui.screens import chrome, render
from kiosk.ui.widgets import THEME


@pytest.fixture(autouse=True, scope="module")
def _pg():
    pygame.font.init()
    yield


def hint_box(s: pygame.Surface, targets) -> pygame.Rect:  # noqa: ANN001
    """The bounding box of the hint's pixels (the muted colour, below the amount buttons)."""
    row_bottom = max(t.rect.bottom for t in targets if t.action == chrome.AMOUNT)
    px = pygame.surfarray.pixels3d(s)
    mask = np.all(px == np.array(THEME.muted), axis=2)
    mask[:, :row_bottom] = False
    xs, ys = np.nonzero(mask)
    assert len(xs), "no hint drawn"
    return pygame.Rect(xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)], ids=["720p", "1080p"])
@pytest.mark.parametrize("lang", ["ja", "en"])
@pytest.mark.parametrize("default", [100, 10_000])
def test_the_tap_now_hint_is_centred_under_the_amounts_and_clear_of_the_buttons(size, lang, default):
    s = backdrop(size)
    presets = (100, 500, 1000) if default == 100 else (1000, 5000, 10_000)
    targets = render(flow.ChooseAmountScreen("kodomo-shokudo", presets, default, lang), s, 0, ctx=CTX)
    box = hint_box(s, targets)
    amounts = [t.rect for t in targets if t.action == chrome.AMOUNT]
    row_centre = (amounts[0].left + amounts[-1].right) // 2
    assert abs(box.centerx - row_centre) <= size[1] * 0.01, (box, row_centre)
    for t in targets:
        if t.action in (chrome.CANCEL, chrome.PICKER):
            assert not box.colliderect(t.rect), (t.action, box, t.rect)


@pytest.mark.parametrize("state,still", [("CANCELED", True), ("IN_PROGRESS", False), ("COMPLETED", False)])
def test_a_canceled_terminal_payment_shows_no_spinner(state, still):
    """1080p golden review: "取り消しました" (canceled) had the waiting spinner turning beside it, as if something
    were still to happen to the money. It is drawn still; the states that do wait keep their spinner."""
    data = flow.ChargingScreen("kodomo-shokudo", 500, "ja", on_terminal=True, terminal_state=state,
                               cancel_requested=state == "CANCELED")
    frames = []
    for now in (0, 400):
        s = backdrop((1280, 720))
        render(data, s, now, ctx=CTX)
        frames.append(pygame.surfarray.array3d(s))
    assert np.array_equal(frames[0], frames[1]) is still


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)], ids=["720p", "1080p"])
@pytest.mark.parametrize("name", ["attract", "attract_points"])
def test_the_loop_names_the_group_in_english_too(size, name):
    """1080p golden review: on the loop an English group name too long to sit beside the area chip
    ("Tsurugashima Children's Support Group") was left out, so an English reader never saw who runs the project;
    it now goes under a one-line title, above the progress bar, at no less than the 3 % floor."""
    from app_samples import screens

    from kiosk.ui import widgets as ui

    for lang in ("ja", "en"):
        s = backdrop(size)
        with ui.measure_text() as drawn:
            render(screens(lang)[name], s, 0, ctx=CTX)
        group = CTX.project("kodomo-shokudo").group_name(lang)
        sizes = [n for n, t in drawn if t == group]
        assert sizes and min(sizes) >= round(0.03 * size[1]), (lang, drawn)

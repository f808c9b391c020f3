"""The citizen screens on the panels centers really use besides 1280×720 and 1920×1080: portrait signage
(1080×1920), 720×1280 portrait, the Raspberry Pi 7" touch display (800×480), 1024×600 and ultra-wide 2560×1080.

``[player] width/height`` accepts any size, but the screens place things by fractions of the width and size them
by fractions of the height. On a portrait panel that drew the 1080p-sized title "ありがとうございます！" 2,100 px
wide on a 1,080 px screen, amount buttons 39 px wide under labels 300 px wide, and "Goal ¥50,000" off the left
edge. Narrower than 3:2 the screens are now laid out in a 3:2 area as wide as the panel, at its bottom edge
(``widgets.layout_rect``), so every size below is measured against that area: the text floor (3 % of its height,
tests/app/test_screens_readable.py) and the finger-sized button (``Theme.min_target``, 11 %).

Every screen is drawn in both languages; what is measured is where each text and each touch target was drawn
(``widgets.measure_boxes``), not how it looks in a golden image.
"""

from __future__ import annotations

import numpy as np
import pygame
import pytest
from app_samples import CTX, backdrop, screens
from test_tap_path import qr_on_screen, segno_modules

from kiosk.donation import flow
from kiosk.ui import widgets as ui
from kiosk.ui.screens import COVERS_MOVIE, chrome, render
from tests.panels import layout_problems

PANELS = [(1080, 1920), (720, 1280), (800, 480), (1024, 600), (2560, 1080)]
IDS = [f"{w}x{h}" for w, h in PANELS]


@pytest.fixture(autouse=True, scope="module")
def _pg():
    pygame.font.init()
    yield


def draw(data: flow.Screen, size: tuple[int, int]) -> tuple[pygame.Surface, list[ui.Target], list[ui.DrawnText]]:
    s = backdrop(size)
    with ui.measure_boxes() as drawn:
        targets = render(data, s, 0, ctx=CTX)
    return s, targets, list(drawn)


def problems(size: tuple[int, int], targets: list[ui.Target], drawn: list[ui.DrawnText]) -> list[str]:
    """What a citizen would hit on one screen (tests/panels.py), and the one language button at the top right."""
    area = ui.layout_rect(size)
    out = layout_problems(size, targets, drawn)
    toggles = [t for t in targets if t.action == chrome.LANG]
    if len(toggles) != 1:
        out.append(f"{len(toggles)} language buttons")
    elif not (toggles[0].rect.centerx > area.centerx and toggles[0].rect.centery < area.centery
              and ui.hit(targets, toggles[0].rect.center) is toggles[0]):
        out.append(f"the language button {toggles[0].rect} is not on top at the top right of {area}")
    return out


@pytest.mark.parametrize("size", PANELS, ids=IDS)
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_screen_fits_the_panel(size: tuple[int, int], lang: str) -> None:
    found = {}
    for name, data in screens(lang).items():
        _, targets, drawn = draw(data, size)
        assert drawn, name
        if p := problems(size, targets, drawn):
            found[name] = p
    assert not found, "\n".join(f"{n}: {p}" for n, ps in found.items() for p in ps)


@pytest.mark.parametrize("size", [(800, 480), (1024, 600), (2560, 1080)], ids=["800x480", "1024x600", "2560x1080"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_thank_you_never_covers_the_point_balance(size: tuple[int, int], lang: str) -> None:
    """With point use offered, "use your points" was stacked above "my page" at a height that suits 16:9 only:
    on 5:3, 1024×600 and ultra-wide panels the figures above run lower and the button hid the donor's balance
    ("17 pt" under "ポイントを使う")."""
    data = screens(lang)["thanks_points"]
    _, targets, drawn = draw(data, size)
    balance = [d for d in drawn if d.text == str(data.points_balance)]
    earned = [d for d in drawn if d.text == f"+{data.points_earned}"]
    assert balance and earned
    for t in targets:
        for d in balance + earned:
            assert not t.rect.colliderect(d.rect), (t.action, t.rect, d.text, d.rect)
    actions = {t.action for t in targets}
    assert {chrome.CANCEL, chrome.MY_PAGE, "points_open", chrome.LANG} <= actions


@pytest.mark.parametrize("size", PANELS, ids=IDS)
def test_the_receipt_qr_is_whole_and_scannable(size: tuple[int, int]) -> None:
    """Read back off the screen, the QR is this gift's receipt, at three or more pixels a module, on the panel."""
    data = screens("ja")["thanks"]
    s, _, _ = draw(data, size)
    want = segno_modules(CTX.receipt_url(data.receipt_code))
    width = int(len(want) ** 0.5)
    rgb = pygame.image.tobytes(s, "RGB")
    assert qr_on_screen(rgb, size, width) == want
    img = np.frombuffer(rgb, dtype=np.uint8).reshape(size[1], size[0], 3)
    xs = np.nonzero((img == 0).all(axis=2))[1]
    assert (xs.max() - xs.min() + 1) // width >= 3


@pytest.mark.parametrize("size", [(1080, 1920), (720, 1280)], ids=["1080x1920", "720x1280"])
def test_screens_that_cover_the_movie_cover_all_of_a_portrait_panel(size: tuple[int, int]) -> None:
    """The player skips the movie under these screens (``COVERS_MOVIE``): above their layout area too, no pixel
    of the frame under them may show."""
    for name, data in screens("ja").items():
        if data.screen not in COVERS_MOVIE:
            continue
        a, b = backdrop(size, "children"), backdrop(size, "green")
        render(data, a, 0, ctx=CTX)
        render(data, b, 0, ctx=CTX)
        assert pygame.image.tobytes(a, "RGB") == pygame.image.tobytes(b, "RGB"), name


def test_a_touch_above_the_loop_band_on_a_portrait_panel_opens_the_amounts() -> None:
    """On a portrait panel the band sits at the bottom; a touch on the movie above it still gives to the project
    on screen, and the buttons answer where they are drawn."""
    from kiosk.ui.screens import actions

    _, targets, _ = draw(screens("ja")["attract"], (1080, 1920))
    assert actions.touch(targets, (540, 200), 1) == flow.Touch(now_ms=1, project="kodomo-shokudo")
    toggle = next(t for t in targets if t.action == chrome.LANG)
    assert isinstance(actions.touch(targets, toggle.rect.center, 1), flow.ToggleLanguage)

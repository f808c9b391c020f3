"""The maintenance menu on the panels centers use besides 1280×720 and 1920×1080: portrait signage (1080×1920),
720×1280, 4:3 (1024×768), a 3:2 panel (1080×720), the Pi's 7" display (800×480), 1024×600 and 2560×1080.

Every page of tests/menu/test_menu_golden.py is drawn in both languages, and what staff would hit is measured
where each text and button was drawn (``widgets.measure_boxes``): text off the screen or below the floor (3 % of
the layout area's height, ``widgets.layout_rect``), a label or a value running past its button's edge, buttons
off the screen, smaller than a finger or on top of each other.
"""

from __future__ import annotations

from pathlib import Path

import pygame
import pytest

from kiosk.ui import widgets as ui
from tests.panels import layout_problems

from .conftest import build_rig
from .test_menu_golden import SETUPS

PANELS = [(1080, 1920), (720, 1280), (1024, 768), (1080, 720), (800, 480), (1024, 600), (2560, 1080)]


def page(tmp_path: Path, name: str, size: tuple[int, int], lang: str) -> tuple[list[ui.Target], list[ui.DrawnText]]:
    rig = build_rig(tmp_path / f"{name}-{size[0]}x{size[1]}-{lang}")
    try:
        rig.machine.language = lang
        SETUPS[name](rig)
        with ui.measure_boxes() as drawn:
            targets = rig.menu.render(pygame.Surface(size), 0)
        return targets, list(drawn)
    finally:
        rig.ledger.close(checkpoint=False)


@pytest.mark.slow
@pytest.mark.parametrize("size", PANELS, ids=[f"{w}x{h}" for w, h in PANELS])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_page_fits_the_panel(tmp_path: Path, size: tuple[int, int], lang: str) -> None:
    found = {}
    for name in SETUPS:
        targets, drawn = page(tmp_path, name, size, lang)
        assert drawn, name  # the busy page has no buttons: it ignores input until the action is done
        if p := layout_problems(size, targets, drawn):
            found[name] = p
    assert not found, "\n".join(f"{n}: {p}" for n, ps in found.items() for p in ps)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_status_value_too_long_for_its_row_ends_in_an_ellipsis_inside_it(tmp_path: Path, lang: str) -> None:
    """On a 3:2 panel the status rows are narrower than at 16:9: "2 frames dropped a minute, 35 ms between clips"
    ran past the row's right edge at the floor size. It is cut with "…" inside the row; the row's own page shows
    it whole."""
    targets, drawn = page(tmp_path, "status", (1080, 720), lang)
    rows = [t.rect for t in targets if t.action == "status_item"]
    assert len(rows) >= 10
    for d in drawn:
        for r in rows:
            if d.rect.colliderect(r):
                assert r.contains(d.rect), (d.text, d.rect, r)

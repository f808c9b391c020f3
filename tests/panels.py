"""What a person would hit on a screen drawn at some panel size, measured where each text and touch target was
drawn (``kiosk.ui.widgets.measure_boxes``): shared by the citizen screens' and the menu's panel tests
(tests/app/test_screens_any_panel.py, tests/menu/test_menu_any_panel.py)."""

from __future__ import annotations

import itertools

import pygame

from kiosk.ui import widgets as ui

FLOOR = 0.03
"""The smallest text, as a share of the layout area's height (tests/app/test_screens_readable.py)."""
FINGER = 0.11
"""The smallest button side, as a share of the layout area's height (``Theme.min_target``)."""


def layout_problems(size: tuple[int, int], targets: list[ui.Target], drawn: list[ui.DrawnText]) -> list[str]:
    """Text off the screen or below the floor, buttons off the screen, too small for a finger or on top of each
    other, a label running out of its button or text under one. A target covering the whole screen (a touch
    anywhere) is not a button."""
    screen = pygame.Rect((0, 0), size)
    area = ui.layout_rect(size)
    floor, finger = round(FLOOR * area.height), round(FINGER * area.height)
    out = []
    buttons = [t for t in targets if t.rect != screen]
    for d in drawn:
        if d.rect.width and not screen.contains(d.rect):
            out.append(f"text off the screen: {d.text!r} at {d.rect}")
        if d.size < floor:
            out.append(f"text of {d.size} px, below the {floor} px floor: {d.text!r}")
        for t in buttons:
            if d.rect.colliderect(t.rect) and not t.rect.contains(d.rect):
                out.append(f"text {d.text!r} at {d.rect} runs into the {t.action} button {t.rect}")
    for t in buttons:
        if not screen.contains(t.rect):
            out.append(f"{t.action} button off the screen: {t.rect}")
        if min(t.rect.size) < finger:
            out.append(f"{t.action} button {t.rect.size} smaller than a finger ({finger} px)")
    for a, b in itertools.combinations(buttons, 2):
        if a.rect.colliderect(b.rect):
            out.append(f"{a.action} {a.rect} overlaps {b.action} {b.rect}")
    return out

"""Activity titles come from the portal's pushed config as typed: the volunteer page draws any of them, inside
its button and the screen, never below the 3 % floor (docs/menu.md)."""

from __future__ import annotations

import dataclasses

import pygame
import pytest

from kiosk.config.staff import Activity, VolunteerSection
from kiosk.ui import widgets as ui
from kiosk.ui.i18n import gettext_for

from .conftest import Rig, build_rig

LONG = "地域の子ども食堂でのボランティア活動（配膳・片付け・見守り）" * 6  # 180 characters; the portal allows 200


def _volunteer(tmp_path, title: str) -> Rig:
    rig = build_rig(tmp_path)
    vol = VolunteerSection(activities=[Activity(id="reception", title=title, points=10, max_points=10)])
    rig.services.ops = dataclasses.replace(rig.ops, volunteer=vol)
    rig.open()
    rig.touch("go", "volunteer")
    return rig


@pytest.mark.parametrize("title", ["受付\x00係", "\u202e", "\u200b"], ids=["nul", "rtl-override-only", "zwsp-only"])
def test_the_volunteer_page_draws_an_odd_activity_title(tmp_path, title):
    """pygame raised on every frame (a NUL; a title of no width), so the page was never drawn."""
    rig = _volunteer(tmp_path, title)
    try:
        assert [t.value for t in rig.render() if t.action == "activity"] == ["reception"]
        rig.touch("activity", "reception")
        assert rig.menu.page == "volunteer_points"
        rig.render()
    finally:
        rig.ledger.close(checkpoint=False)


def _record_text(monkeypatch) -> list[tuple[str, int, pygame.Rect]]:  # noqa: ANN001
    """Every line the screens draw from now on, with its size and where it landed (drawn by the real ui.text)."""
    drawn: list[tuple[str, int, pygame.Rect]] = []
    real = ui.text

    def record(surface, s, pos, size, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        r = real(surface, s, pos, size, *a, **k)
        drawn.append((s, size, r))
        return r

    monkeypatch.setattr(ui, "text", record)
    return drawn


def test_a_long_activity_title_stays_in_its_button_above_the_floor(tmp_path, monkeypatch):
    """It was one line 8 px tall and 1437 px wide on a 640 px screen."""
    rig = _volunteer(tmp_path, LONG)
    drawn = _record_text(monkeypatch)
    try:
        targets = rig.render()
        button = next(t.rect for t in targets if t.action == "activity")
        label = [(size, r) for s, size, r in drawn if len(s) > 3 and s.rstrip("…") in LONG]
        assert label
        union = label[0][1].unionall([r for _, r in label[1:]])
        assert rig.surface.get_rect().contains(union) and button.contains(union), (union, button)
        assert min(size for size, _ in label) >= round(0.03 * rig.surface.get_height())
        assert any(s.endswith("…") for s, _, _ in drawn), "the cut title ends in an ellipsis"
    finally:
        rig.ledger.close(checkpoint=False)


def test_a_long_project_title_stays_in_its_playlist_button(tmp_path, monkeypatch):
    rig = build_rig(tmp_path)
    rig.services.titles = {**rig.services.titles, "kodomo": LONG}
    try:
        rig.open()
        rig.touch("go", "playlist")
        drawn = _record_text(monkeypatch)
        targets = rig.render()
        buttons = [t.rect for t in targets if t.action == "toggle"]
        label = [(size, r) for s, size, r in drawn if len(s) > 3 and s.rstrip("…") in LONG]
        assert label
        # "kodomo" is on two rows of the playlist: each piece of its title inside one of the rows' buttons.
        assert all(any(b.contains(r) for b in buttons) for _, r in label), (label, buttons)
        assert min(size for size, _ in label) >= round(0.03 * rig.surface.get_height())
    finally:
        rig.ledger.close(checkpoint=False)


def test_a_long_activity_title_on_the_points_page_is_cut_above_the_buttons(tmp_path, monkeypatch):
    """"Activity: <title>" wrapped at the text floor ran past its block, under the point buttons and off the
    screen, and pushed the instruction after it down with it. It is cut at the block's height and ends in "…",
    and the instruction after it is still drawn above the buttons."""
    tr = gettext_for("ja")
    rig = _volunteer(tmp_path, LONG)
    try:
        rig.touch("activity", "reception")
        assert rig.menu.page == "volunteer_points"
        drawn = _record_text(monkeypatch)
        targets = rig.render()
        top = min(t.rect.top for t in targets if t.action == "points")
        sentence = tr("Activity: {name}").format(name=LONG)
        pieces = [(s, r) for s, _, r in drawn if len(s) > 3 and s.rstrip("…") in sentence]
        assert len(pieces) > 1 and pieces[-1][0].endswith("…"), [s for s, _ in pieces]
        assert all(r.bottom <= top for _, r in pieces), ([r for _, r in pieces], top)
        instruction = [r for s, _, r in drawn if s == tr("Choose the points")]
        assert instruction and instruction[0].bottom <= top, (instruction, top)
    finally:
        rig.ledger.close(checkpoint=False)

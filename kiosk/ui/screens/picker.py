"""The project picker: every project, grouped by policy area, in buttons large enough for older eyes.

Opened by a touch on "choose a project" (the movie loop or the amount screen), so a donor need not wait
for a project's movie. One row per policy area (the area's colour on its label, as on the slides),
each project a button at least ``Theme.min_target`` tall with its title fitted (wrapped), never clipped.
A project picked opens its amounts; やめる goes back to the loop.
"""

from __future__ import annotations

import pygame

from kiosk.donation.flow import ChooseProjectScreen
from kiosk.player.slides import AREA_COLOURS
from kiosk.ui import widgets as ui
from kiosk.ui.screens import chrome
from kiosk.ui.screens.context import ProjectInfo, ScreenContext
from kiosk.ui.widgets import THEME, Target, Theme

AREA_ORDER = ("children", "welfare", "green", "culture", "town")
LABEL_SIZE = 0.045
"""Area labels, in screen heights: the same in both languages (an English label takes two lines instead)."""
PROJECT_SIZE = 0.05


def by_area(projects: tuple[str, ...], ctx: ScreenContext) -> list[tuple[str, list[ProjectInfo]]]:
    """(area, its projects in config order), areas in the city's order, empty areas left out."""
    infos = [ctx.project(p) for p in projects]
    areas = [a for a in AREA_ORDER if any(i.area == a for i in infos)]
    areas += sorted({i.area for i in infos} - set(areas))
    return [(a, [i for i in infos if i.area == a]) for a in areas]


MIN_BUTTON_W = 0.3
"""A project button is at least this share of the screen width while the rows fit: narrower, a two-line
English title drops below body text size."""


def per_row_and_height(groups: list[tuple[str, list[ProjectInfo]]], body: pygame.Rect, label_w: int, gap: int,
                       min_h: int, max_h: int, width: int) -> tuple[int, int]:
    """Projects per row and the row height: as few per row as keep buttons MIN_BUTTON_W wide, more only when
    the extra rows would make a row lower than a finger-sized button (``min_h``)."""
    room = body.width - label_w
    per_row = max(1, (room + gap) // (int(width * MIN_BUTTON_W) + gap))
    most = max((len(infos) for _, infos in groups), default=1)
    while True:
        rows = sum(-(-len(infos) // per_row) for _, infos in groups) or 1
        row_h = (body.height - gap * (rows - 1)) // rows
        if row_h >= min_h or per_row >= most:
            return per_row, max(min_h, min(max_h, row_h))
        per_row += 1


def render(data: ChooseProjectScreen, surface: pygame.Surface, now_ms: int, ctx: ScreenContext,
           theme: Theme = THEME) -> list[Target]:
    _ = chrome.tr(data.lang)
    chrome.scrim(surface, theme)
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    targets: list[Target] = []
    toggle = chrome.lang_toggle(surface, data.lang, theme)
    margin = px(0.05)
    # やめる sits on the top row beside the language button, not under the rows: the rows get the height, so
    # a label that needs two lines (most English area and project names) keeps the size of a Japanese one.
    cancel = pygame.Rect(0, toggle.rect.top, int(w * 0.2), theme.min_target(surface))
    cancel.right = toggle.rect.left - px(0.03)
    head = pygame.Rect(margin, px(0.03), cancel.left - 2 * margin, theme.min_target(surface))
    chrome.fit_text(surface, _("Choose a project"), head, px(0.07), theme.text, bold=True, one_line_down_to=0.8)

    groups = by_area(data.projects, ctx)
    top = toggle.rect.bottom + px(0.03)
    body = pygame.Rect(margin, top, w - 2 * margin, h - px(0.03) - top)
    # One row per policy area: its coloured label, then its projects side by side; an area with more projects
    # than fit a row readably continues on a second row under the same label (per_row_and_height).
    gap = px(0.015)
    label_w = int(w * 0.24)
    per_row, row_h = per_row_and_height(groups, body, label_w, gap, theme.min_target(surface), px(0.18), w)
    y = body.top
    for area, infos in groups:
        lines = -(-len(infos) // per_row)
        label = pygame.Rect(body.left, y, label_w - gap, lines * row_h + (lines - 1) * gap)
        pygame.draw.rect(surface, AREA_COLOURS.get(area, theme.button), label, border_radius=row_h // 5)
        chrome.fit_label(surface, chrome.area_label(area, data.lang), label.inflate(-px(0.03), -px(0.01)),
                         px(LABEL_SIZE), theme.text)
        m = min(len(infos), per_row)
        bw = (body.width - label_w - gap * (m - 1)) // max(1, m)
        for i, info in enumerate(infos):
            rect = pygame.Rect(body.left + label_w + (i % per_row) * (bw + gap), y + (i // per_row) * (row_h + gap),
                               bw, row_h)
            selected = info.id == data.current
            pygame.draw.rect(surface, theme.accent if selected else theme.button, rect, border_radius=row_h // 5)
            pygame.draw.rect(surface, theme.text, rect, width=max(2, px(0.004)), border_radius=row_h // 5)
            chrome.fit_label(surface, info.name(data.lang), rect.inflate(-px(0.04), -px(0.01)), px(PROJECT_SIZE),
                             theme.bg if selected else theme.button_text)
            targets.append(Target(rect, chrome.PICK_PROJECT, info.id))
        y = label.bottom + gap
    targets.append(ui.button(surface, cancel, _("Cancel"), chrome.CANCEL, theme=theme, size=px(0.045)))
    targets.append(toggle)
    return targets

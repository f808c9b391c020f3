"""Use your points (issue #17, docs/points.md): tap, see what the card may spend here, choose a project and a
number of points, and a sponsor turns them into a gift. No money is charged.

Phases (``flow.PointsScreen.phase``): ``tap`` and ``asking`` (tap your card; checking), ``choose`` (points and
project, then "give"), ``spending``, ``done`` (the thank-you: points, the sponsor's yen, the project).
"""

from __future__ import annotations

import pygame

from kiosk.donation.flow import PointsScreen
from kiosk.ui import widgets as ui
from kiosk.ui.i18n import yen
from kiosk.ui.screens import chrome
from kiosk.ui.screens.context import ScreenContext
from kiosk.ui.widgets import THEME, Target, Theme

OPEN = "points_open"
CHOOSE = "points_choose"
PROJECT = "points_project"
CONFIRM = "points_confirm"

REFUSALS = {
    # What the citizen reads when the last try was refused (gettext msgids).
    "card": "This card cannot spend that many points here.",
    "pool": "The sponsor's gifts for the project you chose are used up here. Choose another project or fewer points.",
    "pool_empty": "The sponsor's gifts here are used up, so points cannot be used now. Your points stay on your card.",
    "points": "Choose how many points to use.",
    "unavailable": "Points cannot be used right now. Please try again later.",
}


def render(data: PointsScreen, surface: pygame.Surface, now_ms: int, ctx: ScreenContext,
           theme: Theme = THEME) -> list[Target]:
    _ = chrome.tr(data.lang)
    chrome.scrim(surface, theme, alpha=235)
    w, h = surface.get_size()
    px = lambda f: theme.px(surface, f)  # noqa: E731
    margin = px(0.05)
    targets: list[Target] = []
    toggle = chrome.lang_toggle(surface, data.lang, theme)
    head = ui.text(surface, _("Use your points"), (margin, px(0.05)), px(0.08), theme.accent, bold=True)
    y = head.bottom + px(0.03)
    if data.phase in ("tap", "asking"):
        box = pygame.Rect(margin, y, int(w * 0.55), px(0.3))
        msg = _("Tap your IC card") if data.phase == "tap" else _("Checking your points…")
        chrome.fit_text(surface, msg, box, px(0.07), theme.text, bold=True, one_line_down_to=0.75)
        box = pygame.Rect(margin, y + px(0.2), int(w * 0.55), px(0.25))
        chrome.fit_text(surface, _("A sponsor turns your points into a gift to a project. No money is charged."),
                        box, px(0.045), theme.muted)
        chrome.card_icon(surface, (int(w * 0.78), int(h * 0.55)), px(0.32), now_ms, theme)
    elif data.phase in ("choose", "spending"):
        line = _("You can use {points} points here").format(points=f"{data.spendable:,}")
        ui.text(surface, line, (margin, y), px(0.06), theme.text, bold=True)
        y += px(0.09)
        if data.refused:
            # Under the figure it is about, in two lines at a size readable from two metres (issue #15): at the
            # bottom it ran under the buttons, or shrank below the floor.
            box = pygame.Rect(margin, y, int(w * 0.9), px(0.11))
            chrome.fit_text(surface, _(REFUSALS[data.refused]), box, px(0.04), theme.bad)
            y += px(0.11)
        elif data.balance is not None and data.balance > data.spendable:
            # Why the card's balance (as on the my page) is more than it may spend here: the portal hands each
            # kiosk the card's points when it is tapped there, and the rest stay with the kiosks that hold them
            # (docs/points.md, "At the kiosk"). One plain line on that, not a second unexplained figure.
            box = pygame.Rect(margin, y, int(w * 0.9), px(0.11))
            rest = _("The other {points} points are at other kiosks where you used points before, or were just "
                     "used.").format(points=f"{data.balance - data.spendable:,}")
            chrome.fit_text(surface, rest, box, px(0.04), theme.muted)
            y += px(0.11)
        else:
            y += px(0.07)
        if data.presets:
            n = len(data.presets)
            gap = px(0.025)
            bw = min((int(w * 0.9) - gap * (n - 1)) // n, int(w * 0.2))
            for i, pts in enumerate(data.presets):
                rect = pygame.Rect(margin + i * (bw + gap), y, bw, px(0.13))
                targets.append(ui.button(surface, rect, _("{points} pt").format(points=pts), CHOOSE, pts,
                                         theme=theme, selected=pts == data.points, size=px(0.05)))
            y += px(0.17)
        elif data.refused != "pool_empty":  # else the refusal above says why nothing is offered
            box = pygame.Rect(margin, y, int(w * 0.9), px(0.12))
            chrome.fit_text(surface, _("There are no points to use on this card here yet."), box, px(0.045),
                            theme.muted)
            y += px(0.14)
        shown = data.projects[:4]
        if shown and data.presets:
            gap = px(0.02)
            bw, bh = (int(w * 0.9) - gap) // 2, px(0.11)
            for i, pid in enumerate(shown):  # two by two: project names are long
                rect = pygame.Rect(margin + (i % 2) * (bw + gap), y + (i // 2) * (bh + gap), bw, bh)
                name = ctx.project(pid).name(data.lang)
                size = chrome.fitted_size(name, bw - px(0.04), bh - px(0.02), px(0.04), bold=True)
                targets.append(ui.button(surface, rect, name, PROJECT, pid, theme=theme,
                                         selected=pid == data.project, size=size))
            y += ((len(shown) + 1) // 2) * (bh + gap) + px(0.01)
        if data.points and data.project and data.phase == "choose":
            give = pygame.Rect(0, 0, int(w * 0.4), theme.min_target(surface))
            give.bottomright = (w - margin, h - margin)
            label = _("Give {points} pt").format(points=data.points)
            size = chrome.fitted_size(label, give.width - px(0.04), give.height - px(0.02), px(0.05), bold=True)
            targets.append(ui.button(surface, give, label, CONFIRM, theme=theme, selected=True, size=size))
    else:  # done
        ui.text(surface, _("Thank you!"), (margin, y), px(0.075), theme.text, bold=True)
        y += px(0.12)
        big = ui.text(surface, yen(data.yen), (margin, y), px(0.15), theme.accent, bold=True)
        y = big.bottom + px(0.02)
        for line in (_("{sponsor} gives {amount} to {project} for your {points} points").format(
                         sponsor=data.sponsor, amount=yen(data.yen), points=data.points,
                         project=ctx.project(data.project).name(data.lang)),
                     _("You can still use {points} points here").format(points=f"{data.spendable:,}")):
            box = pygame.Rect(margin, y, int(w * 0.88), px(0.14))
            r = chrome.fit_text(surface, line, box, px(0.05), theme.text)
            y = max(r.bottom, box.top + px(0.07)) + px(0.03)
    close = pygame.Rect(margin, 0, int(w * 0.22), theme.min_target(surface))
    close.bottom = h - margin
    label = _("Close") if data.phase == "done" else _("Cancel")
    targets.append(ui.button(surface, close, label, chrome.CANCEL, theme=theme, size=px(0.045)))
    targets.append(toggle)
    return targets

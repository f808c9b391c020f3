"""What one menu page shows, as plain data: the model builds it, the renderer draws it, tests read it.

Keeping the page as data (no pygame) means navigation, focus and every
staff action can be tested without a screen, and the touch targets the
renderer returns carry exactly the ``action``/``value`` of these buttons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Level = Literal["green", "yellow", "red"]
Style = Literal["normal", "primary", "danger", "on", "off", "row", "key"]


@dataclass(frozen=True)
class Button:
    label: str
    action: str
    value: Any = None
    style: Style = "normal"
    dot: Level | None = None
    """Status rows: the green/yellow/red dot drawn before the label."""
    detail: str = ""
    """A second, smaller line (status values, clip ids)."""
    enabled: bool = True
    """Drawn dimmed and not pressable when False (e.g. the PIN OK key while locked)."""


@dataclass(frozen=True)
class View:
    page: str
    title: str
    dot: Level | None = None
    """One big dot next to the title: the worst status level, at a glance."""
    notice: str = ""
    """One highlighted line: a result, a refusal, a countdown."""
    notice_level: Level = "yellow"
    big: str = ""
    """A large central figure: the PIN mask, the volume, the points."""
    lines: tuple[str, ...] = ()
    """Report or result text, already cut to the current scroll page."""
    buttons: tuple[Button, ...] = ()
    columns: int = 1
    footer: tuple[Button, ...] = ()
    """Back / confirm / scroll buttons along the bottom edge."""
    layout: Literal["grid", "keypad"] = "grid"

    @property
    def all_buttons(self) -> tuple[Button, ...]:
        """Keyboard focus order: the grid in reading order, then the footer."""
        return self.buttons + self.footer

    def find(self, action: str, value: Any = None) -> Button | None:
        return next((b for b in self.all_buttons if b.action == action and (value is None or b.value == value)), None)

    @property
    def text(self) -> str:
        """Everything written on the page, for tests (privacy checks, labels)."""
        parts = [self.title, self.notice, self.big, *self.lines]
        for b in self.all_buttons:
            parts += [b.label, b.detail]
        return "\n".join(p for p in parts if p)

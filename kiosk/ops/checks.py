"""One result line of ``kiosk doctor``: what was checked, whether it passed, and the exact fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Check:
    name: str
    """Short name, e.g. ``reader.udev``."""
    status: Literal["ok", "warn", "fail"]
    detail: str
    """What was found, in one line."""
    fix: str = ""
    """The exact command or file change that fixes a failure (empty when ok)."""

    @property
    def ok(self) -> bool:
        return self.status != "fail"

    def render(self) -> str:
        mark = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL"}[self.status]
        line = f"[{mark}] {self.name}: {self.detail}"
        if self.fix and self.status != "ok":
            line += "\n       fix: " + self.fix.replace("\n", "\n            ")
        return line

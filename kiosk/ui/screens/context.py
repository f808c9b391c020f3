"""What a screen needs besides the flow's screen data: project details, running totals, the receipt URL base.

The flow's screen dataclasses carry only ids and numbers (the flow is pure and
knows nothing of titles or goals); the renderer looks the rest up here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_RECEIPT_BASE = "http://127.0.0.1:8080"
"""Receipt QR base when ``portal.url`` is empty: the embedded portal on the kiosk itself."""


@dataclass(frozen=True)
class ProjectInfo:
    id: str
    title: str
    title_en: str = ""
    group: str = ""
    area: str = "town"
    goal_yen: int = 100_000
    group_en: str = ""

    def group_name(self, lang: str) -> str:
        """The group in ``lang``: English screens show ``group_en`` or nothing (never Japanese in English)."""
        return (self.group_en if lang == "en" else self.group) or ""

    def name(self, lang: str) -> str:
        """The title in ``lang``; English falls back to the Japanese title when none is configured."""
        return self.title_en if lang == "en" and self.title_en else self.title


@dataclass(frozen=True)
class ScreenContext:
    projects: Mapping[str, ProjectInfo] = field(default_factory=dict)
    totals_yen: Mapping[str, int] = field(default_factory=dict)
    """Settled total per project on this kiosk's ledger (the attract loop's progress bars)."""
    receipt_base_url: str = DEFAULT_RECEIPT_BASE
    presets_yen: tuple[int, ...] = ()
    """Amount buttons kept on the tap-your-card step (its screen data has only the chosen amount)."""
    reader_position: str = "below-right"
    """Where the card reader is on the cabinet (``reader.position``): the screens point there."""
    slide_showing: bool = False
    """The movie loop is on an event slide (set by the app per frame): the loop's band stays off it."""
    receipt_key_id: str = ""
    """The kiosk's ledger key id, put in the receipt URL's fragment (``#k=...``): the donor's browser checks
    the receipt against this key, not against whatever key the portal names (docs/receipts.md)."""

    @classmethod
    def from_config(cls, cfg: Any, *, totals_yen: Mapping[str, int] | None = None,
                    receipt_base_url: str | None = None, receipt_key_id: str = "") -> ScreenContext:
        """From a KioskConfig; the receipt base is ``receipt_base_url``, else ``portal.url``, else the embedded
        portal."""
        projects = {p.id: ProjectInfo(p.id, p.title, p.title_en, p.group, p.area, p.goal_yen, p.group_en)
                    for p in cfg.projects}
        base = receipt_base_url or cfg.portal.url or DEFAULT_RECEIPT_BASE
        return cls(projects, dict(totals_yen or {}), base, tuple(cfg.donation.presets_yen),
                   reader_position=cfg.reader.position, receipt_key_id=receipt_key_id)

    def project(self, project_id: str | None) -> ProjectInfo:
        if project_id is not None and project_id in self.projects:
            return self.projects[project_id]
        # An id the config no longer has (hot reload): show the id rather than nothing.
        return ProjectInfo(project_id or "", project_id or "")

    def total(self, project_id: str | None) -> int:
        return self.totals_yen.get(project_id or "", 0)

    def with_totals(self, totals_yen: Mapping[str, int]) -> ScreenContext:
        return replace(self, totals_yen=dict(totals_yen))

    def receipt_url(self, code: str) -> str:
        # A fragment never leaves the phone: the portal sees the code, the browser keeps the key id.
        key = f"#k={self.receipt_key_id}" if self.receipt_key_id else ""
        return f"{self.receipt_base_url.rstrip('/')}/r/{code}{key}"

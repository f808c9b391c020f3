"""The ``[portal]`` section: where this kiosk syncs its ledger."""

from __future__ import annotations

from pydantic import Field

from kiosk.config.base import Section


class PortalSection(Section):
    url: str = ""
    """Base URL of the central portal, e.g. ``https://portal.example.jp``. Empty: no sync (offline kiosk)."""

    sync_interval_s: int = Field(60, ge=5, le=86400)
    """Seconds between uploads when there is nothing pending."""

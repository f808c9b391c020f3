"""The ``[portal]`` section: where this kiosk syncs its ledger."""

from __future__ import annotations

from pydantic import Field

from kiosk.config.base import Section


class PortalSection(Section):
    url: str = ""
    """Base URL of the central portal, e.g. ``https://portal.example.jp``. Empty: no sync (offline kiosk)."""

    sync_interval_s: int = Field(60, ge=5, le=86400)
    """Seconds between uploads when there is nothing pending."""

    my_page_qr_s: int = Field(180, ge=0, le=900)
    """Seconds a donor's one-time my-page QR code stays valid and on screen (docs/privacy.md). 0 hides the
    my-page button. The portal refuses any code older than 15 minutes whatever this says."""

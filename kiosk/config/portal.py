"""The ``[portal]`` section: where this kiosk syncs its ledger."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from kiosk.config.base import Section


class PortalSection(Section):
    url: str = ""
    """Base URL of the central portal, starting with ``https://`` (or ``http://``), e.g. ``https://portal.example.jp``.
    Empty: no sync (offline kiosk)."""

    sync_interval_s: int = Field(60, ge=5, le=86400)
    """Seconds between uploads when there is nothing pending."""

    my_page_qr_s: int = Field(60, ge=0, le=900)
    """Seconds a donor's one-time my-page QR code stays valid and on screen (docs/privacy.md). 0 hides the
    my-page button. The portal refuses any code older than 15 minutes whatever this says.

    60 by default: the donor is at the kiosk with the card just tapped and the phone in hand (a scan takes
    seconds), while a code left behind sits on the lobby's public screen for the next visitor to scan, and
    holds back the movies, until it goes. 終わる, or another card, takes it away sooner."""

    @field_validator("url")
    @classmethod
    def _web_address(cls, v: str) -> str:
        # An address without its scheme ("portal.example.jp") was taken as it was: every upload then failed, and
        # `kiosk doctor` blamed the network. Said here, where it is written, with the address to write instead.
        if not v or _web(v):
            return v
        bare = v.strip().split("://", 1)[-1]
        if _web(f"https://{bare}"):
            raise ValueError(f"must start with https:// (or http://): did you mean 'https://{bare}'?")
        raise ValueError("must be the portal's web address, e.g. 'https://portal.example.jp'")


def _web(url: str) -> bool:
    """An http(s) address with a host, a valid port, and nothing a base address does not hold."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname) and url == url.strip() and " " not in url
            and not parts.query and not parts.fragment)

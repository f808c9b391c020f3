"""The ``[flow]`` config section: how long each donation screen waits for a citizen."""

from __future__ import annotations

from pydantic import Field

from kiosk.config.base import Section


class FlowConfig(Section):
    choose_amount_idle_ms: int = Field(20_000, ge=1_000, le=600_000)
    """Back to the movie loop when nobody touches the choose-amount screen for this long."""

    tap_card_idle_ms: int = Field(20_000, ge=1_000, le=600_000)
    """Back to the movie loop when no card is tapped on the tap-your-card screen for this long."""

    thanks_ms: int = Field(20_000, ge=1_000, le=600_000)
    """How long the thank-you (with its receipt QR code) stays up unless its close button is touched.
    Long enough to take out a phone and scan the code; a touch elsewhere does not end it."""

    error_ms: int = Field(8_000, ge=1_000, le=600_000)
    """How long an error screen stays up unless touched."""

    express_cancel_ms: int = Field(1_000, ge=0, le=5_000)
    """Express gifts (one tap on the movie loop or the thank-you, no amount chosen): how long the card is held on
    the reader, intent already committed, before the charge; lifting the card or "やめる" in that time gives
    nothing, so a phone in Express mode that only brushed the reader moves no money. 0 charges at once. Gifts
    after choosing an amount never wait (docs/donation.md)."""

"""The ``[flow]`` config section: how long each donation screen waits for a citizen."""

from __future__ import annotations

from pydantic import Field

from kiosk.config.base import Section


class FlowConfig(Section):
    choose_amount_idle_ms: int = Field(20_000, ge=1_000, le=600_000)
    """Back to the movie loop when nobody touches the choose-amount screen for this long."""

    tap_card_idle_ms: int = Field(20_000, ge=1_000, le=600_000)
    """Back to the movie loop when no card is tapped on the tap-your-card screen for this long."""

    thanks_ms: int = Field(6_000, ge=1_000, le=600_000)
    """How long the thank-you (with its receipt QR code) stays up unless touched."""

    error_ms: int = Field(8_000, ge=1_000, le=600_000)
    """How long an error screen stays up unless touched."""

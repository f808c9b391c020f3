"""The ``[player]`` config section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kiosk.configbase import Section


class PlayerConfig(Section):
    display: Literal["auto", "window", "fullscreen", "headless"] = "auto"
    """``auto`` picks fullscreen kmsdrm on a console, a window on a desktop, headless with no display."""

    width: int = Field(1280, ge=320, le=3840)
    """Panel width in pixels; imported movies are transcoded to this size."""

    height: int = Field(720, ge=240, le=2160)
    """Panel height in pixels."""

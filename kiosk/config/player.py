"""The ``[player]`` config section: display, decoding, the playlist and event slides.

Every field carries its documentation as the docstring right below it; the
``Section`` base forbids unknown keys, so a typo in ``[[player.playlist]]`` is
reported with the closest valid name instead of being silently ignored.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator

from kiosk.config import problems as pk
from kiosk.config.base import Section, cross_check
from kiosk.config.plain import WEEKDAYS, EventSlideRules, TimeWindowRules, Weekday, in_windows

__all__ = ["WEEKDAYS", "EventSlide", "PlayerConfig", "PlaylistItem", "TimeWindow", "Weekday", "in_windows"]

_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"


class TimeWindow(TimeWindowRules, Section):
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    """Weekdays the window opens on (``mon`` … ``sun``); every day when left out."""

    start: str = Field("00:00", pattern=_HHMM)
    """Local opening time ``HH:MM`` (inclusive), in the kiosk's time zone."""

    end: str = Field("24:00", pattern=_HHMM)
    """Local closing time ``HH:MM`` (exclusive). An end before the start runs past midnight (e.g. 18:00–02:00 opened on ``fri`` also covers early Saturday)."""

    @field_validator("days")
    @classmethod
    def _some_days(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("a window needs at least one day (leave 'days' out for every day)")
        return v

    @cross_check("start", "end")  # reported beside any other mistake in the window (kiosk/config/base.py)
    def _not_empty(self) -> None:
        if self.start == self.end or (self.start == "24:00"):
            raise pk.CheckFailed(pk.EMPTY_WINDOW, f"window {self.start}–{self.end} is empty", start=self.start,
                                 end=self.end)


class PlaylistItem(Section):
    project: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    """Project id (from ``[[projects]]``) the clip is about; a card tapped while it is on screen gives to this project."""

    clip: str = Field("", pattern=r"^([0-9a-f]{8,64})?$")
    """SHA-256 of a clip in the media cache, or a unique prefix of at least 8 hex digits (``kiosk media list`` shows them). Empty plays the newest clip imported for ``project``."""

    windows: list[TimeWindow] = Field(default_factory=list)
    """When this item may play (``[[player.playlist.windows]]``); empty means always."""

    repeat: int = Field(1, ge=1, le=100)
    """How many times the clip plays in a row before the playlist moves on."""


class EventSlide(EventSlideRules, Section):
    title: str = Field(min_length=1)
    """Event name shown in large type, e.g. ``夏のボランティア説明会``."""

    date: dt.date
    """Day of the event (a TOML date such as ``2025-07-12``); the slide stops showing after this day."""

    time: str = ""
    """Free-text time of day, e.g. ``10:00–12:00``."""

    place: str = ""
    """Where it happens, e.g. ``2階 会議室A``."""

    note: str = ""
    """One extra line, e.g. ``申込不要・参加無料``."""

    show_days_before: int = Field(30, ge=0, le=366)
    """The slide starts showing this many days before ``date``."""

    duration_s: float = Field(8.0, ge=2.0, le=120.0)
    """Seconds the slide stays on screen each time it comes up."""

    windows: list[TimeWindow] = Field(default_factory=list)
    """Optional time-of-day/weekday windows, as for playlist items; empty means always."""


class PlayerConfig(Section):
    display: Literal["auto", "window", "fullscreen", "headless"] = "auto"
    """``auto`` picks fullscreen kmsdrm on a console, a window on a desktop, headless with no display."""

    width: int = Field(1280, ge=160, le=3840)
    """Panel width in pixels; imported movies are transcoded to this size (at most 1920). Sizes below 320 are for tests."""

    height: int = Field(720, ge=90, le=2160)
    """Panel height in pixels (imports are capped at 1080)."""

    hw_decode: Literal["auto", "off"] = "auto"
    """``auto`` tries the Pi 4's hardware H.264 decoder (``h264_v4l2m2m``) and falls back to software; ``off`` always decodes in software."""

    queue_frames: int = Field(4, ge=2, le=30)
    """Decoded frames kept ready ahead of the screen; each costs width×height×4 bytes of memory."""

    font: str = ""
    """Font file (OTF/TTF with Japanese glyphs) for slides and demo title cards. Empty: the first ``kiosk/ui/assets/fonts/*.otf|*.ttf`` if present, else pygame's default font."""

    slide_every: int = Field(3, ge=0, le=100)
    """Show the next upcoming-event slide after this many clips; 0 shows event slides only when no clip can play."""

    metrics_max_kb: int = Field(1024, ge=16, le=1_048_576)
    """Size cap of ``metrics/player.jsonl`` in the data dir; when full it is rotated to ``player.jsonl.1`` (one old file kept)."""

    playlist: list[PlaylistItem] = Field(default_factory=list)
    """Clips in play order (``[[player.playlist]]``). Edits take effect at the next clip boundary without a restart."""

    slides: list[EventSlide] = Field(default_factory=list)
    """Upcoming events at the center (``[[player.slides]]``), rendered by the kiosk as still slides."""

"""Clocks the player reads: a monotonic one for pacing and a wall one for playlist windows.

Tests inject :class:`FakeClock` so schedules and pacing can be checked at any
hour of any weekday without waiting.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (frame pacing, metrics)."""

    def now(self) -> dt.datetime:
        """Timezone-aware wall time (playlist windows, slide dates)."""

    def sleep(self, seconds: float) -> None:
        """Wait; a fake clock just moves forward."""


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that only moves when told to (or when slept on)."""

    def __init__(self, start: dt.datetime | None = None, monotonic: float = 1000.0):
        self._wall = start or dt.datetime(2025, 7, 7, 10, 0, tzinfo=dt.timezone.utc)
        if self._wall.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start time")
        self._mono = monotonic
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def now(self) -> dt.datetime:
        with self._lock:
            return self._wall

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._mono += seconds
            self._wall += dt.timedelta(seconds=seconds)

    def set_wall(self, when: dt.datetime) -> None:
        with self._lock:
            self._wall = when

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)

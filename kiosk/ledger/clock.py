"""Time sources for entry envelopes.

A Raspberry Pi has no RTC, so wall time may be wrong until NTP syncs; order
always comes from ``seq``. Each entry records monotonic ms since boot, wall
time, and whether the kernel considers the clock synchronised.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time

_TIME_ERROR = 5  # adjtimex() return value while the clock is unsynchronised
_libc = None


def _adjtimex():  # noqa: ANN202
    """libc's adjtimex, loaded once: find_library runs ldconfig, far too slow for every append."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc.adjtimex


class SystemClock:
    """The real clocks. ``synced()`` asks the kernel through adjtimex(2), at most once a second:
    sync state changes rarely, and the call was 2% of an append."""

    def __init__(self) -> None:
        self._synced = False
        self._checked_ms = -1_000_000

    def mono_ms(self) -> int:
        # CLOCK_BOOTTIME keeps counting through suspend; it is "since boot" on Linux.
        clk = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
        return time.clock_gettime_ns(clk) // 1_000_000

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def synced(self) -> bool:
        now = time.monotonic_ns() // 1_000_000
        if now - self._checked_ms >= 1000:
            self._checked_ms = now
            try:
                buf = ctypes.create_string_buffer(512)  # struct timex is ~208 bytes; modes=0 only reads
                self._synced = _adjtimex()(buf) not in (-1, _TIME_ERROR)
            except (OSError, AttributeError):
                self._synced = False
        return self._synced


class FixedClock:
    """A settable clock for tests and benchmarks."""

    def __init__(self, wall_ms: int = 1_763_700_000_000, mono_ms: int = 1_000, synced: bool = True):
        self.wall, self.mono, self.is_synced = wall_ms, mono_ms, synced

    def advance(self, ms: int) -> None:
        self.wall += ms
        self.mono += ms

    def mono_ms(self) -> int:
        return self.mono

    def wall_ms(self) -> int:
        return self.wall

    def synced(self) -> bool:
        return self.is_synced

"""The kiosk's one clock: :class:`Clock`, the real :class:`SystemClock` and the hand-moved :class:`FixedClock`.

One object answers every question the kiosk asks of time, so a test moves one fake and the ledger,
the donation flow, the uploader and the movie loop all see it move:

- ``mono_ms()``, ``wall_ms()``, ``synced()``: what each ledger entry records. A Raspberry Pi has no
  RTC, so wall time may be wrong until NTP syncs; order always comes from ``seq``. Each entry records
  monotonic ms since boot, wall time, and whether the kernel considers the clock synchronised. The
  donation flow's idle timeouts and the sync heartbeat use the same three.
- ``monotonic()``, ``now()``, ``sleep()``: what the movie loop needs, seconds for frame pacing and
  metrics, an aware datetime for playlist windows and slide dates, and a wait a fake can skip.

(``server_sync.clockfix`` is something else: the portal's after-the-fact correction of a kiosk's
times per boot, pure arithmetic over recorded values, not a time source.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import threading
import time
from typing import Any, Protocol, runtime_checkable

_TIME_ERROR = 5  # adjtimex() return value while the clock is unsynchronised
# CLOCK_BOOTTIME keeps counting through suspend; it is "since boot" on Linux (looked up once: every append reads it).
_BOOT_CLOCK: int = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_libc = None


def _adjtimex() -> Any:
    """libc's adjtimex, loaded once. glibc's soname first: find_library forks ``ldconfig -p``, far too slow for
    every append and a cost to every start of ``kiosk run`` (its first append, cold start #16)."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6", use_errno=True)
        except OSError:  # not glibc (musl, BSD): ask the system where its C library is
            _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return _libc.adjtimex


@runtime_checkable
class Clock(Protocol):
    def mono_ms(self) -> int:
        """Milliseconds since boot, never jumping (ledger envelopes, flow timeouts, heartbeats)."""

    def wall_ms(self) -> int:
        """Wall time, ms since the Unix epoch; may be wrong until ``synced()``."""

    def synced(self) -> bool:
        """Whether the kernel considers the wall clock NTP-synchronised."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (frame pacing, metrics); comparable with ``time.monotonic()``."""

    def now(self) -> dt.datetime:
        """Timezone-aware wall time (playlist windows, slide dates)."""

    def sleep(self, seconds: float) -> None:
        """Wait; a fake clock just moves forward."""


class SystemClock:
    """The real clocks. ``synced()`` asks the kernel through adjtimex(2), at most once a second:
    sync state changes rarely, and the call was 2% of an append."""

    def __init__(self) -> None:
        self._synced = False
        self._checked_ms = -1_000_000

    def mono_ms(self) -> int:
        return time.clock_gettime_ns(_BOOT_CLOCK) // 1_000_000

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

    def monotonic(self) -> float:
        # time.monotonic, not the boot clock above: the reader stamps its events and the app computes
        # its waits with time.monotonic, and the player's deadlines are compared with both.
        return time.monotonic()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FixedClock:
    """A clock that moves only when told to (:meth:`advance`, :meth:`set_wall`) or slept on: for tests
    and benchmarks. Default wall time 2025-11-21 13:40 JST.

    Kept in nanoseconds so the player's sleeps of a fraction of a frame still move it; ``wall``,
    ``mono`` (ms) and ``is_synced`` may be read and set directly.
    """

    def __init__(self, wall_ms: int = 1_763_700_000_000, mono_ms: int = 1_000, synced: bool = True):
        self._wall_ns, self._mono_ns = wall_ms * 1_000_000, mono_ms * 1_000_000
        self.is_synced = synced
        self._lock = threading.Lock()  # the player's decode thread reads while the loop sleeps

    @property
    def wall(self) -> int:
        return self._wall_ns // 1_000_000

    @wall.setter
    def wall(self, ms: int) -> None:
        self._wall_ns = ms * 1_000_000

    @property
    def mono(self) -> int:
        return self._mono_ns // 1_000_000

    @mono.setter
    def mono(self, ms: int) -> None:
        self._mono_ns = ms * 1_000_000

    def advance(self, ms: float) -> None:
        """Move both clocks forward by ``ms`` milliseconds (the ledger's unit; ``sleep`` takes seconds)."""
        self._advance_ns(round(ms * 1_000_000))

    def _advance_ns(self, ns: int) -> None:
        with self._lock:
            self._wall_ns += ns
            self._mono_ns += ns

    def set_wall(self, when: dt.datetime) -> None:
        """Set the wall clock (an aware datetime) without moving the monotonic one: a clock step."""
        if when.tzinfo is None:
            raise ValueError("FixedClock.set_wall needs a timezone-aware datetime")
        with self._lock:
            self._wall_ns = (when - _EPOCH) // dt.timedelta(microseconds=1) * 1_000

    def mono_ms(self) -> int:
        return self.mono

    def wall_ms(self) -> int:
        return self.wall

    def synced(self) -> bool:
        return self.is_synced

    def monotonic(self) -> float:
        return self._mono_ns / 1e9

    def now(self) -> dt.datetime:
        return _EPOCH + dt.timedelta(microseconds=self._wall_ns // 1_000)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._advance_ns(max(1, round(seconds * 1e9)))

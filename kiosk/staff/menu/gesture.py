"""The hidden way in: five quick taps in the top-left corner bring up the PIN keypad.

A corner nobody aims at (the donation screens keep it empty) and a count a
curious child rarely hits by accident; behind it there is still the PIN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TAPS = 5
WINDOW_MS = 3000
CORNER = 0.12
"""Side of the corner square as a fraction of the screen height (~4 cm on a 32" panel)."""


@dataclass
class CornerTaps:
    taps: int = TAPS
    window_ms: int = WINDOW_MS
    corner: float = CORNER
    _times: list[int] = field(default_factory=list)

    def in_corner(self, pos: tuple[int, int], size: tuple[int, int]) -> bool:
        side = max(1, round(size[1] * self.corner))
        return 0 <= pos[0] < side and 0 <= pos[1] < side

    def tap(self, pos: tuple[int, int], now_ms: int, size: tuple[int, int]) -> bool:
        """Count a tap; True when it completes the gesture. A tap elsewhere starts the count over."""
        if not self.in_corner(pos, size):
            self._times.clear()
            return False
        self._times = [t for t in self._times if now_ms - t < self.window_ms] + [now_ms]
        if len(self._times) >= self.taps:
            self._times.clear()
            return True
        return False

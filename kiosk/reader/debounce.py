"""Debounce as a pure state machine: the caller passes the time in.

* A card held on the reader is one tap, however many polls see it.
* A card counts as removed only after ``removal_misses`` polls in a row miss it
  (cards at the edge of the field drop out for a poll or two).
* A card seen again within ``cooldown_s`` of when it was last seen is the same
  tap (people lift and re-tap when nothing seems to happen).

Cards are keyed by their donor token, so no IDm is kept between polls.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Seen(enum.Enum):
    TAP = "tap"
    """A new tap: read the card and count it."""
    HELD = "held"
    """The card that is already on the reader."""
    COOLDOWN = "cooldown"
    """The same card back within the cooldown: not a new tap."""


@dataclass
class Debouncer:
    cooldown_s: float
    removal_misses: int = 3
    current: str | None = None
    misses: int = 0
    _last_seen: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.removal_misses < 1:
            raise ValueError("removal_misses must be at least 1")
        if self.cooldown_s < 0:
            raise ValueError("cooldown must not be negative")

    def seen(self, key: str, now: float) -> tuple[Seen, str | None]:
        """A poll found card ``key``. Returns the verdict and the key of a card it replaced, if any."""
        self.misses = 0
        if key == self.current:
            if key in self._last_seen:  # not after forget(): a failed read starts no cooldown
                self._last_seen[key] = now
            return Seen.HELD, None
        replaced, self.current = self.current, key
        last = self._last_seen.get(key)
        self._last_seen[key] = now
        self._prune(now)
        if last is not None and now - last < self.cooldown_s:
            return Seen.COOLDOWN, replaced
        return Seen.TAP, replaced

    def missed(self, now: float) -> str | None:
        """A poll found nothing. Returns the key of the card now counted as removed, if any."""
        if self.current is None:
            return None
        self.misses += 1
        if self.misses < self.removal_misses:
            return None
        removed, self.current, self.misses = self.current, None, 0
        return removed

    def forget(self, key: str) -> None:
        """The read failed: a later re-tap of this card is a fresh attempt, not a cooldown repeat."""
        self._last_seen.pop(key, None)

    def _prune(self, now: float) -> None:
        if len(self._last_seen) > 64:
            for k in [k for k, t in self._last_seen.items() if now - t >= self.cooldown_s and k != self.current]:
                del self._last_seen[k]

"""How every client of ours retries an HTTP call: full-jitter backoff, never sooner than ``Retry-After``.

Part of the wire conventions, not of one client: the kiosk's uploader uses it today and the payment
adapter will (``kiosk.payment`` sits below ``kiosk.sync`` and could not import it from there). Pure:
no I/O of its own; sleeping, the random source and "now" are passed in, so tests need no waiting.

- :class:`Backoff`: the policy. Attempt ``n`` (0-based) waits ``uniform(0, min(cap, base·2ⁿ))``
  ("Exponential Backoff and Jitter", AWS architecture blog), but never less than the server's
  ``Retry-After``.
- :func:`retry_after_seconds`: ``Retry-After`` in both forms of RFC 9110 §10.2.3, delay-seconds and
  HTTP-date; :func:`retry_after_of` reads it off a response, measuring a date from the response's own
  ``Date`` (the server's clock: a kiosk without an RTC may not share it).
- :func:`retry`: the one loop.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

T = TypeVar("T")

_DELAY_SECONDS = re.compile(r"[0-9]+")  # RFC 9110: delay-seconds = 1*DIGIT (no sign, no fraction)


@dataclass(frozen=True)
class Backoff:
    base: float = 0.5
    """Seconds: the window of the first retry."""
    cap: float = 60.0
    """Seconds: the window never grows past this."""
    longest_retry_after: float = 3600.0
    """A ``Retry-After`` beyond this is cut to it: a broken or hostile header must not park a kiosk for days."""

    def __post_init__(self) -> None:
        if not (self.base > 0 and self.cap >= 0 and self.longest_retry_after >= 0):
            raise ValueError(f"bad backoff: base={self.base} cap={self.cap}")

    def window(self, attempt: int) -> float:
        """The jitter window of attempt ``attempt``: ``min(cap, base·2^attempt)``."""
        return min(self.cap, self.base * 2.0 ** min(max(attempt, 0), 60))  # 2^60: past any cap, short of overflow

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first)."""
        wait = (rng or random).uniform(0.0, self.window(attempt))
        if retry_after is not None:
            wait = max(wait, min(max(retry_after, 0.0), self.longest_retry_after))
        return wait


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header value asks for, measured from ``now`` (an aware datetime).

    Delay-seconds (``"120"``) or an HTTP-date (``"Fri, 31 Dec 1999 23:59:59 GMT"``); a date already
    past is 0. ``None`` for an absent or malformed value: the caller's own backoff applies.
    """
    if value is None:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: an HTTP-date is always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def retry_after_of(headers: Mapping[str, str], now: datetime) -> float | None:
    """``Retry-After`` of a response (``headers`` as ``requests`` gives them: case-insensitive).

    An HTTP-date is measured from the response's ``Date`` when it has a valid one, else from ``now``.
    """
    reference = now
    date = headers.get("Date")
    if date:
        try:
            reference = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
        else:
            if reference.tzinfo is None:
                reference = reference.replace(tzinfo=UTC)
    return retry_after_seconds(headers.get("Retry-After"), reference)


@dataclass(frozen=True)
class Transient:
    """What :func:`retry`'s ``classify`` returns for a failure worth retrying."""

    retry_after: float | None = None
    """Seconds the server asked for (``Retry-After``), if it did."""
    progressed: bool = False
    """The failed call still got somewhere (e.g. some batches accepted): the backoff starts over."""


def retry(call: Callable[[], T], *, classify: Callable[[Exception], Transient | None],
          backoff: Backoff = Backoff(), max_attempts: int | None = None,
          on_retry: Callable[[Exception, int, float], None] | None = None,
          sleep: Callable[[float], object] = time.sleep, rng: random.Random | None = None) -> T:
    """Call ``call()`` until it returns, and return what it returned.

    After a failure ``classify(exc)`` decides: ``None`` re-raises at once (a permanent failure), a
    :class:`Transient` retries after ``backoff.delay(attempt, retry_after)``. With ``max_attempts``
    (calls in all, counted since the last progress) the last failure is re-raised when they are used
    up; without, it retries for ever. ``on_retry(exc, attempt, wait)`` runs before each wait; an
    exception from ``sleep`` (a stop request) ends the loop.
    """
    if max_attempts is not None and max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            verdict = classify(exc)
            if verdict is None:
                raise
            if verdict.progressed:
                attempt = 0  # the link works: keep going at full speed
            if max_attempts is not None and attempt + 1 >= max_attempts:
                raise
            wait = backoff.delay(attempt, verdict.retry_after, rng)
            if on_retry is not None:
                on_retry(exc, attempt, wait)
        sleep(wait)  # outside the except: a failure here is not the call's and is not retried
        attempt += 1

"""Points exchanged for a sponsor-matched gift, at the kiosk (issue #17; the design is in docs/points.md).

A citizen taps a card, sees what it may spend here, chooses a project and a number of points; the points
become the sponsor's yen for that project, recorded as one ``points_spent`` entry. Nothing here takes
money: no payment terminal is involved.

Fail closed, offline as online. What this kiosk may spend is bounded by two amounts the portal handed it,
minus what this kiosk's own ledger has already spent from them:

- for the **card**: the portal's last word (the cumulative points the portal handed this kiosk for this
  card, kept by kiosk/sync/pointsync.py), minus the card's ``points_spent`` here;
- for the **pool**: this kiosk's allocation in the signed pushed config, minus the pool's ``points_spent``
  here.

Neither is ever raised by the kiosk itself, so two kiosks spending the same card or the same pool offline
can together spend only what the portal handed out, which is never more than the card earned or the
sponsor funded. :func:`exchange` checks both and appends in one job on the ledger writer's thread, so no
other append can slip between the check and the entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from kiosk.ledger import DonorToken, Entry, Ledger


class ExchangeRefused(ValueError):
    """An exchange this kiosk may not make; ``reason`` is a short code for the screen."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class PoolTerms(msgspec.Struct, frozen=True):
    """One sponsor pool as this kiosk may use it (from the pushed config's ``pools``)."""

    id: str
    sponsor: str
    sponsor_en: str
    yen_per_point: int
    areas: tuple[str, ...]
    start: str | None
    end: str | None
    allocation_yen: int

    def open_on(self, day: dt.date) -> bool:
        iso = day.isoformat()
        return (self.start is None or self.start <= iso) and (self.end is None or iso <= self.end)

    def gives_to(self, area: str) -> bool:
        return not self.areas or area in self.areas


def pools_for(pushed: dict[str, Any] | None, kiosk_id: str) -> list[PoolTerms]:
    """The pools of a pushed config document (``{"config": ...}`` or the config itself), with this kiosk's
    allocation (0 when the portal has handed it nothing yet)."""
    cfg = (pushed or {}).get("config", pushed) or {}
    return [PoolTerms(p["id"], p["sponsor"], p.get("sponsor_en", ""), int(p.get("yen_per_point", 1)),
                      tuple(p.get("areas") or ()), p.get("start"), p.get("end"),
                      int((p.get("allocations") or {}).get(kiosk_id, 0)))
            for p in cfg.get("pools") or []]


def hexes_of(token: DonorToken) -> list[str]:
    """Every token of the card this kiosk can make (every pepper epoch it holds, when it holds several)."""
    return list(getattr(token, "all_hexes", None) or (token.hex,))


def card_spendable(ledger: Ledger, token: DonorToken, allotted: int) -> int:
    """Points this card may spend here: the portal's last word minus what this ledger spent for it."""
    return max(0, allotted - ledger.points_spent(hexes_of(token))[0])


def pool_left(ledger: Ledger, pool: PoolTerms) -> int:
    """Yen this kiosk may still give from ``pool``: its allocation minus what this ledger gave from it."""
    return max(0, pool.allocation_yen - ledger.points_spent(pool=pool.id)[1])


def choose_pool(ledger: Ledger, pools: list[PoolTerms], area: str, points: int, day: dt.date) -> PoolTerms | None:
    """The first pool, in the portal's order, that is open today, gives to ``area`` and has room here."""
    for p in pools:
        if p.open_on(day) and p.gives_to(area) and pool_left(ledger, p) >= points * p.yen_per_point:
            return p
    return None


def room_by_project(ledger: Ledger, pools: list[PoolTerms], areas: Mapping[str, str], day: dt.date) -> dict[str, int]:
    """Project id (of ``areas``) → the most points one exchange for it can use here on ``day``: of the pools open that
    day that give to its area, the largest share this kiosk has left, in points (0: no pool can give to it). An
    exchange of at most that many points finds a pool (:func:`choose_pool`), one of more finds none. One indexed
    read of this ledger per pool that is open and was handed to this kiosk (a kiosk has a few)."""
    points = {p.id: pool_left(ledger, p) // max(1, p.yen_per_point) for p in pools
              if p.allocation_yen > 0 and p.open_on(day)}
    return {pid: max((points[p.id] for p in pools if p.id in points and p.gives_to(area)), default=0)
            for pid, area in areas.items()}


def exchange(ledger: Ledger, token: DonorToken, points: int, project: str, area: str, pools: list[PoolTerms],
             allotted: int, day: dt.date) -> Entry:
    """Check and record one exchange. Call on the ledger writer's thread (a LedgerWriter job)."""
    if not isinstance(points, int) or isinstance(points, bool) or points < 1:
        raise ExchangeRefused("points", "points must be a positive whole number")
    have = card_spendable(ledger, token, allotted)
    if points > have:
        raise ExchangeRefused("card", f"this card may spend {have} points here")
    pool = choose_pool(ledger, pools, area, points, day)
    if pool is None:
        raise ExchangeRefused("pool", "no sponsor pool has room for this gift here")
    return ledger.spend_points(token, points, project, points * pool.yen_per_point, pool.id)


class PointsDesk(msgspec.Struct, frozen=True):
    """What the donation service needs for an exchange, from the layers above it (the app wires the sync side
    in: kiosk/sync/pointsync.py for the card, the applied pushed config for the pools)."""

    ask: Callable[[DonorToken, int], tuple[int, int | None]]
    """The portal's word for a card (and the points this kiosk's ledger has spent for it, told to the portal),
    asked now if it can be reached, else its last word: (points handed to this kiosk, the card's balance or None
    when not reached). Must not raise for an unreachable portal."""
    last_word: Callable[[DonorToken], int]
    """The last word only (no network): what an exchange is checked against."""
    pools: Callable[[], list[PoolTerms]]
    areas: Mapping[str, str]
    """Project id → policy area (a pool may give only to some areas); `kiosk run`'s reads the running config."""
    today: Callable[[], dt.date] | None = None
    """The day a pool's period is judged on; None (as `kiosk run` builds it): the ledger's business date, the
    day of the kiosk's clock in its ``[kiosk] timezone``, which is how the portal dates the entry
    (server_sync/policy.py); with the clock not synced, never before the newest entry written with a synced clock
    (``Ledger.business_date_at_least``: a Pi booted offline with its clock behind refused points inside the
    period). Never the operating system's date: on a kiosk whose system time zone is UTC that
    is yesterday in Tokyo until 09:00, and an exchange the kiosk allowed would be quarantined at the portal,
    its points gone and no sponsor money given."""

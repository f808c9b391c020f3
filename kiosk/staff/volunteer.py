"""Volunteer points: staff pick an activity and a number of points, the volunteer taps a card.

The grant is a ``points_grant`` entry keyed by the card's donor token, so the
points join the same balance as points earned by giving
(:meth:`kiosk.ledger.Ledger.donor_points`).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from kiosk.ledger import DonorToken, Entry, Ledger
from kiosk.ledger.schema import entries
from kiosk.ledger.store import read_only_engine
from kiosk.ledger.writer import LedgerWriter, call
from kiosk.staff.gate import StaffSession
from kiosk.staff.words import StaffMessage

if TYPE_CHECKING:
    from kiosk.config.staff import VolunteerSection

log = logging.getLogger(__name__)


class VolunteerError(StaffMessage, ValueError):
    """A grant refused by the limits in ``[volunteer]``; ``str()`` is the English message (CLI, admin trail),
    ``say(tr)`` the one for the menu."""


def granted_on(ledger: Ledger, donor: DonorToken, day: date) -> int:
    """Volunteer points a card received on a business day (for the daily limit)."""
    lo, hi = ledger.day_bounds_ms(day)
    # A read-only connection of our own: the ledger's query columns make this one indexed lookup.
    eng = read_only_engine(ledger.path)
    try:
        with eng.connect() as conn:
            total = conn.execute(select(func.coalesce(func.sum(entries.c.points), 0)).where(
                entries.c.type == "points_grant", entries.c.donor.in_(donor.all_hexes),  # every epoch
                entries.c.wall_ms >= lo, entries.c.wall_ms < hi)).scalar_one()
    finally:
        eng.dispose()
    return int(total)


def check_grant(settings: VolunteerSection, activity_id: str, points: int, already_today: int = 0) -> None:
    """Raise :class:`VolunteerError` unless the grant is within the configured limits."""
    act = settings.activity(activity_id)
    if act is None:
        if settings.rules_version:
            raise VolunteerError("unknown activity {activity!r}: no rule of the point rules v{version}",
                                 activity=activity_id, version=settings.rules_version)
        raise VolunteerError("unknown activity {activity!r}", activity=activity_id)
    if not isinstance(points, int) or isinstance(points, bool) or points < 1:
        raise VolunteerError("points must be a positive whole number")  # no figures: braces-free
    if settings.rules_version and points != act.points:
        # Written rules (docs/points.md): an activity gives exactly its points; anything else matches no rule.
        raise VolunteerError("{activity}: the point rules v{version} give {points} points, not {wanted}",
                             activity=act.title, version=settings.rules_version, points=act.points, wanted=points)
    if points > act.max_points:
        raise VolunteerError("{activity}: at most {most} points per grant", activity=act.title, most=act.max_points)
    if already_today + points > settings.daily_limit_per_card:
        left = max(0, settings.daily_limit_per_card - already_today)
        raise VolunteerError("this card can receive {left} more points today (limit {limit} a day)",
                             left=left, limit=settings.daily_limit_per_card)


def grant(writer: LedgerWriter, settings: VolunteerSection, activity_id: str, points: int, donor: DonorToken,
          session: StaffSession | None = None) -> Entry:
    """Grant ``points`` for ``activity_id`` to the tapped card; audited through ``session`` when given.

    Waits for the writer (call it from a background thread, not the render or reader thread).
    """

    def job(ledger: Ledger) -> Entry:
        # Limit check, grant and audit line in one job on the writer's thread: nothing can be granted
        # between the check and the grant, and the audit line follows its grant directly.
        check_grant(settings, activity_id, points, granted_on(ledger, donor, ledger.business_date()))
        entry = ledger.grant_points(donor, points, activity_id, settings.rules_version or None)
        if session is not None:
            # The grant is durable now, so it is done whatever happens to its audit line: raising here would
            # tell staff that nothing was granted, and "tap again" would grant a second time.
            try:
                session.append_to(ledger, "points_grant", activity=activity_id, points=points,
                                  grant_seq=entry.seq)
            except Exception as exc:  # noqa: BLE001 - a disk gone full between the two appends
                log.error("points grant seq=%d (%s, %d pt) is written, but its audit line is not: %s",
                          entry.seq, activity_id, points, exc)
        return entry

    return call(writer, job)


def balance(ledger: Ledger, donors: list[DonorToken] | DonorToken) -> int:
    """A card's point balance (giving plus volunteering), under every pepper epoch a tap's token carries
    (:attr:`DonorToken.all_hexes`) and every token passed."""
    tokens = [donors] if isinstance(donors, DonorToken) else donors
    return ledger.donor_points(list(dict.fromkeys(h for t in tokens for h in t.all_hexes)))

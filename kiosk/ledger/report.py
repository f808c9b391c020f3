"""The close-out basis (日計): settled donations, optionally for one business day.

Settled means a ``donation`` entry that no ``void`` entry (anywhere in the
ledger) cancels; ``voided`` counts the donations of the report's date that one
does cancel. Business dates come from each entry's wall time in the
kiosk's time zone, recorded in the genesis entry. Pure: takes parsed entries.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo


def business_date(wall_ms: int, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(wall_ms / 1000, tz).date()


_DAY_MS = 86_400_000
_EPOCH = date(1970, 1, 1).toordinal()


def day_window_ms(first: date, last: date) -> tuple[int, int]:
    """Wall times ``[lo, hi)`` that hold every instant whose business date, in any time zone, is from ``first``
    to ``last``: their UTC days with a day's margin either side (time zones lie within UTC−12…+14). A superset,
    so a time zone's rules never need to be right here: :func:`settled_report` decides each date itself.
    Day numbers, not datetimes, so no date is out of range."""
    return (first.toordinal() - _EPOCH - 1) * _DAY_MS, (last.toordinal() - _EPOCH + 2) * _DAY_MS


def settled_report(entries: Iterable[tuple[int, dict[str, Any]]], day: date | None = None) -> dict[str, Any]:
    """``entries`` yields ``(seq, parsed body)`` in seq order."""
    tz = ZoneInfo("Asia/Tokyo")
    donations: dict[int, tuple[date, dict[str, Any], bool]] = {}
    voided: set[int] = set()
    for seq, obj in entries:
        kind = obj["type"]
        if kind == "genesis":
            tz = ZoneInfo(obj["data"].get("timezone", "Asia/Tokyo"))
        elif kind == "donation":
            donations[seq] = (business_date(obj["wall_ms"], tz), obj["data"], bool(obj.get("clock_synced", True)))
        elif kind == "void":
            voided.add(obj["data"]["voids_seq"])
    projects: dict[str, dict[str, int]] = {}
    methods: dict[str, dict[str, int]] = {}
    seqs: list[int] = []
    points = 0
    unsynced = 0
    cancelled = 0  # voided donations of the report's date (whenever the void was written)
    for seq, (d, data, synced) in donations.items():
        if day is not None and d != day:
            continue
        if seq in voided:
            cancelled += 1
            continue
        seqs.append(seq)
        unsynced += not synced
        for bucket, key in ((projects, data["project"]), (methods, data["method"])):
            b = bucket.setdefault(key, {"count": 0, "total_yen": 0})
            b["count"] += 1
            b["total_yen"] += data["amount_yen"]
        points += data["points"]
    return {
        "date": day.isoformat() if day else None,
        "count": len(seqs),
        "total_yen": sum(p["total_yen"] for p in projects.values()),
        "points": points,
        "first_seq": min(seqs) if seqs else None,
        "last_seq": max(seqs) if seqs else None,
        "projects": [{"id": k, **v} for k, v in sorted(projects.items())],
        "methods": [{"method": k, **v} for k, v in sorted(methods.items())],
        # Donations of the report's date (of every date, without one) that a void cancels: the day's gifts
        # the count leaves out, not the voids written that day.
        "voided": cancelled,
        # Donations dated by an unsynchronised kiosk clock: their business date is the kiosk's own guess.
        "clock_unsynced": unsynced,
    }


def render_text(rep: dict[str, Any]) -> str:
    head = f"日計 / close-out basis {rep['date'] or '(all dates)'}"
    lines = [head, "-" * len(head),
             f"settled donations: {rep['count']}   total: ¥{rep['total_yen']:,}   points: {rep['points']}",
             f"seq range: {rep['first_seq']}..{rep['last_seq']}"]
    for p in rep["projects"]:
        lines.append(f"  {p['id']:<24} {p['count']:>6}  ¥{p['total_yen']:>10,}")
    for m in rep["methods"]:
        lines.append(f"  method {m['method']:<17} {m['count']:>6}  ¥{m['total_yen']:>10,}")
    return "\n".join(lines)

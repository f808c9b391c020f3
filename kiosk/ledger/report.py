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


class SettledReport:
    """:func:`settled_report` fed one entry at a time: ``add(seq, parsed body)`` in seq order, then :meth:`result`.
    ``kiosk ledger report`` feeds it from the verification's own pass over an export (each entry as it is checked),
    so the file is read once and the totals are of the very bytes that were verified; it reads the result only
    if the whole export verified."""

    def __init__(self, day: date | None = None, last: date | None = None):
        if last is not None and day is None:
            raise ValueError("a report up to a last date needs its first date")
        self.day, self.last = day, last
        self.tz = ZoneInfo("Asia/Tokyo")
        self.kiosk_id: str | None = None
        self.donations: dict[int, tuple[date, dict[str, Any], bool]] = {}
        self.voided: set[int] = set()

    def add(self, seq: int, obj: dict[str, Any]) -> None:
        kind = obj["type"]
        if kind == "genesis":
            self.kiosk_id = obj.get("kiosk")
            self.tz = ZoneInfo(obj["data"].get("timezone", "Asia/Tokyo"))
        elif kind == "donation":
            self.donations[seq] = (business_date(obj["wall_ms"], self.tz), obj["data"],
                                   bool(obj.get("clock_synced", True)))
        elif kind == "void":
            self.voided.add(obj["data"]["voids_seq"])

    def result(self) -> dict[str, Any]:
        return _result(self.kiosk_id, self.donations, self.voided, self.day, self.last)


def settled_report(entries: Iterable[tuple[int, dict[str, Any]]], day: date | None = None,
                   last: date | None = None) -> dict[str, Any]:
    """``entries`` yields ``(seq, parsed body)`` in seq order. With ``last``, the report covers the business dates
    ``day`` to ``last`` (a month, for an auditor): ``date`` is None, ``from``/``to`` name them, and ``days`` lists
    each date that has a donation (settled or voided) with its ``count``, ``total_yen`` and ``voided``, as the
    portal's month CSV has a ``total`` row per kiosk-day."""
    rep = SettledReport(day, last)
    for seq, obj in entries:
        rep.add(seq, obj)
    return rep.result()


def _result(kiosk_id: str | None, donations: dict[int, tuple[date, dict[str, Any], bool]], voided: set[int],
            day: date | None, last: date | None) -> dict[str, Any]:
    first = day
    projects: dict[str, dict[str, int]] = {}
    methods: dict[str, dict[str, int]] = {}
    seqs: list[int] = []
    points = 0
    unsynced = 0
    cancelled = 0  # voided donations of the report's date (whenever the void was written)
    days: dict[date, dict[str, int]] = {}
    for seq, (d, data, synced) in donations.items():
        if first is not None and not first <= d <= (last or first):
            continue
        per_day = days.setdefault(d, {"count": 0, "total_yen": 0, "voided": 0})
        if seq in voided:
            cancelled += 1
            per_day["voided"] += 1
            continue
        per_day["count"] += 1
        per_day["total_yen"] += data["amount_yen"]
        seqs.append(seq)
        unsynced += not synced
        for bucket, key in ((projects, data["project"]), (methods, data["method"])):
            b = bucket.setdefault(key, {"count": 0, "total_yen": 0})
            b["count"] += 1
            b["total_yen"] += data["amount_yen"]
        points += data["points"]
    out: dict[str, Any] = {
        "kiosk_id": kiosk_id,
        "date": day.isoformat() if day and last is None else None,
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
    if last is not None and first is not None:
        out["from"], out["to"] = first.isoformat(), last.isoformat()
        out["days"] = [{"date": d.isoformat(), **v} for d, v in sorted(days.items())]
    return out


def render_text(rep: dict[str, Any]) -> str:
    """The report as an auditor or staff member reads it: Japanese first, each figure named, the kiosk and the
    dates it covers said, and with a period, one line per day (the portal's month CSV has a ``total`` row per
    kiosk and day to hold them to)."""
    if rep.get("from"):
        when = f"期間 period: {rep['from']} 〜 {rep['to']}"
    else:
        when = f"日付 date: {rep['date']}" if rep["date"] else "全期間 all dates"
    head = "寄付の集計（取り消された寄付を除く） / settled donations"
    lines = [head, "-" * 40, f"端末 kiosk: {rep.get('kiosk_id') or '?'}", when,
             f"件数 count: {rep['count']}   合計 total: ¥{rep['total_yen']:,}   ポイント points: {rep['points']}",
             f"取り消された寄付（数えていません） voided, not counted: {rep['voided']}",
             f"seq: {rep['first_seq']}..{rep['last_seq']}" if rep["count"] else "seq: -"]
    if rep.get("verified"):  # an export, verified before it was counted (kiosk ledger report)
        lines.insert(2, f"検証済み verified: {rep['verified']}")
    if rep["projects"]:
        lines.append("事業ごと by project:")
    for p in rep["projects"]:
        lines.append(f"  {p['id']:<24} {p['count']:>6}件  ¥{p['total_yen']:>10,}")
    if rep["methods"]:
        lines.append("支払い方法ごと by payment method:")
    for m in rep["methods"]:
        lines.append(f"  {m['method']:<24} {m['count']:>6}件  ¥{m['total_yen']:>10,}")
    if "days" in rep:
        lines.append("日ごと by day:")
        for d in rep["days"]:
            extra = f"   取り消し voided {d['voided']}件" if d["voided"] else ""
            lines.append(f"  {d['date']:<24} {d['count']:>6}件  ¥{d['total_yen']:>10,}{extra}")
    return "\n".join(lines)

"""Daily close-out (日計): the Z report that closes a business day, and the X report that only looks.

The totals are :func:`kiosk.ledger.report.settled_report` for the day, the
same basis ``kiosk ledger report --date D`` prints, so what the screen shows,
what is signed into the ledger and what the portal recomputes cannot drift.
A Z report is a snapshot: a void written later for a closed day shows up in
``kiosk ledger report`` but not in the old ``close_out`` entry; a forced
second Z for that date records the corrected totals and the seq it supersedes.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from kiosk.ledger import Entry, Ledger, LedgerError
from kiosk.ledger.report import business_date, day_window_ms, settled_report
from kiosk.ledger.writer import LedgerWriter, call
from kiosk.ui.i18n import gettext_for
from server_sync.wire.csvsafe import cell

log = logging.getLogger(__name__)

CLOSE_OUT_KEYS = ("business_date", "first_seq", "last_seq", "count", "total_yen", "projects", "methods", "points")
REPORT_KINDS = frozenset({"donation", "void", "close_out"})
"""Entry types that change a day's Z report (its totals, or whether the day is already closed)."""


class AlreadyClosed(LedgerError):
    """A Z report for this business date exists; pass ``force`` to write a superseding one."""

    def __init__(self, day: date, seq: int):
        self.day, self.seq = day, seq
        super().__init__(f"business date {day} is already closed (close_out seq={seq}); "
                         "use --force to write a superseding close-out")


def _closed(parsed: Iterable[tuple[int, dict[str, Any]]]) -> dict[date, int]:
    out: dict[date, int] = {}
    for seq, obj in parsed:
        if obj["type"] == "close_out":
            out[date.fromisoformat(obj["data"]["business_date"])] = seq
    return out


def x_report(ledger: Ledger, day: date | None = None) -> dict[str, Any]:
    """Running totals for ``day`` (default: today's business date). Writes nothing."""
    day = day or ledger.business_date()
    parsed = ledger.report_entries(day, day)
    rep = settled_report(parsed, day)
    rep["kind"] = "X"
    closed = rep["closed_seq"] = _closed(parsed).get(day)
    rep["after_close"] = changes_after_close(parsed, day, closed)[0]
    return rep


def refunded_after_close(ledger: Ledger, day: date, closed: int | None) -> int:
    """Donations of ``day`` that its close-out ``closed`` counted and a void written after it cancels (refunds made
    after the Z): the signed totals still hold them, so the day needs a new Z (the menu's X page says so)."""
    return 0 if closed is None else changes_after_close(ledger.report_entries(day, day), day, closed)[1]


def changes_after_close(parsed: list[tuple[int, dict[str, Any]]], day: date, closed: int | None) -> tuple[int, int]:
    """(donations of ``day`` committed after its close-out ``closed``, donations the close-out counted that a void
    written after it cancels: refunds made after the Z): what the signed close-out no longer matches. Both ask for
    a new Z. ``parsed`` is :meth:`Ledger.report_entries` of ``day`` (every void is in it)."""
    if closed is None:
        return 0, 0
    # The genesis stays in each part: it names the time zone the day is counted in.
    added = settled_report([(s, o) for s, o in parsed if s > closed or o["type"] == "genesis"], day)["count"]
    counted = settled_report([(s, o) for s, o in parsed if s <= closed], day)["count"]
    still = settled_report([(s, o) for s, o in parsed if s <= closed or o["type"] != "donation"], day)["count"]
    return added, counted - still


def closed_dates(ledger: Ledger) -> dict[date, int]:
    """Business date -> seq of its latest ``close_out`` entry."""
    return _closed((e.seq, e.obj) for e in ledger.entries_of("close_out"))


def _plan(ledger: Ledger, day: date, stop: int | None = None) -> tuple[int | None, dict[str, Any]]:
    """(seq of ``day``'s latest close-out or None, the settled report of ``day``) over entries up to ``stop``."""
    parsed = ledger.report_entries(day, day, stop)
    return _closed(parsed).get(day), settled_report(parsed, day)


def z_report(writer: LedgerWriter, day: date | None = None, *, force: bool = False,
             trigger: str = "staff") -> Entry:
    """Close ``day`` (default: today's business date): append a signed ``close_out`` entry.

    Refuses a second Z for the same date with :class:`AlreadyClosed` unless ``force``.
    ``trigger`` says who asked: ``staff`` (menu), ``timer`` or ``cli``.
    Waits for the writer (call it from a background thread or a CLI, not the render thread).
    """
    ledger = writer.ledger
    day = day or ledger.business_date()
    # The day's entries are read and counted here, on the caller's thread, so donations are not held up
    # behind it on the writer's; only the check-and-append below runs there.
    upto = ledger.size
    planned = _plan(ledger, day, stop=upto)

    def commit(led: Ledger) -> Entry:
        counted_to, plan = upto, planned  # the last entry counted, and what the count gave

        def data_now(_st: Any) -> dict[str, Any]:
            # Called by the append itself, and again if another process (the nightly `kiosk closeout` beside the
            # menu's) appended before this one could: the check and the count are then redone on the ledger as
            # re-read, so a day is never closed twice, nor with a stale count.
            nonlocal counted_to, plan
            if any(e.type in REPORT_KINDS for e in led.iter_entries(start=counted_to + 1)):
                # A gift, void or close-out landed while we counted: count again, here, where nothing can.
                plan = _plan(led, day)
            counted_to = led.size
            previous, rep = plan
            if previous is not None and not force:
                raise AlreadyClosed(day, previous)
            data: dict[str, Any] = {k: rep[k] for k in CLOSE_OUT_KEYS if k != "business_date"}
            data["business_date"] = day.isoformat()
            data["trigger"] = trigger
            if rep["clock_unsynced"]:  # the Z says its day is the unsynced clock's (docs/ledger.md, close_out)
                data["clock_unsynced"] = rep["clock_unsynced"]
            if previous is not None:
                data["supersedes_seq"] = previous
            return data

        entry = led.append("close_out", data_now)
        log.info("close-out %s: %d donations, %d yen (seq=%d, %s)", day, entry.data["count"], entry.data["total_yen"],
                 entry.seq, trigger)
        return entry

    return call(writer, commit)


def open_dates(ledger: Ledger, today: date | None = None, lookback_days: int = 31) -> list[date]:
    """Ended business days (before ``today``) with donations but no close-out: those within ``lookback_days``, and
    any older day of a gift written since the newest close-out of a day older than that.

    What the nightly timer closes: a kiosk switched off before the staff's Z leaves its day open. The second part
    is for a Raspberry Pi, which has no real-time clock: booted offline, it dates its gifts by a clock days or years
    behind (fake-hwclock's last save, or 1970) until NTP corrects it, and those days would otherwise lie outside
    the look-back for ever, in no Z report. Order comes from seq: such gifts are written after every close-out of
    the days before the look-back, which were all written when their own days ended.
    """
    today = today or ledger.business_date()
    oldest = today - timedelta(days=lookback_days)
    # The days are counted in the genesis's time zone, as the reports count them; only the donations' wall times
    # are read (from their index), not their bodies.
    tz = ZoneInfo(ledger.entry(1).data.get("timezone", ledger.timezone))
    with_donations = {business_date(ms, tz) for ms in ledger.donation_times(oldest, today)}
    closed = closed_dates(ledger)
    since = max((seq for d, seq in closed.items() if d < oldest), default=0)
    # Every gift that can be dated before ``oldest`` in any time zone (a superset: each is dated below).
    late = {business_date(ms, tz) for ms in ledger.donation_times_after(since, day_window_ms(oldest, oldest)[1])}
    ended = {d for d in with_donations if oldest <= d < today} | {d for d in late if d < oldest}
    return sorted(ended - closed.keys())


def z_days(ledger: Ledger, today: date | None = None, lookback_days: int = 31) -> list[date]:
    """The days a staff member's Z report offers, the one it closes by default first (docs/menu.md, "Which day
    the Z report closes").

    The default is the newest ended day :func:`open_dates` finds (the one the nightly timer would close): staff
    who close late, just after midnight, close the day that has just ended, not the new empty one, even when a
    gift has already come in after midnight. With no such day, today if it has donations; else the newest day
    with a close-out within ``lookback_days`` (the menu then says it is closed), as the USB export's day is the
    newest one with donations or a close-out; else today. Then, newest first, the other days staff may close
    instead: today when it has donations, and the other ended days still open. An empty today is offered only
    when nothing else is: a signed close-out of nothing would stop the timer from closing that day later."""
    today = today or ledger.business_date()
    open_ = open_dates(ledger, today, lookback_days)
    tz = ZoneInfo(ledger.entry(1).data.get("timezone", ledger.timezone))
    today_gifts = any(business_date(ms, tz) == today for ms in ledger.donation_times(today, today))
    if open_:
        first = open_[-1]
    elif today_gifts:
        first = today
    else:
        oldest = today - timedelta(days=lookback_days)
        first = max((d for d in closed_dates(ledger) if oldest <= d <= today), default=today)
    others = ([today] if today_gifts else []) + sorted(open_, reverse=True)
    return [first, *(d for d in others if d != first)]


def stale_dates(ledger: Ledger, today: date | None = None, lookback_days: int = 31) -> list[date]:
    """Ended business days (within ``lookback_days``) whose newest close-out no longer holds the day: a gift of
    that day written after it (staff closed in the afternoon and the kiosk took more gifts), or a gift it counted
    that a void written after it cancels (a refund after the Z). The nightly timer closes them again, with the
    whole day (docs/menu.md, "A Z report before the day ends")."""
    today = today or ledger.business_date()
    oldest = today - timedelta(days=lookback_days)
    closed = {d: s for d, s in closed_dates(ledger).items() if oldest <= d < today}
    tz = ZoneInfo(ledger.entry(1).data.get("timezone", ledger.timezone))  # the reports' zone, as open_dates
    newest_void = max((e.seq for e in ledger.entries_of("void")), default=0)
    out = []
    for day, seq in sorted(closed.items()):
        # Only a gift of ``day`` written after its close-out, or a void written after it, can make it stale: the
        # gifts are looked for by their wall times alone (no entry is read), and only such a day is counted.
        late = ledger.donation_times_after(seq, day_window_ms(day, day)[1])
        if newest_void <= seq and all(business_date(ms, tz) != day for ms in late):
            continue
        if any(changes_after_close(ledger.report_entries(day, day), day, seq)):
            out.append(day)
    return out


def auto_close(writer: LedgerWriter, lookback_days: int = 31, today: date | None = None) -> list[Entry]:
    """Z-report every day :func:`open_dates` finds (``kiosk closeout`` from the timer), and close again, with a
    superseding close-out of the whole day, every day :func:`stale_dates` finds. Each close-out is the whole
    day up to its own seq, and the newest one of a day is the day's Z: a gift is never counted twice, and a
    gift after an early Z is not left out of every Z.

    A day found open that staff close meanwhile (the menu's Z in the kiosk process, just after midnight as the
    timer runs) has its Z: it is left to theirs, and the other days are still closed."""
    ledger = writer.ledger
    days = {d: False for d in open_dates(ledger, today, lookback_days)}
    days.update({d: True for d in stale_dates(ledger, today, lookback_days)})
    written = []
    for d, again in sorted(days.items()):
        try:
            written.append(z_report(writer, d, force=again, trigger="timer"))
        except AlreadyClosed as exc:  # only a day found open (not forced): closed by someone else since
            log.info("close-out %s: closed meanwhile (seq=%d); left to that close-out", d, exc.seq)
    return written


METHOD_NAMES = {
    "sim": "Simulated terminal",
    "square": "Square Terminal",
    "felica": "IC card reader",
    "terminal": "Payment terminal",
    "suica-terminal": "Transit IC card (terminal)",
}
"""Payment method ids (what the ledger records, ``PaymentTerminal.method``) in words: English msgids, translated
through the ``kiosk`` catalog. The one mapping every staff page that names a method uses (X, Z, the CLI's Z);
the close-out CSV keeps the raw id, which is what machines match on."""

OTHER_METHOD = "Other payment method"
"""A method id this kiosk does not know (a newer terminal's ledger read by an older menu): a plain label,
never the raw id on a staff screen."""


class Catalog(Protocol):
    """What the staff pages need of a gettext catalog (``gettext.NullTranslations`` has both)."""

    def gettext(self, message: str) -> str: ...

    def ngettext(self, singular: str, plural: str, n: int) -> str: ...


def method_label(method: str, tr: Callable[[str], str]) -> str:
    """The payment method ``method`` in the staff's language (``tr``: the menu's gettext)."""
    return tr(METHOD_NAMES.get(method, OTHER_METHOD))


def donations_text(cat: Catalog, count: int) -> str:
    """"1 donation" / "3 donations" / "3 件"."""
    return cat.ngettext("{count} donation", "{count} donations", count).format(count=count)


def summary_lines(rep: dict[str, Any], titles: dict[str, str] | None = None,
                  cat: Catalog | None = None, day_label: Callable[[str], str] | None = None) -> list[str]:
    """Lines for the close-out screen and the CLI. ``rep`` is an X report or a ``close_out`` entry's data.

    With ``cat`` (the menu's catalog) the lines are in the staff's language, one language per line, with
    plurals from the catalog, and the day as ``day_label`` says it (the menu: 「11月21日(金)」); without it (the
    CLI, read in logs and by scripts too) they keep the bilingual form and the ISO day. A day without donations
    has no seq range to show."""
    titles = titles or {}
    day = rep.get("business_date") or rep.get("date")
    if cat is None:
        head = f"{'X (途中集計)' if rep.get('kind') == 'X' else 'Z (日計)'} {day}"
        lines = [head, f"件数 count {rep['count']}   合計 total ¥{rep['total_yen']:,}   points {rep.get('points', 0)}"]
        if rep.get("first_seq") is not None:
            lines.append(f"seq {rep['first_seq']}..{rep['last_seq']}")
        for p in rep["projects"]:
            lines.append(f"  {titles.get(p['id'], p['id'])}  {p['count']}件  ¥{p['total_yen']:,}")
        for m in rep["methods"]:
            # The CLI is read on a terminal and over the phone: both labels, and the raw id machines match on.
            ja, en = method_label(m["method"], gettext_for("ja")), METHOD_NAMES.get(m["method"], OTHER_METHOD)
            lines.append(f"  {ja} / {en} [{m['method']}]  {m['count']}件  ¥{m['total_yen']:,}")
        if rep.get("clock_unsynced"):
            lines.append(f"⚠ 時計未同期の日 clock not synced: {rep['clock_unsynced']}件 "
                         "(日付がずれている可能性 date may be off)")
        return lines
    tr = cat.gettext
    points = rep.get("points", 0)
    # The page's title already says X or Z: the first line names the day, instead of repeating the title.
    lines = [tr("Business day: {day}").format(day=day_label(day) if day_label and day else day),
             tr("{donations}, ¥{total}, {points}").format(
                 donations=donations_text(cat, rep["count"]), total=f"{rep['total_yen']:,}",
                 points=cat.ngettext("{points} point", "{points} points", points).format(points=points))]
    for p in rep["projects"]:
        lines.append("  " + tr("{name}: {donations}, ¥{total}").format(
            name=titles.get(p["id"], p["id"]), donations=donations_text(cat, p["count"]),
            total=f"{p['total_yen']:,}"))
    for m in rep["methods"]:
        lines.append("  " + tr("{name}: {donations}, ¥{total}").format(
            name=method_label(m["method"], tr), donations=donations_text(cat, m["count"]),
            total=f"{m['total_yen']:,}"))
    if rep.get("clock_unsynced"):
        # ※, not ⚠: the menu's font (Noto Sans JP) has no ⚠ glyph.
        n = rep["clock_unsynced"]
        lines.append("※ " + cat.ngettext("Clock not synced on this day ({n} donation): the date may be off",
                                         "Clock not synced on this day ({n} donations): the date may be off",
                                         n).format(n=n))
    return lines


CSV_HEADER = ("business_date", "row", "key", "title", "count", "total_yen", "first_seq", "last_seq", "close_out_seq")


def closeout_csv(rep: dict[str, Any], *, close_out_seq: int | None = None, titles: dict[str, str] | None = None) -> str:
    """The close-out as CSV for the city: one row per project, per payment method, and a total row (and a
    ``clock_unsynced`` row on a day an unsynchronised kiosk clock dated some of its donations).

    UTF-8 with a BOM so Excel on a Japanese PC opens the titles correctly.
    """
    titles = titles or {}
    day = rep.get("business_date") or rep.get("date") or ""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    for p in rep["projects"]:  # a title is what a group editor typed at the portal: never a formula (csvsafe)
        w.writerow((day, "project", cell(p["id"]), cell(titles.get(p["id"], "")), p["count"], p["total_yen"],
                    "", "", ""))
    for m in rep["methods"]:
        w.writerow((day, "method", m["method"], "", m["count"], m["total_yen"], "", "", ""))
    w.writerow((day, "total", "", "", rep["count"], rep["total_yen"], rep["first_seq"] or "", rep["last_seq"] or "",
                close_out_seq or ""))
    if rep.get("clock_unsynced"):  # how many of the day's donations an unsynchronised clock dated
        w.writerow((day, "clock_unsynced", "", "時計未同期の日 clock not synced", rep["clock_unsynced"],
                    "", "", "", ""))
    return "\ufeff" + buf.getvalue()

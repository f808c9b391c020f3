"""Reconciliation per kiosk and business day: the kiosk's Z report, the portal's copy of its ledger and,
where staff imported one, the payment provider's settlement file, side by side; and the month's CSV
for the city's accounting.

Three sources, three questions:

- **Z report vs. the portal's copy.** A ``close_out`` entry is a snapshot of the day's settled
  donations *at its own seq*. The portal recomputes that snapshot from the entries it holds (donations
  of that business date before the close-out, less voids written before it): they must agree, or
  the copy and the kiosk disagree (a real problem, shown as a mismatch).
- **Z report vs. the day as it ended.** Donations after the close-out (the center kept the kiosk on),
  and voids of donations the Z counted, are not errors: they are shown as such, with their seqs, and
  the bridge ``Z + after the close-out − voided after the close-out − held by the portal = portal``.
- **The portal's copy vs. the provider.** Payments are matched by the payment id the kiosk recorded
  (``provider_ref``). A payment the file has and no donation has, a donation of a day the file covers
  that the file lacks, a different amount, a refund on one side only: each is shown on its donation's
  row (or, for a payment only the provider has, its own row). The provider dates a payment by its own
  clock, the kiosk a donation by its own: across midnight (or with a kiosk clock minutes off) the two are
  a day apart. Such a payment is matched on its donation's day, counted there only, and its own date's
  page says so (``provider_elsewhere``), never "only in the provider's file".

The provider file (CSV; the accepted columns are in docs/portal.md, "Reconciliation") is checked whole
before anything is stored, and stored in one transaction.

Business dates come from each donation's wall time in the kiosk's time zone (its genesis entry), the
same basis as the kiosk's own close-out (kiosk/ledger/report.py).
"""

from __future__ import annotations

import calendar
import csv
import io
import json
import logging
import re
import secrets
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, TypedDict
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection, Engine
from starlette.concurrency import run_in_threadpool

from server_sync import catalog, i18n, pools
from server_sync.bodies import parse_body
from server_sync.db import (
    IS_CLOSE_OUT,
    IS_DONATION,
    IS_VOID,
    entries,
    kiosks,
    provider_imports,
    provider_payments,
    writing,
)
from server_sync.i18n import N_
from server_sync.policy import TZ
from server_sync.wire import csvsafe
from server_sync.wire.numbers import decimal

_log = logging.getLogger(__name__)

PROVIDERS = ("square",)
"""Providers whose settlement files can be imported; the ledger's payment ``method`` of that provider."""
PROVIDER_NAMES = {"square": "Square"}
"""Each provider as staff know it (its own name, the same in every language); the id stays in the forms."""
MAX_FILE_BYTES = 5 * 1024 * 1024
TIME_GAP_MS = 10 * 60_000
"""A donation whose kiosk time and portal receive time differ by more than this is marked on the day's page
(offline for a while, or a clock that is wrong)."""
LENT_DAYS = 7
"""A payment on one kiosk's terminal is matched to another kiosk's gift (a terminal lent or swapped) within this many
days of the provider's date (:func:`kiosk_days`)."""
MAX_ROWS = 100_000
MAX_ERRORS = 20
Msg = tuple[str | tuple[str, str], dict[str, Any]]
"""A message for a staff page and its values, worded in the staff member's language where it is shown (:func:`said`);
a count's message is its two English forms (:func:`ntext`)."""


def ntext(singular: str, plural: str, n: int, **values: Any) -> Msg:
    """A count's message ("1 donation", "2 donations"; Japanese has one form), with ``%(count)s`` (``n``) and
    ``values``: i18n.ntext's form for a message worded later, in the language of the page that shows it."""
    return (singular, plural), {"count": n, **values}


def said(msg: Msg, lang: str) -> str:
    """``msg`` in ``lang``: the plural form for its count, or the message (the staff pages' ``staff_``)."""
    from server_sync import pages  # as install() does: the pure part stays light

    text, values = msg
    if isinstance(text, tuple):
        return i18n.ntext(text[0], text[1], values["count"], lang, **values)
    return pages.staff_text(text, lang, **values)


# --- the provider file (pure) ----------------------------------------------------------------------
# Header names, matched case-insensitively; the first present of each list is used. Square's Dashboard
# "Transactions" export names them like the first entries; the snake_case ones are for a file a clerk
# makes by hand from another provider's statement.
COLUMNS: dict[str, tuple[str, ...]] = {
    "payment_id": ("payment id", "payment_id"),
    "date": ("date", "business_date"),
    "time": ("time",),
    "amount": ("total collected", "gross sales", "amount_yen", "amount"),
    "refunds": ("partial refunds", "refunds", "refunded_yen"),
    "event": ("event type", "event_type"),
    "device": ("device name", "device nickname", "kiosk_id", "device"),
}
REQUIRED = ("payment_id", "date", "amount")
DISPLAY = {"payment_id": "Payment ID", "date": "Date", "amount": "Total Collected"}
_YEN = re.compile(r"^(\d{1,15})(?:\.0+)?$")  # bounded: int() of 5,000 digits is a ValueError


@dataclass
class ProviderRow:
    payment_id: str
    business_date: date
    time_ms: int | None
    amount_yen: int
    refunded_yen: int = 0
    device: str = ""


@dataclass
class ParsedFile:
    rows: list[ProviderRow] = field(default_factory=list)
    errors: list[Msg] = field(default_factory=list)

    @property
    def first_date(self) -> date:
        return min(r.business_date for r in self.rows)

    @property
    def last_date(self) -> date:
        return max(r.business_date for r in self.rows)


def _decode(raw: bytes) -> str | None:
    """UTF-8 (with or without the BOM Excel writes), else Shift_JIS as Excel on a Japanese PC saves CSV."""
    for enc in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return None


def parse_yen(text: str) -> int | None:
    """'¥1,000', '1000', 'JP¥1,000', '1,000円', '-¥500', '¥-500', '(¥500)', '1000.00' -> yen; None if not an amount."""
    t = text.strip()
    neg = t.startswith("(") and t.endswith(")")
    t = t.strip("()")
    for junk in ("JPY", "JP", "¥", "￥", "円", ",", " "):
        t = t.replace(junk, "")
    if t[:1] in ("-", "−"):
        neg, t = True, t[1:]
    m = _YEN.match(t)
    if not m:
        return None
    return -int(m.group(1)) if neg else int(m.group(1))


def parse_date(text: str) -> date | None:
    t = text.strip().replace("/", "-").replace(".", "-")
    parts = t.split("-")
    if len(parts) != 3 or not all(decimal(p, 0, 9999, leading_zeros=True) is not None for p in parts):
        return None
    try:
        if len(parts[0]) == 4:
            return date(int(parts[0]), int(parts[1]), int(parts[2]))
        if len(parts[2]) == 4:  # 12/01/2026, as a US-English export writes it
            return date(int(parts[2]), int(parts[0]), int(parts[1]))
    except ValueError:
        return None
    return None


def parse_time(text: str) -> tuple[int, int, int] | None:
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not all(decimal(p, 0, 99, leading_zeros=True) is not None for p in parts):
        return None  # "²" passes str.isdigit() and then fails int(): ASCII digits only
    h, m, s = (int(p) for p in (parts + ["0"])[:3])
    return (h, m, s) if h < 24 and m < 60 and s < 60 else None


def parse_provider_file(raw: bytes) -> ParsedFile:
    """Every row of a settlement file, or every problem found (then no row): all or nothing."""
    out = ParsedFile()
    if len(raw) > MAX_FILE_BYTES:
        out.errors.append((N_("The file is too large: at most %(mb)s MB."), {"mb": MAX_FILE_BYTES // (1024 * 1024)}))
        return out
    text = _decode(raw)
    if text is None:
        out.errors.append((N_("This is not a text (CSV) file: save it from the spreadsheet as CSV (UTF-8)."), {}))
        return out
    try:
        table = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        # The reader's own words are English and technical ("field larger than field limit (131072)", what a quote
        # left open makes of a large file): the log keeps them, the staff member reads what to do.
        _log.info("provider file refused by the CSV reader: %s", exc)
        out.errors.append((N_("The portal could not read this file as CSV. Often a quotation mark (\") is not "
                              "closed, which makes the rest of the file one cell. Open the file in the spreadsheet, "
                              "save it again as CSV (UTF-8) and import that."), {}))
        return out
    table = [r for r in table if any(c.strip() for c in r)]
    if not table:
        out.errors.append((N_("The file is empty."), {}))
        return out
    header = [h.strip().lower() for h in table[0]]
    where: dict[str, int] = {}
    for key, names in COLUMNS.items():
        for name in names:
            if name in header:
                where[key] = header.index(name)
                break
    missing = [key for key in REQUIRED if key not in where]
    if missing:
        need = ", ".join(f"'{DISPLAY[k]}'" for k in missing)
        out.errors.append((N_("Columns missing: %(missing)s. The first line has: %(found)s."),
                           {"missing": need, "found": ", ".join(h for h in table[0] if h.strip())[:300] or "–"}))
        return out
    if len(table) - 1 > MAX_ROWS:
        out.errors.append((N_("Too many rows: at most %(n)s."), {"n": f"{MAX_ROWS:,}"}))
        return out
    if len(table) == 1:
        out.errors.append((N_("The file has a header line but no payments."), {}))
        return out

    def cell(row: list[str], key: str) -> str:
        i = where.get(key)
        return row[i].strip() if i is not None and i < len(row) else ""

    payments: dict[str, ProviderRow] = {}
    refunds: list[tuple[int, str, int]] = []
    for n, row in enumerate(table[1:], start=2):
        errs: list[Msg] = []
        pid = cell(row, "payment_id")
        if not pid or len(pid) > 100:
            errs.append((N_("line %(line)s: no payment ID."), {"line": n}))
        day = parse_date(cell(row, "date"))
        if day is None:
            errs.append((N_("line %(line)s: '%(value)s' is not a date (e.g. 2026-12-01)."),
                         {"line": n, "value": cell(row, "date")[:40]}))
        amount = parse_yen(cell(row, "amount"))
        if amount is None:
            errs.append((N_("line %(line)s: '%(value)s' is not an amount in yen."),
                         {"line": n, "value": cell(row, "amount")[:40]}))
        refunded = parse_yen(cell(row, "refunds") or "0")
        if refunded is None:
            errs.append((N_("line %(line)s: '%(value)s' is not an amount in yen."),
                         {"line": n, "value": cell(row, "refunds")[:40]}))
        hms = None
        if cell(row, "time"):
            hms = parse_time(cell(row, "time"))
            if hms is None:
                errs.append((N_("line %(line)s: '%(value)s' is not a time (e.g. 14:05:09)."),
                             {"line": n, "value": cell(row, "time")[:40]}))
        event = cell(row, "event").lower()
        if event not in ("", "payment", "refund", "支払い", "返金"):
            errs.append((N_("line %(line)s: the event type '%(value)s' is neither Payment nor Refund."),
                         {"line": n, "value": event[:40]}))
        if errs:
            out.errors.extend(errs)
            continue
        assert day is not None and amount is not None and refunded is not None
        if event in ("refund", "返金"):
            refunds.append((n, pid, abs(amount)))
            continue
        if amount < 0:
            out.errors.append((N_("line %(line)s: a payment of a negative amount (a refund needs the event type "
                                  "Refund)."), {"line": n}))
            continue
        if pid in payments:
            out.errors.append((N_("line %(line)s: payment %(id)s is listed twice."), {"line": n, "id": pid}))
            continue
        t_ms = None
        if hms is not None:
            t_ms = int(datetime(day.year, day.month, day.day, *hms, tzinfo=TZ).timestamp() * 1000)
        payments[pid] = ProviderRow(pid, day, t_ms, amount, abs(refunded), cell(row, "device")[:100])
    for n, pid, yen in refunds:
        if pid not in payments:
            out.errors.append((N_("line %(line)s: a refund of payment %(id)s, which is not in this file."),
                               {"line": n, "id": pid}))
        else:
            payments[pid].refunded_yen += yen
    for p in payments.values():
        if p.refunded_yen > p.amount_yen:
            out.errors.append((N_("Payment %(id)s: refunds (¥%(refunded)s) exceed the payment (¥%(amount)s)."),
                               {"id": p.payment_id, "refunded": f"{p.refunded_yen:,}", "amount": f"{p.amount_yen:,}"}))
    if out.errors:
        return out
    out.rows = list(payments.values())
    return out


def import_provider_file(engine: Engine, provider: str, filename: str, raw: bytes, by: str | None
                         ) -> tuple[dict[str, Any] | None, list[Msg]]:
    """Check the whole file, then store it in one transaction; (the import's summary, []) or (None, errors)."""
    if provider not in PROVIDERS:
        return None, [(N_("Choose the payment provider."), {})]
    parsed = parse_provider_file(raw)
    if parsed.errors:
        return None, parsed.errors
    import_id = secrets.token_hex(8)
    summary = {"id": import_id, "provider": provider, "filename": filename[:200] or "?", "rows": len(parsed.rows),
               "first_date": parsed.first_date, "last_date": parsed.last_date, "imported_by": by,
               "imported_ms": time.time_ns() // 1_000_000}
    with writing(engine) as conn:
        ids = [r.payment_id for r in parsed.rows]
        for i in range(0, len(ids), 500):  # a later import of the same payment replaces it
            conn.execute(provider_payments.delete().where(provider_payments.c.provider == provider,
                                                          provider_payments.c.payment_id.in_(ids[i:i + 500])))
        conn.execute(provider_imports.insert().values(**summary))
        conn.execute(provider_payments.insert(), [
            {"provider": provider, "payment_id": r.payment_id, "import_id": import_id, "business_date": r.business_date,
             "time_ms": r.time_ms, "amount_yen": r.amount_yen, "refunded_yen": r.refunded_yen, "device": r.device}
            for r in parsed.rows])
    return summary, []


def imports(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(provider_imports).order_by(
            provider_imports.c.imported_ms.desc()).limit(limit)).mappings()]


# --- one kiosk-day (pure) --------------------------------------------------------------------------
@dataclass
class Donation:
    seq: int
    wall_ms: int
    project: str
    amount_yen: int
    method: str
    provider_ref: str
    held: bool = False
    void_seq: int | None = None
    received_ms: int | None = None  # the portal's own clock when the entry arrived
    clock_synced: bool = True  # the kiosk's clock was NTP-synced when it wrote the entry
    points: int = 0


@dataclass
class CloseOut:
    seq: int
    data: dict[str, Any]
    clock_synced: bool = True


def _sum(ds: Iterable[Donation]) -> dict[str, Any]:
    ds = list(ds)
    return {"count": len(ds), "total_yen": sum(d.amount_yen for d in ds), "seqs": [d.seq for d in ds]}


def _by(ds: Iterable[Donation], key: str) -> list[dict[str, Any]]:
    out: dict[str, dict[str, int]] = {}
    for d in ds:
        b = out.setdefault(getattr(d, key), {"count": 0, "total_yen": 0})
        b["count"] += 1
        b["total_yen"] += d.amount_yen
    name = "id" if key == "project" else "method"
    return [{name: k, **v} for k, v in sorted(out.items())]


ZState = Literal["open", "in_z", "after_close"]
"""Where a donation stands against the day's last Z report: no Z yet, counted by it, or written after it."""
VoidState = Literal["before_close", "after_close", "voided"]
"""Where a donation's void stands against that Z: before it, after it (the Z still counts the gift), or no Z."""


class DayRow(TypedDict):
    """One donation of a kiosk-day as its page and :func:`reconcile_day`'s provider matching see it."""

    seq: int
    wall_ms: int
    received_ms: int | None
    clock_synced: bool
    time_gap: bool
    project: str
    amount_yen: int
    method: str
    provider_ref: str
    state: ZState
    void_seq: int | None
    void_state: VoidState | None
    held: bool
    provider: dict[str, Any] | None  # None, {"status": "missing"}, or the payment with its "status"


def reconcile_day(kiosk_id: str, day: date, donations: list[Donation], closeouts: list[CloseOut],
                  payments: dict[tuple[str, str], dict[str, Any]], device_payments: list[dict[str, Any]],
                  covered: set[str], near: Iterable[tuple[Donation, date]] = (),
                  far: dict[tuple[str, str], list[tuple[str, int, date]]] | None = None,
                  kiosk_ids: Collection[str] = (),
                  owners: dict[tuple[str, str], tuple[str, int, date] | None] | None = None) -> dict[str, Any]:
    """The reconciliation of one kiosk's business day.

    ``donations``: that day's donations (held ones too) with their void's seq; ``closeouts``: that day's
    ``close_out`` entries in seq order; ``payments``: provider payments by (provider, payment id) that may
    match these donations; ``device_payments``: provider payments of that day whose device is this kiosk;
    ``covered``: providers whose imported files cover this day; ``near``: this kiosk's donations of the day
    before and the day after, each with its day. A payment one of those names was matched on that day (the
    provider's date and the kiosk's are a midnight apart): it is no "only in the provider's file" here but
    ``provider_elsewhere``, and a donation here naming it after them is its second record (``twice``). ``far``:
    the donations of any day that name a payment the days read could not explain, by (method, payment id), as
    :func:`_naming` finds them: the first of this kiosk that names a payment counts it, however far its day is
    (also a gift whose own clock dated it days away, before this day's gift that names the same payment); a payment
    on this kiosk's terminal that only another kiosk's gift names (a terminal lent or swapped) is that gift's, and
    ``provider_elsewhere`` here. ``kiosk_ids``: every kiosk, so that a payment on another kiosk's terminal
    matched here says so (``other_kiosk``). ``owners``: for each payment on another kiosk's terminal that a donation
    here names, the one gift of the fleet that counts it (:func:`_owner`), or None when no gift may (this kiosk's are
    farther than LENT_DAYS from the payment's date: ``far_terminal``, a difference); a donation here that is not
    that gift is its second record (``twice``, with the other gift's kiosk when it is another's).
    """
    far = far or {}
    owners = owners or {}
    donations = sorted(donations, key=lambda d: d.seq)
    checks = []
    for co in closeouts:
        basis = [d for d in donations if d.seq < co.seq and (d.void_seq is None or d.void_seq > co.seq)]
        want = {"count": len(basis), "total_yen": sum(d.amount_yen for d in basis), "projects": _by(basis, "project"),
                "methods": _by(basis, "method"), "points": sum(d.points for d in basis),
                "first_seq": basis[0].seq if basis else None, "last_seq": basis[-1].seq if basis else None}
        got = {"count": co.data.get("count"), "total_yen": co.data.get("total_yen"),
               "projects": sorted(co.data.get("projects") or [], key=lambda p: str(p.get("id"))),
               "methods": sorted(co.data.get("methods") or [], key=lambda m: str(m.get("method")))}
        diffs: list[Msg] = []
        if got["count"] != want["count"]:
            diffs.append((N_("count: kiosk %(kiosk)s, portal %(portal)s"),
                          {"kiosk": got["count"], "portal": want["count"]}))
        if got["total_yen"] != want["total_yen"]:
            diffs.append((N_("total: kiosk %(kiosk)s, portal %(portal)s"),
                          {"kiosk": f"¥{got['total_yen'] or 0:,}", "portal": f"¥{want['total_yen']:,}"}))
        if got["projects"] != want["projects"]:
            diffs.append((N_("per-project totals differ"), {}))
        # The accountant books by payment method from the Z: its methods must be the entries' too. The Z of
        # every kiosk version carries them; points and the seq range are checked when the Z has them.
        if got["methods"] != want["methods"]:
            diffs.append((N_("per-method totals differ"), {}))
        if "points" in co.data and co.data["points"] != want["points"]:
            diffs.append((N_("points: kiosk %(kiosk)s, portal %(portal)s"),
                          {"kiosk": co.data["points"], "portal": want["points"]}))
        if ("first_seq" in co.data or "last_seq" in co.data) and \
                (co.data.get("first_seq"), co.data.get("last_seq")) != (want["first_seq"], want["last_seq"]):
            diffs.append((N_("seq range: kiosk %(kiosk)s, portal %(portal)s"),
                          {"kiosk": f"{co.data.get('first_seq')}..{co.data.get('last_seq')}",
                           "portal": f"{want['first_seq']}..{want['last_seq']}"}))
        checks.append({"seq": co.seq, "count": got["count"], "total_yen": got["total_yen"], "projects": got["projects"],
                       "methods": got["methods"], "trigger": co.data.get("trigger", ""),
                       "supersedes_seq": co.data.get("supersedes_seq"), "basis": want, "match": not diffs,
                       "differences": diffs})
    z = checks[-1] if checks else None
    zseq = z["seq"] if z else None
    rows: list[DayRow] = []
    for d in donations:
        state: ZState = "open" if zseq is None else ("in_z" if d.seq < zseq else "after_close")
        void_state: VoidState | None = None
        if d.void_seq is not None:
            void_state = "before_close" if zseq is not None and d.seq < zseq and d.void_seq < zseq else (
                "after_close" if zseq is not None and d.seq < zseq else "voided")
        rows.append({"seq": d.seq, "wall_ms": d.wall_ms, "received_ms": d.received_ms, "clock_synced": d.clock_synced,
                     "time_gap": d.received_ms is not None and abs(d.received_ms - d.wall_ms) > TIME_GAP_MS,
                     "project": d.project, "amount_yen": d.amount_yen,
                     "method": d.method, "provider_ref": d.provider_ref, "state": state, "void_seq": d.void_seq,
                     "void_state": void_state, "held": d.held, "provider": None})
    settled = [d for d in donations if d.void_seq is None and not d.held]
    # Gifts after the close-out, less those voided since: what the Z lacks (a voided one is in neither side).
    after = [d for d in donations if zseq is not None and d.seq > zseq and d.void_seq is None]
    voided_after = [d for d in donations if zseq is not None and d.seq < zseq and d.void_seq is not None
                    and d.void_seq > zseq]
    # --- the provider ------------------------------------------------------------------------------
    diffs_provider = 0
    seen: dict[tuple[str, str], int] = {}  # each matched payment: the seq of the first donation that names it
    other: dict[tuple[str, str], tuple[int, date]] = {}  # the same, of the day before or after
    for d, when in sorted(near, key=lambda x: x[0].seq):
        if d.provider_ref:
            other.setdefault((d.method, d.provider_ref), (d.seq, when))
    for r in rows:
        key = (r["method"], r["provider_ref"])
        p = payments.get(key)
        if p is None:
            if r["method"] in covered and not r["held"]:
                r["provider"] = {"status": "missing"}
                diffs_provider += 1
            continue
        lent = p["device"] if p["device"] != kiosk_id and p["device"] in kiosk_ids else ""
        if lent:
            # A payment on another kiosk's terminal: counted once in the whole fleet, with the gift :func:`_owner`
            # chose (whether this day is read alone or in its month); every other gift naming it is a difference.
            won = owners.get(key)
            if won is None:
                r["provider"] = {"status": "far_terminal", "payment_id": p["payment_id"], "kiosk": lent,
                                 "business_date": p["business_date"], "days": LENT_DAYS}
                diffs_provider += r["void_seq"] is None and not r["held"]
                continue
            if won[:2] != (kiosk_id, r["seq"]):
                r["provider"] = {"status": "twice", "seq": won[1], "payment_id": p["payment_id"],
                                 **({"day": won[2]} if won[2] != day else {}),
                                 **({"kiosk": won[0]} if won[0] != kiosk_id else {})}
                diffs_provider += r["void_seq"] is None and not r["held"]
                continue
        # The first donation of this kiosk that names the payment, of the day beside (near) or, when the provider
        # dates the payment two or more days away (so it was looked up in the whole ledger, the same whether this
        # day is read alone or in its month), of any other day (far).
        away = [(s, w) for k, s, w in far.get(key, ()) if k == kiosk_id and w != day]
        o = min([x for x in [other.get(key), *away] if x is not None and x[0] < r["seq"]], default=None)
        first = ({"seq": seen[key]} if key in seen else {"seq": o[0], "day": o[1]} if o is not None else None)
        if first is not None and not lent:
            # One payment recorded for a second donation (a terminal that answered with its previous payment, also
            # after midnight with the last gift's of the day before): the provider collected it once. Counted once,
            # with the first donation; a difference while the ledger still counts both.
            r["provider"] = {"status": "twice", **first, "payment_id": p["payment_id"]}
            diffs_provider += r["void_seq"] is None and not r["held"]
            continue
        seen[key] = r["seq"]
        status = "ok"
        if p["amount_yen"] != r["amount_yen"]:
            status = "amount"
        elif p["refunded_yen"] and r["void_seq"] is None:
            status = "refund_not_voided"
        elif not p["refunded_yen"] and r["void_seq"] is not None:
            status = "voided_not_refunded"
        elif r["void_seq"] is not None and p["refunded_yen"] < p["amount_yen"]:
            status = "refund_partial"  # the ledger gave the whole gift back, the provider only part of it
        # Square names the terminal that took it: another kiosk's (lent for the day, or swapped), said beside it.
        r["provider"] = {"status": status, **p, "other_kiosk": lent}
        diffs_provider += status != "ok"
    matched_refs = {r["provider_ref"] for r in rows}
    only: list[dict[str, Any]] = []
    elsewhere: list[dict[str, Any]] = []  # dated this day by the provider, matched to a donation of a day beside it
    for p in device_payments:
        if p["payment_id"] in matched_refs or (p["provider"], p["payment_id"]) in seen:
            continue
        key = (p["provider"], p["payment_id"])
        o = other.get(key)
        if o is not None:
            elsewhere.append({**p, "kiosk": kiosk_id, "seq": o[0], "day": o[1], "before": o[1] < day, "far": False})
            continue
        # Its donation is two or more days away: the first of this kiosk that names it (the one that counts it); or no
        # donation of this kiosk names it but another kiosk's does (this terminal was lent to it, or swapped): that
        # one's. A payment no donation of any kiosk names, on any day, stays "only in the provider's file".
        named_by = far.get(key, [])
        k_s_w = next((x for x in named_by if x[0] == kiosk_id), named_by[0] if named_by else None)
        if k_s_w is None:
            only.append(p)
        else:
            elsewhere.append({**p, "kiosk": k_s_w[0], "seq": k_s_w[1], "day": k_s_w[2], "before": k_s_w[2] < day,
                              "far": True})
    diffs_provider += len(only)
    mine = [p for p in (r["provider"] for r in rows) if p and "amount_yen" in p] + only
    provider: dict[str, Any] | None = None
    # A second record of a payment counted on another day is a difference also on a day no imported file covers.
    twice = {r["method"] for r in rows if r["provider"] and r["provider"]["status"] in ("twice", "far_terminal")
             and r["void_seq"] is None and not r["held"]}
    if covered or mine or twice:
        provider = {"providers": sorted(PROVIDER_NAMES.get(n, n) for n in covered | twice |
                                        {q["provider"] for q in mine}),
                    "count": len(mine),
                    "total_yen": sum(p["amount_yen"] for p in mine),
                    "refunded_yen": sum(p["refunded_yen"] for p in mine),
                    "net_yen": sum(p["amount_yen"] - p["refunded_yen"] for p in mine),
                    "ledger_count": sum(1 for d in settled if d.method in covered),
                    "ledger_yen": sum(d.amount_yen for d in settled if d.method in covered),
                    "differences": diffs_provider, "only": only}
    held = [d for d in donations if d.held and d.void_seq is None]
    portal = {"count": len(settled), "total_yen": sum(d.amount_yen for d in settled),
              "projects": _by(settled, "project"), "methods": _by(settled, "method")}
    problems: list[Msg] = []
    notes: list[Msg] = []
    if any(not c["match"] for c in checks):
        problems.append((N_("The Z report and the portal's copy of the ledger disagree."), {}))
    if provider and provider["differences"]:
        problems.append(ntext("%(count)s difference with the provider's file.",
                              "%(count)s differences with the provider's file.", provider["differences"]))
    if after:
        notes.append(ntext("%(count)s donation, %(yen)s, after the close-out: not in the Z report.",
                           "%(count)s donations, %(yen)s, after the close-out: not in the Z report.",
                           len(after), yen=f"¥{sum(d.amount_yen for d in after):,}"))
    if voided_after:
        notes.append(ntext("%(count)s donation, %(yen)s, voided after the close-out: still in the Z report.",
                           "%(count)s donations, %(yen)s, voided after the close-out: still in the Z report.",
                           len(voided_after), yen=f"¥{sum(d.amount_yen for d in voided_after):,}"))
    if held:
        notes.append(ntext("%(count)s donation held by the portal (not counted).",
                           "%(count)s donations held by the portal (not counted).", len(held)))
    if zseq is None and donations:
        notes.append((N_("Not closed yet: no Z report for this day."), {}))
    # A day whose entries the kiosk dated with an unsynced clock (docs/sync.md, "Clocks"): its business
    # date is the kiosk's own reading, which may be off by days. The Z report says so too (clock_unsynced).
    unsynced = sum(1 for d in donations if not d.clock_synced) + sum(1 for c in closeouts if not c.clock_synced)
    clock_unsynced = max(unsynced, max((int(c.data.get("clock_unsynced") or 0) for c in closeouts), default=0))
    return {
        "kiosk_id": kiosk_id, "business_date": day.isoformat(), "closeouts": checks, "z": z, "portal": portal,
        "after_close": _sum(after),
        "voided": _sum(d for d in donations if d.void_seq is not None),
        "voided_after_close": _sum(voided_after), "held": _sum(held), "provider": provider, "rows": rows,
        "provider_only": only, "provider_elsewhere": elsewhere, "elsewhere_far": any(p["far"] for p in elsewhere),
        "elsewhere_kiosk": any(p["kiosk"] != kiosk_id for p in elsewhere),
        "elsewhere_yen": sum(p["amount_yen"] - p["refunded_yen"] for p in elsewhere),
        "problems": problems, "notes": notes, "ok": not problems,
        "clock_unsynced": clock_unsynced, "time_gaps": sum(1 for r in rows if r["time_gap"]),
        "settled": not problems and not notes,
    }


# --- reading the database --------------------------------------------------------------------------
def _tz(conn: Connection, kiosk_id: str) -> ZoneInfo:
    g = conn.execute(select(entries.c.body).where(entries.c.kiosk_id == kiosk_id, entries.c.seq == 1)).scalar()
    try:
        name = parse_body(bytes(g))["data"].get("timezone") if g else None
        return ZoneInfo(name) if name else TZ
    except Exception:  # noqa: BLE001 - an unknown zone name in a genesis: the city's
        return TZ


def _ms(d: date, tz: ZoneInfo) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp() * 1000)


def _load(conn: Connection, kiosk_id: str, first: date, last: date) -> dict[date, dict[str, Any]]:
    """Donations and close-outs of ``first..last`` (business dates) of one kiosk, by day.

    Every read goes through a partial index of its own kind of entry (server_sync/db.py ``DONATIONS_BY_WALL``,
    ``VOIDS``, ``CLOSE_OUTS``), so a month costs the same after years of history; bench/reconcile.py."""
    tz = _tz(conn, kiosk_id)
    lo, hi = _ms(first, tz), _ms(last + timedelta(days=1), tz)
    days: dict[date, dict[str, Any]] = {}
    found = sorted(conn.execute(select(entries.c.seq, entries.c.wall_ms, entries.c.body, entries.c.quarantine,
                                       entries.c.received_ms, entries.c.clock_synced).where(
        entries.c.kiosk_id == kiosk_id, IS_DONATION, entries.c.wall_ms >= lo, entries.c.wall_ms < hi)).all(),
        key=lambda r: r[0])  # by seq, here: an ORDER BY can make SQLite walk the kiosk's key instead
    # A void comes after its donation: only the voids of these donations, by the donation's seq.
    voids = dict(conn.execute(select(entries.c.ref_seq, entries.c.seq).where(
        entries.c.kiosk_id == kiosk_id, IS_VOID, entries.c.ref_seq >= found[0][0], entries.c.ref_seq <= found[-1][0],
        entries.c.quarantine.is_(None))).all()) if found else {}
    for seq, wall, body, quarantine, received, synced in found:
        data = parse_body(bytes(body))["data"]
        d = datetime.fromtimestamp(wall / 1000, tz).date()
        days.setdefault(d, {"donations": [], "closeouts": []})["donations"].append(Donation(
            seq, wall, str(data.get("project")), int(data.get("amount_yen", 0)), str(data.get("method", "")),
            str(data.get("provider_ref") or ""), quarantine is not None, voids.get(seq), received, bool(synced),
            int(data.get("points", 0))))
    for seq, body, synced, closed in conn.execute(select(
            entries.c.seq, entries.c.body, entries.c.clock_synced, entries.c.business_date).where(
            entries.c.kiosk_id == kiosk_id, IS_CLOSE_OUT, entries.c.business_date >= first.isoformat(),
            entries.c.business_date <= last.isoformat()).order_by(entries.c.seq)):
        day = days.setdefault(date.fromisoformat(closed), {"donations": [], "closeouts": []})
        day["closeouts"].append(CloseOut(seq, parse_body(bytes(body))["data"], bool(synced)))
    return days


def _provider(conn: Connection, first: date, last: date, refs: set[str]
              ) -> tuple[dict[tuple[str, str], dict[str, Any]], list[dict[str, Any]], list[tuple[str, date, date]]]:
    cols = [provider_payments.c[c] for c in ("provider", "payment_id", "business_date", "time_ms", "amount_yen",
                                             "refunded_yen", "device")]
    found = {(r["provider"], r["payment_id"]): dict(r) for r in conn.execute(select(*cols).where(
        provider_payments.c.business_date >= first - timedelta(days=1),
        provider_payments.c.business_date <= last + timedelta(days=1))).mappings()}
    ids = sorted(refs)
    for i in range(0, len(ids), 500):  # a payment the provider dated on another day still matches its donation
        for r in conn.execute(select(*cols).where(provider_payments.c.payment_id.in_(ids[i:i + 500]))).mappings():
            found[(r["provider"], r["payment_id"])] = dict(r)
    ranges = [(p, a, b) for p, a, b in conn.execute(select(
        provider_imports.c.provider, provider_imports.c.first_date, provider_imports.c.last_date).where(
        provider_imports.c.first_date <= last, provider_imports.c.last_date >= first))]
    return found, list(found.values()), ranges


def _naming(conn: Connection, wanted: dict[str | None, set[str]], within: tuple[list[str], int, int] | None = None
            ) -> dict[tuple[str, str], list[tuple[str, int, date]]]:
    """The donations whose payment (``provider_ref``) is one of ``wanted[kiosk]``, of that kiosk (of every kiosk for
    the key ``None``), any day: (method, payment id) -> [(kiosk, seq, business date)], by kiosk and seq.

    For the few payments the days read cannot explain (a payment the provider dates two or more days from its
    donation: a kiosk offline for days, a kiosk clock that was wrong, a payment settled by a later lookup), so
    the id matches its donation whatever the distance. The payment id is inside the entry's body (canonical JSON,
    as the kiosk wrote it), so the body is searched for ``"provider_ref":"<id>"`` and each hit is checked on
    its parsed data. SQLite's LIKE never matches a BLOB, so there it is ``instr``; PostgreSQL's bytea LIKE (whose
    ``_`` and ``%`` may find more, never less). A kiosk's search reads only its donations, through their partial
    index (about 20 ms for a kiosk's year of 2,000 gifts); every kiosk's, only for a payment whose device names
    no kiosk. ``within``: (these kiosks, wall times from, to): only their gifts of those times, through
    ``DONATIONS_BY_WALL`` (a payment on a terminal lent to another kiosk)."""
    out: dict[tuple[str, str], set[tuple[str, int, date]]] = {}
    tzs: dict[str, ZoneInfo] = {}
    for kiosk_id, pids in wanted.items():
        ids = sorted(pids)
        for i in range(0, len(ids), 50):
            needles = [b'"provider_ref":' + json.dumps(pid, ensure_ascii=False).encode() for pid in ids[i:i + 50]]
            hits = [func.instr(entries.c.body, n) > 0 for n in needles] if conn.dialect.name == "sqlite" else \
                [entries.c.body.contains(n) for n in needles]
            q = select(entries.c.kiosk_id, entries.c.seq, entries.c.wall_ms, entries.c.body).where(IS_DONATION,
                                                                                                   or_(*hits))
            if kiosk_id is not None:
                q = q.where(entries.c.kiosk_id == kiosk_id)
            if within is not None:
                q = q.where(entries.c.kiosk_id.in_(within[0]), entries.c.wall_ms >= within[1],
                            entries.c.wall_ms < within[2])
            for kid, seq, wall, body in conn.execute(q):
                data = parse_body(bytes(body))["data"]
                ref = str(data.get("provider_ref") or "")
                if ref not in pids:
                    continue
                tz = tzs[kid] if kid in tzs else tzs.setdefault(kid, _tz(conn, kid))
                out.setdefault((str(data.get("method", "")), ref), set()).add(
                    (kid, seq, datetime.fromtimestamp(wall / 1000, tz).date()))
    return {key: sorted(v) for key, v in out.items()}


def _misdated(conn: Connection, kiosk_id: str, first: date, last: date, seqs: list[int]) -> list[tuple[str, str]]:
    """(method, payment id) of this kiosk's donations dated outside ``first..last`` whose seq lies among the seqs of
    the donations dated in it (``seqs``), or just before them: gifts a clock wrong for them alone dated days away.

    Such a gift may name the payment a gift of these days names too (the terminal answered the next gift with the
    previous payment), and being first it counts it, wherever its date is (:func:`reconcile_day`): so its payment is
    looked up like a far one. One read of the kiosk's entries by its key, from the seq of the donation dated last
    before ``first`` (through ``DONATIONS_BY_WALL``) to the last of ``seqs``: about the entries of the days read, not
    the kiosk's history. A gift both far in seq and misdated is not found here (docs/portal.md). ``seqs``: sorted."""
    tz = _tz(conn, kiosk_id)
    lo, hi = _ms(first, tz), _ms(last + timedelta(days=1), tz)
    prev = conn.execute(select(entries.c.seq).where(entries.c.kiosk_id == kiosk_id, IS_DONATION, entries.c.wall_ms < lo
                                                    ).order_by(entries.c.wall_ms.desc()).limit(1)).scalar()
    out = []
    for body, in conn.execute(select(entries.c.body).where(  # bounds known when planned: PostgreSQL reads the key too
            entries.c.kiosk_id == kiosk_id, IS_DONATION, entries.c.seq >= min(seqs[0], prev or seqs[0]),
            entries.c.seq <= seqs[-1],
            # "+ 0": not through DONATIONS_BY_WALL, whose ranges outside the days are the kiosk's whole history
            or_(entries.c.wall_ms + 0 < lo, entries.c.wall_ms + 0 >= hi))):
        data = parse_body(bytes(body))["data"]
        if data.get("provider_ref"):
            out.append((str(data.get("method", "")), str(data["provider_ref"])))
    return out


def _owner(named_by: Iterable[tuple[str, int, date]], device: str) -> tuple[str, int, date] | None:
    """The one gift that counts a payment taken on ``device``'s terminal (a kiosk), of the gifts that name it
    (``named_by``: the device kiosk's of any day, every other kiosk's of LENT_DAYS days around the payment's date):
    the device kiosk's first by seq; else, the terminal lent or swapped, the first by (kiosk id, seq). The same
    rule however the days are read; every other gift naming it is its second record (``twice``)."""
    xs = sorted(named_by)
    return next((x for x in xs if x[0] == device), xs[0] if xs else None)


def kiosk_days(engine: Engine, first: date, last: date, kiosk_id: str | None = None) -> list[dict[str, Any]]:
    """Every (kiosk, business day) in ``first..last`` with a donation or a close-out, reconciled; newest first.

    Also each day's provider payments that match no kiosk (no donation has their id and their device
    names no kiosk), under the kiosk id ``""``.

    The day before ``first`` and the day after ``last`` are read too (in the same query), so that every day
    is matched against its neighbours alike whether it is seen alone or in its month: a payment the provider
    dates a midnight away from its donation (:func:`reconcile_day`, ``near``). A payment farther away (two or more
    days) is found by its id wherever its donation is (:func:`_naming`, ``far``), and counted on the donation's day
    only, as across midnight.
    """
    one = timedelta(days=1)
    with engine.connect() as conn:
        ids = [kiosk_id] if kiosk_id else [r[0] for r in conn.execute(select(kiosks.c.id).order_by(kiosks.c.id))]
        loaded = {k: _load(conn, k, first - one, last + one) for k in ids}
        refs = {d.provider_ref for days in loaded.values() for v in days.values() for d in v["donations"]
                if d.provider_ref}
        found, all_payments, ranges = _provider(conn, first, last, refs)
        known = {r[0] for r in conn.execute(select(kiosks.c.id))}
        named = {k: {(d.method, d.provider_ref, day) for day, v in days.items() for d in v["donations"]
                     if d.provider_ref} for k, days in loaded.items()}
        anywhere = {(m, ref) for keys in named.values() for m, ref, _ in keys}
        # What the days read cannot explain, looked up by payment id in the whole ledger (:func:`_naming`): a payment
        # of these days that no donation of the kiosk its device names has on its date or beside it (of any kiosk,
        # when the device names none), and a donation's payment the provider dates two or more days away (another
        # donation far away may have named it first).
        lookup: dict[str | None, set[str]] = {}
        for p in all_payments:
            when, dev = p["business_date"], p["device"]
            if not first <= when <= last or (kiosk_id is not None and dev != kiosk_id):
                continue
            if dev in named and not any((p["provider"], p["payment_id"], n) in named[dev]
                                        for n in (when - one, when, when + one)):
                lookup.setdefault(dev, set()).add(p["payment_id"])
            elif dev not in known and (p["provider"], p["payment_id"]) not in anywhere:
                lookup.setdefault(None, set()).add(p["payment_id"])
        for k, days in loaded.items():
            for day, v in days.items():
                for d in v["donations"] if first <= day <= last else ():
                    paid = found.get((d.method, d.provider_ref))
                    if paid is not None and abs((paid["business_date"] - day).days) >= 2:
                        lookup.setdefault(k, set()).add(d.provider_ref)
            # A gift of these days whose payment an earlier gift dated days away names too (:func:`_misdated`): only
            # for a kiosk whose gifts here match payments of an imported file.
            paid_here = {(d.method, d.provider_ref): d.seq for v in days.values() for d in v["donations"]
                         if (d.method, d.provider_ref) in found}
            if paid_here:
                for key in _misdated(conn, k, first - one, last + one, sorted(paid_here.values())):
                    if key in paid_here:
                        lookup.setdefault(k, set()).add(key[1])
        far = _naming(conn, lookup) if lookup else {}
        # A payment on kiosk A's terminal that no gift of A names, on any day: the terminal was lent to another kiosk
        # for the day, or swapped. Looked up among every kiosk's gifts of LENT_DAYS days around its date (through
        # DONATIONS_BY_WALL: what it reads grows with the fleet, not its history), only for these few payments (and
        # for one no gift names at all): every other payment was explained by its own kiosk's days or ledger.
        hit = {(x[0], ref) for (_, ref), xs in far.items() for x in xs}
        lent = {p["payment_id"]: p["business_date"] for p in all_payments if p["device"] in lookup and p["device"]
                and (p["device"], p["payment_id"]) not in hit and p["payment_id"] in lookup[p["device"]]}
        # A payment on A's terminal that a gift of these days of another kiosk names: counted once in the fleet
        # (:func:`_owner`), so every gift that names it is looked up, A's in A's whole ledger (as A's own days do),
        # every other kiosk's among the gifts of LENT_DAYS days around the payment's date (as above), whatever days
        # are read; only for these few payments.
        foreign: dict[tuple[str, str], dict[str, Any]] = {}
        for k, days in loaded.items():
            for day, v in days.items():
                for d in v["donations"] if first <= day <= last else ():
                    paid = found.get((d.method, d.provider_ref))
                    if paid is not None and paid["device"] in known and paid["device"] != k:
                        foreign[(d.method, d.provider_ref)] = paid
        own: dict[tuple[str, str], list[tuple[str, int, date]]] = {}
        if foreign:
            by_device: dict[str | None, set[str]] = {}
            for (_, ref), paid in foreign.items():
                by_device.setdefault(paid["device"], set()).add(ref)
            own = _naming(conn, by_device)
        around = {**{ref: paid["business_date"] for (_, ref), paid in foreign.items()}, **lent}
        if around:
            lo = _ms(min(around.values()) - timedelta(days=LENT_DAYS + 1), TZ)  # a day more: any kiosk's time zone
            hi = _ms(max(around.values()) + timedelta(days=LENT_DAYS + 2), TZ)
            for key, xs in _naming(conn, {None: set(around)}, (sorted(known), lo, hi)).items():
                # Each payment's own days only, whatever else the read covered: the same alone as in its month.
                xs = [x for x in xs if abs((x[2] - around[key[1]]).days) <= LENT_DAYS]
                if key[1] in lent and xs:
                    far[key] = sorted({*far.get(key, ()), *xs})
                if key in foreign:
                    own[key] = sorted({*own.get(key, ()), *xs})
        # Another kiosk's gift dated farther than LENT_DAYS from a payment on A's terminal is none of the payment's
        # (A's days could not find it): the same whether the gift's day or the payment's is read (:func:`_owner`).
        dated = {(p["provider"], p["payment_id"]): p for p in all_payments}
        for key, xs in far.items():
            paid = dated.get(key)
            if paid is not None and paid["device"] in known:
                far[key] = [x for x in xs if x[0] == paid["device"]
                            or abs((x[2] - paid["business_date"]).days) <= LENT_DAYS]
        owners = {key: _owner(own.get(key, ()), paid["device"]) for key, paid in foreign.items()}
    for p in all_payments:  # a payment placed on a kiosk's day when the kiosk recorded nothing that day
        k, when = p["device"], p["business_date"]
        if k in loaded and first <= when <= last and not far.get((p["provider"], p["payment_id"])) and not any(
                (p["provider"], p["payment_id"], n) in named[k] for n in (when - one, when + one)):
            loaded[k].setdefault(when, {"donations": [], "closeouts": []})
    out = []
    for k, days in loaded.items():
        for day, v in days.items():
            if not first <= day <= last:
                continue  # a neighbour, read for the matching only
            covered = {p for p, a, b in ranges if a <= day <= b}
            device = [p for p in all_payments if p["device"] == k and p["business_date"] == day]
            near = [(d, n) for n in (day - one, day + one) for d in days.get(n, {"donations": []})["donations"]]
            out.append(reconcile_day(k, day, v["donations"], v["closeouts"], found, device, covered, near, far,
                                     known, owners))
    if kiosk_id is None:
        matched = {(r["method"], r["provider_ref"]) for x in out for r in x["rows"]}
        matched |= {(m, ref) for keys in named.values() for m, ref, day in keys if not first <= day <= last}
        matched |= {key for key, ds in far.items() if ds}
        stray: dict[date, list[dict[str, Any]]] = {}
        for p in all_payments:
            if first <= p["business_date"] <= last and (p["provider"], p["payment_id"]) not in matched \
                    and p["device"] not in known:
                stray.setdefault(p["business_date"], []).append(p)
        for day, ps in stray.items():
            out.append({"kiosk_id": "", "business_date": day.isoformat(), "provider_only": ps, "ok": False,
                        "problems": [ntext("%(count)s provider payment matches no kiosk's donation.",
                                           "%(count)s provider payments match no kiosk's donation.", len(ps))]})
    out.sort(key=lambda x: (x["business_date"], x["kiosk_id"]), reverse=True)
    return out


def kiosk_day(engine: Engine, kiosk_id: str, day: date) -> dict[str, Any] | None:
    got = kiosk_days(engine, day, day, kiosk_id)
    return got[0] if got else None


def parse_month(month: str) -> date | None:
    """'2026-12' (or '2026-4') -> its first day; anything else ('2026-13', 'abc', '', a day) -> None."""
    y_s, sep, m_s = month.partition("-")
    if not sep or len(y_s) != 4 or not 1 <= len(m_s) <= 2:
        return None
    y, m = decimal(y_s, 1, 9999, leading_zeros=True), decimal(m_s, 1, 12, leading_zeros=True)
    # Strict ASCII digits and ranges: int("²") fails, and date(10**20, 1, 1) is an OverflowError, not a ValueError.
    return date(y, m, 1) if y is not None and m is not None else None


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(day: str) -> date | None:
    """'2026-12-07' -> that date; anything else ('2026-13-01', '20261207', 'abc') -> None."""
    if not _DAY.fullmatch(day):
        return None
    try:
        return date.fromisoformat(day)
    except ValueError:
        return None


def month_bounds(month: str | None, today: date) -> tuple[date, date, str]:
    """('2026-12' or None) -> (first day, last day, 'YYYY-MM'); a bad month is this month (the pages and the CSV
    refuse one first: :func:`parse_month`)."""
    first = parse_month(month or "") or today.replace(day=1)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return first, last, first.strftime("%Y-%m")


def closeout_checks(engine: Engine) -> list[dict[str, Any]]:
    """Every close-out entry against the portal's recomputation as of its seq (oldest first), in the
    shape ``queries.reconciliation`` always had: kiosk_id, seq, business_date, kiosk, portal, match."""
    with engine.connect() as conn:
        days = conn.execute(select(entries.c.kiosk_id, entries.c.business_date).distinct().where(
            IS_CLOSE_OUT, entries.c.business_date.is_not(None))).all()
    out = []
    for kid, day in sorted(days):
        r = kiosk_day(engine, kid, date.fromisoformat(day))
        for c in (r or {}).get("closeouts", []):
            out.append({"kiosk_id": kid, "seq": c["seq"], "business_date": day,
                        "kiosk": {"count": c["count"], "total_yen": c["total_yen"], "projects": c["projects"]},
                        "portal": {"count": c["basis"]["count"], "total_yen": c["basis"]["total_yen"],
                                   "projects": c["basis"]["projects"]},
                        "match": c["match"], "differences": [m % a if a else m for m, a in c["differences"]]})
    return sorted(out, key=lambda x: (x["kiosk_id"], x["seq"]))


# --- the CSV for the city's accounting ----------------------------------------------------------------
CSV_HEADER = ("business_date", "kiosk_id", "row", "project_id", "project_title", "group", "area", "count",
              "total_yen", "z_count", "z_total_yen", "after_close_count", "after_close_yen", "voided_count",
              "voided_yen", "provider_count", "provider_net_yen", "status", "notes")
"""``notes`` (last, so that a reader of the older columns by position reads them still): a ``total`` row's reasons
for its ``status``, in the words the month's page shows beside the day, in the staff member's language."""


def _status(r: dict[str, Any]) -> str:
    if not r["ok"]:
        return "difference"
    return "match" if r["settled"] else "see notes"


def _notes(r: dict[str, Any], lang: str) -> str:
    """What the month's page says in the day's status cell, marks and all: ✗ each difference, ⚠ each note (after the
    close-out, held, not closed yet), ⚠ a clock not synced; " / " between them. Empty for a plain match."""
    words = [f"✗ {said(m, lang)}" for m in r["problems"]] + [f"⚠ {said(m, lang)}" for m in r.get("notes", ())]
    if r.get("clock_unsynced"):
        words.append(f"⚠ {said((N_('Clock not synced on this day'), {}), lang)}")
    return " / ".join(words)


def month_csv(engine: Engine, first: date, last: date, lang: str = i18n.DEFAULT) -> str:
    """One ``total`` row per kiosk-day and one ``project`` row per project of it: settled donations as the
    portal holds them (``count``, ``total_yen``), beside the Z report, what came after it, voids and the
    provider. UTF-8 with a BOM so Excel on a Japanese PC opens it; amounts are plain integers of yen. The header
    and ``status`` are fixed English words for the accounting's tools; ``notes`` are the page's words in ``lang``."""
    with engine.connect() as conn:
        meta = {p["id"]: p for p in catalog.list_projects(conn)}
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    for r in sorted(kiosk_days(engine, first, last), key=lambda x: (x["business_date"], x["kiosk_id"])):
        if not r["kiosk_id"]:
            one = "✗ " + said(ntext("%(count)s provider payment matches no kiosk's donation.",
                                    "%(count)s provider payments match no kiosk's donation.", 1), lang)
            for p in r["provider_only"]:
                w.writerow((r["business_date"], "", "provider_only", "", "", "", "", 0, 0, "", "", "", "", "", "", 1,
                            p["amount_yen"] - p["refunded_yen"], f"payment {p['payment_id']} matches no kiosk", one))
            continue
        z, pv = r["z"], r["provider"]
        w.writerow((r["business_date"], r["kiosk_id"], "total", "", "", "", "", r["portal"]["count"],
                    r["portal"]["total_yen"], z["count"] if z else "", z["total_yen"] if z else "",
                    r["after_close"]["count"], r["after_close"]["total_yen"], r["voided"]["count"],
                    r["voided"]["total_yen"], pv["count"] if pv else "", pv["net_yen"] if pv else "", _status(r),
                    _notes(r, lang)))
        # A row for every project either side counted: the Z may hold a project the portal no longer counts
        # (voided after the close-out, or held), and the project rows must add up to the total row on both.
        zp = {p.get("id"): p for p in (z["projects"] if z else [])}
        pp = {p["id"]: p for p in r["portal"]["projects"]}
        for pid_ in sorted(zp.keys() | pp.keys(), key=lambda k: str(k or "")):
            p = pp.get(pid_, {"count": 0, "total_yen": 0})
            m = meta.get(pid_, {})
            pid = csvsafe.cell(str(pid_ or ""))  # text people typed (or a kiosk sent): never a formula
            w.writerow((r["business_date"], r["kiosk_id"], "project", pid, csvsafe.cell(m.get("title", pid) or ""),
                        csvsafe.cell(m.get("group") or ""), csvsafe.cell(m.get("area") or ""), p["count"],
                        p["total_yen"],
                        zp.get(pid_, {}).get("count", 0) if z else "",
                        zp.get(pid_, {}).get("total_yen", 0) if z else "", "", "", "", "", "", "", "", ""))
    return buf.getvalue()


# --- the staff pages --------------------------------------------------------------------------------
def install(app: FastAPI, engine: Engine) -> None:
    """``/staff/reconciliation`` (a month's kiosk-days), one kiosk-day, the provider file import and the
    month's CSV; center staff and administrators only. Needs ``operator.install`` first (its helpers)."""
    from server_sync import pages, staff  # here: pages imports nothing of this module, but keep the pure part light
    from server_sync.operator import TO_RECONCILIATION, NotFound

    ui = app.state.staff_ui

    def today() -> date:
        return datetime.now(TZ).date()

    def titles(lang: str) -> dict[str, str]:
        with engine.connect() as conn:
            return {p["id"]: (p["title_en"] or p["title"]) if lang == "en" else p["title"]
                    for p in catalog.list_projects(conn)}

    def month_page(lang: str, c: dict[str, Any], month: str | None, errors: list[Msg] | None = None,
                   notice: str = "") -> str:
        first, last, m = month_bounds(month, today())
        before, after = first - timedelta(days=1), last + timedelta(days=1)
        return pages.staff_page("staff_reconciliation.html", lang, items=kiosk_days(engine, first, last), month=m,
                                prev=before.strftime("%Y-%m"), next=after.strftime("%Y-%m"),
                                # What people read (「2026年12月」, "Dec 2026"); the addresses keep YYYY-MM.
                                month_words=pages.month_words(first, lang), prev_words=pages.month_words(before, lang),
                                next_words=pages.month_words(after, lang), imports=imports(engine), providers=PROVIDERS,
                                provider_names=PROVIDER_NAMES,
                                errors=[said(m, lang) for m in (errors or [])][:MAX_ERRORS + 1],
                                more=max(0, len(errors or []) - MAX_ERRORS), notice=notice,
                                sponsor=pools.month_sponsor(engine, first, last),  # points, never cash
                                titles=titles(lang),  # the sponsor table's projects by name, the ID under it
                                said=lambda m: said(m, lang), nav="reconciliation", **c)

    def not_a_month(month: str, lang: str) -> str:
        """Why a ``?month=`` that is no month is refused, with this month as the example of the form."""
        t = today()
        return said((N_("“%(month)s” is not a valid month. Write the year (4 digits) and the month joined by a "
                        "hyphen “-”, like %(example)s (%(words)s)."),
                     {"month": month[:40], "example": f"{t:%Y-%m}", "words": pages.month_words(t, lang)}), lang)

    def not_a_day(day: str, lang: str) -> str:
        t = today()
        return said((N_("“%(day)s” is not a valid date. Write the year (4 digits), the month and the day joined by "
                        "hyphens “-”, like %(example)s (%(words)s)."),
                     {"day": day[:40], "example": t.isoformat(), "words": pages.day(t, lang)}), lang)

    def refused(lang: str, c: dict[str, Any], why: str) -> Response:
        """A month or day the address names wrongly: 400 and why, never another month's figures in its place."""
        return ui.html(pages.staff_page("staff_reconciliation.html", lang, invalid=why, nav="reconciliation", **c), 400)

    @app.get("/staff/reconciliation", response_class=HTMLResponse, tags=["staff"])
    def reconciliation_month(request: Request, month: str | None = None, imported: str | None = None) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> str | Response:
            if month is not None and parse_month(month) is None:
                return refused(lang, c, not_a_month(month, lang))
            n = decimal(imported)
            notice = "" if n is None else i18n.ntext("Imported %(count)s payment from the provider's file.",
                                                     "Imported %(count)s payments from the provider's file.", n, lang)
            return month_page(lang, c, month, notice=notice)
        return ui.page(request, "audit", render)

    @app.get("/staff/reconciliation/{kiosk_id}/{day}", response_class=HTMLResponse, tags=["staff"])
    def reconciliation_day(kiosk_id: str, day: str, request: Request) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> str | Response:
            d = parse_day(day)
            if d is None:
                return refused(lang, c, not_a_day(day, lang))
            r = kiosk_day(engine, kiosk_id, d)
            if r is None:  # no such kiosk, or nothing of it that day: not found, not "your role does not allow"
                raise NotFound(*TO_RECONCILIATION)
            return pages.staff_page("staff_reconciliation_day.html", lang, r=r, titles=titles(lang),
                                    month=d.strftime("%Y-%m"), said=lambda m: said(m, lang), nav="reconciliation",
                                    **c)
        return ui.page(request, "audit", render)

    @app.post("/staff/reconciliation/provider", response_class=HTMLResponse, tags=["staff"])
    async def reconciliation_import(request: Request) -> Response:
        """A multipart form (the file, the provider, the CSRF token): checked whole, stored whole."""
        who = ui.current(request)
        if who is None:
            return RedirectResponse("/staff/login", status_code=303)
        if not who.is_staff:  # before a byte of the body is read: a group editor may not make the portal store one
            return ui.forbidden(request, who)
        lang = ui.lang_of(request)
        declared = decimal(request.headers.get("content-length", ""), leading_zeros=True)
        errors: list[Msg] = []
        raw, name, provider, token = b"", "", "", ""
        if declared is None:
            # A browser always says how long its form is; a body without a length (chunked) would be spooled whole
            # before any limit could apply, so it is not read at all.
            errors.append((N_("The form could not be read. Reload the page and try again."), {}))
        elif declared > MAX_FILE_BYTES + 64 * 1024:
            errors.append((N_("The file is too large: at most %(mb)s MB."), {"mb": MAX_FILE_BYTES // (1024 * 1024)}))
        else:
            try:
                form = await request.form(max_files=1, max_fields=5)
            except Exception:  # noqa: BLE001 - not a multipart form, or a broken one: say so, store nothing
                form = None
            if form is not None:
                token = str(form.get("csrf") or "")
                provider = str(form.get("provider") or "")
                f = form.get("file")
                if f is not None and hasattr(f, "read"):
                    name = str(getattr(f, "filename", "") or "")
                    raw = await f.read(MAX_FILE_BYTES + 1)
                await form.close()
        if not errors and not staff.csrf_ok(engine, request.cookies.get(staff.COOKIE), token):
            return ui.forbidden(request, who, N_("This form has expired. Go back, reload the page and try again."))
        if not errors and not name:
            errors.append((N_("Choose the provider's CSV file."), {}))
        if not errors:
            summary, errors = await run_in_threadpool(import_provider_file, engine, provider, name, raw, who.name)
        if errors:
            c = ui.ctx(request, who)
            body = await run_in_threadpool(month_page, lang, c, request.query_params.get("month"), errors)
            return ui.html(body, 422)
        assert summary is not None
        # The staff actions record names the import by its provider and the days it covers, "square 2026-12-01
        # 2026-12-07" (never the file's name nor a row of it); /staff/actions says it in words (staff_actions.py).
        staff.note_target(request, f"{summary['provider']} {summary['first_date']:%Y-%m-%d} "
                                   f"{summary['last_date']:%Y-%m-%d}")
        return RedirectResponse(f"/staff/reconciliation?month={summary['last_date']:%Y-%m}"
                                f"&imported={summary['rows']}", status_code=303)

    @app.get("/staff/reconciliation.csv", tags=["staff"])
    def reconciliation_csv(request: Request, month: str | None = None) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> Response:
            if month is not None and parse_month(month) is None:  # a script's typo gets no other month's figures
                return Response(not_a_month(month, lang) + "\n", status_code=400,
                                media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-store"})
            first, last, m = month_bounds(month, today())
            return Response(month_csv(engine, first, last, lang), media_type="text/csv; charset=utf-8",
                            headers={"Cache-Control": "no-store",
                                     "Content-Disposition": f'attachment; filename="reconciliation-{m}.csv"'})
        return ui.page(request, "audit", render)

"""Point rules on the portal (issue #17, docs/points.md).

- ``GET /points/rules``: the written rules in force, public, in words a citizen can read (``?lang=en``);
- ``GET /staff/point-rules``: administrators edit them: points per ¥100 given, and the volunteer activity
  types with their fixed points and a description; the versions so far;
- ``POST /staff/point-rules``: checked whole, through the operator UI's form helper (CSRF, roles); a saved
  version is published to every kiosk in the signed config (server_sync/pointrules.py);
- ``GET/POST /staff/pools``: administrators fund sponsor pools (server_sync/pools.py) and see each pool's
  balance, handed-out allocations and spending per kiosk;
- ``GET /staff/points-report`` (staff) and ``/staff/points-report.csv`` (UTF-8 with BOM): points issued and
  exchanged per month and per activity type, and each pool's balance;
- ``POST /api/v1/kiosks/{id}/points/allot`` (signed by the kiosk): hands the kiosk a card's unheld points;
- ``GET /api/v1/points/totals``: sponsor money given through points, apart from cash.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from server_sync import pages, pointrules, pools, staff, totals
from server_sync.auth import authenticate
from server_sync.catalog import AREAS
from server_sync.db import entries
from server_sync.errors import PortalError
from server_sync.i18n import N_
from server_sync.operator import (
    BLANK_ROWS,
    LIST_MISSING,
    SLIDE_GLYPHS,
    Errors,
    StaffUI,
    _date,
    _drawable,
    _int,
    _one,
    _slug,
    _text,
    removes_every_activity,
    tr,
)
from server_sync.policy import TZ
from server_sync.wire import csvsafe
from server_sync.wire.configdoc import ConfigDocError
from server_sync.wire.numbers import decimal

log = logging.getLogger(__name__)


class AllotRequest(BaseModel):
    """A kiosk asking for a card's points: every token of the tapped card, the current epoch's first."""

    model_config = ConfigDict(extra="forbid")
    donors: list[str] = Field(min_length=1, max_length=16)
    spent: int | None = Field(default=None, ge=0, le=2**53 - 1)
    """Points the kiosk's own ledger has spent for the card, some of which may not have reached the portal yet
    (server_sync/pools.py, ``allot``); kiosks before 2026-12-06 do not send it."""

    def checked(self) -> list[str]:
        if not all(re.fullmatch(r"[0-9a-f]{32}", d) for d in self.donors):
            raise ValueError("donors are 32 hex digits each")
        return self.donors

NOTICES = {"saved": N_("Saved. Kiosks follow the new point rules at their next sync."),
           "pool_saved": N_("Saved. Kiosks receive their share of the pool at their next sync.")}


# Why server_sync/pools.py refused a pool the form's own checks let through, by the refusal's code (never its
# English): (the field it is shown beside, the message; the refusal's variables fill it in).
POOL_REFUSALS = {
    # The kiosks may spend their share offline: the sponsor's money may not shrink below it.
    "pool_below_handed": ("funded_yen", N_("¥%(handed)s of this pool is already handed to the kiosks, which may "
                                           "spend it even while offline, so it cannot be funded with less. Enter "
                                           "¥%(handed)s or more.")),
    "too_many_pools": ("id", N_("At most %(max)s sponsor pools can be running (or ended within %(days)s days) at "
                                "once. Wait for a pool to end, or set an earlier last day on one.")),
    # An add of an ID a colleague's pool has (perhaps added a moment ago): theirs is kept as it is.
    "pool_id_taken": ("id", N_("A pool with the ID %(id)s already exists (someone may have added it a moment "
                               "ago), so nothing was added or changed. To change that pool, choose “Change an "
                               "existing pool”; to add yours, use another ID.")),
    "pool_not_found": ("id", N_("There is no pool with the ID %(id)s, so nothing was changed. To add one, choose "
                                "“Add a new pool”.")),
}


def pool_refusal(exc: ConfigDocError, lang: str) -> Errors:
    """``exc`` (saving a pool) as the form's error: beside its field for the pools' own codes, with their
    variables formatted as amounts; any other publishing refusal in the words of :func:`pages.refusal`."""
    if exc.code in POOL_REFUSALS:
        field, message = POOL_REFUSALS[exc.code]
        return {field: (message, {k: f"{n:,}" if isinstance(n, int) else n for k, n in exc.params.items()})}
    return {"pool": (N_("Could not publish: %(reason)s"), {"reason": pages.refusal(exc, lang)})}


# A change from a pools page opened before someone else changed (or added) that pool (pools.PoolChanged): shown
# above the form, which keeps what was typed, with what is saved now beside it.
POOL_CHANGED = N_("Someone else changed the pool %(id)s after you opened this page. Nothing was saved, and nothing "
                  "new was sent to the kiosks. Check what is saved now in the table below. What you typed is still "
                  "in the form: if it is still right, press “Save and publish to the kiosks” again.")
POOL_ADDED = N_("Someone else added the pool %(id)s after you opened this page. Nothing was saved, and nothing new "
                "was sent to the kiosks. Check what is saved now in the table below. What you typed is still in the "
                "form: if it is still right, press “Save and publish to the kiosks” again.")
# The pool's fields as the pools form labels them (gettext ids), for the table beside a refused stale change.
POOL_FIELDS = [("sponsor", N_("Sponsor (Japanese)")), ("sponsor_en", N_("Sponsor (English)")),
               ("funded_yen", N_("Funded (yen)")), ("yen_per_point", N_("Yen per point")),
               ("per_kiosk_yen", N_("Handed to each kiosk at a time (yen)")),
               ("areas", N_("Only for these areas (none: every area)")), ("start", N_("First day (optional)")),
               ("end", N_("Last day (optional)"))]


# The pools page opened by a pool's "change" link (``?edit=<id>``): the form holds that pool as saved, to change only
# what is meant; an ID no pool has opens the empty "add" form with a note, never an error page.
POOL_EDITING = N_("You are changing the pool %(id)s. What is saved now is filled in below: change only what you "
                  "mean to, then press “Save and publish to the kiosks”.")
POOL_EDIT_MISSING = N_("There is no pool with the ID %(id)s, so there is nothing to change. To change a pool, press "
                       "“Change this pool” beside it in the list above. The form below adds a new pool.")
# A change opened from one pool's link whose ID was then edited would change another pool with this one's values.
POOL_EDIT_OTHER_ID = N_("This form changes the pool %(id)s, so its ID cannot be changed here. Nothing was saved. To "
                        "change another pool, press “Change this pool” beside it in the list above; to add a new pool "
                        "with these values, choose “Add a new pool”.")


def stored_pool_form(p: dict[str, Any]) -> dict[str, list[str]]:
    """Pool ``p`` as saved, as the pools form's fields with "change" chosen (its ``editing``: the pool it opened)."""
    form = {k: ["" if p[k] is None else str(p[k])] for k in ("id", "sponsor", "sponsor_en", "funded_yen",
                                                             "yen_per_point", "per_kiosk_yen", "start", "end")}
    return {**form, "areas": list(p["areas"]), "action": ["change"], "editing": [p["id"]]}


def pool_versions(items: list[dict[str, Any]]) -> str:
    """The pools page's hidden ``seen``: each pool's version as the page shows it, ``{"id": version}``."""
    return json.dumps({p["id"]: int(p["version"]) for p in items}, sort_keys=True, separators=(",", ":"))


def seen_pool(form: dict[str, list[str]], pool_id: str) -> int | None:
    """The version pool ``pool_id`` had when the posted pools page was opened (its hidden ``seen``); -1 if the page
    did not show that pool (added since) or ``seen`` does not read as the page writes it (refused, never saved on a
    guess); None if the form carries no ``seen`` (a script, a page of an older portal: saved as before)."""
    raw = _one(form, "seen")
    if not raw:
        return None
    try:
        versions = json.loads(raw)
    except ValueError:
        return -1
    got = versions.get(pool_id) if isinstance(versions, dict) else None
    return got if isinstance(got, int) and not isinstance(got, bool) and got >= 0 else -1


def pool_differences(form: dict[str, list[str]], v: dict[str, Any], now: dict[str, Any] | None,
                     lang: str) -> list[dict[str, str]]:
    """The fields where the refused change (``form`` as typed, ``v`` as checked) differs from the pool saved now:
    label, what was typed and what is saved, as the staff member reads them."""
    if now is None:
        return []

    def areas(codes: list[str]) -> str:
        return "、".join(pages.area_title(a, lang) or a for a in codes) or pages.staff_text(N_("every area"), lang)

    rows = []
    for name, label in POOL_FIELDS:
        if name == "areas":
            mine, saved, typed, shown = v["areas"], now["areas"], areas(v["areas"]), areas(now["areas"])
        else:
            mine, saved = v[name], now[name]
            typed = _one(form, name)
            shown = f"{saved:,}" if isinstance(saved, int) else (saved or "")
        if (mine or None) != (saved or None):
            rows.append({"name": name, "label": pages.staff_text(label, lang), "typed": typed, "now": shown})
    return rows


def check_pool(form: dict[str, list[str]]) -> tuple[dict[str, Any], Errors]:
    e: Errors = {}
    v: dict[str, Any] = {
        "id": _slug(form, "id", e),
        "sponsor": _text(form, "sponsor", e, required=True, required_msg=N_("Enter the sponsor's name.")),
        "sponsor_en": _text(form, "sponsor_en", e),
        "funded_yen": _int(form, "funded_yen", e, 1, 10**10, N_("Enter a number from %(lo)s to %(hi)s.")),
        "yen_per_point": _int(form, "yen_per_point", e, 1, 1000, N_("Enter a number from %(lo)s to %(hi)s.")),
        "per_kiosk_yen": _int(form, "per_kiosk_yen", e, 1, 10**9, N_("Enter a number from %(lo)s to %(hi)s.")),
        "areas": [a for a in form.get("areas", []) if a in AREAS],
    }
    for name in ("sponsor", "sponsor_en"):  # the kiosks' points exchange screen draws both (the group form's check)
        _drawable(v[name], name, e, SLIDE_GLYPHS)
    start, end = _date(form, "start", e), _date(form, "end", e)
    if start and end and end < start:
        e["end"] = (N_("The last day is before the first."), {})
    v["start"], v["end"] = (start.isoformat() if start else None), (end.isoformat() if end else None)
    return v, e


def _month(ms: int) -> str:
    """The month (``YYYY-MM``) of a time, in Japan (``policy.TZ``): the kiosks' business days and every date the
    portal shows are Japan's, whatever the server's own time zone (one set to UTC put a gift made before 09:00 on
    the 1st into the month before, so the report did not match the kiosks' ledgers)."""
    return dt.datetime.fromtimestamp(ms / 1000, TZ).strftime("%Y-%m")


def month_starts(lo_ms: int, hi_ms: int) -> list[tuple[str, int]]:
    """``(YYYY-MM, its first millisecond)`` of every month, in Japan as :func:`_month` reads it, from ``lo_ms``'s
    month to ``hi_ms``'s: a time ``t`` is in month *k* exactly when start *k* ≤ ``t`` < start *k + 1*
    (tests/sync/test_points_report.py holds the two to each other with the server in several time zones)."""
    t = dt.datetime.fromtimestamp(lo_ms / 1000, TZ)
    y, m = t.year, t.month
    out: list[tuple[str, int]] = []
    while True:
        start = int(dt.datetime(y, m, 1, tzinfo=TZ).timestamp()) * 1000
        if start > hi_ms:
            return out
        out.append((f"{y:04d}-{m:02d}", start))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


# A settled donation, as the public totals count it (server_sync/totals.py): one definition for both.
_GIVING_SPAN = select(func.min(entries.c.time_ms), func.max(entries.c.time_ms)).where(totals.SETTLED)
_GIVING_IN = select(func.sum(entries.c.points)).where(
    totals.SETTLED, entries.c.time_ms >= bindparam("lo"), entries.c.time_ms < bindparam("hi"))


def _giving_by_month(conn: Any) -> dict[str, int]:
    """Points issued for giving (settled donations, not voided), per month: one sum a month in the database,
    through the (type, time) index, instead of every donation of the city's history read into the worker."""
    lo, hi = conn.execute(_GIVING_SPAN).one()
    if lo is None:
        return {}
    starts = month_starts(lo, hi)
    out = {}
    for (month, a), (_, b) in zip(starts, [*starts[1:], ("", hi + 1)], strict=True):
        got = conn.execute(_GIVING_IN, {"lo": a, "hi": b}).scalar()
        if got:
            out[month] = int(got)
    return out


def report(engine: Engine) -> dict[str, Any]:
    """Points issued (for giving, and per volunteer activity) and exchanged (per pool), per month, each with the
    name staff know beside its ID: an activity's title from the point rules (one retired since keeps the name it
    had), a pool's sponsor (an ID the portal has no name for shows as itself)."""
    issued: dict[tuple[str, str], int] = {}
    exchanged: dict[tuple[str, str], dict[str, int]] = {}
    with engine.connect() as conn:
        giving = _giving_by_month(conn)
        rows = conn.execute(select(entries.c.type, entries.c.time_ms, entries.c.points, entries.c.amount_yen,
                                   entries.c.body).where(
            entries.c.type.in_(("points_grant", "points_spent")), entries.c.quarantine.is_(None))).all()
        balances = pools.balances(conn)
        activities = pointrules.activity_titles(conn)
        sponsors = pools.sponsor_names(conn)
    for month, pts in giving.items():
        issued[(month, "giving")] = pts
    for kind, t, pts, yen, body in rows:
        if not pts:
            continue
        month = _month(t)
        if kind == "points_spent":
            pool = json.loads(bytes(body))["data"].get("pool", "")
            x = exchanged.setdefault((month, pool), {"points": 0, "yen": 0})
            x["points"] += int(pts)
            x["yen"] += int(yen or 0)
        else:
            what = "volunteer:" + json.loads(bytes(body))["data"].get("activity", "")
            issued[(month, what)] = issued.get((month, what), 0) + int(pts)

    # The names beside the IDs, by the CSV's ``what`` (``volunteer:<id>``, ``pool:<id>``): (Japanese, English).
    names = {f"volunteer:{aid}": (ja, en or ja) for aid, (ja, en) in activities.items()}
    names.update({f"pool:{pid}": (ja, en or ja) for pid, (ja, en) in sponsors.items()})
    names["giving"] = (GIVING_NAME, "giving")
    return {"issued": [{"month": m, "what": w, "points": p} for (m, w), p in sorted(issued.items())],
            "exchanged": [{"month": m, "pool": pl, **v} for (m, pl), v in sorted(exchanged.items())],
            "pools": balances, "names": names}


def name_of(r: dict[str, Any], what: str, lang: str = "ja") -> str:
    """The name staff know for a report's ``what`` (an activity's title, a pool's sponsor); the ID itself when the
    portal has none (an activity no saved rules named, a pool since renamed away)."""
    ja, en = r["names"].get(what, (what.split(":", 1)[-1], ""))
    return (en or ja) if lang == "en" else ja


GIVING_NAME = "寄付"
"""The name column of the points issued for giving, in the CSV (a volunteer activity's is its title)."""
CSV_HEADER = ["kind", "month", "what", "points", "yen", "name", "funded_yen", "spent_yen", "left_yen"]
"""The points CSV's columns (docs/points.md, "Reports"). The first five are those of the older CSV, in the same
places; ``name`` and the three money columns of a pool's balance were added after them."""


def report_csv(engine: Engine) -> bytes:
    """One table for accounting (docs/points.md, "Reports"): ``kind, month, what, points, yen, name, funded_yen,
    spent_yen, left_yen``. ``what`` is the ID (giving, volunteer:<activity>, pool:<id>), ``name`` what staff call it
    (the activity's title, the sponsor). ``points`` and ``yen`` are what the row's points did: issued (no yen), or
    exchanged for the sponsor's yen; a pool's ``pool_balance`` row holds its points exchanged in every month (the sum of
    its ``exchanged`` rows) and its money in ``funded_yen``, ``spent_yen`` (the sum of its ``exchanged`` rows' yen) and
    ``left_yen``, with ``yen`` left empty (an older CSV had the yen left there). UTF-8 with a BOM, so spreadsheet
    software in Japan opens it right."""
    r = report(engine)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    cell = csvsafe.cell  # "what" and "name" carry text a kiosk or a form sent: as in every staff CSV
    for i in r["issued"]:
        w.writerow(["issued", i["month"], cell(i["what"]), i["points"], "", cell(name_of(r, i["what"])), "", "", ""])
    for x in r["exchanged"]:
        w.writerow(["exchanged", x["month"], cell("pool:" + x["pool"]), x["points"], x["yen"],
                    cell(name_of(r, "pool:" + x["pool"])), "", "", ""])
    for p in r["pools"]:
        w.writerow(["pool_balance", "", cell("pool:" + p["id"]), p["spent_points"], "",
                    cell(name_of(r, "pool:" + p["id"])), p["funded_yen"], p["spent_yen"], p["left_yen"]])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def check_rules(form: dict[str, list[str]]) -> tuple[int | None, list[dict[str, Any]], Errors]:
    """The rules form, field by field: (points per ¥100, activities, errors)."""
    e: Errors = {}
    rate = _int(form, "points_per_100_yen", e, 0, 1000, N_("Enter a number from %(lo)s to %(hi)s."))
    out: list[dict[str, Any]] = []
    i = 0
    while f"r{i}_id" in form:
        p = f"r{i}_"
        i += 1
        if not any(_one(form, p + k) for k in ("id", "title", "points", "description")):
            continue
        aid = _slug(form, p + "id", e)
        title = _text(form, p + "title", e, required=True, required_msg=N_("Enter the activity's name."))
        title_en = _text(form, p + "title_en", e)
        for name, text in ((p + "title", title), (p + "title_en", title_en)):  # the kiosks' staff menu draws both
            _drawable(text, name, e, SLIDE_GLYPHS)  # (the descriptions only the public web page shows)
        pts = _int(form, p + "points", e, 1, 10_000, N_("Enter a number from %(lo)s to %(hi)s."))
        desc = _text(form, p + "description", e, required=True, max_len=1000,
                     required_msg=N_("Say in a sentence what a volunteer does for these points."))
        out.append({"id": aid, "title": title, "title_en": title_en, "points": pts or 1,
                    "description": desc, "description_en": _text(form, p + "description_en", e, max_len=1000)})
    ids = [a["id"] for a in out]
    for n, a in enumerate(out):
        if ids.count(a["id"]) > 1:
            e.setdefault(f"r{n}_id", (N_("This ID is used twice."), {}))
    return rate, out, e


def install(app: FastAPI, engine: Engine) -> None:
    ui: StaffUI = app.state.staff_ui

    def rules_page(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]] | None = None,
                   errors: Errors | None = None, notice: str = "", changed: bool = False,
                   confirm_empty: bool = False) -> str:
        """The rules form: the rules in force, or ``form`` as sent (with ``errors``). It carries the version it
        was made from (hidden ``base``), so a save after a colleague's is caught (``changed``: the page shows
        the rules in force now and says so). ``confirm_empty``: every activity row was emptied; the page asks
        whether to take every activity away from the kiosks (its own small form)."""
        with engine.connect() as conn:
            cur = pointrules.current(conn)
            versions = pointrules.history(conn)
        base = _one(form, "base") if form is not None else str(cur["version"] if cur else 0)
        if form is None:
            form = {"points_per_100_yen": [str(cur["points_per_100_yen"] if cur else 1)]}
            for i, a in enumerate((cur or {}).get("activities", [])):
                form.update({f"r{i}_{k}": [str(a.get(k, ""))]
                             for k in ("id", "title", "title_en", "points", "description", "description_en")})
        n = sum(1 for k in form if re.fullmatch(r"r\d+_id", k))
        return pages.staff_page("staff_point_rules.html", lang, form=form, errors=tr(lang, errors or {}),
                                rows=range(n + BLANK_ROWS), current=cur, versions=versions, notice=notice,
                                base=base, changed=changed, confirm_empty=confirm_empty, nav="point_rules", **c)

    def notice_of(request: Request, lang: str) -> str:
        key = request.query_params.get("done", "")
        return pages.staff_text(NOTICES[key], lang) if key in NOTICES else ""

    @app.get("/staff/point-rules", response_class=HTMLResponse, tags=["staff"])
    def point_rules(request: Request) -> Response:
        return ui.page(request, "admin", lambda w, lg, c: rules_page(w, lg, c, notice=notice_of(request, lg)))

    @app.post("/staff/point-rules", response_class=HTMLResponse, tags=["staff"])
    async def point_rules_save(request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            if "r0_id" not in form:  # no activity rows at all (the page always sends some): a cut-off form
                return rules_page(who, lang, c, errors={"rules": (LIST_MISSING, {})})
            rate, acts, e = check_rules(form)
            base = decimal(_one(form, "base"))  # the version the page showed (none: a form of older pages)
            if not e and _one(form, "confirm_empty") != "1" and removes_every_activity(engine, acts):
                # Every activity row emptied: asked first, as one save would take the list away from every kiosk.
                return ui.html(rules_page(who, lang, c, form, confirm_empty=True))
            if not e and rate is not None:
                try:
                    pointrules.save(engine, rate, acts, by=who.name, base_version=base)
                except pointrules.Changed:
                    # Another administrator saved since the page was opened: nothing is saved; the page shows
                    # the rules in force now, to change again.
                    return ui.html(rules_page(who, lang, c, changed=True), 409)
                except ConfigDocError as exc:
                    e["rules"] = (N_("Could not publish: %(reason)s"), {"reason": pages.refusal(exc, lang)})
            if e:
                return rules_page(who, lang, c, form, e)
            return ui.done("/staff/point-rules", "saved")
        return await ui.post(request, "admin", handle)

    # --- sponsor pools ----------------------------------------------------------------------------
    def pools_page(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]] | None = None,
                   errors: Errors | None = None, notice: str = "", stale: dict[str, Any] | None = None,
                   edit: str | None = None) -> str:
        """The pools page. Its hidden ``seen`` is the versions of the pools it shows, read with them. A form sent
        back after another refusal keeps the versions it was sent with for the pools it showed (the staff member
        has not been told of a change of those since) and takes the versions shown now for pools listed for the
        first time; after a stale refusal (``stale``: the message and the differing fields) it carries the versions
        shown now, so that saving again is a deliberate choice. ``edit`` (a pool's "change" link): the form holds
        that pool as read with the list and its version, "change" chosen; an ID no pool has: the empty form and a
        note."""
        with engine.connect() as conn:
            items = pools.balances(conn)
        blank = {"yen_per_point": ["1"], "per_kiosk_yen": ["5000"], "action": ["add"]}
        editing = missing = ""
        if form is None and edit is not None:
            pool = next((p for p in items if p["id"] == edit), None)
            if pool is None:
                missing = pages.staff_text(POOL_EDIT_MISSING, lang, id=pages.shown_id(edit))
            else:
                form = stored_pool_form(pool)
                editing = pages.staff_text(POOL_EDITING, lang, id=pool["id"])
        seen = json.loads(pool_versions(items))
        if stale is None and form is not None and _one(form, "seen"):
            seen.update({p: v for p in seen if (v := seen_pool(form, p)) not in (None, -1)})
        return pages.staff_page("staff_pools.html", lang, pools=items, form=form or blank,
                                errors=tr(lang, errors or {}), areas=AREAS, notice=notice, nav="pools",
                                seen=json.dumps(seen, sort_keys=True, separators=(",", ":")), stale=stale,
                                editing=editing, edit_missing=missing, **c)

    @app.get("/staff/pools", response_class=HTMLResponse, tags=["staff"])
    def pools_get(request: Request) -> Response:
        def render(w: staff.Who, lg: str, c: dict[str, Any]) -> str:
            key = request.query_params.get("done", "")
            return pools_page(w, lg, c, notice=pages.staff_text(NOTICES[key], lg) if key in NOTICES else "",
                              edit=request.query_params.get("edit"))
        return ui.page(request, "admin", render)

    @app.post("/staff/pools", response_class=HTMLResponse, tags=["staff"])
    async def pools_save(request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            v, e = check_pool(form)
            if "id" not in e:  # the staff actions record names the pool (its ID only)
                staff.note_target(request, v["id"])
            # "add" or "change", as the administrator chose on the page: never guessed from whether the ID is
            # taken now (a colleague may have added it a moment ago). A form without it (a script, a page served
            # before the field) creates or changes, as before.
            action = _one(form, "action")
            new = {"add": True, "change": False}.get(action)
            opened = _one(form, "editing")  # the pool whose "change" link opened the form (none: typed by hand)
            if new is False and opened and "id" not in e and v["id"] != opened:
                e["id"] = (POOL_EDIT_OTHER_ID, {"id": opened})
            if not e:
                # A change carries the version of the pool the page showed: a colleague's change (or add) of the
                # pool since the page was opened refuses it. An add needs none (the database refuses a taken ID).
                seen = None if new else seen_pool(form, v["id"])
                try:
                    pools.save_pool(engine, v, new=new, seen=seen)
                except pools.PoolChanged:
                    with engine.connect() as conn:
                        now = next((p for p in pools.list_pools(conn) if p["id"] == v["id"]), None)
                    message = pages.staff_text(POOL_ADDED if seen == -1 else POOL_CHANGED, lang, id=v["id"])
                    return ui.html(pools_page(who, lang, c, form, stale={
                        "message": message, "rows": pool_differences(form, v, now, lang)}), 409)
                except ConfigDocError as exc:
                    e.update(pool_refusal(exc, lang))
            if e:
                return pools_page(who, lang, c, form, e)
            return ui.done("/staff/pools", "pool_saved")
        return await ui.post(request, "admin", handle)

    # --- reports ----------------------------------------------------------------------------------
    @app.get("/staff/points-report", response_class=HTMLResponse, tags=["staff"])
    def points_report(request: Request) -> Response:
        return ui.page(request, "audit", lambda w, lg, c: pages.staff_page(
            "staff_points_report.html", lg, r=report(engine), name_of=name_of, nav="points_report", **c))

    @app.get("/staff/points-report.csv", tags=["staff"])
    def points_report_csv(request: Request) -> Response:
        return ui.page(request, "audit", lambda w, lg, c: Response(
            report_csv(engine), media_type="text/csv; charset=utf-8",
            headers={"Cache-Control": "no-store", "Content-Disposition": 'attachment; filename="points.csv"'}))

    # --- the kiosks' side --------------------------------------------------------------------------
    @app.post("/api/v1/kiosks/{kiosk_id}/points/allot", tags=["sync"],
              summary="Hand this kiosk a card's points that no kiosk holds yet (docs/points.md)")
    async def allot(kiosk_id: str, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > 4096:
            raise PortalError(413, "too_large", "request body over 4096 bytes")
        target = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
        # private: a revoked key is handed no card's points (its spending would be refused, the points held by it).
        await run_in_threadpool(lambda: authenticate(engine, request.method, target, request.headers, raw,
                                                     time.time_ns() // 1_000_000, kiosk_id, private=True))
        try:
            req = AllotRequest.model_validate(json.loads(raw or b"null"))
            donors = req.checked()
        except (ValueError, ValidationError, RecursionError) as exc:  # RecursionError: JSON nested too deep
            raise PortalError(422, "invalid_request", f"body: {str(exc).splitlines()[0]}") from None
        try:
            out = await run_in_threadpool(pools.allot, engine, kiosk_id, donors, req.spent)
        except pools.KioskSuspended:  # its uploads are held: it keeps what it holds, and is handed nothing more
            raise PortalError(403, "kiosk_suspended", "this kiosk is suspended: it is handed no card's points "
                              "until an administrator resumes it") from None
        # An online kiosk is the moment to refill its allocations. The allotment is committed already: an error
        # answered now would lose it at the kiosk (a take-back lost there is spendable twice: docs/points.md, "A
        # lost answer"), so a failed top-up is logged and the answer still sent. The top-up reads everything
        # again at the next ask (any kiosk's) or pool save, so it is tried again then.
        try:
            await run_in_threadpool(pools.top_up, engine)
        except Exception:  # noqa: BLE001 - whatever failed, the kiosk must get the answer committed above
            log.exception("pools: topping up the allocations after kiosk %s's points ask failed; its answer is "
                          "sent, and the top-up is tried again at the next ask", kiosk_id)
        return out

    @app.get("/api/v1/points/totals", tags=["public"],
             summary="Sponsor money given to projects through points, apart from cash donations")
    def sponsor_totals() -> dict[str, Any]:
        with engine.connect() as conn:
            return pools.sponsor_totals(conn)

    @app.get("/points/rules", response_class=HTMLResponse, tags=["pages"])
    def public_rules(lang: str | None = None) -> HTMLResponse:
        lg = "en" if lang == "en" else "ja"
        with engine.connect() as conn:
            cur = pointrules.current(conn)
        body = pages._render("point_rules.html", lg, "/points/rules", rules=cur)
        return HTMLResponse(body, headers={"Cache-Control": "no-cache"})

"""The operator web UI under ``/staff``: dashboard, groups and projects, media, playlists and schedules,
volunteer activities, kiosks and users, for center staff who are not engineers.

Server-rendered (Jinja2 templates in ``server_sync/templates/staff_*.html``), Japanese first with an
English switch (a cookie), usable on a phone. Every form is checked here, field by field, and a bad
form comes back with what was typed and a plain message beside each field; nothing is stored until
the whole form is right. Messages are gettext ids (``N_``) translated at render time.

Who may do what (:class:`server_sync.staff.Who`): administrators everything; center staff all but the
users page; a group editor only their group's projects and media (anything else is 403; an item that does not
exist at all is 404, with the way back to its list). Every POST
carries the session's CSRF token (:func:`server_sync.staff.csrf_token`).
"""

from __future__ import annotations

import datetime as dt
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypedDict
from urllib.parse import parse_qs, quote, unquote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware

from server_sync import catalog, configstore, enroll, glyphs, mediajobs, movies, pages, public, queries, staff
from server_sync.catalog import AREAS, SLUG
from server_sync.db import kiosk_info, kiosks, media, media_info, writing
from server_sync.i18n import N_
from server_sync.mediajobs import MediaJobs
from server_sync.ratelimit import LoginGuard, retry_after_header
from server_sync.wire import configdoc
from server_sync.wire import protocol as P
from server_sync.wire.configdoc import WEEKDAYS, ConfigDocError, PlaylistItem, Slide, schema_bound
from server_sync.wire.numbers import decimal

Errors = dict[str, tuple[str, dict[str, Any]]]
FORM_LIMIT = 256 * 1024
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
SLUG_RE = re.compile(SLUG)
BLANK_ROWS = 3
"""Empty rows under a playlist, slides or activities table, for adding (no script needed)."""
VIDEO_TYPES = ("video/", "application/octet-stream")
_MEDIA_JS = resources.files("server_sync").joinpath("static/staff-media.js").read_bytes()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Forbidden(Exception):
    """The item exists but is not the staff member's (another group's), or the role does not allow it: 403."""


class NotFound(Exception):
    """The item asked for does not exist (an old link, a typo, removed): 404, with the way back to its list."""

    def __init__(self, back: str, back_text: str):
        super().__init__(back)
        self.back, self.back_text = back, back_text


# Where a page about a missing item sends the staff member back to (its list), and the link's words (gettext ids).
TO_PROJECTS = ("/staff/projects", N_("Back to the projects"))
TO_VIDEOS = ("/staff/media", N_("Back to the videos"))
TO_KIOSKS = ("/staff/kiosks", N_("Back to the kiosks"))
TO_MOVIES = ("/staff/movies", N_("Back to the movies"))
TO_RECONCILIATION = ("/staff/reconciliation", N_("Back to the reconciliation"))

# --- the kiosks page: a suspension's reason and an alarm in staff words --------------------------------------------
# The portal stores both as English engineer text (kiosks.suspended_reason, portal_alarms.kind and .detail), and
# rows written by older releases stay in the database. The page words them from the fixed formats the portal's own
# code writes, read back at render time (nothing added to ingest); the stored text stays on a "details" line for
# the administrator. Words = (gettext id, its values); a value that is itself Words is translated first.
Words = tuple[str, dict[str, Any]]
_EQUIVOCATION_AT = re.compile(r"equivocation at seq=(\d+|None)")  # ingest.IngestService._alarm
_SUSPENDED_BY = re.compile(r"suspended by (.+)", re.S)  # this page's Suspend button: "suspended by {who.name}"
_CLI_SUSPENSION = "suspended by an administrator"  # `kiosk-portal kiosk suspend` without --reason
_QUARANTINED = re.compile(r"seq=\d+ quarantined: (\w+):", re.S)  # ingest: "seq={seq} quarantined: {policy's why}"
_BROKEN_RULE: dict[str, str] = {  # the first word of server_sync/policy.py's reasons
    "amount": N_("its amount is not one the kiosk's settings allow"),
    "points": N_("its points do not match the rules for points"),
    "project": N_("the project it gives to is not in the list of projects"),
    "pool": N_("the sponsor pool it uses does not allow this use"),
    "period": N_("it was used outside the sponsor pool's dates"),
    "rules": N_("it does not match the point rules the kiosk ran"),
    "time": N_("its time is far from the time the portal received it"),
    "kiosk": N_("it names another kiosk"),
}


def suspension_words(reason: str) -> Words:
    """Why a kiosk is suspended, what that means and what to do, from its stored reason (server_sync/ingest.py
    ``suspend``'s callers); a reason the portal did not word itself (``kiosk suspend --reason TEXT``) is pointed to."""
    if m := _EQUIVOCATION_AT.fullmatch(reason):
        return (N_("The portal stopped counting this kiosk by itself: the kiosk's key signed two ledgers that do "
                   "not agree (record %(seq)s). What it sends is held and not counted. Stop taking donations at "
                   "this kiosk and call the administrator. Do not resume counting before the administrator has "
                   "found the cause."), {"seq": m[1]})
    if reason == _CLI_SUSPENSION:
        return (N_("An administrator stopped counting this kiosk with the portal's command. What it sends is held "
                   "and not counted until counting is resumed. Ask the administrator why."), {})
    if m := _SUSPENDED_BY.fullmatch(reason):
        return (N_("%(name)s stopped counting this kiosk on this page. What it sends is held and not counted until "
                   "someone presses \"Resume counting\"."), {"name": m[1]})
    return (N_("Counting of this kiosk was stopped for the reason in the details below. What it sends is held and "
               "not counted until counting is resumed. If you do not know why, ask the administrator."), {})


def alarm_words(kind: str, seq: int | None, detail: str) -> Words:
    """What an alarm (server_sync/ingest.py writes them: ``_alarm``, ``_behind``, the quarantine alarms of a
    batch) means and what to do, from its kind (and a quarantine's broken rule); an unknown kind says so."""
    if kind == "equivocation":
        return (N_("This kiosk's key signed two ledgers that do not agree (its data put back from an old backup, "
                   "or a copied SD card). What it sends is held and not counted. Stop taking donations at this "
                   "kiosk and call the administrator."), {})
    if kind == "ledger_behind":
        return (N_("This kiosk reports fewer records than the portal already holds: its data was probably put "
                   "back from an old backup. Stop taking donations at this kiosk and call the administrator."), {})
    if kind == "quarantine":
        m = _QUARANTINED.match(detail)
        rule = _BROKEN_RULE.get(m[1]) if m else None
        return (N_("Record %(seq)s was kept aside and is not counted: %(why)s. The kiosk may run old settings, or "
                   "the record was altered. Call the administrator."),
                {"seq": "–" if seq is None else seq,
                 "why": (rule or N_("the reason is in the details below"), {})})
    return (N_("The portal noted a problem with this kiosk that this page cannot put in plain words. Call the "
               "administrator and tell them the details below."), {})


def words_text(words: Words, lang: str) -> str:
    msgid, values = words
    return pages.staff_text(msgid, lang, **{k: words_text(v, lang) if isinstance(v, tuple) else v
                                            for k, v in values.items()})


def alarms_in_words(alarms: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """Alarms (rows with ``kind``, ``seq`` and ``detail``) with ``words`` (what it means and what to do, in ``lang``)
    and ``stored`` (the text as the portal stored it, for the details line): the kiosks page and the dashboard."""
    return [{**a, "words": words_text(alarm_words(a["kind"], a["seq"], a["detail"]), lang),
             "stored": a["kind"] + ("" if a["seq"] is None else f" #{a['seq']}") + f": {a['detail']}"}
            for a in alarms]


SILENT_MS = 24 * 3600 * 1000
"""A kiosk not heard from for this long is called out on the kiosks page and the dashboard: a kiosk syncs every
minute or so while it runs, so a day of silence is a kiosk switched off, unplugged or off the network."""


def silence_words(k: dict[str, Any], now_ms: int, lang: str) -> Words | None:
    """What staff should know about a kiosk not heard from for :data:`SILENT_MS` or more (its last contact, or its
    enrollment if it never synced): how long, that its donations are safe on the kiosk, and what to check."""
    since = k.get("last_seen_ms") or k.get("enrolled_ms")
    if since is None or now_ms - since < SILENT_MS:
        return None
    # In days (a day is when the warning starts), and "1 day" then, not "1 days": its most common case.
    return (N_("No contact from this kiosk for %(duration)s (since %(when)s). Check that it is switched on and "
               "connected to the network (LAN cable or Wi-Fi). Donations made meanwhile stay on the kiosk and are "
               "sent when it is connected again. If it does not reconnect, call the administrator."),
            {"duration": _about(now_ms - since), "when": pages.when(since, lang)})


CLOCK_TOLERANCE_MS = 30_000
"""A kiosk clock within this of the portal's is "correct" on the kiosks page. The offset is measured at the last
heartbeat as the kiosk's time minus the portal's receive time, so it also holds the request's trip (a second or
two on a slow line): that is no fault, and a donation's time to the half minute is all staff need."""


def _about(ms: int) -> Words:
    """A length of time as staff say it, rounded to its largest unit: 「40秒」, 「3分」, 「1時間」, 「2日」."""
    s = round(ms / 1000)
    for size, one, many in _UNITS:
        if s >= size - size // 120 or size == 1:
            n = max(1, round(s / size))
            return (one, {}) if n == 1 else (many, {"n": n})
    raise AssertionError("unreachable: the last unit is one second")


_UNITS = [(86_400, N_("1 day"), N_("%(n)s days")), (3600, N_("1 hour"), N_("%(n)s hours")),
          (60, N_("1 minute"), N_("%(n)s minutes")), (1, N_("1 second"), N_("%(n)s seconds"))]


def clock_words(synced: bool | None, skew_ms: int | None) -> tuple[Words, bool] | None:
    """The kiosks page's clock column, one statement and whether it is a fault (``bad``), or None if the kiosk
    never said (no heartbeat yet). ``synced``: the kiosk's own system said at its last heartbeat that its clock is
    set from the network (NTP); ``skew_ms``: how far its clock was from the portal's then (queries.fleet). How far
    off it is, when it is, says more than whether it is set from the network: a clock the kiosk believes set can
    still be off (its time server, or the portal's clock, is wrong), so it is never called correct then."""
    if skew_ms is not None and abs(skew_ms) > CLOCK_TOLERANCE_MS:
        amount = _about(abs(skew_ms))
        if synced is False:
            return ((N_("About %(amount)s behind: the kiosk could not set its clock from the network. Check its "
                        "network connection; if it stays, call the administrator.") if skew_ms < 0 else
                     N_("About %(amount)s ahead: the kiosk could not set its clock from the network. Check its "
                        "network connection; if it stays, call the administrator.")), {"amount": amount}), True
        return ((N_("About %(amount)s behind the portal's clock. Call the administrator.") if skew_ms < 0 else
                 N_("About %(amount)s ahead of the portal's clock. Call the administrator.")),
                {"amount": amount}), True
    if synced is False:
        return (N_("Right for now, but the kiosk could not set its clock from the network, so it may drift. Check "
                   "its network connection."), {}), True
    if synced is None and skew_ms is None:
        return None
    return (N_("Correct."), {}), False


_REFUSED: dict[str, str] = {
    "media": N_("This kiosk could not take the playlist published %(when)s: a movie in it did not arrive intact. It "
                "will not arrive by itself. Check the playlist's movies and press “Publish to the kiosks” again."),
    "invalid": N_("This kiosk could not take the playlist published %(when)s: the kiosk could not read what is in "
                  "it. It will not arrive by itself. Check the playlist's movies and hours and press “Publish to the "
                  "kiosks” again. If it happens again, call the administrator (the kiosk may need a software "
                  "update)."),
    "damaged": N_("This kiosk could not take the playlist published %(when)s: it arrived damaged. It will not arrive "
                  "by itself. Press “Publish to the kiosks” again. If it happens again, call the administrator."),
    "disk": N_("This kiosk could not take the playlist published %(when)s: the kiosk's storage is full or cannot be "
               "written. Call the administrator."),
    "other": N_("This kiosk could not take the playlist published %(when)s. It will not arrive by itself. Press "
                "“Publish to the kiosks” again. If it happens again, call the administrator."),
}
"""What staff read for each ``reason`` of a refused config (protocol.ConfigRefused); a reason this portal does not
know (a newer kiosk's) is said as ``other``."""


def config_words(applied: int, current: int, refused: dict[str, Any] | None = None,
                 lang: str = "ja") -> tuple[Words, str]:
    """Whether a kiosk runs the newest playlist published for it, in the staff member's words, and its state for
    the page: ``none`` (nothing published for it), ``ok``, ``waiting`` (it gets the newest at its next sync),
    ``refused`` (it fetched the newest and refused it: it will not arrive by itself; say when it was published, why
    and what to do) or ``other``. ``applied``: the version the kiosk said it runs; ``current``: the newest for it,
    its kiosk group or all kiosks; ``refused``: the version its last heartbeat said it refused, with ``reason`` and
    ``published_ms`` (queries.fleet). A refusal of an older version than the newest is not said: the kiosk has not
    tried the newest yet. A kiosk takes only a version newer than its own (kiosk/sync/uploader.py), so one
    that runs a newer version than the newest for it (it left a kiosk group whose playlist was newer) keeps it
    until something is published for it again."""
    if current == 0:
        return (N_("none published"), {}), "none"
    if applied == current:
        return (N_("Runs the newest playlist"), {}), "ok"
    if refused is not None and refused["version"] == current > applied and refused.get("published_ms") is not None:
        return ((_REFUSED.get(refused["reason"], _REFUSED["other"]),
                 {"when": pages.when(refused["published_ms"], lang)}), "refused")
    if applied == 0:
        return (N_("No playlist received yet (it arrives at its next contact)"), {}), "waiting"
    if applied < current:
        return (N_("Still on an older playlist (the new one arrives at its next contact)"), {}), "waiting"
    return (N_("Still on its former kiosk group's playlist. Publish again for all kiosks or for this kiosk to "
               "switch it."), {}), "other"


def clock_label(synced: bool | None, skew_ms: int | None) -> Words | None:
    """The kiosks page's short clock label, in bold above :func:`clock_words`' sentence (a phone or a narrow column
    reads 「約1時間遅れ」 at a glance, not a sentence two characters a line); None for a right clock (「正確です」
    alone) and for one never reported."""
    if skew_ms is not None and abs(skew_ms) > CLOCK_TOLERANCE_MS:
        return (N_("About %(amount)s behind") if skew_ms < 0 else N_("About %(amount)s ahead"),
                {"amount": _about(abs(skew_ms))})
    return (N_("May drift"), {}) if synced is False else None


_PAYMENT_DETAILS: list[tuple[re.Pattern[str], str, bool]] = [
    # kiosk/app/staffside.py _payment (its "the kiosk failed closed" has its own words in staff_kiosks.html)
    (re.compile(r"no terminal\Z"),
     N_("No card terminal is set up on this kiosk, so it cannot take card donations. Ask the person who set up the "
        "kiosk to check its payment settings."), False),
    # kiosk/payment/sim.py health()
    (re.compile(r"simulated terminal \(offline mode\)"),
     N_("A practice terminal (no real money is taken), set to act as if it cannot be reached."), False),
    (re.compile(r"simulated terminal \("),
     N_("A practice terminal: no real money is taken. For real card donations the administrator sets up the card "
        "terminal."), False),
    # kiosk/payment/square.py health() and check_device()
    (re.compile(r"Square refused the last checkout \("),
     N_("Square (the card payment service) refused this kiosk's last payment, so its payment settings must be "
        "fixed. Card donations cannot be taken until then. Call the administrator."), False),
    (re.compile(r"Square knows no device "),
     N_("Square (the card payment service) does not know this kiosk's card terminal: it must be paired again. Card "
        "donations cannot be taken until then. Call the administrator."), False),
    (re.compile(r"Square refused the access token"),
     N_("Square (the card payment service) refused this kiosk's payment settings. Card donations cannot be taken "
        "until they are fixed. Call the administrator."), False),
    (re.compile(r"Square unreachable \(|no answer from Square \(|device check failed \("),
     N_("The kiosk cannot reach Square (the card payment service). Check the kiosk's network connection (LAN cable "
        "or Wi-Fi). If it stays, call the administrator."), False),
    (re.compile(r"Square answered HTTP "),
     N_("Square (the card payment service) answered with an error, so card donations may not go through. If it "
        "stays, call the administrator."), False),
    (re.compile(r"device \S+ \(OFFLINE\)"),
     N_("Square says the card terminal is switched off or not connected to the network. Check that it is on, "
        "charged and connected."), True),
    (re.compile(r"device \S+ \(NEEDS_ATTENTION\)"),
     N_("Square says the card terminal needs attention. Look at the message on its screen."), True),
    (re.compile(r"device |last checkout: |no checkout yet\Z"),
     N_("The card terminal is connected to Square (the card payment service)."), False),
]
"""What the kiosks page says, in plain words, for each kind of payment terminal detail a kiosk sends in its
heartbeat (``PaymentTerminal.health()``'s English line, by its stable start), and whether it needs a look although
the terminal says ``ready`` (Square's own word for the device). The heartbeat has no code for it: its
``PaymentHealth`` forbids extra fields, so a new field would make older portals refuse newer kiosks' heartbeats."""


def payment_words(state: str, detail: str) -> tuple[Words | None, bool]:
    """The kiosks page's plain line for a payment terminal's ``detail`` (:data:`_PAYMENT_DETAILS`) and whether it
    needs a look; a detail this portal does not know gets a line pointing to the details only when something is
    wrong (``offline``, ``error``), and a checkout in progress none (「決済中」 says it)."""
    for pattern, msgid, attention in _PAYMENT_DETAILS:
        if pattern.match(detail):
            return (msgid, {}), attention
    if state in ("offline", "error") and detail:
        return (N_("If this stays, call the administrator and tell them the details below."), {}), False
    return None, False


def kiosks_in_words(fleet: list[dict[str, Any]], lang: str, now_ms: int | None = None) -> list[dict[str, Any]]:
    """:func:`server_sync.queries.fleet`'s kiosks with their clock (``clock_words``, ``clock_bad``:
    :func:`clock_words`), their suspension (``suspended_words``), each alarm (``words``, and ``stored``: the text
    as the portal stored it, for the details line), a long silence (``silent_words``: :func:`silence_words`, ""
    for a kiosk heard from lately) and whether it runs the newest playlist (``config_words``, ``config_state``:
    :func:`config_words`; ``config_detail``: the version numbers, and a refusal's own words, for the details line)
    in ``lang``; also the clock's short label (``clock_label``: :func:`clock_label`) and the payment terminal's
    detail in plain words (``payment_words``, ``payment_attention``: :func:`payment_words`)."""
    now = _now_ms() if now_ms is None else now_ms
    out = []
    for k in fleet:
        alarms = alarms_in_words(k["alarms"], lang)
        silent = silence_words(k, now, lang)
        clock = clock_words(k.get("clock_synced"), k.get("clock_skew_ms"))
        label = clock_label(k.get("clock_synced"), k.get("clock_skew_ms"))
        pay = k.get("payment")
        pay_words, pay_attention = payment_words(pay["state"], pay["detail"]) if pay else (None, False)
        refused = k.get("config_refused")
        config, config_state = config_words(k["config_applied"], k["config_current"], refused, lang)
        config_detail = ("" if config_state == "none" else f"v{k['config_applied']}" if config_state == "ok" else
                         pages.staff_text(N_("runs v%(applied)s, newest for it v%(current)s"), lang,
                                          applied=k["config_applied"], current=k["config_current"]))
        if config_state == "refused" and refused is not None:  # the kiosk's own words, for the administrator
            config_detail += f"; v{refused['version']} {refused['reason']}: {refused['detail']}"
        out.append({**k, "alarms": alarms, "clock_words": words_text(clock[0], lang) if clock else "",
                    "clock_bad": bool(clock and clock[1]), "clock_label": words_text(label, lang) if label else "",
                    "payment_words": words_text(pay_words, lang) if pay_words else "",
                    "payment_attention": pay_attention,
                    "suspended_words": words_text(suspension_words(k["suspended_reason"]),
                                                  lang) if k["suspended_ms"] else "",
                    "silent_words": words_text(silent, lang) if silent else "",
                    "config_words": words_text(config, lang), "config_state": config_state,
                    "config_detail": config_detail})
    return out


NO_ROOM_ANSWER: dict[int | str, dict[str, Any]] = {507: {
    "model": P.ErrorAnswer, "description": "the portal's disk is full (error no_room): nothing was saved; retry later"}}
"""The OpenAPI answer of a request that stores what it was sent (server_sync/app.py's ``_no_room``)."""


@dataclass(frozen=True)
class StaffUI:
    """The helpers :func:`install` builds, for staff pages installed by other modules (``app.state.staff_ui``).

    ``page(request, need, render)`` signs in, checks the role (``need``: a level of :data:`staff.PAGE_ROLES`:
    ``everyone``, ``any``, ``audit``, ``staff``, ``admin``) and renders; ``post(request, need, handle)`` also checks
    the form's CSRF token and that the user may change things at all (:data:`staff.WRITERS`, as
    :class:`ReadOnlyRoles` does for every POST); ``render``/``handle`` may raise
    :class:`Forbidden` or :class:`NotFound`. A page reading a file upload (multipart) checks the token itself with
    :func:`server_sync.staff.csrf_ok` and renders refusals with ``forbidden``.
    """

    page: Callable[..., Response]
    post: Callable[..., Any]
    current: Callable[[Request], staff.Who | None]
    ctx: Callable[[Request, staff.Who], dict[str, Any]]
    forbidden: Callable[..., HTMLResponse]
    not_found: Callable[..., HTMLResponse]
    html: Callable[..., HTMLResponse]
    done: Callable[[str, str], Response]
    notice_of: Callable[[Request, str], str]
    lang_of: Callable[[Request], str]
    kiosks_page: Callable[..., str]


class ReadOnlyRoles:
    """Every POST (any method but GET, HEAD, OPTIONS) under /staff from a signed-in user whose role may not change
    anything (an auditor: not in :data:`staff.WRITERS`) is answered with the staff 403 page before its handler runs,
    whatever the route: a form or upload added later is refused to them too. Signing in and out stay open.

    Pure ASGI (the body is not read) and innermost, after the cross-site check. A database that cannot be read here
    lets the request through to its route, whose own check (``post``) refuses it or whose fault page says why."""

    # Signing in and out, and changing one's own password (``/staff/password``: a read-only role may do that, and
    # only that: the page changes the signed-in user's password and nothing else, whatever the form holds).
    OPEN = ("/staff/login", "/staff/logout", "/staff/password")

    def __init__(self, app: Any, current: Callable[[Request], staff.Who | None],
                 forbidden: Callable[..., HTMLResponse]):
        self.app, self.current, self.forbidden = app, current, forbidden

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if (scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS")
                and (path == "/staff" or path.startswith("/staff/")) and path not in self.OPEN):
            request = Request(scope)
            cookie = request.cookies.get(staff.COOKIE)
            if cookie:
                before = scope.get("state", {}).get(staff.BEFORE_STATE)
                if before is not None and before[0] == cookie:  # read a moment ago (the staff actions record)
                    who = before[1]
                else:
                    try:
                        who = await run_in_threadpool(self.current, request)
                    except Exception:  # noqa: BLE001 - the route meets the same fault and renders its page
                        who = None
                if who is not None and not who.may_write:
                    return await self.forbidden(request, who)(scope, receive, send)
        return await self.app(scope, receive, send)


def set_session_cookie(resp: Response, cookie: str, request: Request) -> None:
    """The staff session's cookie on ``resp``, as signing in (app.py) and a password change set it: for the staff
    pages only, never read by a script, never sent from another site, over HTTPS only when the portal is reached so."""
    resp.set_cookie(staff.COOKIE, cookie, max_age=staff.SESSION_S, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https", path="/staff")


# --- form checking (pure) ---------------------------------------------------------------------------
def tr(lang: str, errors: Errors) -> dict[str, str]:
    """``errors`` (a form's field -> message and values) worded in ``lang``, as the staff pages show them beside
    their fields (every staff form's, those other modules install too)."""
    return {k: pages.staff_text(m, lang, **v) for k, (m, v) in errors.items()}


def _one(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0].strip()


def _text(form: dict[str, list[str]], name: str, errors: Errors, *, required: bool = False, max_len: int = 200,
          required_msg: str = "") -> str:
    v = _one(form, name)
    if required and not v:
        errors[name] = (required_msg or N_("Please fill this in."), {})
    elif len(v) > max_len:
        errors[name] = (N_("Too long: at most %(max)s characters."), {"max": max_len})
    return v


# The form refuses, beside the field and in the staff's language, just what publishing would.
SLIDE_MAX_LEN = {k: schema_bound(Slide, k, "max_length") for k in ("title", "time", "place", "note")}
REPEAT_RANGE = (schema_bound(PlaylistItem, "repeat", "ge"), schema_bound(PlaylistItem, "repeat", "le"))


def _slug(form: dict[str, list[str]], name: str, errors: Errors) -> str:
    v = _one(form, name).lower()
    if not SLUG_RE.match(v):
        errors[name] = (N_("Use up to 40 lowercase letters (a-z), digits and hyphens, e.g. kodomo-shokudo."), {})
    return v


# What a Japanese keyboard types (a phone, or a PC in Japanese input mode) as the portal reads it: full-width
# letters, digits and signs (「２０２６／４／１」, 「８０，０００」, 「￥」, 「：」) as their ASCII selves, the
# full-width space as a space, and the marks Japanese input mode puts for "-" and "," (「ー」, 「−」, 「、」).
# Only these: "²" or "٣" stay what they are, refused, never read as a number nobody typed.
_NARROW = {c: unicodedata.normalize("NFKC", chr(c)) for c in range(0xFF01, 0xFF5F)} | {
    0x3000: " ", 0xFFE5: "¥", 0x30FC: "-", 0x2212: "-", 0x2010: "-", 0x3001: ","}


def narrow(text: str) -> str:
    """``text`` with what a Japanese keyboard types written as the portal reads it (:data:`_NARROW`)."""
    return text.translate(_NARROW)


_TYPED_DAY = re.compile(r"([0-9]{4})\s*[-/.年]\s*([0-9]{1,2})\s*[-/.月]\s*([0-9]{1,2})\s*日?", re.ASCII)
_TYPED_NUMBER = re.compile(r"¥?\s*([0-9][0-9, ]*)\s*円?", re.ASCII)


def _day_shaped(text: str) -> str | None:
    m = _TYPED_DAY.fullmatch(narrow(text).strip())
    return f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}" if m else None


def typed_day(text: str) -> str:
    """A date as staff and group editors type it, as the portal stores it (``2026-04-01``): 「2026-04-01」,
    「2026/4/1」, 「2026-4-1」, 「2026.4.1」, 「2026年4月1日」, with full-width digits and spaces
    (:func:`narrow`). Anything else comes back as typed (``20260401`` is left to :func:`_date`). Not checked to
    be a day: 2026/13/1 is 「2026-13-01」, which :func:`_date` refuses."""
    return _day_shaped(text) or text


def typed_number(text: str) -> str:
    """A whole number as it is typed, as its digits: 「８０，０００」, 「80,000円」, 「￥80,000」, 「80 000」
    are ``80000`` (:func:`narrow`; commas and spaces between the digits, a ¥ before and a 円 after). Anything else
    comes back as typed, for the field's message."""
    m = _TYPED_NUMBER.fullmatch(narrow(text).strip())
    return m[1].replace(",", "").replace(" ", "") if m else text


def _int(form: dict[str, list[str]], name: str, errors: Errors, lo: int, hi: int, msg: str) -> int | None:
    value = decimal(typed_number(_one(form, name)), lo, hi, leading_zeros=True)  # "²" or "٣": a message, not a 500
    if value is None:
        errors[name] = (msg, {"lo": lo, "hi": f"{hi:,}"})
    return value


def _date(form: dict[str, list[str]], name: str, errors: Errors, required: bool = False) -> dt.date | None:
    """The date typed in ``name`` (:func:`typed_day`), None if empty; beside the field, what to type if it is not
    one, or that there is no such day (2026/2/30, 2026/13/1)."""
    typed = _one(form, name)
    if not typed:
        if required:
            errors[name] = (N_("Enter a date, e.g. 2026-04-01 or 2026/4/1."), {})
        return None
    shaped = _day_shaped(typed)
    try:
        return dt.date.fromisoformat(shaped or narrow(typed))
    except ValueError:
        errors[name] = (N_("Check the date: that month, or that day of the month, does not exist.") if shaped
                        else N_("Enter a date, e.g. 2026-04-01 or 2026/4/1."), {})
        return None


GROUP_GLYPHS = N_("The kiosks' screens and the movies cannot show these characters: %(chars)s. They would come out "
                  "as empty boxes. Write them another way, as signs do when a letter is missing (高 for 髙, 崎 for 﨑, "
                  "1 for ①, ア for ｱ, (C) for ©, a word for an emoji); the exact spelling can go in the description.")
"""A group's name the kiosks draw (the donation screens, a movie's title card) with characters their font (the
vendored Noto Sans JP subset) has no letter for: each would be an empty box (tofu). Refused beside the name, naming
them; the description, which no kiosk draws, takes the exact spelling (docs/portal.md, "The catalog")."""
TITLE_GLYPHS = N_("The kiosks' screens and the movies cannot show these characters: %(chars)s. They would come out "
                  "as empty boxes. Write them another way, as signs do when a letter is missing (高 for 髙, 崎 for 﨑, "
                  "1 for ①, ア for ｱ, e for é, a word for an emoji); the exact spelling can go in the summary, which "
                  "the public page shows as typed.")
"""The same for a project's titles (Japanese and English: the kiosks' screens draw both, the movie's cards the
Japanese one); the summary, which no kiosk draws, takes the exact spelling."""

SLIDE_GLYPHS = N_("The kiosks' screens cannot show these characters: %(chars)s. They would come out as empty boxes. "
                  "Write them another way (高 for 髙, 1 for ①, ア for ｱ, a word for an emoji).")
"""An event slide's title, time, place or note (the kiosks draw each on the slide) with characters their font has
no letter for."""


def _drawable(v: str, name: str, errors: Errors, msg: str) -> None:
    """Refuse ``v`` beside ``name`` if a kiosk would draw some of its characters as empty boxes
    (:func:`server_sync.glyphs.undrawable`: the font's own letters), naming them (ten at most), as the movie
    maker's captions are."""
    if v and name not in errors and (missing := glyphs.undrawable(v)):
        errors[name] = (msg, {"chars": " ".join(missing[:10])})


def check_group(form: dict[str, list[str]], new: bool) -> tuple[dict[str, Any], Errors]:
    e: Errors = {}
    v = {"id": _slug(form, "id", e) if new else _one(form, "id"),
         "name": _text(form, "name", e, required=True, required_msg=N_("Enter the group's name.")),
         "description": _text(form, "description", e, max_len=4000),
         "contact": _text(form, "contact", e, max_len=500)}
    _drawable(v["name"], "name", e, GROUP_GLYPHS)
    return v, e


def check_project(form: dict[str, list[str]], new: bool, group_choices: list[str]) -> tuple[dict[str, Any], Errors]:
    e: Errors = {}
    v: dict[str, Any] = {
        "id": _slug(form, "id", e) if new else _one(form, "id"),
        "title": _text(form, "title", e, required=True, required_msg=N_("Enter a title.")),
        "title_en": _text(form, "title_en", e),
        "summary": _text(form, "summary", e, max_len=2000),
        "summary_en": _text(form, "summary_en", e, max_len=2000),
        "group_id": _one(form, "group_id"),
        "area": _one(form, "area"),
        "goal_yen": _int(form, "goal_yen", e, 1, 10**12, N_("Enter the goal in yen: a whole number, 1 or more.")),
        "start": _date(form, "start", e),
        "end": _date(form, "end", e),
        "active": _one(form, "active") == "1",
    }
    for name in ("title", "title_en"):
        _drawable(v[name], name, e, TITLE_GLYPHS)
    if v["group_id"] not in group_choices:
        e["group_id"] = (N_("Choose a group."), {})
    if v["area"] not in AREAS:
        e["area"] = (N_("Choose a policy area."), {})
    if v["start"] and v["end"] and v["end"] < v["start"]:
        e["end"] = (N_("The end date is before the start date."), {})
    return v, e


_TIME_TYPED = re.compile(r"^(\d{1,2})(?::(\d{2})|(\d{2}))?$|^(\d{1,2})時(?:(\d{1,2})分)?$|^(\d{1,2})時半$")


def hhmm(typed: str) -> str:
    """A time as staff type it, as the kiosks read it (``HH:MM``): 「09:30」, 「9:30」, 「930」, 「0930」, 「9」 (9:00),
    「9時」, 「9時30分」, 「9時半」 and full-width digits and colon (a Japanese keyboard). A phone's number pad (the
    fields ask for one) has no colon, so 「930」 must do. Anything else comes back as typed, for the message."""
    raw = narrow(typed).strip().replace(" ", "")
    m = _TIME_TYPED.match(raw)
    if m is None:
        return typed
    if m[6] is not None:
        h, mi = int(m[6]), 30
    elif m[4] is not None:
        h, mi = int(m[4]), int(m[5] or 0)
    else:
        h, mi = int(m[1]), int(m[2] or m[3] or 0)
    return f"{h:02d}:{mi:02d}" if (h < 24 and mi < 60) or (h, mi) == (24, 0) else typed


def _window(form: dict[str, list[str]], prefix: str, e: Errors) -> list[dict[str, Any]]:
    """The weekday checkboxes and from/to times of one row: [] (always) or one window."""
    days = [d for d in WEEKDAYS if d in form.get(f"{prefix}days", [])]
    start, end = hhmm(_one(form, f"{prefix}start")), hhmm(_one(form, f"{prefix}end"))
    if not start and not end and len(days) in (0, 7):
        return []
    if not days:
        e[f"{prefix}days"] = (N_("Choose at least one weekday."), {})
    start, end = start or "00:00", end or "24:00"
    for name, val in ((f"{prefix}start", start), (f"{prefix}end", end)):
        if not HHMM.match(val):
            e[name] = (N_("Enter a time like 09:30."), {})
    if f"{prefix}start" not in e and f"{prefix}end" not in e and (start == end or start == "24:00"):
        e[f"{prefix}end"] = (N_("The start and end times are the same."), {})
    elif (f"{prefix}start" not in e and f"{prefix}end" not in e and end < start
          and _one(form, f"{prefix}overnight") != "1"):
        # An end before the start is a window through the night (the kiosks play it so): rarely meant at a center
        # that closes in the evening, and easy to type by swapping the two. Asked once: the form comes back with
        # the question and a hidden "overnight" answer, so the same times published again are taken as meant.
        e[f"{prefix}overnight"] = (N_("The end (%(end)s) is before the start (%(start)s): as it is, this plays "
                                      "overnight, from %(start)s until %(end)s the next morning. If that is what "
                                      "you want, press “Publish to the kiosks” again. To play it during the day, "
                                      "correct the times."), {"start": start, "end": end})
    return [{"days": days or list(WEEKDAYS), "start": start, "end": end}]


def check_schedule(form: dict[str, list[str]], clips: dict[str, str], running: set[str]
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Errors]:
    """Playlist rows ``i0_…`` and event slide rows ``s0_…`` of the schedule form."""
    e: Errors = {}
    items: list[dict[str, Any]] = []
    i = 0
    while f"i{i}_clip" in form:
        p = f"i{i}_"
        clip = _one(form, p + "clip")
        i += 1
        if not clip:
            continue  # an empty row
        if clip not in clips:
            e[p + "clip"] = (N_("This video is no longer stored; choose another."), {})
        project = _one(form, p + "project")
        if project not in running:
            e[p + "project"] = (N_("Choose the project this video is about."), {})
        repeat = _int(form, p + "repeat", e, *REPEAT_RANGE, N_("Enter a number from %(lo)s to %(hi)s.")) if _one(
            form, p + "repeat") else 1
        items.append({"sha256": clip, "name": clips.get(clip, clip[:12]), "project": project,
                      "repeat": repeat or 1, "windows": _window(form, p, e)})
    slides: list[dict[str, Any]] = []
    i = 0
    while f"s{i}_title" in form:
        p = f"s{i}_"
        i += 1
        title = _text(form, p + "title", e, max_len=SLIDE_MAX_LEN["title"])
        if not title and not _one(form, p + "date"):
            continue
        if not title:
            e[p + "title"] = (N_("Enter the event's name."), {})
        day = _date(form, p + "date", e, required=True)
        texts = {k: _text(form, p + k, e, max_len=SLIDE_MAX_LEN[k]) for k in ("time", "place", "note")}
        slide: dict[str, Any] = {"title": title, "date": day.isoformat() if day else "", **texts,
                                 "windows": _window(form, p, e)}
        for k in ("title", "time", "place", "note"):  # what the kiosks draw on the slide
            _drawable(slide[k], p + k, e, SLIDE_GLYPHS)
        slides.append(slide)
    if not items and not e:
        e["playlist"] = (N_("Add at least one video to the playlist."), {})
    return items, slides, e


def already_published(current: dict[str, Any] | None, target: str, by: str, items: list[dict[str, Any]],
                      slides: list[dict[str, Any]]) -> bool:
    """Whether ``current`` (what ``target`` runs now, from :class:`configstore.Changed`) is ``by``'s own version of
    ``target`` with exactly this playlist and these slides: the same form published twice, not a colleague's."""
    if current is None or current.get("target") != target or current.get("published_by") != by:
        return False
    now = current["config"]
    try:
        mine = configdoc.normalised(configdoc.validate({**now, "playlist": items, "slides": slides}))
    except ConfigDocError:
        return False
    return mine.get("playlist") == now.get("playlist") and mine.get("slides") == now.get("slides")


LIST_MISSING = N_("The form arrived without its list of activities (the page may not have loaded completely, or "
                  "sending it was cut off), so nothing was saved or published. The activities in force now are "
                  "shown below: make your change again.")
"""A volunteer or point-rules form with no activity rows at all, not even the empty ones the page always has: a
page cut off while loading or sending, or a script. Read as "no activities", it would take every kiosk's list away
(the kiosks' staff menu then records no volunteer points), so it is refused and nothing is published."""


def removes_every_activity(engine: Engine, acts: list[dict[str, Any]]) -> bool:
    """Whether publishing ``acts`` takes away every activity the kiosks have from the portal now: none sent where
    the version for all kiosks has some. Staff who emptied every row are asked first (the page's "remove them all"
    question) rather than every kiosk's list being wiped by one press."""
    if acts:
        return False
    with engine.connect() as conn:
        cur = configstore.current(conn, target="all")
    return bool(cur and cur["config"].get("activities"))


def check_activities(form: dict[str, list[str]]) -> tuple[list[dict[str, Any]], Errors]:
    e: Errors = {}
    out: list[dict[str, Any]] = []
    i = 0
    while f"a{i}_id" in form:
        p = f"a{i}_"
        i += 1
        if not _one(form, p + "id") and not _one(form, p + "title"):
            continue
        aid = _slug(form, p + "id", e)
        title = _text(form, p + "title", e, required=True, required_msg=N_("Enter the activity's name."))
        title_en = _text(form, p + "title_en", e)
        for name, text in ((p + "title", title), (p + "title_en", title_en)):  # the kiosks' staff menu draws both
            _drawable(text, name, e, SLIDE_GLYPHS)
        pts = _int(form, p + "points", e, 1, 10_000, N_("Enter a number from %(lo)s to %(hi)s."))
        mx = _int(form, p + "max_points", e, 1, 10_000, N_("Enter a number from %(lo)s to %(hi)s."))
        if pts and mx and pts > mx:
            e[p + "max_points"] = (N_("The most points must be at least the usual points."), {})
        out.append({"id": aid, "title": title, "title_en": title_en, "points": pts or 1, "max_points": mx or 1})
    ids = [a["id"] for a in out]
    for n, a in enumerate(out):
        if ids.count(a["id"]) > 1:
            e.setdefault(f"a{n}_id", (N_("This ID is used twice."), {}))
    return out, e


GROUP_GONE: tuple[str, dict[str, Any]] = (
    N_("The group you chose no longer exists (it may have been deleted after this page was opened), so "
       "nothing was saved. Choose another group."), {})
"""A user's group that is not there when the save arrives (checked by the form, and again by staff.py in the
transaction that saves the user)."""


LAST_ADMIN = N_("%(user)s is the only administrator left (another administrator's role was just changed or "
                "removed), so nothing was changed. The portal always keeps at least one administrator.")
"""A demotion or removal of the last administrator (``staff.LastAdmin``)."""


class UserForm(TypedDict):
    """A user's form as :func:`check_user` read it: ``group_id`` None when the form names none (or the role has none),
    ``password`` "" when a change keeps the old one."""

    username: str
    role: str
    group_id: str | None
    password: str


def check_user(form: dict[str, list[str]], new: bool, group_ids: list[str]) -> tuple[UserForm, Errors]:
    e: Errors = {}
    v: UserForm = {"username": _one(form, "username"), "role": _one(form, "role"),
                   "group_id": _one(form, "group_id") or None, "password": (form.get("password") or [""])[0]}
    if new and not staff.USERNAME_RE.match(v["username"]):
        e["username"] = (N_("Use up to 64 letters, digits and . _ @ -, starting with a letter or digit."), {})
    if v["role"] not in staff.ROLES:
        e["role"] = (N_("Choose a role."), {})
    if v["role"] == "editor" and v["group_id"] is None:
        e["group_id"] = (N_("A group editor needs a group."), {})
    elif v["role"] == "editor" and v["group_id"] not in group_ids:
        e["group_id"] = GROUP_GONE
    if v["role"] != "editor":
        v["group_id"] = None
    if (new or v["password"]) and len(v["password"]) < staff.MIN_PASSWORD:
        e["password"] = (N_("The password needs at least %(n)s characters."), {"n": staff.MIN_PASSWORD})
    return v, e


def _seen(form: dict[str, list[str]]) -> int | None:
    """The ``updated_ms`` an edit form was opened at (its hidden ``seen``), or None if it carries none (a script,
    or a page served before the portal had the field: saved as before, over whatever is stored). Anything else
    than a number matches no version, so it is refused as changed: nothing is overwritten on a guess."""
    raw = _one(form, "seen")
    if not raw:
        return None
    value = decimal(raw, 0, 2**62)
    return -1 if value is None else value


# The fields of the group and project edit forms: (name, label as on the form: a gettext id).
GROUP_FIELDS = [("name", N_("Name")), ("description", N_("Description")), ("contact", N_("contact (staff only)"))]
PROJECT_FIELDS = [("title", N_("Title (Japanese)")), ("title_en", N_("Title (English)")),
                  ("summary", N_("Summary (Japanese)")), ("summary_en", N_("Summary (English)")),
                  ("group_id", N_("Group")), ("area", N_("Policy area")), ("goal_yen", N_("Goal (yen)")),
                  ("start", N_("First day")), ("end", N_("Last day")),
                  ("active", N_("Shown on kiosks and the public pages"))]
AS_STORED: dict[str, Callable[[str], str]] = {"start": typed_day, "end": typed_day, "goal_yen": typed_number}
"""The fields :func:`stale_rows` reads as the form's checks read them (:func:`_date`, :func:`_int`) before comparing
with what is stored: 「2026/4/1」 is the stored 2026-04-01 and 「８０，０００円」 80000, so the same form sent twice
(a double tap, a slow line) is saved, not shown as a colleague's change."""


def stored_form(item: dict[str, Any]) -> dict[str, list[str]]:
    """A stored group or project as its edit form's fields, with the version it was read at (hidden ``seen``)."""
    form = {k: ["" if v is None else ("1" if v is True else ("" if v is False else str(v)))]
            for k, v in item.items() if k != "updated_ms"}
    form["seen"] = [str(item["updated_ms"])]
    return form


def stale_rows(fields: list[tuple[str, str]], typed: dict[str, list[str]], stored: dict[str, list[str]],
               lang: str, shown: Callable[[str, str], str] = lambda name, value: value) -> list[dict[str, str]]:
    """The fields where what was typed (``typed``: the refused form) is not what is stored now (``stored``): label,
    typed and stored value as the staff member reads them. Shown beside the form after a save refused as stale,
    so nothing typed is lost without a word."""
    rows = []
    for name, label in fields:
        mine, now = _one(typed, name), _one(stored, name)
        if AS_STORED.get(name, str)(mine) != now:
            rows.append({"name": name, "label": pages.staff_text(label, lang), "typed": shown(name, mine),
                         "now": shown(name, now)})
    return rows


def already_added(checked: dict[str, Any], stored: dict[str, Any] | None, fields: list[tuple[str, str]]) -> bool:
    """Whether ``stored`` (a group or project already under the ID an "add" form chose) holds exactly what the form
    holds (``checked``: its values as checked): the same add sent twice (a double tap, a slow line), whose first copy
    added it. Then the second copy is answered as saved, not as "this ID is already used"."""
    if stored is None:
        return False
    for name, _label in fields:
        mine, now = checked.get(name), stored.get(name)
        mine = mine.isoformat() if isinstance(mine, dt.date) else mine
        if (mine if mine not in (None, "") else None) != (now if now not in (None, "") else None):
            return False
    return True


def check_enroll(form: dict[str, list[str]]) -> tuple[dict[str, Any], Errors]:
    e: Errors = {}
    kid = _one(form, "kiosk_id").lower()
    if not P.KIOSK_ID_RE.match(kid):
        e["kiosk_id"] = (N_("Use 2-40 lowercase letters (a-z), digits and hyphens, e.g. center-1f."), {})
    days = _int(form, "days", e, 1, 90, N_("Enter a number from %(lo)s to %(hi)s.")) if _one(form, "days") else 7
    return {"kiosk_id": kid, "days": days or 7}, e


# Why the catalog refused a save the form's own checks let through (server_sync/catalog.py ``CatalogError``: a
# colleague's group or project stored between the checks and the save), by its code: (field, message).
CATALOG_REFUSALS = {
    "group_name_taken": ("name", N_("Another group already has this name.")),
    "group_id_taken": ("id", N_("This ID is already used.")),
    "project_id_taken": ("id", N_("This ID is already used.")),
    "no_group": ("group_id", N_("Choose a group.")),
}


def catalog_refusal(exc: catalog.CatalogError) -> Errors:
    """``exc`` as the form's error beside its field (every code ``save_group`` and ``save_project`` raise but
    ``stale``, which the pages answer with the stored item: tests/sync/test_staff_words.py holds them together)."""
    field, message = CATALOG_REFUSALS[exc.code]
    return {field: (message, {})}


# --- the routes ---------------------------------------------------------------------------------------
def install(app: FastAPI, engine: Engine, jobs: MediaJobs, upload_limit: int) -> None:  # noqa: C901
    def lang_of(request: Request) -> str:
        return "en" if request.cookies.get(pages.STAFF_LANG_COOKIE) == "en" else "ja"

    def current(request: Request) -> staff.Who | None:
        return staff.who(engine, staff.user_from_cookie(engine, request.cookies.get(staff.COOKIE)))

    def ctx(request: Request, who: staff.Who) -> dict[str, Any]:
        return {"who": who, "csrf": staff.csrf_token(engine, request.cookies.get(staff.COOKIE) or ""),
                "path": request.url.path}

    def html(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    def forbidden(request: Request, who: staff.Who | None, reason: str = "") -> HTMLResponse:
        lang = lang_of(request)
        c = ctx(request, who) if who else {"who": None, "csrf": "", "path": request.url.path}
        return html(pages.staff_page("staff_forbidden.html", lang, reason=reason, **c), 403)

    def not_found(request: Request, who: staff.Who, missing: NotFound) -> HTMLResponse:
        return html(pages.staff_page("staff_not_found.html", lang_of(request), back=missing.back,
                                     back_text=missing.back_text, **ctx(request, who)), 404)

    def page(request: Request, need: str, render: Callable[[staff.Who, str, dict[str, Any]], Response | str]
             ) -> Response:
        who = current(request)
        if who is None:
            return RedirectResponse("/staff/login", status_code=303)
        if not who.may_open(need):
            return forbidden(request, who)
        try:
            out = render(who, lang_of(request), ctx(request, who))
        except Forbidden:
            return forbidden(request, who)
        except NotFound as missing:
            return not_found(request, who, missing)
        return html(out) if isinstance(out, str) else out

    async def read_form(request: Request) -> dict[str, list[str]]:
        declared = decimal(request.headers.get("content-length", "").strip(), leading_zeros=True)
        if declared is not None and declared > FORM_LIMIT:
            return {}
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > FORM_LIMIT:
                return {}
        try:
            return parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=2000)
        except (UnicodeDecodeError, ValueError):
            return {}

    async def post(request: Request, need: str,
                   handle: Callable[[staff.Who, str, dict[str, Any], dict[str, list[str]]], Response | str]
                   ) -> Response:
        form = await read_form(request)
        who = current(request)
        if who is None:
            return RedirectResponse("/staff/login", status_code=303)
        if not staff.csrf_ok(engine, request.cookies.get(staff.COOKIE), _one(form, "csrf")):
            return forbidden(request, who, N_("This form has expired. Go back, reload the page and try again."))
        if not (who.may_open(need) and who.may_write):
            return forbidden(request, who)

        def run() -> Response:
            try:
                out = handle(who, lang_of(request), ctx(request, who), form)
            except Forbidden:
                return forbidden(request, who)
            except NotFound as missing:
                return not_found(request, who, missing)
            return html(out, 422) if isinstance(out, str) else out
        return await run_in_threadpool(run)

    def done(to: str, notice: str) -> Response:
        return RedirectResponse(f"{to}{'&' if '?' in to else '?'}done={quote(notice)}", status_code=303)

    def notice_of(request: Request, lang: str) -> str:
        key = request.query_params.get("done", "")
        return pages.staff_text(NOTICES[key], lang) if key in NOTICES else ""

    def group_names() -> dict[str, str]:
        with engine.connect() as conn:
            return {g["id"]: g["name"] for g in catalog.list_groups(conn)}

    # --- language, dashboard ----------------------------------------------------------------------
    @app.get("/staff/lang", include_in_schema=False)
    def staff_lang(to: str = "ja", next: str = "/staff") -> Response:  # noqa: A002 - the query names it
        target = next if next.startswith("/staff") and "//" not in next else "/staff"
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie(pages.STAFF_LANG_COOKIE, "en" if to == "en" else "ja", max_age=365 * 86400,
                        samesite="lax", path="/")
        return resp

    @app.get("/staff", response_class=HTMLResponse, tags=["staff"])
    def dashboard(request: Request) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> str:
            whole = who.may_open("audit")  # staff and the auditor: the center's totals; an editor: their group's
            d = queries.dashboard(engine, _now_ms(), None if whole else who.group_id)
            d["alarms"] = alarms_in_words(d["alarms"], lang)
            fleet = kiosks_in_words(queries.fleet(engine), lang) if who.is_staff else []
            # An administrator is reminded while the center's contact is unset: the receipt and sign-in pages
            # then cannot say how to reach the center (server_sync/center.py; imported here, as it imports us).
            from server_sync import center
            unset = who.is_admin and center.contact(engine) is None
            # Stored names and titles the kiosks would draw as empty boxes (glyphs.stored_undrawable): for staff the
            # center's, for an editor their group's; the auditor changes nothing, so is not shown them.
            tofu: list[dict[str, Any]] = []
            if who.is_staff or (who.role == "editor" and who.group_id):
                with engine.connect() as conn:
                    tofu = glyphs.stored_undrawable(conn, None if who.is_staff else who.group_id)
            return pages.staff_page("staff_dashboard.html", lang, d=d, kiosks=fleet, contact_unset=unset, tofu=tofu,
                                    group=group_names().get(who.group_id or "", ""), nav="dashboard",
                                    charts=public.dashboard_charts(engine, lang, None if whole else
                                                                   who.group_id or ""), **c)
        return page(request, "everyone", render)

    # --- one's own password (every role: docs/portal.md, "Accounts") ------------------------------------
    password_changed = N_("Your password has been changed. Use the new one from the next time you sign in. "
                          "Anywhere else you were signed in with it has been signed out.")
    # Wrong current passwords count as failed sign-ins of the account (server_sync/ratelimit.py, created in app.py):
    # a stolen session gets no more guesses here than the sign-in page gives.
    login_guard: LoginGuard = app.state.login_guard

    def password_page(who: staff.Who, lang: str, c: dict[str, Any], errors: Errors | None = None,
                      notice: str = "") -> str:
        # The passwords typed are never put back into the page.
        return pages.staff_page("staff_password.html", lang, errors=tr(lang, errors or {}), notice=notice,
                                min_password=staff.MIN_PASSWORD, nav="password", **c)

    @app.get("/staff/password", response_class=HTMLResponse, tags=["staff"])
    def own_password(request: Request) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> str:
            changed = request.query_params.get("done") == "password"
            return password_page(who, lang, c, notice=pages.staff_text(password_changed, lang) if changed else "")
        return page(request, "everyone", render)

    @app.post("/staff/password", response_class=HTMLResponse, tags=["staff"])
    async def own_password_save(request: Request) -> Response:
        # Not ``post``: that refuses a role that may not write, and this page is the auditor's too (ReadOnlyRoles
        # lets it through). It changes the signed-in user's own password only: no field names a user.
        form = await read_form(request)
        who = current(request)
        if who is None:
            return RedirectResponse("/staff/login", status_code=303)
        cookie = request.cookies.get(staff.COOKIE)
        if not staff.csrf_ok(engine, cookie, _one(form, "csrf")):
            return forbidden(request, who, N_("This form has expired. Go back, reload the page and try again."))

        def run() -> Response:
            lang, c = lang_of(request), ctx(request, who)
            now, new, again = ((form.get(k) or [""])[0] for k in ("current", "new", "again"))
            e: Errors = {}
            held = login_guard.check(who.name, None)
            if held is not None:  # refused before any password is checked: nothing changes
                wait = retry_after_header(held.wait_s)
                secs = int(wait["Retry-After"])
                e["current"] = ((N_("You typed a wrong password too many times, so it is locked for now. Try again "
                                    "in %(m)s minutes."), {"m": -(-secs // 60)}) if held.locked else
                                (N_("You typed a wrong current password several times. Wait %(s)s seconds and "
                                    "try again."), {"s": secs}))
                refused = html(password_page(who, lang, c, e), 429)
                refused.headers.update(wait)
                return refused
            if not now:
                e["current"] = (N_("Type the password you use now."), {})
            if len(new) < staff.MIN_PASSWORD:
                e["new"] = (N_("The password needs at least %(n)s characters."), {"n": staff.MIN_PASSWORD})
            elif len(new) > 1024:  # the sign-in form reads no more than that (server_sync/app.py)
                e["new"] = (N_("The password can have at most %(n)s characters."), {"n": 1024})
            elif new != again:
                e["again"] = (N_("The two new passwords are not the same. Type the same new password in both "
                                 "boxes."), {})
            elif now and new == now:
                e["new"] = (N_("The new password is the same as the one you use now. Choose a different one."), {})
            fresh = ""
            if not e:
                try:
                    fresh = staff.change_own_password(engine, who.name, now, new)
                except staff.WrongPassword:
                    login_guard.failed(who.name, None, tries=2)  # the current password and the new one were tried
                    e["current"] = (N_("This is not the password you use now. Type it again."), {})
            if e:
                return html(password_page(who, lang, c, e), 422)
            login_guard.succeeded(who.name)
            # Every session of the user ended with the change, this one too: the browser carries on in a new one
            # (the old cookie, wherever it was copied, signs nobody in), set as the sign-in sets it.
            resp = done("/staff/password", "password")
            set_session_cookie(resp, fresh, request)
            return resp
        return await run_in_threadpool(run)

    # --- kiosks -------------------------------------------------------------------------------------
    def kiosks_page(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]] | None = None,
                    errors: Errors | None = None, code: dict[str, str] | None = None, notice: str = "",
                    revoking: str = "") -> str:
        """``revoking``: the kiosk whose key revocation ``form`` was refused (its form shown open, as typed)."""
        now = _now_ms()
        return pages.staff_page("staff_kiosks.html", lang, kiosks=kiosks_in_words(queries.fleet(engine), lang, now),
                                form=form or {}, errors=tr(lang, errors or {}), code=code, notice=notice, nav="kiosks",
                                now_ms=now, online_ms=queries.ONLINE_MS, revoking=revoking, **c)

    # Staff and the auditor (read only: their page has no form, and ReadOnlyRoles refuses their every POST): the
    # auditor copies a re-keyed kiosk's ``--trust-key SEQ:HEX`` from it (docs/receipts.md, step 5).
    @app.get("/staff/kiosks", response_class=HTMLResponse, tags=["staff"])
    def kiosks_list(request: Request) -> Response:
        return page(request, "audit", lambda w, lg, c: kiosks_page(w, lg, c, notice=notice_of(request, lg)))

    @app.post("/staff/kiosks/code", response_class=HTMLResponse, tags=["staff"])
    async def kiosks_code(request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            v, e = check_enroll(form)
            if e:
                return kiosks_page(who, lang, c, form, e)
            staff.note_target(request, v["kiosk_id"])  # the staff actions record names the kiosk (its ID only)
            code = enroll.issue_code(engine, v["kiosk_id"], v["days"])
            # Shown once, on this page only: the database keeps just its hash.
            return html(kiosks_page(who, lang, c, code={"kiosk_id": v["kiosk_id"], "code": code,
                                                         "days": str(v["days"])}))
        return await post(request, "staff", handle)

    @app.post("/staff/kiosks/{kiosk_id}/group", response_class=HTMLResponse, tags=["staff"])
    async def kiosks_group(kiosk_id: str, request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            grp = _one(form, "kiosk_group").lower()
            e: Errors = {}
            if grp and not SLUG_RE.match(grp):
                e[f"group_{kiosk_id}"] = (N_("Use up to 40 lowercase letters (a-z), digits and hyphens, "
                                             "e.g. kodomo-shokudo."), {})
                return kiosks_page(who, lang, c, form, e)
            with writing(engine) as conn:
                if conn.execute(select(kiosks.c.id).where(kiosks.c.id == kiosk_id)).first() is None:
                    raise Forbidden
                # One statement, so two saves for the same kiosk at once are ordered by the row and the later
                # wins: a delete and an insert let the second insert hit the first's new row (a 500 on PostgreSQL).
                ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(kiosk_info)
                conn.execute(ins.values(kiosk_id=kiosk_id, kiosk_group=grp or None).on_conflict_do_update(
                    index_elements=["kiosk_id"], set_={"kiosk_group": grp or None}))
            return done("/staff/kiosks", "saved")
        return await post(request, "staff", handle)

    @app.post("/staff/kiosks/{kiosk_id}/suspension", response_class=HTMLResponse, tags=["staff"])
    async def kiosks_suspension(kiosk_id: str, request: Request) -> Response:
        """Suspend (uploads held, not counted) or resume a kiosk: docs/sync.md, "Suspending a kiosk"."""
        from server_sync.ingest import resume, suspend

        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            action = _one(form, "action")
            if action not in ("suspend", "resume"):
                raise Forbidden
            with writing(engine) as conn:
                ok = (suspend(conn, kiosk_id, f"suspended by {who.name}") if action == "suspend"
                      else resume(conn, kiosk_id) is not None)
            if not ok:
                raise Forbidden
            return done("/staff/kiosks", "saved")
        return await post(request, "admin", handle)

    # --- groups -------------------------------------------------------------------------------------
    # The groups page opened by an "Edit" link whose group is not there: a note, never an error page.
    GROUP_EDIT_MISSING = N_("There is no group with the ID %(id)s, so there is nothing to change. To change a group, "
                            "press “Edit” beside it in the list above. The form below adds a new group.")
    # A save of a group removed since its form was opened (a script, a catalog tool): nothing saved, the typing kept
    # in the "add" form, which adds it again when saved.
    GROUP_SAVED_GONE = N_("The group %(id)s was removed after this page was opened, so nothing was saved. What you "
                          "typed is kept in the form below: to add it again as a new group, check the ID and press "
                          "“Save”.")

    def groups_page(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, Any] | None = None,
                    errors: Errors | None = None, editing: str | None = None, notice: str = "",
                    stale: list[dict[str, str]] | None = None, gone: str = "") -> str:
        """The groups page. ``editing`` (a group's "Edit" link, ``?edit=<id>``): the form holds that group as saved;
        an ID no group has (an old link, a typo): the list as usual, the empty "add" form and a note saying so.
        ``gone``: the ID of the group ``form`` was saving, removed meanwhile (the "add" form, as typed, and a note)."""
        missing = ""
        gone_note = pages.staff_text(GROUP_SAVED_GONE, lang, id=pages.shown_id(gone)) if gone else ""
        with engine.connect() as conn:
            gs = catalog.list_groups(conn)
            if form is None and editing:
                g = catalog.group(conn, editing)
                if g is None:
                    missing = pages.staff_text(GROUP_EDIT_MISSING, lang, id=pages.shown_id(editing))
                    editing = None
                else:
                    form = stored_form(g)
        return pages.staff_page("staff_groups.html", lang, groups=gs, form=form or {}, errors=tr(lang, errors or {}),
                                editing=editing, edit_missing=missing, gone=gone_note, notice=notice, nav="groups",
                                stale=stale, **c)

    @app.get("/staff/groups", response_class=HTMLResponse, tags=["staff"])
    def groups_list(request: Request, edit: str | None = None) -> Response:
        return page(request, "staff", lambda w, lg, c: groups_page(w, lg, c, editing=edit,
                                                                    notice=notice_of(request, lg)))

    @app.post("/staff/groups", response_class=HTMLResponse, tags=["staff"])
    async def groups_save(request: Request) -> Response:
        def gone_page(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]], gid: str) -> Response:
            """The group being saved is no longer there: nothing saved; the "add" form with what was typed (the ID
            too, when the form would take it) and a note. 409, as for a colleague's change."""
            typed = {k: list(vs) for k, vs in form.items() if k not in ("editing", "seen", "id")}
            typed["id"] = [gid if SLUG_RE.match(gid) else ""]
            return html(groups_page(who, lang, c, typed, gone=gid), 409)

        def group_now(gid: str) -> dict[str, Any] | None:
            with engine.connect() as conn:
                return catalog.group(conn, gid)

        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            new = _one(form, "editing") == ""
            v, e = check_group(form, new)
            with engine.connect() as conn:
                ids = {g["id"]: g["name"] for g in catalog.list_groups(conn)}
            if not new:
                # The ID as stored (the hidden field carries it as it is; it cannot be changed here).
                raw = (form.get("editing") or [""])[0]
                v["id"] = raw if raw in ids else _one(form, "editing")
                if v["id"] not in ids:
                    return gone_page(who, lang, c, form, v["id"])
            if not new or "id" not in e:  # the staff actions record names the group (its ID only: stored, or checked)
                staff.note_target(request, v["id"])
            if new and v["id"] in ids:
                if not e and already_added(v, group_now(v["id"]), GROUP_FIELDS):
                    return done("/staff/groups", "saved")  # this form sent twice: its first copy added the group
                e["id"] = (N_("This ID is already used."), {})
            if any(n == v["name"] and gid != v["id"] for gid, n in ids.items()):
                e["name"] = (N_("Another group already has this name."), {})
            if e:
                return groups_page(who, lang, c, form, e, editing=None if new else v["id"])
            # A stored group keeps its ID even where the form would not take it (an older release or a script
            # wrote it; projects and users refer to it): the fields typed here are checked, the ID is kept.
            g_in = (catalog.GroupIn(**v) if new else
                    catalog.GroupIn(**{**v, "id": "x"}).model_copy(update={"id": v["id"]}))
            try:
                with writing(engine) as conn:
                    catalog.save_group(conn, g_in, seen_ms=None if new else _seen(form), new=new)
            except catalog.StaleEdit:
                # A colleague saved this group since the page was opened: the form shows what is stored now (and
                # its version), what was typed stays beside it; saving again is a deliberate choice.
                with engine.connect() as conn:
                    g = catalog.group(conn, v["id"])
                if g is None:
                    return gone_page(who, lang, c, form, v["id"])
                now = stored_form(g)
                rows = stale_rows(GROUP_FIELDS, form, now, lang)
                if not rows:
                    # What is stored is what was typed (the form sent twice: a double tap, a slow line): saved.
                    return done("/staff/groups", "saved")
                return html(groups_page(who, lang, c, now, editing=v["id"], stale=rows), 409)
            except catalog.CatalogError as exc:
                # A colleague added this name or id a moment ago (after this form's checks): nothing was saved. Or
                # this very form's other copy did (sent twice at once): then it is saved.
                if new and exc.code == "group_id_taken" and already_added(v, group_now(v["id"]), GROUP_FIELDS):
                    return done("/staff/groups", "saved")
                e.update(catalog_refusal(exc))
                return groups_page(who, lang, c, form, e, editing=None if new else v["id"])
            return done("/staff/groups", "saved")
        return await post(request, "staff", handle)

    # --- projects -----------------------------------------------------------------------------------
    def project_row(pid: str) -> dict[str, Any] | None:
        with engine.connect() as conn:
            return catalog.project(conn, pid)

    def projects_page(who: staff.Who, lang: str, c: dict[str, Any], notice: str = "") -> str:
        view = queries.catalog_view(engine)
        mine = [p for p in view["projects"] if who.is_staff or p["group_id"] == who.group_id]
        return pages.staff_page("staff_projects.html", lang, projects=mine, notice=notice, nav="projects", **c)

    def project_form(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, Any], errors: Errors,
                     editing: str | None, stale: list[dict[str, str]] | None = None) -> str:
        names = group_names()
        choices = {g: n for g, n in names.items() if who.may_edit_group(g)}
        return pages.staff_page("staff_project_form.html", lang, form=form, errors=tr(lang, errors), editing=editing,
                                group_choices=choices, areas=AREAS, nav="projects", stale=stale, **c)

    def project_shown(lang: str, names: dict[str, str]) -> Callable[[str, str], str]:
        """A project form field's value as the staff member reads it (a group's name, an area's, yes/no)."""
        def shown(name: str, value: str) -> str:
            if name == "group_id":
                return names.get(value, value)
            if name == "area":
                return pages.area_title(value, lang) or value
            if name == "active":
                return pages.staff_text(N_("yes") if value == "1" else N_("no (inactive)"), lang)
            return value
        return shown

    @app.get("/staff/projects", response_class=HTMLResponse, tags=["staff"])
    def projects_list(request: Request) -> Response:
        return page(request, "any", lambda w, lg, c: projects_page(w, lg, c, notice_of(request, lg)))

    @app.get("/staff/projects/new", response_class=HTMLResponse, tags=["staff"])
    def project_new(request: Request) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> str:
            start = {"active": ["1"], "goal_yen": ["100000"], "group_id": [who.group_id or ""]}
            return project_form(who, lang, c, start, {}, None)
        return page(request, "any", render)

    @app.get("/staff/projects/{project_id}", response_class=HTMLResponse, tags=["staff"])
    def project_edit(project_id: str, request: Request) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> str:
            p = project_row(project_id)
            if p is None:
                raise NotFound(*TO_PROJECTS)
            if not who.may_edit_group(p["group_id"]):
                raise Forbidden
            return project_form(who, lang, c, stored_form(p), {}, project_id)
        return page(request, "any", render)

    @app.post("/staff/projects", response_class=HTMLResponse, tags=["staff"])
    async def project_save(request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            editing = _one(form, "editing") or None
            if editing is not None:
                old = project_row(editing)
                if old is None:
                    raise NotFound(*TO_PROJECTS)
                if not who.may_edit_group(old["group_id"]):
                    raise Forbidden  # another group's project: not even a validation message
            choices = [g for g in group_names() if who.may_edit_group(g)]
            if not who.is_staff and _one(form, "group_id") not in choices:
                raise Forbidden  # an editor posting another group's id
            v, e = check_project(form, editing is None, choices)
            if editing is not None or "id" not in e:  # the staff actions record names the project (its ID only)
                staff.note_target(request, editing or v["id"])
            if editing is None and "id" not in e and (there := project_row(v["id"])) is not None:
                if not e and already_added(v, there, PROJECT_FIELDS):
                    return done("/staff/projects", "saved")  # this form sent twice: its first copy added the project
                e["id"] = (N_("This ID is already used."), {})
            if editing is not None:
                v["id"] = editing
            if e:
                return project_form(who, lang, c, form, e, editing)
            try:
                with writing(engine) as conn:
                    catalog.save_project(conn, catalog.ProjectIn(**v), seen_ms=None if editing is None else _seen(form),
                                         new=editing is None)
            except catalog.StaleEdit:
                # A colleague saved this project since the page was opened: the form shows what is stored now (and
                # its version), what was typed stays beside it; saving again is a deliberate choice.
                now = project_row(v["id"])
                if now is None:
                    raise NotFound(*TO_PROJECTS) from None
                if not who.may_edit_group(now["group_id"]):
                    raise Forbidden from None  # moved to another group meanwhile
                stored = stored_form(now)
                rows = stale_rows(PROJECT_FIELDS, form, stored, lang, project_shown(lang, group_names()))
                if not rows:
                    # What is stored is what was typed (the form sent twice: a double tap, a slow line): saved.
                    return done("/staff/projects", "saved")
                return html(project_form(who, lang, c, stored, {}, editing, rows), 409)
            except catalog.CatalogError as exc:
                # A colleague added this id a moment ago (after this form's checks): nothing was saved. Or this very
                # form's other copy did (sent twice at once): then it is saved.
                if (editing is None and exc.code == "project_id_taken"
                        and already_added(v, project_row(v["id"]), PROJECT_FIELDS)):
                    return done("/staff/projects", "saved")
                return project_form(who, lang, c, form, catalog_refusal(exc), editing)
            return done("/staff/projects", "saved")
        return await post(request, "any", handle)

    # --- media --------------------------------------------------------------------------------------
    def media_rows(who: staff.Who) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            rows = conn.execute(select(media_info).order_by(media_info.c.created_ms.desc())).mappings().all()
            sizes = dict(conn.execute(select(media.c.sha256, media.c.content_type)).all())
            playing = movies.on_kiosks(conn)
        names, titles = group_names(), {p["id"]: p["title"] for p in queries.catalog_view(engine)["projects"]}
        return [{**dict(r), "group": names.get(r["group_id"] or "", ""),
                 "project": titles.get(r["project_id"] or "", ""), "stored": r["sha256"] in sizes,
                 "on_kiosks": r["sha256"] in playing}
                for r in rows if who.may_edit_group(r["group_id"])]

    def media_page(who: staff.Who, lang: str, c: dict[str, Any], notice: str = "") -> str:
        view = queries.catalog_view(engine)
        mine = [p for p in view["projects"] if who.may_edit_group(p["group_id"])]
        return pages.staff_page("staff_media.html", lang, media=media_rows(who), projects=mine, notice=notice,
                                limit_mb=upload_limit // (1024 * 1024), nav="media", **c)

    @app.get("/static/staff-media.js", include_in_schema=False)
    def media_script() -> Response:
        # A file, not an inline script: the Content-Security-Policy allows scripts from the portal only.
        return Response(_MEDIA_JS, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/staff/media", response_class=HTMLResponse, tags=["staff"])
    def media_list(request: Request) -> Response:
        return page(request, "any", lambda w, lg, c: media_page(w, lg, c, notice_of(request, lg)))

    def media_item(sha: str) -> dict[str, Any] | None:
        with engine.connect() as conn:
            row = conn.execute(select(media_info).where(media_info.c.sha256 == sha)).mappings().first()
        return dict(row) if row else None

    def editable(who: staff.Who, sha: str) -> dict[str, Any]:
        """The video ``sha`` if ``who`` may edit (and so remove) it: their group's for an editor, any for staff."""
        m = media_item(sha)
        if m is None:
            raise NotFound(*TO_VIDEOS)
        if not who.may_edit_group(m["group_id"]):
            raise Forbidden
        return m

    @app.get("/staff/media/{sha}", response_class=HTMLResponse, tags=["staff"])
    def media_edit(sha: str, request: Request) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> str:
            m = editable(who, sha)
            mine = [p for p in queries.catalog_view(engine)["projects"] if who.may_edit_group(p["group_id"])]
            return pages.staff_page("staff_media_edit.html", lang, m=m, projects=mine, errors={}, removing=False,
                                    nav="media", **c)
        return page(request, "any", render)

    @app.post("/staff/media/{sha}", response_class=HTMLResponse, tags=["staff"])
    async def media_save(sha: str, request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            m = editable(who, sha)
            e: Errors = {}
            name = _text(form, "name", e, required=True, required_msg=N_("Enter a name for the video."))
            project = _one(form, "project_id") or None
            mine = {p["id"]: p for p in queries.catalog_view(engine)["projects"] if who.may_edit_group(p["group_id"])}
            if project is not None and project not in mine:
                e["project_id"] = (N_("Choose one of your group's projects."), {})
            if e:
                return pages.staff_page("staff_media_edit.html", lang, m={**m, "name": name}, projects=list(
                    mine.values()), errors=tr(lang, e), removing=False, nav="media", **c)
            with writing(engine) as conn:
                conn.execute(media_info.update().where(media_info.c.sha256 == sha).values(
                    name=name, project_id=project, group_id=mine[project]["group_id"] if project else m["group_id"]))
            return done("/staff/media", "saved")
        return await post(request, "any", handle)

    # Removing a video (docs/portal.md, "Removing a video"): a page that says what goes and which kiosk playlists
    # it is taken out of, then its form (movies.take_down). Whoever may edit the video may remove it.
    def removal_page(who: staff.Who, lang: str, c: dict[str, Any], sha: str, changed: bool = False,
                     error: str = "") -> str:
        m = editable(who, sha)
        with engine.connect() as conn:
            using = []
            for t in movies.playlists_with(conn, sha):
                own = (configstore.current(conn, target=t) or {"config": {}})["config"].get("playlist") or []
                using.append({"target": t, "alone": all(it.get("sha256") == sha for it in own),
                              "in_use": configstore.replaced(conn, t) is None})
        project = next((p["title"] for p in queries.catalog_view(engine)["projects"] if p["id"] == m["project_id"]),
                       "")
        return pages.staff_page("staff_media_edit.html", lang, m=m, removing=True, using=using, project=project,
                                changed=changed, error=error, errors={}, projects=[], nav="media", **c)

    @app.get("/staff/media/{sha}/remove", response_class=HTMLResponse, tags=["staff"])
    def media_remove_ask(sha: str, request: Request) -> Response:
        return page(request, "any", lambda w, lg, c: removal_page(w, lg, c, sha))

    @app.post("/staff/media/{sha}/remove", response_class=HTMLResponse, tags=["staff"])
    async def media_remove(sha: str, request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            editable(who, sha)  # 404 or 403 before anything is read from the form
            try:
                using = movies.take_down(engine, sha, who.name, seen=_one(form, "playlists").split())
            except movies.PlaylistsChanged:
                # A colleague put it in (or took it out of) a playlist since the page was opened: nothing is
                # removed; the page lists the playlists as they are now, to confirm again.
                return html(removal_page(who, lang, c, sha, changed=True), 409)
            except ConfigDocError as exc:  # a playlist could not be published again (e.g. no project runs now)
                return removal_page(who, lang, c, sha, error=pages.refusal(exc, lang))
            return done("/staff/media", "removed_from_playlists" if using else "removed")
        return await post(request, "any", handle)

    @app.post("/staff/media-upload", tags=["staff"], responses=NO_ROOM_ANSWER)
    async def media_upload(request: Request) -> Response:
        """The file is the raw body (the page's script sends it with upload progress); the rest are headers."""
        lang = lang_of(request)

        def refuse(status: int, msgid: str, **v: Any) -> JSONResponse:
            # The portal's refusal shape ({"error": code, "reason": text}); the reason is for the uploader.
            code = {401: "signed_out", 403: "forbidden", 413: "too_large", 415: "not_a_video"}.get(status, "invalid")
            return JSONResponse({"error": code, "reason": pages.staff_text(msgid, lang, **v)}, status_code=status)

        who = current(request)
        if who is None:
            return refuse(401, N_("You are signed out. Sign in again."))
        if not staff.csrf_ok(engine, request.cookies.get(staff.COOKIE), request.headers.get("x-csrf-token")):
            return refuse(403, N_("This form has expired. Go back, reload the page and try again."))
        name = unquote(request.headers.get("x-file-name", "")).strip()[:200]
        project_id = request.headers.get("x-project", "")
        ctype = request.headers.get("content-type", "")
        p = project_row(project_id)
        if p is None:
            return refuse(422, N_("Choose the project this video is about."))
        if not who.may_edit_group(p["group_id"]):
            return refuse(403, N_("You can only add videos to your own group's projects."))
        if not name:
            return refuse(422, N_("Choose a video file."))
        if not ctype.startswith(VIDEO_TYPES):
            return refuse(415, N_("This is not a video file (%(type)s). Choose a video, e.g. an MP4 from a phone."),
                          type=ctype or "?")
        declared = decimal(request.headers.get("content-length", "").strip(), leading_zeros=True)
        if declared is not None and declared > upload_limit:
            return refuse(413, N_("The file is too large: at most %(mb)s MB."), mb=upload_limit // (1024 * 1024))
        job_id, path = jobs.spool_path()
        size = 0
        try:
            with open(path, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > upload_limit:
                        raise OverflowError
                    f.write(chunk)
        except OverflowError:
            path.unlink(missing_ok=True)
            return refuse(413, N_("The file is too large: at most %(mb)s MB."), mb=upload_limit // (1024 * 1024))
        except BaseException:  # a dropped connection: nothing half-made stays behind
            path.unlink(missing_ok=True)
            raise
        if size == 0:
            path.unlink(missing_ok=True)
            return refuse(422, N_("The file is empty."))
        await run_in_threadpool(jobs.submit, job_id, path, name=name, group_id=p["group_id"], project_id=project_id,
                                by=who.name)
        # The staff actions record names the upload by its conversion job (the portal's own ID, not the file's name:
        # /staff/actions shows the video's name from it while the portal has the job).
        staff.note_target(request, job_id)
        return JSONResponse({"job": job_id}, status_code=202)

    @app.get("/staff/media-jobs/{job_id}", tags=["staff"])
    def media_job(job_id: str, request: Request) -> Response:
        lang = lang_of(request)
        # The videos page's script shows "reason" to the uploader (server_sync/static/staff-media.js): their words.
        who = current(request)
        if who is None:  # signed out meanwhile (another tab, the session's end): the conversion goes on
            return JSONResponse({"error": "signed_out", "reason": pages.staff_text(N_(
                "You are signed out, so this page cannot follow the conversion any more. The conversion goes on: "
                "sign in again and look for the video on the Videos page."), lang)}, status_code=401,
                headers={"Cache-Control": "no-store"})
        job = jobs.get(job_id)
        if job is None or not who.may_edit_group(job["group_id"]):
            return JSONResponse({"error": "not_found", "reason": pages.staff_text(N_(
                "This page cannot follow the conversion of this video any more (it is no longer your group's, or "
                "the portal no longer has it). Open the Videos page again to see whether the video is there."),
                lang)}, status_code=404, headers={"Cache-Control": "no-store"})
        message = ""
        if job["status"] == "failed" and job["message"] == mediajobs.NO_ROOM:  # the portal's fault, not the file's
            message = pages.staff_text(N_("This video could not be saved because the portal's disk is full or cannot "
                                          "be written to. This is the portal's problem, not your file's. Nothing was "
                                          "saved. Tell the center staff, and try again once they say there is room."),
                                       lang)
        elif job["status"] == "failed" and job["message"] in (mediajobs.STOPPED, mediajobs.INTERRUPTED):
            # Killed (the kernel's OOM killer, an administrator) or cut off by a restart: the file may be fine.
            message = pages.staff_text(N_("The conversion of this video stopped unexpectedly. Your file may not be at "
                                          "fault. Nothing was saved. Try again later; if it stops again, tell the "
                                          "center staff."), lang)
        elif job["status"] == "failed":
            message = pages.staff_text(N_("This video could not be used: %(reason)s. Nothing was saved; try another "
                                          "file (an MP4 from a phone or camera works)."), lang,
                                       reason=pages.staff_text(job["message"], lang) if job["message"] else "?")
        return JSONResponse({"status": job["status"], "progress": job["progress"], "message": message,
                             "sha256": job["sha256"]}, headers={"Cache-Control": "no-store"})

    # --- playlists and schedules ------------------------------------------------------------------
    def group_sizes(conn: Any) -> dict[str, int]:
        """How many kiosks each kiosk group has now (a group no kiosk is in any more: not there)."""
        sizes: dict[str, int] = {}
        for (g,) in conn.execute(select(kiosk_info.c.kiosk_group)):
            if g:
                sizes[g] = sizes.get(g, 0) + 1
        return sizes

    def targets() -> list[dict[str, Any]]:
        """Every target staff may publish for: all kiosks, each kiosk group, each kiosk. A group no kiosk is in any
        more is listed while it has a playlist (``kiosks`` 0, said on the page): the kiosks given that group again
        play it, so staff see it and may prepare it."""
        with engine.connect() as conn:
            ks = [r[0] for r in conn.execute(select(kiosks.c.id).order_by(kiosks.c.id))]
            sizes = group_sizes(conn)
            kgroups = sorted(set(sizes) | {t[len("group:"):] for t in configstore.published_targets(conn)
                                           if t.startswith("group:")})
            out = []
            for t in ["all"] + [f"group:{g}" for g in kgroups] + [f"kiosk:{k}" for k in ks]:
                cur = configstore.current(conn, target=t)
                out.append({"target": t, "version": cur["version"] if cur else None,
                            "created_ms": cur["created_ms"] if cur else None,
                            "by": cur["published_by"] if cur else None,
                            "clips": len(cur["config"]["playlist"]) if cur else 0,
                            # No clips and no slides section: built for point rules, activities or pools, it sets no
                            # playlist, and its kiosks play their own (kiosk/sync/adopt.py sets_playlist).
                            "own": cur is not None and not cur["config"]["playlist"]
                                   and cur["config"].get("slides") is None,
                            "replaced_by": configstore.replaced(conn, t) if cur else None,
                            "kiosks": sizes.get(t[len("group:"):], 0) if t.startswith("group:") else None})
        return out

    def schedule_page(who: staff.Who, lang: str, c: dict[str, Any], target: str,
                      form: dict[str, list[str]] | None = None, errors: Errors | None = None,
                      changed: bool = False) -> str:
        """The target's playlist form: what it runs now, or ``form`` as sent (with ``errors``). The form carries
        the version it was made from (``base``), so a save after a colleague's publish is caught
        (``changed``: the page shows the newest playlist and says so)."""
        if not configstore.TARGET_RE.match(target):
            raise Forbidden
        with engine.connect() as conn:
            cur = configstore.for_target(conn, target)
            # Its own playlist that a later one for all kiosks (or a kiosk's group) replaced: said so on the page.
            replaced_by = configstore.replaced(conn, target)
            members = group_sizes(conn).get(target[len("group:"):], 0) if target.startswith("group:") else None
            running = catalog.pushed_projects(conn)
        clips = media_rows(who)
        base = _one(form, "base") if form is not None else str(cur["version"] if cur else 0)
        if form is None:
            form = {}
            doc = cur["config"] if cur else {}
            for i, it in enumerate(doc.get("playlist", [])):
                w = (it.get("windows") or [{}])[0]
                form.update({f"i{i}_clip": [it["sha256"]], f"i{i}_project": [it.get("project") or ""],
                             f"i{i}_repeat": [str(it.get("repeat", 1))], f"i{i}_days": w.get("days", list(WEEKDAYS)),
                             f"i{i}_start": [w.get("start", "")], f"i{i}_end": [w.get("end", "")],
                             f"i{i}_overnight": ["1" if w.get("end", "24:00") < w.get("start", "") else ""]})
            for i, s in enumerate(doc.get("slides") or []):
                w = (s.get("windows") or [{}])[0]
                form.update({f"s{i}_{k}": [str(s.get(k, ""))] for k in ("title", "date", "time", "place", "note")})
                form.update({f"s{i}_days": w.get("days", list(WEEKDAYS)), f"s{i}_start": [w.get("start", "")],
                             f"s{i}_end": [w.get("end", "")],
                             f"s{i}_overnight": ["1" if w.get("end", "24:00") < w.get("start", "") else ""]})
        n_items = sum(1 for k in form if re.fullmatch(r"i\d+_clip", k))
        n_slides = sum(1 for k in form if re.fullmatch(r"s\d+_title", k))
        return pages.staff_page("staff_schedule.html", lang, target=target, current=cur, form=form,
                                errors=tr(lang, errors or {}), clips=clips, projects=running, weekdays=WEEKDAYS,
                                item_rows=range(n_items + BLANK_ROWS), slide_rows=range(n_slides + BLANK_ROWS),
                                base=base, changed=changed, replaced_by=replaced_by, members=members,
                                nav="playlists", **c)

    @app.get("/staff/playlists", response_class=HTMLResponse, tags=["staff"])
    def playlists(request: Request, target: str | None = None) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> str:
            if target:
                return schedule_page(who, lang, c, target)
            return pages.staff_page("staff_playlists.html", lang, targets=targets(), notice=notice_of(request, lang),
                                    nav="playlists", **c)
        return page(request, "staff", render)

    @app.post("/staff/playlists", response_class=HTMLResponse, tags=["staff"])
    async def playlists_publish(request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            target = _one(form, "target")
            if not configstore.TARGET_RE.match(target):
                raise Forbidden
            staff.note_target(request, target)  # the staff actions record names the target (all, group:, kiosk:)
            with engine.connect() as conn:
                running = {p["id"] for p in catalog.pushed_projects(conn)}
                stored = {r[0] for r in conn.execute(select(media.c.sha256))}
            clips = {m["sha256"]: m["name"] for m in media_rows(who) if m["sha256"] in stored}
            items, slides, e = check_schedule(form, clips, running)
            base = decimal(_one(form, "base"))  # the version the page was made from (none: a form of older pages)
            if not e:
                try:
                    configstore.republish(engine, target=target, by=who.name, base_version=base, playlist=items,
                                          slides=slides)
                except configstore.Changed as exc:
                    if already_published(exc.current, target, who.name, items, slides):
                        # This very form was published a moment ago (sent twice: a double tap, a slow line, a
                        # reload): it is what the kiosks get, so it is no colleague's change to warn about.
                        return done("/staff/playlists", "published")
                    # A colleague published another playlist for this target since the page was opened: nothing
                    # is published; the page shows theirs, to change again.
                    return html(schedule_page(who, lang, c, target, changed=True), 409)
                except ConfigDocError as exc:
                    e["playlist"] = (N_("Could not publish: %(reason)s"), {"reason": pages.refusal(exc, lang)})
            if e:
                return schedule_page(who, lang, c, target, form, e)
            return done("/staff/playlists", "published")
        return await post(request, "staff", handle)

    # --- volunteer activities and points -------------------------------------------------------------
    def volunteer_page(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]] | None = None,
                       errors: Errors | None = None, notice: str = "", changed: bool = False,
                       confirm_empty: bool = False) -> str:
        """The activities form: what all kiosks run, or ``form`` as sent (with ``errors``). It carries the version
        of all kiosks it was made from (hidden ``base``), so a publish after a colleague changed the activities
        is caught (``changed``: the page shows the newest activities and says so). ``confirm_empty``: every row
        was emptied; the page asks whether to take every activity away from the kiosks (its own small form)."""
        with engine.connect() as conn:
            cur = configstore.current(conn, target="all")
        base = _one(form, "base") if form is not None else str(cur["version"] if cur else 0)
        acts = (cur["config"].get("activities") if cur else None) or []
        if form is None:
            form = {}
            for i, a in enumerate(acts):
                form.update({f"a{i}_{k}": [str(a[k])] for k in ("id", "title", "title_en", "points", "max_points")})
        n = sum(1 for k in form if re.fullmatch(r"a\d+_id", k))
        return pages.staff_page("staff_volunteer.html", lang, form=form, errors=tr(lang, errors or {}),
                                rows=range(n + BLANK_ROWS), grants=queries.points_grants(engine), notice=notice,
                                base=base, changed=changed, confirm_empty=confirm_empty, nav="volunteer", **c)

    @app.get("/staff/volunteer", response_class=HTMLResponse, tags=["staff"])
    def volunteer(request: Request) -> Response:
        return page(request, "staff", lambda w, lg, c: volunteer_page(w, lg, c, notice=notice_of(request, lg)))

    @app.post("/staff/volunteer", response_class=HTMLResponse, tags=["staff"])
    async def volunteer_publish(request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            if "a0_id" not in form:  # no rows at all (the page always sends some): a cut-off form, never "none"
                return volunteer_page(who, lang, c, errors={"activities": (LIST_MISSING, {})})
            acts, e = check_activities(form)
            base = decimal(_one(form, "base"))  # the version the page showed (none: a form of older pages)
            if not e and _one(form, "confirm_empty") != "1" and removes_every_activity(engine, acts):
                # Every row emptied: asked first, as one press would take the list away from every kiosk.
                return html(volunteer_page(who, lang, c, form, confirm_empty=True))
            if not e:
                try:
                    # Every target, so a kiosk group's own playlist is not replaced by the all-kiosks one.
                    configstore.republish_everywhere(engine, by=who.name, base_version=base, activities=acts)
                except configstore.Changed:
                    # A colleague changed the activities (here or with the point rules) since the page was
                    # opened: nothing is published; the page shows theirs, to change again.
                    return html(volunteer_page(who, lang, c, changed=True), 409)
                except ConfigDocError as exc:
                    e["activities"] = (N_("Could not publish: %(reason)s"), {"reason": pages.refusal(exc, lang)})
            if e:
                return volunteer_page(who, lang, c, form, e)
            return done("/staff/volunteer", "published")
        return await post(request, "staff", handle)

    # --- users --------------------------------------------------------------------------------------
    def users_page(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, Any] | None = None,
                   errors: Errors | None = None, notice: str = "") -> str:
        return pages.staff_page("staff_users.html", lang, users=staff.list_users(engine), groups=group_names(),
                                roles=staff.ROLES, form=form or {"role": ["staff"], "action": ["add"]},
                                errors=tr(lang, errors or {}),
                                notice=notice, nav="users", **c)

    @app.get("/staff/users", response_class=HTMLResponse, tags=["staff"])
    def users(request: Request) -> Response:
        return page(request, "admin", lambda w, lg, c: users_page(w, lg, c, notice=notice_of(request, lg)))

    @app.post("/staff/users", response_class=HTMLResponse, tags=["staff"])
    async def users_save(request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            # "add" or "change", as the administrator chose on the page: never guessed from whether the name is
            # taken now (a colleague may have added it a moment ago). A form without it (a script, a page served
            # before the field) is read as before: a name not yet taken is an add.
            action = _one(form, "action")
            if action not in ("add", "change"):
                taken = {u["username"] for u in staff.list_users(engine)}
                action = "change" if _one(form, "username") in taken else "add"
            new = action == "add"
            v, e = check_user(form, new, list(group_names()))
            if staff.USERNAME_RE.match(v["username"]):  # the staff actions record names the user (never the password)
                staff.note_target(request, v["username"])
            if not new and v["username"] == who.name and v["role"] != "admin":
                e["role"] = (N_("You cannot take away your own administrator role."), {})
            if not e and new:
                try:
                    staff.create_user(engine, v["username"], v["password"], v["role"], v["group_id"])
                except staff.UserExists:
                    if staff.same_user(engine, v["username"], v["role"], v["group_id"], v["password"]):
                        return done("/staff/users", "saved")  # this form sent twice: its first copy added the user
                    e["username"] = (N_("A user named %(user)s already exists, so nothing was added or changed. "
                                        "To change that user, choose “Change an existing user”."),
                                     {"user": v["username"]})
                except staff.NoSuchGroup:  # the group was deleted since the form was checked
                    e["group_id"] = GROUP_GONE
            elif not e:
                try:
                    changed = staff.update_user(engine, v["username"], v["role"], v["group_id"],
                                                v["password"] or None)
                except staff.NoSuchGroup:  # the group was deleted since the form was checked: nothing saved
                    e["group_id"] = GROUP_GONE
                except staff.LastAdmin:  # the other administrator was demoted or deleted a moment ago
                    e["role"] = (LAST_ADMIN, {"user": v["username"]})
                else:
                    if not changed:
                        e["username"] = (N_("There is no user named %(user)s, so nothing was changed. To add one, "
                                            "choose “Add a new user”."), {"user": v["username"]})
            if e:
                return users_page(who, lang, c, form, e)
            return done("/staff/users", "saved")
        return await post(request, "admin", handle)

    @app.post("/staff/users/{username}/delete", response_class=HTMLResponse, tags=["staff"])
    async def users_delete(username: str, request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            if username == who.name:
                return users_page(who, lang, c, errors={"delete": (N_("You cannot delete yourself."), {})})
            try:
                staff.delete_user(engine, username)
            except staff.LastAdmin:  # the other administrator was demoted or deleted a moment ago
                return users_page(who, lang, c, errors={"delete": (LAST_ADMIN, {"user": username})})
            return done("/staff/users", "deleted")
        return await post(request, "admin", handle)

    # --- the older staff pages, now in the same frame (reconciliation: server_sync/reconcile.py) -----------
    @app.get("/staff/points", response_class=HTMLResponse, tags=["staff"])
    def staff_points(request: Request) -> Response:
        return page(request, "staff", lambda w, lg, c: pages.points_page(queries.points_grants(engine), lg, **c))

    @app.get("/staff/catalog", response_class=HTMLResponse, tags=["staff"])
    def staff_catalog(request: Request) -> Response:
        return page(request, "staff", lambda w, lg, c: pages.catalog_page(queries.catalog_view(engine), lg, **c))

    @app.get("/staff/donations.csv", tags=["staff"])
    def staff_donations_csv(request: Request) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> Response:
            # Streamed as it is read (queries.donations_csv_parts): years of donations never sit in memory whole.
            return StreamingResponse(queries.donations_csv_parts(engine), media_type="text/csv; charset=utf-8",
                                     headers={"Cache-Control": "no-store",
                                              "Content-Disposition": 'attachment; filename="donations.csv"'})
        return page(request, "audit", render)

    @app.post("/staff/logout", tags=["staff"])
    async def staff_logout(request: Request) -> Response:
        form = await read_form(request)
        if not staff.csrf_ok(engine, request.cookies.get(staff.COOKIE), _one(form, "csrf")):
            return forbidden(request, current(request),
                             N_("This form has expired. Go back, reload the page and try again."))
        await run_in_threadpool(staff.end_session, engine, request.cookies.get(staff.COOKIE))
        resp = RedirectResponse("/staff/login?out=1", status_code=303)  # the sign-in page says 「ログアウトしました。」
        resp.delete_cookie(staff.COOKIE, path="/staff")
        return resp

    # Innermost (after the cross-site check in app.py's SecurityMiddleware): no POST of a role that only reads.
    app.user_middleware.append(Middleware(ReadOnlyRoles, current=current, forbidden=forbidden))
    # For the staff pages other modules install (reconcile.py, ...): the same sign-in, roles and CSRF.
    app.state.staff_ui = StaffUI(page=page, post=post, current=current, ctx=ctx, forbidden=forbidden,
                                 not_found=not_found, html=html, done=done, notice_of=notice_of, lang_of=lang_of,
                                 kiosks_page=kiosks_page)


NOTICES = {"saved": N_("Saved."), "published": N_("Published. Kiosks take the new version at their next sync."),
           "deleted": N_("Deleted."),
           "removed": N_("The video is removed. It is no longer on the project's public page, and the portal no "
                         "longer has it."),
           "removed_from_playlists": N_("The video is removed. It is no longer on the project's public page, and the "
                                        "portal no longer has it. The kiosk playlists it was in were sent to the "
                                        "kiosks again without it; each kiosk stops playing it at its next sync."),
           "revoked": N_("The key is revoked: nothing it signs from that record on is counted, and what the portal "
                         "already had from there is no longer counted.")}


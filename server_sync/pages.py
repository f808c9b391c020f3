"""Server-rendered HTML: Jinja2 templates (``server_sync/templates/``), Japanese first, ``?lang=en`` for English.

Each page is a template over the read models in :mod:`server_sync.queries`, rendered with autoescape
on, so a project title or an activity a kiosk sent can never become markup. Text comes from the
portal's gettext catalog (:mod:`server_sync.i18n`): public text in the visitor's language through
``_()``, staff text through ``staff_()`` in the staff member's language (Japanese unless they
switched, :data:`STAFF_LANG_COOKIE`). Small pages, inline CSS; the media page has one small script.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from functools import cache, partial
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from server_sync import i18n
from server_sync.catalog import AREAS
from server_sync.i18n import N_
from server_sync.policy import TZ  # the portal's one zone: a page's times and days are Japan's
from server_sync.wire.configdoc import ConfigDocError

# Trusted (a package file) and inlined in <style>, where escaping ">" would break selectors.
CSS = Markup(resources.files("server_sync").joinpath("static/portal.css").read_text("utf-8"))
# Staff pages are Japanese first too; a staff member's English switch is a cookie (STAFF_LANG_COOKIE).
STAFF_LANG_COOKIE = "kiosk_staff_lang"
# Role and weekday names, as gettext ids (server_sync/staff.py ROLES, the config document's weekdays).
ROLE_NAMES = {"admin": N_("administrator"), "staff": N_("center staff"), "editor": N_("group editor"),
              "auditor": N_("auditor (read only)")}
# The staff header's title, by the signed-in user's role: what these pages are for them ("": nobody signed in, e.g.
# a refusal after the session ended). A group's editor is a volunteer and the auditor is the city's, not staff.
STAFF_HEADINGS = {"": N_("Portal staff"), "admin": N_("Portal staff"), "staff": N_("Portal staff"),
                  "editor": N_("Group editing"), "auditor": N_("Audit (read only)")}
WEEKDAY_NAMES = {"mon": N_("Mon"), "tue": N_("Tue"), "wed": N_("Wed"), "thu": N_("Thu"), "fri": N_("Fri"),
                 "sat": N_("Sat"), "sun": N_("Sun")}
# The language link shows the other language's own name for itself, whatever the page's language.
LANGUAGE_NAMES = {"ja": "日本語", "en": "English"}
_log = logging.getLogger(__name__)


# English month names, fixed: strftime's %b follows the server's locale.
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _date_words(d: date, lang: str) -> str:
    return f"{d.day} {_MONTHS_EN[d.month - 1]} {d.year}" if lang == "en" else f"{d.year}年{d.month}月{d.day}日"


def month_words(d: date, lang: str) -> str:
    """The month of ``d`` as staff read it: 「2026年12月」, "Dec 2026" (pages keep ``YYYY-MM`` for addresses and CSV
    only, as they keep ISO days: docs/portal.md, "Dates and times")."""
    return f"{_MONTHS_EN[d.month - 1]} {d.year}" if lang == "en" else f"{d.year}年{d.month}月"


def when(ms: int | None, lang: str = i18n.DEFAULT) -> str:
    """A moment as people read it, in Japan time: 「2026年12月7日 5:36」, "7 Dec 2026, 05:36"; "–" for none.
    For pages only: CSV, JSON and ``<time datetime>`` keep ISO 8601 (:func:`iso`)."""
    if ms is None:
        return "–"
    t = datetime.fromtimestamp(ms / 1000, TZ)
    if lang == "en":
        return f"{_date_words(t.date(), lang)}, {t:%H:%M}"
    return f"{_date_words(t.date(), lang)} {t.hour}:{t:%M}"


def day(value: int | str | date | None, lang: str = i18n.DEFAULT) -> str:
    """A day as people read it: 「2026年12月7日」, "7 Dec 2026". ``value`` is a moment (ms, its day in Japan) or a
    day (``date`` or ISO "2026-12-07", as business dates and project dates are kept); "" for none, and text that is
    not a day is shown as it is."""
    if value is None or value == "":
        return ""
    if isinstance(value, int):
        return _date_words(datetime.fromtimestamp(value / 1000, TZ).date(), lang)
    if isinstance(value, date):
        return _date_words(value, lang)
    try:
        return _date_words(date.fromisoformat(str(value)), lang)
    except ValueError:
        return str(value)


def iso(ms: int | None) -> str:
    """A moment for machines (``<time datetime>``): ISO 8601 in Japan time, "2026-12-07T05:36:00+09:00"."""
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, TZ).isoformat(timespec="seconds")


def yen(v: int | None) -> str:
    return f"¥{(v or 0):,}"


def _title(item: dict[str, Any], lang: str) -> str:
    """A project's or a policy area's title in ``lang`` (the catalog and queries give both)."""
    return str(item["title_en"] if lang == "en" else item["title"])


def area_title(area: str | None, lang: str) -> str:
    """A policy area's name in ``lang``; empty for a project the catalog does not know."""
    ja, en = AREAS.get(area or "", ("", ""))
    return en if lang == "en" else ja


# Why the publisher of the kiosks' configuration refused (server_sync/configstore.py, server_sync/pointrules.py, the
# document's own checks in server_sync/wire/configdoc.py), in words for the staff page that shows "Could not
# publish: %(reason)s": by the refusal's code, never by its English (which is for the log and the command line).
# Setting up a new center in the usual order (point rules, a sponsor pool, volunteering before the first project)
# meets the first.
REFUSAL_INVALID = N_("the kiosks' settings kept on the portal are not right, so nothing was published. Tell the "
                     "portal's administrator (the portal's log says what is wrong).")
_RULES_SET_THEM = N_("the point rules in force set the volunteer activities, their points and the points for each "
                     "¥100 given. Change them on the Point rules page (administrators can).")
REFUSALS = {
    "no_running_project": N_("there is no running project yet. Add one on the Projects page (shown, and within its "
                             "dates), then save this again."),
    "activities_differ_from_rules": _RULES_SET_THEM,
    "points_rate_differs_from_rules": _RULES_SET_THEM,
    "media_missing": N_("a video in a kiosk playlist is no longer kept on the portal. Open the Playlists page, "
                        "choose the videos again and publish, then save this again."),
    "playlist_unknown_project": N_("a video in the playlist is for a project that is no longer running. Reload "
                                   "the page, choose the video's project again and publish."),
    "duplicate_activities": N_("two volunteer activities have the same ID. Give each its own ID and save again."),
    "rules_saved_meanwhile": N_("another administrator saved the point rules at the same moment. Reload the page, "
                                "look at the rules in force and save again."),
    # Only a document written by hand (`kiosk-portal config-set`) or a program meets these.
    "duplicate_projects": REFUSAL_INVALID, "preset_not_positive": REFUSAL_INVALID,
    "default_not_preset": REFUSAL_INVALID, "preset_over_max": REFUSAL_INVALID, "not_a_document": REFUSAL_INVALID,
    "bad_target": REFUSAL_INVALID, "not_a_date": REFUSAL_INVALID, "invalid": REFUSAL_INVALID,
}
# "too_many": a list of the document over its bound; ``what`` is the list's key.
TOO_MANY = N_("there are too many %(what)s: at most %(max)s. Remove some, then save again.")
TOO_MANY_WHAT = {"playlist": N_("videos in the playlist"), "slides": N_("event slides"),
                 "activities": N_("volunteer activities"), "projects": N_("running projects"),
                 "pools": N_("sponsor pools")}


def refusal(exc: ConfigDocError, lang: str = i18n.DEFAULT) -> str:
    """Why the publisher refused (``exc``), in the staff member's words in ``lang``: from its code and variables.
    A code this table does not know says :data:`REFUSAL_INVALID` rather than the English. The English goes to the
    portal's log, where an administrator reads it."""
    _log.info("publishing refused (%s): %s", exc.code, exc)
    t = i18n.translations(lang)
    what = TOO_MANY_WHAT.get(str(exc.params.get("what"))) if exc.code == "too_many" else None
    if what is not None and isinstance(exc.params.get("max"), int):
        return t.gettext(TOO_MANY) % {"what": t.gettext(what), "max": f"{exc.params['max']:,}"}
    return t.gettext(REFUSALS.get(exc.code, REFUSAL_INVALID))


def staff_text(message: str, lang: str = i18n.DEFAULT, **variables: Any) -> str:
    """Staff text in ``lang``, formatted like Jinja's newstyle ``_()`` (a staff page's language is the
    staff member's choice, not the visitor's ``?lang=``)."""
    text = i18n.translations(lang).gettext(message)
    return text % variables if variables else text  # a message with no placeholders may hold a bare "%"


def both_languages(message: str, **variables: Any) -> Markup:
    """'日本語 / English', for the login page: nobody has said yet which language they read. Japanese first (the
    center's staff and volunteers read Japanese; the portal is Japanese-first), each part marked as its language
    for a screen reader (WCAG 3.1.2)."""
    return Markup(" / ").join(Markup('<span lang="{}">{}</span>').format(lg, i18n.translations(lg).gettext(message)
                                                                       % variables) for lg in ("ja", "en"))


@cache
def environment(lang: str) -> Environment:
    """One environment per language: ``install_gettext_translations`` binds ``_()`` for the whole environment."""
    env = Environment(
        loader=PackageLoader("server_sync"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True, lstrip_blocks=True,
        undefined=StrictUndefined,  # a misspelt field is an error, not an empty cell
        auto_reload=False,  # templates are package files: no stat() per request
    )
    # newstyle: _("Points used for %(project)s", project=p) formats after translating, escaping the values.
    # A count is a plural message, public and staff text alike: ngettext("%(count)s donation",
    # "%(count)s donations", n, count=n) ("1 donation", "2 donations"; Japanese has one form, nplurals=1).
    # Python code: i18n.ntext().
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(when=partial(when, lang=lang), day=partial(day, lang=lang), iso=iso, yen=yen)
    env.globals.update(lang=lang, other="en" if lang == "ja" else "ja", language_names=LANGUAGE_NAMES, css=CSS,
                       title=partial(_title, lang=lang), area_title=partial(area_title, lang=lang),
                       staff_=partial(staff_text, lang=lang), both=both_languages, role_names=ROLE_NAMES,
                       staff_headings=STAFF_HEADINGS,
                       weekday_names=WEEKDAY_NAMES, area_names=AREAS)
    return env


def _render(template: str, lang: str, path: str = "/", staff: bool = False, **context: Any) -> str:
    """``path`` is where the language link points (with the other ``?lang=``)."""
    return environment(lang).get_template(template).render(path=path, staff=staff, **context)


# --- public -----------------------------------------------------------------------------------------
def index(tot: dict[str, Any], areas: list[dict[str, Any]], projects: list[dict[str, Any]],
          recent: list[dict[str, Any]], lang: str, charts: list[dict[str, Any]] | None = None,
          movies: dict[str, dict[str, Any]] | None = None) -> str:
    """``charts`` and ``movies``: server_sync/public.py (each project's movie and poster frame)."""
    titles = {p["id"]: _title(p, lang) for p in projects}
    return _render("index.html", lang, "/", tot=tot, areas=areas, projects=projects, recent=recent, titles=titles,
                   charts=charts or [], movies=movies or {})


def area_page(a: dict[str, Any], projects: list[dict[str, Any]], recent: list[dict[str, Any]], lang: str,
              charts: list[dict[str, Any]] | None = None, movies: dict[str, dict[str, Any]] | None = None) -> str:
    titles = {p["id"]: _title(p, lang) for p in projects}
    return _render("area.html", lang, f"/a/{a['area']}", a=a, projects=projects, recent=recent, titles=titles,
                   charts=charts or [], movies=movies or {})


def project_page(p: dict[str, Any], recent: list[dict[str, Any]], lang: str,
                 charts: list[dict[str, Any]] | None = None, movie: dict[str, Any] | None = None) -> str:
    return _render("project.html", lang, f"/p/{p['id']}", p=p, recent=recent, charts=charts or [], movie=movie)


def not_found_page(lang: str) -> str:
    """An unknown project, policy area or address (server_sync/app.py). The language link goes to the front page,
    as there is nothing here to switch."""
    return _render("not_found.html", lang)


def shown_id(given: str) -> str:
    """An ID from a request as a note shows it: whole, or its first 60 characters and "…" (an address may hold
    anything): the groups' and the pools' pages, for an ID no row has."""
    return given if len(given) <= 60 else given[:60] + "…"


def db_fault_page(kind: str, lang: str, *, posted: bool = False, action: str = "",
                  form: list[tuple[str, str]] | None = None, home: str = "/", lead: str = "") -> str:
    """What a browser gets when the portal's database cannot serve its request (server_sync/app.py): ``kind`` is
    ``full`` (507) or ``read_only`` (503), not worth retrying until someone fixes the disk, or ``busy`` (503, worth
    another try in a moment). ``posted``: a form was sent (its content "was not saved"); ``form``: its fields as
    sent (a browser's urlencoded form), shown back and sent again by a button to ``action``. A password is neither
    shown nor put back into the page; the CSRF token goes back hidden, not shown. ``lead``: a storage fault's first
    words, already in ``lang`` (the JSON answer's reason: server_sync/mediajobs.py ``NO_ROOM_PAGE``)."""
    fields = [(k, v) for k, v in form or [] if not _secret(k)]
    shown = [(k, v) for k, v in fields if k != "csrf" and v.strip()]
    return _render("db_fault.html", lang, "/", kind=kind, posted=posted, action=action, fields=fields, shown=shown,
                   secret=len(fields) < len(form or []), lead=lead, home=home)


def _secret(name: str) -> bool:
    """A field never shown back nor carried in the page (a password, a PIN, a secret or token of any kind)."""
    return any(w in name.lower() for w in ("password", "pin", "secret", "token"))


def receipt_page(r: dict[str, Any] | None, code: str, projects: list[dict[str, Any]], lang: str,
                 center: dict[str, str] | None = None) -> str:
    """``projects`` (queries.projects) gives each donation's project title and policy area; ``center``: the center's
    contact for the next step of a receipt that does not check (server_sync/center.py ``contact``; None: not set)."""
    titles = {p["id"]: _title(p, lang) for p in projects}
    areas = {p["id"]: p["area"] for p in projects}
    return _render("receipt.html", lang, f"/r/{code}", r=r, titles=titles, areas=areas, center=center)


# --- staff ------------------------------------------------------------------------------------------
def login_page(failed: bool = False, refused: str = "", username: str = "", *, signed_out: bool = False,
               center: dict[str, str] | None = None) -> str:
    """The sign-in form, in the public (Japanese) layout, as it is reached from the public site.

    ``refused``: why this attempt was not even checked (too many failures: server_sync/ratelimit.py).
    ``username``: what was typed, kept in its box after a refusal (the password never is). ``signed_out``: the user
    has just signed out (said so at the top). ``center``: the center's contact (server_sync/center.py ``contact``;
    None: not set), shown as text beside "forgot your password? ask the center staff"."""
    return _render("login.html", i18n.DEFAULT, failed=failed, refused=refused, username=username,
                   signed_out=signed_out, center=center)


def staff_page(template: str, lang: str = i18n.DEFAULT, **context: Any) -> str:
    """A staff page in the staff member's language; ``context`` must carry ``who`` and ``csrf``."""
    context.setdefault("nav", "")
    return _render(template, lang, staff=True, **context)


def points_page(items: list[dict[str, Any]], lang: str = i18n.DEFAULT, **ctx: Any) -> str:
    return staff_page("points.html", lang, items=items, nav="volunteer", **ctx)


def catalog_page(view: dict[str, Any], lang: str = i18n.DEFAULT, **ctx: Any) -> str:
    """Groups (with their contact: staff only) and every project with its area, dates and totals."""
    return staff_page("catalog.html", lang, groups=view["groups"], projects=view["projects"], nav="projects", **ctx)

"""The staff actions record: who did what on the staff pages, and when (docs/portal.md, "Staff actions record").

Every form a signed-in user sends under ``/staff/`` (a POST of any of the staff pages: removing a video, suspending a
kiosk, publishing a playlist, changing a user, the point rules, a pool...) is recorded by :class:`StaffActions`, one
ASGI middleware for all of them, once the portal has answered it: the portal's time, the user (read from the session
before the action, so a sign-out or a password change is still theirs), the route's template
(``/staff/media/{sha}/remove``), what it was done to (its path parameters: the video, the kiosk, the user, the movie
job; for a form whose address names nothing, the ID its handler noted with :func:`server_sync.staff.note_target`:
the user, group, project, pool or playlist target saved, the media job of an uploaded video or a new movie, the
provider and days of a provider file imported) and the HTTP status of the answer (below 400: done).
Signing in is recorded by the sign-in route (server_sync/app.py, :func:`sign_in`): the user's name when it
succeeded, and when it failed only if a user of that name exists, else ``unknown`` (a password typed into the name
box must not be kept). A form's content is never recorded: no password, no CSRF token, no file, no card or donor
token, no text typed into a field (but the ID of what it saved, once the form's own check took it).

The row is written in its own short transaction right after the action's; a failure to write it is logged and the
action's answer goes out as it was. Rows older than :data:`KEEP_MS` (three years) are deleted at each start
(:func:`prune`). Administrators read the newest :data:`SHOWN` on ``/staff/actions``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.routing import Match, Route

from server_sync import operator, pages, staff
from server_sync.db import (
    groups,
    kiosks,
    media_info,
    media_jobs,
    projects,
    sponsor_pools,
    staff_actions,
    staff_users,
    writing,
)
from server_sync.i18n import N_
from server_sync.reconcile import PROVIDER_NAMES

_log = logging.getLogger(__name__)

KEEP_MS = 3 * 366 * 86_400_000
"""How long a row is kept (three years, a day or two more): older rows are deleted at start (:func:`prune`)."""
SHOWN = 200
"""How many of the newest actions ``/staff/actions`` lists."""
UNKNOWN = "unknown"
"""The user of a failed sign-in whose name no user has (what was typed is not kept: it may be a password)."""
LOGIN = "/staff/login"
SUSPENSION = "/staff/kiosks/{kiosk_id}/suspension"
SUSPENDED, RESUMED = SUSPENSION + "#suspend", SUSPENSION + "#resume"
"""A kiosk's suspension form does either: the row says which, from the kiosk's state once it is done."""

WORDS: dict[str, str] = {
    LOGIN: N_("Signed in"),
    "/staff/logout": N_("Signed out"),
    "/staff/password": N_("Changed their own password"),
    "/staff/users": N_("Added or changed a user"),
    "/staff/users/{username}/delete": N_("Deleted a user"),
    "/staff/media/{sha}/remove": N_("Removed a video"),
    "/staff/media/{sha}": N_("Changed a video's name or project"),
    "/staff/media-upload": N_("Added a video"),
    "/staff/playlists": N_("Published a playlist"),
    "/staff/volunteer": N_("Published the volunteer activities"),
    SUSPENDED: N_("Suspended a kiosk"),
    RESUMED: N_("Resumed a kiosk"),
    SUSPENSION: N_("Suspended or resumed a kiosk"),
    "/staff/kiosks/{kiosk_id}/group": N_("Changed which kiosk group a kiosk is in"),
    "/staff/kiosks/{kiosk_id}/revocation": N_("Revoked a kiosk's key"),
    "/staff/kiosks/code": N_("Issued a kiosk enrollment code"),
    "/staff/point-rules": N_("Changed the point rules"),
    "/staff/pools": N_("Added or changed a sponsor pool"),
    "/staff/groups": N_("Added or changed a group"),
    "/staff/projects": N_("Added or changed a project"),
    "/staff/center": N_("Changed the center's contact"),
    "/staff/reconciliation/provider": N_("Imported the provider's settlement file"),
    "/staff/movies": N_("Started making a movie"),
    "/staff/movies/{job_id}/publish": N_("Published a movie"),
    "/staff/movies/{job_id}/retry": N_("Made a movie again"),
    "/staff/movies/{job_id}/discard": N_("Discarded a movie"),
}
"""What each action was, in words (an action without words shows its route's template)."""
FAILED_LOGIN = N_("Sign-in failed")
NO_SUCH_USER = N_("(a name no user has)")
"""How the page says :data:`UNKNOWN`: in the page's language, not the stored marker."""
VIDEO_ACTIONS = ("/staff/media/{sha}/remove", "/staff/media/{sha}")
"""The actions whose target is a video's sha256: the page shows its name while the portal has it."""
JOB_ACTIONS = ("/staff/media-upload", "/staff/movies", "/staff/movies/{job_id}/publish",
               "/staff/movies/{job_id}/retry", "/staff/movies/{job_id}/discard")
"""The actions whose target is a media job's ID (an uploaded video's conversion, a movie of the movie maker): the
page shows the name of its video (or, not made yet, of the job) beside the ID while the portal has the job."""
NAMED_ACTIONS = {"/staff/groups": "group", "/staff/pools": "pool", "/staff/projects": "project"}
"""The actions whose target is a group's, a sponsor pool's or a project's ID: the page shows its name beside it
while the portal has it (the ID alone once it is gone)."""
PROVIDER_IMPORT = "/staff/reconciliation/provider"
"""Its target is the provider and the first and last business days of the file imported (``square 2026-12-01
2026-12-07``, server_sync/reconcile.py): the page says it as the reconciliation page does (Square, the days)."""
VIDEO_GONE = N_("a video the portal no longer has")
"""How the page names a video since removed (its name went with it), beside the start of its sha256."""
SHORT_SHA = 8
"""How many of its sha256's first characters name a video on the page (the whole is in the cell's title)."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def record(engine: Engine, username: str, action: str, target: str, status: int) -> None:
    """One row, in its own short transaction. A failure (a full disk, a database gone a moment) is logged, never
    raised: the action it records is done, and its answer must not become an error page."""
    try:
        with writing(engine) as conn:
            if action == SUSPENSION and status < 400:
                suspended = conn.execute(select(kiosks.c.suspended_ms).where(kiosks.c.id == target)).scalar()
                action = SUSPENDED if suspended is not None else RESUMED
            conn.execute(staff_actions.insert().values(at_ms=_now_ms(), username=username[:64], action=action[:100],
                                                       target=target[:200], status=status))
    except Exception:  # noqa: BLE001 - the record is a note of the action, never the action's failure
        _log.warning("staff action not recorded: %s %s by %s (answered %s)", action, target, username, status,
                     exc_info=True)


def sign_in(engine: Engine, username: str, ok: bool | staff.LoginResult, status: int) -> None:
    """A sign-in, done (``ok``) or refused: the name only if it is a user's (:data:`UNKNOWN` otherwise). ``ok``:
    what :func:`server_sync.staff.check_login` answered (it says whether the name is a user's: not looked up again),
    or a bool (no password checked, an empty box; or :func:`server_sync.staff.login`'s: the name is looked up here)."""
    name = username
    if isinstance(ok, staff.LoginResult):
        name = username if ok.ok or ok.known else UNKNOWN
    elif not ok:
        try:
            with engine.connect() as conn:
                known = username != "" and conn.execute(
                    select(staff_users.c.username).where(staff_users.c.username == username)).first() is not None
        except Exception:  # noqa: BLE001 - as in record
            known = False
        name = username if known else UNKNOWN
    record(engine, name, LOGIN, "", status)


def prune(engine: Engine, now_ms: int | None = None) -> int:
    """Delete the rows older than :data:`KEEP_MS`; how many (create_app calls this at each start)."""
    cut = (_now_ms() if now_ms is None else now_ms) - KEEP_MS
    with writing(engine) as conn:
        return int(conn.execute(staff_actions.delete().where(staff_actions.c.at_ms < cut)).rowcount or 0)


def newest(engine: Engine, limit: int = SHOWN) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(staff_actions.c.at_ms, staff_actions.c.username, staff_actions.c.action,
                                   staff_actions.c.target, staff_actions.c.status)
                            .order_by(staff_actions.c.id.desc()).limit(limit)).mappings().all()
    return [dict(r) for r in rows]


def target_names(engine: Engine, rows: list[dict[str, Any]], lang: str) -> dict[tuple[str, str], str]:
    """The name, now, of each video, group, sponsor pool, project and media job ``rows`` name (:data:`VIDEO_ACTIONS`,
    :data:`NAMED_ACTIONS`, :data:`JOB_ACTIONS`), keyed ``(kind, ID)``: a video's name (by its sha256), a group's
    name, a pool's sponsor and a project's title (in English where it has one and ``lang`` is English), a job's
    video's name (its job's name until the video is made). What the portal no longer has is not there (a removed
    video's name went with it)."""
    wanted: dict[str, set[str]] = {}
    for r in rows:
        kind = ("video" if r["action"] in VIDEO_ACTIONS else "job" if r["action"] in JOB_ACTIONS
                else NAMED_ACTIONS.get(r["action"]))
        if kind is not None and r["target"]:
            wanted.setdefault(kind, set()).add(r["target"])
    if not wanted:
        return {}
    english = lang == "en"
    out: dict[tuple[str, str], str] = {}
    with engine.connect() as conn:
        if ids := sorted(wanted.get("video", ())):
            out.update((("video", i), n) for i, n in conn.execute(
                select(media_info.c.sha256, media_info.c.name).where(media_info.c.sha256.in_(ids))))
        if ids := sorted(wanted.get("group", ())):
            out.update((("group", i), n) for i, n in conn.execute(
                select(groups.c.id, groups.c.name).where(groups.c.id.in_(ids))))
        if ids := sorted(wanted.get("pool", ())):
            out.update((("pool", i), en if english and en else ja) for i, ja, en in conn.execute(
                select(sponsor_pools.c.id, sponsor_pools.c.sponsor, sponsor_pools.c.sponsor_en)
                .where(sponsor_pools.c.id.in_(ids))))
        if ids := sorted(wanted.get("project", ())):
            out.update((("project", i), en if english and en else ja) for i, ja, en in conn.execute(
                select(projects.c.id, projects.c.title, projects.c.title_en).where(projects.c.id.in_(ids))))
        if ids := sorted(wanted.get("job", ())):
            out.update((("job", i), video or name) for i, name, video in conn.execute(
                select(media_jobs.c.id, media_jobs.c.name, media_info.c.name)
                .select_from(media_jobs.outerjoin(media_info, media_info.c.sha256 == media_jobs.c.sha256))
                .where(media_jobs.c.id.in_(ids))))
    return out


def provider_words(target: str, lang: str) -> str:
    """A provider file's import (:data:`PROVIDER_IMPORT`) as the reconciliation page says it: 「Square 2026年12月1日
    – 2026年12月7日」; "" for a target not of that shape."""
    parts = target.split(" ")
    if len(parts) != 3:
        return ""
    try:
        first, last = date.fromisoformat(parts[1]), date.fromisoformat(parts[2])
    except ValueError:
        return ""
    return f"{PROVIDER_NAMES.get(parts[0], parts[0])} {pages.day(first, lang)} – {pages.day(last, lang)}"


def shown(rows: list[dict[str, Any]], engine: Engine, lang: str) -> list[dict[str, Any]]:
    """``rows`` (:func:`newest`) as the page shows them: the action in words, the user (a name no user has in
    words), and what it was done to: a video by its name (``target_name``) beside the start of its sha256
    (``target_code``; the whole, ``target_title``, is in the cell's title), or, removed since, as :data:`VIDEO_GONE`
    (``target_gone``); a group, a pool, a project or a media job by its name while the portal has it, beside its ID
    (the ID alone once gone); a provider file's import by the provider and its days; anything else by its ID."""
    no_such = pages.staff_text(NO_SUCH_USER, lang)
    names = target_names(engine, rows, lang)
    out = []
    for r in rows:
        target, action = r["target"], r["action"]
        video = action in VIDEO_ACTIONS and bool(target)
        name, code, title = "", target, ""
        if video:
            name = names.get(("video", target)) or pages.staff_text(VIDEO_GONE, lang)
            code, title = target[:SHORT_SHA] + "…", target
        elif target and action == PROVIDER_IMPORT and (said := provider_words(target, lang)):
            name, code = said, ""
        elif target:
            kind = "job" if action in JOB_ACTIONS else NAMED_ACTIONS.get(action, "")
            name = names.get((kind, target), "")
        out.append({**r, "what": words(action, r["status"], lang), "ok": r["status"] < 400,
                    "who": no_such if r["username"] == UNKNOWN else r["username"], "video": video,
                    "target_name": name, "target_gone": video and ("video", target) not in names,
                    "target_code": code, "target_title": title})
    return out


def words(action: str, status: int, lang: str) -> str:
    """The action in ``lang``'s words: a refused sign-in is "Sign-in failed"; an action without words, its template."""
    if action == LOGIN and status >= 400:
        return pages.staff_text(FAILED_LOGIN, lang)
    return pages.staff_text(WORDS[action], lang) if action in WORDS else action


class StaffActions:
    """Records every form a signed-in user sends under /staff/ (but the sign-in's: its route records it), once the
    portal has answered it: before the answer's first byte goes out, so whoever sees the answer finds the row.

    Pure ASGI: the body is never read. The route is found as the router finds it (``routes``: the app's), so a
    request refused before its route runs (an auditor's form: operator.ReadOnlyRoles, inside this one) is recorded
    under its route too; a POST to an address no route has is not recorded, nor one without a live session (it did
    nothing in anyone's name). The user, read once (``current``: operator's), is kept in the request's state
    (:data:`server_sync.staff.BEFORE_STATE`) for ReadOnlyRoles."""

    def __init__(self, app: Any, engine: Engine, routes: Callable[[], list[Any]],
                 current: Callable[[Request], staff.Who | None]):
        self.app, self.engine, self.routes, self.current = app, engine, routes, current

    def _route(self, scope: dict[str, Any]) -> tuple[str, str] | None:
        for route in self.routes():
            if isinstance(route, Route):
                match, child = route.matches(scope)
                if match == Match.FULL:
                    params = child.get("path_params", {})
                    return route.path, " ".join(str(v) for v in params.values())
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if (scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS")
                or not path.startswith("/staff/") or path == LOGIN):
            return await self.app(scope, receive, send)
        request = Request(scope)
        cookie = request.cookies.get(staff.COOKIE)
        # The request's state, made here so the route's Request writes its note (staff.note_target) where this reads.
        state: dict[str, Any] = scope.setdefault("state", {})
        who = None
        if cookie:
            try:  # before the action: signing out or a new password ends the session it names
                who = await run_in_threadpool(self.current, request)
            except Exception:  # noqa: BLE001 - the route meets the same fault and answers it (nothing kept here:
                who = None     # ReadOnlyRoles reads it again and meets the fault itself)
            else:  # read once: operator.ReadOnlyRoles, inside this one, takes it from here
                state[staff.BEFORE_STATE] = (cookie, who)
        if who is None:
            return await self.app(scope, receive, send)
        name: str = who.name
        done = False

        async def note(status: int) -> None:
            nonlocal done
            done = True
            found = self._route(scope)
            if found is not None:  # the address's IDs, or else the one the route's handler noted (staff.note_target)
                target = found[1] or str(state.get(staff.ACTION_TARGET) or "")
                await run_in_threadpool(record, self.engine, name, found[0], target, status)

        async def answer(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and not done:
                await note(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, answer)
        except Exception:
            if not done:
                await note(500)
            raise


def install(app: FastAPI, engine: Engine) -> None:
    """The middleware, and ``/staff/actions`` (administrators; after operator.install: it uses its page helper).
    Added before operator's ReadOnlyRoles in the stack's order, so an auditor's refused form is recorded too."""
    ui = app.state.staff_ui
    ro = next(i for i, m in enumerate(app.user_middleware) if getattr(m, "cls", None) is operator.ReadOnlyRoles)
    app.user_middleware.insert(ro, Middleware(StaffActions, engine=engine, routes=lambda: app.router.routes,
                                                current=ui.current))

    @app.get("/staff/actions", response_class=HTMLResponse, tags=["staff"])
    def staff_actions_page(request: Request) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> str:
            rows = shown(newest(engine), engine, lang)
            return pages.staff_page("staff_actions.html", lang, rows=rows, shown=SHOWN, nav="actions", **c)
        page: Callable[..., Response] = ui.page
        return page(request, "admin", render)

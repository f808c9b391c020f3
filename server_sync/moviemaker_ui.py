"""The movie maker's staff pages under ``/staff/movies`` (docs/portal.md, "The movie maker").

- ``GET /staff/movies``: the form (project, 3–10 photos with a caption each, an optional name) and the
  movies made so far (a group editor: their group's);
- ``POST /staff/movies`` (``multipart/form-data``): checked whole (server_sync/movies.py); a bad photo
  comes back with a message beside it and nothing kept. The page's script (``/static/moviemaker.js``,
  no inline script) sends the form itself for an upload bar and answers in JSON; without a script the
  form posts normally and the answer is a page;
- ``GET /staff/movies/{id}``: the progress bar while it renders (the script polls ``…/{id}/job``), then
  the preview (``<video>`` of ``…/{id}/preview``) with Publish and Discard;
- ``POST /staff/movies/{id}/publish`` | ``/discard``: the ordinary CSRF forms of the operator UI;
- a movie that failed on something other than its photos keeps its photos and captions for a day
  (server_sync/mediajobs.py, ``KEEP_MS``): its page offers ``POST /staff/movies/{id}/retry`` (make it again from
  them, one click) and ``GET /staff/movies/{id}/edit`` (the kept captions in a form, posted to ``…/retry``; the
  kept photos are used as they are). Discard removes them.

Who: everyone signed in; a group editor only for their group's projects and movies (else 403). A movie that
does not exist (an old link, a typo, discarded) is 404, with the way back to the movies.
"""

from __future__ import annotations

import secrets
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from server_sync import catalog, configstore, mediajobs, movies, pages, public, queries, staff
from server_sync.db import media_info, media_jobs
from server_sync.i18n import N_
from server_sync.mediajobs import MediaJobs
from server_sync.operator import NO_ROOM_ANSWER, TO_MOVIES, Forbidden, NotFound, StaffUI, tr

_JS = resources.files("server_sync").joinpath("static/moviemaker.js").read_bytes()
NOTICES = {"published": N_("Published. It is now on the project's public page, where anyone can watch it. It is not "
                           "on the kiosks yet: it plays there once the center staff put it in a kiosk playlist. Tell "
                           "them the movie is ready."),
           "discarded": N_("Discarded."),
           # Discard pressed on a page loaded before someone else (another editor of the group, the center staff)
           # published the movie: it is kept, and the page now says it is published.
           "not_discarded": N_("This movie was not deleted: it was published in the meantime (perhaps by another "
                               "editor of your group) and is on the project's public page. If it should not be "
                               "there, tell the center staff.")}


def install(app: FastAPI, engine: Engine, jobs: MediaJobs, size: tuple[int, int] = (1920, 1080)) -> None:
    """``size``: what movies are rendered at (1080p; tests pass a small one). Their length follows the
    number of photos (15–30 s, kiosk/player/moviemaker.py)."""
    ui: StaffUI = app.state.staff_ui

    def projects_of(who: staff.Who) -> list[dict[str, Any]]:
        return [p for p in queries.catalog_view(engine)["projects"] if who.may_edit_group(p["group_id"])]

    def groups_of(who: staff.Who) -> set[str] | None:
        return None if who.is_staff else {who.group_id or ""}

    def form_page(who: staff.Who, lang: str, c: dict[str, Any], fields: dict[str, str] | None = None,
                  errors: dict[str, tuple[str, dict[str, Any]]] | None = None, notice: str = "") -> str:
        return pages.staff_page("staff_movies.html", lang, projects=projects_of(who), fields=fields or {},
                                errors=tr(lang, errors or {}),
                                movies=_with_copies(engine, movies.movie_jobs(engine, groups_of(who))),
                                slots=range(movies.MAX_PHOTOS),
                                min_photos=movies.MIN_PHOTOS, max_photos=movies.MAX_PHOTOS,
                                photo_mb=movies.PHOTO_LIMIT // (1024 * 1024), max_caption=movies.MAX_CAPTION,
                                notice=notice, nav="movies", **c)

    def notice_of(request: Request, lang: str) -> str:
        key = request.query_params.get("done", "")
        return pages.staff_text(NOTICES[key], lang) if key in NOTICES else ""

    def job_of(who: staff.Who, job_id: str) -> dict[str, Any]:
        job = jobs.get(job_id)
        if job is None or job.get("kind") != "movie":
            raise NotFound(*TO_MOVIES)
        if not who.may_edit_group(job["group_id"]):
            raise Forbidden
        return job

    @app.get("/static/moviemaker.js", include_in_schema=False)
    def moviemaker_js() -> Response:
        return Response(_JS, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"})

    @app.get("/staff/movies", response_class=HTMLResponse, tags=["staff"])
    def movies_page(request: Request) -> Response:
        return ui.page(request, "any", lambda w, lg, c: form_page(w, lg, c, notice=notice_of(request, lg)))

    @app.post("/staff/movies", tags=["staff"], responses=NO_ROOM_ANSWER)
    async def movies_make(request: Request) -> Response:
        wants_json = "application/json" in request.headers.get("accept", "")
        lang = ui.lang_of(request)
        who = ui.current(request)

        def answer(status: int, errors: dict[str, tuple[str, dict[str, Any]]], fields: dict[str, str]) -> Response:
            if wants_json:
                text = tr(lang, errors)
                return JSONResponse({"error": "invalid", "errors": text, "reason": next(iter(text.values()))},
                                    status_code=status)
            assert who is not None
            return ui.html(form_page(who, lang, ui.ctx(request, who), fields, errors), status)

        if who is None:
            if wants_json:
                return JSONResponse({"error": "signed_out", "reason": pages.staff_text(
                    N_("You are signed out. Sign in again."), lang)}, status_code=401)
            return RedirectResponse("/staff/login", status_code=303)
        job_id = secrets.token_hex(12)
        try:
            got = await movies.receive(request.headers, request.stream(), jobs.spool, job_id)
        except movies.Refused as r:
            if r.status == 413:
                await _drain(request)  # so the browser reads the answer instead of a reset connection
            return answer(r.status, {r.field or "photos": (r.msgid, r.variables)}, {})
        if not staff.csrf_ok(engine, request.cookies.get(staff.COOKIE), got.fields.get("csrf", "")):
            movies.discard(jobs.spool, job_id)
            return ui.forbidden(request, who, N_("This form has expired. Go back, reload the page and try again."))

        def check_and_submit() -> Response:
            try:
                project = next((p for p in projects_of(who) if p["id"] == got.fields.get("project", "")), None)
                chosen, errors = movies.check_form(got, project is not None)
                # Every photo is checked, whatever else is wrong: an editor who sends an empty file, a PDF and a
                # HEIC photo learns of all three at once, not one per round of sending every photo again.
                sent = {slot: path for slot, path in got.photos.items() if got.sizes.get(slot)}  # not the empty ones
                errors = {**errors, **movies.check_photos(sent)}
                if errors:
                    movies.discard(jobs.spool, job_id)
                    return answer(422, errors, got.fields)
                assert project is not None
                with engine.connect() as conn:
                    group = next((g["name"] for g in catalog.list_groups(conn) if g["id"] == project["group_id"]), "")
                spec = movies.write_spec(jobs.spool, job_id, group=group, project=project["title"],
                                         area=project["area"], size=size, photos=chosen)
                name = got.fields.get("name", "").strip() or pages.staff_text(
                    N_("Movie of %(project)s"), lang, project=project["title"])
                jobs.submit(job_id, spec, name=name[:200], group_id=project["group_id"], project_id=project["id"],
                            by=who.name, kind="movie")
            except BaseException:
                movies.discard(jobs.spool, job_id)
                raise
            staff.note_target(request, job_id)  # the staff actions record names the movie's job (its ID only)
            if wants_json:
                return JSONResponse({"job": job_id, "next": f"/staff/movies/{job_id}"}, status_code=202)
            return RedirectResponse(f"/staff/movies/{job_id}", status_code=303)
        return await run_in_threadpool(check_and_submit)

    @app.get("/staff/movies/{job_id}", response_class=HTMLResponse, tags=["staff"])
    def movie_page(job_id: str, request: Request) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> str:
            job = job_of(who, job_id)
            same = same_as(engine, job)
            # Publishing puts the movie on its project's public page at once: the page says so before and after,
            # with a link to that page when it has one (an inactive project without donations has none).
            public_url = (f"/p/{job['project_id']}" if any(p["id"] == job["project_id"]
                                                           for p in queries.projects(engine)) else None)
            published = movies.is_published(engine, job)
            # A failure that keeps its photos and captions: offered to make again, or said to be gone.
            kept = jobs.kept(job) is not None  # None unless a failure whose inputs are kept (mediajobs.keeps)
            return pages.staff_page("staff_movie.html", lang, job=job, published=published,
                                    same_as=same, failure=_failure(job, lang, kept), notice=notice_of(request, lang),
                                    kept=kept, kept_gone=mediajobs.keeps(job) and not kept,
                                    kept_until=mediajobs.kept_until(job) if kept else None,
                                    kept_hours=mediajobs.KEEP_MS // 3_600_000,
                                    public_url=public_url, on_kiosks=published and _playing(engine, job),
                                    nav="movies", **c)
        return ui.page(request, "any", render)

    @app.get("/staff/movies/{job_id}/job", tags=["staff"])
    def movie_job(job_id: str, request: Request) -> Response:
        who = ui.current(request)
        job = jobs.get(job_id) if who else None
        if who is None or job is None or job.get("kind") != "movie" or not who.may_edit_group(job["group_id"]):
            return JSONResponse({"error": "not_found", "reason": "no such movie of yours"}, status_code=404)
        kept = jobs.kept(job) is not None  # the words the page says (movie_page)
        return JSONResponse({"status": job["status"], "progress": job["progress"],
                             "message": _failure(job, ui.lang_of(request), kept)},
                            headers={"Cache-Control": "no-store"})

    @app.get("/staff/movies/{job_id}/preview", tags=["staff"])
    def movie_preview(job_id: str, request: Request) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> Response:
            job = job_of(who, job_id)
            got = configstore.get_media(engine, job["sha256"]) if job["sha256"] else None
            if got is None:
                raise Forbidden
            data, ctype = got
            # In byte ranges: Safari on a phone plays a video only so.
            return public.media_response(request.headers.get("range"), data, ctype,
                                         {"Cache-Control": "private, no-store"})
        return ui.page(request, "any", render)

    @app.post("/staff/movies/{job_id}/publish", tags=["staff"])
    async def movie_publish(job_id: str, request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            if not movies.publish(engine, job_of(who, job_id), who.name):
                raise Forbidden
            return ui.done(f"/staff/movies/{job_id}", "published")
        return await ui.post(request, "any", handle)

    def retry_target(who: staff.Who, job_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The failed movie to make again and its kept inputs (None: no longer kept). The same checks as for making
        it: the editor's group's movie, of a project this user may still make movies for."""
        job = job_of(who, job_id)
        if not any(p["id"] == job["project_id"] for p in projects_of(who)):
            raise Forbidden
        return job, jobs.kept(job)

    @app.post("/staff/movies/{job_id}/retry", tags=["staff"])
    async def movie_retry(job_id: str, request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            job, spec = retry_target(who, job_id)
            captions = None
            if spec is not None and "caption0" in form:  # from the edit page: its captions, checked as the form's
                captions = [(form.get(f"caption{i}") or [""])[0].strip() for i in range(len(spec["photos"]))]
                errors = {f"caption{i}": wrong for i, cap in enumerate(captions)
                          if (wrong := movies.caption_error(cap)) is not None}
                if errors:
                    return edit_page(who, lang, c, job, spec, captions, errors)
            if spec is not None:
                jobs.retry(job_id, captions)  # False: a second click, already queued; the page shows it either way
            # (Not kept any more: the page says so.)
            return RedirectResponse(f"/staff/movies/{job_id}", status_code=303)
        return await ui.post(request, "any", handle)

    def edit_page(who: staff.Who, lang: str, c: dict[str, Any], job: dict[str, Any], spec: dict[str, Any],
                  captions: list[str], errors: dict[str, tuple[str, dict[str, Any]]] | None = None) -> str:
        slots = [_slot_of(p["path"], i) for i, p in enumerate(spec["photos"])]
        return pages.staff_page("staff_movie_edit.html", lang, job=job, project=spec.get("project", ""),
                                photos=list(zip(slots, captions, strict=True)), errors=tr(lang, errors or {}),
                                max_caption=movies.MAX_CAPTION, until=job["updated_ms"] + mediajobs.KEEP_MS,
                                nav="movies", **c)

    @app.get("/staff/movies/{job_id}/edit", response_class=HTMLResponse, tags=["staff"])
    def movie_edit(job_id: str, request: Request) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> Response | str:
            job, spec = retry_target(who, job_id)
            if spec is None:  # made again meanwhile, or no longer kept: the movie's page says which
                return RedirectResponse(f"/staff/movies/{job_id}", status_code=303)
            return edit_page(who, lang, c, job, spec, [str(p.get("caption", "")) for p in spec["photos"]])
        return ui.page(request, "any", render)

    @app.post("/staff/movies/{job_id}/discard", tags=["staff"])
    async def movie_discard(job_id: str, request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            job = job_of(who, job_id)
            if job["status"] in ("queued", "running"):
                raise Forbidden
            if movies.is_published(engine, job) and same_as(engine, job) is None:
                # Published (by now: the Discard button is on the draft's page only): it is a video, kept; its page
                # says so, not "your role does not allow this".
                return ui.done(f"/staff/movies/{job_id}", "not_discarded")
            # (A copy of a published movie goes; the published one, the same file, stays: movies.discard_movie.)
            movies.discard_movie(engine, job)
            movies.discard(jobs.spool, job_id)  # a failed movie's kept photos and captions go with it
            return ui.done("/staff/movies", "discarded")
        return await ui.post(request, "any", handle)


def _slot_of(path: str, index: int) -> int:
    """The form's slot of a kept photo (``job-<id>.photo<N>``: photo N+1 on the form the editor filled in)."""
    tail = path.rsplit(".photo", 1)[-1]
    return int(tail) if tail.isdigit() else index


def same_as(engine: Engine, job: dict[str, Any]) -> dict[str, Any] | None:
    """The published movie that ``job`` is a copy of, or None: ``{"id": its job's id or None, "name"}``.

    A movie made again from the same photos, captions and project is the same file (the renderer is
    deterministic), so it is "published" the moment it is done: its page would say so on a draft just made, with
    no Publish button. The published one is the earliest job of that file made before it was published; any
    other job of the same file is a copy (id None when the published one's job is gone)."""
    if not job.get("sha256") or job.get("status") != "done":
        return None
    with engine.connect() as conn:
        info = conn.execute(select(media_info.c.name, media_info.c.created_ms)
                            .where(media_info.c.sha256 == job["sha256"])).first()
        if info is None:
            return None
        first = conn.execute(select(media_jobs.c.id).where(
            (media_jobs.c.kind == "movie") & (media_jobs.c.sha256 == job["sha256"])
            & (media_jobs.c.status == "done") & (media_jobs.c.created_ms <= info.created_ms))
            .order_by(media_jobs.c.created_ms, media_jobs.c.id)).first()
    if first is not None and first.id == job["id"]:
        return None
    return {"id": first.id if first is not None else None, "name": info.name}


def _playing(engine: Engine, job: dict[str, Any]) -> bool:
    """Whether the movie (published: the caller knows) is in a playlist kiosks run now (the staff put it there): its
    page says so."""
    if not job.get("sha256"):
        return False
    with engine.connect() as conn:
        return job["sha256"] in movies.on_kiosks(conn)


def _with_copies(engine: Engine, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The list of movies, a copy of a published movie marked ``same_as`` (not "published": see :func:`same_as`)."""
    return [{**j, "same_as": same_as(engine, j) if j["published"] else None} for j in jobs]


def _failure(job: dict[str, Any], lang: str, kept: bool = False) -> str:
    """The failed movie's reason in words. ``kept``: its photos and captions are still kept (the page offers
    「もう一度作る」 below it), so it does not say "nothing was saved, try again" above the line that says they
    are kept."""
    if job["status"] != "failed":
        return ""
    if kept:
        return pages.staff_text(N_("The movie could not be made: %(reason)s. If it happens again, tell the center "
                                   "staff."), lang, reason=pages.staff_text(job["message"], lang))
    if job["message"] in (mediajobs.RENDER_FAILED, mediajobs.INTERRUPTED, mediajobs.TOO_LONG):
        # Not the photos' fault (an error of the renderer, a restart of the portal, a machine too busy to finish in
        # 30 minutes): "try other photos" would mislead; say whom to tell.
        return pages.staff_text(N_("The movie could not be made: %(reason)s. Nothing was saved. Try again; if it "
                                   "happens again, tell the center staff."), lang,
                                reason=pages.staff_text(job["message"], lang))
    if job["message"] == mediajobs.NO_ROOM:  # the portal's disk, not the photos: "try other photos" would mislead
        return pages.staff_text(N_("The movie could not be made because the portal's disk is full or cannot be written "
                                   "to. This is the portal's problem, not your photos'. Nothing was saved. Tell the "
                                   "center staff, and try again once they say there is room."), lang)
    return pages.staff_text(N_("The movie could not be made: %(reason)s. Nothing was saved; try again, or with other "
                               "photos."), lang, reason=pages.staff_text(job["message"], lang) if job["message"]
                            else "?")


async def _drain(request: Request, cap: int = movies.FORM_LIMIT * 2) -> None:
    """Read (and drop) the rest of a refused upload, up to ``cap`` bytes, so the answer reaches the browser."""
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > cap:
                return
    except Exception:  # noqa: BLE001 - the stream may already be consumed or closed
        return


"""The portal web service: FastAPI app factory (OpenAPI at ``/openapi.json``, docs at ``/docs``).

Every refusal is a :class:`~server_sync.errors.PortalError` rendered as
``{"error": code, "reason": text}`` with a 4xx status; a database that is briefly unavailable is a
503 with Retry-After; a disk (the spool's or the database's) that is full is a 507, read-only a 503, with a plain
reason in the staff member's language (docs/reliability.md). A 500 is a bug.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import ipaddress
import logging
import os
import re
import secrets
import tempfile
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from kiosk.ledger.encoding import EncodingError, parse_body
from server_sync import (
    catalog,
    center,
    citypepper,
    configstore,
    enroll,
    i18n,
    kiosk_keys,
    logfilter,
    mediajobs,
    moviemaker_ui,
    movies,
    mypage,
    operator,
    pages,
    points_ui,
    public,
    queries,
    reconcile,
    staff,
    staff_actions,
)
from server_sync.auth import authenticate
from server_sync.db import create_schema, is_sqlite, make_engine
from server_sync.errors import PortalError
from server_sync.ingest import CACHED_ENTRIES, Ingestor, Upload, now_ms
from server_sync.mediajobs import MediaJobs, VideoLimits
from server_sync.openapi import body_schema
from server_sync.openapi import install as install_openapi
from server_sync.ratelimit import (
    EnrollGuard,
    Limiter,
    LoginGuard,
    RateLimitMiddleware,
    RateLimits,
    client_address,
    login_message,
    retry_after_header,
)
from server_sync.security import SecurityMiddleware
from server_sync.wire import protocol as P
from server_sync.wire.numbers import decimal
from server_sync.wire.receipt import normalise as normalise_receipt

_SIGNED_HEADERS = [
    {"name": h, "in": "header", "required": req, "schema": {"type": "string"}, "description": d}
    for h, req, d in (
        (P.H_KIOSK, True, "enrolled kiosk id"),
        (P.H_CREATED, True, "request creation time, Unix seconds (portal clock, ±300 s)"),
        (P.H_DIGEST, True, "RFC 9530 sha-256 digest of the body"),
        (P.H_SIGNATURE, True, "base64 Ed25519 signature over the signature base (docs/sync.md)"),
    )
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": P.ErrorAnswer, "description": d} for code, d in (
        (400, "malformed request"), (401, "unsigned, forged, stale or unknown kiosk"), (403, "wrong kiosk"),
        (404, "not found"), (409, "gap, equivocation, conflict or in flight"), (413, "too large"),
        (422, "invalid content"), (503, "database busy, or the portal's disk read-only; retry"))
}
# Requests that write (a kiosk's enrollment, heartbeat, batches): the portal's disk may be full (docs/reliability.md).
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {**_ERRORS, **operator.NO_ROOM_ANSWER}


class ProjectTotal(BaseModel):
    id: str
    count: int
    total_yen: int


class Totals(BaseModel):
    count: int
    total_yen: int
    projects: list[ProjectTotal]


class PublicGift(BaseModel):
    """One recent donation, as the public pages show it. Never its kiosk or time of day: with them a gift
    could be tied to whoever stood at that kiosk at that moment (docs/privacy.md)."""
    date: str = Field(description="the day of the gift in Japan (Asia/Tokyo), YYYY-MM-DD",
                      examples=["2025-11-21"])
    amount_yen: int
    project: str | None


class PublicProject(BaseModel):
    id: str
    title: str
    title_en: str
    summary: str
    summary_en: str
    group: str
    area: str | None
    goal_yen: int | None
    start: str | None
    end: str | None
    active: bool
    count: int
    total_yen: int
    progress: float | None
    percent: int | None


class ProjectDetail(PublicProject):
    recent: list[PublicGift] = Field(description="the newest settled donations, newest first")


class AreaDetail(BaseModel):
    area: str
    title: str
    title_en: str
    count: int
    total_yen: int
    goal_yen: int
    projects: list[str]
    progress: float | None
    percent: int | None
    recent: list[PublicGift] = Field(description="the newest settled donations to its projects, newest first")


async def _read_body(request: Request, limit: int = P.MAX_BODY_BYTES) -> bytes:
    """The raw body (signatures cover exact bytes), refusing anything over ``limit`` before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        size = decimal(declared.strip(), leading_zeros=True)
        if size is None:
            raise PortalError(400, "bad_content_length", "Content-Length is not a number")
        if size > limit:
            raise PortalError(413, "too_large", f"request body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PortalError(413, "too_large", f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _target(request: Request) -> str:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    qs = request.scope.get("query_string") or b""
    return raw.decode("latin-1") + ("?" + qs.decode("latin-1") if qs else "")


MEDIA_CACHE = "public, max-age=3600"
"""``/api/v1/media/<sha256>``'s caching: an hour. A digest's bytes never change, but a published video can be
removed (consent withdrawn), and then no proxy or browser cache should keep showing it for long."""

INGEST_SLOTS = 4
"""Default of ``create_app(ingest_slots=...)`` and $KIOSK_PORTAL_INGEST_SLOTS (docs/portal.md, "Ingest slots")."""


class IngestSlots:
    """At most ``n`` batch uploads verified and stored at once by this process; the others wait their turn
    (first come, first served) in the event loop, holding no thread and no database connection.

    Ingest is CPU work under one GIL plus one short write transaction: with fifty uploads in fifty
    threads the work is the same, but the threads take the GIL from each other, and on SQLite queue for
    its one write lock with connections held (docs/portal.md, "Ingest slots"). ``n`` below 1: no limit.
    ``busy`` and ``waiting`` count the uploads in a slot and in the queue.
    """

    def __init__(self, n: int):
        self.n = n
        self.busy = 0
        self.waiting = 0
        self._sem: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        sem = None
        if self.n >= 1:
            loop = asyncio.get_running_loop()
            if self._loop is not loop:  # one semaphore per event loop (a test client runs one per client)
                self._sem, self._loop = asyncio.Semaphore(self.n), loop
            sem = self._sem
            assert sem is not None
            self.waiting += 1
            try:
                await sem.acquire()
            finally:
                self.waiting -= 1
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1
            if sem is not None:
                sem.release()


def _lang(lang: str | None) -> str:
    return "en" if lang == "en" else "ja"


def _wants_page(req: Request) -> bool:
    """A browser's request (it asks for HTML), not a kiosk's or a page script's (JSON, or anything)."""
    accept = req.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


FORM_KEPT_LIMIT = 256 * 1024
"""The largest browser form whose body :class:`_KeepForm` keeps (the staff forms' own limit is lower)."""
_FORM_KEPT = "kiosk_portal.form_kept"


class _KeepForm:
    """Keeps a copy, in the request's scope, of a browser form's body (a POST of
    ``application/x-www-form-urlencoded``, not under /api/) as the page reads it: when the database then refuses
    the request (full, read-only, busy), the page that says so shows back what was typed, so nothing is lost
    (:func:`database_fault`, ``pages.db_fault_page``). A body over :data:`FORM_KEPT_LIMIT` is not kept."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].startswith("/api/"):
            return await self.app(scope, receive, send)
        ctype = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        if not ctype.lower().startswith(b"application/x-www-form-urlencoded"):
            return await self.app(scope, receive, send)
        kept = bytearray()
        scope[_FORM_KEPT] = kept

        async def keep() -> Any:
            message = await receive()
            if message["type"] == "http.request" and len(kept) <= FORM_KEPT_LIMIT:
                kept.extend(message.get("body", b"")[:FORM_KEPT_LIMIT + 1 - len(kept)])
            return message

        return await self.app(scope, keep, send)


def database_fault(exc: BaseException, engine: Engine) -> int | None:
    """:func:`server_sync.mediajobs.storage_fault` (507 full, 503 read-only, None for anything else), and for the
    SQLite errors that do not say which: a write or open that failed on the disk (SQLITE_IOERR "disk I/O error",
    SQLITE_CANTOPEN "unable to open database file") is the storage's fault when the database's disk is read-only
    (a disk the kernel turned read-only under the portal), full, or its folder or file cannot be written to;
    otherwise it stays None, as a locked database (busy: retry in a moment)."""
    status = mediajobs.storage_fault(exc)
    if status is not None or not is_sqlite(engine):
        return status
    name = str(getattr(getattr(exc, "orig", None), "sqlite_errorname", ""))
    if not name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN")):
        return None
    path = engine.url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    db = Path(path).absolute()
    try:
        st = os.statvfs(db.parent)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return mediajobs.READ_ONLY
    if (st.f_bfree if os.geteuid() == 0 else st.f_bavail) * st.f_frsize < _ROOM_BYTES:
        return mediajobs.FULL
    if not os.access(db.parent, os.W_OK) or (db.exists() and not os.access(db, os.W_OK)):
        return mediajobs.READ_ONLY
    # A disk the kernel turned read-only after an error (ext4's errors=remount-ro) may still say "rw" to statvfs
    # and access(2) ("emergency_ro"): only a write tells. A small file beside the database, removed at once.
    probe = db.with_name(f".{db.name}.probe-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(probe, "xb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        return mediajobs.storage_fault(exc)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return None


_ROOM_BYTES = 64 * 1024
"""Less free space than this under a SQLite database that failed to write: its disk is full (a page and its WAL
frame are a few KiB; the -shm file 32 KiB)."""


def _wants_fault_page(req: Request) -> bool:
    """A browser's request, not under /api/ (the kiosks' and the public API's answers stay JSON)."""
    return _wants_page(req) and not req.url.path.startswith("/api/")


def create_app(db_url: str | None = None, engine: Engine | None = None, next_sync_s: int = 60, *,
               media_size: tuple[int, int] = (1280, 720), spool_dir: str | os.PathLike[str] | None = None,
               upload_limit: int = 500 * 1024 * 1024, rate_limits: RateLimits | None = None,
               trusted_proxies: tuple[str, ...] = (), hsts: str = "auto",
               secret_file: str | os.PathLike[str] | None = None, receipt_days: int = queries.RECEIPT_DAYS,
               movie_size: tuple[int, int] = (1920, 1080), ingest_slots: int = INGEST_SLOTS,
               verifier_cache: int = CACHED_ENTRIES, video_limits: VideoLimits | None = None) -> FastAPI:
    """The portal app over ``db_url`` (or an existing engine). Creates missing tables.

    ``media_size`` is the size uploaded videos are transcoded to (the kiosks' panel; they scale any
    other size on playback); ``spool_dir`` holds uploads while they are transcoded (default: a
    ``kiosk-portal-spool`` folder in the temp directory); ``upload_limit`` caps one upload in bytes.
    ``rate_limits``: server_sync/ratelimit.py (defaults when None); ``trusted_proxies``: addresses or
    networks of the reverse proxy, whose X-Forwarded-For / X-Forwarded-Proto are believed. ``hsts``:
    ``auto`` (Strict-Transport-Security on answers to HTTPS requests), ``always`` or ``never``.
    ``secret_file``: the staff session secret (server_sync/staff.py ``load_secret``; created 0600 if missing).
    ``receipt_days``: how long a receipt code shows its donation, counted from the portal's receipt of it.
    ``movie_size``: what the movie maker renders at (server_sync/moviemaker_ui.py).
    ``ingest_slots``: how many batch uploads this process verifies and stores at once (:class:`IngestSlots`).
    ``verifier_cache``: the entries of kiosks' chains whose verifiers this process keeps in memory (0: no limit;
    server_sync/ingest.py ``Ingestor._cache``).
    """
    logfilter.install()  # receipt codes are bearer tokens: never in a log line (docs/receipts.md)
    i18n.require_all()  # every page needs them: a portal without them stops here, naming the fix
    if engine is None:
        if not db_url:
            raise ValueError("create_app needs db_url or engine")
        engine = make_engine(db_url)
    create_schema(engine)
    staff_actions.prune(engine)  # the staff actions record keeps three years (docs/portal.md, "Staff actions record")
    with engine.connect() as conn:
        published = configstore.current(conn)
    catalog.backfill_from_config(engine, published)
    citypepper.ensure(engine)  # the city's first pepper epoch: kiosks already enrolled fetch it at their next sync
    ingestor = Ingestor(engine, next_sync_s=next_sync_s, cached_entries=verifier_cache)
    slots = IngestSlots(ingest_slots)
    spool = Path(spool_dir) if spool_dir else Path(tempfile.gettempdir()) / "kiosk-portal-spool"
    jobs = MediaJobs(engine, spool, media_size, video_limits)
    jobs.recover()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(jobs.shutdown)  # a transcode in progress is stopped, its files removed

    app = FastAPI(title="Civic kiosk portal", version="1", lifespan=lifespan, description=(
        "Public totals and receipts, the signed kiosk sync protocol (docs/sync.md), and the operator UI "
        "under /staff (docs/portal.md)."))
    app.state.engine = engine
    staff.use_secret(engine, staff.load_secret(Path(secret_file) if secret_file else None))
    app.state.ingestor = ingestor
    app.state.ingest_slots = slots
    app.state.jobs = jobs
    limits = rate_limits or RateLimits()
    limits.check()
    limiter = Limiter(limits.storage)
    login_guard = LoginGuard(limiter, limits)
    app.state.login_guard = login_guard  # /staff/password counts wrong passwords with it too (operator.py)
    enroll_guard = EnrollGuard(limiter, limits)
    app.add_middleware(_KeepForm)  # innermost: a browser form's body, for the page of a database fault
    app.add_middleware(RateLimitMiddleware, limiter=limiter, limits=limits, trusted_proxies=trusted_proxies)
    # Outermost (added last): its headers go on every answer, a 429 included; cross-site posts stop here.
    app.add_middleware(SecurityMiddleware, trusted_proxies=trusted_proxies, hsts=hsts)
    install_openapi(app)  # request-body models as components, so their references resolve

    # --- error rendering -------------------------------------------------------------------------
    @app.exception_handler(PortalError)
    async def _portal_error(_req: Request, exc: PortalError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return JSONResponse({"error": "invalid_request", "reason": f"{where}: {first.get('msg')}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and _wants_page(req) and not req.url.path.startswith("/api/"):
            # An address the portal does not know, opened in a browser: its own page, with the way to the top
            # page, in the visitor's language (a staff member's choice under /staff). The kiosks, the API and
            # the pages' scripts keep the JSON below.
            chosen = req.query_params.get("lang") or (
                req.cookies.get(pages.STAFF_LANG_COOKIE) if req.url.path.startswith("/staff") else None)
            return HTMLResponse(pages.not_found_page(_lang(chosen)), status_code=404, headers=_NO_STORE)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": code, "reason": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    async def _db_busy(req: Request, exc: OperationalError) -> Response:
        status = await run_in_threadpool(database_fault, exc, engine)  # may write a probe on a failing disk
        if status is not None:  # a database on a full (507) or read-only (503) disk: not over in two seconds
            return _no_room(req, exc, status)
        # Locked SQLite, a PostgreSQL failover: transient, and the kiosk retries with backoff. A browser gets a page
        # that says so (wait a minute, try again) and shows back what was typed; the kiosks and scripts the JSON.
        headers = {"Retry-After": "2"}
        if _wants_fault_page(req):
            return _fault_page(req, "busy", 503, {**headers, **_NO_STORE})
        return JSONResponse({"error": "unavailable", "reason": "database busy or unreachable; retry"},
                            status_code=503, headers=headers)

    @app.exception_handler(DBAPIError)
    async def _db_refused(req: Request, exc: DBAPIError) -> Response:
        # PostgreSQL refusing a write for its storage raises ProgrammingError (SQLSTATE 42501 "Read-only file
        # system") or InternalError (25006, a read-only transaction: a hot standby), not OperationalError.
        status = mediajobs.storage_fault(exc)
        if status is None:
            raise exc  # anything else (a missing GRANT, a bug) is a 500, with its traceback in the log
        return _no_room(req, exc, status)

    @app.exception_handler(OSError)
    async def _os_error(req: Request, exc: OSError) -> Response:
        # An upload or a job's file that the portal's disk would not take (full or over quota: 507; read-only: 503).
        status = mediajobs.storage_fault(exc)
        if status is None:
            raise exc  # anything else is a bug: a 500, with its traceback in the log
        return _no_room(req, exc, status)

    @app.exception_handler(mediajobs.VideoRefused)
    async def _video_refused(req: Request, exc: mediajobs.VideoRefused) -> Response:
        # An uploaded video over the portal's limits (too large a picture, too long), refused before it was
        # converted; nothing of it was kept. Said in the staff member's language, for the videos page's script.
        lang = "en" if req.cookies.get(pages.STAFF_LANG_COOKIE) == "en" else "ja"
        return JSONResponse({"error": exc.code, "reason": exc.reason(lang)}, status_code=422)

    def _no_room(req: Request, exc: BaseException, status: int) -> Response:
        """Said plainly, in the staff member's language (their cookie; Japanese by default): the portal's disk
        is at fault, nothing was saved. JSON for the kiosks and the pages' scripts, a short page for a browser."""
        logging.getLogger(__name__).error("%s %s: no room on the portal's disk: %s", req.method, req.url.path,
                                          getattr(exc, "orig", None) or exc)  # the driver's words, not the SQL
        lang = "en" if req.cookies.get(pages.STAFF_LANG_COOKIE) == "en" else "ja"
        reason = pages.staff_text(mediajobs.NO_ROOM_PAGE, lang)
        headers = {"Retry-After": "600", "Cache-Control": "no-store"}
        if _wants_fault_page(req):  # which of the two it is, what to do, and what was typed (server_sync/pages.py)
            return _fault_page(req, "full" if status == mediajobs.FULL else "read_only", status, headers)
        return JSONResponse({"error": "no_room", "reason": reason}, status_code=status, headers=headers)

    def _fault_page(req: Request, kind: str, status: int, headers: dict[str, str]) -> HTMLResponse:
        """The page a browser gets for a request the database could not serve (:func:`database_fault`): in the
        staff member's language (their cookie) or the visitor's (``?lang=``); a form it sent, shown back."""
        lang = _lang(req.query_params.get("lang") or req.cookies.get(pages.STAFF_LANG_COOKIE))
        kept = req.scope.get(_FORM_KEPT)
        form = None
        if isinstance(kept, bytearray) and len(kept) <= FORM_KEPT_LIMIT:
            try:
                form = parse_qsl(kept.decode("utf-8"), keep_blank_values=True, max_num_fields=2000)
            except (UnicodeDecodeError, ValueError):
                form = None
        lead = "" if kind == "busy" else pages.staff_text(mediajobs.NO_ROOM_PAGE, lang)  # the JSON's reason too
        body = pages.db_fault_page(kind, lang, posted=req.method == "POST", action=_target(req), form=form,
                                   home="/staff" if req.url.path.startswith("/staff") else "/", lead=lead)
        return HTMLResponse(body, status_code=status, headers=headers)

    # --- kiosk protocol ---------------------------------------------------------------------------
    @app.post("/api/v1/enroll", tags=["sync"], summary="Register a kiosk key with a one-time code",
              responses={**_WRITE_ERRORS, 429: {"model": P.ErrorAnswer, "description": "too many failed enrollments "
                                                                               "from this address; retry later"}},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": body_schema(P.EnrollRequest)}}}})
    async def enroll_kiosk(request: Request) -> dict[str, Any]:
        raw = await _read_body(request, 4096)
        try:
            req = P.EnrollRequest.model_validate_json(raw)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            if err["type"] == "json_invalid":
                raise PortalError(400, "malformed_json", f"body is not valid JSON: {err['msg']}") from None
            raise PortalError(422, "invalid_request",
                              f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}") from None
        ip = client_address(request.scope, trusted_proxies)
        wait = enroll_guard.check(ip)
        if wait is not None:  # guessing codes: refused before any code is looked up
            hdr = retry_after_header(wait)
            raise PortalError(429, "rate_limited", f"too many failed enrollments; retry in {hdr['Retry-After']} s",
                              headers=hdr)
        try:
            return await run_in_threadpool(enroll.enroll, engine, req)
        except PortalError as exc:
            if exc.code in EnrollGuard.FAILURES:
                enroll_guard.failed(ip)
            raise

    async def _signed(request: Request, kiosk_id: str, limit: int) -> tuple[dict[str, Any], bytes]:
        raw = await _read_body(request, limit)
        kiosk = await run_in_threadpool(authenticate, engine, request.method, _target(request), request.headers,
                                        raw, now_ms(), kiosk_id)
        return kiosk, raw

    @app.post("/api/v1/kiosks/{kiosk_id}/heartbeat", tags=["sync"], responses=_WRITE_ERRORS,
              response_model=P.SyncAnswer,
              summary="Say hello: report clocks and ledger size, learn the high-water mark",
              openapi_extra={"parameters": _SIGNED_HEADERS, "requestBody": {"required": True, "content": {
                  "application/json": {"schema": body_schema(P.KioskNow)}}}})
    async def heartbeat(kiosk_id: str, request: Request) -> JSONResponse:
        kiosk, raw = await _signed(request, kiosk_id, 4096)
        return JSONResponse(await run_in_threadpool(ingestor.heartbeat, kiosk, raw))

    @app.post("/api/v1/kiosks/{kiosk_id}/batches", tags=["sync"], responses=_WRITE_ERRORS, response_model=P.SyncAnswer,
              summary="Upload a signed batch of ledger entries (idempotent)",
              openapi_extra={"parameters": _SIGNED_HEADERS + [
                  {"name": P.H_IDEMPOTENCY, "in": "header", "required": True, "schema": {"type": "string"}}],
                  "requestBody": {"required": True, "content": {
                      "application/json": {"schema": body_schema(P.BatchRequest)}}}})
    async def upload(kiosk_id: str, request: Request) -> JSONResponse:
        raw = await _read_body(request, P.MAX_BODY_BYTES)
        target, headers, key = _target(request), request.headers, request.headers.get(P.H_IDEMPOTENCY, "")

        claimed: list[Upload] = []  # released below even if this task is cancelled as the claim returns

        def claim() -> Upload:  # one trip to a thread for the request's signature and the batch's parse
            kiosk = authenticate(engine, request.method, target, headers, raw, now_ms(), kiosk_id)
            claimed.append(ingestor.claim(kiosk, key, headers[P.H_DIGEST], raw))
            return claimed[0]

        try:
            upload = await run_in_threadpool(claim)
            async with slots.slot():
                # The answer is a SyncAnswer already (Ingestor.answer builds it through the model): sent as it
                # is, not validated and encoded again for response_model, which stays for the schema.
                return JSONResponse(await run_in_threadpool(ingestor.run, upload))
        finally:
            for u in claimed:
                u.release()

    @app.get("/api/v1/kiosks/{kiosk_id}/config", tags=["sync"], responses=_ERRORS,
             summary="The current pushed configuration", openapi_extra={"parameters": _SIGNED_HEADERS})
    async def kiosk_config(kiosk_id: str, request: Request) -> dict[str, Any]:
        await _signed(request, kiosk_id, 0)

        def load() -> dict[str, Any] | None:
            with engine.connect() as conn:
                return configstore.current(conn, kiosk_id)
        cur = await run_in_threadpool(load)
        if cur is None:
            raise PortalError(404, "no_config", "no configuration has been published yet")
        return cur

    @app.get("/api/v1/media/{sha256}", tags=["sync"], responses=_ERRORS, summary="A media file by its SHA-256")
    def media_file(sha256: str, request: Request) -> Response:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise PortalError(422, "bad_digest", "media are addressed by 64 lowercase hex characters")
        if movies.is_draft(engine, sha256):  # an unpublished movie: only behind a session, at its preview page
            raise PortalError(404, "not_found", "no media with that digest")
        got = configstore.get_media(engine, sha256)
        if got is None:
            raise PortalError(404, "not_found", "no media with that digest")
        data, ctype = got
        # In byte ranges: a browser playing the movie on a public page seeks. Cached for an hour, not for good
        # (the bytes never change under a digest, but a video can be removed: docs/portal.md, "Removing a video"):
        # a proxy or a shared browser in front of the portal stops showing a removed one within the hour.
        return public.media_response(request.headers.get("range"), data, ctype, {"Cache-Control": MEDIA_CACHE})

    # --- public JSON ------------------------------------------------------------------------------
    @app.get("/api/v1/totals", tags=["public"], response_model=Totals, summary="Settled donations, all kiosks")
    def totals() -> dict[str, Any]:
        return queries.totals(engine)

    @app.get("/api/v1/projects", tags=["public"], summary="Projects with totals against goals")
    def projects() -> list[dict[str, Any]]:
        return queries.projects(engine)

    # A recent gift is given as the public pages show it: day, amount, project (queries.public_recent).
    @app.get("/api/v1/projects/{project_id}", tags=["public"], responses=_ERRORS, response_model=ProjectDetail,
             summary="One project: totals against its goal and recent anonymous donations (day, amount)")
    def project(project_id: str) -> dict[str, Any]:
        p = next((x for x in queries.projects(engine) if x["id"] == project_id), None)
        if p is None:
            raise PortalError(404, "not_found", f"no project {project_id!r}")
        return {**p, "recent": queries.public_recent(engine, [project_id])}

    @app.get("/api/v1/areas", tags=["public"], summary="Totals by policy area")
    def areas() -> list[dict[str, Any]]:
        return queries.areas(engine)

    @app.get("/api/v1/areas/{area}", tags=["public"], responses=_ERRORS, response_model=AreaDetail,
             summary="One policy area: totals against goals and recent anonymous donations (day, amount, project)")
    def area(area: str) -> dict[str, Any]:
        a = next((x for x in queries.areas(engine) if x["area"] == area), None)
        if a is None:
            raise PortalError(404, "not_found", f"no policy area {area!r} (children, welfare, green, culture, town)")
        return {**a, "recent": queries.public_recent(engine, a["projects"])}

    @app.get("/api/v1/receipts/{code}", tags=["public"], responses=_ERRORS,
             summary="A receipt: one donation, its signed body and signature, the kiosk's checkpoint and the "
                     "inclusion proof (docs/receipts.md)")
    def receipt_json(code: str) -> JSONResponse:
        c = normalise_receipt(code)
        r = queries.receipt(engine, c, now_ms(), receipt_days) if c else None
        if r is None:  # unknown and expired alike: the answer says nothing of which
            raise PortalError(404, "not_found", "unknown receipt code", headers=_NO_STORE)
        return JSONResponse(r, headers=_NO_STORE)

    @app.get("/static/receipt.js", include_in_schema=False)
    def receipt_script() -> Response:
        # An external file (no inline script): the receipt page's in-browser check.
        return Response(_RECEIPT_JS, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # --- public HTML ------------------------------------------------------------------------------
    public.install(app, engine)  # /, /a/{area}, /p/{project_id}: server_sync/public.py

    # /r/: a form to type the receipt number from the kiosk's thank-you screen (a QR that did not scan). Under /r/, so
    # the receipts' rate limit counts it (server_sync/ratelimit.py); a POST, so no code reaches an address or a log
    # line. A known code goes on to its page, /r/CODE: the same lookup as opening that address.
    @app.get("/r/", response_class=HTMLResponse, tags=["pages"])
    def receipt_lookup_form(lang: str | None = None) -> HTMLResponse:
        return _lookup_page(_lang(lang))

    @app.post("/r/", response_class=HTMLResponse, tags=["pages"], responses={303: {}, 400: {}, 404: {}})
    async def receipt_lookup(request: Request, lang: str | None = None) -> Response:
        lg = _lang(lang)
        try:
            form = parse_qs((await _read_body(request, 4096)).decode("utf-8"), max_num_fields=5)
        except (UnicodeDecodeError, ValueError):
            form = {}
        typed = (form.get("code") or [""])[0][:200]
        text, _, fragment = typed.rpartition("/r/")[2].partition("#")  # a pasted link: its code, and its key id
        c = typed_receipt_code(text.partition("?")[0])
        if c is None:
            return _lookup_page(lg, typed, "malformed" if typed.strip() else "empty", 400)
        if await run_in_threadpool(queries.receipt, engine, c, now_ms(), receipt_days) is None:
            return _lookup_page(lg, typed, "unknown", 404)
        key = fragment.strip() if _KEY_FRAGMENT.fullmatch(fragment.strip()) else ""
        return RedirectResponse(f"/r/{c}" + ("?lang=en" if lg == "en" else "") + (f"#{key}" if key else ""),
                                status_code=303, headers=_RECEIPT_HEADERS)

    def _lookup_page(lg: str, typed: str = "", error: str = "", status: int = 200) -> HTMLResponse:
        # The portal's own Referrer-Policy, not no-referrer: under that a browser posts the form with "Origin: null",
        # which the cross-site check refuses. The page's address holds no code.
        html = pages._render("receipt_lookup.html", lg, "/r/", typed=typed, error=error)
        return HTMLResponse(html, status_code=status, headers=_NO_STORE)

    @app.get("/r/{code}", response_class=HTMLResponse, tags=["pages"], responses={303: {}, 404: {}})
    def receipt_html(code: str, lang: str | None = None) -> Response:
        lg = _lang(lang)
        c = normalise_receipt(code)
        if c is None and (typed := typed_receipt_code(code)) is not None:
            # Typed as the kiosk shows it (「DTRO KM7A …」, hyphens, full-width): on to the code's own address, which
            # the page's script reads (a fragment, the QR's #k=..., stays with the browser across the redirect).
            return RedirectResponse(f"/r/{typed}" + (f"?lang={lg}" if lang is not None else ""), status_code=303,
                                    headers=_RECEIPT_HEADERS)
        r = queries.receipt(engine, c, now_ms(), receipt_days) if c else None
        if r is not None:
            r = {**r, "clock_estimated": _clock_estimated(r)}
        html = pages.receipt_page(r, c or "", queries.projects(engine), lg,
                                  center=center.contact(engine) if r else None)  # for a receipt that does not check
        return HTMLResponse(html, status_code=200 if r else 404, headers=_RECEIPT_HEADERS)

    # --- staff ------------------------------------------------------------------------------------
    operator.install(app, engine, jobs, upload_limit)
    reconcile.install(app, engine)  # after operator: it uses operator's staff helpers
    moviemaker_ui.install(app, engine, jobs, movie_size)  # /staff/movies: movies from photos (after operator too)
    points_ui.install(app, engine)  # /staff/point-rules, /points/rules: the written point rules (docs/points.md)
    citypepper.install(app, engine)  # the city's donor-token pepper, sealed to each kiosk (docs/privacy.md)
    mypage.install(app, engine)  # /me/: a donor's own page, by consent (docs/privacy.md)
    kiosk_keys.install(app, engine)  # /staff/kiosks/{id}/revocation (after operator: it uses its form helper)
    center.install(app, engine)  # /staff/center: the center's contact for citizens (after operator: its helpers)
    staff_actions.install(app, engine)  # who did what under /staff, and /staff/actions (after operator: its helpers)

    @app.get("/staff/login", response_class=HTMLResponse, tags=["staff"])
    def staff_login_form(out: str | None = None) -> str:
        # ``?out=1``: where signing out lands (operator.py's /staff/logout), said in words on the page.
        return pages.login_page(signed_out=out == "1", center=center.contact(engine))

    @app.post("/staff/login", response_class=HTMLResponse, tags=["staff"])
    async def staff_login(request: Request) -> Response:
        raw = await _read_body(request, 4096)
        try:
            form = parse_qs(raw.decode("utf-8"), max_num_fields=10)
        except (UnicodeDecodeError, ValueError):
            form = {}
        user, password = (form.get("username") or [""])[0][:64], (form.get("password") or [""])[0][:1024]
        ip = client_address(request.scope, trusted_proxies)
        verdict = login_guard.check(user, ip)
        if verdict is not None:  # refused before any password hashing: a flood costs the portal nothing
            return HTMLResponse(pages.login_page(refused=login_message(verdict), username=user), status_code=429,
                                headers=retry_after_header(verdict.wait_s))
        ok: bool | staff.LoginResult = False  # it says whether the name is a user's: the record keeps it only then
        if user and password:
            ok = await run_in_threadpool(staff.check_login, engine, user, password)
        if not ok:
            login_guard.failed(user, ip)
            await run_in_threadpool(staff_actions.sign_in, engine, user, ok, 401)
            # The user name stays in its box (escaped, as all text): only the password is typed again.
            return HTMLResponse(pages.login_page(failed=True, username=user,
                                                 center=await run_in_threadpool(center.contact, engine)),
                                status_code=401)
        login_guard.succeeded(user)
        # The session this browser was still signed in with (a colleague's, on the center's shared PC) ends with
        # it: its cookie is replaced here and nobody should hold a live one (docs/portal.md, "Accounts").
        cookie = await run_in_threadpool(staff.make_cookie, engine, user, request.cookies.get(staff.COOKIE))
        await run_in_threadpool(staff_actions.sign_in, engine, user, True, 303)
        resp = RedirectResponse("/staff", status_code=303)
        operator.set_session_cookie(resp, cookie, request)
        return resp

    return app


_NO_STORE = {"Cache-Control": "no-store"}
_RECEIPT_HEADERS = {**_NO_STORE, "Referrer-Policy": "no-referrer"}
_RECEIPT_JS = resources.files("server_sync").joinpath("static/receipt.js").read_bytes()
_KEY_FRAGMENT = re.compile(r"k=[0-9a-fA-F]{16}")
# What people type between and around the kiosk's groups of four (「DTRO KM7A …」): spaces of any width (NFKC
# makes the full-width space, letters and digits plain) and dashes, with the long vowel mark a Japanese keyboard
# gives for "-".
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212\u30fc\uff70]+")
# Digits that are not in the code's alphabet (A-Z, 2-7) read as the one letter they look like. 1 is not here: it
# could be I or L, both in the alphabet.
_LOOKALIKES = str.maketrans("08", "OB")


def typed_receipt_code(typed: str) -> str | None:
    """A receipt code as a person types it (spaces, hyphens, lower case, full-width, 0 for O, 8 for B), or ``None``.
    One code for one input: nothing here tries several codes."""
    return normalise_receipt(_SEPARATORS.sub("", unicodedata.normalize("NFKC", typed)).upper().translate(_LOOKALIKES))


def _clock_estimated(r: dict[str, Any]) -> bool:
    """Whether a receipt's time is the portal's estimate: the kiosk signed the gift with its clock not set
    (``clock_synced`` false in the stored body; the page's script says the same from the body it checks)."""
    try:
        return parse_body(base64.b64decode(r["verification"]["entry_body"])).get("clock_synced") is False
    except (KeyError, TypeError, ValueError, EncodingError):
        return False


def options_from_env() -> dict[str, Any]:
    """``create_app`` options an operator sets in the environment (the unit's /etc/kiosk/portal.env):

    - ``KIOSK_PORTAL_MEDIA_SIZE``: what uploaded videos are transcoded to, e.g. ``1920x1080`` (default 1280x720);
    - ``KIOSK_PORTAL_SPOOL``: where uploads wait while they are transcoded;
    - ``KIOSK_PORTAL_UPLOAD_MB``: the largest upload, in MB (default 500);
    - ``KIOSK_PORTAL_VIDEO_MAX_SIZE``, ``KIOSK_PORTAL_VIDEO_MAX_SECONDS``: the largest picture and the longest
      uploaded video taken (server_sync/mediajobs.py ``VideoLimits``; default 1920x1080 and 300);
    - ``KIOSK_PORTAL_RATE_*``: rate limits (server_sync/ratelimit.py ``RateLimits``, e.g.
      ``KIOSK_PORTAL_RATE_LOGIN_LOCKOUT=20/hour``, ``KIOSK_PORTAL_RATE_STORAGE=redis://127.0.0.1:6379``);
    - ``KIOSK_PORTAL_TRUSTED_PROXIES``: comma-separated addresses or networks of the reverse proxy, whose
      X-Forwarded-For (client address) and X-Forwarded-Proto (https: HSTS, secure cookies) are believed;
    - ``KIOSK_PORTAL_RECEIPT_DAYS``: how many days a receipt code shows its donation (default 90);
    - ``KIOSK_PORTAL_INGEST_SLOTS``: batch uploads verified and stored at once per process (default
      :data:`INGEST_SLOTS`; 0 for no limit);
    - ``KIOSK_PORTAL_VERIFIER_CACHE``: entries of the kiosks' chains whose verifiers a process keeps in memory,
      about 21 bytes each (default :data:`~server_sync.ingest.CACHED_ENTRIES`; 0 for no limit).
    """
    opts: dict[str, Any] = {}
    size = os.environ.get("KIOSK_PORTAL_MEDIA_SIZE", "").lower()
    if size:
        w_s, _, h_s = size.partition("x")
        w, h = decimal(w_s, 160, 3840), decimal(h_s, 90, 2160)
        if w is None or h is None:
            raise RuntimeError(f"KIOSK_PORTAL_MEDIA_SIZE={size!r}: use WIDTHxHEIGHT, e.g. 1280x720")
        opts["media_size"] = (w, h)
    if os.environ.get("KIOSK_PORTAL_SPOOL"):
        opts["spool_dir"] = os.environ["KIOSK_PORTAL_SPOOL"]
    mb = os.environ.get("KIOSK_PORTAL_UPLOAD_MB", "")
    if mb:
        n_mb = decimal(mb, 1, 10**6)
        if n_mb is None:
            raise RuntimeError(f"KIOSK_PORTAL_UPLOAD_MB={mb!r}: a whole number of megabytes")
        opts["upload_limit"] = n_mb * 1024 * 1024
    if os.environ.get("KIOSK_PORTAL_VIDEO_MAX_SIZE") or os.environ.get("KIOSK_PORTAL_VIDEO_MAX_SECONDS"):
        opts["video_limits"] = VideoLimits.from_env()
    if any(k.startswith("KIOSK_PORTAL_RATE_") for k in os.environ):
        try:
            opts["rate_limits"] = RateLimits.from_env()
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
    proxies = tuple(p.strip() for p in os.environ.get("KIOSK_PORTAL_TRUSTED_PROXIES", "").split(",") if p.strip())
    for p in proxies:
        try:
            ipaddress.ip_network(p, strict=False)
        except ValueError:
            raise RuntimeError(f"KIOSK_PORTAL_TRUSTED_PROXIES: {p!r} is not an address or network") from None
    if proxies:
        opts["trusted_proxies"] = proxies
    whole_numbers = (("KIOSK_PORTAL_RECEIPT_DAYS", "receipt_days", 1, 3650, "a whole number of days, 1 to 3650"),
                     ("KIOSK_PORTAL_INGEST_SLOTS", "ingest_slots", 0, 1000, "a whole number, 0 for no limit"),
                     ("KIOSK_PORTAL_VERIFIER_CACHE", "verifier_cache", 0, 10**10,
                      "a whole number of entries, 0 for no limit"))
    for var, key, lo, hi, what in whole_numbers:
        text = os.environ.get(var, "")
        if text:
            n = decimal(text, lo, hi)
            if n is None:
                raise RuntimeError(f"{var}={text!r}: {what}")
            opts[key] = n
    return opts


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` with several workers: the database URL comes from $KIOSK_PORTAL_DB,
    the media options from :func:`options_from_env`."""
    url = os.environ.get("KIOSK_PORTAL_DB")
    if not url:
        raise RuntimeError("KIOSK_PORTAL_DB is not set: put KIOSK_PORTAL_DB=postgresql+psycopg://user:pw@host/db "
                           "(or sqlite:////var/lib/kiosk-portal/portal.db) in /etc/kiosk/portal.env "
                           "(docs/portal.md)")
    app = create_app(url, **options_from_env())
    settle_collector()
    return app


GC_YOUNG = 10_000
"""The collector's first threshold in a serving portal (CPython's default is 700): see :func:`settle_collector`."""


def settle_collector() -> None:
    """The collector of a serving process: the start-up heap frozen and the young generation's threshold raised.
    Called after start-up, before serving (``kiosk-portal serve``; not in tests or the embedded portal).

    What is alive now (modules, the schema, compiled statements, the app) stays alive, so the collector need
    not scan it again. A full collection scanned 110,000-145,000 objects (about 50 ms of CPU, three or four
    times in bench/sync.py's 25,000-entry ingest); 27,000-40,000 after this (about 10 ms).

    And the young generation is collected once :data:`GC_YOUNG` more container objects are alive, not 700:
    an upload's parsed batch (one or two containers an entry) lives until it is stored, and with fifty uploads
    waiting for a slot the default threshold collected about every hundred entries, moving every batch
    through all three generations. Measured with a ``gc.callbacks`` timer in the portal during bench/sync.py's
    ingest (25,050 entries): 277-363 young and 2-3 full collections, 82-98 ms of CPU on SQLite (110-114 ms on
    PostgreSQL), against 5-11 young and no full ones, 10-14 ms (34-39 ms) with this threshold (docs/portal.md,
    "Ingest slots"). Garbage in reference cycles now waits for at most that many more allocations: a megabyte or two at
    worst, not a leak."""
    gc.collect()  # garbage of the start-up goes first; only the living are frozen
    gc.freeze()
    gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])

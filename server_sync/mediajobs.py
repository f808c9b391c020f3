"""Background media jobs with progress for the staff pages: uploaded videos transcoded to the kiosk
format, and movies made from photos by the movie maker. One machinery for both.

The input is spooled to files named ``job-<id>.*``, then one worker thread runs a child process: the
kiosk's own transcoder (``python -m kiosk.player.transcode``: H.264 High, yuv420p, ≤1080p30, closed
GOP, faststart, docs/player.md) for a video, the movie maker (``python -m kiosk.player.moviemaker
render``, which writes with the same encoder settings) for a movie. The portal imports neither PyAV,
Pillow nor the kiosk: the child does, so the kiosk format has one definition, and a crash in a
decoder library takes down a child, not the portal. Both children print ``frames N`` and
``progress n`` lines, which become the job's percent, then ``done <probe>``. A poster frame (a JPEG)
comes with each: the movie maker writes it while rendering, a video gets one from a second short
child (``moviemaker poster``).

An uploaded video is probed first (its picture size and length, by a short ``python -c`` child with PyAV:
:data:`_PROBE`) and one over :class:`VideoLimits` is refused before any job exists (:class:`VideoRefused`).
A header can lie (a length or picture size smaller than the stream's): the transcoder gets the same limits and
stops at the first picture or second past them, and the job fails saying so (:data:`LONGER_THAN_ALLOWED`,
:data:`LARGER_THAN_ALLOWED`).

Nothing is half-made: the movie, its poster and (for a video) its description are written in one
transaction only after the child finished and its output was read whole; a failed or interrupted
job leaves a job row that says why (in plain words, for the uploader) and no media. Every
``job-<id>.*`` file is removed, with one exception: a movie that failed on something that was not its photos'
fault (:data:`KEPT_FOR`: the renderer's error, a restart, the timeout) keeps its inputs, the spec
(``job-<id>.json``: captions, project) and its photos (``job-<id>.photo<N>``), for :data:`KEEP_MS`, so its editor
can make it again with one click (:meth:`MediaJobs.retry`) instead of choosing every photo and typing every
caption again. The clean-up (:meth:`MediaJobs._sweep`) removes them after that time, or sooner, oldest first,
when all kept inputs together pass :data:`KEEP_BYTES`.

A portal that stops (a restart, a deploy) leaves no job waiting forever: :meth:`MediaJobs.shutdown`
fails every job of its own process that is not finished, the running one and those still queued, as
:data:`INTERRUPTED`, and removes their files. For a process that could not say so (killed, crashed, the
host lost power) the rows' heartbeat decides. Several portal processes (uvicorn workers, hosts) share
one database and keep no list of each other, so a job row does not say which process runs it; instead
each process writes the time into the ``updated_ms`` of its own unfinished jobs every
:data:`HEARTBEAT_S`, and a queued or running job not written for :data:`STALE_MS` belongs to a process
that stopped: :meth:`MediaJobs.get` shows it as interrupted at once, and any process fails it in the
database and removes its files when it starts (:meth:`MediaJobs.recover`) and while it has jobs of its
own. A process that is alive never misses so many beats, so no process fails another live one's job
(this needs the hosts' clocks within a minute or so of each other, as NTP keeps them).
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from server_sync.catalog import current_group
from server_sync.configstore import store_media
from server_sync.db import media_info, media_jobs, writing
from server_sync.i18n import N_, translations
from server_sync.wire.numbers import decimal

log = logging.getLogger(__name__)
TIMEOUT_S = 30 * 60
"""A transcode that takes longer than this is stopped (a 10-minute 1080p clip takes a few minutes)."""
# Job messages the media page translates. A failed job's message is always one of these (:data:`SHOWN`): a
# child's own words or an exception's text (a spool path, a system error) go to the log, never to the page.
NOT_A_MOVIE = N_("not a movie file the portal can read")
INTERRUPTED = N_("interrupted (the portal restarted)")
TOO_LONG = N_("stopped (took too long)")
DAMAGED = N_("a damaged movie file: no picture could be read from it")
RENDER_FAILED = N_("the movie maker stopped on an unexpected error")
"""A render that failed on something other than a photo (``error: unexpected error in the renderer: …``, from
kiosk/player/moviemaker.py), or whose child was killed by something else than the portal (the kernel's OOM
killer): the editor is told so plainly, the details go to the log."""
NO_ROOM = N_("the portal's disk is full or cannot be written to (not the file's fault): tell the portal's "
             "administrator, and try again once there is room")
"""The spool or the database had no room (ENOSPC, EDQUOT, a read-only disk, SQLite's "database or disk is full",
PostgreSQL's disk-full error): the uploader is told it is the portal, not their file; the details go to the log."""
NO_ROOM_PAGE = N_("The portal's disk is full or cannot be written to, so this could not be saved. Nothing was saved. "
                  "Tell the portal's administrator, and try again later.")
"""The answer to any request whose file or row the portal's storage would not take (server_sync/app.py)."""
STOPPED = N_("the conversion stopped unexpectedly")
"""A transcoder child killed by something else than the portal (the kernel's OOM killer, an administrator), or a
video job that ended on an error none of the messages above describes (its details are in the log)."""
LONGER_THAN_ALLOWED = N_("the video is longer than the portal allows, though its file said it was shorter; shorten it "
                         "with a video app on the phone or PC")
LARGER_THAN_ALLOWED = N_("the video's picture is larger than the portal allows, though its file said it was smaller; "
                         "make it smaller with a video app on the phone or PC")
"""A video that passed the check before conversion (:class:`VideoLimits`, from its header) but whose decoded pictures
or length pass the limits: the transcoder stops there (its ``--max-seconds`` and ``--max-size``), not after
:data:`TIMEOUT_S`."""
SHOWN = frozenset({NOT_A_MOVIE, INTERRUPTED, TOO_LONG, DAMAGED, RENDER_FAILED, NO_ROOM, STOPPED, LONGER_THAN_ALLOWED,
                   LARGER_THAN_ALLOWED})
"""Every message a failed job may show its uploader (:func:`as_shown`)."""
VIDEO_TOO_BIG = N_("This video's picture is too large (%(w)s × %(h)s pixels): the kiosks show at most %(max_w)s × "
                   "%(max_h)s pixels (upright or sideways). Nothing was saved. Make it %(max_w)s × %(max_h)s or "
                   "smaller with a video app on the phone or PC (or record it again at a lower quality than 4K), "
                   "and upload it again.")
VIDEO_TOO_LONG = N_("This video is too long (%(length)s): at most %(max)s. Nothing was saved. Shorten it to %(max)s "
                    "or less with a video app on the phone or PC, and upload it again.")
MINUTES_SECONDS = N_("%(m)s min %(s)s s")
MINUTES = N_("%(m)s min")
SECONDS = N_("%(s)s s")
PROBE_TIMEOUT_S = 60
"""Reading an upload's size and length (its header; its packets only when the header has no length)."""
HEARTBEAT_S = 30.0
"""How often a process writes the time into its unfinished jobs' rows (their ``updated_ms``)."""
STALE_MS = 2 * 60 * 1000
"""A queued or running job not written for this long (four heartbeats) belonged to a portal process that
stopped."""
UNCLAIMED_MS = 15 * 60 * 1000
"""A spooled file with no job row yet is an upload being received or photos being checked (the row comes
with :meth:`MediaJobs.submit`); one untouched for this long was left by a stopped process."""
KEPT_FOR = frozenset({RENDER_FAILED, INTERRUPTED, TOO_LONG})
"""The failures of a movie whose photos and captions are kept (module doc): not the photos' fault, so the same
ones may well work next time. Not :data:`NO_ROOM`: there keeping them would keep the portal's disk full."""
KEEP_MS = 24 * 3600 * 1000
"""How long a failed movie's photos and captions are kept after its failure: an editor who meets it in the evening
(or whose render a restart cut overnight) still finds them the next day, and photos that may show people who agreed
only to one movie do not stay on the portal's disk for longer than that."""
KEEP_BYTES = 1024 * 1024 * 1024
"""At most this much of kept photos in the spool all together (a movie's photos are at most about 250 MB, usually
20–80 MB): past it the oldest failures' are removed first, so keeping them never fills the portal's disk."""


def keeps(job: Mapping[str, Any]) -> bool:
    """Whether ``job`` (as shown) is a movie whose inputs are kept after its failure (:data:`KEPT_FOR`)."""
    return job.get("kind") == "movie" and job.get("status") == "failed" and job.get("message") in KEPT_FOR


def kept_until(job: Mapping[str, Any]) -> int:
    """Until when (ms) a failed movie's inputs are kept: :data:`KEEP_MS` after its failure was recorded."""
    return int(job["updated_ms"]) + KEEP_MS


def _is_input(name: str) -> bool:
    """A movie's input in the spool: its spec ``job-<id>.json`` or a photo ``job-<id>.photo<N>``."""
    rest = name.split(".", 1)[1] if "." in name else ""
    return rest == "json" or (rest.startswith("photo") and rest[len("photo"):].isdigit())


_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY_ERRNOS = (errno.EROFS,)
_FULL_WORDS = ("database or disk is full", os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT),
               f"[Errno {errno.ENOSPC}]", f"[Errno {errno.EDQUOT}]")
_READ_ONLY_WORDS = ("readonly database", os.strerror(errno.EROFS), f"[Errno {errno.EROFS}]")
FULL, READ_ONLY = 507, 503
""":func:`storage_fault`'s answers: the HTTP status of "the portal's disk is full" and of "... is read-only"."""


def storage_fault(exc: BaseException) -> int | None:
    """Whether ``exc`` is the portal's storage refusing a write, and the answer that says so: :data:`FULL` (507)
    for no room (the system's ENOSPC or EDQUOT, SQLite's "database or disk is full", PostgreSQL's disk full,
    SQLSTATE 53100), :data:`READ_ONLY` (503) for a database or disk that cannot be written to (EROFS, SQLite's
    "attempt to write a readonly database", PostgreSQL's read-only transaction, SQLSTATE 25006: a hot standby or
    ``default_transaction_read_only``, and its data file on a read-only disk, SQLSTATE 42501 with the system's
    "Read-only file system"; a 42501 without those words is a missing GRANT, a setup mistake), None for anything
    else (a locked database, a bug). The one place that decides it: the app's answers to an OSError or a database
    error (server_sync/app.py), the movie maker's photos (server_sync/movies.py) and a job's failure here."""
    if isinstance(exc, OSError):
        return FULL if exc.errno in _FULL_ERRNOS else READ_ONLY if exc.errno in _READ_ONLY_ERRNOS else None
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
    if orig is None:
        return None
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate == "53100":
        return FULL
    if sqlstate == "25006":  # read_only_sql_transaction: a hot standby, default_transaction_read_only
        return READ_ONLY
    return storage_fault_words(str(orig))


def storage_fault_words(text: str) -> int | None:
    """:func:`storage_fault` for words: a database driver's message, or a child's (Python, PyAV, FFmpeg) that
    could not write its output."""
    if any(w in text for w in _READ_ONLY_WORDS):
        return READ_ONLY
    if any(w in text for w in _FULL_WORDS):
        return FULL
    return None


class VideoRefused(Exception):
    """An uploaded video over the portal's limits (:class:`VideoLimits`), refused before it is converted: nothing
    of it is kept. ``code`` for the page's script, :meth:`reason` for the uploader."""

    def __init__(self, code: str, msgid: str, **variables: Any):
        super().__init__(code)
        self.code, self.msgid, self.variables = code, msgid, variables

    def reason(self, lang: str) -> str:
        t = translations(lang)
        shown = {k: _duration(v, lang) if k in ("length", "max") else str(v) for k, v in self.variables.items()}
        return t.gettext(self.msgid) % shown


def _duration(seconds: int, lang: str) -> str:
    t, (m, s) = translations(lang), divmod(int(seconds), 60)
    if not m:
        return t.gettext(SECONDS) % {"s": s}
    return t.gettext(MINUTES_SECONDS) % {"m": m, "s": s} if s else t.gettext(MINUTES) % {"m": m}


@dataclass(frozen=True)
class VideoLimits:
    """What an uploaded video may be, checked before it is converted (docs/portal.md, "Videos"): at most
    ``long_side`` × ``short_side`` pixels either way round (what a kiosk plays well: 1080p), and at most
    ``seconds`` long (a project's video for a lobby loop, not a recording of a whole meeting)."""

    long_side: int = 1920
    short_side: int = 1080
    seconds: int = 5 * 60

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VideoLimits:
        """``KIOSK_PORTAL_VIDEO_MAX_SIZE`` (``WIDTHxHEIGHT``, default 1920x1080) and
        ``KIOSK_PORTAL_VIDEO_MAX_SECONDS`` (default 300); a value that does not parse stops the portal, naming
        the fix."""
        env = os.environ if environ is None else environ
        limits = cls()
        size = env.get("KIOSK_PORTAL_VIDEO_MAX_SIZE", "").strip().lower()
        if size:
            w, _, h = size.partition("x")
            wn, hn = decimal(w, 16, 16384), decimal(h, 16, 16384)
            if wn is None or hn is None:
                raise RuntimeError(f"KIOSK_PORTAL_VIDEO_MAX_SIZE={size!r}: use WIDTHxHEIGHT, e.g. 1920x1080")
            limits = replace(limits, long_side=max(wn, hn), short_side=min(wn, hn))
        secs = env.get("KIOSK_PORTAL_VIDEO_MAX_SECONDS", "").strip()
        if secs:
            n = decimal(secs, 1, 24 * 3600)
            if n is None:
                raise RuntimeError(f"KIOSK_PORTAL_VIDEO_MAX_SECONDS={secs!r}: a whole number of seconds, e.g. 300")
            limits = replace(limits, seconds=n)
        return limits

    def check(self, width: int, height: int, seconds: float | None) -> None:
        """Raise :class:`VideoRefused` for a video over a limit (its picture first: the bigger cost)."""
        if width and height and (max(width, height) > self.long_side or min(width, height) > self.short_side):
            raise VideoRefused("video_too_large", VIDEO_TOO_BIG, w=width, h=height, max_w=self.long_side,
                               max_h=self.short_side)
        if seconds is not None and seconds > self.seconds + 0.5:  # a clip cut to "5:00" may be 300.03 s
            raise VideoRefused("video_too_long", VIDEO_TOO_LONG, length=math.ceil(seconds), max=self.seconds)


_PROBE = """
import json, sys
import av
try:
    c = av.open(sys.argv[1])
except Exception:
    print("{}")
    raise SystemExit(0)
with c:
    if not c.streams.video:
        print("{}")
        raise SystemExit(0)
    s, cap = c.streams.video[0], float(sys.argv[2])
    seconds = None
    if s.duration and s.time_base:
        seconds = float(s.duration * s.time_base)
    elif c.duration:
        seconds = c.duration / 1000000
    if not seconds:  # no length in the header: the packets' own times, read until past the limit
        end = 0.0
        for p in c.demux(s):
            if p.pts is not None and p.time_base:
                end = max(end, float((p.pts + (p.duration or 0)) * p.time_base))
                if end > cap:
                    break
        seconds = end or None
    print(json.dumps({"width": s.codec_context.width, "height": s.codec_context.height, "seconds": seconds}))
"""
"""Run as ``python -c`` (the portal imports no PyAV, module doc): prints the first video stream's size and length
as JSON, or ``{}`` for a file PyAV cannot open (the transcoder then says what is wrong with it)."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def unexpected(kind: str) -> str:
    """The message of a job that failed on something none of :data:`SHOWN`'s others describes."""
    return RENDER_FAILED if kind == "movie" else STOPPED


def as_shown(job: dict[str, Any], now_ms: int | None = None) -> dict[str, Any]:
    """``job`` (a row of ``media_jobs``) as its uploader sees it: queued or running but with no heartbeat for
    :data:`STALE_MS`, its process stopped, and it is failed as :data:`INTERRUPTED` (module doc). A failed job's
    message is one of :data:`SHOWN`: a row written by an older portal with a child's own words (a spool path, an
    exception's text) shows :func:`unexpected` instead."""
    now = _now_ms() if now_ms is None else now_ms
    if job["status"] in ("queued", "running") and job["updated_ms"] < now - STALE_MS:
        return {**job, "status": "failed", "message": INTERRUPTED}
    if job["status"] == "failed" and job["message"] not in SHOWN:
        return {**job, "message": unexpected(job.get("kind") or "video")}
    return job


class MediaJobs:
    def __init__(self, engine: Engine, spool: Path, size: tuple[int, int] = (1280, 720),
                 limits: VideoLimits | None = None):
        """``limits``: what an uploaded video may be (:class:`VideoLimits`; None: its defaults). The app reads
        the operator's settings (server_sync/app.py ``options_from_env``)."""
        self.engine = engine
        self.spool = spool
        self.size = size
        self.limits = VideoLimits() if limits is None else limits
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="transcode")
        self._procs: dict[subprocess.Popen[str], str] = {}
        """Each running child → why the portal stopped it: "" (it did not), "timeout" or "shutdown"."""
        self._mine: set[str] = set()
        """This process's unfinished jobs: submitted here, queued or running."""
        self._beat: threading.Thread | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._unrecorded: dict[str, str] = {}
        """Failures of this process's jobs the database could not take yet (:meth:`_fail`): job id → message."""
        self._kept_next: int | None = None
        """When the first of the kept inputs this process's last sweep saw are due for removal (:data:`KEEP_MS`)."""

    # --- lifecycle ------------------------------------------------------------------------------
    def recover(self) -> None:
        """At start: jobs a stopped portal process left unfinished are failed, and spooled files no live job
        needs are removed.

        Only jobs with no heartbeat for :data:`STALE_MS`: with several portal processes on one database,
        another one may be working on the others (module doc).
        """
        self._sweep()

    def shutdown(self) -> None:
        """Stop: the running child is killed, and every job of this process not finished (that one and those
        still queued) is failed as :data:`INTERRUPTED`, with its files removed. No job is left "queued"."""
        with self._lock:
            self._closing.set()  # also wakes the heartbeat, which ends
            running = list(self._procs)
        for p in running:
            self._stop(p, "shutdown")
        self._pool.shutdown(wait=True, cancel_futures=True)  # the running job records its end itself
        with self._lock:
            left, self._mine = self._mine, set()
            beat = self._beat
        try:
            self._interrupt(left)  # the queued ones, which never ran
        except Exception:  # noqa: BLE001 - the database is away: with no heartbeat they are shown interrupted soon
            log.exception("media jobs %s left unfinished at shutdown", sorted(left))
        if beat is not None:
            beat.join(timeout=5)

    # --- jobs -----------------------------------------------------------------------------------
    def spool_path(self) -> tuple[str, Path]:
        job_id = secrets.token_hex(12)
        self.spool.mkdir(parents=True, exist_ok=True)
        return job_id, self.spool / f"job-{job_id}.upload"

    def files(self, job_id: str) -> list[Path]:
        return sorted(self.spool.glob(f"job-{job_id}.*"))

    def discard_files(self, job_id: str, keep_inputs: bool = False) -> None:
        """The job's spooled files removed (``keep_inputs``: all but a movie's spec and photos, :func:`_is_input`)."""
        for f in self.files(job_id):
            if keep_inputs and _is_input(f.name):
                continue
            try:
                f.unlink(missing_ok=True)
            except OSError as exc:  # a spool gone read-only: removed by a later sweep
                log.error("cannot remove %s: %s", f.name, exc)

    def submit(self, job_id: str, src: Path, *, name: str, group_id: str | None, project_id: str | None,
               by: str, kind: str = "video") -> None:
        """Queue a job whose input is spooled at ``src`` (a video upload, or a movie's spec JSON next to its
        photos, all named ``job-<id>.*``). A video over :attr:`limits` raises :class:`VideoRefused`, with its
        file removed and no job row: nothing of it is kept."""
        if kind == "video":
            try:
                self._check_video(job_id, src)
            except BaseException:
                self.discard_files(job_id)
                raise
        with self._lock:
            self._mine.add(job_id)  # before its row: a shutdown from now on fails it (and its files)
            self._start_heartbeat()
        now = _now_ms()
        try:
            with writing(self.engine) as conn:
                group_id = current_group(conn, project_id, group_id)  # moved by staff while it was uploaded?
                conn.execute(media_jobs.insert().values(id=job_id, status="queued", progress=0, message="",
                                                        name=name, group_id=group_id, project_id=project_id,
                                                        uploaded_by=by, kind=kind, created_ms=now, updated_ms=now))
        except BaseException:
            with self._lock:
                self._mine.discard(job_id)
            self.discard_files(job_id)
            raise
        try:
            self._pool.submit(self._run, job_id, src, kind)
        except RuntimeError:  # shut down meanwhile: it would never run
            self._interrupt({job_id})
            raise

    def kept(self, job: Mapping[str, Any]) -> dict[str, Any] | None:
        """The spec (project, captions, photos) of a failed movie (``job`` as shown, :meth:`get`) whose photos and
        captions are still kept (module doc), or None: not such a failure, past :data:`KEEP_MS` (its files are
        removed now, whether or not a clean-up ran since), or removed (the clean-up, :data:`KEEP_BYTES`)."""
        if not keeps(job):
            return None
        if kept_until(job) < _now_ms():
            self.discard_files(str(job["id"]))
            return None
        try:
            spec = json.loads((self.spool / f"job-{job['id']}.json").read_text("utf-8"))
            photos = spec["photos"]
            if photos and all(Path(p["path"]).is_file() for p in photos):
                return dict(spec)
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    def retry(self, job_id: str, captions: list[str] | None = None) -> bool:
        """Make a failed movie again from its kept inputs (:meth:`kept`), under the same job id: queued as at
        :meth:`submit`. ``captions``: new ones, one per kept photo in order. False when its inputs are not kept or
        it is queued already (a second click, another portal process)."""
        job = self.get(job_id)
        spec = self.kept(job) if job is not None else None
        if spec is None:
            return False
        path = self.spool / f"job-{job_id}.json"
        with self._lock:
            if job_id in self._mine or self._closing.is_set():
                return False
            self._mine.add(job_id)  # before its row says queued: a shutdown from now on fails it again
            self._start_heartbeat()
        now = _now_ms()
        try:
            if captions is not None:
                for p, caption in zip(spec["photos"], captions, strict=True):
                    p["caption"] = caption
                path.write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
            with writing(self.engine) as conn:  # one of two clicks (or portal processes) wins
                again = conn.execute(media_jobs.update().where(
                    (media_jobs.c.id == job_id) & (media_jobs.c.kind == "movie")
                    & ((media_jobs.c.status == "failed") | (media_jobs.c.status.in_(("queued", "running"))
                                                            & (media_jobs.c.updated_ms < now - STALE_MS))))
                    .values(status="queued", progress=0, message="", updated_ms=now)).rowcount
        except BaseException:
            with self._lock:
                self._mine.discard(job_id)
            raise
        if not again:
            with self._lock:
                self._mine.discard(job_id)
            return False
        try:
            self._pool.submit(self._run, job_id, path, "movie")
        except RuntimeError:  # shut down meanwhile: it would never run
            self._interrupt({job_id})
            return False
        return True

    def _check_video(self, job_id: str, src: Path) -> None:
        """An upload's size and length, read by a child (``python -c`` :data:`_PROBE`) before anything is
        converted, against :attr:`limits`. A file the child cannot read is left to the transcoder, which says
        what is wrong with it."""
        try:
            r = subprocess.run([sys.executable, "-c", _PROBE, str(src), str(self.limits.seconds)],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                               check=False)
            got = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 and r.stdout.strip() else None
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            log.warning("media job %s: the upload could not be probed: %s", job_id, exc)
            return
        if not isinstance(got, dict):
            log.warning("media job %s: the upload could not be probed: %s", job_id, r.stderr.strip()[-300:])
            return
        if not got:
            return
        w, h, secs = got.get("width"), got.get("height"), got.get("seconds")
        self.limits.check(w if isinstance(w, int) else 0, h if isinstance(h, int) else 0,
                          float(secs) if isinstance(secs, (int, float)) else None)

    def _start_heartbeat(self) -> None:
        """(Under the lock.) The heartbeat thread, if it is not running."""
        if self._beat is None and not self._closing.is_set():
            self._beat = threading.Thread(target=self._heartbeat, name="media-jobs-heartbeat", daemon=True)
            self._beat.start()

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(media_jobs).where(media_jobs.c.id == job_id)).mappings().first()
        if row is None:
            return None
        with self._lock:
            unrecorded = self._unrecorded.get(job_id)
        if unrecorded is not None and row["status"] in ("queued", "running"):
            return {**row, "status": "failed", "message": unrecorded}
        return as_shown(dict(row))

    def _interrupt(self, job_ids: set[str]) -> None:
        """Jobs of this process that will not run on: failed as :data:`INTERRUPTED`, their files removed but a
        movie's inputs, which are kept (:data:`KEPT_FOR`; a video has none; the clean-up decides on the rest)."""
        if not job_ids:
            return
        try:
            with writing(self.engine) as conn:
                conn.execute(media_jobs.update().where(media_jobs.c.id.in_(sorted(job_ids)),
                                                       media_jobs.c.status.in_(("queued", "running")))
                             .values(status="failed", message=INTERRUPTED, updated_ms=_now_ms()))
        finally:
            for job_id in job_ids:
                self.discard_files(job_id, keep_inputs=True)
        self._tidy()

    def _heartbeat(self) -> None:
        """While this process has unfinished jobs: their rows say it is alive, and other processes' orphans
        are failed (module doc). Ends when it has none (the next :meth:`submit` starts another), and no failed
        movie's kept inputs wait for their time to pass (:data:`KEEP_MS`: removed then, by a sweep, even on a
        portal nobody uses meanwhile)."""
        while True:
            self._closing.wait(HEARTBEAT_S)
            with self._lock:
                mine, unrecorded, kept_next = sorted(self._mine), dict(self._unrecorded), self._kept_next
                if not (mine or unrecorded or kept_next is not None) or self._closing.is_set():
                    self._beat = None
                    return
            if not (mine or unrecorded):
                if kept_next is not None and _now_ms() >= kept_next:
                    self._tidy()
                continue
            try:
                with writing(self.engine) as conn:
                    for job_id, message in unrecorded.items():
                        conn.execute(media_jobs.update().where(media_jobs.c.id == job_id,
                                                               media_jobs.c.status.in_(("queued", "running")))
                                     .values(status="failed", message=message, updated_ms=_now_ms()))
                    if mine:
                        conn.execute(media_jobs.update().where(media_jobs.c.id.in_(mine),
                                                               media_jobs.c.status.in_(("queued", "running")))
                                     .values(updated_ms=_now_ms()))
                with self._lock:
                    for job_id in unrecorded:
                        self._unrecorded.pop(job_id, None)
                self._sweep()
            except Exception:  # noqa: BLE001 - a database that is away for a moment: the next beat tries again
                log.exception("media jobs heartbeat")

    def _tidy(self) -> None:
        """:meth:`_sweep` after a movie's inputs were kept, so :data:`KEEP_BYTES` holds at once (logged, not
        raised: the next sweep does it)."""
        try:
            self._sweep()
        except Exception:  # noqa: BLE001 - a database away for a moment: the next sweep tidies up
            log.exception("media jobs: the spool's clean-up did not run")

    def _sweep(self) -> None:
        """Jobs with no heartbeat for :data:`STALE_MS` are failed; spooled files no live job needs are removed:
        those of a job that ended or was failed (but a failed movie's kept inputs, for :data:`KEEP_MS` and within
        :data:`KEEP_BYTES`, newest failures first), and those with no job row untouched for :data:`UNCLAIMED_MS`."""
        now = _now_ms()
        with writing(self.engine) as conn:
            conn.execute(media_jobs.update().where(media_jobs.c.status.in_(("queued", "running")),
                                                   media_jobs.c.updated_ms < now - STALE_MS)
                         .values(status="failed", message=INTERRUPTED, updated_ms=now))
        self.spool.mkdir(parents=True, exist_ok=True)
        files: dict[str, list[Path]] = {}
        for f in self.spool.glob("job-*"):
            files.setdefault(f.name[len("job-"):].split(".", 1)[0], []).append(f)
        if not files:
            with self._lock:
                self._kept_next = None
            return
        with self.engine.connect() as conn:
            found = {r.id: dict(r._mapping) for r in conn.execute(
                select(media_jobs.c.id, media_jobs.c.status, media_jobs.c.kind, media_jobs.c.message,
                       media_jobs.c.updated_ms).where(media_jobs.c.id.in_(sorted(files))))}
        rows = {job_id: r["status"] for job_id, r in found.items()}
        with self._lock:
            mine = set(self._mine)
        kept = self._keeping({job_id: paths for job_id, paths in files.items()
                              if job_id in found and keeps(found[job_id]) and kept_until(found[job_id]) >= now
                              and any(f.name == f"job-{job_id}.json" for f in paths)}, found)
        with self._lock:
            self._kept_next = min((kept_until(found[j]) for j in kept), default=None)
            if self._kept_next is not None:
                self._start_heartbeat()  # which sweeps again once they are due
        for job_id, paths in files.items():
            if job_id in mine or rows.get(job_id) in ("queued", "running"):  # live: those not were failed above
                continue
            for f in paths:
                if job_id in kept and _is_input(f.name):
                    continue
                try:
                    if job_id in rows or f.stat().st_mtime * 1000 < now - UNCLAIMED_MS:
                        f.unlink(missing_ok=True)
                except OSError:
                    pass

    @staticmethod
    def _keeping(candidates: dict[str, list[Path]], rows: dict[str, dict[str, Any]]) -> set[str]:
        """Of the failed movies whose inputs may be kept, those that are: newest failure first, while all their
        inputs together stay within :data:`KEEP_BYTES`."""
        out: set[str] = set()
        total = 0
        for job_id in sorted(candidates, key=lambda j: (-int(rows[j]["updated_ms"]), j)):
            size = 0
            for f in candidates[job_id]:
                if _is_input(f.name):
                    try:
                        size += f.stat().st_size
                    except OSError:
                        pass
            if total + size > KEEP_BYTES:
                log.warning("media job %s: its kept photos are removed to keep the spool within %s bytes", job_id,
                            KEEP_BYTES)
                continue
            total += size
            out.add(job_id)
        return out

    def _update(self, job_id: str, **values: Any) -> None:
        with writing(self.engine) as conn:
            conn.execute(media_jobs.update().where(media_jobs.c.id == job_id).values(**values, updated_ms=_now_ms()))

    def _run(self, job_id: str, src: Path, kind: str) -> None:
        dst = self.spool / f"job-{job_id}.out.mp4"
        poster = self.spool / f"job-{job_id}.poster.jpg"
        failed = ""  # the failure recorded, if any: a movie's inputs are kept for some (KEPT_FOR)
        try:
            with writing(self.engine) as conn:
                started = conn.execute(media_jobs.update().where(media_jobs.c.id == job_id,
                                                                 media_jobs.c.status == "queued")
                                       .values(status="running", updated_ms=_now_ms())).rowcount
            if not started:  # failed meanwhile (this process missed its heartbeats: paused): not run after all
                return
            if kind == "movie":
                cmd = [sys.executable, "-m", "kiosk.player.moviemaker", "render", str(src), str(dst), str(poster)]
            else:
                w, h = self.size
                lim = self.limits
                cmd = [sys.executable, "-m", "kiosk.player.transcode", str(src), str(dst), "--width", str(w),
                       "--height", str(h), "--max-seconds", str(lim.seconds),
                       "--max-size", f"{lim.long_side}x{lim.short_side}"]
            ok, detail, duration = self._child(job_id, cmd, dst, kind)
            if not ok:
                failed = detail
                self._update(job_id, status="failed", message=detail)
                return
            if not poster.exists():
                self._poster(dst, poster)
            data = dst.read_bytes()
            still = poster.read_bytes() if poster.exists() else None
            self.discard_files(job_id)  # in hand now: "done" is never shown while the spool still holds the job
            job = self.get(job_id)
            assert job is not None
            with writing(self.engine) as conn:  # the media, its poster and its description, or none of them
                sha = store_media(conn, data, "video/mp4")
                poster_sha = store_media(conn, still, "image/jpeg") if still else None
                if kind == "video" and conn.execute(
                        select(media_info.c.sha256).where(media_info.c.sha256 == sha)).first() is None:
                    conn.execute(media_info.insert().values(
                        sha256=sha, name=job["name"], project_id=job["project_id"],
                        group_id=current_group(conn, job["project_id"], job["group_id"]),
                        duration_s=duration, uploaded_by=job["uploaded_by"], poster_sha256=poster_sha,
                        created_ms=_now_ms()))
                conn.execute(media_jobs.update().where(media_jobs.c.id == job_id).values(
                    status="done", progress=100, sha256=sha, duration_s=duration, poster_sha256=poster_sha,
                    updated_ms=_now_ms()))
        except Exception as exc:  # noqa: BLE001 - the job says what happened; the portal keeps running
            log.exception("media job %s failed", job_id)  # the details, with their paths: for the log only
            failed = NO_ROOM if storage_fault(exc) is not None else unexpected(kind)
            self._fail(job_id, failed)
        finally:
            keep = kind == "movie" and failed in KEPT_FOR
            self.discard_files(job_id, keep_inputs=keep)
            with self._lock:
                self._mine.discard(job_id)
            if keep:
                self._tidy()

    def _fail(self, job_id: str, message: str) -> None:
        """Record a job's failure. When even that cannot be written (a database on a full disk), it is kept in
        memory (:meth:`get` shows it from this process) and written by the next heartbeat that can."""
        try:
            self._update(job_id, status="failed", message=message)
        except Exception:  # noqa: BLE001 - the database is full or away: never a job that runs for ever
            log.exception("media job %s: its failure could not be recorded yet", job_id)
            with self._lock:
                self._unrecorded[job_id] = message
                self._start_heartbeat()

    def _poster(self, movie: Path, poster: Path) -> None:
        """A poster frame for an uploaded video; a video without one is still a video (logged, not failed)."""
        try:
            r = subprocess.run([sys.executable, "-m", "kiosk.player.moviemaker", "poster", str(movie), str(poster)],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)
            if r.returncode != 0:
                log.warning("no poster frame for %s: %s", movie.name, r.stderr.strip()[-300:])
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("no poster frame for %s: %s", movie.name, exc)
            poster.unlink(missing_ok=True)

    def _stop(self, proc: subprocess.Popen[str], why: str) -> None:
        """Kill a running child, noting why (the first reason counts): its job's message follows it."""
        with self._lock:
            if self._procs.get(proc, None) != "":
                return  # finished, or already stopped
            self._procs[proc] = why
            proc.kill()

    def _child(self, job_id: str, cmd: list[str], dst: Path, kind: str = "video") -> tuple[bool, str, int | None]:
        """Run a job's child: ``(ok, message, duration)``, the message one of :data:`SHOWN` (the child's own
        words go to the log)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=env)
        except OSError as exc:
            log.error("media job %s: its %s child could not start: %s", job_id, kind, exc)
            return False, NO_ROOM if storage_fault(exc) is not None else unexpected(kind), None
        with self._lock:
            self._procs[proc] = ""
            closing = self._closing.is_set()
        if closing:  # shutdown() came between this job's start and its child's
            self._stop(proc, "shutdown")
        timer = threading.Timer(TIMEOUT_S, self._stop, (proc, "timeout"))
        timer.start()
        total, last, duration = 0, 0.0, None
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                word, _, rest = line.strip().partition(" ")
                if word == "frames" and decimal(rest) is not None:
                    total = int(rest)
                elif word == "progress" and decimal(rest) is not None and total:
                    now = time.monotonic()
                    if now - last > 0.3:  # a row update per third of a second is plenty for a progress bar
                        last = now
                        try:
                            self._update(job_id, progress=min(99, int(rest) * 100 // total))
                        except Exception as exc:  # noqa: BLE001 - a bar that stands still; the job runs on
                            log.warning("media job %s: progress not recorded: %s", job_id, exc)
                elif word == "done":
                    try:
                        duration = round(json.loads(rest).get("duration_s") or 0) or None
                    except ValueError:
                        pass
            err = proc.stderr.read() if proc.stderr else ""
            rc = proc.wait()
        finally:
            timer.cancel()
            with self._lock:
                stopped = self._procs.pop(proc, "")
        if rc == 0 and dst.exists():
            return True, "", duration
        if stopped == "shutdown":  # the portal stops (a restart, a deploy): not the file's fault
            return False, INTERRUPTED, None
        if stopped == "timeout":
            return False, TOO_LONG, None
        reason = next((ln[len("error: "):] for ln in err.splitlines() if ln.startswith("error: ")), "")
        if not reason and rc < 0:  # killed by something else: the kernel's OOM killer, an administrator
            log.warning("media job %s: its %s child ended on signal %s", job_id, kind, -rc)
            return False, unexpected(kind), None
        if not reason:
            reason = (err.strip().splitlines() or [f"exit {rc}"])[-1]
        if storage_fault_words(err) is not None:  # the child could not write its output: the portal's disk
            log.error("media job %s: no room for its output: %s", job_id, reason)
            return False, NO_ROOM, None
        if reason.startswith(("too long:", "too large:")):  # the header lied: the transcoder's cap stopped it
            log.warning("media job %s: over the limits as converted: %s", job_id, reason)
            return False, LONGER_THAN_ALLOWED if reason.startswith("too long:") else LARGER_THAN_ALLOWED, None
        if reason.startswith("cannot open") or "Invalid data" in reason:
            return False, NOT_A_MOVIE, None
        if any(k in reason for k in ("has no video stream", "no decodable video frames", "produced no frames",
                                     "cannot decode")):
            return False, DAMAGED, None  # an MP4 whose index or pictures are broken: the transcoder's words, plainly
        # Anything else (the renderer's "unexpected error", a missing photo, an output it could not make): the
        # child's words name the spool's files and the system's errors, so they go to the log, not to the page.
        log.warning("media job %s: its %s child failed (exit %s): %s", job_id, kind, rc, reason)
        return False, unexpected(kind), None

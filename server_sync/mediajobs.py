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

Nothing is half-made: the movie, its poster and (for a video) its description are written in one
transaction only after the child finished and its output was read whole; a failed or interrupted
job leaves a job row that says why (in plain words, for the uploader) and no media. Every
``job-<id>.*`` file is removed in every case.

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
import os
import secrets
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from server_sync.catalog import current_group
from server_sync.configstore import store_media
from server_sync.db import media_info, media_jobs, writing
from server_sync.i18n import N_
from server_sync.wire.numbers import decimal

log = logging.getLogger(__name__)
TIMEOUT_S = 30 * 60
"""A transcode that takes longer than this is stopped (a 10-minute 1080p clip takes a few minutes)."""
# Job messages the media page translates (other reasons are shown as the transcoder gave them).
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
"""A transcoder child killed by something else than the portal (the kernel's OOM killer, an administrator)."""
HEARTBEAT_S = 30.0
"""How often a process writes the time into its unfinished jobs' rows (their ``updated_ms``)."""
STALE_MS = 2 * 60 * 1000
"""A queued or running job not written for this long (four heartbeats) belonged to a portal process that
stopped."""
UNCLAIMED_MS = 15 * 60 * 1000
"""A spooled file with no job row yet is an upload being received or photos being checked (the row comes
with :meth:`MediaJobs.submit`); one untouched for this long was left by a stopped process."""


_NO_ROOM_WORDS = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT), os.strerror(errno.EROFS),
                  f"[Errno {errno.ENOSPC}]", f"[Errno {errno.EDQUOT}]", f"[Errno {errno.EROFS}]")
"""How a child (Python, PyAV, FFmpeg) says it could not write its output for want of room."""


def no_room(exc: BaseException) -> bool:
    """Whether ``exc`` is the portal's storage refusing a write: the system's ENOSPC, EDQUOT or EROFS; SQLite's
    "database or disk is full" or "readonly database"; PostgreSQL's disk full (SQLSTATE 53100)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
    if orig is None:
        return False
    if getattr(orig, "sqlstate", None) == "53100":
        return True
    text = str(orig)
    return "database or disk is full" in text or "readonly database" in text or any(w in text for w in _NO_ROOM_WORDS)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def as_shown(job: dict[str, Any], now_ms: int | None = None) -> dict[str, Any]:
    """``job`` (a row of ``media_jobs``) as its uploader sees it: queued or running but with no heartbeat for
    :data:`STALE_MS`, its process stopped, and it is failed as :data:`INTERRUPTED` (module doc)."""
    now = _now_ms() if now_ms is None else now_ms
    if job["status"] in ("queued", "running") and job["updated_ms"] < now - STALE_MS:
        return {**job, "status": "failed", "message": INTERRUPTED}
    return job


class MediaJobs:
    def __init__(self, engine: Engine, spool: Path, size: tuple[int, int] = (1280, 720)):
        self.engine = engine
        self.spool = spool
        self.size = size
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

    def discard_files(self, job_id: str) -> None:
        for f in self.files(job_id):
            try:
                f.unlink(missing_ok=True)
            except OSError as exc:  # a spool gone read-only: removed by a later sweep
                log.error("cannot remove %s: %s", f.name, exc)

    def submit(self, job_id: str, src: Path, *, name: str, group_id: str | None, project_id: str | None,
               by: str, kind: str = "video") -> None:
        """Queue a job whose input is spooled at ``src`` (a video upload, or a movie's spec JSON next to its
        photos, all named ``job-<id>.*``)."""
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
        """Jobs of this process that will not run on: failed as :data:`INTERRUPTED`, their files removed."""
        if not job_ids:
            return
        try:
            with writing(self.engine) as conn:
                conn.execute(media_jobs.update().where(media_jobs.c.id.in_(sorted(job_ids)),
                                                       media_jobs.c.status.in_(("queued", "running")))
                             .values(status="failed", message=INTERRUPTED, updated_ms=_now_ms()))
        finally:
            for job_id in job_ids:
                self.discard_files(job_id)

    def _heartbeat(self) -> None:
        """While this process has unfinished jobs: their rows say it is alive, and other processes' orphans
        are failed (module doc). Ends when it has none (the next :meth:`submit` starts another)."""
        while True:
            self._closing.wait(HEARTBEAT_S)
            with self._lock:
                mine, unrecorded = sorted(self._mine), dict(self._unrecorded)
                if not (mine or unrecorded) or self._closing.is_set():
                    self._beat = None
                    return
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

    def _sweep(self) -> None:
        """Jobs with no heartbeat for :data:`STALE_MS` are failed; spooled files no live job needs are removed:
        those of a job that ended or was failed, and those with no job row untouched for :data:`UNCLAIMED_MS`."""
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
            return
        with self.engine.connect() as conn:
            rows = {r.id: r.status for r in conn.execute(select(media_jobs.c.id, media_jobs.c.status)
                                                         .where(media_jobs.c.id.in_(sorted(files))))}
        with self._lock:
            mine = set(self._mine)
        for job_id, paths in files.items():
            if job_id in mine or rows.get(job_id) in ("queued", "running"):  # live: those not were failed above
                continue
            for f in paths:
                try:
                    if job_id in rows or f.stat().st_mtime * 1000 < now - UNCLAIMED_MS:
                        f.unlink(missing_ok=True)
                except OSError:
                    pass

    def _update(self, job_id: str, **values: Any) -> None:
        with writing(self.engine) as conn:
            conn.execute(media_jobs.update().where(media_jobs.c.id == job_id).values(**values, updated_ms=_now_ms()))

    def _run(self, job_id: str, src: Path, kind: str) -> None:
        dst = self.spool / f"job-{job_id}.out.mp4"
        poster = self.spool / f"job-{job_id}.poster.jpg"
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
                cmd = [sys.executable, "-m", "kiosk.player.transcode", str(src), str(dst), "--width", str(w),
                       "--height", str(h)]
            ok, detail, duration = self._child(job_id, cmd, src, dst, kind)
            if not ok:
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
            log.exception("media job %s failed", job_id)
            self._fail(job_id, NO_ROOM if no_room(exc) else f"internal error: {exc}")
        finally:
            self.discard_files(job_id)
            with self._lock:
                self._mine.discard(job_id)

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

    def _child(self, job_id: str, cmd: list[str], src: Path, dst: Path,
               kind: str = "video") -> tuple[bool, str, int | None]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=env)
        except OSError as exc:
            return False, f"converter could not start: {exc}", None
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
            return False, RENDER_FAILED if kind == "movie" else STOPPED, None
        if not reason:
            reason = (err.strip().splitlines() or [f"exit {rc}"])[-1]
        if any(k in err for k in _NO_ROOM_WORDS):  # the child could not write its output: the portal's disk
            log.error("media job %s: no room for its output: %s", job_id, reason)
            reason = NO_ROOM
        elif reason.startswith("unexpected error in the renderer"):
            log.warning("media job %s: %s", job_id, reason)
            reason = RENDER_FAILED
        elif reason.startswith("cannot open") or "Invalid data" in reason:
            reason = NOT_A_MOVIE
        elif any(k in reason for k in ("has no video stream", "no decodable video frames", "produced no frames",
                                       "cannot decode")):
            reason = DAMAGED  # an MP4 whose index or pictures are broken: the transcoder's words, in plain ones
        return False, reason.replace(str(src), "the file"), None

"""Uploaded videos, transcoded to the kiosk format in the background, with progress for the media page.

An upload is spooled to a file, then one worker thread runs the kiosk's own transcoder as a child
process (``python -m kiosk.player.transcode``: H.264 High, yuv420p, ≤1080p30, closed GOP,
faststart, docs/player.md). The portal imports neither PyAV nor the kiosk: the child does, so the
kiosk format has one definition, and a crash in a decoder library takes down a child, not the
portal. The child prints ``frames N`` and ``progress n`` lines, which become the job's percent.

Nothing is half-made: the media row and its description are written in one transaction only after
the child finished and its output was read whole; a failed or interrupted job leaves a job row that
says why (in plain words, for the uploader) and no media. Spooled and output files are removed in
every case.
"""

from __future__ import annotations

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

from server_sync.configstore import store_media
from server_sync.db import media_info, media_jobs, writing
from server_sync.i18n import N_

log = logging.getLogger(__name__)
TIMEOUT_S = 30 * 60
"""A transcode that takes longer than this is stopped (a 10-minute 1080p clip takes a few minutes)."""
# Job messages the media page translates (other reasons are shown as the transcoder gave them).
NOT_A_MOVIE = N_("not a movie file the portal can read")
INTERRUPTED = N_("interrupted (the portal restarted)")
TOO_LONG = N_("stopped (took too long)")
STALE_MS = 5 * 60 * 1000
"""A queued or running job not updated for this long belonged to a portal process that stopped."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class MediaJobs:
    def __init__(self, engine: Engine, spool: Path, size: tuple[int, int] = (1280, 720)):
        self.engine = engine
        self.spool = spool
        self.size = size
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="transcode")
        self._procs: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()

    # --- lifecycle ------------------------------------------------------------------------------
    def recover(self) -> None:
        """Jobs a stopped portal left unfinished are failed, and their spooled files removed.

        Only stale ones: with several portal processes on one database, another may be working.
        """
        now = _now_ms()
        with writing(self.engine) as conn:
            conn.execute(media_jobs.update().where(media_jobs.c.status.in_(("queued", "running")),
                                                   media_jobs.c.updated_ms < now - STALE_MS)
                         .values(status="failed", message=INTERRUPTED, updated_ms=now))
        self.spool.mkdir(parents=True, exist_ok=True)
        for leftover in self.spool.glob("job-*"):
            try:
                if leftover.stat().st_mtime * 1000 < now - STALE_MS:
                    leftover.unlink(missing_ok=True)
            except OSError:
                pass

    def shutdown(self) -> None:
        with self._lock:
            for p in self._procs:
                p.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- jobs -----------------------------------------------------------------------------------
    def spool_path(self) -> tuple[str, Path]:
        job_id = secrets.token_hex(12)
        self.spool.mkdir(parents=True, exist_ok=True)
        return job_id, self.spool / f"job-{job_id}.upload"

    def submit(self, job_id: str, src: Path, *, name: str, group_id: str | None, project_id: str | None,
               by: str) -> None:
        now = _now_ms()
        with writing(self.engine) as conn:
            conn.execute(media_jobs.insert().values(id=job_id, status="queued", progress=0, message="", name=name,
                                                    group_id=group_id, project_id=project_id, uploaded_by=by,
                                                    created_ms=now, updated_ms=now))
        self._pool.submit(self._run, job_id, src)

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(media_jobs).where(media_jobs.c.id == job_id)).mappings().first()
        if row is None:
            return None
        job = dict(row)
        if job["status"] in ("queued", "running") and job["updated_ms"] < _now_ms() - STALE_MS - TIMEOUT_S * 1000:
            job.update(status="failed", message=INTERRUPTED)
        return job

    def _update(self, job_id: str, **values: Any) -> None:
        with writing(self.engine) as conn:
            conn.execute(media_jobs.update().where(media_jobs.c.id == job_id).values(**values, updated_ms=_now_ms()))

    def _run(self, job_id: str, src: Path) -> None:
        dst = src.with_suffix(".mp4")
        try:
            self._update(job_id, status="running")
            ok, detail, duration = self._transcode(job_id, src, dst)
            if not ok:
                self._update(job_id, status="failed", message=detail)
                return
            data = dst.read_bytes()
            job = self.get(job_id)
            assert job is not None
            with writing(self.engine) as conn:  # the media and its description, or neither
                sha = store_media(conn, data, "video/mp4")
                if conn.execute(select(media_info.c.sha256).where(media_info.c.sha256 == sha)).first() is None:
                    conn.execute(media_info.insert().values(
                        sha256=sha, name=job["name"], group_id=job["group_id"], project_id=job["project_id"],
                        duration_s=duration, uploaded_by=job["uploaded_by"], created_ms=_now_ms()))
                conn.execute(media_jobs.update().where(media_jobs.c.id == job_id).values(
                    status="done", progress=100, sha256=sha, updated_ms=_now_ms()))
        except Exception as exc:  # noqa: BLE001 - the job says what happened; the portal keeps running
            log.exception("media job %s failed", job_id)
            self._update(job_id, status="failed", message=f"internal error: {exc}")
        finally:
            src.unlink(missing_ok=True)
            dst.unlink(missing_ok=True)

    def _transcode(self, job_id: str, src: Path, dst: Path) -> tuple[bool, str, int | None]:
        w, h = self.size
        cmd = [sys.executable, "-m", "kiosk.player.transcode", str(src), str(dst), "--width", str(w),
               "--height", str(h)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=env)
        except OSError as exc:
            return False, f"transcoder could not start: {exc}", None
        with self._lock:
            self._procs.add(proc)
        timer = threading.Timer(TIMEOUT_S, proc.kill)
        timer.start()
        total, last, duration = 0, 0.0, None
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                word, _, rest = line.strip().partition(" ")
                if word == "frames" and rest.isdigit():
                    total = int(rest)
                elif word == "progress" and rest.isdigit() and total:
                    now = time.monotonic()
                    if now - last > 0.3:  # a row update per third of a second is plenty for a progress bar
                        last = now
                        self._update(job_id, progress=min(99, int(rest) * 100 // total))
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
                self._procs.discard(proc)
        if rc == 0 and dst.exists():
            return True, "", duration
        reason = next((ln[len("error: "):] for ln in err.splitlines() if ln.startswith("error: ")), "")
        if not reason:
            reason = TOO_LONG if rc < 0 else (err.strip().splitlines() or [f"exit {rc}"])[-1]
        if reason.startswith("cannot open") or "Invalid data" in reason:
            reason = NOT_A_MOVIE
        return False, reason.replace(str(src), "the file"), None

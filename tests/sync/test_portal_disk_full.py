"""The portal on a disk that is full or read-only: photos for the movie maker, an uploaded video, a render whose
movie does not fit, and a database with no room. Each time the person uploading is told plainly, in their
language, that the portal's disk is at fault (507, or 503 for a read-only disk), nothing half-made is kept or
served later, no job is left running for ever, and the same upload goes through once there is room.

Real HTTP on loopback, real child processes, and real small file systems (tmpfs) for the spool and the SQLite
database; filling them and remounting read-only need root (CI has it), elsewhere the tests are skipped.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
from markupsafe import escape
from movies import solid_movie
from photos import photo
from sqlalchemy import func, select
from sync_helpers import PASSWORD, staff_session

from server_sync import catalog, mediajobs, movies
from server_sync.db import media, media_jobs
from server_sync.embedded import start_portal
from server_sync.i18n import translations
from server_sync.staff import add_user
from tests.mounts import small_tmpfs

SIZE = (192, 108)
CATALOG = {"groups": [{"id": "group-a", "name": "Aの会"}],
           "projects": [{"id": "proj-a", "group_id": "group-a", "title": "Aのプロジェクト", "area": "green",
                         "goal_yen": 1000}]}


def _fill(d: Path, leave: int = 0) -> Path:
    """Take every free byte of ``d``'s file system but about ``leave``."""
    filler = d / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        if leave:
            st = os.statvfs(d)
            os.write(fd, b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
        else:
            for size in (65536, 4096, 512, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def _portal(tmp_path: Path, spool: Path, db: Path):  # noqa: ANN202
    handle = start_portal(f"sqlite:///{db}", media_size=SIZE, movie_size=SIZE, spool_dir=str(spool))
    engine = handle.app.state.engine
    catalog.import_catalog(engine, CATALOG)
    add_user(engine, "editor-a", PASSWORD, "editor", "group-a")
    return handle


def _send(s: requests.Session, url: str, token: str, files: dict[str, Path], as_json: bool = True) -> requests.Response:
    data = {"csrf": token, "project": "proj-a", "caption0": "畑で野菜を育てました"}
    parts = {k: (v.name, v.read_bytes(), "image/jpeg") for k, v in files.items()}
    return s.post(url + "/staff/movies", data=data, files=parts, timeout=120,
                  headers={"Accept": "application/json"} if as_json else {})


def _wait(handle, job: str) -> dict:  # noqa: ANN001
    for _ in range(600):
        row = handle.app.state.jobs.get(job)
        if row["status"] in ("done", "failed"):
            return row
        time.sleep(0.1)
    raise AssertionError(f"job {job} still {row['status']} at {row['progress']}%")


def _rows(handle) -> tuple[int, int]:  # noqa: ANN001
    with handle.app.state.engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (media, media_jobs))


def _job_files(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.glob("job-*"))


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_photos_sent_to_a_full_spool_are_refused_saying_the_disk_is_full(tmp_path: Path, lang: str) -> None:
    """Not "the form could not be read, reload the page" (400), which sends the editor round in circles: a 507
    that says the portal's disk is full and nothing was saved. Nothing is kept; with room again, the same photos
    make a movie."""
    files = {f"photo{i}": photo(tmp_path / f"p{i}.jpg", i) for i in range(3)}
    with small_tmpfs(tmp_path / "spool", "3m") as spool:
        handle = _portal(tmp_path, spool, tmp_path / "portal.db")
        try:
            s, token = staff_session(handle.url, "editor-a", lang=lang)
            filler = _fill(spool)
            want = translations(lang).gettext(movies.NO_ROOM)
            r = _send(s, handle.url, token, files)
            assert r.status_code == 507, (r.status_code, r.text)
            assert r.json()["reason"] == want
            r = _send(s, handle.url, token, files, as_json=False)  # the form without its script: a page
            assert r.status_code == 507 and str(escape(want)) in r.text
            assert _job_files(spool) == [] and _rows(handle) == (0, 0)
            filler.unlink()
            r = _send(s, handle.url, token, files)
            assert r.status_code == 202, r.text
            assert _wait(handle, r.json()["job"])["status"] == "done"
        finally:
            handle.stop()


def test_a_video_uploaded_to_a_full_or_read_only_spool_is_refused_in_plain_words(tmp_path: Path) -> None:
    """The operator's video upload: a 507 (full) or 503 (read-only) with the reason the page shows, not a bare
    "Internal Server Error"; no file and no job row left."""
    movie = solid_movie(tmp_path / "clip.mp4", (10, 200, 10), size=(320, 180), seconds=1.0)
    with small_tmpfs(tmp_path / "spool", "2m") as spool:
        handle = _portal(tmp_path, spool, tmp_path / "portal.db")
        try:
            s, token = staff_session(handle.url, "editor-a")

            def upload() -> requests.Response:
                return s.post(handle.url + "/staff/media-upload", data=movie.read_bytes(), timeout=30, headers={
                    "X-CSRF-Token": token, "X-Project": "proj-a", "X-File-Name": "clip.mp4",
                    "Content-Type": "video/mp4"})

            want = translations("ja").gettext(mediajobs.NO_ROOM_PAGE)
            filler = _fill(spool)
            r = upload()
            assert (r.status_code, r.json()) == (507, {"error": "no_room", "reason": want}), r.text
            filler.unlink()
            subprocess.run(["mount", "-o", "remount,ro", str(spool)], check=True)
            try:
                r = upload()
            finally:
                subprocess.run(["mount", "-o", "remount,rw", str(spool)], check=True)
            assert (r.status_code, r.json()["reason"]) == (503, want), r.text
            assert _job_files(spool) == [] and _rows(handle) == (0, 0)
            r = upload()
            assert r.status_code == 202 and _wait(handle, r.json()["job"])["status"] == "done"
        finally:
            handle.stop()


def test_a_movie_that_does_not_fit_on_the_spool_fails_saying_the_disk_is_full(tmp_path: Path) -> None:
    """The photos fit, the rendered movie does not: the job fails, telling the editor it is the portal's disk and
    not their photos (never the system's words with the spool's path); no media is stored, no file is left."""
    files = {f"photo{i}": photo(tmp_path / f"p{i}.jpg", i) for i in range(3)}
    photos_bytes = sum(p.stat().st_size for p in files.values())
    with small_tmpfs(tmp_path / "spool", "3m") as spool:
        handle = _portal(tmp_path, spool, tmp_path / "portal.db")
        try:
            s, token = staff_session(handle.url, "editor-a")
            filler = _fill(spool, leave=photos_bytes + 48 * 1024)  # the photos and their spec, not the movie
            r = _send(s, handle.url, token, files)
            assert r.status_code == 202, r.text
            job = r.json()["job"]
            row = _wait(handle, job)
            assert row["status"] == "failed" and row["message"] == mediajobs.NO_ROOM, row
            shown = s.get(f"{handle.url}/staff/movies/{job}/job", timeout=10).json()["message"]
            assert translations("ja").gettext(mediajobs.NO_ROOM) in shown and str(spool) not in shown
            assert _job_files(spool) == [] and _rows(handle) == (0, 1)
            filler.unlink()
            r = _send(s, handle.url, token, files)
            assert _wait(handle, r.json()["job"])["status"] == "done"
        finally:
            handle.stop()


def test_a_finished_movie_the_full_database_cannot_take_fails_at_once_not_running_for_ever(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk under the database (SQLite) fills up while a movie renders: the database takes neither the movie
    nor, perhaps, the job's end. The job is shown failed with the plain reason at once (not "running" until it is
    called "interrupted (the portal restarted)", nor the database's error with its SQL), no movie is stored, and
    its failure reaches the database once there is room. A staff request that must write meanwhile answers 507 in
    plain words, not "database busy; retry"."""
    monkeypatch.setattr(mediajobs, "HEARTBEAT_S", 0.5)  # the beat that writes a failure the database refused
    files = {f"photo{i}": photo(tmp_path / f"p{i}.jpg", i) for i in range(3)}
    with small_tmpfs(tmp_path / "db", "4m") as dbdir:
        handle = _portal(tmp_path, tmp_path / "spool", dbdir / "portal.db")
        engine = handle.app.state.engine
        try:
            s, token = staff_session(handle.url, "editor-a")
            r = _send(s, handle.url, token, files)
            assert r.status_code == 202, r.text
            job = r.json()["job"]
            with engine.connect() as conn:  # every later write needs new room: none of the WAL's to reuse
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            filler = _fill(dbdir)
            row = _wait(handle, job)
            assert row["status"] == "failed" and row["message"] == mediajobs.NO_ROOM, row
            assert _rows(handle)[0] == 0  # no movie stored
            r = _send(s, handle.url, token, files)  # its job row cannot be written: refused plainly, nothing kept
            assert (r.status_code, r.json()["reason"]) == (507, translations("ja").gettext(mediajobs.NO_ROOM_PAGE))
            assert _job_files(tmp_path / "spool") == []
            filler.unlink()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    stored = conn.execute(select(media_jobs.c.status, media_jobs.c.message)
                                          .where(media_jobs.c.id == job)).one()
                if stored.status == "failed":
                    break
                time.sleep(0.2)
            assert tuple(stored) == ("failed", mediajobs.NO_ROOM)
        finally:
            handle.stop()

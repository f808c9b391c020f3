"""The portal on a disk that is full or read-only: photos for the movie maker, an uploaded video, a render whose
movie does not fit, and a database with no room. Each time the person uploading is told plainly, in their
language, that the portal's disk is at fault (507, or 503 for a read-only disk), nothing half-made is kept or
served later, no job is left running for ever, and the same upload goes through once there is room. A job the
full disk stopped says it is the portal's fault and whom to tell, not "try other photos"; the OpenAPI document
lists the 507 where it is given.

Real HTTP on loopback, real child processes, and real small file systems (tmpfs) for the spool and the SQLite
database; filling them and remounting read-only need root (CI has it), elsewhere the tests are skipped.
"""

from __future__ import annotations

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
from sync_helpers import PASSWORD, enrolled, needs_chromium, staff_page, staff_session

from kiosk.ledger import keys
from server_sync import catalog, mediajobs, movies
from server_sync.configstore import publish
from server_sync.db import media, media_jobs
from server_sync.embedded import start_portal
from server_sync.i18n import translations
from server_sync.staff import add_user
from server_sync.wire import protocol as P
from tests.mounts import fill, small_tmpfs

SIZE = (192, 108)
CATALOG = {"groups": [{"id": "group-a", "name": "Aの会"}],
           "projects": [{"id": "proj-a", "group_id": "group-a", "title": "Aのプロジェクト", "area": "green",
                         "goal_yen": 1000}]}


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
            filler = fill(spool)
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
            filler = fill(spool)
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
            filler = fill(spool, leave=photos_bytes + 48 * 1024)  # the photos and their spec, not the movie
            r = _send(s, handle.url, token, files)
            assert r.status_code == 202, r.text
            job = r.json()["job"]
            row = _wait(handle, job)
            assert row["status"] == "failed" and row["message"] == mediajobs.NO_ROOM, row
            shown = s.get(f"{handle.url}/staff/movies/{job}/job", timeout=10).json()["message"]
            assert "ポータル側の問題" in shown and "センターの職員" in shown and str(spool) not in shown
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
            filler = fill(dbdir)
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


OTHER_PHOTOS = "別の写真"  # "try again, or with other photos": the editor's photos are not at fault here
OTHER_FILE = "別のファイル"  # "try another file"


@needs_chromium
def test_a_movie_the_full_disk_stopped_tells_the_editor_it_is_the_portal_and_whom_to_tell(tmp_path: Path,
                                                                                            browser) -> None:
    """The editor watching their movie in the browser: the page it lands on says the portal's disk is at fault,
    not their photos, and to tell the center staff; not "try again, or with other photos"."""
    files = {f"photo{i}": photo(tmp_path / f"p{i}.jpg", i) for i in range(3)}
    photos_bytes = sum(p.stat().st_size for p in files.values())
    with small_tmpfs(tmp_path / "spool", "3m") as spool:
        handle = _portal(tmp_path, spool, tmp_path / "portal.db")
        try:
            page = staff_page(browser, handle.url, "editor-a")
            fill(spool, leave=photos_bytes + 48 * 1024)  # the photos and their spec, not the movie
            page.goto(handle.url + "/staff/movies")
            for i, p in enumerate(files.values()):
                page.set_input_files(f"#f-photo{i}", str(p))
            page.fill("#f-caption0", "畑で野菜を育てました")
            page.click("#movie-send")
            page.wait_for_url("**/staff/movies/*", timeout=60_000)
            failed = page.locator("#movie-failed")
            failed.wait_for(timeout=120_000)  # the page follows the job, then shows how it ended
            text = failed.inner_text()
            assert "ポータル側の問題" in text and "写真の問題ではなく" in text, text
            assert "センターの職員にお知らせ" in text, text
            assert OTHER_PHOTOS not in text and str(spool) not in text, text
        finally:
            handle.stop()


def test_a_video_the_full_disk_could_not_convert_tells_the_editor_it_is_the_portal(tmp_path: Path) -> None:
    """The upload fits, its conversion does not: the job's message (which the videos page shows) says it is the
    portal's disk and whom to tell, in the staff member's language; not "try another file"."""
    clip = _noise_movie(tmp_path / "clip.mp4")  # its conversion (1280x720) is about twenty times its size
    with small_tmpfs(tmp_path / "spool", "3m") as spool:
        handle = start_portal(f"sqlite:///{tmp_path / 'portal.db'}", media_size=(1280, 720), spool_dir=str(spool))
        catalog.import_catalog(handle.app.state.engine, CATALOG)
        add_user(handle.app.state.engine, "editor-a", PASSWORD, "editor", "group-a")
        try:
            for lang, words in (("ja", ("ポータル側の問題", "センターの職員")),
                                ("en", ("portal's problem", "center staff"))):
                s, token = staff_session(handle.url, "editor-a", lang=lang)
                filler = fill(spool, leave=clip.stat().st_size + 64 * 1024)
                r = s.post(handle.url + "/staff/media-upload", data=clip.read_bytes(), timeout=30, headers={
                    "X-CSRF-Token": token, "X-Project": "proj-a", "X-File-Name": "clip.mp4",
                    "Content-Type": "video/mp4"})
                assert r.status_code == 202, r.text
                job = r.json()["job"]
                assert _wait(handle, job)["message"] == mediajobs.NO_ROOM
                got = s.get(f"{handle.url}/staff/media-jobs/{job}", timeout=10).json()
                assert got["status"] == "failed" and all(w in got["message"] for w in words), got
                assert OTHER_FILE not in got["message"] and "another file" not in got["message"], got
                filler.unlink()
        finally:
            handle.stop()


def test_the_openapi_document_lists_the_full_disk_answer_where_it_is_given(tmp_path: Path, rig) -> None:  # noqa: ANN001
    """A kiosk's heartbeat and batch upload to a portal whose database disk is full get 507 {"error": "no_room"};
    the served OpenAPI document lists that answer (an ErrorAnswer) for them and for the other requests that
    store what they are sent (enrollment, the staff's video upload and movie photos)."""
    with small_tmpfs(tmp_path / "db", "4m") as dbdir:
        handle = _portal(tmp_path, tmp_path / "spool", dbdir / "portal.db")
        try:
            publish(handle.app.state.engine, {"projects": [{"id": "proj-a", "title": "A", "area": "green"}]})
            up = enrolled(rig, handle)
            rig.donate(2)
            with handle.app.state.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            filler = fill(dbdir)
            sk = keys.load_private(rig.cfg.private_key_path)
            path = f"/api/v1/kiosks/{rig.kiosk_id}/heartbeat"
            body = P.KioskNow(boot=1, mono_ms=1000, wall_ms=int(time.time() * 1000), clock_synced=True,
                              ledger_size=2).model_dump_json().encode()
            headers = {**P.sign_request(sk, rig.kiosk_id, "POST", path, body, int(time.time()), ""),
                       "Content-Type": "application/json"}
            r = requests.post(handle.url + path, data=body, headers=headers, timeout=10)
            assert r.status_code == 507 and r.json()["error"] == "no_room", r.text
            answered = {("post", "/api/v1/kiosks/{kiosk_id}/heartbeat"): r.json()}
            state = up.sync_once(max_attempts=1)
            assert state.last_error and "507" in str(state.last_error), state
            spec = requests.get(handle.url + "/openapi.json", timeout=10).json()
            error_answer = spec["components"]["schemas"]["ErrorAnswer"]
            for method, op in [*answered, ("post", "/api/v1/kiosks/{kiosk_id}/batches"), ("post", "/api/v1/enroll"),
                               ("post", "/staff/media-upload"), ("post", "/staff/movies"),
                               ("post", "/api/v1/kiosks/{kiosk_id}/peppers")]:
                listed = spec["paths"][op][method]["responses"].get("507")
                assert listed is not None, (method, op)
                ref = listed["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorAnswer", (op, listed)
                if (method, op) in answered:
                    assert set(error_answer["required"]) <= set(answered[method, op]), answered[method, op]
            filler.unlink()
            assert up.sync_once().ok  # with room again, the same upload goes through
        finally:
            handle.stop()


def _noise_movie(path: Path, size: tuple[int, int] = (160, 90), seconds: float = 2.0, fps: int = 24) -> Path:
    """A small movie of random pixels: its conversion to a large size does not shrink away as a solid colour's."""
    from fractions import Fraction

    import av

    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame(w, h, "rgb24")
            frame.planes[0].update(os.urandom(frame.planes[0].line_size * h))
            f = frame.reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, fps)
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path

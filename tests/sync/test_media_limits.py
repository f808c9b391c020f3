"""An uploaded video over the portal's limits (too large a picture for a kiosk, too long for a project's video):
refused before it is converted, with a plain message in the editor's language that says the limit and what to do;
nothing of it is kept (no spooled file, no job row, no media). And a job that fails shows the editor a plain
reason, never a spool path or an exception's text: those go to the log.

Real HTTP on loopback, real movies encoded with PyAV in the test, the real probe and transcoder child processes,
a real SQLite file, and headless Chromium for the videos page.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from movies import solid_movie
from photos import photo
from sqlalchemy import func, select
from sync_helpers import PASSWORD, needs_chromium, staff_page, staff_session

from server_sync import catalog, mediajobs, movies
from server_sync.app import options_from_env
from server_sync.db import media, media_info, media_jobs, writing
from server_sync.embedded import start_portal
from server_sync.staff import add_user
from tests.loopback import free_port

SIZE = (192, 108)
CATALOG = {"groups": [{"id": "group-a", "name": "Aの会"}],
           "projects": [{"id": "proj-a", "group_id": "group-a", "title": "Aのプロジェクト", "area": "green",
                         "goal_yen": 1000}]}


@pytest.fixture
def limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """A portal whose administrator set low limits: 320×180 pixels either way round, 2 seconds (read as
    `kiosk-portal serve` and the unit read them)."""
    monkeypatch.setenv("KIOSK_PORTAL_VIDEO_MAX_SIZE", "320x180")
    monkeypatch.setenv("KIOSK_PORTAL_VIDEO_MAX_SECONDS", "2")
    opts = options_from_env()
    assert opts["video_limits"] == mediajobs.VideoLimits(320, 180, 2)
    handle = start_portal(f"sqlite:///{tmp_path / 'portal.db'}", media_size=SIZE, movie_size=SIZE,
                          spool_dir=str(tmp_path / "spool"), video_limits=opts["video_limits"])
    catalog.import_catalog(handle.app.state.engine, CATALOG)
    add_user(handle.app.state.engine, "editor-a", PASSWORD, "editor", "group-a")
    yield handle
    handle.stop()


def _upload(s: requests.Session, url: str, token: str, clip: Path) -> requests.Response:
    return s.post(url + "/staff/media-upload", data=clip.read_bytes(), timeout=60, headers={
        "X-CSRF-Token": token, "X-Project": "proj-a", "X-File-Name": clip.name, "Content-Type": "video/mp4"})


def _counts(handle) -> tuple[int, int, int]:  # noqa: ANN001
    with handle.app.state.engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (media, media_info, media_jobs))


def _wait(handle, job: str) -> dict:  # noqa: ANN001
    for _ in range(600):
        row = handle.app.state.jobs.get(job)
        if row["status"] in ("done", "failed"):
            return row
        time.sleep(0.1)
    raise AssertionError(f"job {job} still {row['status']}")


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_video_too_large_or_too_long_is_refused_before_conversion_saying_the_limit(limited, tmp_path: Path,
                                                                                     lang: str) -> None:
    """A 4K-like picture (here 640×360 against 320×180) and a 30-minute-like length (here 3 s against 2 s):
    each a 422 whose reason names the video's size or length, the limit and what to do. Nothing is kept: no
    spooled file, no job row, no media. Within the limits (a portrait 180×320 clip of 2 s too), it is converted."""
    handle, spool = limited, tmp_path / "spool"
    s, token = staff_session(handle.url, "editor-a", lang=lang)
    big = solid_movie(tmp_path / "big.mp4", (200, 10, 10), size=(640, 360), seconds=1.0)
    long = solid_movie(tmp_path / "long.mp4", (10, 10, 200), size=(320, 180), seconds=3.0)

    r = _upload(s, handle.url, token, big)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "video_too_large"
    reason = r.json()["reason"]
    if lang == "ja":
        assert "640 × 360 ピクセル" in reason and "320 × 180 ピクセルまで" in reason, reason
        assert "何も保存されていません" in reason and "もう一度アップロードしてください" in reason, reason
    else:
        assert "640 × 360 pixels" in reason and "at most 320 × 180 pixels" in reason, reason
        assert "Nothing was saved" in reason and "upload it again" in reason, reason
    assert list(spool.glob("job-*")) == [] and _counts(handle) == (0, 0, 0)

    r = _upload(s, handle.url, token, long)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "video_too_long"
    reason = r.json()["reason"]
    if lang == "ja":
        assert "長すぎます（3 秒）" in reason and "2 秒までです" in reason and "短くして" in reason, reason
    else:
        assert "too long (3 s)" in reason and "at most 2 s" in reason and "Shorten it" in reason, reason
    assert list(spool.glob("job-*")) == [] and _counts(handle) == (0, 0, 0)

    upright = solid_movie(tmp_path / "upright.mp4", (10, 200, 10), size=(180, 320), seconds=2.0)
    r = _upload(s, handle.url, token, upright)
    assert r.status_code == 202, r.text
    assert _wait(handle, r.json()["job"])["status"] == "done"
    assert _counts(handle) == (2, 1, 1)  # the video and its poster frame, its description, its job


def test_the_limits_default_to_what_a_kiosk_plays_and_a_bad_setting_stops_the_portal_naming_the_fix(
        tmp_path: Path) -> None:
    """Unset: 1920×1080 either way round and five minutes. A setting that does not parse stops the portal at
    start, naming the variable and the form it takes, rather than refusing or allowing every upload."""
    assert mediajobs.VideoLimits.from_env({}) == mediajobs.VideoLimits(1920, 1080, 300)
    assert mediajobs.VideoLimits.from_env({"KIOSK_PORTAL_VIDEO_MAX_SIZE": "720x1280",
                                           "KIOSK_PORTAL_VIDEO_MAX_SECONDS": "90"}) == mediajobs.VideoLimits(
        1280, 720, 90)
    for env, words in (({"KIOSK_PORTAL_VIDEO_MAX_SIZE": "4k"}, "WIDTHxHEIGHT"),
                       ({"KIOSK_PORTAL_VIDEO_MAX_SECONDS": "5min"}, "whole number of seconds")):
        with pytest.raises(RuntimeError, match=words):
            mediajobs.VideoLimits.from_env(env)
    # As the operator meets it: `kiosk-portal serve` stops at start, in one line.
    env = {**os.environ, "KIOSK_PORTAL_VIDEO_MAX_SECONDS": "5min",
           "KIOSK_PORTAL_SECRET_FILE": str(tmp_path / "session-secret")}
    r = subprocess.run([sys.executable, "-m", "server_sync.portal_cli", "serve", "--db",
                        f"sqlite:///{tmp_path / 'p.db'}", "--port", str(free_port())], env=env, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip() == ("kiosk-portal serve: KIOSK_PORTAL_VIDEO_MAX_SECONDS='5min': a whole number of "
                                "seconds, e.g. 300"), r.stderr


@needs_chromium
def test_the_videos_page_shows_the_editor_why_a_too_long_video_was_refused(limited, tmp_path: Path,
                                                                           browser) -> None:  # noqa: ANN001
    """On the videos page, in Chromium: the editor chooses a video that is too long and sees, in Japanese, how
    long it is, the limit and to shorten it; nothing is kept."""
    long = solid_movie(tmp_path / "long.mp4", (10, 10, 200), size=(320, 180), seconds=3.0)
    page = staff_page(browser, limited.url, "editor-a")
    page.goto(limited.url + "/staff/media")
    page.select_option("#u-project", "proj-a")
    page.set_input_files("#u-file", str(long))
    page.click("#u-send")
    text = page.locator("#u-text.bad")
    text.wait_for(timeout=60_000)
    shown = text.inner_text()
    assert "長すぎます（3 秒）" in shown and "2 秒までです" in shown and "短くして" in shown, shown
    assert list((tmp_path / "spool").glob("job-*")) == [] and _counts(limited) == (0, 0, 0)


# --- a failed job shows a plain reason, never a path ------------------------------------------------------------

def _no_internals(text: str, spool: Path) -> None:
    for word in (str(spool), "job-", "Errno", "Error", "/"):
        assert word not in text, (word, text)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_video_whose_conversion_fails_on_a_spool_error_shows_no_path(limited, tmp_path: Path, lang: str,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """The transcoder cannot write its output (a directory in its place in the spool): the child's last words
    are the system's, with the spool's path ("IsADirectoryError: [Errno 21] Is a directory: '/…/job-….out.mp4'").
    The editor's answer says in plain words that the conversion stopped, not the file's fault, and whom to
    tell; the path is in the log only."""
    handle, spool = limited, tmp_path / "spool"
    job_id = "a" * 24
    spool.mkdir(exist_ok=True)
    src = solid_movie(tmp_path / "clip.mp4", (10, 200, 10), size=(320, 180), seconds=1.0).rename(
        spool / f"job-{job_id}.upload")  # as the videos page spools an upload
    blocker = spool / f"job-{job_id}.out.mp4"
    blocker.mkdir()
    caplog.set_level(logging.WARNING, logger="server_sync.mediajobs")
    handle.app.state.jobs.submit(job_id, src, name="clip", group_id="group-a", project_id="proj-a", by="editor-a")
    row = _wait(handle, job_id)
    blocker.rmdir()
    assert row["status"] == "failed" and row["message"] == mediajobs.STOPPED, row
    s, _ = staff_session(handle.url, "editor-a", lang=lang)
    got = s.get(f"{handle.url}/staff/media-jobs/{job_id}", timeout=10).json()
    assert got["status"] == "failed", got
    _no_internals(got["message"], spool)
    assert ("変換が途中で予期せず止まりました" in got["message"] if lang == "ja" else
            "stopped unexpectedly" in got["message"]), got
    assert str(blocker) in caplog.text  # the detail, for the administrator
    assert _counts(handle)[:2] == (0, 0)


def test_a_movie_whose_render_fails_on_a_missing_photo_shows_no_path(limited, tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A photo gone from the spool before the render (a temp-file cleaner in the default spool under /tmp): the
    renderer says "[Errno 2] No such file or directory: '/…/job-….photo1'". The movie's page and its job's JSON
    say the movie could not be made, in plain words; the path is in the log only."""
    handle, spool = limited, tmp_path / "spool"
    job_id = "b" * 24
    spool.mkdir(exist_ok=True)
    spec = movies.write_spec(spool, job_id, group="Aの会", project="Aのプロジェクト", area="green", size=SIZE,
                             photos=[(photo(spool / f"job-{job_id}.photo{i}", i), "") for i in range(3)])
    gone = spool / f"job-{job_id}.photo1"
    gone.unlink()
    caplog.set_level(logging.WARNING, logger="server_sync.mediajobs")
    handle.app.state.jobs.submit(job_id, spec, name="movie", group_id="group-a", project_id="proj-a",
                                 by="editor-a", kind="movie")
    row = _wait(handle, job_id)
    assert row["status"] == "failed" and row["message"] == mediajobs.RENDER_FAILED, row
    s, _ = staff_session(handle.url, "editor-a")
    got = s.get(f"{handle.url}/staff/movies/{job_id}/job", timeout=10).json()
    _no_internals(got["message"], spool)
    assert "ムービーを作れませんでした" in got["message"] and "センターの職員" in got["message"], got
    page = s.get(f"{handle.url}/staff/movies/{job_id}", timeout=10).text
    assert got["message"] in page and str(spool) not in page and gone.name not in page
    assert str(gone) in caplog.text


def test_a_failed_job_stored_with_an_internal_text_is_shown_plainly(limited, tmp_path: Path) -> None:
    """A job row an older portal failed with the exception's own words ("internal error: [Errno 2] … '/var/…'"):
    its video's and its movie's answers show the plain reason, not the stored text."""
    handle = limited
    now = time.time_ns() // 1_000_000
    leaked = "internal error: [Errno 2] No such file or directory: '/var/lib/kiosk-portal/spool/job-x.out.mp4'"
    with writing(handle.app.state.engine) as conn:
        for job_id, kind in (("c" * 24, "video"), ("d" * 24, "movie")):
            conn.execute(media_jobs.insert().values(id=job_id, status="failed", progress=0, message=leaked,
                                                    name="old", group_id="group-a", project_id="proj-a",
                                                    uploaded_by="editor-a", kind=kind, created_ms=now,
                                                    updated_ms=now))
    s, _ = staff_session(handle.url, "editor-a")
    video = s.get(f"{handle.url}/staff/media-jobs/{'c' * 24}", timeout=10).json()["message"]
    movie = s.get(f"{handle.url}/staff/movies/{'d' * 24}/job", timeout=10).json()["message"]
    for text in (video, movie):
        _no_internals(text, Path("/var/lib/kiosk-portal/spool"))
    assert "変換が途中で予期せず止まりました" in video and "ムービーを作れませんでした" in movie
    listing = s.get(f"{handle.url}/staff/movies/{'d' * 24}", timeout=10).text
    assert "/var/lib/kiosk-portal" not in listing

"""Review 51 of the movie maker: a movie that failed on something other than its photos (the portal restarted
mid-render, the renderer stopped on an error, the 30-minute timeout) lost the editor's work: every spooled photo
was deleted and the captions were stored nowhere, so the editor chose every photo and typed every caption again.
Now its photos and captions are kept for a day (mediajobs.KEEP_MS) and its page offers 「もう一度作る」 (one click)
and 「一言を直してから作る」; Discard removes them; after their time the clean-up removes them and the page says so.

Real portal on loopback with a real SQLite file, real photos made with Pillow, the real checker and renderer; a
failure is caused for real: the portal stopped under a paused render child, or the child killed (as the kernel's
OOM killer does).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
import requests
from photos import photo
from sync_helpers import PASSWORD, staff_session

from server_sync import catalog, mediajobs
from server_sync.db import media_jobs, writing
from server_sync.embedded import start_portal
from server_sync.staff import add_user

SIZE = (96, 54)
CATALOG = {"groups": [{"id": "group-a", "name": "Aの会"}, {"id": "group-b", "name": "Bの会"}],
           "projects": [{"id": "proj-a", "group_id": "group-a", "title": "Aのプロジェクト", "area": "green",
                         "goal_yen": 1000}]}
CAPTIONS = {0: "畑を耕しました", 1: "みんなで収穫", 2: "ありがとう"}


def _start(tmp_path: Path):  # noqa: ANN202
    handle = start_portal(f"sqlite:///{tmp_path / 'portal.db'}", media_size=SIZE, movie_size=SIZE,
                          spool_dir=str(tmp_path / "spool"))
    engine = handle.app.state.engine
    catalog.import_catalog(engine, CATALOG)
    for user, group in (("editor-a", "group-a"), ("editor-b", "group-b")):
        try:
            add_user(engine, user, PASSWORD, "editor", group)
        except Exception:  # noqa: BLE001 - already there (the portal started again on the same database)
            pass
    return handle


@pytest.fixture
def op(tmp_path: Path):
    handle = _start(tmp_path)
    yield handle
    handle.stop()


def _send(s: requests.Session, url: str, token: str, tmp_path: Path) -> str:
    files = {f"photo{i}": photo(tmp_path / f"g{i}.jpg", i, size=(320, 240)) for i in range(3)}
    parts = {k: (v.name, v.read_bytes(), "image/jpeg") for k, v in files.items()}
    data = {"csrf": token, "project": "proj-a", **{f"caption{i}": c for i, c in CAPTIONS.items()}}
    r = s.post(url + "/staff/movies", data=data, files=parts, timeout=60, headers={"Accept": "application/json"})
    assert r.status_code == 202, r.text
    return str(r.json()["job"])


def _child(handle, job_id: str):  # noqa: ANN001, ANN202
    """The job's render child once it runs, paused where it is (SIGSTOP): still running when the test acts."""
    jobs = handle.app.state.jobs
    for _ in range(1000):
        if jobs._procs:
            child = next(iter(jobs._procs))
            os.kill(child.pid, signal.SIGSTOP)
            return child
        time.sleep(0.01)
    raise AssertionError("the render never started")


def _finished(s: requests.Session, url: str, job: str) -> dict:
    for _ in range(1200):
        j = s.get(f"{url}/staff/movies/{job}/job", timeout=10).json()
        if j["status"] in ("done", "failed"):
            return j
        time.sleep(0.05)
    raise AssertionError("movie job did not finish")


def _inputs(spool: Path, job: str) -> list[str]:
    return sorted(f.name[len(f"job-{job}."):] for f in spool.glob(f"job-{job}.*"))


def test_a_render_cut_by_a_restart_keeps_the_photos_and_captions_and_is_made_again_with_one_click(tmp_path):
    spool = tmp_path / "spool"
    first = _start(tmp_path)
    try:
        s, token = staff_session(first.url, "editor-a")
        job = _send(s, first.url, token, tmp_path)
        _child(first, job)
    finally:
        first.stop()  # a restart under the render (the app's shutdown: jobs.shutdown())
    assert _inputs(spool, job) == ["json", "photo0", "photo1", "photo2"]  # the partial movie went, the inputs stay
    second = _start(tmp_path)  # its start's clean-up (recover) keeps them
    try:
        s, token = staff_session(second.url, "editor-a")
        page = s.get(f"{second.url}/staff/movies/{job}", timeout=10).text
        assert "ポータルの再起動で中断しました" in page
        assert re.search(r"選んだ写真と一言は .+ まで残してあります。「もう一度作る」を押すと", page), page
        assert f'action="/staff/movies/{job}/retry"' in page and ">もう一度作る</button>" in page
        # Another group's editor may not; nor a form without its token.
        b, token_b = staff_session(second.url, "editor-b")
        assert b.post(f"{second.url}/staff/movies/{job}/retry", data={"csrf": token_b}, timeout=10).status_code == 403
        assert s.post(f"{second.url}/staff/movies/{job}/retry", data={}, timeout=10).status_code == 403
        assert second.app.state.jobs.get(job)["status"] == "failed"
        r = s.post(f"{second.url}/staff/movies/{job}/retry", data={"csrf": token}, timeout=10)
        assert r.status_code == 200 and r.url.endswith(f"/staff/movies/{job}"), r.url
        assert _finished(s, second.url, job)["status"] == "done"
        assert s.get(f"{second.url}/staff/movies/{job}/preview", timeout=10).status_code == 200
        assert 'id="publish"' in s.get(f"{second.url}/staff/movies/{job}", timeout=10).text
        assert _inputs(spool, job) == []  # made: nothing of it left in the spool
    finally:
        second.stop()


def test_a_killed_render_keeps_its_captions_to_change_then_make_again(op, tmp_path):
    spool = tmp_path / "spool"
    s, token = staff_session(op.url, "editor-a")
    job = _send(s, op.url, token, tmp_path)
    os.kill(_child(op, job).pid, signal.SIGKILL)  # the kernel's OOM killer, say
    assert _finished(s, op.url, job)["status"] == "failed"
    assert op.app.state.jobs.get(job)["message"] == mediajobs.RENDER_FAILED
    page = s.get(f"{op.url}/staff/movies/{job}", timeout=10).text
    assert f'href="/staff/movies/{job}/edit"' in page and "一言を直してから作る" in page
    edit = s.get(f"{op.url}/staff/movies/{job}/edit", timeout=10)
    assert edit.status_code == 200
    for i, caption in CAPTIONS.items():  # the kept captions, in the boxes of their photos
        assert f'name="caption{i}" value="{caption}"' in edit.text
        assert f"写真{i + 1}の一言" in edit.text
    assert "写真は前に選んだものを、同じ順番でそのまま使います" in edit.text
    # A caption the movie cannot show is refused beside it, the typing kept and nothing queued.
    bad = {"csrf": token, "caption0": "畑を耕しました🎉", "caption1": "みんなで収穫", "caption2": "ありがとう"}
    r = s.post(f"{op.url}/staff/movies/{job}/retry", data=bad, timeout=10)
    assert r.status_code == 422 and "このムービーでは次の文字を表示できません：🎉" in r.text
    assert 'value="畑を耕しました🎉"' in r.text and op.app.state.jobs.get(job)["status"] == "failed"
    good = {**bad, "caption0": "畑を耕しました！"}
    r = s.post(f"{op.url}/staff/movies/{job}/retry", data=good, timeout=10)
    assert r.status_code == 200 and r.url.endswith(f"/staff/movies/{job}"), r.url
    child = _child(op, job)  # the new render, paused a moment: it reads the changed captions
    try:
        spec = json.loads((spool / f"job-{job}.json").read_text("utf-8"))
    finally:
        os.kill(child.pid, signal.SIGCONT)
    assert [p["caption"] for p in spec["photos"]] == ["畑を耕しました！", "みんなで収穫", "ありがとう"]
    assert _finished(s, op.url, job)["status"] == "done"
    assert _inputs(spool, job) == []


def _kept_failure(op, spool: Path, job: str, failed_ms: int, n: int = 3) -> None:  # noqa: ANN001
    """A movie that failed at ``failed_ms`` with its inputs in the spool, as a failed render leaves them."""
    spool.mkdir(parents=True, exist_ok=True)
    paths = [photo(spool / f"job-{job}.photo{i}", i, size=(160, 120)) for i in range(n)]
    (spool / f"job-{job}.json").write_text(json.dumps({
        "group": "Aの会", "project": "Aのプロジェクト", "area": "green", "width": SIZE[0], "height": SIZE[1],
        "photos": [{"path": str(p), "caption": f"一言{i}"} for i, p in enumerate(paths)]}, ensure_ascii=False))
    with writing(op.app.state.engine) as conn:
        conn.execute(media_jobs.insert().values(id=job, status="failed", progress=30, message=mediajobs.INTERRUPTED,
                                                name="m", group_id="group-a", project_id="proj-a",
                                                uploaded_by="editor-a", kind="movie", created_ms=failed_ms,
                                                updated_ms=failed_ms))


def test_discarding_a_failed_movie_deletes_its_kept_photos(op, tmp_path):
    spool, job = tmp_path / "spool", "a" * 24
    _kept_failure(op, spool, job, time.time_ns() // 1_000_000)
    s, token = staff_session(op.url, "editor-a")
    assert ">もう一度作る</button>" in s.get(f"{op.url}/staff/movies/{job}", timeout=10).text
    r = s.post(f"{op.url}/staff/movies/{job}/discard", data={"csrf": token}, timeout=10)
    assert r.status_code == 200 and r.url.endswith("done=discarded")
    assert _inputs(spool, job) == [] and op.app.state.jobs.get(job) is None


def test_kept_inputs_past_their_time_or_the_room_are_removed_by_the_clean_up_and_the_page_says_so(
        tmp_path, monkeypatch):
    spool = tmp_path / "spool"
    op = _start(tmp_path)
    now = time.time_ns() // 1_000_000
    old, older_in_time, newest = "b" * 24, "c" * 24, "d" * 24
    try:
        _kept_failure(op, spool, old, now - mediajobs.KEEP_MS - 60_000)  # failed 24 h and a minute ago
        _kept_failure(op, spool, older_in_time, now - 3_600_000)
        _kept_failure(op, spool, newest, now - 60_000)
    finally:
        op.stop()
    each = sum(f.stat().st_size for f in spool.glob(f"job-{newest}.*"))
    monkeypatch.setattr(mediajobs, "KEEP_BYTES", each + each // 2)  # room for one movie's photos, not two
    op = _start(tmp_path)  # a restart: its clean-up runs
    try:
        assert _inputs(spool, old) == [] and _inputs(spool, older_in_time) == []
        assert _inputs(spool, newest) == ["json", "photo0", "photo1", "photo2"]  # the newest failure's stay
        s, token = staff_session(op.url, "editor-a")
        for job in (old, older_in_time):
            page = s.get(f"{op.url}/staff/movies/{job}", timeout=10).text
            assert "このムービーの写真と一言は、もうポータルに残っていません（失敗してから24時間だけ残します。" in page
            assert "もう一度作る" not in page and f"/staff/movies/{job}/edit" not in page
            r = s.post(f"{op.url}/staff/movies/{job}/retry", data={"csrf": token}, timeout=10)
            assert r.status_code == 200 and "もうポータルに残っていません" in r.text  # nothing to make it from
            assert op.app.state.jobs.get(job)["status"] == "failed"
            assert s.get(f"{op.url}/staff/movies/{job}/edit", timeout=10).url.endswith(f"/staff/movies/{job}")
        assert ">もう一度作る</button>" in s.get(f"{op.url}/staff/movies/{newest}", timeout=10).text
    finally:
        op.stop()

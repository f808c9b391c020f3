"""What a group editor reads when the movie maker cannot use their photos, or the portal cannot convert a video:
plain words in their language (which photo, what to do), never the checker's or Pillow's own words (English
exception text, a spool path, an exit status). Those go to the portal's log, for the administrator.

Real parts: a portal on loopback with a real SQLite file, the real checker child (``python -m
kiosk.player.moviemaker check``), real damaged photos made with Pillow and cut short, and a checker child that
is killed while it works, as the kernel's OOM killer would."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests
from photos import photo
from sync_helpers import PASSWORD, staff_session

from server_sync import catalog, movies
from server_sync.embedded import start_portal
from server_sync.staff import add_user

SIZE = (192, 108)
CATALOG = {"groups": [{"id": "group-a", "name": "Aの会"}],
           "projects": [{"id": "proj-a", "group_id": "group-a", "title": "Aのプロジェクト", "area": "green",
                         "goal_yen": 1000}]}
DAMAGED = {"ja": "写真%sは壊れていて読めません。スマートフォンやパソコンでその写真を開けるか確かめて、もう一度選ぶか、"
                 "別の写真を選んでください。",
           "en": "Photo %s is damaged and cannot be read. Check that it opens on the phone or PC, then choose it "
                 "again or choose another photo."}
NOT_CHECKED = {"ja": "ポータルの問題で写真を確認できませんでした。写真のせいとは限りません。何も保存されていません。"
                     "もう一度お試しください。何度も起きるときは、センターの職員に伝えてください。",
               "en": "The photos could not be checked because of a problem on the portal, not necessarily with "
                     "your photos. Nothing was saved. Try again; if it keeps happening, tell the center staff."}


@pytest.fixture
def op(tmp_path: Path):
    handle = start_portal(f"sqlite:///{tmp_path / 'portal.db'}", media_size=SIZE, movie_size=SIZE,
                          spool_dir=str(tmp_path / "spool"))
    engine = handle.app.state.engine
    catalog.import_catalog(engine, CATALOG)
    add_user(engine, "editor-a", PASSWORD, "editor", "group-a")
    yield handle
    handle.stop()


def _send(s: requests.Session, url: str, token: str, files: dict[str, Path]) -> requests.Response:
    parts = {k: (v.name, v.read_bytes(), "image/jpeg") for k, v in files.items()}
    return s.post(url + "/staff/movies", data={"csrf": token, "project": "proj-a"}, files=parts, timeout=120,
                  headers={"Accept": "application/json"})


def _broken_png(path: Path) -> Path:
    """A real PNG whose picture data is scrambled (a bad download): its header reads, its pixels do not."""
    good = photo(path.with_suffix(".good.png"), 4, size=(300, 200), fmt="PNG").read_bytes()
    at = good.find(b"IDAT") + 4
    body = bytearray(good[at:at + 400])
    body[20:400] = bytes((b * 7 + 13) % 256 for b in body[20:400])
    data = good[:at] + bytes(body) + good[at + 400:]
    path.write_bytes(data)
    return path


def _no_internals(text: str) -> None:
    for word in ("truncated", "broken", "Errno", "job-", "spool", "Error", "exit", "Timeout", "(", "（"):
        assert word not in text, f"internal words {word!r} shown to the editor: {text}"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_damaged_photo_is_named_in_plain_words_and_the_details_go_to_the_log(
        op, tmp_path: Path, lang: str, caplog: pytest.LogCaptureFixture) -> None:
    s, token = staff_session(op.url, "editor-a", lang=lang)
    good = [photo(tmp_path / f"g{i}.jpg", i) for i in range(3)]
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good[2].read_bytes()[:3000])  # a JPEG cut short: Pillow says "image file is truncated …"
    scrambled = _broken_png(tmp_path / "scrambled.png")
    with caplog.at_level(logging.INFO, logger="server_sync.movies"):
        r = _send(s, op.url, token, {"photo0": good[0], "photo1": cut, "photo2": good[1], "photo3": scrambled})
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert errors == {"photo1": DAMAGED[lang] % 2, "photo3": DAMAGED[lang] % 4}
    for text in errors.values():
        _no_internals(text)
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "photo 2" in logged and "truncated" in logged, logged  # the administrator still has Pillow's words
    assert not list((tmp_path / "spool").glob("job-*"))


def _kill_checker_when_it_starts(stop: threading.Event, killed: list[int]) -> None:
    """Like the kernel's OOM killer: SIGKILL the photo checker child (a child of this test's portal) while it works."""
    me = os.getpid()
    while not stop.is_set():
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == me and b"kiosk.player.moviemaker" in cmd and b"check" in cmd:
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.002)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_checker_that_was_killed_says_so_plainly_not_its_exit_status(
        op, tmp_path: Path, lang: str, caplog: pytest.LogCaptureFixture) -> None:
    s, token = staff_session(op.url, "editor-a", lang=lang)
    big = [photo(tmp_path / f"big{i}.jpg", i, size=(6000, 4500)) for i in range(3)]  # seconds to decode
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_checker_when_it_starts, args=(stop, killed))
    killer.start()
    try:
        with caplog.at_level(logging.INFO, logger="server_sync.movies"):
            r = _send(s, op.url, token, {f"photo{i}": p for i, p in enumerate(big)})
    finally:
        stop.set()
        killer.join()
    assert killed, "the checker child was never seen"
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == {"photos": NOT_CHECKED[lang]}
    _no_internals(r.json()["reason"])
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "-9" in logged or "signal 9" in logged, logged
    assert not list((tmp_path / "spool").glob("job-*"))


def test_a_checker_over_its_time_says_so_plainly_not_the_exception_name(
        op, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(movies, "CHECK_TIMEOUT_S", 0.05)  # the setting, lowered: a Python cannot start in 50 ms
    s, token = staff_session(op.url, "editor-a")
    good = [photo(tmp_path / f"g{i}.jpg", i) for i in range(3)]
    with caplog.at_level(logging.INFO, logger="server_sync.movies"):
        r = _send(s, op.url, token, {f"photo{i}": p for i, p in enumerate(good)})
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == {"photos": NOT_CHECKED["ja"]}
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "TimeoutExpired" in logged or "timed out" in logged, logged
    assert not list((tmp_path / "spool").glob("job-*"))


def lying_mkv(path: Path, seconds: int, said: float, size: tuple[int, int] = (64, 36), fps: int = 10) -> Path:
    """A real Matroska video of ``seconds`` whose header says it lasts ``said`` seconds (its Segment Duration
    rewritten, as a broken or hostile tool leaves it): the probe before conversion believes the header."""
    import struct

    import av
    import numpy as np

    with av.open(str(path), "w", format="matroska") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(seconds * fps):
            f = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), (i * 7) % 256, np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89")  # EBML Duration, in milliseconds: a float of 8 or 4 bytes
    assert at > 0 and data[at + 2] in (0x88, 0x84)
    if data[at + 2] == 0x88:
        data[at + 3:at + 11] = struct.pack(">d", said * 1000)
    else:
        data[at + 3:at + 7] = struct.pack(">f", said * 1000)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_video_whose_header_understates_its_length_fails_saying_it_is_too_long(tmp_path: Path, lang: str) -> None:
    """The limit is 3 s; the file says 2 s and lasts 20 s. It passes the check before conversion (the header), so
    the transcoder must stop it at the limit: the job fails with the plain "longer than allowed" message, no media,
    no file, and well before the whole clip was converted (not after the 30-minute timeout)."""
    from sqlalchemy import func, select

    from server_sync import mediajobs
    from server_sync.db import media, media_info

    clip = lying_mkv(tmp_path / "clip.mkv", seconds=20, said=2.0)
    handle = start_portal(f"sqlite:///{tmp_path / 'portal.db'}", media_size=SIZE, movie_size=SIZE,
                          spool_dir=str(tmp_path / "spool"), video_limits=mediajobs.VideoLimits(1920, 1080, 3))
    try:
        catalog.import_catalog(handle.app.state.engine, CATALOG)
        add_user(handle.app.state.engine, "editor-a", PASSWORD, "editor", "group-a")
        s, token = staff_session(handle.url, "editor-a", lang=lang)
        r = s.post(handle.url + "/staff/media-upload", data=clip.read_bytes(), timeout=60, headers={
            "X-CSRF-Token": token, "X-Project": "proj-a", "X-File-Name": clip.name, "Content-Type": "video/mp4"})
        assert r.status_code == 202, r.text  # the header said 2 s: accepted for conversion
        job = r.json()["job"]
        for _ in range(600):
            j = s.get(f"{handle.url}/staff/media-jobs/{job}", timeout=10).json()
            if j["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert j["status"] == "failed", j
        row = handle.app.state.jobs.get(job)
        assert row["message"] == mediajobs.LONGER_THAN_ALLOWED
        want = {"ja": "動画が、ファイルに書かれた長さより実際は長く、ポータルで使える長さを超えていたため中止しました。"
                      "スマートフォンやパソコンの動画アプリで短くしてください",
                "en": "the video is longer than the portal allows, though its file said it was shorter; shorten it "
                      "with a video app on the phone or PC"}[lang]
        assert want in j["message"], j["message"]
        with handle.app.state.engine.connect() as conn:
            assert [conn.execute(select(func.count()).select_from(t)).scalar_one() for t in (media, media_info)] \
                == [0, 0]
        assert not list((tmp_path / "spool").glob("job-*"))
    finally:
        handle.stop()

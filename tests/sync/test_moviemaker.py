"""The movie maker over real HTTP (SQLite and PostgreSQL): a group editor's photos and captions become a
movie job on the same machinery as an uploaded video, previewed, then published as a media item; every
bad upload named in issue #12 (not an image, a 200 MB file, a corrupt MP4, a 10,000-pixel-wide photo)
gets its own message, in Japanese and in English, and leaves no spooled file and no row behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests
from movies import solid_movie
from photos import photo
from sqlalchemy import func, select
from sync_helpers import PASSWORD, staff_session

from server_sync import catalog, configstore, mediajobs, movies
from server_sync.db import media, media_info, media_jobs
from server_sync.embedded import start_portal
from server_sync.staff import add_user

SIZE = (192, 108)
CATALOG = {
    "groups": [{"id": "group-a", "name": "Aの会"}, {"id": "group-b", "name": "Bの会"}],
    "projects": [{"id": "proj-a", "group_id": "group-a", "title": "Aのプロジェクト", "area": "green", "goal_yen": 1000},
                 {"id": "proj-b", "group_id": "group-b", "title": "Bのプロジェクト", "area": "town", "goal_yen": 2000}],
}


@pytest.fixture
def op(db_url: str, tmp_path: Path):
    handle = start_portal(db_url, media_size=SIZE, movie_size=SIZE, spool_dir=str(tmp_path / "spool"))
    engine = handle.app.state.engine
    catalog.import_catalog(engine, CATALOG)
    add_user(engine, "staff1", PASSWORD, "staff")
    add_user(engine, "editor-a", PASSWORD, "editor", "group-a")
    yield handle
    handle.stop()


def send(s: requests.Session, url: str, token: str, files: dict[str, Path | tuple[str, bytes, str]],
         captions: dict[int, str] | None = None, project: str = "proj-a", as_json: bool = True) -> requests.Response:
    data = {"csrf": token, "project": project, **{f"caption{i}": c for i, c in (captions or {}).items()}}
    parts = {k: (v.name, v.read_bytes(), "image/jpeg") if isinstance(v, Path) else v for k, v in files.items()}
    return s.post(url + "/staff/movies", data=data, files=parts, timeout=120,
                  headers={"Accept": "application/json"} if as_json else {})


def wait_movie(s: requests.Session, url: str, job: str) -> dict:
    for _ in range(600):
        j = s.get(f"{url}/staff/movies/{job}/job", timeout=10).json()
        if j["status"] in ("done", "failed"):
            return j
        time.sleep(0.1)
    raise AssertionError("movie job did not finish")


def counts(engine) -> tuple[int, int, int]:  # noqa: ANN001
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (media, media_info, media_jobs))


def kept_inputs(spool: Path, job_id: str) -> list[str]:
    """What a failed movie leaves in the spool: its kept inputs only (its spec and photos, for 「もう一度作る」:
    tests/sync/test_review51_movie_retry.py), never a partial movie or poster."""
    return sorted(f.name[len(f"job-{job_id}."):] for f in spool.glob(f"job-{job_id}.*"))


def nothing_left(op, spool: Path) -> None:  # noqa: ANN001
    assert counts(op.app.state.engine) == (0, 0, 0)
    assert not list(spool.glob("*")) if spool.exists() else True


def test_photos_with_captions_become_a_movie_previewed_then_published(op, tmp_path):
    engine = op.app.state.engine
    s, token = staff_session(op.url, "editor-a")
    files = {f"photo{i}": photo(tmp_path / f"p{i}.jpg", i) for i in range(3)}
    r = send(s, op.url, token, files, {0: "畑で野菜を育てました", 1: "みんなで収穫", 2: "ありがとう"})
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    page = s.get(op.url + r.json()["next"], timeout=10)
    assert page.status_code == 200 and 'id="movie-progress"' in page.text or 'id="preview"' in page.text
    j = wait_movie(s, op.url, job)
    assert j["status"] == "done", j
    row = op.app.state.jobs.get(job)
    assert row["kind"] == "movie" and row["duration_s"] == round(16.5) and row["poster_sha256"]  # 6 + 3 × 3.5 s
    assert not list((tmp_path / "spool").glob(f"job-{job}.*"))  # photos, spec and output all removed
    # Made, not yet published: a preview for its group, not a media item for a playlist.
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(media_info)).scalar_one() == 0
    page = s.get(f"{op.url}/staff/movies/{job}", timeout=10).text
    assert f'src="/staff/movies/{job}/preview"' in page
    preview = s.get(f"{op.url}/staff/movies/{job}/preview", timeout=10)
    assert preview.status_code == 200 and preview.headers["content-type"] == "video/mp4"
    (tmp_path / "preview.mp4").write_bytes(preview.content)
    part = s.get(f"{op.url}/staff/movies/{job}/preview", headers={"Range": "bytes=100-199"}, timeout=10)
    assert part.status_code == 206 and part.content == preview.content[100:200]  # a phone's browser seeks
    assert part.headers["content-range"] == f"bytes 100-199/{len(preview.content)}"
    from kiosk.player.transcode import probe

    info = probe(tmp_path / "preview.mp4")
    assert (info.codec, info.width, info.height, info.closed_gop, info.faststart) == ("h264", *SIZE, True, True)
    assert abs(info.duration_s - 16.5) < 0.05
    # Another group's editor cannot see it; center staff can.
    add_user(engine, "editor-b", PASSWORD, "editor", "group-b")
    sb, token_b = staff_session(op.url, "editor-b")
    assert sb.get(f"{op.url}/staff/movies/{job}", timeout=10).status_code == 403
    assert sb.get(f"{op.url}/staff/movies/{job}/preview", timeout=10).status_code == 403
    assert sb.post(f"{op.url}/staff/movies/{job}/publish", data={"csrf": token_b}, timeout=10).status_code == 403
    assert movies.published_movie(engine, "proj-a") is None
    # By its digest (/api/v1/media serves media without a session), the draft and its poster frame do not exist,
    # for anyone: signed in or not, another group's editor or not. Its group watches it at its preview page.
    for url in (f"{op.url}/api/v1/media/{row[k]}" for k in ("sha256", "poster_sha256")):
        for who in (requests, s, sb):
            assert who.get(url, timeout=10).status_code == 404
            assert who.get(url, headers={"Range": "bytes=0-9"}, timeout=10).status_code == 404
    # Publish: a media item of its project, with its poster frame, offered in the playlist form.
    r = s.post(f"{op.url}/staff/movies/{job}/publish", data={"csrf": token}, timeout=10)
    assert r.status_code == 200 and "公開しました" in r.text
    pub = movies.published_movie(engine, "proj-a")
    assert pub is not None and pub["sha256"] == row["sha256"] and pub["url"] == f"/api/v1/media/{row['sha256']}"
    poster = requests.get(op.url + pub["poster_url"], timeout=10)
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"
    assert poster.content[:2] == b"\xff\xd8"
    movie = requests.get(op.url + pub["url"], timeout=10)  # published: public, for anyone
    assert movie.status_code == 200 and movie.content == preview.content
    assert movie.headers["cache-control"].startswith("public")
    st, _ = staff_session(op.url, "staff1")
    assert f'<option value="{row["sha256"]}"' in st.get(op.url + "/staff/playlists?target=all", timeout=10).text


def test_an_uploaded_video_runs_on_the_same_job_machinery_and_gets_a_poster(op, tmp_path):
    engine = op.app.state.engine
    s, token = staff_session(op.url, "editor-a")
    movie = solid_movie(tmp_path / "clip.mp4", (10, 200, 10), size=(320, 180), seconds=1.0)
    r = s.post(op.url + "/staff/media-upload", data=movie.read_bytes(), timeout=10, headers={
        "X-CSRF-Token": token, "X-Project": "proj-a", "X-File-Name": "clip.mp4", "Content-Type": "video/mp4"})
    job = r.json()["job"]
    for _ in range(300):
        row = op.app.state.jobs.get(job)
        if row["status"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert row["status"] == "done" and row["kind"] == "video"
    pub = movies.published_movie(engine, "proj-a")  # an uploaded video is published at once
    assert pub is not None and pub["sha256"] == row["sha256"] and pub["poster_url"]
    data, ctype = configstore.get_media(engine, pub["poster_url"].rsplit("/", 1)[1])  # type: ignore[misc]
    assert ctype == "image/jpeg"
    from io import BytesIO

    from PIL import Image

    px = Image.open(BytesIO(data)).convert("RGB").getpixel((SIZE[0] // 2, SIZE[1] // 2))
    assert all(abs(a - b) < 30 for a, b in zip(px, (10, 200, 10), strict=True))  # a frame of that video
    assert not list((tmp_path / "spool").glob("job-*"))


def _corrupt_mp4(tmp_path: Path) -> Path:
    good = solid_movie(tmp_path / "good.mp4", (200, 10, 10), size=(320, 180), seconds=0.5, codec="libx264")
    data = bytearray(good.read_bytes())
    at = data.find(b"moov")
    data[at + 8: at + 400] = b"\xa5" * 392  # the index of the movie scrambled: a file that claims to be an MP4
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    return bad


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_bad_upload_gets_its_message_and_leaves_nothing(op, tmp_path, lang):
    spool = tmp_path / "spool"
    s, token = staff_session(op.url, "editor-a", lang=lang)
    good = [photo(tmp_path / f"g{i}.jpg", i) for i in range(3)]
    ja = lang == "ja"

    def refused(files: dict[str, Path], captions: dict[int, str] | None = None, **kw: str) -> dict[str, str]:
        """The form's answer to ``files``: refused (422), with its messages by field."""
        r = send(s, op.url, token, files, captions, **kw)
        assert r.status_code == 422, r.text
        return r.json()["errors"]

    # Not an image: a text file, and a corrupt MP4, in the places of photos 2 and 3.
    text = tmp_path / "notes.jpg"
    text.write_text("これは写真ではありません\n" * 100, "utf-8")
    errs = refused({"photo0": good[0], "photo1": text, "photo2": _corrupt_mp4(tmp_path)},
                   {0: "一枚目", 1: "二枚目", 2: "三枚目"})
    want = ("写真%sは、ポータルで読める写真ではありません。JPEG・PNG・WebPの画像を選んでください。" if ja else
            "Photo %s is not a photo the portal can read. Choose a JPEG, PNG or WebP picture.")
    assert errs == {"photo1": want % 2, "photo2": want % 3}
    nothing_left(op, spool)

    # A 10,000-pixel-wide photo: refused from its header, before it is decoded, for its shape (2 million pixels
    # are not too many: a photo over the pixel limit is tests/sync/test_s34h15_big_phone_photos.py's).
    wide = photo(tmp_path / "wide.png", 5, size=(10_000, 200), fmt="PNG")
    assert refused({"photo0": good[0], "photo1": good[1], "photo3": wide}) == {"photo3": (
        "写真4は細長すぎます（10,000 × 200 ピクセル）。長い辺は短い辺の10倍までです。"
        "スマートフォンやパソコンで切り抜いてから、もう一度選んでください。"
        if ja else "Photo 4 is too long and thin (10,000 × 200 pixels): its long side may be at most 10 times its "
                   "short side. Crop it on the phone or PC and choose it again.")}
    nothing_left(op, spool)

    # A long thin strip (a banner, a scrolled screenshot): small enough, but scaled to cover the frame it would
    # take gigabytes; refused from its header too, for its shape.
    strip = photo(tmp_path / "strip.png", 6, size=(4_000, 300), fmt="PNG")
    assert refused({"photo0": good[0], "photo1": strip, "photo2": good[2]}) == {"photo1": (
        "写真2は細長すぎます（4,000 × 300 ピクセル）。長い辺は短い辺の10倍までです。"
        "スマートフォンやパソコンで切り抜いてから、もう一度選んでください。"
        if ja else "Photo 2 is too long and thin (4,000 × 300 pixels): its long side may be at most 10 times its "
                   "short side. Crop it on the phone or PC and choose it again.")}
    nothing_left(op, spool)

    # A damaged photo: a real JPEG cut short.
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good[2].read_bytes()[:3000])
    errs = refused({"photo0": good[0], "photo1": good[1], "photo2": cut})
    assert list(errs) == ["photo2"]
    assert errs["photo2"].startswith("写真3は壊れていて読めません" if ja else "Photo 3 is damaged")
    nothing_left(op, spool)

    # A 200 MB file: refused while it streams, at the photo's limit (25 MB), with its number.
    big = tmp_path / "big.jpg"
    with open(big, "wb") as f:
        f.write(good[0].read_bytes())
        f.truncate(200 * 1024 * 1024)
    with open(big, "rb") as fh:
        r = s.post(op.url + "/staff/movies", data={"csrf": token, "project": "proj-a"}, timeout=120,
                   files={"photo0": ("big.jpg", fh, "image/jpeg")}, headers={"Accept": "application/json"})
    assert r.status_code == 413
    said = r.json()["errors"]["photo0"]
    assert list(r.json()["errors"]) == ["photo0"]
    assert said == ("写真1が大きすぎます。写真1枚25 MBまでです。"
                    "スマートフォンやパソコンで小さくしてから、もう一度選んでください。"
                    "パソコンなら「ペイント」などの画像ソフトで開いてサイズを小さくし、JPEGで保存し直します。"
                    "スマートフォンなら、写真を画面に表示してスクリーンショットを撮り、それを選びます。" if ja else
                    "Photo 1 is too large: at most 25 MB a photo. Make it smaller on the phone or PC and choose it "
                    "again: on a PC, open it in Paint (or another picture program), make it smaller and save it as a "
                    "JPEG; on a phone, show the photo on the screen, take a screenshot and choose that."), said
    nothing_left(op, spool)

    # Too few photos, and a caption too long: the form's own messages, and the typed captions kept.
    r = send(s, op.url, token, {"photo0": good[0], "photo1": good[1]}, {0: "あ" * 61}, as_json=False)
    assert r.status_code == 422
    assert ('value="' + "あ" * 61 + '"') in r.text
    assert ("写真を3枚以上選んでください（10枚まで）。" if ja else "Choose at least 3 photos (at most 10).") in r.text
    nothing_left(op, spool)

    # Another group's project, and no CSRF token: refused, nothing kept.
    assert "project" in refused({f"photo{i}": good[i] for i in range(3)}, project="proj-b")
    r = send(s, op.url, "forged", {f"photo{i}": good[i] for i in range(3)})
    assert r.status_code == 403
    nothing_left(op, spool)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_corrupt_mp4_uploaded_as_a_video_fails_on_the_same_machinery_with_its_message(op, tmp_path, lang):
    """The videos page's path: the job fails with a message for the uploader; no media, no poster, no file."""
    s, token = staff_session(op.url, "editor-a", lang=lang)
    r = s.post(op.url + "/staff/media-upload", data=_corrupt_mp4(tmp_path).read_bytes(), timeout=10, headers={
        "X-CSRF-Token": token, "X-Project": "proj-a", "X-File-Name": "corrupt.mp4", "Content-Type": "video/mp4"})
    assert r.status_code == 202
    job = r.json()["job"]
    for _ in range(300):
        j = s.get(f"{op.url}/staff/media-jobs/{job}", timeout=10).json()
        if j["status"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert j["status"] == "failed" and j["sha256"] is None
    ja = ("この動画は使えませんでした（壊れた動画ファイルです。映像を読み取れませんでした）。"
          "何も保存されていません。別のファイルでお試しください（スマートフォンやカメラのMP4なら使えます）。")
    en = ("This video could not be used: a damaged movie file: no picture could be read from it. Nothing was "
          "saved; try another file (an MP4 from a phone or camera works).")
    assert j["message"] == (ja if lang == "ja" else en)
    with op.app.state.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(media)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(media_info)).scalar_one() == 0
    assert not list((tmp_path / "spool").glob("*"))


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_caption_with_a_line_break_or_control_character_is_refused_beside_it(op, tmp_path, lang):
    """A paragraph separator pasted into a caption (a browser's ``<input>`` keeps U+2029) would make the renderer
    fail after the job was accepted: the form refuses it, with the other captions and photos kept."""
    s, token = staff_session(op.url, "editor-a", lang=lang)
    good = {f"photo{i}": photo(tmp_path / f"g{i}.jpg", i) for i in range(4)}
    bad = {0: "畑で\u2029野菜", 1: "みんなで\n収穫", 2: "ありが\x1eとう", 3: "\u202eうとがりあ"}
    r = send(s, op.url, token, good, {**bad, 4: "ふつうの一行\u2029"})  # at the end: stripped like a space
    assert r.status_code == 422
    want = ("改行・タブや目に見えない制御文字は使えません。キャプションは1行で書いてください。" if lang == "ja" else
            "Line breaks, tabs and invisible control characters cannot be used: write the caption on one line.")
    assert r.json()["errors"] == {f"caption{i}": want for i in bad}
    nothing_left(op, tmp_path / "spool")
    page = send(s, op.url, token, good, bad, as_json=False)
    assert page.status_code == 422 and f'<p class="bad err" data-for="caption2">{want}</p>' in page.text
    nothing_left(op, tmp_path / "spool")


def test_a_camera_jpeg_with_a_multi_picture_preview_makes_a_movie(op, tmp_path):
    """Pillow opens a camera's JPEG with a CIPA multi-picture (MPF) preview as "MPO": a JPEG all the same."""
    from PIL import Image

    s, token = staff_session(op.url, "editor-a")
    cam = tmp_path / "DSC00001.JPG"
    with Image.open(photo(tmp_path / "src.jpg", 0, size=(640, 480))) as im:
        im.save(cam, "MPO", save_all=True, append_images=[im.resize((160, 120))])
    files = {"photo0": cam, **{f"photo{i}": photo(tmp_path / f"p{i}.jpg", i, size=(400, 300)) for i in (1, 2)}}
    r = send(s, op.url, token, files, {0: "カメラの写真"})
    assert r.status_code == 202, r.text
    assert wait_movie(s, op.url, r.json()["job"])["status"] == "done"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_render_that_stops_on_an_unexpected_error_fails_its_job_without_blaming_the_photos(op, tmp_path, lang):
    """The renderer's error line for anything but a photo or a file (here a spec at 0 fps, which the portal never
    writes) becomes a plain failed job, on the same machinery and page as any movie."""
    engine, jobs = op.app.state.engine, op.app.state.jobs
    spool, job_id = tmp_path / "spool", "f" * 24
    spec = movies.write_spec(spool, job_id, group="Aの会", project="Aのプロジェクト", area="green", size=SIZE,
                             photos=[(photo(spool / f"job-{job_id}.photo{i}", i), "") for i in range(3)])
    spec.write_text(spec.read_text("utf-8").replace('"width"', '"fps": 0, "width"'), "utf-8")
    jobs.submit(job_id, spec, name="movie", group_id="group-a", project_id="proj-a", by="editor-a", kind="movie")
    s, _ = staff_session(op.url, "editor-a", lang=lang)
    j = wait_movie(s, op.url, job_id)
    assert j["status"] == "failed"
    assert j["message"] == (
        # Its photos and captions are kept (the page offers 「もう一度作る」 below): not "nothing was saved".
        "ムービーを作れませんでした（作成中に予期しない問題が起きて止まりました）。"
        "くり返し起きるときは、センターの職員にお知らせください。" if lang == "ja" else
        "The movie could not be made: the movie maker stopped on an unexpected error. If it happens again, tell the "
        "center staff.")
    assert j["message"] in s.get(f"{op.url}/staff/movies/{job_id}", timeout=10).text
    assert counts(engine) == (0, 0, 1) and kept_inputs(spool, job_id) == ["json", "photo0", "photo1", "photo2"]
    assert len(list(spool.glob("*"))) == 4


def test_a_project_moved_to_another_group_takes_its_movies_along(op, tmp_path):
    """Whoever may edit the project now decides about its movies: staff move proj-a from group A to group B,
    and A's draft movie of it is B's to watch, publish or discard, no longer A's."""
    engine = op.app.state.engine
    add_user(engine, "editor-b", PASSWORD, "editor", "group-b")
    sa, token_a = staff_session(op.url, "editor-a")
    r = send(sa, op.url, token_a, {f"photo{i}": photo(tmp_path / f"p{i}.jpg", i, size=(400, 300)) for i in range(3)})
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    assert wait_movie(sa, op.url, job)["status"] == "done"
    st, token_s = staff_session(op.url, "staff1")
    r = st.post(op.url + "/staff/projects", timeout=10, data={
        "csrf": token_s, "editing": "proj-a", "title": "Aのプロジェクト", "group_id": "group-b", "area": "green",
        "goal_yen": "1000", "active": "1"})
    assert r.status_code == 200 and r.url.endswith("done=saved")
    # Group A's editor: nothing of it any more.
    for path in (f"/staff/movies/{job}", f"/staff/movies/{job}/preview"):
        assert sa.get(op.url + path, timeout=10).status_code == 403, path
    assert sa.get(f"{op.url}/staff/movies/{job}/job", timeout=10).status_code == 404
    for action in ("publish", "discard"):
        assert sa.post(f"{op.url}/staff/movies/{job}/{action}", data={"csrf": token_a}, timeout=10).status_code == 403
    assert f"/staff/movies/{job}" not in sa.get(op.url + "/staff/movies", timeout=10).text
    assert movies.published_movie(engine, "proj-a") is None and op.app.state.jobs.get(job) is not None
    # Group B's editor: theirs, and published it is group B's video.
    sb, token_b = staff_session(op.url, "editor-b")
    assert f"/staff/movies/{job}" in sb.get(op.url + "/staff/movies", timeout=10).text
    assert sb.get(f"{op.url}/staff/movies/{job}", timeout=10).status_code == 200
    assert sb.get(f"{op.url}/staff/movies/{job}/preview", timeout=10).status_code == 200
    assert sb.post(f"{op.url}/staff/movies/{job}/publish", data={"csrf": token_b}, timeout=10).status_code == 200
    sha = op.app.state.jobs.get(job)["sha256"]
    assert movies.published_movie(engine, "proj-a")["sha256"] == sha  # type: ignore[index]
    with engine.connect() as conn:
        assert conn.execute(select(media_info.c.group_id).where(media_info.c.sha256 == sha)).scalar_one() == "group-b"
    assert sb.get(f"{op.url}/staff/media/{sha}", timeout=10).status_code == 200
    assert sa.get(f"{op.url}/staff/media/{sha}", timeout=10).status_code == 403


# --- media jobs when the portal stops -------------------------------------------------------------------------
# A portal of its own for each (started again on the same database, as after a restart), rendering at a size
# where a movie of six photos takes a few seconds: long enough to be running, or queued behind one, when it stops.

BUSY = (640, 360)


def _start(db_url: str, spool: Path):  # noqa: ANN202
    handle = start_portal(db_url, media_size=BUSY, movie_size=BUSY, spool_dir=str(spool))
    catalog.import_catalog(handle.app.state.engine, CATALOG)
    return handle


def _submit_movie(handle, spool: Path, job_id: str) -> None:  # noqa: ANN001
    photos = [(photo(spool / f"job-{job_id}.photo{i}", i, size=(1600, 1200)), f"写真{i}") for i in range(6)]
    spec = movies.write_spec(spool, job_id, group="Aの会", project="Aのプロジェクト", area="green", size=BUSY,
                             photos=photos)
    handle.app.state.jobs.submit(job_id, spec, name="movie", group_id="group-a", project_id="proj-a", by="editor-a",
                                 kind="movie")


def _running_child(handle, job_id: str, *, pause: bool = False):  # noqa: ANN001, ANN202
    """The job's child process, once it runs; ``pause``: stopped (SIGSTOP) where it is, so that it is still
    running when the test looks, however fast the machine (``kill`` ends it all the same; SIGCONT goes on)."""
    jobs = handle.app.state.jobs
    for _ in range(600):
        if jobs.get(job_id)["status"] == "running" and jobs._procs:
            child = next(iter(jobs._procs))
            if pause:
                os.kill(child.pid, signal.SIGSTOP)
            return child
        time.sleep(0.05)
    raise AssertionError("the render never started")


def _finished(handle, job_id: str) -> dict:  # noqa: ANN001
    for _ in range(600):
        job = handle.app.state.jobs.get(job_id)
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def test_a_portal_restart_during_a_render_says_interrupted_not_took_too_long(db_url, tmp_path):
    """The portal is restarted (a deploy, `systemctl restart`: the app's shutdown hook stops the running render)
    a second into a movie. The editor reads "interrupted (the portal restarted)", not "stopped (took too long)"
    (時間がかかりすぎたため中止しました), which blamed the photos' size after a second."""
    spool = tmp_path / "spool"
    handle = _start(db_url, spool)
    job_id = "a" * 24
    try:
        _submit_movie(handle, spool, job_id)
        _running_child(handle, job_id, pause=True)
        time.sleep(1.0)
    finally:
        handle.stop()  # what the app's lifespan does on SIGTERM: jobs.shutdown()
    second = _start(db_url, spool)
    try:
        job = second.app.state.jobs.get(job_id)
    finally:
        second.stop()
    assert (job["status"], job["message"]) == ("failed", mediajobs.INTERRUPTED)
    assert kept_inputs(spool, job_id) == ["json", *(f"photo{i}" for i in range(6))]  # for 「もう一度作る」


def test_a_movie_queued_when_the_portal_restarts_is_failed_and_its_photos_removed(db_url, tmp_path):
    """Two editors submit at once: the first movie renders, the second waits in the queue. The portal restarts
    (its shutdown cancels the queued job) and comes back at once. The second job is not left "queued" (a progress
    bar at 0 % that never moves: the new process never runs it); its photos and captions are kept for 「もう一度作る」
    (nothing else of either job is left in the spool)."""
    spool = tmp_path / "spool"
    handle = _start(db_url, spool)
    first, second_id = "b" * 24, "c" * 24
    try:
        _submit_movie(handle, spool, first)
        _running_child(handle, first, pause=True)
        _submit_movie(handle, spool, second_id)
        assert handle.app.state.jobs.get(second_id)["status"] == "queued"
    finally:
        handle.stop()
    second = _start(db_url, spool)
    try:
        time.sleep(0.5)
        job = second.app.state.jobs.get(second_id)
        with second.app.state.engine.connect() as conn:  # in the database, not only as shown
            stored = conn.execute(select(media_jobs.c.status, media_jobs.c.message)
                                  .where(media_jobs.c.id == second_id)).one()
    finally:
        second.stop()
    assert (job["status"], job["message"]) == ("failed", mediajobs.INTERRUPTED)
    assert tuple(stored) == ("failed", mediajobs.INTERRUPTED)
    for job_id in (first, second_id):
        assert kept_inputs(spool, job_id) == ["json", *(f"photo{i}" for i in range(6))]
    assert len(list(spool.glob("job-*"))) == 14


@pytest.mark.parametrize("kind", ["movie", "video"])
def test_a_child_killed_by_something_else_is_not_called_a_timeout_or_a_restart(db_url, tmp_path, kind):
    """The kernel's OOM killer (or an administrator) kills the render or the transcode: a signal, but neither the
    portal's timeout nor its restart. A movie says the movie maker stopped on an unexpected error (its page adds:
    tell the center staff), a video that its conversion stopped; nothing is kept but a movie's photos and captions,
    for 「もう一度作る」."""
    spool = tmp_path / "spool"
    handle = _start(db_url, spool)
    job_id = "d" * 24
    try:
        if kind == "movie":
            _submit_movie(handle, spool, job_id)
        else:
            src = solid_movie(tmp_path / "clip.mp4", (10, 200, 10), size=(320, 180), seconds=1.0).rename(
                spool / f"job-{job_id}.upload")  # as the videos page spools an upload
            handle.app.state.jobs.submit(job_id, src, name="clip", group_id="group-a", project_id="proj-a",
                                         by="editor-a")
        os.kill(_running_child(handle, job_id).pid, signal.SIGKILL)
        job = _finished(handle, job_id)
    finally:
        handle.stop()
    assert job["status"] == "failed"
    assert job["message"] == (mediajobs.RENDER_FAILED if kind == "movie" else mediajobs.STOPPED)
    assert kept_inputs(spool, job_id) == (["json", *(f"photo{i}" for i in range(6))] if kind == "movie" else [])
    assert len(list(spool.glob("job-*"))) == (7 if kind == "movie" else 0)


def test_a_render_stopped_by_the_timeout_says_it_took_too_long(db_url, tmp_path, monkeypatch):
    """The one case for "stopped (took too long)": the portal's own timer killed the child."""
    monkeypatch.setattr(mediajobs, "TIMEOUT_S", 1.0)
    spool = tmp_path / "spool"
    handle = _start(db_url, spool)
    job_id = "e" * 24
    try:
        _submit_movie(handle, spool, job_id)
        _running_child(handle, job_id, pause=True)  # a render that would take longer than the timeout
        job = _finished(handle, job_id)
    finally:
        handle.stop()
    assert (job["status"], job["message"]) == ("failed", mediajobs.TOO_LONG)
    assert kept_inputs(spool, job_id) == ["json", *(f"photo{i}" for i in range(6))]
    assert len(list(spool.glob("job-*"))) == 7


@pytest.mark.slow
def test_jobs_of_a_process_that_died_are_failed_at_once_and_a_live_workers_jobs_are_left_alone(db_url, tmp_path,
                                                                                               monkeypatch):
    """Several workers share one database (and, on one host, one spool). A worker that was killed (no shutdown:
    the OOM killer, a power cut) left a job queued; a live worker has a movie rendering and one queued behind it,
    for longer than a job may go without a heartbeat. A worker starting now fails the dead one's job and removes
    its files, and leaves the live worker's jobs and files alone: the live worker writes a heartbeat into its
    unfinished jobs' rows, which the dead one stopped doing."""
    monkeypatch.setattr(mediajobs, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(mediajobs, "STALE_MS", 3000)  # 15 beats: a loaded CI host once missed 1.5 s of them
    spool = tmp_path / "spool"
    live = _start(db_url, spool)
    engine = live.app.state.engine
    dead, rendering, waiting = "1" * 24, "2" * 24, "3" * 24
    now = time.time_ns() // 1_000_000
    with engine.begin() as conn:  # what the killed worker left: its job's row and its spooled files
        conn.execute(media_jobs.insert().values(id=dead, status="queued", progress=0, message="", name="movie",
                                                group_id="group-a", project_id="proj-a", uploaded_by="editor-a",
                                                kind="movie", created_ms=now - 2000, updated_ms=now - 2000))
    photo(spool / f"job-{dead}.photo0", 0, size=(400, 300))
    receiving = spool / f"job-{'4' * 24}.upload"  # an upload still being received (no row yet): not an orphan
    receiving.write_bytes(b"\0" * 1000)
    try:
        _submit_movie(live, spool, rendering)
        child = _running_child(live, rendering, pause=True)
        _submit_movie(live, spool, waiting)
        time.sleep(3.5)  # longer than STALE_MS: only the heartbeat keeps the queued job's row fresh
        assert live.app.state.jobs.get(waiting)["status"] == "queued"
        assert live.app.state.jobs.get(dead)["status"] == "failed"  # shown so at once, whatever the database says
        starting = _start(db_url, spool)  # another worker starts: its recover() runs
        try:
            assert starting.app.state.jobs.get(waiting)["status"] == "queued"
            assert starting.app.state.jobs.get(rendering)["status"] == "running"
        finally:
            starting.stop()  # stops its own jobs only: it has none
        with engine.connect() as conn:
            stored = dict(conn.execute(select(media_jobs.c.id, media_jobs.c.status)).all())
        assert stored == {dead: "failed", rendering: "running", waiting: "queued"}
        assert not list(spool.glob(f"job-{dead}.*")) and receiving.exists()
        assert list(spool.glob(f"job-{waiting}.photo*")) and list(spool.glob(f"job-{rendering}.photo*"))
        assert live.app.state.jobs.get(dead)["message"] == mediajobs.INTERRUPTED
        os.kill(child.pid, signal.SIGCONT)
        assert _finished(live, rendering)["status"] == "done"
        assert _finished(live, waiting)["status"] == "done"  # it ran, its photos were there
    finally:
        live.stop()


def test_a_video_whose_conversion_was_killed_does_not_blame_the_file(db_url, tmp_path):
    """The kernel's OOM killer (or an administrator) kills a video's transcode. The uploader's page (the job's
    answer, in Japanese) says the conversion stopped unexpectedly and to try again later or tell the center
    staff, not "try another file": the file may well be fine."""
    spool = tmp_path / "spool"
    handle = _start(db_url, spool)
    add_user(handle.app.state.engine, "editor-a", PASSWORD, "editor", "group-a")
    job_id = "f" * 24
    try:
        src = solid_movie(tmp_path / "clip.mp4", (10, 200, 10), size=(320, 180), seconds=1.0).rename(
            spool / f"job-{job_id}.upload")
        handle.app.state.jobs.submit(job_id, src, name="clip", group_id="group-a", project_id="proj-a",
                                     by="editor-a")
        os.kill(_running_child(handle, job_id).pid, signal.SIGKILL)
        assert _finished(handle, job_id)["message"] == mediajobs.STOPPED
        s, _ = staff_session(handle.url, "editor-a")
        answer = s.get(f"{handle.url}/staff/media-jobs/{job_id}", timeout=10).json()
        en, _ = staff_session(handle.url, "editor-a", lang="en")
        answer_en = en.get(f"{handle.url}/staff/media-jobs/{job_id}", timeout=10).json()
    finally:
        handle.stop()
    assert answer["status"] == "failed"
    assert "別のファイル" not in answer["message"], answer["message"]
    assert "変換が途中で予期せず止まりました" in answer["message"] and "センターの職員" in answer["message"], (
        answer["message"])
    assert "another file" not in answer_en["message"] and "stopped unexpectedly" in answer_en["message"]

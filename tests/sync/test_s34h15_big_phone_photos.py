"""A group editor's full-size phone photos on the movie maker (ムービーを作る), over real HTTP against a real portal
(SQLite, the real photo checker and renderer as child processes).

A 50-megapixel phone's 8,160 × 6,144 JPEG was refused with 「写真1が大きすぎます（8,160 × 6,144 ピクセル）。1辺8,192
ピクセルまでです。」: both sides under the limit it named, the real limit (50 million pixels) unsaid. Now it makes a
movie (it is scaled down anyway: the movie is at most 1920 × 1080), and a photo over the limit that remains is
told in megapixels (MP, the number a phone's camera settings show), with what to do about it."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
import requests
from photos import photo
from PIL import Image
from sync_helpers import PASSWORD, staff_session

from server_sync import catalog
from server_sync.embedded import start_portal
from server_sync.staff import add_user

SIZE = (192, 108)
CATALOG = {"groups": [{"id": "group-a", "name": "Aの会"}],
           "projects": [{"id": "proj-a", "group_id": "group-a", "title": "Aのプロジェクト", "area": "green",
                         "goal_yen": 1000}]}


@pytest.fixture
def op(tmp_path: Path):
    handle = start_portal(f"sqlite:///{tmp_path / 'portal.db'}", media_size=SIZE, movie_size=SIZE,
                          spool_dir=str(tmp_path / "spool"))
    catalog.import_catalog(handle.app.state.engine, CATALOG)
    add_user(handle.app.state.engine, "editor-a", PASSWORD, "editor", "group-a")
    yield handle
    handle.stop()


def send(s: requests.Session, url: str, token: str, files: dict[str, Path]) -> requests.Response:
    parts = {k: (v.name, v.read_bytes(), "image/jpeg") for k, v in files.items()}
    return s.post(url + "/staff/movies", data={"csrf": token, "project": "proj-a"}, files=parts, timeout=60,
                  headers={"Accept": "application/json"})


def test_a_50_megapixel_phone_photo_makes_a_movie(op, tmp_path: Path):
    pixel = tmp_path / "PXL_20250101_100000000.jpg"  # solid colour, so the 8,160 × 6,144 JPEG is small
    Image.new("RGB", (8160, 6144), (200, 120, 40)).save(pixel, "JPEG", quality=85)
    s, token = staff_session(op.url, "editor-a")
    form = s.get(op.url + "/staff/movies", timeout=10).text  # the form's hint names no limit it does not apply
    assert "8,192" not in form
    assert ("JPEG・PNG・WebP、1枚25 MBまで。"
            "スマートフォンのカメラで撮ったままの大きな写真も使えます（ポータルで小さくします）。") in form
    r = send(s, op.url, token, {"photo0": pixel, "photo1": photo(tmp_path / "p1.jpg", 1, size=(640, 480)),
                                "photo2": photo(tmp_path / "p2.jpg", 2, size=(640, 480))})
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    for _ in range(300):
        j = s.get(f"{op.url}/staff/movies/{job}/job", timeout=10).json()
        if j["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert j["status"] == "done", j


def _claiming_jpeg(path: Path, w: int, h: int) -> Path:
    """A small real JPEG whose header claims ``w`` × ``h`` (a decompression bomb's shape)."""
    Image.new("RGB", (16, 16), (10, 20, 30)).save(path, "JPEG")
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", h, w)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_photo_over_the_limit_is_told_in_megapixels_with_what_to_do(op, tmp_path: Path, lang: str):
    s, token = staff_session(op.url, "editor-a", lang=lang)
    good = [photo(tmp_path / f"p{i}.jpg", i, size=(640, 480)) for i in range(2)]
    bomb = _claiming_jpeg(tmp_path / "IMG_0001.jpg", 50_000, 50_000)
    r = send(s, op.url, token, {"photo0": good[0], "photo1": bomb, "photo2": good[1]})
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == {"photo1": (
        "写真2は画素数が多すぎます（50,000 × 50,000 ピクセル、約2,500 MP）。写真1枚 約210 MP（メガピクセル）までです。"
        "スマートフォンなら、写真を画面に表示してスクリーンショットを撮り、それを選んでください。"
        "パソコンなら「ペイント」などの画像ソフトで開いてサイズを小さくし、JPEGで保存し直してから選んでください。"
        "これから撮る写真は、カメラの設定で写真のサイズ（MPの数字）を小さくしておくと、そのまま使えます。"
        if lang == "ja" else
        "Photo 2 has too many pixels (50,000 × 50,000, about 2,500 MP): at most about 210 MP (megapixels) a photo. "
        "On a phone, show the photo on the screen, take a screenshot and choose that; on a PC, open it in Paint (or "
        "another picture program), make it smaller and save it as a JPEG. For the next photos, a smaller photo size "
        "(fewer MP) in the camera's settings makes them fit.")}
    assert not list((tmp_path / "spool").glob("job-*"))

"""A full-size phone photo (a 50-megapixel phone's 8,160 × 6,144 JPEG) is a photo the movie maker takes: it was
refused as 「大きすぎます…1辺8,192ピクセルまでです」 although both its sides are under 8,192. The checker decodes
a JPEG scaled down (libjpeg's DCT scaling), so memory follows the movie's size, not the photo's, and a file that
only claims to be huge (50,000 × 50,000) is still refused from its header, with its size, without decoding."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from kiosk.player import moviemaker as mm

# The checker run as the portal runs it (a child process), reporting how much its peak memory grew.
MEASURED = r"""
import json, resource, sys
from pathlib import Path
from kiosk.player.moviemaker import PhotoError, check_photo
import PIL.Image, PIL.JpegImagePlugin, PIL.PngImagePlugin
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    answer = {"ok": True, "size": list(check_photo(Path(sys.argv[1])))}
except PhotoError as exc:
    answer = {"ok": False, "error": exc.code, **exc.info}
answer["grew_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
print(json.dumps(answer))
"""


def check_in_child(path: Path) -> dict:
    r = subprocess.run([sys.executable, "-c", MEASURED, str(path)], capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def phone_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Pixel's 50 MP photo, held upright (stored landscape, EXIF says turn it): solid colour, so it is small."""
    path = tmp_path_factory.mktemp("big") / "PXL_20250101_100000000.jpg"
    im = Image.new("RGB", (8160, 6144), (200, 120, 40))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(path, "JPEG", quality=85, exif=exif)
    return path


def test_a_50_megapixel_phone_photo_is_taken_and_checked_in_little_memory(phone_photo: Path):
    got = check_in_child(phone_photo)
    assert got["ok"] and got["size"] == [6144, 8160], got  # its full size, upright
    # Decoded whole it takes ~200 MB (4 bytes a pixel) and more; at 1/8 a side a few MB.
    assert got["grew_mb"] < 40, got


def test_its_movie_picture_is_made_from_a_scaled_down_decode(phone_photo: Path):
    cover = mm._load_cover(phone_photo, (1920, 1080))
    assert 1920 * mm.ZOOM <= cover.size[0] < 1920 * mm.ZOOM + 2  # portrait: it covers the frame's width
    assert cover.size[1] == pytest.approx(cover.size[0] * 8160 / 6144, abs=2)
    assert cover.getpixel((cover.width // 2, cover.height // 2)) == pytest.approx((200, 120, 40), abs=3)


def _claiming_jpeg(path: Path, w: int, h: int) -> Path:
    """A small real JPEG whose header (SOF0) claims ``w`` × ``h``: a decompression bomb's shape."""
    im = Image.new("RGB", (16, 16), (10, 20, 30))
    im.save(path, "JPEG")
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", h, w)
    path.write_bytes(bytes(data))
    return path


def _claiming_png(path: Path, w: int, h: int) -> Path:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def test_a_file_claiming_50000_by_50000_is_refused_from_its_header_with_its_size(tmp_path: Path):
    for bomb in (_claiming_jpeg(tmp_path / "bomb.jpg", 50_000, 50_000),
                 _claiming_png(tmp_path / "bomb.png", 50_000, 50_000)):
        got = check_in_child(bomb)
        assert got["error"] == "too_large" and (got["width"], got["height"]) == (50_000, 50_000), got
        assert got["max_pixels"] in (mm.MAX_PIXELS, mm.MAX_PIXELS_WHOLE)
        assert got["grew_mb"] < 20, got  # 2.5 billion pixels would be 10 GB


def test_a_photo_decoded_whole_keeps_the_lower_limit(tmp_path: Path):
    # A PNG (or a progressive JPEG) is decoded whole: 8,000 × 8,000 would be ~256 MB, so about 52 MP at most.
    got = check_in_child(_claiming_png(tmp_path / "scan.png", 8_000, 8_000))
    assert got == {**got, "ok": False, "error": "too_large", "width": 8_000, "height": 8_000,
                   "max_pixels": mm.MAX_PIXELS_WHOLE}
    # The same size as a (baseline) JPEG is decoded scaled down, so it is allowed: checked in a few MB.
    got = check_in_child(_claiming_jpeg(tmp_path / "big.jpg", 8_000, 8_000))
    assert got["ok"] and got["size"] == [8_000, 8_000] and got["grew_mb"] < 40, got


def test_a_big_photo_cut_short_is_still_found_damaged_when_decoded_scaled_down(phone_photo: Path, tmp_path: Path):
    cut = tmp_path / "cut.jpg"
    data = phone_photo.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    assert check_in_child(cut)["error"] == "corrupt"

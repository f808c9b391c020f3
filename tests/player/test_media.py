"""Media import: odd sources come out in the cache format, checked by probing the output with PyAV."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import pytest

from kiosk.config import ConfigError
from kiosk.player import cli
from kiosk.player.media import MediaCache
from kiosk.player.transcode import open_output, panel_size, probe, target_fps


def write_source(path: Path, w: int, h: int, fps: int, frames: int, codec: str = "mpeg4") -> Path:
    """A synthetic source movie: a bright picture whose colour changes every frame."""
    out = av.open(str(path), "w")
    s = out.add_stream(codec, rate=fps)
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    for i in range(frames):
        rgba = bytes([200, (i * 7) % 256, 90, 255]) * (w * h)
        f = av.VideoFrame.from_bytes(rgba, w, h, "rgba").reformat(format="yuv420p")
        f.pts = i
        for p in s.encode(f):
            out.mux(p)
    for p in s.encode(None):
        out.mux(p)
    out.close()
    return path


def test_import_of_an_odd_size_and_frame_rate_yields_the_target_format(tmp_path):
    src = write_source(tmp_path / "odd.mkv", 250, 142, 45, 68)  # 1.5 s of 250×142 at 45 fps, MPEG-4 part 2
    cache = MediaCache(tmp_path / "media")
    e = cache.import_file(src, project="kids", title="odd", width=320, height=180, preset="ultrafast")
    out = cache.path(e.sha256)
    info = probe(out)
    assert info.codec == "h264"
    assert info.pix_fmt == "yuv420p"
    assert (info.width, info.height) == (320, 180)  # the panel size, not the source's
    assert info.fps == 30.0  # 45 fps has no clean divisor in 24–30, so it becomes 30
    assert info.duration_s == pytest.approx(1.5, abs=0.05)
    assert info.closed_gop and info.keyframes >= 1
    assert info.faststart
    # Content-addressed: the file is named by its own SHA-256 and recorded in the index.
    assert out.name == hashlib.sha256(out.read_bytes()).hexdigest() + ".mp4"
    index = json.loads((tmp_path / "media" / "index.json").read_text())
    assert index["clips"][e.sha256]["project"] == "kids"
    assert cache.verify(e.sha256) == "ok"
    assert not any((tmp_path / "media" / "tmp").iterdir())  # no temp files left behind


def test_import_letterboxes_instead_of_stretching_and_halves_60fps(tmp_path):
    src = write_source(tmp_path / "four3.mp4", 200, 150, 60, 60, codec="libx264")  # 4:3, 60 fps
    cache = MediaCache(tmp_path / "media")
    e = cache.import_file(src, project="kids", width=320, height=180, preset="ultrafast")
    info = probe(cache.path(e.sha256))
    assert (info.width, info.height, info.fps) == (320, 180, 30.0)
    with av.open(str(cache.path(e.sha256))) as c:
        frame = next(c.decode(video=0)).reformat(format="rgb24")
    row = bytes(frame.planes[0])[90 * frame.planes[0].line_size:][: 320 * 3]
    px = lambda x: row[3 * x: 3 * x + 3]  # noqa: E731
    assert max(px(5)) < 30 and max(px(314)) < 30  # pillarbox bars at the sides
    assert px(160)[0] > 150  # the picture (red-ish) in the middle, 240 px wide


def test_probe_tells_open_gop_and_non_faststart_files_apart(tmp_path):
    path = tmp_path / "open.mp4"
    out = av.open(str(path), "w")  # no +faststart
    s = out.add_stream("libx264", rate=30, options={"preset": "ultrafast", "g": "15", "bf": "3",
                                                    "x264-params": "open-gop=1"})
    s.width, s.height, s.pix_fmt = 160, 90, "yuv420p"
    for i in range(60):
        f = av.VideoFrame.from_bytes(bytes([i * 4 % 256, 9, 200, 255]) * (160 * 90), 160, 90, "rgba")
        f = f.reformat(format="yuv420p")
        f.pts = i
        for p in s.encode(f):
            out.mux(p)
    for p in s.encode(None):
        out.mux(p)
    out.close()
    info = probe(path)
    assert not info.closed_gop and not info.faststart
    # ...while our own writer produces closed GOPs with faststart from the same pictures.
    good = tmp_path / "good.mp4"
    out, s = open_output(good, "libx264", 160, 90, Fraction(30), preset="ultrafast")
    with out:
        for i in range(60):
            f = av.VideoFrame.from_bytes(bytes([i * 4 % 256, 9, 200, 255]) * (160 * 90), 160, 90, "rgba")
            f = f.reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, 30)
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    info = probe(good)
    assert info.closed_gop and info.faststart and info.keyframes == 1


@pytest.mark.parametrize("src,expected", [(60, 30), (50, 25), (48, 24), (45, 30), (120, 30), (25, 25),
                                          (Fraction(30000, 1001), Fraction(30000, 1001)), (24, 24)])
def test_target_fps(src, expected):
    assert target_fps(src) == expected


@pytest.mark.parametrize("panel,expected", [((3840, 2160), (1920, 1080)), ((1366, 768), (1366, 768)),
                                            ((1080, 1920), (606, 1080)), ((1281, 721), (1280, 720))])
def test_panel_size_is_capped_at_1080p_and_even(panel, expected):
    assert panel_size(*panel) == expected


# --- the CLI ---------------------------------------------------------------------

def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kiosk")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(
        '[kiosk]\nid = "test-1"\ndata_dir = "data"\n\n[player]\nwidth = 320\nheight = 180\n\n'
        '[[projects]]\nid = "kids"\ntitle = "こども食堂"\narea = "children"\n'
        '\n[[player.playlist]]\nproject = "kids"\n',
        encoding="utf-8",
    )
    return path


def test_cli_import_list_verify(tmp_path, config_file, capsys):
    src = write_source(tmp_path / "in.mkv", 250, 142, 45, 20)
    assert run_cli("media", "import", str(src), "--project", "kids", "--title", "夏", "--preset", "ultrafast",
                   "--config", str(config_file)) == 0
    sha = capsys.readouterr().out.split()[1]
    clip = tmp_path / "data" / "media" / f"{sha}.mp4"
    assert clip.is_file() and probe(clip).width == 320

    assert run_cli("media", "list", "--config", str(config_file)) == 0
    listing = capsys.readouterr().out
    assert sha[:16] in listing and "kids" in listing and "#0" in listing  # used by playlist item 0

    assert run_cli("media", "verify", "--config", str(config_file)) == 0
    assert "OK" in capsys.readouterr().out
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 0xFF
    clip.write_bytes(bytes(data))
    assert run_cli("media", "verify", "--config", str(config_file)) == 1
    assert "CORRUPT" in capsys.readouterr().out


def test_cli_rejects_unknown_project_and_leaves_config_errors_to_main(tmp_path, config_file, capsys):
    src = write_source(tmp_path / "in.mkv", 64, 64, 30, 5)
    assert run_cli("media", "import", str(src), "--project", "nope", "--config", str(config_file)) == 2
    assert "unknown project 'nope'" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        run_cli("media", "import", str(src), "--project", "kids", "--config", str(tmp_path / "missing.toml"))


def test_cli_reports_an_undecodable_file(tmp_path, config_file, capsys):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a movie" * 100)
    assert run_cli("media", "import", str(junk), "--project", "kids", "--config", str(config_file)) == 1
    assert "cannot open" in capsys.readouterr().err


# --- verification is remembered durably (#16, cold start) ----------------------------------------------------

_CLIP_OPENS: dict[str, int] = {}


def _count_opens(event: str, args: tuple) -> None:
    # The OS seam: every Python-level open() of a watched path (hashing reads the clip through open()).
    if event == "open" and _CLIP_OPENS and isinstance(args[0], str) and args[0] in _CLIP_OPENS:
        _CLIP_OPENS[args[0]] += 1


sys.addaudithook(_count_opens)


def _watch(path: Path) -> None:
    _CLIP_OPENS.clear()
    _CLIP_OPENS[str(path)] = 0


def test_an_unchanged_64_mb_clip_is_not_read_at_the_next_start_a_changed_or_corrupted_one_is(tmp_path):
    from kiosk.player.media import sha256_file

    root = tmp_path / "media"
    root.mkdir()
    tmp = root / "big.bin"
    with open(tmp, "wb") as f:
        f.truncate(64 << 20)  # 64 MB, sparse: a real clip's size, not its disk use
    sha = sha256_file(tmp)
    clip = root / f"{sha}.mp4"
    tmp.rename(clip)
    try:
        _watch(clip)
        assert MediaCache(root).verify(sha) == "ok"  # first start: hashed
        assert _CLIP_OPENS[str(clip)] == 1
        assert MediaCache(root).verify(sha) == "ok"  # a restart: remembered on disk, not a byte read
        assert _CLIP_OPENS[str(clip)] == 1
        assert MediaCache(root).verify(sha, force=True) == "ok"  # `kiosk media verify` reads it all
        assert _CLIP_OPENS[str(clip)] == 2

        os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 1_000_000_000))
        assert MediaCache(root).verify(sha) == "ok"  # changed (mtime): hashed again
        assert _CLIP_OPENS[str(clip)] == 3

        # Corrupted in place, size and mtime put back as they were: the ctime still tells.
        st = clip.stat()
        fd = os.open(clip, os.O_WRONLY)
        try:
            os.pwrite(fd, b"\x01", 12345)
        finally:
            os.close(fd)
        os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert clip.stat().st_size == st.st_size and clip.stat().st_mtime_ns == st.st_mtime_ns
        _watch(clip)
        assert MediaCache(root).verify(sha) == "corrupt"
        assert MediaCache(root).verify(sha) == "corrupt"  # and at every start after: never remembered as ok
        assert _CLIP_OPENS[str(clip)] == 2
        assert sha not in json.loads((root / "verified.json").read_text())["clips"]
    finally:
        _CLIP_OPENS.clear()


def test_an_unreadable_verified_file_means_hash_again(tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    data = b"not really a movie" * 1000
    sha = hashlib.sha256(data).hexdigest()
    (root / f"{sha}.mp4").write_bytes(data)
    assert MediaCache(root).verify(sha) == "ok"
    (root / "verified.json").write_text("{torn")
    _watch(root / f"{sha}.mp4")
    try:
        assert MediaCache(root).verify(sha) == "ok"
        assert _CLIP_OPENS[str(root / f"{sha}.mp4")] == 1
    finally:
        _CLIP_OPENS.clear()
    assert sha in json.loads((root / "verified.json").read_text())["clips"]  # and it is written anew

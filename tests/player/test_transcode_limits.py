"""The transcoder's own limits (``--max-seconds``, ``--max-size``), checked on what it decodes rather than on the
header: the portal passes its limits for uploaded videos (server_sync/mediajobs.py), so a file whose header lies
about its length or picture size stops at the limit with ``error: too long`` / ``error: too large`` and leaves no
output, instead of running until the portal's 30-minute timeout. Real clips made with PyAV, the real child."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np


def clip(path: Path, seconds: int, size: tuple[int, int], fps: int = 10) -> Path:
    with av.open(str(path), "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(seconds * fps):
            f = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), (i * 5) % 256, np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiosk.player.transcode", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_a_clip_longer_than_max_seconds_stops_at_the_limit_and_leaves_nothing(tmp_path: Path) -> None:
    src, dst = clip(tmp_path / "long.mp4", 30, (64, 36)), tmp_path / "out.mp4"
    r = run(str(src), str(dst), "--width", "64", "--height", "36", "--max-seconds", "2")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "error: too long: over 2 s" in r.stderr
    progressed = [int(ln.split()[1]) for ln in r.stdout.splitlines() if ln.startswith("progress ")]
    assert max(progressed, default=0) < 60, progressed  # stopped near 2 s (25 frames), not after all 300
    assert not dst.exists()


def test_a_picture_larger_than_max_size_either_way_round_stops_at_once(tmp_path: Path) -> None:
    src, dst = clip(tmp_path / "big.mp4", 2, (320, 180)), tmp_path / "out.mp4"
    r = run(str(src), str(dst), "--width", "64", "--height", "36", "--max-size", "160x90")
    assert r.returncode == 1 and "error: too large: a picture of 320×180 pixels is over 160×90" in r.stderr, r.stderr
    assert not dst.exists()
    # Sideways limits are the same limits; within them (and within the length) it converts as before.
    tall = clip(tmp_path / "tall.mp4", 2, (90, 160))
    r = run(str(tall), str(dst), "--width", "64", "--height", "36", "--max-size", "160x90", "--max-seconds", "2")
    assert r.returncode == 0, r.stderr
    assert dst.exists() and r.stdout.splitlines()[-1].startswith("done ")

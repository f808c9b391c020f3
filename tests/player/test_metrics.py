"""One-second health samples: counts, p95, in-process latest(), and the size-capped file."""

from __future__ import annotations

import datetime as dt
import json

from kiosk.player.metrics import Metrics, p95

WALL = dt.datetime(2025, 7, 7, 10, 0, tzinfo=dt.UTC)


def test_a_sample_per_second_with_that_seconds_counts(tmp_path):
    m = Metrics(tmp_path / "m.jsonl", max_bytes=1 << 20)
    assert m.tick(100.0, 0.0, wall=WALL) is None  # starts the clock
    for i in range(30):
        m.frames(1, 0)
        m.decode_time(2.0 if i < 28 else 9.0)
    m.frames(0, 2)
    m.switch(3.5)
    m.clip_opened(14.0, loop=False)
    m.clip_opened(8.0, loop=True)
    assert m.tick(100.5, 15.0, wall=WALL) is None  # not a second yet
    s = m.tick(101.0, 32.0, wall=WALL, showing="clip:abcd:kids", display="160x90")
    assert s is not None and m.latest() is s
    assert (s.presented, s.dropped, s.expected) == (30, 2, 32)
    assert s.decode_p95_ms == 9.0 and s.switch_gap_ms == [3.5] and s.ttff_ms == [14.0, 8.0]
    assert (s.clips, s.loops) == (1, 1) and s.rss_mb > 0
    # The next second starts from zero.
    m.frames(1, 0)
    s2 = m.tick(102.0, 62.0, wall=WALL)
    assert (s2.presented, s2.dropped, s2.expected, s2.switch_gap_ms) == (1, 0, 30, [])
    assert m.history() == [s, s2]
    m.close()
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert [json.loads(line)["presented"] for line in lines] == [30, 1]


def test_the_file_is_capped_and_rotated(tmp_path):
    path = tmp_path / "metrics" / "player.jsonl"
    m = Metrics(path, max_bytes=4096)
    m.tick(0.0, 0.0, wall=WALL)
    for i in range(1, 400):
        m.frames(30, 0)
        m.tick(float(i), 30.0 * i, wall=WALL, showing="clip:" + "x" * 40)
    m.close()
    old = path.with_name("player.jsonl.1")
    assert path.stat().st_size <= 4096 and old.exists() and old.stat().st_size <= 4096
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["uptime_s"] == 399.0  # the newest samples are in the live file
    assert len(m.history(5)) == 5


def test_p95():
    assert p95([]) is None
    assert p95([1.0]) == 1.0
    assert p95([float(i) for i in range(1, 101)]) == 95.0

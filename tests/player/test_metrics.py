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


def _tick_many(m: Metrics, start: int, n: int) -> None:
    for i in range(start, start + n):
        m.frames(30, 0)
        m.tick(float(i), 30.0 * i, wall=WALL, showing="clip:3c8af16e:kodomo-shokudo", display="1280x720")


def test_a_disk_that_fills_mid_write_leaves_no_half_line(tmp_path):
    """The data partition fills while a batch of lines is being appended (a real tmpfs, filled with a file): the
    part of the batch that fit is taken back, so every line of the file stays a whole JSON object and the lines
    written once there is room again are readable, the failed batch's samples aside (kept in memory only)."""
    from tests.mounts import fill, small_tmpfs

    with small_tmpfs(tmp_path / "disk", "256k") as disk:
        path = disk / "metrics" / "player.jsonl"
        m = Metrics(path, max_bytes=1 << 20)
        m.tick(0.0, 0.0, wall=WALL)
        _tick_many(m, 1, 10)  # one batch on disk: less than a page, so the next batch can half fit
        assert len(path.read_bytes()) < 4096 - 100
        filler = fill(disk)
        _tick_many(m, 11, 10)  # this batch meets the full disk part way through
        raw = path.read_bytes()
        assert raw.endswith(b"\n"), raw[-200:]
        filler.unlink()
        _tick_many(m, 21, 10)
        m.close()
        lines = path.read_text().splitlines()
        samples = [json.loads(line) for line in lines]  # every line whole
        assert [s["uptime_s"] for s in samples] == [float(i) for i in (*range(1, 11), *range(21, 31))]
        assert m.latest() is not None and m.latest().uptime_s == 30.0


def test_a_line_cut_by_a_power_cut_does_not_spoil_the_next_ones(tmp_path):
    """A power cut in the middle of an append leaves a last line without its end. The next batch starts on a
    line of its own: only the cut line is unreadable, not the first sample written after the restart."""
    path = tmp_path / "metrics" / "player.jsonl"
    path.parent.mkdir()
    path.write_bytes(b'{"t":"2025-07-07T10:00:01+00:00","uptime_s":1.0,"presented":30\n{"t":"2025-07-07T10:00')
    m = Metrics(path, max_bytes=1 << 20)
    m.tick(0.0, 0.0, wall=WALL)
    _tick_many(m, 1, 10)
    m.close()
    lines = path.read_text().splitlines()
    assert lines[1] == '{"t":"2025-07-07T10:00'  # the cut line, alone
    assert [json.loads(line)["uptime_s"] for line in lines[2:]] == [float(i) for i in range(1, 11)]

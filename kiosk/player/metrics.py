"""Playback health: one sample a second, kept in memory and appended to a size-capped JSON-lines file.

The decode thread reports decode times and clip opens; the render loop
reports presented/dropped frames and switch gaps and calls :meth:`Metrics.tick`.
The maintenance menu reads :meth:`Metrics.latest`.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import resource
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger("kiosk.player.metrics")

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    """Resident set size now (Linux /proc), else the peak as reported by getrusage."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE / 1e6
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KiB on Linux


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(0.95 * (len(s) - 1) + 0.5))]


@dataclass
class Sample:
    """One second of playback. Counts are for that second; ``clips``/``loops`` are running totals."""

    t: str
    """Wall time at the end of the second (ISO 8601)."""
    uptime_s: float
    presented: int
    expected: int
    dropped: int
    decode_p95_ms: float | None
    switch_gap_ms: list[float] = field(default_factory=list)
    ttff_ms: list[float] = field(default_factory=list)
    """Open-to-first-decoded-frame time of each clip opened (or seeked to 0) this second."""
    clips: int = 0
    loops: int = 0
    stalls: int = 0
    rss_mb: float = 0.0
    showing: str = ""
    """What is on screen: ``clip:<sha8>:<project>``, ``slide:<n>`` or ``still``."""
    display: str = ""
    """Screen size and state, e.g. ``1280x720`` or ``lost``."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))


class MetricsFile:
    """Append-only JSON lines, rotated to ``<name>.1`` when it would pass ``max_bytes``.

    Lines are buffered and written every ``flush_every`` samples to spare the SD card. Every line of the file is
    a whole sample, or (after a power cut in the middle of an append) one cut line standing alone: a batch that
    meets a full disk part way through is taken back, and a batch written after a cut line starts a line of its
    own, so whoever reads the file line by line loses at most that line.
    """

    def __init__(self, path: Path, max_bytes: int, flush_every: int = 10):
        self.path = path
        self.max_bytes = max_bytes
        self.flush_every = flush_every
        self._buf: list[str] = []
        self._warned = False

    def append(self, line: str) -> None:
        self._buf.append(line)
        if len(self._buf) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._buf:
            return
        data = ("\n".join(self._buf) + "\n").encode()
        self._buf.clear()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            size = self.path.stat().st_size if self.path.exists() else 0
            if size and size + len(data) > self.max_bytes:
                # A plain rename, not kiosk.ledger.durable: these are diagnostics appended every few
                # seconds, not state. Losing the last samples or the rotation to a power cut costs
                # nothing, and two fsyncs per rotation would wear the SD card for no gain.
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            self._append(data)
        except OSError as exc:
            if not self._warned:  # a full or read-only data partition must not stop the picture
                log.warning("metrics: cannot write %s: %s (keeping samples in memory only)", self.path, exc)
                self._warned = True
        else:
            if self._warned:
                log.info("metrics: writing %s again", self.path)
                self._warned = False

    def _append(self, data: bytes) -> None:
        """Append ``data`` (whole lines) or nothing: a write the disk cannot take whole is cut back to where it
        began (else its first half and the next batch's first line became one line no reader can parse)."""
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            start = os.fstat(fd).st_size
            if start and os.pread(fd, 1, start - 1) != b"\n":
                data = b"\n" + data  # the last line was cut (a power cut mid-append): leave it alone on its line
            view = memoryview(data)
            try:
                while view:
                    n = os.write(fd, view)
                    if n <= 0:  # never for a regular file; never loop on it either
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
                    view = view[n:]
            except OSError:
                os.ftruncate(fd, start)  # if this fails too, the next append starts a new line (above)
                raise
        finally:
            os.close(fd)


class Metrics:
    def __init__(self, path: Path | None = None, *, max_bytes: int = 1 << 20, keep: int = 600):
        self.file = MetricsFile(path, max_bytes) if path else None
        self._lock = threading.Lock()
        self._history: deque[Sample] = deque(maxlen=keep)
        self._start: float | None = None
        self._last: float | None = None
        self._decode_ms: list[float] = []
        self._gaps: list[float] = []
        self._ttff: list[float] = []
        self._presented = 0
        self._expected_mark = 0.0
        self._dropped = 0
        self.clips = 0
        self.loops = 0
        self.stalls = 0
        self.totals = {"presented": 0, "dropped": 0, "switches": 0, "max_switch_gap_ms": 0.0, "max_ttff_ms": 0.0}
        self.startup_ttff_ms: float | None = None
        """Player start to the first frame on screen."""

    # --- reports (decode thread) ---------------------------------------------
    def decode_time(self, ms: float) -> None:
        with self._lock:
            self._decode_ms.append(ms)

    def clip_opened(self, ttff_ms: float, *, loop: bool) -> None:
        with self._lock:
            self._ttff.append(round(ttff_ms, 2))
            self.totals["max_ttff_ms"] = max(self.totals["max_ttff_ms"], ttff_ms)
            if loop:
                self.loops += 1
            else:
                self.clips += 1

    # --- reports (render loop) -----------------------------------------------
    def frames(self, presented: int, dropped: int) -> None:
        with self._lock:
            self._presented += presented
            self._dropped += dropped
            self.totals["presented"] += presented
            self.totals["dropped"] += dropped

    def switch(self, gap_ms: float) -> None:
        with self._lock:
            self._gaps.append(round(gap_ms, 2))
            self.totals["switches"] += 1
            self.totals["max_switch_gap_ms"] = max(self.totals["max_switch_gap_ms"], gap_ms)

    def due(self, now: float) -> bool:
        """Whether :meth:`tick` would close a sample now (so callers can skip building its labels)."""
        return self._last is None or now - self._last >= 1.0

    def tick(self, now: float, expected_total: float, *, wall: dt.datetime, showing: str = "", display: str = "",
             stalls: int = 0) -> Sample | None:
        """Close a sample if a second has passed since the last one; returns it."""
        if self._start is None:
            self._start = self._last = now
            self._expected_mark = expected_total
            return None
        assert self._last is not None
        if now - self._last < 1.0:
            return None
        with self._lock:
            sample = Sample(
                t=wall.isoformat(timespec="seconds"),
                uptime_s=round(now - self._start, 3),
                presented=self._presented,
                expected=round(expected_total - self._expected_mark),
                dropped=self._dropped,
                decode_p95_ms=(round(v, 2) if (v := p95(self._decode_ms)) is not None else None),
                switch_gap_ms=self._gaps,
                ttff_ms=self._ttff,
                clips=self.clips,
                loops=self.loops,
                stalls=stalls,
                rss_mb=round(rss_mb(), 1),
                showing=showing,
                display=display,
            )
            self._decode_ms, self._gaps, self._ttff = [], [], []
            self._presented = self._dropped = 0
        self._expected_mark = expected_total
        self._last = now
        self._history.append(sample)
        if self.file:
            self.file.append(sample.to_json())
        return sample

    def latest(self) -> Sample | None:
        """The most recent one-second sample (``None`` during the first second)."""
        return self._history[-1] if self._history else None

    def history(self, n: int | None = None) -> list[Sample]:
        """Up to ``n`` most recent samples, oldest first."""
        items = list(self._history)
        return items if n is None else items[-n:]

    def close(self) -> None:
        if self.file:
            self.file.flush()

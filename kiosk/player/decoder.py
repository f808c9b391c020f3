"""The decode thread: PyAV frames converted to the screen's size and pixel format, into a small bounded queue.

Gapless by construction: the thread runs ahead of the screen by the queue's
depth, so when one clip ends it asks the scheduler what comes next, opens it
(or seeks the already-open file back to 0 for a single-clip loop) and decodes
its first frame while the previous clip's last frames are still waiting to be
shown. The render loop never waits for a file to open.

While the screen covers the movie (an opaque donation screen), the render
loop holds its timeline and pauses this thread (:meth:`DecodeWorker.pause`):
it stops before the next frame, with the queue as it was, and goes on from
there on :meth:`DecodeWorker.resume`. Decoding and converting frames nobody
sees took the CPU a tap's commits and thank-you need on a Pi-class core.

Stills (event slides, the fallback slide) travel through the same queue as
0.1 s "pieces" so that the lookahead stays short in time: a playlist change
takes effect at the next boundary instead of after a long slide was queued.
"""

from __future__ import annotations

import glob
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import msgspec

from kiosk.player.metrics import Metrics
from kiosk.player.schedule import ClipRef, Entry

if TYPE_CHECKING:
    import av
    from av.video.reformatter import VideoReformatter

# PyAV is imported on the decode thread (DecodeWorker.run), not with this module: `kiosk run` sends READY=1
# before the movie's first frame is decoded, and PyAV's import was a tenth of a start (cold start, #16).

log = logging.getLogger("kiosk.player.decoder")

HW_DECODER: Final = "h264_v4l2m2m"
STILL_STEP_S = 0.1
FALLBACK_S = 2.0
"""How long the fallback still is queued before the scheduler is asked again (so new clips show up)."""

_hw_state = {"broken": False}


class Target(msgspec.Struct, frozen=True):
    """What the screen wants: size and an FFmpeg pixel format that matches its surface byte for byte."""

    width: int
    height: int
    fmt: str

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


@dataclass(eq=False, slots=True)
class Item:
    """One queued picture: a converted video frame, or one 0.1 s piece of a still."""

    seg: int
    index: int
    pts: float
    duration: float
    kind: Literal["video", "slide", "still"]
    entry: Entry | None = None
    frame: av.VideoFrame | None = None
    size: tuple[int, int] = (0, 0)
    fmt: str = ""
    loop: bool = False


class FrameQueue:
    """Bounded FIFO: the decode thread blocks when full; the render loop peeks and pops without blocking."""

    def __init__(self, max_items: int):
        self.max_items = max_items
        self._dq: deque[Item] = deque()
        self._cond = threading.Condition()

    def put(self, item: Item, stop: threading.Event) -> bool:
        with self._cond:
            while len(self._dq) >= self.max_items:
                if stop.is_set():
                    return False
                self._cond.wait(0.05)
            self._dq.append(item)
            self._cond.notify_all()
            return True

    def peek(self) -> Item | None:
        dq = self._dq
        return dq[0] if dq else None

    def pop(self) -> Item:
        with self._cond:
            item = self._dq.popleft()
            self._cond.notify_all()
            return item

    def wait_nonempty(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self._dq) > 0, timeout)

    def clear(self) -> None:
        with self._cond:
            self._dq.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._dq)


def fit_size(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[int, int]:
    """Largest size with the source's aspect inside the target; snaps to the target within 2 px."""
    scale = min(dst_w / src_w, dst_h / src_h)
    w, h = round(src_w * scale), round(src_h * scale)
    if abs(w - dst_w) <= 2 and abs(h - dst_h) <= 2:
        return dst_w, dst_h
    return max(2, w - w % 2), max(2, h - h % 2)


def _hw_available() -> bool:
    import av

    # The Pi 4's stateful decoder is a V4L2 memory-to-memory device (/dev/video10); without any
    # /dev/video* node there is nothing to try and FFmpeg would only log errors.
    return HW_DECODER in av.codecs_available and not _hw_state["broken"] and bool(glob.glob("/dev/video*"))


class OpenClip:
    """An open container plus its decoder; supports rewinding to 0 for loops."""

    def __init__(self, ref: ClipRef, prefer_hw: bool):
        import av

        self.ref = ref
        self.container = av.open(str(ref.path))
        try:
            if not self.container.streams.video:
                raise av.InvalidDataError(0, "no video stream")
            self.stream = self.container.streams.video[0]
            rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(30)
            self.frame_s = float(1 / rate)
            self.time_base = self.stream.time_base or Fraction(1, 90000)
            self.ctx = self.stream.codec_context
            self.decoder = "software"
            if prefer_hw and self.ctx.name == "h264" and _hw_available():
                try:
                    hw = av.CodecContext.create(HW_DECODER, "r")
                    hw.extradata = self.ctx.extradata
                    hw.width, hw.height = self.ctx.width, self.ctx.height
                    self.ctx, self.decoder = hw, HW_DECODER
                except Exception as exc:
                    self._hw_failed(exc)
            if self.decoder == "software":
                self.ctx.thread_type = "AUTO"  # frame + slice threads: uses every core on a Pi 5
        except Exception:
            self.container.close()
            raise

    @staticmethod
    def _hw_failed(exc: BaseException) -> None:
        if not _hw_state["broken"]:
            log.warning("player: hardware decoder %s unusable (%s); decoding in software", HW_DECODER, exc)
        _hw_state["broken"] = True

    def frames(self) -> Iterator[av.VideoFrame]:
        import av

        got_any = False
        try:
            for packet in self.container.demux(self.stream):
                for frame in self.ctx.decode(packet):
                    got_any = True
                    yield frame
        except av.FFmpegError as exc:
            if self.decoder != HW_DECODER or got_any:
                raise
            # The hardware decoder refused the stream: start again in software.
            self._hw_failed(exc)
            self.ctx, self.decoder = self.stream.codec_context, "software"
            self.ctx.thread_type = "AUTO"
            self.container.seek(0)
            yield from self.frames()

    def rewind(self) -> None:
        self.container.seek(0)
        self.ctx.flush_buffers()  # the stream's own context is flushed by seek; a separate hw one is not

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # closing a half-broken file must not take the thread down
            pass


class DecodeWorker(threading.Thread):
    def __init__(
        self,
        next_entry: Callable[[], Entry | None],
        queue: FrameQueue,
        target: Target,
        *,
        metrics: Metrics,
        on_bad: Callable[[ClipRef, str], None],
        prefer_hw: bool = True,
    ):
        super().__init__(name="kiosk-decode", daemon=True)
        self._next = next_entry
        self.queue = queue
        self.target = target
        """Replaced (atomically) by the render loop when the screen changes."""
        self.metrics = metrics
        self._on_bad = on_bad
        self.prefer_hw = prefer_hw
        self._halt = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self._open: OpenClip | None = None
        self._seg = 0
        self.opens = 0
        """Files opened so far (a loop seek is not an open)."""
        self.decoded = 0
        """Video frames decoded and converted so far."""
        self.decoder = "software"
        self.error: BaseException | None = None
        # One long-lived reformatter: frame.reformat() would build a fresh swscale context for every
        # frame, which costs about as much as the conversion itself. Made on the decode thread (_play).
        self._reformatter: VideoReformatter | None = None

    def pause(self) -> None:
        """Decode nothing more until :meth:`resume` (the frame being decoded, if any, is still queued)."""
        self._go.clear()

    def resume(self) -> None:
        self._go.set()

    @property
    def paused(self) -> bool:
        return not self._go.is_set()

    def stop(self, timeout: float = 2.0) -> None:
        self._halt.set()
        self._go.set()  # a paused thread wakes to see the halt
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                try:
                    entry = self._next()
                except Exception:
                    log.exception("player: scheduler failed; showing the still slide")
                    entry = None
                if entry is None:
                    self._emit_still("still", None, FALLBACK_S)
                elif entry.kind == "slide":
                    self._emit_still("slide", entry, entry.duration_s)
                elif not self._play(entry):
                    time.sleep(0.01)  # a failed clip is already marked bad; don't spin hot meanwhile
        except BaseException as exc:  # surfaced by Player.tick so a dead decoder is never silent
            self.error = exc
            log.exception("player: decode thread died")
        finally:
            self._close()

    def _close(self) -> None:
        if self._open:
            self._open.close()
            self._open = None

    def _emit_still(self, kind: Literal["slide", "still"], entry: Entry | None, seconds: float) -> None:
        self._seg += 1
        for i in range(max(1, math.ceil(seconds / STILL_STEP_S - 1e-9))):
            item = Item(self._seg, i, i * STILL_STEP_S, STILL_STEP_S, kind, entry=entry)
            if not self.queue.put(item, self._halt):
                return

    def _play(self, entry: Entry) -> bool:
        import av

        if self._reformatter is None:
            from av.video.reformatter import VideoReformatter

            self._reformatter = VideoReformatter()
        reformatter = self._reformatter
        ref = entry.clip
        assert ref is not None
        t0 = time.perf_counter()
        loop = self._open is not None and self._open.ref.sha256 == ref.sha256
        try:
            if loop:
                assert self._open is not None
                self._open.rewind()
            else:
                self._close()
                self._open = OpenClip(ref, self.prefer_hw)
                self.opens += 1
        except Exception as exc:
            self._close()
            self._on_bad(ref, f"cannot open: {exc}")
            return False
        clip = self._open
        self.decoder = clip.decoder
        self._seg += 1
        seg, n, first_pts, last_pts = self._seg, 0, None, -1.0
        frames = clip.frames()
        try:
            while not self._halt.is_set():
                if not self._go.is_set():
                    w = time.perf_counter()
                    self._go.wait()  # paused: the movie is covered (stop() sets it too)
                    t0 += time.perf_counter() - w  # a clip's time to first frame leaves the pause out
                    continue
                t = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                target = self.target
                w, h = fit_size(frame.width, frame.height, target.width, target.height)
                # One swscale pass does both the size and the colour conversion (GIL released).
                out = reformatter.reformat(frame, width=w, height=h, format=target.fmt,
                                                 interpolation="BILINEAR", threads=1)
                done = time.perf_counter()
                self.decoded += 1
                self.metrics.decode_time((done - t) * 1000)
                if frame.pts is not None:
                    first_pts = frame.pts if first_pts is None else first_pts
                    pts = float((frame.pts - first_pts) * clip.time_base)
                else:
                    pts = n * clip.frame_s
                if pts <= last_pts:
                    pts = last_pts + clip.frame_s
                last_pts = pts
                if n == 0:
                    self.metrics.clip_opened((done - t0) * 1000, loop=loop)
                item = Item(seg, n, pts, clip.frame_s, "video", entry=entry, frame=out, size=(w, h),
                            fmt=target.fmt, loop=loop)
                if not self.queue.put(item, self._halt):
                    return True
                n += 1
        except (av.FFmpegError, OSError, ValueError) as exc:
            self._close()
            self._on_bad(ref, f"decode error after {n} frames: {exc}")
            return n > 0
        if n == 0 and not self._halt.is_set():
            self._close()
            self._on_bad(ref, "no video frames")
            return False
        return True


def open_first_frame_ms(path: Path, target: Target, prefer_hw: bool = False) -> float:
    """Time to open a clip and have its first frame converted (for the benchmark and doctor)."""
    t0 = time.perf_counter()
    clip = OpenClip(ClipRef("", path, ""), prefer_hw)
    try:
        frame = next(clip.frames())
        frame.reformat(width=target.width, height=target.height, format=target.fmt, threads=1)
    finally:
        clip.close()
    return (time.perf_counter() - t0) * 1000

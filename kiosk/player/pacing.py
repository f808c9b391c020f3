"""Frame pacing: which decoded frame belongs on screen now, on the clip's own timeline.

Pure logic over anything with ``seg``, ``pts`` and ``duration`` (seconds), so
it can be tested with plain tuples and a fake clock. A *segment* is one play
of one clip (a loop of the same clip is a new segment) or one showing of a
still slide.

Rules:

- frames are presented when their time comes, never earlier;
- if the decoder falls behind, the newest due frame wins and the ones it
  overtook are counted as dropped — the timeline is never slowed;
- a new segment starts where the previous one ended; the *switch gap* is how
  long the last frame of the old segment stayed beyond its own duration
  (0 when the next clip's first frame was ready in time);
- after a stall longer than ``stall_s`` (display gone, process stopped) the
  timeline is re-anchored instead of dropping a whole clip's worth of frames;
- a *hold* (the movie fully covered by an opaque screen) stops the timeline:
  nothing is due while held, and on release the timeline resumes where it
  stopped, shifted by the time held, so no frame is dropped or skipped and no
  frames are expected for the held time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class Timed(Protocol):
    @property
    def seg(self) -> int: ...

    @property
    def pts(self) -> float: ...

    @property
    def duration(self) -> float: ...


T = TypeVar("T", bound=Timed)


@dataclass
class Selection(Generic[T]):
    frame: T | None = None
    """The frame to present now (``None``: keep what is on screen)."""
    dropped: int = 0
    """Frames overtaken this tick because they were already late."""
    switch_gap_ms: float | None = None
    """Set when a new segment started this tick (not for the very first one)."""
    new_segment: bool = False
    stalled: bool = False


class Pacer(Generic[T]):
    def __init__(self, *, paced: bool = True, stall_s: float = 0.5):
        self.paced = paced
        self.stall_s = stall_s
        self.seg: int | None = None
        self._anchor = 0.0  # clock time at which pts 0 of the current segment is due
        self._end = 0.0  # clock time the frame on screen runs out
        self._frame_dur = 0.0
        self._last_now: float | None = None
        self.expected = 0.0
        """Frames the timelines called for so far (fractional; compare with presented + dropped)."""
        self.presented = 0
        self.dropped = 0
        self.stalls = 0
        self.held_at: float | None = None
        """Clock time the timeline was held at (:meth:`hold`), or ``None`` while it runs."""

    def hold(self, now: float) -> None:
        """Stop the timeline at ``now`` (the movie is hidden): :meth:`select` must not be called until
        :meth:`release`."""
        if self.held_at is None:
            self.held_at = now

    def release(self, now: float) -> None:
        """Resume the timeline where :meth:`hold` stopped it: everything due moves later by the time held."""
        if self.held_at is None:
            return
        held, self.held_at = max(0.0, now - self.held_at), None
        if self.paced:
            self._anchor += held
            self._end += held
        if self._last_now is not None:
            self._last_now += held  # no frames were expected while nothing could be seen

    def next_due(self, head: T | None) -> float | None:
        """Clock time at which ``head`` (the next queued frame) is due, for sleeping until then."""
        if head is None or self.held_at is not None:
            return None
        if not self.paced or self.seg is None:
            return self._last_now or 0.0
        if head.seg != self.seg:
            return self._end
        return self._anchor + head.pts

    def select(self, now: float, peek: Callable[[], T | None], pop: Callable[[], T]) -> Selection[T]:
        sel: Selection[T] = Selection()
        # Expected frames accrue only while a timeline runs: not before the first frame, and not across a stall
        # (the frame shown this time more than stall_s late: the timeline is re-anchored, below). A late call that
        # is no stall (a process descheduled for 0.6 s, its frame due just now) still called for the frames its
        # gap dropped: leaving the gap out made presented + dropped exceed expected.
        accrue = 0.0
        if self.paced and self.seg is not None and self._last_now is not None and self._frame_dur > 0:
            accrue = (now - self._last_now) / self._frame_dur
        self._last_now = now
        while True:
            head = peek()
            if head is None:
                break
            if self.seg is None or head.seg != self.seg:
                if sel.frame is not None:
                    break  # show the old segment's last frame before starting the next one
                due = now if (self.seg is None or not self.paced) else self._end
                if now < due:
                    break
                pop()
                late = now - due
                if self.seg is not None and self.paced:
                    sel.switch_gap_ms = late * 1000.0
                # Stay on the ideal timeline when the first frame was in time; a late first frame
                # starts its clip from the top rather than dropping its opening frames.
                self._anchor = (due if late < head.duration else now) - head.pts
                self.seg = head.seg
                self._frame_dur = head.duration
                sel.new_segment = True
                sel.frame = head
                if not self.paced:
                    break
                continue
            due = self._anchor + head.pts
            if self.paced and now < due:
                break
            pop()
            if sel.frame is not None:
                sel.dropped += 1
            sel.frame = head
            self._frame_dur = head.duration or self._frame_dur
            if not self.paced:
                break
        if sel.frame is not None:
            f = sel.frame
            if self.paced and now - (self._anchor + f.pts) > self.stall_s:
                # Long stall: pretend this frame is due now rather than dropping everything after it.
                self._anchor = now - f.pts
                self.stalls += 1
                sel.stalled = True
            self._end = (self._anchor + f.pts + f.duration) if self.paced else now
            self.presented += 1
            self.dropped += sel.dropped
        if not sel.stalled:
            self.expected += accrue
        if not self.paced:
            self.expected = float(self.presented)
        return sel

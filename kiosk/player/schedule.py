"""What plays next: the playlist walked in order, honouring time windows, repeats and event slides.

Pure logic: no pygame, no PyAV, no files. Wall time comes in as an argument
and media lookup through a ``resolve`` callable, so the rules can be tested
with a fake clock. The decode thread calls :meth:`Scheduler.next` at every
clip boundary; :meth:`Scheduler.update` (from any thread) stages a new
playlist that takes effect at the following boundary.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

from kiosk.config.plain import in_windows

if TYPE_CHECKING:
    from kiosk.config.player import EventSlide, PlaylistItem


class ClipRef(msgspec.Struct, frozen=True):
    """A playable, verified clip in the media cache."""

    sha256: str
    path: Path
    project_id: str
    title: str = ""


class Entry(msgspec.Struct, frozen=True):
    """One thing to put on screen: a clip, or an event slide for ``duration_s`` seconds."""

    kind: Literal["clip", "slide"]
    index: int
    """Position in the playlist (clips) or the slide list (slides)."""
    clip: ClipRef | None = None
    slide: EventSlide | None = None
    duration_s: float = 0.0

    @property
    def project_id(self) -> str | None:
        return self.clip.project_id if self.clip else None


Resolver = Callable[["PlaylistItem"], "ClipRef | None"]


class Scheduler:
    def __init__(
        self,
        playlist: list[PlaylistItem],
        slides: list[EventSlide],
        resolve: Resolver,
        *,
        slide_every: int = 3,
        tz: dt.tzinfo = dt.UTC,
    ):
        self._resolve = resolve
        self._tz = tz
        self._lock = threading.Lock()
        self._playlist = list(playlist)
        self._slides = list(slides)
        self._slide_every = slide_every
        self._pending: tuple[list[PlaylistItem], list[EventSlide], int] | None = None
        self._pos = -1  # index of the playlist item played last
        self._repeats_left = 0
        self._last_item: PlaylistItem | None = None
        self._slide_pos = -1
        self._clips_since_slide = 0

    def update(self, playlist: list[PlaylistItem], slides: list[EventSlide], slide_every: int | None = None) -> None:
        """Stage a new playlist; it replaces the current one at the next clip boundary."""
        with self._lock:
            self._pending = (list(playlist), list(slides), self._slide_every if slide_every is None else slide_every)

    @property
    def playlist(self) -> list[PlaylistItem]:
        with self._lock:
            return list(self._playlist)

    def next(self, now: dt.datetime) -> Entry | None:
        """The entry to play after the current one, or ``None`` if nothing at all can play now."""
        local = now.astimezone(self._tz)
        with self._lock:
            self._apply_pending()
            if self._slide_every and self._clips_since_slide >= self._slide_every:
                slide = self._next_slide(local)
                if slide is not None:
                    self._clips_since_slide = 0
                    return slide
            clip = self._next_clip(local)
            if clip is not None:
                self._clips_since_slide += 1
                return clip
            # No clip may play now: fall back to upcoming-event slides, then to nothing.
            return self._next_slide(local)

    # --- internals (called with the lock held) ---------------------------------

    def _apply_pending(self) -> None:
        if self._pending is None:
            return
        playlist, slides, every = self._pending
        self._pending = None
        # Keep our place: continue after the item that just played if it is still listed.
        last = self._last_item
        self._pos = -1
        if last is not None:
            same = [i for i, item in enumerate(playlist) if item == last]
            if same:
                self._pos = same[0]
            else:
                self._repeats_left = 0
        if slides != self._slides:
            self._slide_pos = -1
        self._playlist, self._slides, self._slide_every = playlist, slides, every

    def _playable(self, item: PlaylistItem, local: dt.datetime) -> ClipRef | None:
        if not in_windows(item.windows, local):
            return None
        return self._resolve(item)

    def _next_clip(self, local: dt.datetime) -> Entry | None:
        n = len(self._playlist)
        if n == 0:
            return None
        if self._repeats_left > 0 and 0 <= self._pos < n:
            item = self._playlist[self._pos]
            ref = self._playable(item, local)
            if ref is not None:
                self._repeats_left -= 1
                return Entry("clip", self._pos, clip=ref)
        for step in range(1, n + 1):
            i = (self._pos + step) % n
            item = self._playlist[i]
            ref = self._playable(item, local)
            if ref is not None:
                self._pos = i
                self._last_item = item
                self._repeats_left = item.repeat - 1
                return Entry("clip", i, clip=ref)
        return None

    def _next_slide(self, local: dt.datetime) -> Entry | None:
        n = len(self._slides)
        for step in range(1, n + 1):
            i = (self._slide_pos + step) % n
            slide = self._slides[i]
            if slide.active_on(local):
                self._slide_pos = i
                return Entry("slide", i, slide=slide, duration_s=slide.duration_s)
        return None

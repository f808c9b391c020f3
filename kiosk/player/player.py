"""The movie loop: one process, one display, decode in a thread, present on the clip's timeline.

Each :meth:`Player.tick`:

1. handles window/display events (and hands every event to listeners);
2. asks the :class:`~kiosk.player.pacing.Pacer` which queued frame is due;
3. puts it on the display surface (one memcpy when formats match), or keeps
   the last one — the screen is never cleared between clips;
4. runs the overlays (the donation screens draw here) and flips;
5. closes a one-second metrics sample when due.

Nothing in a tick waits for the decoder: an empty queue just means the
current picture stays up one more tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

import msgspec
import pygame

from kiosk.config import ConfigError
from kiosk.ledger.clock import Clock, SystemClock
from kiosk.player.decoder import DecodeWorker, FrameQueue, Item, Target
from kiosk.player.display import Display, pixel_format
from kiosk.player.media import MediaCache
from kiosk.player.metrics import Metrics
from kiosk.player.pacing import Pacer
from kiosk.player.schedule import ClipRef, Scheduler
from kiosk.player.slides import SlideRenderer, find_font

if TYPE_CHECKING:
    from kiosk.config import KioskConfig
    from kiosk.config.player import PlaylistItem

log = logging.getLogger("kiosk.player")

Overlay = Callable[[pygame.Surface, int], None]
"""Draws over the presented frame: ``overlay(screen, now_ms)``. Called every tick, in z order."""

PresentListener = Callable[[pygame.Surface, "Showing"], None]
"""Called after each new picture (video frame or still) is composed and flipped."""

OVERLAY_FPS = 30.0
"""Ticks per second while overlays are active and the video itself is not due sooner."""
CONFIG_POLL_S = 2.0
FIRST_FRAME_WAIT_S = 3.0
_FROMBUFFER: dict[str, Literal["RGB", "BGR", "RGBX", "BGRA"]] = {
    "rgb24": "RGB", "bgr24": "BGR", "rgb0": "RGBX", "bgr0": "BGRA"}


class Showing(msgspec.Struct, frozen=True):
    """What is on screen now."""

    kind: Literal["video", "slide", "still"]
    project_id: str | None
    clip_sha: str | None
    seg: int
    """Segment number: increases at every clip start, loop and slide."""
    index: int
    """Frame (or still piece) number within the segment."""
    loop: bool = False
    title: str = ""


class Player:
    def __init__(
        self,
        cfg: KioskConfig,
        *,
        clock: Clock | None = None,
        display: Display | None = None,
        paced: bool = True,
        config_path: str | Path | None = None,
        font_path: str | Path | None = None,
        metrics_path: Path | None | Literal[False] = None,
    ):
        """``config_path`` enables hot reload of the playlist; ``metrics_path=False`` keeps metrics in memory only."""
        self.cfg = cfg
        pc = cfg.player
        self.clock: Clock = clock or SystemClock()
        self.display = display or Display(pc.display, (pc.width, pc.height), title=f"kiosk {cfg.kiosk.id}")
        self.cache = MediaCache(cfg.data_dir / "media")
        if metrics_path is None:
            metrics_path = cfg.data_dir / "metrics" / "player.jsonl"
        self.metrics = Metrics(metrics_path or None, max_bytes=pc.metrics_max_kb * 1024)
        self.scheduler = Scheduler(pc.playlist, pc.slides, self._resolve, slide_every=pc.slide_every,
                                   tz=ZoneInfo(cfg.kiosk.timezone))
        self.queue = FrameQueue(pc.queue_frames)
        self.pacer: Pacer[Item] = Pacer(paced=paced)
        self.font_path = Path(font_path) if font_path else find_font(pc.font)
        self.renderer: SlideRenderer | None = None
        self.worker: DecodeWorker | None = None
        self.frames_presented = 0
        """New pictures actually flipped to the display (the watchdog pings on this moving)."""
        self.ticks = 0
        self.covered: Callable[[], bool] | None = None
        """Asked once per tick, before a frame is chosen: ``True`` when the overlays will paint over the whole
        screen (an opaque full-screen step). The movie is then held: its frame is not drawn under them, its
        timeline stops and the decode thread pauses, and when the screen uncovers it it goes on from the frame it
        stopped at (no frame skipped or dropped, no switch gap). Decoding frames nobody sees took the CPU that a
        tap's commits and thank-you need on a Pi-class core (issue #16)."""
        self.covered_frames = 0
        """Frames composed without drawing the movie under them (``covered``)."""
        self.held_s = 0.0
        """Seconds the movie has spent held under a covering screen (``covered``), not counting the current hold."""
        self._overlays: list[tuple[int, int, Overlay]] = []
        self._overlay_seq = 0
        self._overlay_errors: dict[int, float] = {}
        self._present_listeners: list[PresentListener] = []
        self._event_listeners: list[Callable[[pygame.event.Event], None]] = []
        self._shown: Item | None = None
        self._target: Target | None = None
        self._direct = False
        self._bad: dict[str, str] = {}
        self._said: set[tuple] = set()
        self._said_lock = threading.Lock()
        self._quit = False
        self._started_at: float | None = None
        self.config_path = Path(config_path) if config_path else None
        self._cfg_stamp = self._stat(self.config_path)
        self._next_cfg_check = 0.0

    # --- public API ----------------------------------------------------------
    def add_overlay(self, overlay: Overlay, *, z: int = 0) -> Overlay:
        """Draw ``overlay(screen, now_ms)`` over every presented frame; higher ``z`` draws later (on top)."""
        self._overlay_seq += 1
        self._overlays.append((z, self._overlay_seq, overlay))
        self._overlays.sort(key=lambda t: (t[0], t[1]))
        return overlay

    def remove_overlay(self, overlay: Overlay) -> None:
        self._overlays = [t for t in self._overlays if t[2] is not overlay]

    def add_present_listener(self, listener: PresentListener) -> None:
        """``listener(screen, showing)`` after each new picture is on screen (watchdog, tests, recording)."""
        self._present_listeners.append(listener)

    def add_event_listener(self, listener: Callable[[pygame.event.Event], None]) -> None:
        """Receive every pygame event the loop pumps (touch, keys) — the player owns the event queue."""
        self._event_listeners.append(listener)

    @property
    def showing(self) -> Showing | None:
        item = self._shown
        if item is None:
            return None
        entry = item.entry
        ref = entry.clip if entry else None
        return Showing(item.kind, ref.project_id if ref else None, ref.sha256 if ref else None, item.seg, item.index,
                       item.loop, ref.title if ref else (entry.slide.title if entry and entry.slide else ""))

    @property
    def current_project_id(self) -> str | None:
        """The project whose clip is on screen (a tap gives to it); ``None`` during slides."""
        item = self._shown
        return item.entry.project_id if item is not None and item.entry is not None else None

    @property
    def screen(self) -> pygame.Surface | None:
        return self.display.surface

    @property
    def held(self) -> bool:
        """The movie is covered: its timeline stopped and the decode thread paused."""
        return self.pacer.held_at is not None

    @property
    def decoder_name(self) -> str:
        return self.worker.decoder if self.worker else "none"

    def reload(self, cfg: KioskConfig) -> None:
        """Adopt a new config's playlist and slides at the next clip boundary (no restart)."""
        old = self.cfg.player
        self.cfg = cfg
        self.scheduler.update(cfg.player.playlist, cfg.player.slides, cfg.player.slide_every)
        for item in cfg.player.playlist:
            entry = self._lookup(item)
            if entry is not None and self.cache.status(entry.sha256) is None:
                self.cache.verify_in_background(entry.sha256)
        fixed = ("display", "width", "height", "hw_decode", "queue_frames", "font", "metrics_max_kb")
        changed = [k for k in fixed if getattr(old, k) != getattr(cfg.player, k)]
        if changed:
            log.warning("player: %s changed; takes effect after a restart", ", ".join(f"player.{k}" for k in changed))
        log.info("player: playlist reloaded (%d items, %d slides); it takes over at the next clip boundary",
                 len(cfg.player.playlist), len(cfg.player.slides))

    def request_stop(self) -> None:
        """Make :meth:`run` return after the current tick (safe from listeners and overlays)."""
        self._quit = True

    # --- lifecycle -------------------------------------------------------------
    def start(self, *, decode: bool = True) -> Player:
        """Open the display (a still on it at once), check the clips, and, with ``decode``, start the decode thread
        and wait for its first frame. ``decode=False`` leaves that to :meth:`start_decoding` (``kiosk run`` sends
        READY=1 first: a tap needs the display, not the movie; cold start, #16)."""
        self._started_at = self.clock.monotonic()
        if self.display.open():
            self._adopt_display()
        else:
            self._target = Target(*self.display.configured_size, "rgb24")
        self.renderer = SlideRenderer(self.font_path)
        to_check = self._referenced_clips()
        if to_check and self.display.surface is not None:
            self._draw_still_now()  # verification can take seconds on a Pi: never show black meanwhile
        t = time.perf_counter()
        results = {sha: self.cache.verify(sha) for sha in to_check}
        if results:
            bad = sum(1 for s in results.values() if s != "ok")
            log.info("player: media cache verified in %.2f s: %d ok, %d unplayable", time.perf_counter() - t,
                     len(results) - bad, bad)
        if decode:
            self.start_decoding()
        return self

    def start_decoding(self, wait_s: float = FIRST_FRAME_WAIT_S) -> None:
        """Start the decode thread (PyAV is imported there) and wait up to ``wait_s`` for its first frame (0: go
        on at once; the loop shows the still and the overlays until the movie's first frame is decoded)."""
        assert self._target is not None and self.worker is None
        self.worker = DecodeWorker(lambda: self.scheduler.next(self.clock.now()), self.queue, self._target,
                                   metrics=self.metrics, on_bad=self._mark_bad,
                                   prefer_hw=self.cfg.player.hw_decode == "auto")
        if self.held:
            self.worker.pause()  # started under a covering screen: the hold's pause was for no worker yet
        self.worker.start()
        if wait_s > 0 and not self.held:
            self.queue.wait_nonempty(wait_s)

    def stop(self) -> None:
        if self.worker:
            self.worker.stop()
        self.queue.clear()
        self.metrics.close()
        self.cache.close()
        self.display.close()

    def __enter__(self) -> Player:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the loop --------------------------------------------------------------
    def run(self, *, ticks: int | None = None, frames: int | None = None, seconds: float | None = None,
            until: Callable[[Player], bool] | None = None) -> int:
        """Tick until a limit is hit (or a QUIT event / :meth:`request_stop`); returns ticks run.

        ``frames`` counts new pictures presented, ``seconds`` uses the player's clock.
        """
        if self.worker is None:
            self.start()
        first_frame = self.frames_presented
        end = self.clock.monotonic() + seconds if seconds is not None else None
        n = 0
        self._quit = False
        while not self._quit:
            self.tick()
            n += 1
            if ticks is not None and n >= ticks:
                break
            if frames is not None and self.frames_presented - first_frame >= frames:
                break
            if until is not None and until(self):
                break
            if end is not None and self.clock.monotonic() >= end:
                break
            self._wait()
        return n

    def _wait(self) -> None:
        """Sleep until the next frame is due (or the next overlay refresh), without busy-waiting."""
        now = self.clock.monotonic()
        if self.display.lost:
            self.clock.sleep(0.1)  # nothing to draw on; the display retries on its own schedule
            return
        head = self.queue.peek()
        if head is None:
            # Nothing decoded yet: wait on the queue in real time; a fake clock is not advanced by this.
            self.queue.wait_nonempty(0.005)
            return
        due = self.pacer.next_due(head)
        wait = (due - now) if due is not None else 0.05  # None: held under a covering screen
        if self._overlays:
            wait = min(wait, 1.0 / OVERLAY_FPS)
        wait = min(max(wait, 0.0), 0.05)
        if wait > 0:
            self.clock.sleep(wait)

    def tick(self) -> bool:
        """One pass of the loop; returns whether a new picture was presented."""
        if self.worker is not None and self.worker.error is not None:
            raise RuntimeError("player: decode thread died") from self.worker.error
        self.ticks += 1
        now = self.clock.monotonic()
        redraw = self._pump_events()
        if self.display.poll(now):
            self._adopt_display()
            redraw = True
        self._watch_config(now)
        presented = False
        if self.display.surface is not None:
            new = False
            dropped = 0
            covered = self.covered is not None and self.covered()
            self._hold(now, covered)
            if not covered:
                sel = self.pacer.select(now, self.queue.peek, self.queue.pop)
                if sel.switch_gap_ms is not None:
                    self.metrics.switch(sel.switch_gap_ms)
                if sel.frame is not None:
                    self._shown = sel.frame
                    new = True
                dropped = sel.dropped
            if new or redraw or self._overlays:
                presented = self._compose_and_flip(now, new=new, covered=covered)
            if presented and self._started_at is not None and self.metrics.startup_ttff_ms is None:
                self.metrics.startup_ttff_ms = (self.clock.monotonic() - self._started_at) * 1000
            self.metrics.frames(1 if presented else 0, dropped)
        if self.metrics.due(now):
            self.metrics.tick(now, self.pacer.expected, wall=self.clock.now(), showing=_describe(self.showing),
                              display="lost" if self.display.lost else "{}x{}".format(*self.display.size),
                              stalls=self.pacer.stalls)
        return presented

    def _hold(self, now: float, covered: bool) -> None:
        """Hold the movie while it is covered and let it go on when it is not (see ``covered``)."""
        held_at = self.pacer.held_at
        if covered and held_at is None:
            self.pacer.hold(now)
            if self.worker is not None:
                self.worker.pause()
        elif not covered and held_at is not None:
            if self.worker is not None:
                self.worker.resume()
            self.pacer.release(now)
            self.held_s += max(0.0, now - held_at)

    # --- drawing ---------------------------------------------------------------
    def _compose_and_flip(self, now: float, *, new: bool, covered: bool = False) -> bool:
        screen = self.display.surface
        assert screen is not None
        try:
            if covered:
                self.covered_frames += 1
            elif self._shown is not None:
                self._draw_item(screen, self._shown)
            elif self.renderer is not None:
                # Nothing decoded yet (`kiosk run` starts decoding after READY=1): the still under the overlays,
                # drawn again each frame, so that translucent overlays do not pile up on the last picture.
                screen.blit(self._still_surface(screen.get_size()), (0, 0))
            now_ms = int(now * 1000)
            for _, key, overlay in list(self._overlays):
                try:
                    overlay(screen, now_ms)
                except pygame.error:
                    raise
                except Exception:
                    self._overlay_failed(key, overlay)
            ok = self.display.flip()
        except pygame.error as exc:  # the display surface died under us (unplugged, driver reset)
            self.display._mark_lost(str(exc))
            return False
        if ok and new:
            self.frames_presented += 1
            showing = self.showing
            assert showing is not None
            for listener in list(self._present_listeners):
                listener(screen, showing)
        return ok and new

    def _draw_item(self, screen: pygame.Surface, item: Item) -> None:
        size = screen.get_size()
        if item.kind == "video":
            assert item.frame is not None
            plane = item.frame.planes[0]
            if (self._direct and self._target is not None and item.size == size and item.fmt == self._target.fmt
                    and plane.line_size == screen.get_pitch()):
                # One memcpy: decoded straight into the display's format. pygame's stub types write()'s buffer as
                # str | bytes, though its own note says any read-only bytes-like object is valid (a plane is one).
                screen.get_buffer().write(plane)  # type: ignore[arg-type]
                return
            name = _FROMBUFFER.get(item.fmt)
            if name is None:
                return  # a frame decoded for a previous display format; the next one will match
            src = pygame.image.frombuffer(plane, item.size, name, plane.line_size)
            if name == "BGRA":
                src = src.convert()  # bgr0's spare byte is not alpha
            if item.size != size:
                if item.size[0] > size[0] or item.size[1] > size[1]:
                    src = pygame.transform.smoothscale(src, _fit_within(item.size, size))
                screen.fill((0, 0, 0))
            screen.blit(src, ((size[0] - src.get_width()) // 2, (size[1] - src.get_height()) // 2))
            return
        assert self.renderer is not None
        if item.kind == "slide" and item.entry is not None and item.entry.slide is not None:
            screen.blit(self.renderer.event(item.entry.slide, size), (0, 0))
        else:
            screen.blit(self._still_surface(size), (0, 0))

    def _still_surface(self, size: tuple[int, int]) -> pygame.Surface:
        assert self.renderer is not None
        fonts = self.renderer.fonts
        lines = [fonts.pick(p.title, p.title_en) for p in self.cfg.projects]
        if not lines:
            lines = [fonts.pick("交通系ICカードで寄付ができます", "Give with your transit IC card")]
        return self.renderer.still(size, fonts.pick(self.cfg.kiosk.name, "Civic Activity Center"), lines)

    def _draw_still_now(self) -> None:
        screen = self.display.surface
        if screen is None:
            return
        try:
            screen.blit(self._still_surface(screen.get_size()), (0, 0))
            self.display.flip()
        except pygame.error as exc:
            self.display._mark_lost(str(exc))

    def _overlay_failed(self, key: int, overlay: Overlay) -> None:
        # A broken overlay must not stop the loop; log it with its traceback at most once a minute.
        now = time.monotonic()
        if now - self._overlay_errors.get(key, -1e9) >= 60:
            self._overlay_errors[key] = now
            log.exception("player: overlay %r failed (playback continues)", getattr(overlay, "__name__", overlay))

    # --- events, display, config ------------------------------------------------
    def _pump_events(self) -> bool:
        redraw = False
        try:
            events = pygame.event.get() if pygame.display.get_init() else []
        except pygame.error:
            events = []
        for event in events:
            if event.type == pygame.QUIT:
                self._quit = True
            if self.display.handle(event):
                self._adopt_display()
                redraw = True
            elif event.type in (pygame.VIDEOEXPOSE, pygame.WINDOWEXPOSED):
                redraw = True
            for listener in list(self._event_listeners):
                listener(event)
        return redraw

    def _adopt_display(self) -> None:
        screen = self.display.surface
        if screen is None:
            return
        fmt, self._direct = pixel_format(screen)
        self._target = Target(screen.get_width(), screen.get_height(), fmt)
        if self.worker is not None:
            self.worker.target = self._target
        pw, ph = self.cfg.player.width, self.cfg.player.height
        if (pw, ph) != screen.get_size():
            self._say_once(("size", screen.get_size()), logging.WARNING,
                           "player: display is %dx%d but player.width/height is %dx%d; clips will be scaled on the "
                           "CPU each frame — set the panel size and re-import", *screen.get_size(), pw, ph)

    def _watch_config(self, now: float) -> None:
        if self.config_path is None or now < self._next_cfg_check:
            return
        self._next_cfg_check = now + CONFIG_POLL_S
        stamp = self._stat(self.config_path)
        if stamp == self._cfg_stamp:
            return
        self._cfg_stamp = stamp
        from kiosk.config import load_config  # pydantic: only once the file changed under a running kiosk

        try:
            cfg = load_config(self.config_path)
        except ConfigError as exc:
            log.error("player: config change ignored, still playing the old playlist: %s", "; ".join(exc.problems))
            return
        self.reload(cfg)

    @staticmethod
    def _stat(path: Path | None) -> tuple[int, int] | None:
        try:
            st = path.stat() if path else None
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size) if st else None

    # --- media resolution (called on the decode thread) ----------------------------
    def _lookup(self, item: PlaylistItem):
        return self.cache.find(item.clip) if item.clip else self.cache.newest_for(item.project)

    def _referenced_clips(self) -> list[str]:
        shas: list[str] = []
        for item in self.cfg.player.playlist:
            entry = self._lookup(item)
            if entry is not None and entry.sha256 not in shas:
                shas.append(entry.sha256)
        return shas

    def _resolve(self, item: PlaylistItem) -> ClipRef | None:
        what = f"project {item.project!r}" + (f" clip {item.clip}" if item.clip else "")
        if self.cfg.project(item.project) is None:
            self._say_once(("project", item.project), logging.ERROR,
                           "player: skipping playlist item for %s: no such project in [[projects]]", what)
            return None
        entry = self._lookup(item)
        if entry is None:
            self._say_once(("nomedia", item.project, item.clip), logging.ERROR,
                           "player: skipping playlist item for %s: no such clip in the media cache "
                           "(import one with `kiosk media import FILE --project %s`)", what, item.project)
            return None
        sha = entry.sha256
        status = self.cache.status(sha)
        if status is None:
            self.cache.verify_in_background(sha)  # new since start-up: check it off the render path
            return None
        if status != "ok":
            why = "file is missing" if status == "missing" else "checksum mismatch, file is corrupt"
            self._say_once(("bad", sha, status), logging.ERROR,
                           "player: skipping clip %s (%s): %s; re-import it — the rest keep playing",
                           sha[:12], item.project, why)
            return None
        if sha in self._bad:
            return None
        return ClipRef(sha, self.cache.path(sha), item.project, entry.title)

    def _mark_bad(self, ref: ClipRef, reason: str) -> None:
        self._bad[ref.sha256] = reason
        self._say_once(("bad", ref.sha256, "decode"), logging.ERROR,
                       "player: skipping clip %s (%s): %s; the rest keep playing", ref.sha256[:12], ref.project_id,
                       reason)

    def _say_once(self, key: tuple, level: int, msg: str, *args: object) -> None:
        with self._said_lock:  # called from both the render loop and the decode thread
            if key in self._said:
                return
            self._said.add(key)
        log.log(level, msg, *args)


def _fit_within(src: tuple[int, int], dst: tuple[int, int]) -> tuple[int, int]:
    scale = min(dst[0] / src[0], dst[1] / src[1])
    return max(1, int(src[0] * scale)), max(1, int(src[1] * scale))


def _describe(showing: Showing | None) -> str:
    if showing is None:
        return ""
    if showing.kind == "video":
        return f"clip:{(showing.clip_sha or '')[:8]}:{showing.project_id}"
    return "still" if showing.kind == "still" else f"slide:{showing.title}"

"""The one display the kiosk process owns: driver choice, opening, and recovery when it goes away.

- Console Pi: SDL's ``kmsdrm`` driver, fullscreen. A 4K TV gets a 1080p mode
  and scales in hardware, because scaling on the CPU is what makes signage
  players stutter on 4K TVs.
- Desktop: a window of the configured panel size.
- Tests and headless runs: the ``dummy`` driver.

Recovery: window/display/render-device events and failed flips make the
display re-query its size and reopen; with kmsdrm the HDMI connector status
in sysfs is watched too (a TV switched off and on may give no SDL event), and
the display is only reopened once a connector reports ``connected`` — opening
earlier can leave it at 1024×768.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pygame

log = logging.getLogger("kiosk.player.display")

MAX_MODE = (1920, 1080)
RETRY_S = 1.0
CONNECTOR_POLL_S = 2.0

# Events after which the size may have changed or the picture needs redrawing.
RECONFIGURE_EVENTS = {
    pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED, pygame.WINDOWRESIZED, pygame.WINDOWDISPLAYCHANGED,
    pygame.RENDER_DEVICE_RESET, pygame.RENDER_TARGETS_RESET, pygame.WINDOWRESTORED, pygame.WINDOWSHOWN,
}
REDRAW_EVENTS = {pygame.VIDEOEXPOSE, pygame.WINDOWEXPOSED}


def connectors_connected(sysfs: str = "/sys/class/drm") -> bool | None:
    """Whether any DRM connector (HDMI, DSI, …) reports ``connected``; ``None`` when sysfs has none."""
    statuses = []
    for path in glob.glob(os.path.join(sysfs, "card*-*", "status")):
        try:
            statuses.append(Path(path).read_text().strip())
        except OSError:
            continue
    if not statuses:
        return None
    return any(s == "connected" for s in statuses)


def choose_driver(mode: str, env: dict[str, str] | None = None) -> tuple[str | None, bool]:
    """``(SDL video driver or None for SDL's default, fullscreen?)`` for a ``player.display`` mode."""
    env = dict(os.environ if env is None else env)
    forced = env.get("SDL_VIDEODRIVER")
    desktop = bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
    if mode == "headless":
        return "dummy", False
    if forced:
        return forced, (mode == "fullscreen" or forced == "kmsdrm")
    if mode == "window":
        return None, False
    if mode == "fullscreen":
        return (None, True) if desktop else ("kmsdrm", True)
    if desktop:
        return None, False
    if glob.glob("/dev/dri/card*"):
        return "kmsdrm", True
    return "dummy", False


def pixel_format(surface: pygame.Surface) -> tuple[str, bool]:
    """The FFmpeg pixel format whose bytes equal this surface's pixels, and whether rows are unpadded.

    When both hold, a decoded frame is presented with a single memcpy into the
    display surface. Otherwise frames are decoded to rgb24 and blitted.
    """
    bits, masks = surface.get_bitsize(), tuple(surface.get_masks()[:3])
    # Little-endian hosts (x86, ARM): an XRGB8888 pixel 0x00RRGGBB sits in memory as B G R X.
    table: dict[tuple[int, tuple[int, ...]], str] = {
        (32, (0xFF0000, 0xFF00, 0xFF)): "bgr0",
        (32, (0xFF, 0xFF00, 0xFF0000)): "rgb0",
        (24, (0xFF0000, 0xFF00, 0xFF)): "bgr24",
        (24, (0xFF, 0xFF00, 0xFF0000)): "rgb24",
        (16, (0xF800, 0x07E0, 0x001F)): "rgb565le",
    }
    fmt = table.get((bits, masks))
    if fmt is None:
        return "rgb24", False
    return fmt, surface.get_pitch() == surface.get_width() * surface.get_bytesize()


class Display:
    def __init__(
        self,
        mode: str = "auto",
        size: tuple[int, int] = (1280, 720),
        *,
        driver: str | None = None,
        fullscreen: bool | None = None,
        title: str = "kiosk",
        connected: Callable[[], bool | None] = connectors_connected,
        watch_connector: bool | None = None,
    ):
        """``connected``/``watch_connector`` let tests drive the HDMI-unplug path on the dummy driver."""
        chosen, full = choose_driver(mode)
        self.driver = driver or chosen
        self.fullscreen = full if fullscreen is None else fullscreen
        self.configured_size = size
        self.title = title
        self._connected = connected
        self.watch_connector = (self.driver == "kmsdrm") if watch_connector is None else watch_connector
        self.surface: pygame.Surface | None = None
        self.lost = False
        self.reopens = 0
        self.lost_count = 0
        self._next_retry = 0.0
        self._next_poll = 0.0
        self._was_connected: bool | None = None

    # --- opening -----------------------------------------------------------
    @property
    def size(self) -> tuple[int, int]:
        return self.surface.get_size() if self.surface else (0, 0)

    def _wanted_size(self, hint: tuple[int, int] | None = None) -> tuple[int, int]:
        if not self.fullscreen:
            return hint or self.configured_size
        sizes = pygame.display.get_desktop_sizes() or [self.configured_size]
        w, h = sizes[0]
        if w > MAX_MODE[0] or h > MAX_MODE[1]:
            return MAX_MODE
        return (w, h)

    def open(self, hint: tuple[int, int] | None = None) -> bool:
        """Open (or reopen) the display; ``False`` (and ``lost``) when it cannot be opened yet."""
        if self.driver:
            os.environ["SDL_VIDEODRIVER"] = self.driver
        if self.watch_connector and self._connected() is False:
            self._mark_lost("no display connected yet")
            return False
        try:
            if not pygame.display.get_init():
                pygame.display.init()
            pygame.display.set_allow_screensaver(False)  # a lobby screen must never blank
            size = self._wanted_size(hint)
            flags = pygame.FULLSCREEN if self.fullscreen else 0
            # Without an icon of ours, set_mode loads pygame's own through importlib.resources: a few ms of
            # every start (four times that on a quarter core, #16) for an icon a full-screen kiosk never shows.
            pygame.display.set_icon(pygame.Surface((1, 1)))
            try:
                self.surface = pygame.display.set_mode(size, flags)
            except pygame.error:
                if not self.fullscreen:
                    raise
                # The 1080p mode was refused: take the desktop mode as it is.
                self.surface = pygame.display.set_mode((0, 0), flags)
            pygame.display.set_caption(self.title)
            if self.fullscreen:
                pygame.mouse.set_visible(False)
        except pygame.error as exc:
            self._mark_lost(f"cannot open: {exc}")
            return False
        if self.lost:
            log.info("player: display back at %dx%d (%s)", *self.size, pygame.display.get_driver())
            self.reopens += 1
        self.lost = False
        return True

    def close(self) -> None:
        self.surface = None
        if pygame.display.get_init():
            pygame.display.quit()

    def _mark_lost(self, why: str) -> None:
        if not self.lost:
            log.warning("player: display lost (%s); retrying every %.0f s", why, RETRY_S)
            self.lost_count += 1
        self.lost = True
        self.surface = None
        self._next_retry = 0.0

    # --- during playback ---------------------------------------------------
    def handle(self, event: pygame.event.Event) -> bool:
        """React to a window/display event; ``True`` when the surface was replaced (new size)."""
        if event.type not in RECONFIGURE_EVENTS or self.lost:
            return False
        hint = None
        if not self.fullscreen:
            w, h = (getattr(event, "w", None) or getattr(event, "x", None),
                    getattr(event, "h", None) or getattr(event, "y", None))
            if event.type in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED, pygame.WINDOWRESIZED) and w and h:
                hint = (int(w), int(h))
        return self.reconfigure(hint)

    def reconfigure(self, hint: tuple[int, int] | None = None) -> bool:
        before = self.size
        try:
            wanted = self._wanted_size(hint or before)
        except pygame.error as exc:
            self._mark_lost(str(exc))
            return True
        current = pygame.display.get_surface()
        if current is not None and current.get_size() == wanted and current is self.surface:
            return False
        ok = self.open(wanted)
        if ok and self.size != before:
            log.info("player: display now %dx%d", *self.size)
        return True

    def flip(self) -> bool:
        """Show the composed surface; a failure marks the display lost instead of raising."""
        try:
            pygame.display.flip()
            return True
        except pygame.error as exc:
            self._mark_lost(str(exc))
            return False

    def poll(self, now: float) -> bool:
        """Periodic health check; ``True`` when the display was (re)opened and needs a full redraw."""
        if self.lost:
            if now < self._next_retry:
                return False
            self._next_retry = now + RETRY_S
            if pygame.display.get_init() and self.surface is None:
                pygame.display.quit()  # a clean re-init picks up the connector's current mode
            return self.open()
        if self.watch_connector and now >= self._next_poll:
            self._next_poll = now + CONNECTOR_POLL_S
            state = self._connected()
            if state is False and self._was_connected is not False:
                self._was_connected = False
                self.close()
                self._mark_lost("HDMI disconnected")
                return False
            self._was_connected = state
        if not pygame.display.get_init() or pygame.display.get_surface() is None:
            self._mark_lost("display surface gone")
            return False
        return False

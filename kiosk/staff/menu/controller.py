"""The maintenance menu the app owns: pygame events and card taps in, a full-screen page out.

This class only translates: touches are hit-tested against what was drawn
last, keys become ``up``/``enter``/``esc``/digits, taps become tokens plus
the few figures the reader test shows. Everything else is the model's.

All public methods take one lock, so the reader thread may call
:meth:`card` while the main thread renders.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pygame

from kiosk.ledger import DonorToken
from kiosk.staff.menu.gesture import CornerTaps
from kiosk.staff.menu.model import MenuModel, ReaderResult
from kiosk.staff.menu.services import MenuServices
from kiosk.ui.menu import render as draw
from kiosk.ui.menu.view import View
from kiosk.ui.widgets import Target, hit

KEYS = {
    pygame.K_UP: "up", pygame.K_DOWN: "down", pygame.K_LEFT: "left", pygame.K_RIGHT: "right",
    pygame.K_RETURN: "enter", pygame.K_KP_ENTER: "enter", pygame.K_SPACE: "enter",
    pygame.K_ESCAPE: "esc", pygame.K_BACKSPACE: "backspace",
    **{getattr(pygame, f"K_{d}"): str(d) for d in range(10)},
    **{getattr(pygame, f"K_KP{d}"): str(d) for d in range(10)},
}

INPUT_EVENTS = frozenset({
    pygame.MOUSEBUTTONDOWN, pygame.MOUSEBUTTONUP, pygame.MOUSEMOTION, pygame.MOUSEWHEEL,
    pygame.FINGERDOWN, pygame.FINGERUP, pygame.FINGERMOTION, pygame.KEYUP, pygame.TEXTINPUT,
})


class MaintenanceMenu:
    def __init__(self, services: MenuServices, *, clock: Callable[[], float] = time.monotonic,
                 screen_size: tuple[int, int] = (1280, 720), gesture: CornerTaps | None = None):
        """``clock``: monotonic seconds, the same clock the :class:`~kiosk.staff.gate.StaffGate` was given."""
        self.model = MenuModel(services, clock=clock)
        self.gesture = gesture or CornerTaps()
        self.screen_size = screen_size
        """Used for finger coordinates and the gesture corner; updated by every render."""
        self._targets: list[Target] = []
        self._lock = threading.RLock()

    # --- state -----------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.model.is_open

    @property
    def page(self) -> str | None:
        return self.model.page

    def view(self) -> View:
        with self._lock:
            self.model._poll()
            return self.model.view()

    # --- ways in and out -------------------------------------------------------------------
    def open_by_card(self, token: DonorToken) -> bool:
        """Open for a registered staff card (records ``menu_open``); False for any other card."""
        with self._lock:
            return self.model.open_with_card(token)

    def in_corner(self, pos: tuple[int, int]) -> bool:
        return self.gesture.in_corner(pos, self.screen_size)

    def hidden_gesture(self, pos: tuple[int, int], now_ms: int) -> bool:
        """Count a touch made while the menu is closed; True when it completed the gesture and the keypad opened."""
        with self._lock:
            if self.is_open or not self.gesture.tap(pos, now_ms, self.screen_size):
                return False
            return self.model.open_pin()

    def close(self, reason: str = "staff") -> None:
        with self._lock:
            self.model.close(reason)

    # --- input -----------------------------------------------------------------------------
    def touch(self, pos: tuple[int, int]) -> bool:
        """A touch while open, against the targets drawn last. Always consumed while open."""
        with self._lock:
            if not self.is_open:
                return False
            target = hit(self._targets, pos)
            if target is not None:
                self.model.press(target.action, target.value)
            else:
                self.model.last_input = self.model.clock()  # a touch on empty space still means staff are here
            return True

    def key(self, name: str) -> bool:
        with self._lock:
            if not self.is_open:
                return False
            self.model.key(name)
            return True

    def handle_pygame_event(self, ev: Any) -> bool:
        """Route one pygame event. True when the menu used it (the app must not pass it on).

        While closed, touches only feed the hidden gesture; True then means the keypad just opened.
        """
        pos = self._touch_pos(ev)
        if not self.is_open:
            if pos is None:
                return False
            return self.hidden_gesture(pos, int(self.model.clock() * 1000))
        if pos is not None:
            return self.touch(pos)
        if ev.type == pygame.KEYDOWN:
            name = KEYS.get(ev.key)
            if ev.key == pygame.K_TAB:
                name = "left" if ev.mod & pygame.KMOD_SHIFT else "right"
            if name is not None:
                self.key(name)
            return True
        # Releases, motion, text input: the menu covers the screen, nothing underneath may see them.
        # QUIT, window and display events stay the app's.
        return ev.type in INPUT_EVENTS

    def _touch_pos(self, ev: Any) -> tuple[int, int] | None:
        if ev.type == pygame.FINGERDOWN:
            w, h = self.screen_size
            return int(ev.x * w), int(ev.y * h)
        if ev.type == pygame.MOUSEBUTTONDOWN and ev.button == 1 and not getattr(ev, "touch", False):
            # SDL turns each finger into a mouse click too (``touch`` set): count the finger once.
            return tuple(ev.pos)
        return None

    def card(self, record: Any) -> bool:
        """A :class:`~kiosk.reader.events.TapRecord`. Closed: opens for a staff card (True), else False
        (an ordinary donation). Open: feeds the reader test or the volunteer grant; always True."""
        result = ReaderResult(family=record.family, balance_yen=record.balance_yen, read_ms=float(record.read_ms),
                              mobile=bool(getattr(record, "mobile", False)),
                              history=len(getattr(record, "history", ()) or ()))
        with self._lock:
            return self.model.card(record.token, result)

    def tick(self, now_ms: int | None = None) -> None:
        """Collect finished background work and close after the idle timeout (back to the attract loop).

        ``now_ms`` is accepted for symmetry with the screens; the timeout uses the injected clock.
        """
        with self._lock:
            self.model.tick()

    # --- output ----------------------------------------------------------------------------
    def render(self, surface: pygame.Surface, now_ms: int | None = None) -> list[Target]:
        with self._lock:
            self.screen_size = surface.get_size()
            if not self.is_open:
                self._targets = []
                return []
            self.model._poll()
            view = self.model.view()
            self._targets = draw.draw(surface, view, self.model.focus)
            return list(self._targets)

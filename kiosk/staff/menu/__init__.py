"""The on-device maintenance menu (issue #7): staff open it with a staff card or a hidden gesture and the PIN.

Public API::

    menu = MaintenanceMenu(services_from_config(cfg, writer, gate, sync_now=..., ...), clock=...)
    menu.card(record) / menu.open_by_card(token)      staff card opens; True = not a donation
    menu.hidden_gesture(pos, now_ms)                  five taps in the top-left corner -> PIN keypad
    menu.handle_pygame_event(ev) -> bool              touches and keys while open
    menu.tick(now_ms); menu.render(surface, now_ms)   idle timeout; full-screen page -> [Target]

See docs/menu.md for the pages and what the app injects.

Names are imported on first use (PEP 562): ``kiosk run`` imports only :mod:`.gesture` (and the staff gate) at
start, and builds the menu when staff first open it (kiosk/app/staffside.py; cold start, #16).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiosk.staff.menu.controller import MaintenanceMenu
    from kiosk.staff.menu.gesture import CornerTaps
    from kiosk.staff.menu.model import PAGES, MenuModel, ReaderResult
    from kiosk.staff.menu.services import MenuServices, SyncInfo, run_inline, services_from_config
    from kiosk.ui.menu.view import Button, View

_EXPORTS = {
    "MaintenanceMenu": "kiosk.staff.menu.controller", "CornerTaps": "kiosk.staff.menu.gesture",
    "PAGES": "kiosk.staff.menu.model", "MenuModel": "kiosk.staff.menu.model", "ReaderResult": "kiosk.staff.menu.model",
    "MenuServices": "kiosk.staff.menu.services", "SyncInfo": "kiosk.staff.menu.services",
    "run_inline": "kiosk.staff.menu.services", "services_from_config": "kiosk.staff.menu.services",
    "Button": "kiosk.ui.menu.view", "View": "kiosk.ui.menu.view",
}

__all__ = ["Button", "CornerTaps", "MaintenanceMenu", "MenuModel", "MenuServices", "PAGES", "ReaderResult",
           "SyncInfo", "View", "run_inline", "services_from_config"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

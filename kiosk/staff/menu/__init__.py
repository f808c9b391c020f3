"""The on-device maintenance menu (issue #7): staff open it with a staff card or a hidden gesture and the PIN.

Public API::

    menu = MaintenanceMenu(services_from_config(cfg, writer, gate, sync_now=..., ...), clock=...)
    menu.card(record) / menu.open_by_card(token)      staff card opens; True = not a donation
    menu.hidden_gesture(pos, now_ms)                  five taps in the top-left corner -> PIN keypad
    menu.handle_pygame_event(ev) -> bool              touches and keys while open
    menu.tick(now_ms); menu.render(surface, now_ms)   idle timeout; full-screen page -> [Target]

See docs/menu.md for the pages and what the app injects.
"""

from kiosk.staff.menu.controller import MaintenanceMenu
from kiosk.staff.menu.gesture import CornerTaps
from kiosk.staff.menu.model import PAGES, MenuModel, ReaderResult
from kiosk.staff.menu.services import MenuServices, SyncInfo, run_inline, services_from_config
from kiosk.ui.menu.view import Button, View

__all__ = ["Button", "CornerTaps", "MaintenanceMenu", "MenuModel", "MenuServices", "PAGES", "ReaderResult",
           "SyncInfo", "View", "run_inline", "services_from_config"]

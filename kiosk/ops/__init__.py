"""Staff operations and running unattended: everything the maintenance menu calls, minus the screens.

Public API::

    StaffGate(ledger, settings).open_with_card(token) / .open_with_pin(pin)  -> StaffSession
    StaffSession.record(action, **detail) / .action(name) / .close()         admin_action entries
    hash_pin(pin) / verify_pin(pin, stored) / PinLock                         salted-hash PIN, lockout
    x_report(ledger, day) / z_report(ledger, day, force=...) / auto_close     日計 (close_out entries)
    volunteer_grant(ledger, settings, activity, points, token, session)      points_grant entries
    status_items(StatusInputs(...)) -> [StatusItem]                          the status page model
    find_sticks() / export_day(stick, ledger_path, ...)                      USB export, no card IDs
    Notifier / Watchdog                                                      sd_notify, frame-fed watchdog
    setup_logging(level)                                                     one line per event, IDm redacted
    ops_settings(cfg)                                                        [staff] [closeout] [volunteer] [export] [status]

Names are imported on first use: ``kiosk`` loads ``kiosk.ops.cli`` for every
command, and the ledger/SQLAlchemy imports behind these cost most of a second.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **dict.fromkeys(("AlreadyClosed", "auto_close", "closed_dates", "closeout_csv", "open_dates", "summary_lines",
                     "x_report", "z_report"), "kiosk.ops.closeout"),
    **dict.fromkeys(("Activity", "CloseoutSection", "ExportSection", "OpsSettings", "StaffSection", "StatusSection",
                     "VolunteerSection", "ops_settings"), "kiosk.ops.config"),
    **dict.fromkeys(("RedactIdm", "redact", "setup_logging"), "kiosk.ops.logsetup"),
    **dict.fromkeys(("Notifier", "Watchdog", "watchdog_interval"), "kiosk.ops.notify"),
    **dict.fromkeys(("PinAttempt", "PinError", "PinLock", "hash_pin", "verify_pin"), "kiosk.ops.pin"),
    **dict.fromkeys(("ACTIONS", "StaffError", "StaffGate", "StaffSession"), "kiosk.ops.staff"),
    **dict.fromkeys(("StatusInputs", "StatusItem", "overall", "status_items"), "kiosk.ops.status"),
    **dict.fromkeys(("ExportResult", "Stick", "UsbExportError", "export_day", "find_sticks"), "kiosk.ops.usb_export"),
    **dict.fromkeys(("VolunteerError", "check_grant"), "kiosk.ops.volunteer"),
}
_RENAMED = {"volunteer_grant": ("kiosk.ops.volunteer", "grant"), "points_balance": ("kiosk.ops.volunteer", "balance")}

__all__ = sorted([*_EXPORTS, *_RENAMED])


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        module, attr = _RENAMED[name]
    elif name in _EXPORTS:
        module, attr = _EXPORTS[name], name
    else:
        raise AttributeError(f"module 'kiosk.ops' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

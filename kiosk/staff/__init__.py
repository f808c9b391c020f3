"""What center staff do on the device: the maintenance menu's state and actions, and the staff commands.

Modules::

    kiosk.staff.gate         StaffGate(writer, settings).open_with_card(token) / .open_with_pin(pin) -> StaffSession
    kiosk.staff.pin          hash_pin / verify_pin / PinLock          salted scrypt PIN with growing lockouts
    kiosk.staff.closeout     x_report / z_report / auto_close          日計: close_out entries
    kiosk.staff.volunteer    grant / balance / check_grant             points_grant entries
    kiosk.staff.usb_export   find_sticks / export_day                  USB export, no card IDs
    kiosk.staff.menu         MaintenanceMenu, MenuModel, MenuServices  the on-device menu (drawn by kiosk.ui.menu)
    kiosk.staff.cli          ``kiosk closeout|staff|export|status``

Every action is an ``admin_action`` (or ``close_out``/``points_grant``) entry,
appended through the one ledger writer the app owns (see docs/architecture.md).
"""

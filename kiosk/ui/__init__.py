"""What citizens and staff see and hear: donation screens, menu drawing, widgets, i18n, fonts and sounds.

Modules::

    kiosk.ui.screens    render(screen, surface, now_ms, ctx) -> [Target]   one module per donation screen
    kiosk.ui.menu       draw(view, surface) -> [Target]                      the maintenance menu's pages
    kiosk.ui.widgets    scaled text with Japanese line breaking, buttons, QR codes, hit-testing
    kiosk.ui.i18n       gettext_for(lang), yen(amount)                       compiled gettext catalogs
    kiosk.ui.sounds     success_wav() / failure_wav(), Sounds                generated cues

The UI draws what it is given (a flow screen, a menu view) and never reads or
writes the ledger; import-linter enforces that (docs/architecture.md).
"""

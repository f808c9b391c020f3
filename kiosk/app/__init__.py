"""The kiosk process: turning a config into live parts and running them together.

Modules::

    kiosk.app.runtime    App, run_kiosk           ``kiosk run``: threads, main loop, the single ledger writer
    kiosk.ops.local_files      ensure_secrets, open_ledger   config -> keys, pepper, ledger
    kiosk.app.staffside  StaffSide                the maintenance menu and background sync inside ``kiosk run``
    kiosk.app.demo       run_demo                 ``kiosk demo``: embedded defaults and a local portal

See docs/architecture.md for the threads and who owns the ledger.
"""

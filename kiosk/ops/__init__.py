"""Running unattended: what systemd, journald and the installer see, and the checks that say what is wrong.

Modules::

    kiosk.ops.notify     Notifier / Watchdog       sd_notify READY/STATUS/STOPPING, a watchdog fed by live frames
    kiosk.ops.logsetup   setup_logging(level)      one line per event, IDm-shaped strings redacted
    kiosk.ops.status     status_items(StatusInputs(...)) -> [StatusItem]   the status page model (green/yellow/red)
    kiosk.ops.doctor     run_doctor(cfg) -> [Check]  every check of ``kiosk doctor``, each with its exact fix
    kiosk.ops.checks     Check                     one result line of the doctor
    kiosk.ops.reader_doctor  reader_checks()       udev, kernel drivers, pcscd, libccid: the reader's host set-up
    kiosk.ops.local_files    ensure_secrets(cfg), open_ledger(cfg)   the kiosk's key, pepper and ledger from its config

Import the module you need: the doctor pulls in the ledger and SQLAlchemy,
which the notify and logging code used at start-up should not pay for.
"""

"""The kiosk's side of the portal: enrollment, batch upload, and adopting the configuration the portal pushes.

Modules::

    kiosk.sync.uploader     Uploader, BackgroundSync, SyncState        signed exactly-once batch upload
    kiosk.sync.source       LedgerSource                               reading the ledger for upload
    kiosk.sync.configapply  ConfigApplier                              validate, fetch media, record config_change
    kiosk.sync.adopt        overlay(cfg, pushed), adopt_media(...)    a pushed config into the running kiosk
    kiosk.sync.cli          ``kiosk enroll`` / ``kiosk sync``

The wire format is shared with the portal through :mod:`server_sync.wire`;
nothing here imports the portal service. See docs/sync.md.
"""

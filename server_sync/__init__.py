"""Sync to the central portal: signed, exactly-once batch upload and the portal service (docs/sync.md).

Public API::

    receipt_code(entry) -> str                        the code in the kiosk's receipt QR (/r/{code})
    Uploader, BackgroundSync, SyncState, SyncError    the kiosk side (kiosk enroll / kiosk sync / kiosk run)
    create_app(db_url) -> FastAPI                     the portal service
    start_portal(db_url, port=0) -> PortalHandle      an embedded portal on 127.0.0.1 (.url, .stop())
    enroll_kiosk(cfg, url, code), sync_kiosk(cfg, url, code=None, ledger=None)
    issue_code(engine, kiosk_id)                      a one-time enrollment code
"""

from server_sync.receipt import receipt_code

__all__ = ["BackgroundSync", "EnrollError", "PortalHandle", "SyncError", "SyncState", "Uploader", "create_app",
           "enroll_kiosk", "issue_code", "receipt_code", "start_portal", "sync_kiosk"]

_LAZY = {
    "Uploader": "server_sync.uploader", "BackgroundSync": "server_sync.uploader", "SyncState": "server_sync.uploader",
    "SyncError": "server_sync.uploader", "EnrollError": "server_sync.uploader", "create_app": "server_sync.app",
    "start_portal": "server_sync.embedded", "PortalHandle": "server_sync.embedded",
    "enroll_kiosk": "server_sync.embedded", "sync_kiosk": "server_sync.embedded", "issue_code": "server_sync.enroll",
}


def __getattr__(name: str):  # noqa: ANN202
    # Lazy, so the kiosk's thank-you screen can import receipt_code without FastAPI and uvicorn.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'server_sync' has no attribute {name!r}")

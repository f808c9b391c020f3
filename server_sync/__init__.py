"""The central portal, and the wire protocol it shares with the kiosks (docs/sync.md, docs/architecture.md).

Two parts, installed apart:

- ``server_sync.wire``: the kiosk ↔ portal protocol (signed requests, batch
  documents, receipt codes, the pushed config document). Pure; the kiosk
  imports this and nothing else of ``server_sync``.
- everything else: the portal service (``pip install '.[portal]'``)::

      server_sync.app         create_app(db_url) -> FastAPI
      server_sync.portal_cli  ``kiosk-portal``
      server_sync.db          tables on SQLite or PostgreSQL
      server_sync.ingest      the checks every upload passes
      server_sync.queries     read models for pages and the API
      server_sync.pages       server-rendered HTML (Jinja2 templates in server_sync/templates/)
      server_sync.i18n        the portal's gettext catalogs (server_sync/locale/)
      server_sync.embedded    start_portal(db_url): an in-process portal for tests and benchmarks

The portal imports only the ledger's pure verification and encoding code from ``kiosk``.
"""

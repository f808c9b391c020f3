"""The kiosk ↔ portal wire protocol, shared by both sides and by nothing else.

Modules::

    server_sync.wire.protocol   limits, signed requests, batch documents
    server_sync.wire.receipt    receipt_code(entry): the code in the thank-you QR (/r/{code})
    server_sync.wire.configdoc  the pushed configuration document and its validation
    server_sync.wire.retry      full-jitter backoff honouring Retry-After, and the one retry loop
    server_sync.wire.csvsafe    cell(text): a CSV cell a spreadsheet never runs as a formula

Pure: standard library, ``cryptography`` and the ledger's canonical encoding.
The kiosk imports only this part of ``server_sync``.
"""

"""The signed, hash-chained donation ledger (format: docs/ledger.md).

Public API::

    Ledger.open(path, signing_key, kiosk_id, ...)   the ledger; claim_writer() pins appends to one thread
    LedgerWriter, InlineWriter                       how other threads get entries appended (writer.py)
    verify_path(path, pubkey=None, checkpoint_note=None) -> VerifyResult
    write_export(db_path, out) / read_export(path)
    settled_report(entries, day=None)
    Pepper, DonorToken                               donor tokens
    keys.generate / keys.load_private / keys.load_public

Names are imported on first use (PEP 562): the card reader and the config
need only ``Pepper``, and should not pay for the store, export and
verification code just to make a donor token. SQLAlchemy (about 40 MB and
0.1-0.4 s) is imported only by the off-line readers (``read_only_engine``),
never by ``kiosk run``: the store talks to ``sqlite3`` itself.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DonorToken": "kiosk.ledger.pepper", "Pepper": "kiosk.ledger.pepper", "PepperError": "kiosk.ledger.pepper",
    "EncodingError": "kiosk.ledger.encoding",
    "Entry": "kiosk.ledger.store", "Ledger": "kiosk.ledger.store", "LedgerError": "kiosk.ledger.store",
    "LedgerUnavailable": "kiosk.ledger.store",
    "LedgerThreadError": "kiosk.ledger.writer", "LedgerWriter": "kiosk.ledger.writer",
    "InlineWriter": "kiosk.ledger.writer", "LedgerView": "kiosk.ledger.view",
    "read_export": "kiosk.ledger.export", "write_export": "kiosk.ledger.export",
    "settled_report": "kiosk.ledger.report",
    "VerifyResult": "kiosk.ledger.verify", "verify_path": "kiosk.ledger.audit",
    "keys": "kiosk.ledger.keys", "merkle": "kiosk.ledger.merkle",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kiosk.ledger' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if module.rsplit(".", 1)[1] == name else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

"""The signed, hash-chained donation ledger (format: docs/ledger.md).

Public API::

    Ledger.open(path, signing_key, kiosk_id, ...)   the writer
    verify_path(path, pubkey=None, checkpoint_note=None) -> VerifyResult
    write_export(db_path, out) / read_export(path)
    settled_report(entries, day=None)
    Pepper, DonorToken                               donor tokens
    keys.generate / keys.load_private / keys.load_public
"""

from kiosk.ledger import keys, merkle
from kiosk.ledger.encoding import EncodingError
from kiosk.ledger.export import read_export, write_export
from kiosk.ledger.pepper import DonorToken, Pepper, PepperError
from kiosk.ledger.report import settled_report
from kiosk.ledger.store import Entry, Ledger, LedgerError, LedgerUnavailable
from kiosk.ledger.verify import VerifyResult, verify_path

__all__ = [
    "DonorToken", "EncodingError", "Entry", "Ledger", "LedgerError", "LedgerUnavailable", "Pepper",
    "PepperError", "VerifyResult", "keys", "merkle", "read_export", "settled_report", "verify_path",
    "write_export",
]

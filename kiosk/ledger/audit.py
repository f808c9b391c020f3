"""Checking a ledger database or export file from its first entry to its last (``kiosk ledger verify``).

The I/O half of verification: it reads the file and feeds rows to the pure
:func:`kiosk.ledger.verify.verify_rows`, which the portal uses on uploads.
"""

from __future__ import annotations

import os
import sqlite3
from typing import cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from kiosk.ledger.export import ExportError, is_export, read_export
from kiosk.ledger.schema import DENORMALISED, entries
from kiosk.ledger.store import read_only_engine
from kiosk.ledger.verify import Row, VerifyResult, verify_rows, worth_parallel


def verify_path(path: str | os.PathLike[str], pubkey: Ed25519PublicKey | None = None,
                checkpoint_note: str | None = None, parallel: bool | None = None,
                trusted_keys: dict[int, bytes] | None = None) -> VerifyResult:
    """Verify a ledger database or an export file. ``trusted_keys``: key changes an administrator
    announced at the portal ({seq: raw key}; docs/ledger.md, "Re-keying").

    ``parallel=None`` checks signatures on helper threads too when the ledger is large and a second CPU exists.
    """
    if not os.path.exists(path):
        return VerifyResult(False, reason=f"{path} does not exist", bad_seq=0)
    if is_export(path):
        try:
            header, rows = read_export(path)
        except ExportError as exc:
            return VerifyResult(False, reason=str(exc), bad_seq=0)
        if parallel is None:
            parallel = worth_parallel(header.get("entries") or 0)
        return verify_rows(rows, pubkey, checkpoint_note, header, parallel, trusted_keys)
    eng = read_only_engine(path)
    try:
        cols = [entries.c[n] for n in DENORMALISED]
        q = select(entries.c.seq, entries.c.body, entries.c.entry_hash, entries.c.signature,
                   *cols).order_by(entries.c.seq)
        with eng.connect() as conn:
            # Stream straight off the DBAPI cursor: per-row Result objects cost more than the parse.
            # read_only_engine is always SQLite through pysqlite, so the DBAPI connection is sqlite3's.
            cur = cast(sqlite3.Connection, conn.connection.dbapi_connection).cursor()
            if parallel is None:
                parallel = worth_parallel(cur.execute("SELECT count(*) FROM entries").fetchone()[0])
            cur.execute(str(q.compile(compile_kwargs={"literal_binds": True})))
            rows = (Row(r[0], r[1], r[2], r[3], dict(zip(DENORMALISED, r[4:], strict=True))) for r in cur)
            return verify_rows(rows, pubkey, checkpoint_note, parallel=parallel, trusted_keys=trusted_keys)
    except (SQLAlchemyError, sqlite3.Error) as exc:  # a damaged file must still give a verdict, not a traceback
        return VerifyResult(False, reason=f"cannot read database: {getattr(exc, 'orig', None) or exc}", bad_seq=0)
    finally:
        eng.dispose()

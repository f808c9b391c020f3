"""Checking a ledger database or export file from its first entry to its last (``kiosk ledger verify``).

The I/O half of verification: it reads the file and feeds rows to the pure
:func:`kiosk.ledger.verify.verify_rows`, which the portal uses on uploads.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from typing import Any, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from kiosk.ledger import snapshot as snapmod
from kiosk.ledger.encoding import parse_body
from kiosk.ledger.export import FORMAT, ExportError, is_export, read_export
from kiosk.ledger.keys import public_from_raw
from kiosk.ledger.schema import DENORMALISED, entries
from kiosk.ledger.store import read_only_engine
from kiosk.ledger.verify import Row, VerifyResult, verify_rows, worth_parallel


def verify_path(path: str | os.PathLike[str], pubkey: Ed25519PublicKey | None = None,
                checkpoint_note: str | None = None, parallel: bool | None = None,
                trusted_keys: dict[int, bytes] | None = None,
                on_entry: Callable[[int, dict[str, Any]], None] | None = None) -> VerifyResult:
    """Verify a ledger database or an export file. ``trusted_keys``: key changes an administrator
    announced at the portal ({seq: raw key}; docs/ledger.md, "Re-keying"). ``on_entry`` (an export only): each
    entry's seq and parsed body as the verifier passes it (`kiosk ledger report` counts in the same pass).

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
        return verify_rows(rows, pubkey, checkpoint_note, header, parallel, trusted_keys, on_entry=on_entry)
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
            snapshot = _snapshot_row(cur)
            seen: list[tuple[bytes, str | None]] = []  # the replay's state at the snapshot's size, encoded
            look = None
            if snapshot is not None and isinstance(snapshot[1], int):
                look = (snapshot[1], lambda st: seen.append((snapmod.encode(st), st.public_key)))
            cur.execute(str(q.compile(compile_kwargs={"literal_binds": True})))
            rows = (Row(r[0], r[1], r[2], r[3], dict(zip(DENORMALISED, r[4:], strict=True))) for r in cur)
            result = verify_rows(rows, pubkey, checkpoint_note, parallel=parallel, trusted_keys=trusted_keys,
                                 at_size=look)
            if not result.ok or snapshot is None:
                return result
            return check_snapshot(result, snapshot, seen[0] if seen else None, lambda: _key_at_end(cur, result))
    except (SQLAlchemyError, sqlite3.Error) as exc:  # a damaged file must still give a verdict, not a traceback
        return VerifyResult(False, reason=f"cannot read database: {getattr(exc, 'orig', None) or exc}", bad_seq=0)
    finally:
        eng.dispose()


def not_a_ledger(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is no ledger at all, neither a ledger database nor a file `kiosk ledger export` wrote, so that
    nothing in it can be checked (``kiosk ledger verify`` says NOT CHECKED, never INVALID, which reads as "tampered";
    ``report`` and ``export`` say so in one line); None when it is one of the two, damaged or not (verification
    judges that). An auditor's USB stick holds the export beside the portal's CSVs and saved receipts."""
    if not os.path.exists(path):
        return f"{path} does not exist (give a ledger database or a file written by `kiosk ledger export`)"
    if os.path.isdir(path):
        return f"{path} is a folder, not a ledger file (give the ledger.jsonl or ledger.db in it)"
    if not is_export(path):  # an SQLite database: a kiosk's ledger has the table `entries`
        try:
            con = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
            try:
                has = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entries'").fetchone()
            finally:
                con.close()
        except sqlite3.Error:
            return None  # a damaged ledger database: verification names what is wrong with it
        return None if has else (f"{path} is an SQLite database but not a kiosk ledger (it has no ledger entries; "
                                 "the portal's database is not one)")
    with open(path, "rb") as f:
        first = f.readline(65536)
    try:
        header = json.loads(first.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        header = None
    if isinstance(header, dict) and header.get("format") == FORMAT:
        return None
    if isinstance(header, dict) and "verification" in header:
        what = "it is a saved receipt answer (give it to --checkpoint, or to `kiosk receipt verify --file`)"
    elif header is None and b"," in first:
        what = "it looks like a CSV file, such as the portal's CSV of a month"
    else:
        what = "it is some other file"
    return f"{path} is not a ledger export (its first line is not a {FORMAT} header): {what}"


def _snapshot_row(cur: sqlite3.Cursor) -> tuple[Any, ...] | None:
    """The file's state snapshot row (format, size, state, signature), or None."""
    try:
        return cast("tuple[Any, ...] | None",
                    cur.execute("SELECT format, size, state, signature FROM state_snapshot WHERE id = 1").fetchone())
    except sqlite3.OperationalError:  # a ledger file from before the snapshot (schema 1)
        return None


def _key_at_end(cur: sqlite3.Cursor, result: VerifyResult) -> str | None:
    """The key in force after the last entry of a verified ledger: the last key change's, else genesis's."""
    if result.key_changes:
        return cast(str, result.key_changes[-1]["public_key"])
    row = cur.execute("SELECT body FROM entries WHERE seq = 1").fetchone()
    return cast("str | None", parse_body(row[0])["data"]["public_key"]) if row else None


def check_snapshot(result: VerifyResult, row: tuple[Any, ...], seen: tuple[bytes, str | None] | None,
                   key_at_end: Callable[[], str | None]) -> VerifyResult:
    """For a ledger ``result`` found sound: whether the file's state snapshot ``row`` (kiosk/ledger/snapshot.py)
    is the state its entries give at its size. ``seen``: that state, encoded, and the key in force there, as the
    verification's own replay saw them (None: the ledger ends before that size, whose key ``key_at_end`` gives).
    A kiosk opens from the snapshot without re-reading the entries it covers, so this is where a snapshot is
    held to them (docs/ledger.md, "Opening a ledger").

    A snapshot that the key in force at its size signed and that differs from the entries, or that stands
    beyond the last entry (the ledger was cut short), makes the ledger INVALID: the kiosk's key signed a
    false state. One it did not sign is reported and left be: the kiosk ignores it too.
    """
    fmt, size, blob, sig = row
    if fmt != snapmod.FORMAT:
        result.snapshot = f"state snapshot of format {fmt} not checked (this software knows {snapmod.FORMAT})"
        return result
    if not isinstance(size, int) or not isinstance(blob, bytes) or not isinstance(sig, bytes):
        result.snapshot = "state snapshot not stored as a size and bytes: the kiosk ignores it"
        return result
    state, key = seen if seen is not None else (None, key_at_end())
    try:
        # The key in force after entry ``size`` is the one that signed a snapshot standing there.
        public_from_raw(bytes.fromhex(key or "")).verify(sig, snapmod.message(blob))
    except (InvalidSignature, ValueError):
        result.snapshot = (f"state snapshot at seq={size} is not signed by the key in force there: "
                           "the kiosk ignores it and replays every entry")
        return result
    if size > result.entries:
        return _bad_snapshot(result, result.entries + 1, f"ledger cut short: the kiosk's key signed a state "
                                                         f"snapshot at seq={size}, beyond the last entry")
    if blob != state:
        return _bad_snapshot(result, size, f"the state snapshot at seq={size}, signed by the kiosk's key, "
                                           "differs from the state of the entries")
    result.snapshot = f"state snapshot at seq={size} matches the entries"
    return result


def _bad_snapshot(result: VerifyResult, seq: int, reason: str) -> VerifyResult:
    result.ok, result.bad_seq, result.reason = False, seq, reason
    return result

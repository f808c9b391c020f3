"""Portable, self-verifying ledger exports (JSON Lines).

Line 1, the header::

    {"format": "kiosk-ledger-export/1", "kiosk_id": ..., "public_key": <hex>, "key_id": ...,
     "entries": N, "checkpoint": <signed note or null>}

then one line per entry, in seq order::

    {"seq": N, "body": <base64 body bytes>, "entry_hash": <hex>, "signature": <base64>}

The bodies are the exact signed bytes, so ``kiosk ledger verify FILE`` checks
an export exactly as it checks the database. The pepper is never exported.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

from kiosk.ledger.durable import atomic_writer
from kiosk.ledger.encoding import parse_body
from kiosk.ledger.store import read_only_engine
from kiosk.ledger.verify import ExportError, Row

FORMAT = "kiosk-ledger-export/1"
EXPORT_PART_ROWS = 2000
"""Rows :func:`write_export` reads at a time (about 2 MB of a kiosk's rows)."""


def write_export(db_path: str | os.PathLike[str], out: str | os.PathLike[str], *,
                 tolerate_dir_fsync_unsupported: bool = False, part_rows: int = EXPORT_PART_ROWS) -> int:
    """Write an export of the ledger at ``db_path``; returns the number of entries.

    The rows are streamed from the database into the file, never held together: a kiosk exports from its
    maintenance menu while it runs, and a year's ledger read whole and parsed held over 120 MB
    (docs/ledger.md, "Export format"). The export is of the ledger as it stood at its first read: entries a
    running kiosk appends meanwhile are left for the next one (the ledger is append-only, so the rows up to
    that seq never change, and the parts read one after another are of one ledger).

    ``tolerate_dir_fsync_unsupported``: for a USB stick (see :func:`kiosk.ledger.durable.fsync_dir`).
    ``part_rows``: rows read at a time.
    """
    eng = read_only_engine(db_path)
    try:
        with eng.connect() as conn:
            db = conn.connection.driver_connection  # sqlite3's own cursor: rows as plain tuples of bytes
            assert db is not None
            count, last = db.execute("SELECT count(*), max(seq) FROM entries").fetchone()
            if not count:
                raise ExportError(f"{db_path} holds no entries")
            genesis = parse_body(db.execute("SELECT body FROM entries WHERE seq = 1").fetchone()[0])
            newest = db.execute("SELECT body FROM entries WHERE type = 'checkpoint' AND seq <= ? ORDER BY seq DESC"
                                " LIMIT 1", (last,)).fetchone()
            note = parse_body(newest[0])["data"]["note"] if newest else None
            header = {"format": FORMAT, "kiosk_id": genesis["kiosk"], "public_key": genesis["data"]["public_key"],
                      "key_id": genesis["key_id"], "entries": count, "checkpoint": note}
            with atomic_writer(out, text=True, tolerate_dir_fsync_unsupported=tolerate_dir_fsync_unsupported) as f:
                f.write(json.dumps(header, ensure_ascii=False) + "\n")
                done = 0
                while done < last:
                    # A part at a time, each its own short read: a read held while a slow stick is written would
                    # keep the kiosk's WAL from being checkpointed meanwhile.
                    rows = db.execute("SELECT seq, body, entry_hash, signature FROM entries WHERE seq > ? AND seq <= ?"
                                      " ORDER BY seq LIMIT ?", (done, last, part_rows)).fetchall()
                    if not rows:
                        break
                    for seq, body, h, sig in rows:
                        f.write(json.dumps({"seq": seq, "body": base64.b64encode(body).decode(), "entry_hash": h.hex(),
                                            "signature": base64.b64encode(sig).decode()}) + "\n")
                    done = rows[-1][0]
    finally:
        eng.dispose()
    return int(count)


def read_export(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Iterator[Row]]:
    """Header and a lazy iterator of rows. Malformed lines raise :class:`ExportError` when reached."""
    # Read as bytes and decoded line by line: a byte that is not UTF-8 in an entry line is that line's ExportError
    # (INVALID at its seq), not a UnicodeDecodeError out of a text file's reader (a traceback).
    f = open(path, "rb")
    try:
        header = json.loads(f.readline().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        f.close()
        raise ExportError(f"{path}: header is not JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        f.close()
        raise ExportError(f"{path}: not a {FORMAT} file")

    def rows() -> Iterator[Row]:
        with f:
            for lineno, line in enumerate(f, start=2):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line.decode("utf-8"))
                    yield Row(d["seq"], base64.b64decode(d["body"], validate=True), bytes.fromhex(d["entry_hash"]),
                              base64.b64decode(d["signature"], validate=True))
                except (ValueError, KeyError, TypeError) as exc:
                    raise ExportError(f"line {lineno}: malformed entry ({exc})") from None

    return header, rows()


def is_export(path: str | os.PathLike[str]) -> bool:
    with open(path, "rb") as f:
        return not f.read(16).startswith(b"SQLite format 3")


__all__ = ["write_export", "read_export", "is_export", "Row", "ExportError", "parse_body"]

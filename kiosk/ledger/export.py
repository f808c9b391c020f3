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
from kiosk.ledger.store import iter_entries, read_only_engine
from kiosk.ledger.verify import ExportError, Row

FORMAT = "kiosk-ledger-export/1"


def write_export(db_path: str | os.PathLike[str], out: str | os.PathLike[str], *,
                 tolerate_dir_fsync_unsupported: bool = False) -> int:
    """Write an export of the ledger at ``db_path``; returns the number of entries.

    ``tolerate_dir_fsync_unsupported``: for a USB stick (see :func:`kiosk.ledger.durable.fsync_dir`).
    """
    eng = read_only_engine(db_path)
    try:
        entries = list(iter_entries(eng))
    finally:
        eng.dispose()
    if not entries:
        raise ExportError(f"{db_path} holds no entries")
    genesis = entries[0].obj
    note = next((e.data["note"] for e in reversed(entries) if e.type == "checkpoint"), None)
    header = {"format": FORMAT, "kiosk_id": genesis["kiosk"], "public_key": genesis["data"]["public_key"],
              "key_id": genesis["key_id"], "entries": len(entries), "checkpoint": note}
    # Streamed into the temp file: an export is about twice the database and need not fit in memory.
    with atomic_writer(out, text=True, tolerate_dir_fsync_unsupported=tolerate_dir_fsync_unsupported) as f:
        f.write(json.dumps(header, ensure_ascii=False) + "\n")
        for e in entries:
            f.write(json.dumps({"seq": e.seq, "body": base64.b64encode(e.body).decode(),
                                "entry_hash": e.entry_hash.hex(),
                                "signature": base64.b64encode(e.signature).decode()}) + "\n")
    return len(entries)


def read_export(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Iterator[Row]]:
    """Header and a lazy iterator of rows. Malformed lines raise :class:`ExportError` when reached."""
    f = open(path, encoding="utf-8")
    try:
        header = json.loads(f.readline())
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
                    d = json.loads(line)
                    yield Row(d["seq"], base64.b64decode(d["body"], validate=True), bytes.fromhex(d["entry_hash"]),
                              base64.b64decode(d["signature"], validate=True))
                except (ValueError, KeyError, TypeError) as exc:
                    raise ExportError(f"line {lineno}: malformed entry ({exc})") from None

    return header, rows()


def is_export(path: str | os.PathLike[str]) -> bool:
    with open(path, "rb") as f:
        return not f.read(16).startswith(b"SQLite format 3")


__all__ = ["write_export", "read_export", "is_export", "Row", "ExportError", "parse_body"]

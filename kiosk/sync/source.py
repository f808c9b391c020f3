"""Reading a kiosk's ledger for upload, on a connection of its own.

The uploader never goes through the :class:`~kiosk.ledger.Ledger` writer's lock: SQLite's WAL lets
this reader see committed entries while the donation flow keeps appending, so a slow network can
never hold up a tap.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import func, select

from kiosk.ledger.encoding import parse_body
from kiosk.ledger.schema import entries
from kiosk.ledger.store import read_only_engine


class LedgerSource:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.engine = read_only_engine(self.path)
        self._leaves: list[bytes] = []  # append-only ledger: hashes once read stay valid
        self.tree_cache: dict[tuple[int, int], bytes] = {}  # perfect subtrees, for merkle.consistency_proof

    def close(self) -> None:
        self.engine.dispose()

    def size(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.coalesce(func.max(entries.c.seq), 0))).scalar_one()

    def rows(self, first: int, last: int) -> list[tuple[int, bytes, bytes]]:
        """(seq, body, signature) for ``first..last``."""
        with self.engine.connect() as conn:
            return [(s, bytes(b), bytes(g)) for s, b, g in conn.execute(
                select(entries.c.seq, entries.c.body, entries.c.signature)
                .where(entries.c.seq >= first, entries.c.seq <= last).order_by(entries.c.seq))]

    def checkpoint_seqs(self, first: int, last: int) -> list[int]:
        """Seqs of the checkpoint entries in ``first..last`` (where a batch can end: protocol.batch_end)."""
        with self.engine.connect() as conn:
            return [s for (s,) in conn.execute(select(entries.c.seq).where(
                entries.c.type == "checkpoint", entries.c.seq >= first, entries.c.seq <= last))]

    def latest_checkpoint(self) -> tuple[int, str] | None:
        """(size, signed note) of the newest checkpoint entry, if any."""
        with self.engine.connect() as conn:
            body = conn.execute(select(entries.c.body).where(entries.c.type == "checkpoint")
                                .order_by(entries.c.seq.desc()).limit(1)).scalar()
        if body is None:
            return None
        data = parse_body(bytes(body))["data"]
        return data["size"], data["note"]

    def last_boot(self) -> int:
        with self.engine.connect() as conn:
            body = conn.execute(select(entries.c.body).order_by(entries.c.seq.desc()).limit(1)).scalar()
        return parse_body(bytes(body))["boot"] if body is not None else 0

    def leaves(self, n: int) -> list[bytes]:
        """The first ``n`` leaf (entry) hashes, read incrementally."""
        if len(self._leaves) < n:
            # sqlite3's own cursor: a restarted kiosk reads every hash of its history here, and SQLAlchemy's
            # result rows (and a bytes() copy of each) took twice the time (bench/closeout.py, first_proof_ms).
            with self.engine.connect() as conn:
                raw = conn.connection.driver_connection  # the sqlite3 connection read_only_engine made
                assert raw is not None
                self._leaves.extend(h for (h,) in raw.execute(
                    "SELECT entry_hash FROM entries WHERE seq > ? AND seq <= ? ORDER BY seq", (len(self._leaves), n)))
        return self._leaves[:n]

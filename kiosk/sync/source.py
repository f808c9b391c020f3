"""Reading a kiosk's ledger for upload, on a connection of its own.

The uploader never goes through the :class:`~kiosk.ledger.Ledger` writer's lock: SQLite's WAL lets
this reader see committed entries while the donation flow keeps appending, so a slow network can
never hold up a tap.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import func, select

from kiosk.ledger import merkle
from kiosk.ledger.encoding import parse_body
from kiosk.ledger.merkle import CompactRange
from kiosk.ledger.schema import entries
from kiosk.ledger.store import read_only_engine

READ_CHUNK = 4096
"""Leaf hashes read at once when the compact range is built up (128 KB of hashes)."""


class LedgerSource:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.engine = read_only_engine(self.path)
        # For the uploader's proofs (consistency_proof): the Merkle tree's compact range at the newest size a
        # proof started from (the portal's acknowledged checkpoint; O(log n) hashes), the leaf hashes read
        # after it (the unacknowledged entries: none once a sync is done), and the perfect subtrees among
        # those. Until 2026-12-05 every leaf hash stayed here, 73 bytes an entry for as long as the kiosk ran.
        self._acked = CompactRange()
        self._after: list[bytes] = []
        self._subtrees: dict[tuple[int, int], bytes] = {}

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
        return self._seqs_of("checkpoint", first, last)

    def key_change_seqs(self, first: int, last: int) -> list[int]:
        """Seqs of the key_change entries in ``first..last`` (which note a batch can carry: the uploader)."""
        return self._seqs_of("key_change", first, last)

    def _seqs_of(self, kind: str, first: int, last: int) -> list[int]:
        """Seqs of the entries of type ``kind`` in ``first..last``, in order."""
        with self.engine.connect() as conn:
            return [s for (s,) in conn.execute(select(entries.c.seq).where(
                entries.c.type == kind, entries.c.seq >= first, entries.c.seq <= last).order_by(entries.c.seq))]

    def latest_checkpoint(self, before: int | None = None) -> tuple[int, str] | None:
        """(size, signed note) of the newest checkpoint entry (before seq ``before``, if given), if any."""
        q = select(entries.c.body).where(entries.c.type == "checkpoint")
        if before is not None:
            q = q.where(entries.c.seq < before)
        with self.engine.connect() as conn:
            body = conn.execute(q.order_by(entries.c.seq.desc()).limit(1)).scalar()
        if body is None:
            return None
        data = parse_body(bytes(body))["data"]
        return data["size"], data["note"]

    def last_boot(self) -> int:
        with self.engine.connect() as conn:
            body = conn.execute(select(entries.c.body).order_by(entries.c.seq.desc()).limit(1)).scalar()
        return parse_body(bytes(body))["boot"] if body is not None else 0

    def leaf_hashes(self, first: int, last: int) -> list[bytes]:
        """The leaf (entry) hashes of ``first..last``."""
        # sqlite3's own cursor: SQLAlchemy's result rows (and a bytes() copy of each) took twice the time
        # (bench/closeout.py, first_proof_ms).
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection  # the sqlite3 connection read_only_engine made
            assert raw is not None
            return [h for (h,) in raw.execute(
                "SELECT entry_hash FROM entries WHERE seq >= ? AND seq <= ? ORDER BY seq", (first, last))]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """merkle.consistency_proof from the tree of ``old_size`` entries to the tree of ``new_size``, from the
        compact range at ``old_size`` and the leaves after it (merkle.consistency_proof_from).

        ``old_size`` is the portal's acknowledged checkpoint, which only grows: the range moves forward to
        it through the hashes read for the last proof, which are then let go. The first proof after a start
        (or after the acknowledgement went back: a restored portal) builds the range from every hash up to
        ``old_size``, :data:`READ_CHUNK` at a time, and keeps none of them."""
        if not 0 <= old_size <= new_size:
            raise ValueError(f"old size {old_size} is outside 0..{new_size}")
        if self._acked.size > old_size:
            self._acked, self._after, self._subtrees = CompactRange(), [], {}
        take = min(old_size - self._acked.size, len(self._after))
        for h in self._after[:take]:
            self._acked.append(h)
        del self._after[:take]
        while self._acked.size < old_size:  # nothing after it is held here
            first = self._acked.size + 1
            last = min(old_size, first + READ_CHUNK - 1)
            for h in self.leaf_hashes(first, last):
                self._acked.append(h)
            if self._acked.size != last:
                raise ValueError(f"the ledger holds {self._acked.size} entries, not {old_size}")
        held = old_size + len(self._after)
        if held < new_size:
            self._after += self.leaf_hashes(held + 1, new_size)
            if old_size + len(self._after) < new_size:
                raise ValueError(f"the ledger holds {old_size + len(self._after)} entries, not {new_size}")
        # Subtrees wholly below the acknowledged size are never asked for again (the range has them).
        self._subtrees = {k: h for k, h in self._subtrees.items() if k[0] + k[1] > old_size}
        return merkle.consistency_proof_from(self._acked, self._after[:new_size - old_size], self._subtrees)

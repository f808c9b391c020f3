"""Each kiosk's verifier state, saved now and then, so that a portal worker that just started does not replay
a kiosk's whole history before it can verify the kiosk's next batch (docs/sync.md, "Resuming verification").

A verifier's state is the ledger's replayed state (:class:`~kiosk.ledger.state.LedgerState`: open intents,
idempotency keys, totals, the Merkle range, the keys in force). A worker builds it by replaying the kiosk's
stored entries, about 10 µs an entry: 0.2 s for a kiosk with 20,000 entries, on the first sync of every
kiosk after every restart. Saved here in the encoding of the kiosk's own state snapshot
(:mod:`kiosk.ledger.snapshot`: data, never ``pickle``), it is decoded instead, and only the entries stored
after it are replayed.

It is not signed: it sits in the database beside the entries it was replayed from, which a rebuild replays
without checking their signatures again, so it is trusted exactly as they are. It is used only where it
stands on the stored chain: the stored entry at its size has its tip hash, and the entries after it, applied
by the same ``LedgerState.apply``, end at the kiosk's high-water mark and tip. Otherwise (a database
restored from an older backup, a state of another format, one that does not decode) the worker replays from
the first entry, as it always did, and saves over it.

When: after a batch is stored, once the kiosk's chain has grown by :data:`EVERY` entries, or by a quarter of
the saved state's size if that is more, since the state this worker last saved or found. Encoding is about
linear in the state (its idempotency keys and donations grow with the gifts), so saving at a quarter of the
size keeps its cost a small, constant share of each entry's ingest, and what a new worker replays at most
5,000 entries or a fifth of the history, whichever is more.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from kiosk.ledger import snapshot
from kiosk.ledger.state import LedgerState
from server_sync.db import verifier_states as _t

EVERY = 5_000
"""The fewest entries a kiosk's chain grows by between two saves of its state (and the smallest chain saved)."""


class Saved(NamedTuple):
    size: int
    tip: bytes
    format: int
    state: bytes


def due(size: int, saved: int, every: int = EVERY) -> bool:
    """Whether a chain of ``size`` entries is far enough past the state saved at ``saved`` to save it again."""
    return size - saved >= max(every, saved // 4)


def _upsert(ins: Any) -> Any:
    return ins.on_conflict_do_update(index_elements=["kiosk_id"], set_={
        "size": ins.excluded.size, "tip": ins.excluded.tip, "format": ins.excluded.format,
        "state": ins.excluded.state})


_SAVE = {"sqlite": _upsert(sqlite.insert(_t)), "postgresql": _upsert(postgresql.insert(_t))}
_LOAD = select(_t.c.size, _t.c.tip, _t.c.format, _t.c.state).where(_t.c.kiosk_id == bindparam("kid"))


def load(conn: Connection, kid: str) -> Saved | None:
    """The state saved for kiosk ``kid``, as stored (any format), or None."""
    row = conn.execute(_LOAD, {"kid": kid}).first()
    return None if row is None else Saved(int(row[0]), bytes(row[1]), int(row[2]), bytes(row[3]))


def save(conn: Connection, kid: str, st: LedgerState) -> None:
    """Save ``st`` as kiosk ``kid``'s state, over any saved before (a state of any size is sound to start from)."""
    conn.execute(_SAVE[conn.dialect.name], {"kiosk_id": kid, "size": st.size, "tip": st.tip,
                                            "format": snapshot.FORMAT, "state": snapshot.encode(st)})


def restore(saved: Saved) -> LedgerState | None:
    """The state ``saved`` holds, or None if it is not one this software reads (another format, a blob that
    does not decode, or one whose size and tip are not its row's)."""
    if saved.format != snapshot.FORMAT:
        return None
    try:
        st = snapshot.decode(saved.state)
    except snapshot.SnapshotError:
        return None
    return st if (st.size, st.tip) == (saved.size, saved.tip) else None

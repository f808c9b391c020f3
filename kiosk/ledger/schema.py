"""The ledger's SQLite schema and its migrations.

Schema versioning uses SQLite's ``PRAGMA user_version`` with an ordered list
of migrations below (the documented equivalent of alembic for an append-only
store of one table and its state snapshot): each migration runs once, in its own transaction, and
bumps ``user_version``. ``body`` is the truth; the other columns denormalise
it for queries and are checked against it by ``kiosk ledger verify``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Table

    metadata: MetaData
    entries: Table
    """The table as SQLAlchemy sees it, for the off-line readers (export, audit, sync's source, the menu's
    reports). Built on first use (PEP 562): ``kiosk run`` opens and appends through ``sqlite3`` and never
    imports SQLAlchemy (kiosk/ledger/store.py)."""


def _table() -> tuple[MetaData, Table]:
    from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table

    md = MetaData()
    table = Table(
        "entries",
        md,
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("body", LargeBinary, nullable=False),
        Column("entry_hash", LargeBinary(32), nullable=False, unique=True),
        Column("signature", LargeBinary(64), nullable=False),
        Column("type", String(32), nullable=False),
        Column("wall_ms", Integer, nullable=False),
        Column("project", String(40)),
        Column("amount_yen", Integer),
        Column("points", Integer),
        Column("donor", String(32)),
        Column("idem", String(80)),
        Column("ref_seq", Integer),
    )
    return md, table


def __getattr__(name: str) -> Any:
    if name in ("metadata", "entries"):
        md, table = _table()
        globals().update(metadata=md, entries=table)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DENORMALISED = ("type", "wall_ms", "project", "amount_yen", "points", "donor", "idem", "ref_seq")

MIGRATIONS: list[list[str]] = [
    # 1: the entries table, its indexes, and triggers that make it append-only.
    [
        """CREATE TABLE entries (
            seq INTEGER PRIMARY KEY,
            body BLOB NOT NULL,
            entry_hash BLOB NOT NULL UNIQUE CHECK (length(entry_hash) = 32),
            signature BLOB NOT NULL CHECK (length(signature) = 64),
            type TEXT NOT NULL,
            wall_ms INTEGER NOT NULL,
            project TEXT,
            amount_yen INTEGER,
            points INTEGER,
            donor TEXT,
            idem TEXT,
            ref_seq INTEGER
        )""",
        "CREATE UNIQUE INDEX entries_intent_idem ON entries(idem) WHERE type = 'donation_intent'",
        "CREATE INDEX entries_donor ON entries(donor) WHERE donor IS NOT NULL",
        "CREATE INDEX entries_ref ON entries(ref_seq) WHERE ref_seq IS NOT NULL",
        """CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
           BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END""",
        """CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
           BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END""",
    ],
    # 2: the state snapshot (kiosk/ledger/snapshot.py): one row, replaced by the writer now and then, never
    # part of the signed history. Opening a ledger replays only the entries after it.
    [
        """CREATE TABLE state_snapshot (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            format INTEGER NOT NULL,
            size INTEGER NOT NULL,
            state BLOB NOT NULL,
            signature BLOB NOT NULL CHECK (length(signature) = 64)
        )""",
    ],
    # 3: indexes for the reads that otherwise walked the whole history, which grows by tens of thousands of
    # entries a year (docs/ledger.md, "Reads that do not grow with the history"). Partial, so an append pays
    # only for its own kind: a donation one more index row (its wall time), an intent or checkpoint none.
    [
        # A business day's donations (the X and Z reports, the nightly close of forgotten days).
        "CREATE INDEX IF NOT EXISTS entries_donations_wall ON entries(wall_ms) WHERE type = 'donation'",
        # The few entries of the kinds a kiosk writes now and then, each read by kind: every void and
        # close-out (the reports), the newest config_change (every start), the points spent (a pool's
        # balance, on the writer's thread during an exchange). OR, not IN: SQLite uses a partial index only
        # when the query's WHERE implies the index's, and it proves that for `type = 'void'` against an OR.
        "CREATE INDEX IF NOT EXISTS entries_rare_kinds ON entries(type, seq) WHERE type = 'void' OR type = 'close_out'"
        " OR type = 'config_change' OR type = 'points_spent'",
    ],
]

RARE_KINDS = ("void", "close_out", "config_change", "points_spent")
"""The entry types ``entries_rare_kinds`` holds: :meth:`~kiosk.ledger.store.Ledger.entries_of` reads them."""

SCHEMA_VERSION = len(MIGRATIONS)


def denormalise(obj: dict[str, Any]) -> dict[str, Any]:
    """The query columns for a parsed body (what verify compares the row against)."""
    return dict(zip(DENORMALISED, denormalised_row(obj), strict=True))


def denormalised_row(obj: dict[str, Any]) -> tuple[Any, ...]:
    """The same columns as a tuple in :data:`DENORMALISED` order: what the writer inserts (no dict per append)."""
    data = obj["data"]
    get = data.get
    return (obj["type"], obj["wall_ms"], get("project"), get("amount_yen"), get("points"), get("donor"), get("idem"),
            get("intent_seq", get("voids_seq")))

"""The kiosks' Merkle trees, kept at ingest so a receipt's inclusion proof costs O(log n) row reads.

The tree is RFC 9162's over the entry hashes (``portal_entries.entry_hash`` are its leaves, level 0).
Every *perfect, aligned* subtree of at least ``2**STRIDE`` leaves is stored once, when its last leaf
arrives, as a row ``(kiosk_id, level, idx, hash)`` of ``portal_tree_nodes``: the subtree covers leaves
``idx * 2**level .. (idx + 1) * 2**level - 1`` and never changes afterwards (the log only grows). That
is about n / 2**STRIDE rows for n entries (a sixteenth with STRIDE 4: ingest stays cheap).

Any hash a proof needs is the root of a range of leaves, and any range the RFC's recursion produces
splits into at most 2·log n aligned perfect subtrees: the big ones are stored rows, the small ones
(under 2**STRIDE leaves) are hashed from at most two blocks of leaves; all of them are read in one
statement (:func:`_fetch_sql`). So an inclusion proof at 200,000 entries reads about 34 rows instead
of 200,000.

``portal_kiosks.tree_size`` says how many leaves the stored nodes cover. Ingest extends the nodes in the
same transaction as the entries and sets it in the same UPDATE of the kiosk row as its size; a kiosk
whose entries were stored by an older portal (NULL) is rebuilt once from its leaves, in the same
transaction (:func:`extend`) or at its first receipt lookup (:func:`ensure`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import TextClause

from kiosk.ledger.merkle import CompactRange
from server_sync.db import entries, is_sqlite, kiosks, tree_nodes, writing

STRIDE = 4
"""Subtrees of 2**STRIDE leaves and more are stored; smaller ones are hashed from leaves on demand."""

BLOCK = 1 << STRIDE


_sha256 = hashlib.sha256


def _node(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _decompose(lo: int, hi: int) -> list[tuple[int, int]]:
    """The range [lo, hi) as aligned perfect subtrees ``(start, level)``, left to right (largest first)."""
    out = []
    while lo < hi:
        level = (lo & -lo).bit_length() - 1 if lo else (hi - lo).bit_length() - 1
        while lo + (1 << level) > hi:
            level -= 1
        out.append((lo, level))
        lo += 1 << level
    return out


def _fold(hashes: Sequence[bytes]) -> bytes:
    """The root of a range from its decomposition's subtree roots (as merkle.CompactRange.root does)."""
    r = hashes[-1]
    for h in reversed(hashes[:-1]):
        r = _node(h, r)
    return r


def _ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots make leaf ``index``'s audit path in a tree of ``size`` (RFC 9162 §2.1.3.1),
    leaf to root."""
    out = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        if m < k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m = lo + k, m - k
    out.reverse()
    return out


_PAD = 8
"""Node lists are padded to a multiple of this, so a lookup's statement comes in a few fixed shapes: the
compiled-statement caches, SQLite's statement cache and psycopg's prepared statements all hit."""


@functools.lru_cache(maxsize=64)
def _fetch_sql(pairs: int, blocks: int) -> TextClause:
    """One statement for ``pairs`` stored nodes and ``blocks`` leaf blocks: ``(level, idx, hash)`` rows, leaves
    as level -1 with their seq. The wanted nodes are a VALUES list joined to the primary key (SQLite: CROSS
    JOIN keeps the list as the outer loop, one primary-key probe each; a row-value IN would scan the
    kiosk's nodes); every leaf block is a primary-key range."""
    head, parts = "", []
    if pairs:
        vals = ", ".join(f"(CAST(:l{i} AS INTEGER), CAST(:i{i} AS BIGINT))" for i in range(pairs))
        head = f"WITH w (lv, ix) AS (VALUES {vals}) "
        parts.append("SELECT n.level, n.idx, n.hash FROM w CROSS JOIN portal_tree_nodes n "
                     "WHERE n.kiosk_id = :k AND n.level = w.lv AND n.idx = w.ix")
    for b in range(blocks):
        parts.append(f"SELECT -1, seq, entry_hash FROM portal_entries WHERE kiosk_id = :k AND seq > :lo{b} "
                     f"AND seq <= :hi{b}")
    return text(head + " UNION ALL ".join(parts))


class _Hashes:
    """Subtree roots for one kiosk, read in one query per :meth:`load`."""

    def __init__(self, conn: Connection, kid: str):
        self.conn, self.kid = conn, kid
        self.stored: dict[tuple[int, int], bytes] = {}
        self.leaves: dict[int, bytes] = {}  # 0-based leaf index -> entry hash

    def load(self, subtrees: Iterable[tuple[int, int]]) -> None:
        big, blocks = set(), set()
        for start, level in subtrees:
            if level >= STRIDE:
                big.add((level, start >> level))
            else:
                blocks.add(start // BLOCK)
        big -= set(self.stored)
        blocks = {b for b in blocks if b * BLOCK not in self.leaves}
        if not big and not blocks:
            return
        pairs = sorted(big)
        n = -(-len(pairs) // _PAD) * _PAD
        params: dict[str, object] = {"k": self.kid}
        for i in range(n):
            lv, ix = pairs[i] if i < len(pairs) else (-1, -1)  # padding: matches no node
            params[f"l{i}"], params[f"i{i}"] = lv, ix
        for i, b in enumerate(sorted(blocks)):
            params[f"lo{i}"], params[f"hi{i}"] = b * BLOCK, (b + 1) * BLOCK  # seq = leaf index + 1
        for lv, ix, h in self.conn.execute(_fetch_sql(n, len(blocks)), params):
            if lv < 0:
                self.leaves[int(ix) - 1] = bytes(h)
            else:
                self.stored[(int(lv), int(ix))] = bytes(h)
        missing = big - set(self.stored)
        if missing:
            raise LookupError(f"tree nodes {sorted(missing)[:3]} of kiosk {self.kid!r} are not stored")

    def subtree(self, start: int, level: int) -> bytes:
        if level >= STRIDE:
            return self.stored[(level, start >> level)]
        if level == 0:
            return self.leaves[start]
        half = 1 << (level - 1)
        return _node(self.subtree(start, level - 1), self.subtree(start + half, level - 1))

    def range_root(self, lo: int, hi: int) -> bytes:
        return _fold([self.subtree(s, lv) for s, lv in _decompose(lo, hi)])


def inclusion_proof(conn: Connection, kid: str, index: int, size: int) -> list[bytes]:
    """Leaf ``index``'s audit path in kiosk ``kid``'s tree of ``size`` leaves, from the stored nodes.

    Needs :func:`ensure` (or ingest) to have covered ``size``; raises LookupError if a node is missing.
    """
    return inclusion_proofs(conn, kid, [index], size)[0]


def inclusion_proofs(conn: Connection, kid: str, indices: Sequence[int], size: int) -> list[list[bytes]]:
    """:func:`inclusion_proof` of each of ``indices``, every node they need read in one query."""
    for index in indices:
        if not 0 <= index < size:
            raise ValueError(f"index {index} is outside a tree of size {size}")
    paths = [_ranges(index, size) for index in indices]
    hashes = _Hashes(conn, kid)
    hashes.load(st for ranges in paths for lo, hi in ranges for st in _decompose(lo, hi))
    return [[hashes.range_root(lo, hi) for lo, hi in ranges] for ranges in paths]


# --- keeping the nodes ----------------------------------------------------------------------------
def _frontier(conn: Connection, kid: str, size: int) -> list[tuple[int, bytes]]:
    """The compact range of the first ``size`` leaves as ``(level, root)``, largest first."""
    subs = _decompose(0, size)
    hashes = _Hashes(conn, kid)
    hashes.load(subs)
    return [(lv, hashes.subtree(s, lv)) for s, lv in subs]


def _grow(stack: list[tuple[int, bytes]], size: int, leaves: Iterable[bytes]) -> tuple[int, list[dict[str, object]]]:
    """Append leaves to a compact range; return the new size and the stored-size subtrees they completed."""
    made: list[dict[str, object]] = []
    for leaf in leaves:
        stack.append((0, leaf))
        size += 1
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            lv, right = stack.pop()
            _, left = stack.pop()
            h = _node(left, right)
            stack.append((lv + 1, h))
            if lv + 1 >= STRIDE:
                made.append({"level": lv + 1, "idx": (size >> (lv + 1)) - 1, "hash": h})
    return size, made


def _rebuild(conn: Connection, kid: str, size: int) -> None:
    """Recompute every stored node of the first ``size`` leaves (an older portal's kiosk: once)."""
    conn.execute(delete(tree_nodes).where(tree_nodes.c.kiosk_id == kid))
    stack: list[tuple[int, bytes]] = []
    n, rows = 0, []
    # All at once (32 bytes a leaf: 6.4 MB at 200,000 entries): a streaming cursor cannot share the
    # connection with the inserts below on PostgreSQL.
    leaves = conn.execute(select(entries.c.entry_hash).where(entries.c.kiosk_id == kid, entries.c.seq <= size)
                          .order_by(entries.c.seq)).scalars().all()
    for h in leaves:
        n, made = _grow(stack, n, [bytes(h)])
        rows += made
        if len(rows) >= 5000:
            conn.execute(tree_nodes.insert(), [{"kiosk_id": kid, **r} for r in rows])
            rows = []
    if rows:
        conn.execute(tree_nodes.insert(), [{"kiosk_id": kid, **r} for r in rows])
    if n != size:
        raise LookupError(f"kiosk {kid!r} has {n} stored entries, expected {size}")


def _catch_up(conn: Connection, kid: str, old_size: int, have: int | None) -> None:
    """Before a batch's nodes are stored: the nodes of the first ``old_size`` leaves rebuilt once if the kiosk row's
    ``tree_size`` (``have``) is behind them (stored by an older portal)."""
    if have != old_size and not (have is None and old_size == 0):
        _rebuild(conn, kid, old_size)


def extend(conn: Connection, kid: str, old_size: int, leaves: Sequence[bytes], have: int | None) -> None:
    """In a write transaction (the kiosk row locked): store the subtrees that ``leaves`` (entries old_size+1..)
    complete, hashed from the stored range at ``old_size``: for a store with no replay at hand (an older release's
    ingest, as tests/upgrade stores one). Ingest itself stores the nodes its verifier's range made
    (:class:`Recorder`, :func:`store_made`). ``have`` is the kiosk row's ``tree_size``; the caller sets it to the
    new size in its own UPDATE of the row."""
    _catch_up(conn, kid, old_size, have)
    _, made = _grow(_frontier(conn, kid, old_size), old_size, leaves)
    if made:
        conn.execute(_INSERT_NODES, [{"kiosk_id": kid, **r} for r in made])


_INSERT_NODES = tree_nodes.insert()  # built once: every batch of 16 entries or more runs it


class Recorder(CompactRange):
    """The verifier's compact range (:class:`~kiosk.ledger.merkle.CompactRange`), also noting the stored-size
    subtrees (level >= STRIDE) its appends complete, as :func:`_grow` finds them.

    Ingest replays each batch onto the kiosk's verifier state, whose range merges exactly the nodes that
    :func:`extend` would hash again from the same leaves (about one SHA-256 an entry, and the Python around
    it). So ingest puts this range in the verifier state's place and stores what it noted
    (:func:`store_made`). The verifier's state is the kiosk's stored chain (its size and tip are the kiosk
    row's, checked under the row lock), so its range is the range of the stored leaves."""

    __slots__ = ("made",)

    def __init__(self) -> None:
        super().__init__()
        self.made: list[tuple[int, int, bytes]] = []  # (level, idx, hash) since the last over()

    @classmethod
    def over(cls, state: Any) -> Recorder:
        """``state.tree`` as a Recorder with nothing noted yet (the same range: its size and subtree roots)."""
        rng = state.tree
        if type(rng) is not cls:  # once per verifier: it stays a Recorder for the kiosk's next batches
            state.tree = rng = cls.restore(rng.size, rng.stack)
        rng.made = []
        return rng

    def append(self, leaf: bytes) -> None:
        # CompactRange.append's merges, with the level of each node they make.
        stack = self._stack
        stack.append(leaf)
        self.size = n = self.size + 1
        level = 0
        while n & 1 == 0:
            right = stack.pop()
            stack[-1] = h = _sha256(b"\x01" + stack[-1] + right).digest()  # _node(stack[-1], right), inline
            level += 1
            n >>= 1
            if level >= STRIDE:
                self.made.append((level, (self.size >> level) - 1, h))


def store_made(conn: Connection, kid: str, old_size: int, have: int | None,
               made: Sequence[tuple[int, int, bytes]]) -> None:
    """:func:`extend` for nodes a :class:`Recorder` made while the leaves after ``old_size`` were appended to
    the kiosk's range: in ingest's write transaction (the kiosk row locked), one INSERT. ``have`` is the kiosk
    row's ``tree_size``; nodes an older portal did not store are rebuilt first (:func:`_catch_up`)."""
    _catch_up(conn, kid, old_size, have)
    if made:
        conn.execute(_INSERT_NODES, [{"kiosk_id": kid, "level": lv, "idx": ix, "hash": h} for lv, ix, h in made])


def covers(kiosk: Any, size: int) -> bool:
    """Whether the stored nodes of ``kiosk`` (a portal_kiosks row) reach ``size`` leaves."""
    have = kiosk["tree_size"]
    return have is not None and have >= size


def ensure(engine: Engine, kid: str, size: int) -> None:
    """Make sure the stored nodes cover ``size`` leaves (a kiosk last ingested by an older portal)."""
    with writing(engine) as conn:
        q = select(kiosks.c.size, kiosks.c.tree_size).where(kiosks.c.id == kid)
        if not is_sqlite(engine):
            q = q.with_for_update()  # ingest holds the same lock while it extends the tree
        row = conn.execute(q).first()
        if row is None or (row[1] is not None and row[1] >= size):
            return
        _rebuild(conn, kid, row[0])
        conn.execute(update(kiosks).where(kiosks.c.id == kid).values(tree_size=row[0]))

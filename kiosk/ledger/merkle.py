"""RFC 9162 (Certificate Transparency v2) Merkle trees over entry hashes.

Public API (exactly as the ledger format promises):
``leaf_hash``, ``root``, ``inclusion_proof``, ``verify_inclusion``,
``consistency_proof``, ``verify_consistency``. Inputs to ``root`` and the
proof builders are *leaf hashes* (our ``entry_hash`` already is the RFC 6962
leaf hash of the body). The verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2.

:class:`CompactRange` keeps only the perfect-subtree roots of a growing tree,
so the ledger can compute the root after every append in O(log n).
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = [
    "leaf_hash",
    "root",
    "inclusion_proof",
    "verify_inclusion",
    "consistency_proof",
    "verify_consistency",
    "CompactRange",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


_sha256 = hashlib.sha256


def _node(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over the given leaf hashes; the empty tree's root is SHA-256 of nothing."""
    leaves = list(leaf_hashes)
    if not leaves:
        return EMPTY_ROOT
    return _mth(leaves, 0, len(leaves))


# Perfect subtrees at least this large are remembered in a caller's cache (see consistency_proof).
CACHE_MIN_SUBTREE = 64


def _mth(leaves: Sequence[bytes], lo: int, hi: int, cache: dict[tuple[int, int], bytes] | None = None,
         offset: int = 0) -> bytes:
    """MTH of leaves ``lo..hi-1`` of the tree, positions in the whole tree; ``leaves[0]`` is leaf ``offset``
    (consistency_proof_from holds only the leaves after the old size)."""
    n = hi - lo
    if n == 1:
        return leaves[lo - offset]
    k = _split(n)
    if cache is not None and n >= CACHE_MIN_SUBTREE and n & (n - 1) == 0:
        # A perfect subtree's hash never changes as the tree grows, so it can be kept across calls.
        h = cache.get((lo, n))
        if h is None:
            h = cache[(lo, n)] = _node(_mth(leaves, lo, lo + k, cache, offset),
                                       _mth(leaves, lo + k, hi, cache, offset))
        return h
    return _node(_mth(leaves, lo, lo + k, cache, offset), _mth(leaves, lo + k, hi, cache, offset))


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Audit path for leaf ``index`` in the tree over ``leaf_hashes`` (RFC 9162 §2.1.3.1)."""
    leaves = list(leaf_hashes)
    if not 0 <= index < len(leaves):
        raise ValueError(f"index {index} is outside a tree of size {len(leaves)}")
    proof: list[bytes] = []
    lo, hi, m = 0, len(leaves), index
    # Walk down from the root, collecting siblings, then reverse (proof goes leaf→root).
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            proof.append(_mth(leaves, lo + k, hi))
            hi = lo + k
        else:
            proof.append(_mth(leaves, lo, lo + k))
            lo, m = lo + k, m - k
    proof.reverse()
    return proof


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes],
                      cache: dict[tuple[int, int], bytes] | None = None) -> list[bytes]:
    """Proof that the tree of ``old_size`` is a prefix of the tree over ``leaf_hashes`` (§2.1.4.1).

    Empty when old_size is 0 or equals the new size. ``cache``: a dict the caller keeps for one
    append-only list of leaves; perfect subtrees are remembered in it, so proof after proof over a
    growing log costs what is new instead of the whole tree (the uploader sends one per batch).
    """
    leaves = leaf_hashes if isinstance(leaf_hashes, list) else list(leaf_hashes)
    n = len(leaves)
    if not 0 <= old_size <= n:
        raise ValueError(f"old size {old_size} is outside 0..{n}")
    if old_size in (0, n):
        return []
    return _subproof(old_size, 0, n, True, lambda lo, hi: _mth(leaves, lo, hi, cache))


def _subproof(m: int, lo: int, hi: int, complete: bool, node: Callable[[int, int], bytes]) -> list[bytes]:
    """RFC 9162's SUBPROOF over leaves ``lo..hi-1``; ``node(lo, hi)`` gives the hash of the subtree of
    leaves ``lo..hi-1`` (from the leaves, or for consistency_proof_from also from the old compact range)."""
    n = hi - lo
    if m == n:
        return [] if complete else [node(lo, hi)]
    k = _split(n)
    if m <= k:
        return _subproof(m, lo, lo + k, complete, node) + [node(lo + k, hi)]
    return _subproof(m - k, lo + k, hi, False, node) + [node(lo, lo + k)]


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2. An empty old tree is consistent with any tree (empty proof)."""
    if old_size < 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    path = list(proof)
    if not path:
        return False
    if old_size & (old_size - 1) == 0:  # exact power of two: the old root is itself a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def consistency_proof_from(old: CompactRange, new_leaves: Sequence[bytes],
                           cache: dict[tuple[int, int], bytes] | None = None) -> list[bytes]:
    """:func:`consistency_proof` from the tree ``old`` (its compact range) to that tree with ``new_leaves``
    appended, without the old tree's leaves.

    Every node of such a proof that lies below ``old.size`` is one of the old tree's perfect subtrees, the
    roots ``old`` keeps: the proof descends from the new root, and each time the old size reaches past the
    split it takes the whole left subtree, which is then the old tree's largest remaining perfect subtree
    (RFC 9162 §2.1.4.1). The other nodes lie among the new leaves. So an uploader needs the compact range
    at the size the portal acknowledged and the leaves since, never its whole history
    (kiosk/sync/source.py; tests/ledger/test_merkle.py checks it against :func:`consistency_proof`).
    ``cache``: as :func:`consistency_proof`'s, perfect subtrees among the new leaves by their (start, size) in
    the whole tree, so a caller whose proofs all start at or below the new leaves' first can keep it across
    calls (a kiosk catching up proves to its newest checkpoint from each batch's acknowledgement).
    """
    m = old.size
    n = m + len(new_leaves)
    if m in (0, n):
        return []
    # (start, size) of each perfect subtree of the old tree, largest first, as CompactRange keeps them.
    roots: dict[tuple[int, int], bytes] = {}
    stack = iter(old.stack)
    lo = 0
    for bit in range(m.bit_length() - 1, -1, -1):
        if m >> bit & 1:
            roots[(lo, 1 << bit)] = next(stack)
            lo += 1 << bit
    leaves = new_leaves if isinstance(new_leaves, list) else list(new_leaves)

    def node(lo: int, hi: int) -> bytes:
        if hi <= m:
            return roots[(lo, hi - lo)]  # always one of them (above); a KeyError would be a bug here
        return _mth(leaves, lo, hi, cache, offset=m)

    return _subproof(m, 0, n, True, node)


class CompactRange:
    """A growing tree kept as the roots of its perfect subtrees (largest first).

    The verifier appends every entry and takes the root at every checkpoint entry (a kiosk writes one after
    each donation), so both loops hash inline (``_node``'s body) rather than call it per node.
    """

    __slots__ = ("size", "_stack")

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    @classmethod
    def restore(cls, size: int, stack: Sequence[bytes]) -> CompactRange:
        """The range of ``size`` leaves whose subtree roots (largest first) are ``stack``, as :attr:`stack`
        gave them: a ledger's state snapshot keeps these instead of every leaf (docs/ledger.md).
        Raises ``ValueError`` unless there is one 32-byte root per 1-bit of ``size``."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"a range's size is a whole number, not {size!r}")
        if len(stack) != size.bit_count():
            raise ValueError(f"a range of {size} leaves has {size.bit_count()} subtree roots, not {len(stack)}")
        if not all(isinstance(h, bytes) and len(h) == 32 for h in stack):
            raise ValueError("a subtree root is not 32 bytes")
        r = cls()
        r.size, r._stack = size, list(stack)
        return r

    @property
    def stack(self) -> tuple[bytes, ...]:
        """The roots of the perfect subtrees, largest first: with :attr:`size`, the whole range."""
        return tuple(self._stack)

    def append(self, leaf: bytes) -> None:
        stack = self._stack
        stack.append(leaf)
        self.size += 1
        # Merge equal-sized subtrees: one merge per trailing 1-bit of the old size.
        n = self.size
        while n & 1 == 0:
            right = stack.pop()
            stack[-1] = _sha256(b"\x01" + stack[-1] + right).digest()  # _node(stack[-1], right)
            n >>= 1

    def root(self) -> bytes:
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        # Fold from the smallest subtree to the largest: r = _node(stack[i], r).
        r = stack[-1]
        for i in range(len(stack) - 2, -1, -1):
            r = _sha256(b"\x01" + stack[i] + r).digest()
        return r

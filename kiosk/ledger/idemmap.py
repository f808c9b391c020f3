"""The idempotency keys of a ledger's history, 24 bytes a key. Pure: no I/O.

A ledger's replayed state (:class:`~kiosk.ledger.state.LedgerState`) remembers every donation intent's
idempotency key for the whole history: a key used twice is a broken chain (the same charge would be
recorded twice), and the writer answers a retried intent with the entry it already made. As a dict of
32-character strings to int objects that cost about 147 bytes a gift, most of what an open ledger's state
held after the seqs' maps went to arrays (kiosk/ledger/seqmap.py): 1.6 MB at 33,221 entries
(bench/closeout.py, ``state_mb``), in a kiosk process that holds its state for as long as it runs.

The kiosk makes its keys with ``uuid4().hex``: 32 lowercase hex characters, 128 bits. :class:`IdemMap`
keeps such a key as two unsigned 64-bit halves, sorted, in two ``array('Q')`` columns beside an
``array('q')`` of the intents' seqs, and finds one by bisection on the high half (in C). Keys arrive in
no order (they are random), so new keys wait in a small dict and are merged into the columns a few hundred
at a time (:data:`MERGE_EVERY`): one pass that copies the runs of the columns between them in C. Any other
key (a hand-made ledger's, or one spelled in capitals), and a seq an array cannot hold, stays in a dict
for good. A key lives in exactly one of the three places, so what the map answers never depends on
where a key is kept.

The map iterates in no particular order; the state snapshot lists the keys sorted (kiosk/ledger/snapshot.py),
as it always did.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from operator import lt
from typing import Any

MERGE_EVERY = 256
"""New canonical keys wait in a dict until there are this many, or a thirty-second of the keys in the columns
if that is more, then join the sorted columns. So the dict (about 150 bytes a key) stays small beside the
columns: at most 38 KB, or under 5 bytes a column key. And a long replay copies the columns (the C part of a merge)
about 80 times between 8,000 and 100,000 keys, not once every 256 keys."""

_KEY_CHARS = 32
_MISSING = object()
_LOW = (1 << 64) - 1
_LITTLE = sys.byteorder == "little"


def _halves(key: object) -> tuple[int, int] | None:
    """A canonical key's two 64-bit halves (the first 16 hex digits are the high half); else None."""
    if not isinstance(key, str) or len(key) != _KEY_CHARS:
        return None
    try:
        n = int(key, 16)
    except ValueError:
        return None
    # int() also takes capitals, a sign, "0x", "_" and spaces: only the spelling "{:032x}" gives back is kept
    # in the columns (a "-" and 31 digits gives itself back, so the sign is looked at too)
    if n < 0 or f"{n:032x}" != key:
        return None
    return n >> 64, n & _LOW


def _columns(keys: list[str]) -> tuple[array[int], array[int]] | None:
    """The high and low halves of ``keys`` when every one is canonical, in C; else None."""
    joined = "".join(keys)
    if len(joined) != _KEY_CHARS * len(keys) or not joined.isascii():
        return None
    try:
        raw = bytes.fromhex(joined)
    except ValueError:
        return None
    if len(raw) * 2 != len(joined) or raw.hex() != joined:  # a space or a capital somewhere
        return None
    if set(map(len, keys)) - {_KEY_CHARS}:  # the lengths could add up with a short key beside a long one
        return None
    words = array("Q")
    words.frombytes(raw)
    if _LITTLE:
        words.byteswap()  # each 8 bytes read as the big-endian number the hex spells
    return words[0::2], words[1::2]


class IdemMap(Mapping[str, int]):
    """idempotency key -> intent seq, as a dict answers, in about 24 bytes a canonical key."""

    __slots__ = ("_hi", "_lo", "_seqs", "_recent", "_other", "_seen")

    def __init__(self, pairs: Iterable[tuple[str, int]] = ()) -> None:
        self._hi = array("Q")  # sorted by (hi, lo): the order of the keys' own text
        self._lo = array("Q")
        self._seqs = array("q")
        self._recent: dict[str, int] = {}  # canonical keys not merged yet
        self._other: dict[str, int] = {}  # every other key, and a seq past the array's range
        # The key the last `in` looked for in the columns, its halves and where it was found (-1: not there):
        # the chain's rules ask whether a key is new and then add it, so the add need not parse and search again.
        # Every add clears it, so what it says holds until the map changes.
        self._seen: tuple[object, tuple[int, int] | None, int] | None = None
        for k, v in pairs:
            self[k] = v

    # --- finding a key ------------------------------------------------------------------------------
    def _find(self, halves: tuple[int, int] | None) -> int:
        if halves is None:
            return -1
        hi, lo = halves
        his, los = self._hi, self._lo
        i = bisect_left(his, hi)
        n = len(his)
        while i < n and his[i] == hi:  # the same high half twice: one key in 2**64 pairs
            if los[i] >= lo:
                return i if los[i] == lo else -1
            i += 1
        return -1

    def __getitem__(self, key: str) -> int:
        v = self.get(key, _MISSING)
        if v is _MISSING:
            raise KeyError(key)
        return v  # type: ignore[no-any-return]

    def get(self, key: str, default: Any = None) -> Any:
        v = self._recent.get(key, _MISSING)
        if v is _MISSING:
            v = self._other.get(key, _MISSING)
        if v is not _MISSING:
            return v
        i = self._find(_halves(key))
        return self._seqs[i] if i >= 0 else default

    def __contains__(self, key: object) -> bool:
        seen = self._seen
        if seen is not None and seen[0] is key:
            # Asked again with no add between (every add clears it): the writer asks whether an intent's key is
            # new, then the chain's rules ask again as they apply the entry; parsing and searching twice cost
            # about 1 µs an intent. The first ask found the key in neither dict, or it would not be remembered.
            return seen[2] >= 0
        if key in self._recent or key in self._other:
            return True
        halves = _halves(key)
        i = self._find(halves)
        self._seen = (key, halves, i)
        return i >= 0

    def __len__(self) -> int:
        return len(self._seqs) + len(self._recent) + len(self._other)

    def __iter__(self) -> Iterator[str]:
        yield from self._column_keys()
        yield from self._recent
        yield from self._other

    def __repr__(self) -> str:
        return f"IdemMap({dict(self.items())!r})"

    # --- adding a key -------------------------------------------------------------------------------
    def __setitem__(self, key: str, value: int) -> None:
        seen, self._seen = self._seen, None  # whatever is added, the map may change
        fits = isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63
        if key in self._recent:
            if fits:
                self._recent[key] = value
            else:  # a hand-made value: the key moves to the dict
                del self._recent[key]
                self._other[key] = value
            return
        if key in self._other:
            self._other[key] = value
            return
        if seen is not None and seen[0] is key:
            halves, i = seen[1], seen[2]
        else:
            halves = _halves(key)
            i = self._find(halves)
        if i >= 0:
            if fits:
                self._seqs[i] = value
                return
            for col in (self._hi, self._lo, self._seqs):  # a hand-made value: the key moves to the dict
                del col[i]
            self._other[key] = value
        elif halves is not None and fits:
            self._recent[key] = value
            if len(self._recent) >= max(MERGE_EVERY, len(self._seqs) >> 5):
                self._merge()
        else:
            self._other[key] = value

    def _merge(self) -> None:
        """The waiting keys into the sorted columns: the runs of the columns between insertion points are
        copied in C, so a merge costs about a microsecond a waiting key, whatever the columns hold."""
        self._seen = None  # its place in the columns moves
        keys = sorted(self._recent)  # canonical keys sort as their halves do
        add_hi, add_lo = _columns(keys)  # type: ignore[misc]  # canonical: _recent holds no other
        add_seqs = array("q", map(self._recent.__getitem__, keys))
        his, los, seqs = self._hi, self._lo, self._seqs
        new_hi, new_lo, new_seqs = array("Q"), array("Q"), array("q")
        start, n = 0, len(his)
        for j, hi in enumerate(add_hi):
            i = bisect_left(his, hi, start)
            if i < n and his[i] == hi:  # the same high half twice: one key in 2**64 pairs
                lo = add_lo[j]
                while i < n and his[i] == hi and los[i] < lo:
                    i += 1
            if i > start:
                new_hi += his[start:i]
                new_lo += los[start:i]
                new_seqs += seqs[start:i]
                start = i
            new_hi.append(hi)
            new_lo.append(add_lo[j])
            new_seqs.append(add_seqs[j])
        new_hi += his[start:]
        new_lo += los[start:]
        new_seqs += seqs[start:]
        self._hi, self._lo, self._seqs = new_hi, new_lo, new_seqs
        self._recent = {}

    # --- snapshots ------------------------------------------------------------------------------------
    def _column_keys(self) -> list[str]:
        n = len(self._hi)
        words = array("Q", bytes(16 * n))
        words[0::2], words[1::2] = self._hi, self._lo
        if _LITTLE:
            words.byteswap()
        text = words.tobytes().hex()
        return [text[i:i + _KEY_CHARS] for i in range(0, len(text), _KEY_CHARS)]

    def as_dict(self) -> dict[str, int]:
        """Every pair as a plain dict (a snapshot encodes it with its keys sorted)."""
        out = dict(zip(self._column_keys(), self._seqs.tolist(), strict=True))
        out.update(self._recent)
        out.update(self._other)
        return out

    @classmethod
    def from_dict(cls, pairs: dict[str, int]) -> IdemMap:
        """The map of a snapshot's ``idem`` object (keys already checked to be strings, values counts). A
        kiosk's snapshot lists canonical keys sorted, which go into the columns in C; anything else is added
        one pair at a time."""
        keys = list(pairs)
        m = cls()
        cols = _columns(keys) if keys else None
        if cols is not None and all(map(lt, keys, keys[1:])) and set(map(type, pairs.values())) == {int}:
            try:
                seqs = array("q", pairs.values())
            except OverflowError:
                pass
            else:
                m._hi, m._lo = cols
                m._seqs = seqs
                return m
        for k, v in pairs.items():
            m[k] = v
        if m._recent:
            m._merge()
        return m

    @property
    def columns_len(self) -> int:
        """How many keys are in the sorted columns (the rest wait in, or stay in, a dict)."""
        return len(self._seqs)

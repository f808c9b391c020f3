"""Maps keyed by ledger seq that grow by one pair per gift, kept in flat arrays. Pure: no I/O.

A ledger's replayed state (:class:`~kiosk.ledger.state.LedgerState`) remembers, for every gift in the
ledger's history, which entry resolved its intent and what a void of the donation would take back. As
Python dicts of int objects and tuples those cost about 110 and 215 bytes a gift (bench/closeout.py,
``state_mb``), in a kiosk process that holds its state for as long as it runs: a lobby kiosk taking 100
gifts a day grew by about 9 MB a year for these two maps alone. Here a pair costs 16 bytes (a donation's,
18): the keys in one ``array('q')``, each value column in another, found by bisection.

The writer and the verifiers add keys in the order of the entries that add them, which is increasing for
both maps in every ledger a kiosk writes. A key added below the newest one (a hand-made ledger may resolve
an older intent after a newer one) turns the map into a plain dict for good, with the pairs in the same
order: what the map answers, and the order a snapshot lists its pairs in, never depend on which form it is in.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from operator import lt
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class _SeqArrays(Mapping[int, V], Generic[V]):
    """The keys' column and the switch to a dict; subclasses keep the values' columns."""

    __slots__ = ("_keys", "_dict")

    def __init__(self) -> None:
        self._keys = array("q")
        self._dict: dict[int, V] | None = None

    # --- the value columns (subclasses) ---------------------------------------------------------------
    def _append(self, value: V) -> None:
        raise NotImplementedError

    def _get(self, i: int) -> V:
        raise NotImplementedError

    def _put(self, i: int, value: V) -> None:
        raise NotImplementedError

    def _clear_values(self) -> None:
        raise NotImplementedError

    # --- the map --------------------------------------------------------------------------------------
    def _index(self, key: Any) -> int:
        keys = self._keys
        if not isinstance(key, int):
            return -1  # the maps' keys are seqs (ints; a bool is an int, as for a dict)
        i = bisect_left(keys, key)
        return i if i < len(keys) and keys[i] == key else -1

    def __setitem__(self, key: int, value: V) -> None:
        d = self._dict
        if d is not None:
            d[key] = value
            return
        keys = self._keys
        if not isinstance(key, int):
            self._to_dict()[key] = value  # not a seq: the dict takes it as it would
            return
        if not keys or key > keys[-1]:
            try:
                keys.append(key)
            except OverflowError:  # a seq past 2**63: the dict takes it
                self._to_dict()[key] = value
                return
            try:
                self._append(value)
            except (OverflowError, TypeError):
                keys.pop()
                self._to_dict()[key] = value
            return
        i = self._index(key)
        if i >= 0:
            try:
                self._put(i, value)
                return
            except (OverflowError, TypeError):
                pass
        self._to_dict()[key] = value

    def _to_dict(self) -> dict[int, V]:
        self._dict = dict(zip(self._keys, map(self._get, range(len(self._keys))), strict=True))
        self._keys = array("q")
        self._clear_values()
        return self._dict

    def __getitem__(self, key: int) -> V:
        d = self._dict
        if d is not None:
            return d[key]
        i = self._index(key)
        if i < 0:
            raise KeyError(key)
        return self._get(i)

    def __contains__(self, key: object) -> bool:
        d = self._dict
        if d is not None:
            return key in d
        return self._index(key) >= 0

    def get(self, key: int, default: Any = None) -> Any:
        d = self._dict
        if d is not None:
            return d.get(key, default)
        i = self._index(key)
        return self._get(i) if i >= 0 else default

    def __len__(self) -> int:
        return len(self._dict) if self._dict is not None else len(self._keys)

    def __iter__(self) -> Iterator[int]:
        return iter(self._dict) if self._dict is not None else iter(self._keys)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r})"

    def keys_list(self) -> list[int]:
        """The keys in the order they were added (a snapshot's column)."""
        return list(self._dict) if self._dict is not None else self._keys.tolist()

    @property
    def compact(self) -> bool:
        """False once a key below the newest turned the map into a dict."""
        return self._dict is None

    @staticmethod
    def _increasing(keys: list[int]) -> bool:
        return all(map(lt, keys, keys[1:]))  # in C: a snapshot's column holds a pair per gift


class SeqMap(_SeqArrays[int]):
    """seq -> seq (an intent's resolving entry)."""

    __slots__ = ("_values",)

    def __init__(self, pairs: Iterable[tuple[int, int]] = ()) -> None:
        super().__init__()
        self._values = array("q")
        for k, v in pairs:
            self[k] = v

    def _append(self, value: int) -> None:
        self._values.append(value)

    def _get(self, i: int) -> int:
        return self._values[i]

    def _put(self, i: int, value: int) -> None:
        self._values[i] = value

    def _clear_values(self) -> None:
        self._values = array("q")

    def values_list(self) -> list[int]:
        return list(self._dict.values()) if self._dict is not None else self._values.tolist()

    @classmethod
    def from_columns(cls, keys: list[int], values: list[int]) -> SeqMap:
        """The map of a snapshot's two columns (checked ints: kiosk/ledger/snapshot.py), in their order;
        ``ValueError`` if their lengths differ."""
        if len(keys) != len(values):
            raise ValueError(f"{len(keys)} keys for {len(values)} values")
        m = cls()
        if cls._increasing(keys):
            try:
                m._keys, m._values = array("q", keys), array("q", values)
                return m
            except OverflowError:
                m = cls()
        m._dict = dict(zip(keys, values, strict=True))
        return m


class DonationMap(_SeqArrays[tuple[str, int]]):
    """seq -> (project, yen) of a settled donation. The few project names are kept once each."""

    __slots__ = ("_projects", "_names", "_index_of", "_yen")

    def __init__(self, pairs: Iterable[tuple[int, tuple[str, int]]] = ()) -> None:
        super().__init__()
        self._clear_values()
        for k, v in pairs:
            self[k] = v

    def _clear_values(self) -> None:
        self._projects = array("I")  # an index into _names
        self._names: list[str] = []
        self._index_of: dict[str, int] = {}
        self._yen = array("q")

    def _name(self, project: str) -> int:
        i = self._index_of.get(project)
        if i is None:
            if type(project) is not str:
                raise TypeError("a project name is a string")
            i = self._index_of[project] = len(self._names)
            self._names.append(project)
        return i

    def _append(self, value: tuple[str, int]) -> None:
        project, yen = value
        p = self._name(project)
        self._yen.append(yen)
        self._projects.append(p)

    def _get(self, i: int) -> tuple[str, int]:
        return self._names[self._projects[i]], self._yen[i]

    def _put(self, i: int, value: tuple[str, int]) -> None:
        project, yen = value
        p = self._name(project)
        self._yen[i] = yen
        self._projects[i] = p

    def columns(self) -> tuple[list[int], list[str], list[int]]:
        """The seqs, projects and yen in the order they were added (a snapshot's three columns)."""
        if self._dict is not None:
            return list(self._dict), [p for p, _ in self._dict.values()], [y for _, y in self._dict.values()]
        names = self._names
        return self._keys.tolist(), [names[p] for p in self._projects], self._yen.tolist()

    @classmethod
    def from_columns(cls, seqs: list[int], projects: list[str], yens: list[int]) -> DonationMap:
        """The map of a snapshot's three columns, in their order; ``ValueError`` if their lengths differ."""
        if not len(seqs) == len(projects) == len(yens):
            raise ValueError(f"{len(seqs)} seqs, {len(projects)} projects and {len(yens)} amounts")
        m = cls()
        if cls._increasing(seqs):
            try:
                m._keys, m._yen = array("q", seqs), array("q", yens)
                m._projects = array("I", map(m._name, projects))
                return m
            except OverflowError:
                m = cls()
        m._dict = dict(zip(seqs, zip(projects, yens, strict=True), strict=True))
        return m

"""Does a value fit the column it is going into? Checked before a write, so a value PostgreSQL would refuse
(a 41-character project id in a VARCHAR(40), a boot number beyond INTEGER) is a 4xx that names the
field, never a 500 from the database. SQLite stores such values silently, so both databases behave the
same way only because this runs first.

The limits come from the table definitions in :mod:`server_sync.db`: a column added there is checked
without touching this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import BigInteger, Integer, String, Table

from server_sync.errors import PortalError
from server_sync.wire.numbers import BIGINT_MAX, INTEGER_MAX


def problem(table: Table, values: Mapping[str, Any]) -> str | None:
    """The first value of ``values`` its column of ``table`` cannot hold, as a sentence; None if all fit."""
    for name, value in values.items():
        if value is None or name not in table.c:
            continue
        col_type = table.c[name].type
        if isinstance(col_type, String) and col_type.length is not None and isinstance(value, str):
            if len(value) > col_type.length:
                return f"{name} is {len(value)} characters long, at most {col_type.length} are allowed"
        elif isinstance(value, int) and not isinstance(value, bool) and isinstance(col_type, Integer):
            top = BIGINT_MAX if isinstance(col_type, BigInteger) else INTEGER_MAX
            if not -top - 1 <= value <= top:
                return f"{name} = {value} is out of range (at most {top})"
    return None


def require(table: Table, values: Mapping[str, Any], status: int = 422, code: str = "field_out_of_range",
            **extra: Any) -> None:
    """Raise :class:`PortalError` (``status``) when a value does not fit its column."""
    why = problem(table, values)
    if why is not None:
        raise PortalError(status, code, why, **extra)


def _limits(table: Table) -> list[tuple[str, bool, int]]:
    """``(column, is_string, limit)`` for every column of ``table`` :func:`problem` can find a fault in."""
    out = []
    for col in table.c:
        if isinstance(col.type, String) and col.type.length is not None:
            out.append((col.name, True, col.type.length))
        elif isinstance(col.type, Integer):
            out.append((col.name, False, BIGINT_MAX if isinstance(col.type, BigInteger) else INTEGER_MAX))
    return out


_LIMITS: dict[str, list[tuple[str, bool, int]]] = {}


def _all_fit(table: Table, rows: list[dict[str, Any]]) -> bool:
    """True when :func:`problem` finds nothing in any of ``rows``: one pass per column (C-speed ``max``/``min``),
    instead of one Python call per value. A False only sends the caller to the row-by-row check."""
    limits = _LIMITS.get(table.name)
    if limits is None:
        limits = _LIMITS[table.name] = _limits(table)
    for (_name, is_string, top), values in zip(limits, _columns_of(rows, limits), strict=True):
        # The truthy values: a falsy one always fits (None, "", 0, False: problem() skips or passes each), and
        # filter(None, ...) tests truth in C, where a predicate is a call per value.
        present = list(filter(None, values))
        if not present:
            continue
        try:
            # Over every value, not only strings (or ints): a bound that holds for all holds for those,
            # and a False only sends the caller to the exact check.
            fits = _within(present, is_string, top)
        except TypeError:  # a value of another kind in the column (an int where a string goes...): exactly
            kind = [v for v in present if (isinstance(v, str) if is_string
                                           else isinstance(v, int) and not isinstance(v, bool))]
            fits = not kind or _within(kind, is_string, top)
        if not fits:
            return False
    return True


def _within(values: list[Any], is_string: bool, top: int) -> bool:
    """Whether the non-empty ``values`` fit a column: lengths up to ``top``, or integers in -top-1..top."""
    if is_string:
        return max(map(len, values)) <= top
    return max(values) <= top and min(values) >= -top - 1


def _columns_of(rows: list[dict[str, Any]], limits: list[tuple[str, bool, int]]) -> Iterable[Sequence[Any]]:
    """Per column of ``limits``, the values the rows hold for it. Rows that all hold every column (a batch's
    entries, built by one function) are transposed at C speed, in one pass; otherwise column by column."""
    names = [name for name, _, _ in limits]
    if len(names) > 1:
        try:
            return list(zip(*map(itemgetter(*names), rows), strict=True)) if rows else [() for _ in names]
        except KeyError:
            pass
    return [[r[name] for r in rows if name in r] for name in names]


def require_entries(rows: list[dict[str, Any]], objs: list[dict[str, Any]]) -> None:
    """The ``portal_entries`` rows of a batch (and the config version a config_change entry names, which
    goes into ``portal_kiosks.config_applied``): a 422 naming the entry's seq at the first that does not fit."""
    from server_sync.db import entries, kiosks

    versions = [{"config_applied": o["data"].get("version")} for o in objs if o.get("type") == "config_change"]
    if _all_fit(entries, rows) and _all_fit(kiosks, versions):
        return  # the common case; otherwise find and name the first entry that does not fit
    for row, obj in zip(rows, objs, strict=True):
        version = obj["data"].get("version") if obj.get("type") == "config_change" else None
        require(entries, row, seq=row["seq"])
        require(kiosks, {"config_applied": version if isinstance(version, int) else None}, seq=row["seq"])

"""Does a value fit the column it is going into? Checked before a write, so a value PostgreSQL would refuse
(a 41-character project id in a VARCHAR(40), a boot number beyond INTEGER) is a 4xx that names the
field, never a 500 from the database. SQLite stores such values silently, so both databases behave the
same way only because this runs first.

The limits come from the table definitions in :mod:`server_sync.db`: a column added there is checked
without touching this module.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def require_entries(rows: list[dict[str, Any]], objs: list[dict[str, Any]]) -> None:
    """The ``portal_entries`` rows of a batch (and the config version a config_change entry names, which
    goes into ``portal_kiosks.config_applied``): a 422 naming the entry's seq at the first that does not fit."""
    from server_sync.db import entries, kiosks

    for row, obj in zip(rows, objs, strict=True):
        version = obj["data"].get("version") if obj.get("type") == "config_change" else None
        require(entries, row, seq=row["seq"])
        require(kiosks, {"config_applied": version if isinstance(version, int) else None}, seq=row["seq"])

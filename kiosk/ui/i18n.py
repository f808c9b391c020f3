"""Screen text: gettext catalogs, Japanese first, English behind a toggle.

Catalogs are ``.po`` files in ``kiosk/ui/locale/<lang>/LC_MESSAGES/kiosk.po``. They are compiled to
``.mo`` when the package is built or installed (``setup.py``, with Babel), so at run time the
standard library's :mod:`gettext` reads them and Babel is not needed on the kiosk. Message ids are
English; the ``ja`` catalog is what citizens see by default, and ``en`` is the identity (plus
plural forms).
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from functools import cache
from pathlib import Path

DOMAIN = "kiosk"
LANGUAGES = ("ja", "en")
LOCALE_DIR = Path(__file__).with_name("locale")


class CatalogMissing(RuntimeError):
    """A compiled catalog is absent: the package was run from a checkout that was never installed."""


@cache
def translations(lang: str) -> gettext.NullTranslations:
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; use one of {LANGUAGES}")
    try:
        return gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[lang])
    except FileNotFoundError:
        # Falling back to the English ids would quietly show a Japanese-first kiosk in English.
        mo = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
        raise CatalogMissing(
            f"compiled catalog {mo} is missing: catalogs are compiled from the .po files when the package "
            "is built or installed; run `pip install -e .` in the checkout (and look at its output for "
            "catalog errors)") from None


def gettext_for(lang: str) -> Callable[[str], str]:
    return translations(lang).gettext


def yen(amount: int) -> str:
    """¥1,000 in both languages (the yen sign is U+00A5; the font has it)."""
    return f"¥{amount:,}"

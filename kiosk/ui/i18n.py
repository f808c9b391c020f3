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
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `kiosk doctor` only: not on the screens' start path
    from kiosk.ops.checks import Check

DOMAIN = "kiosk"
LANGUAGES = ("ja", "en")
LOCALE_DIR = Path(__file__).with_name("locale")


class CatalogMissing(RuntimeError):
    """A compiled catalog is absent: the package was run from a checkout that was never installed."""


def load(lang: str, locale_dir: Path) -> gettext.NullTranslations:
    """``lang``'s compiled catalog in ``locale_dir``; :class:`CatalogMissing` (naming the fix) when it is not there."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; use one of {LANGUAGES}")
    try:
        return gettext.translation(DOMAIN, localedir=locale_dir, languages=[lang])
    except FileNotFoundError:
        # Falling back to the English ids would quietly show a Japanese-first kiosk in English.
        mo = locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
        raise CatalogMissing(
            f"compiled catalog {mo} is missing: catalogs are compiled from the .po files when the package "
            "is built or installed; run `pip install -e .` in the checkout (and look at its output for "
            "catalog errors)") from None


@cache
def translations(lang: str) -> gettext.NullTranslations:
    return load(lang, LOCALE_DIR)


def require_all() -> None:
    """Every language's catalog, loaded now (and cached): a process that shows text calls this before it starts,
    so that a missing catalog stops it with :class:`CatalogMissing`'s fix rather than failing page by page."""
    for lang in LANGUAGES:
        translations(lang)


def catalog_checks(locale_dir: Path | None = None) -> list[Check]:
    """`kiosk doctor`'s line for the compiled catalogs (made when the package is installed): `kiosk run` stops
    without them, since no screen could be drawn."""
    from kiosk.ops.checks import Check

    where = locale_dir or LOCALE_DIR
    for lang in LANGUAGES:
        try:
            load(lang, where)
        except CatalogMissing:
            return [Check("catalogs", "fail", f"{where / lang / 'LC_MESSAGES' / (DOMAIN + '.mo')} is missing "
                          "(a checkout that was never installed)",
                          "pip install -e . in the checkout, or install the package again")]
        except OSError as exc:  # a damaged file: gettext cannot read it
            return [Check("catalogs", "fail", f"the {lang} catalog in {where} cannot be read: {exc}",
                          "install the package again")]
    return [Check("catalogs", "ok", f"screen text compiled for {', '.join(LANGUAGES)}")]


def gettext_for(lang: str) -> Callable[[str], str]:
    return translations(lang).gettext


def gettext_or_none(lang: str) -> Callable[[str], str] | None:
    """:func:`gettext_for`, or None without a readable compiled catalog (a checkout never installed): for the
    command line's answers (a bad config, the reader probe, a receipt check), which then say their English alone."""
    try:
        return gettext_for(lang)
    except (CatalogMissing, OSError):
        return None


def yen(amount: int) -> str:
    """¥1,000 in both languages (the yen sign is U+00A5; the font has it)."""
    return f"¥{amount:,}"

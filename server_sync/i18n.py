"""Portal text: gettext catalogs, Japanese first, English with ``?lang=en``.

The catalogs are ``server_sync/locale/<lang>/LC_MESSAGES/portal.po`` with English message ids, like
the kiosk's (``kiosk/ui/i18n.py``). They are compiled to ``.mo`` when the package is built or
installed (``setup.py``, with Babel), so at run time the standard library's :mod:`gettext` reads
them and Babel is not needed. The two modules are separate because the kiosk and the portal may
not import each other (docs/architecture.md).
"""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path
from typing import Any

DOMAIN = "portal"
LANGUAGES = ("ja", "en")
DEFAULT = "ja"
LOCALE_DIR = Path(__file__).with_name("locale")


def N_(msgid: str) -> str:  # noqa: N802 - the conventional gettext marker
    """Marks a message id for the catalog (and its completeness test); translated where it is shown."""
    return msgid


class CatalogMissing(RuntimeError):
    """A compiled catalog is absent: the package was run from a checkout that was never installed."""


def load(lang: str, locale_dir: Path) -> gettext.NullTranslations:
    """``lang``'s compiled catalog in ``locale_dir``; :class:`CatalogMissing` (naming the fix) when it is not there."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; use one of {LANGUAGES}")
    try:
        return gettext.translation(DOMAIN, localedir=locale_dir, languages=[lang])
    except FileNotFoundError:
        # Falling back to the English ids would quietly show a Japanese-first portal in English.
        mo = locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
        raise CatalogMissing(
            f"compiled catalog {mo} is missing: catalogs are compiled from the .po files when the package "
            "is built or installed; run `pip install -e .` in the checkout (and look at its output for "
            "catalog errors)") from None


@cache
def translations(lang: str) -> gettext.NullTranslations:
    return load(lang, LOCALE_DIR)


def ntext(singular: str, plural: str, n: int, lang: str = DEFAULT, **variables: Any) -> str:
    """``n`` of something in ``lang`` ("1 donation", "2 donations"; Japanese has one form: "1 件"), with
    ``%(count)s`` (``n``) and ``variables`` filled in: Python code's counterpart of the templates'
    ``ngettext("%(count)s donation", "%(count)s donations", n, count=n)``. The catalogs hold the pair as one
    message (``msgid``/``msgid_plural``; ``nplurals`` in each ``.po``'s header)."""
    return translations(lang).ngettext(singular, plural, n) % {"count": n, **variables}


def require_all() -> None:
    """Every language's catalog, loaded now (and cached): a process that shows text calls this before it starts,
    so that a missing catalog stops it with :class:`CatalogMissing`'s fix rather than failing page by page."""
    for lang in LANGUAGES:
        translations(lang)

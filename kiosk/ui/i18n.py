"""Screen text: gettext catalogs, Japanese first, English behind a toggle.

Catalogs live as ``.po`` files in ``kiosk/ui/locale/<lang>/LC_MESSAGES/kiosk.po``
and are compiled in memory with Babel at first use, so no binary ``.mo`` files
are committed. Message ids are English; the ``ja`` catalog is what citizens
see by default, and ``en`` is the identity (plus plural forms).
"""

from __future__ import annotations

import gettext
import io
from functools import lru_cache
from importlib import resources
from typing import Callable

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "kiosk"
LANGUAGES = ("ja", "en")


@lru_cache(maxsize=None)
def translations(lang: str) -> gettext.NullTranslations:
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; use one of {LANGUAGES}")
    po = resources.files("kiosk.ui").joinpath("locale", lang, "LC_MESSAGES", f"{DOMAIN}.po")
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def gettext_for(lang: str) -> Callable[[str], str]:
    return translations(lang).gettext


def catalog_ids(lang: str) -> set[str]:
    po = resources.files("kiosk.ui").joinpath("locale", lang, "LC_MESSAGES", f"{DOMAIN}.po")
    with po.open("rb") as f:
        return {m.id for m in read_po(f, locale=lang) if m.id and isinstance(m.id, str)}


def yen(amount: int) -> str:
    """¥1,000 in both languages (the yen sign is U+00A5; the font has it)."""
    return f"¥{amount:,}"

"""What a Japanese staff member reads on a page's error path, for the tests that check it is plain Japanese
(tests/sync/test_staff_words*.py): no English, no field path, no version tag, no file path."""

from __future__ import annotations

import html
import re

PLAIN_LATIN = frozenset({"CSV", "UTF"})
"""Latin words a Japanese message may hold: the file format a staff member saves and names."""


def messages(page: str) -> list[str]:
    """The text of every message the page shows as a problem (``<p class="bad …">``, the items of a
    ``<div class="bad">`` list), as a reader sees it."""
    found = re.findall(r'<p class="bad[^"]*"[^>]*>(.*?)</p>', page, flags=re.S)
    for box in re.findall(r'<div class="bad[^"]*"[^>]*>(.*?)</div>', page, flags=re.S):
        found += re.findall(r"<(?:p|li)>(.*?)</(?:p|li)>", box, flags=re.S)
    return [t for t in (html.unescape(re.sub(r"<[^>]+>", "", m)).strip() for m in found) if t]


def assert_plain_japanese(texts: list[str], allowed: frozenset[str] = PLAIN_LATIN) -> None:
    assert texts, "the page shows no message"
    for text in texts:
        english = [w for w in re.findall(r"[A-Za-z_/]{3,}", text) if w not in allowed]
        assert not english, f"English, a path or a field name in a Japanese message: {english} in {text!r}"
        assert not re.search(r"\w\.\w|\[\d+\]|\bv\d", text), f"a field path or version tag: {text!r}"
        assert re.search(r"[ぁ-んァ-ヶ一-龯]", text), text

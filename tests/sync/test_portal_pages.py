"""Portal HTML: the templates' text is in both gettext catalogs, user text is escaped, and a missing
compiled catalog is an error that names the fix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from sync_helpers import PROJECTS, enrolled, fake_idm

from server_sync import i18n, pages
from server_sync.configstore import publish
from server_sync.staff import add_user
from server_sync.wire.receipt import receipt_code

PKG = Path(pages.__file__).parent
# The names templates and pages.py call to translate: Jinja's _(), the staff/login helpers, a macro's ``say`` (the
# page's own _ or staff_, handed to a macro shared by public and staff pages: _macros.html center_contact), and the
# N_ marker; plurals (a message for one and one for more): Jinja's ngettext() and {% trans count=n %}, and
# i18n.ntext().
KEYWORDS = {"_": None, "gettext": None, "staff_": None, "both": None, "staff_text": None, "both_languages": None,
            "say": None, "N_": None, "ngettext": (1, 2), "ntext": (1, 2)}
EVIL = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"


Msgid = str | tuple[str, str]  # a plural message: (msgid, msgid_plural), as Babel reads it from code and .po


def used_msgids() -> dict[Msgid, str]:
    """Every message id the portal's templates and Python code translate, with where it is used."""
    found: dict[Msgid, str] = {}
    method_map = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
    for filename, _lineno, message, _comments, _ctx in extract_from_dir(
            str(PKG), method_map, keywords=KEYWORDS, options_map={"templates/**.html": {"silent": "false"}}):
        if not filename.startswith("wire"):
            found.setdefault(message, filename)
    return found


def catalog(lang: str) -> dict[Msgid, Any]:
    """msgid: msgstr; a plural message is (msgid, msgid_plural): (msgstr[0], ...), one form per the header's
    ``nplurals`` (checked here: Japanese has one form, English two)."""
    with (PKG / "locale" / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.po").open("rb") as f:
        cat = read_po(f, locale=lang)
    assert cat.num_plurals == {"ja": 1, "en": 2}[lang], f"{lang}: Plural-Forms nplurals in the header"
    for m in cat:
        assert not m.pluralizable or len(m.string) == cat.num_plurals, f"{lang}: {m.id}: one msgstr[i] a form"
    return {m.id: m.string for m in cat if m.id}


def _placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"%\((\w+)\)s", text))


def test_every_portal_string_is_in_both_catalogs_and_translated_into_japanese():
    used = used_msgids()
    assert len(used) > 50 and "Civic donation portal" in used and "Staff login" in used
    ja, en = catalog("ja"), catalog("en")
    for lang, cat in (("ja", ja), ("en", en)):
        missing = {m: where for m, where in used.items() if m not in cat}
        assert not missing, f"msgids used but not in the {lang} portal.po: {missing}"
        unused = sorted(set(cat) - set(used))
        assert not unused, f"msgids in the {lang} portal.po that nothing uses: {unused}"
    empty = sorted(str(m) for m, s in ja.items() if not all(f.strip() for f in ([s] if isinstance(s, str) else s)))
    assert not empty, f"untranslated in ja/portal.po: {empty}"
    # A placeholder the Japanese lost or renamed would be a KeyError when the page renders. A plural's forms all
    # take the same values (the count and the rest).
    for m, s in ja.items():
        ids, forms = ([m], [s]) if isinstance(m, str) else (list(m), list(s))
        assert len({tuple(_placeholders(t)) for t in ids + forms}) == 1, m


def test_the_compiled_catalogs_are_the_current_po_files():
    # A .po edited after the last `pip install -e .` is not what the portal shows until it is recompiled.
    for lang in i18n.LANGUAGES:
        t = i18n.translations(lang)
        for msgid, msgstr in catalog(lang).items():
            if isinstance(msgid, str):
                assert t.gettext(msgid) == (msgstr or msgid), f"{lang}: {msgid!r}: recompile with `pip install -e .`"
                continue
            for n in (1, 2, 5):  # English: one, other; Japanese: one form for every n
                form = msgstr[0 if lang == "ja" else int(n != 1)] or msgid[int(n != 1)]
                assert t.ngettext(*msgid, n) == form, f"{lang}: {msgid!r}: recompile with `pip install -e .`"


def test_user_text_is_escaped_on_every_page_that_shows_it(portal, rig):
    """Project titles and groups come from the pushed config, activities from a kiosk: both are data."""
    evil = [{**PROJECTS[0], "title": EVIL, "title_en": EVIL + " en", "group": EVIL}] + PROJECTS[1:]
    publish(portal.app.state.engine, {"projects": evil})
    mine = rig.donate(1, card=5)  # PROJECTS[0]: the project whose title is the script
    rig.ledger.grant_points(rig.pepper.token(fake_idm(5)), 10, EVIL)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    add_user(portal.app.state.engine, "clerk", "correct horse battery")

    urls = ["/", "/?lang=en", f"/p/{PROJECTS[0]['id']}", f"/p/{PROJECTS[0]['id']}?lang=en",
            f"/r/{receipt_code(mine[0])}", f"/r/{receipt_code(mine[0])}?lang=en"]
    for url in urls:
        r = requests.get(portal.url + url, timeout=10)
        assert r.status_code == 200, url
        # No script but the receipt page's own external file (its in-browser check).
        assert r.text.replace('<script src="/static/receipt.js" defer></script>', "").count("<script") == 0, url
        assert ESCAPED in r.text, url
    s = requests.Session()
    s.post(portal.url + "/staff/login", data={"username": "clerk", "password": "correct horse battery"}, timeout=10)
    staff = s.get(portal.url + "/staff/points", timeout=10)
    assert staff.status_code == 200 and "<script" not in staff.text and ESCAPED in staff.text


def test_language_switch_and_staff_pages_text(portal):
    ja = requests.get(portal.url + "/", timeout=10).text
    en = requests.get(portal.url + "/?lang=en", timeout=10).text
    assert '<html lang="ja">' in ja and "みんなの寄付" in ja and 'hreflang="en">English</a>' in ja
    assert '<html lang="en">' in en and "Given by our city" in en and 'hreflang="ja">日本語</a>' in en
    missing = requests.get(portal.url + "/p/nope?lang=en", timeout=10)
    assert missing.status_code == 404 and "<h2>Not found</h2>" in missing.text
    login = requests.post(portal.url + "/staff/login", data={"username": "x", "password": "y"}, timeout=10)
    assert login.status_code == 401
    # Japanese first (a center's staff read Japanese), each half marked as its language (s34-h17)
    assert '<span lang="ja">職員ログイン</span> / <span lang="en">Staff login</span>' in login.text
    assert ('<span lang="ja">ユーザー名かパスワードが違います</span> / <span lang="en">wrong user or password</span>'
            in login.text)


def test_a_missing_compiled_catalog_is_an_error_naming_the_fix(tmp_path, monkeypatch):
    # A checkout that was never installed has the .po files but no .mo: say so rather than show English.
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translations.cache_clear()
    pages.environment.cache_clear()
    try:
        with pytest.raises(i18n.CatalogMissing, match=r"portal\.mo is missing.*pip install -e \."):
            pages.index({"count": 0, "total_yen": 0}, [], [], [], "ja")
    finally:
        # Later tests render pages with the real catalogs again.
        monkeypatch.undo()
        i18n.translations.cache_clear()
        pages.environment.cache_clear()
    with pytest.raises(ValueError, match="unsupported language"):
        i18n.translations("fr")


def test_a_portal_without_its_catalogs_does_not_start(tmp_path, monkeypatch, capsys):
    """`kiosk-portal serve` stops with the fix before it touches the database (each page would fail)."""
    from server_sync.app import create_app
    from server_sync.portal_cli import main as portal_main

    monkeypatch.setenv("KIOSK_PORTAL_SECRET_FILE", str(tmp_path / "secret"))
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path / "no-locale")
    i18n.translations.cache_clear()
    try:
        db = tmp_path / "p.db"
        assert portal_main(["serve", "--db", f"sqlite:///{db}", "--port", "0"]) == 2
        err = capsys.readouterr().err
        assert "portal.mo is missing" in err and "pip install -e ." in err and "Traceback" not in err
        assert not db.exists()
        with pytest.raises(i18n.CatalogMissing):
            create_app(f"sqlite:///{db}")  # the embedded portal of `kiosk demo`, and every other caller
        assert not db.exists()
    finally:
        monkeypatch.undo()
        i18n.translations.cache_clear()

"""Screen text catalogs, the vendored Japanese font and the generated sounds."""

from __future__ import annotations

import io
import struct
import tomllib
import wave
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from fontTools.ttLib import TTFont

from kiosk.ui import i18n
from kiosk.ui.i18n import gettext_for, translations, yen
from kiosk.ui.sounds import RATE, failure_wav, success_wav

ROOT = Path(__file__).resolve().parents[1]
FONTS = sorted((ROOT / "kiosk" / "ui" / "assets" / "fonts").glob("*.otf"))


def catalog_ids(lang: str) -> set[str]:
    """The ids in the source catalog (.po, read with Babel, a test and build dependency only)."""
    with (i18n.LOCALE_DIR / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.po").open("rb") as f:
        return {m.id for m in read_po(f, locale=lang) if m.id and isinstance(m.id, str)}


def test_every_japanese_message_is_translated():
    # Read through the compiled catalog, so a .po edited since the last install shows up here too.
    ja = translations("ja")
    ids = catalog_ids("ja")
    assert len(ids) > 20
    for msgid in ids:
        text = ja.gettext(msgid)
        assert text and text != msgid or msgid == "English", f"{msgid!r} (new? recompile: pip install -e .)"


def test_a_missing_compiled_catalog_is_an_error_naming_the_fix(tmp_path, monkeypatch):
    # A checkout that was never installed has the .po files but no .mo: say so rather than show English.
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translations.cache_clear()
    try:
        with pytest.raises(i18n.CatalogMissing, match=r"kiosk\.mo is missing.*pip install -e \."):
            gettext_for("ja")
    finally:
        monkeypatch.undo()
        i18n.translations.cache_clear()


def test_english_is_the_message_id_and_unknown_languages_are_refused():
    assert gettext_for("en")("Thank you!") == "Thank you!"
    assert gettext_for("ja")("Thank you!") == "ありがとうございます！"
    with pytest.raises(ValueError):
        translations("fr")


def test_yen_formatting():
    assert yen(86300) == "¥86,300"


@pytest.mark.parametrize("font", FONTS, ids=lambda p: p.name)
def test_font_covers_every_screen_string_and_demo_project(font):
    cmap = TTFont(font)["cmap"].getBestCmap()
    ja = translations("ja")
    texts = [ja.gettext(m) for m in catalog_ids("ja")] + list(catalog_ids("ja"))
    demo = tomllib.loads((ROOT / "config" / "demo.toml").read_text("utf-8"))
    for p in demo["projects"]:
        texts += [p["title"], p["group"], p["title_en"]]
    texts.append(demo["kiosk"]["name"] + "¥0123456789,")
    missing = sorted({ch for t in texts for ch in t if ord(ch) not in cmap and not ch.isspace()})
    assert not missing, f"{font.name} lacks {missing}"


def test_font_licence_ships_with_it():
    text = (ROOT / "kiosk" / "ui" / "assets" / "fonts" / "OFL.txt").read_text("utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in text


@pytest.mark.parametrize("make,min_ms,max_ms", [(success_wav, 200, 400), (failure_wav, 350, 600)])
def test_sounds_are_short_and_audible(make, min_ms, max_ms):
    with wave.open(io.BytesIO(make())) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        frames = w.readframes(w.getnframes())
        ms = w.getnframes() * 1000 // RATE
    assert min_ms <= ms <= max_ms
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    rms = (sum(s * s for s in samples) / len(samples)) ** 0.5
    assert rms > 3000  # clearly audible in a lobby
    assert abs(samples[0]) < 500 and abs(samples[-1]) < 500  # faded: no click


def test_generated_tones_are_the_plain_formula_sample_for_sample():
    """The cues are made at every start, so _tone is written as a tight loop (cold start, #16); it must give
    the samples of the formula it stands for, to the last bit."""
    import math

    from kiosk.ui.sounds import _tone

    def plain(freq: float, ms: int, volume: float, square: bool = False) -> list[int]:
        n = RATE * ms // 1000
        fade = max(1, RATE * 8 // 1000)
        out = []
        for i in range(n):
            s = math.sin(2 * math.pi * freq * i / RATE)
            if square:
                s = 1.0 if s >= 0 else -1.0
            out.append(int(32767 * volume * min(1.0, i / fade, (n - 1 - i) / fade) * s))
        return out

    for args in [(1318.5, 90, 0.5), (220.0, 160, 0.35, True), (2093.0, 70, 0.45), (440.0, 5, 0.9), (50.0, 0, 1.0),
                 (196.0, 13, 0.35, True)]:
        assert _tone(*args) == plain(*args), args

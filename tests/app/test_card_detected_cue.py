"""Issue #15, "what a Japanese payment kiosk sets": a sound and a mark the moment a card is seen (the gate's "pi"),
before the thank-you; and the failure cue once per failure, a second one in a row included. Through a real App:
simulated reader thread, service worker, ledger, drawn frames."""

from __future__ import annotations

import wave
from io import BytesIO
from pathlib import Path

import pygame
import pytest

from kiosk.app.demo import card_spec
from kiosk.app.runtime import App
from kiosk.ui.screens import chrome
from kiosk.ui.sounds import detect_wav, success_wav
from kiosk.ui.widgets import THEME
from tests.app.drive import card_on_reader, run_until
from tests.app.test_app_e2e import _cfg, media  # noqa: F401  (the module's clips fixture)


@pytest.fixture
def kiosk(tmp_path: Path, media: Path):  # noqa: F811
    app = App(_cfg(tmp_path / "data", media), sound=True)  # SDL_AUDIODRIVER=dummy: the cues play silently
    app.start()
    yield app
    app.close()


def green_in(surface: pygame.Surface, rect: pygame.Rect) -> int:
    """How many pixels of ``rect`` are the theme's "ok" green."""
    n = 0
    for x in range(rect.left, rect.right, 2):
        for y in range(rect.top, rect.bottom, 2):
            if tuple(surface.get_at((x, y)))[:3] == THEME.ok:
                n += 1
    return n


def test_a_card_gets_a_pi_and_a_mark_before_the_thank_you(kiosk):
    frames: list[tuple[str, int]] = []

    def hook(app, pres, surface):  # noqa: ANN001
        rect = chrome.reader_pointer_rect(surface, app.ctx.reader_position, pres.screen.lang, detected=True)
        frames.append((pres.screen.screen, green_in(surface, rect)))

    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.project is not None)
    kiosk.frame_hooks.append(hook)
    assert all(green == 0 for _, green in frames)  # no mark before any card
    with card_on_reader(kiosk, card_spec(0)):
        run_until(kiosk, lambda p: p.screen.screen == "thanks")
    kiosk.frame_hooks.remove(hook)
    names = [name for name, _ in kiosk.sounds.asked]
    assert "detect" in names and "thanks" in names and names.index("detect") < names.index("thanks"), names
    first_thanks = next(i for i, (name, _) in enumerate(frames) if name == "thanks")
    marked = [i for i, (_, green) in enumerate(frames) if green > 20]
    assert marked and marked[0] <= first_thanks, frames  # the mark is up by the first thank-you frame at latest


def test_each_failed_tap_gets_the_failure_cue(kiosk):
    """A cue per outcome, not per change of screen: the card pulled away too soon twice is two failures."""
    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.project is not None)
    with card_on_reader(kiosk, "pulled"):  # pulled away mid-read
        p = run_until(kiosk, lambda p: p.screen.screen == "error")
    assert p.screen.kind == "card_unreadable"
    assert [n for n, _ in kiosk.sounds.asked].count("error") == 1
    v = p.snapshot.version
    with card_on_reader(kiosk, "pulled"):  # tries again as the screen says: pulled away too soon again
        run_until(kiosk, lambda p: p.screen.screen == "error" and p.snapshot.version > v)
    kiosk.run(seconds=0.3)
    assert [n for n, _ in kiosk.sounds.asked].count("error") == 2, kiosk.sounds.asked


def test_a_different_error_after_an_error_gets_the_failure_cue(kiosk):
    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.project is not None)
    with card_on_reader(kiosk, "pulled"):
        run_until(kiosk, lambda p: p.screen.screen == "error" and p.screen.kind == "card_unreadable")
    with card_on_reader(kiosk, "suica idm=0102030405060708 balance=50"):  # a card that cannot pay ¥100
        run_until(kiosk, lambda p: p.screen.screen == "error" and p.screen.kind == "balance_low")
    kiosk.run(seconds=0.3)
    assert [n for n, _ in kiosk.sounds.asked].count("error") == 2, kiosk.sounds.asked


def test_the_same_outcome_redrawn_is_not_cued_again(kiosk):
    """The error screen switched to English (a new snapshot of the same outcome) stays silent."""
    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.project is not None)
    with card_on_reader(kiosk, "pulled"):
        p = run_until(kiosk, lambda p: p.screen.screen == "error")
    v = p.snapshot.version
    kiosk.inject(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_l, unicode="l"))  # L: the language
    run_until(kiosk, lambda p: p.screen.screen == "error" and p.screen.lang == "en" and p.snapshot.version > v)
    kiosk.run(seconds=0.3)
    assert [n for n, _ in kiosk.sounds.asked].count("error") == 1, kiosk.sounds.asked


def test_the_pi_is_one_short_high_note_distinct_from_the_thank_you():
    with wave.open(BytesIO(detect_wav())) as w:
        pi_ms = w.getnframes() * 1000 / w.getframerate()
    with wave.open(BytesIO(success_wav())) as w:
        thanks_ms = w.getnframes() * 1000 / w.getframerate()
    assert 40 <= pi_ms <= 120 < thanks_ms

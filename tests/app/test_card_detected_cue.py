"""Issue #15, "what a Japanese payment kiosk sets": a sound and a mark the moment a card is seen (the gate's "pi"),
before the thank-you. Through a real App: simulated reader thread, service worker, ledger, drawn frames."""

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


def test_the_pi_is_one_short_high_note_distinct_from_the_thank_you():
    with wave.open(BytesIO(detect_wav())) as w:
        pi_ms = w.getnframes() * 1000 / w.getframerate()
    with wave.open(BytesIO(success_wav())) as w:
        thanks_ms = w.getnframes() * 1000 / w.getframerate()
    assert 40 <= pi_ms <= 120 < thanks_ms

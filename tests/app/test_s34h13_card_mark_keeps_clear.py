"""The green "card read" check (the visual half of the gate's "pi") covers nothing a donor needs.

It was drawn over whatever screen was up for 0.8 s after a read, in a box sized for "カードを読み取りました"
(a third of the screen's width): with a fast terminal the thank-you came up under it and it hid the end of
the receipt code (the demo's own screenshot: "AOWJ A72…" cut off), and on other screens it hid the my-page QR,
"ほかのプロジェクト", the tap screen's ¥1,000 and the points screen's confirm button.

Now the check takes exactly the "ここにタッチ" pointer's place, is drawn only over the screens that wait for or hold
the card (the loop, tap your card, charging: ``screens.keeps_reader_clear``), and those keep that place clear at
every ``[reader] position``. Measured where each text and button was drawn (``widgets.measure_boxes``, the
targets), and through a real App: the thank-you frames drawn while the check is on are the thank-you alone.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pygame
import pytest
from app_samples import CTX, backdrop, screens

from kiosk.app import runtime
from kiosk.app.demo import card_spec
from kiosk.app.runtime import App
from kiosk.ui import widgets as ui
from kiosk.ui.screens import card_read_mark, chrome, keeps_reader_clear, render
from tests.app.drive import card_on_reader, run_until
from tests.app.test_app_e2e import _cfg, media  # noqa: F401  (the module's clips fixture)
from tests.panels import FLOOR

SIZES = [(1280, 720), (1920, 1080), (800, 480)]


@pytest.fixture(autouse=True, scope="module")
def _pg():
    pygame.font.init()
    yield


def covered(size: tuple[int, int], lang: str, position: str) -> dict[str, list[str]]:
    """Per sample screen, what the check drawn over it (as the app draws it) covers: buttons, texts."""
    ctx = replace(CTX, reader_position=position)
    own = {chrome.tr(lang)("Touch here")}  # the loop's and the tap screen's own pointer, in the same place
    found: dict[str, list[str]] = {}
    for name, data in screens(lang).items():
        if not keeps_reader_clear(data):  # not drawn there (the next test)
            continue
        s = backdrop(size)
        with ui.measure_boxes() as drawn:
            targets = render(data, s, 0, ctx=ctx)
        mark = card_read_mark(s, data, position, 0)
        assert mark is not None, name
        hits = [f"the {t.action} button" for t in targets if t.rect != s.get_rect() and t.rect.colliderect(mark)]
        hits += [repr(d.text) for d in drawn if d.text not in own and d.rect.colliderect(mark)]
        if hits:
            found[name] = hits
    return found


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_card_read_check_covers_no_text_and_no_button_on_any_screen(size: tuple[int, int], lang: str) -> None:
    problems = {f"{position} {name}": hits for position in chrome.READER_POSITIONS
                for name, hits in covered(size, lang, position).items()}
    assert not problems, "\n".join(f"{k}: covers {v}" for k, v in problems.items())


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_check_is_not_drawn_over_the_receipt_code_the_qr_codes_or_points(lang: str) -> None:
    """The screens that answer the card (their codes and QR) are drawn without it; the ones that wait show it."""
    samples = screens(lang)
    answers = [n for n in samples if n.startswith(("thanks", "my_page", "points", "error"))]
    assert answers and not [n for n in answers if keeps_reader_clear(samples[n])]
    for name in answers:
        for position in chrome.READER_POSITIONS:
            blank = pygame.Surface((320, 180))
            assert card_read_mark(blank, samples[name], position, 0) is None, name
            assert not pygame.image.tobytes(blank, "RGB").strip(b"\0"), f"{name}: drawn, but said it was not"
    assert all(keeps_reader_clear(samples[n]) for n in ("attract", "tap_card", "charging", "charging_express"))


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_check_is_in_the_pointers_place_and_readable(size: tuple[int, int], lang: str) -> None:
    for position in chrome.READER_POSITIONS:
        s = backdrop(size)
        with ui.measure_boxes() as drawn:
            mark = card_read_mark(s, screens(lang)["tap_card"], position, 0)
        assert mark == chrome.reader_pointer_rect(s, position, lang)
        label = [d for d in drawn if d.text == chrome.tr(lang)("Card read")]
        assert label and mark.contains(label[0].rect), (position, drawn)
        assert label[0].size >= round(FLOOR * ui.layout_rect(size).height), label


@pytest.fixture
def kiosk(tmp_path: Path, media: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    monkeypatch.setattr(runtime, "DETECTED_S", 60.0)  # a terminal as fast as can be: the check still on at thanks
    app = App(_cfg(tmp_path / "data", media))
    app.start()
    yield app
    app.close()


def test_a_thank_you_drawn_while_the_check_is_on_is_the_thank_you_alone(kiosk) -> None:
    """The demo's screenshot: the thank-you came up within the check's 0.8 s and the check hid the receipt code.
    Every thank-you frame is compared with the same screen drawn by itself (it is opaque: no movie under it)."""
    checked: list[str] = []

    def hook(app, pres, surface):  # noqa: ANN001
        if pres.screen.screen != "thanks":
            return
        alone = pygame.Surface(surface.get_size())
        render(pres.screen, alone, 0, ctx=app.ctx.with_totals(pres.snapshot.totals_yen))
        diff = ui.compare_images(surface, alone)
        checked.append(f"{diff.mean_diff:.4f} {diff}")

    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.project is not None)
    kiosk.frame_hooks.append(hook)
    with card_on_reader(kiosk, card_spec(0)):
        run_until(kiosk, lambda p: p.screen.screen == "thanks")
    kiosk.run(seconds=0.2)
    kiosk.frame_hooks.remove(hook)
    assert checked and all(c.startswith("0.0000") for c in checked), checked

"""Issue #15 item 15: the demo. Project changes at a movie's pace, a correct plural, and keys 1-5 tap cards
while the menu is open (except on its PIN keypad)."""

from __future__ import annotations

import io
from pathlib import Path

import pygame
import pytest

from kiosk.app import demo
from kiosk.app.runtime import App
from kiosk.ops.local_files import ensure_secrets
from kiosk.staff.pin import hash_pin
from tests.app.drive import card_on_reader, run_until
from tests.app.test_app_e2e import _cfg, media  # noqa: F401  (the module's clips fixture)


def test_the_summary_counts_one_donation_in_the_singular(tmp_path: Path):
    cfg = demo.demo_config(tmp_path / "k")
    totals = {"count": 1, "total_yen": 100, "projects": {"a": {"count": 1, "total_yen": 100}}}
    out = io.StringIO()
    demo._summary(cfg, tmp_path, totals, None, None, False, out, 0)
    text = out.getvalue()
    assert "summary: 1 donation this run; ledger holds 1 donation," in text and "1 donations" not in text
    out = io.StringIO()
    demo._summary(cfg, tmp_path, {**totals, "count": 2}, None, None, False, out, 0)
    assert "summary: 2 donations this run" in out.getvalue()


def test_short_demo_clips_keep_a_project_on_screen_like_a_movie(tmp_path: Path):
    cfg = demo.demo_config(tmp_path / "k")
    demo.prepare(cfg, size=(160, 90), clip_s=3.0, dwell_s=demo.DWELL_S)
    assert cfg.player.playlist and all(item.repeat * 3.0 >= demo.DWELL_S for item in cfg.player.playlist)
    bench = demo.demo_config(tmp_path / "b")
    demo.prepare(bench, size=(160, 90), clip_s=3.0)  # scripted runs and the bench keep one pass per clip
    assert all(item.repeat == 1 for item in bench.player.playlist)


def key(app: App, ch: str) -> None:
    app.inject(pygame.event.Event(pygame.KEYDOWN, key=getattr(pygame, f"K_{ch}"), mod=0, unicode=ch))


@pytest.fixture
def kiosk(tmp_path: Path, media: Path):  # noqa: F811
    cfg = _cfg(tmp_path / "data", media)
    ensure_secrets(cfg)
    cfg.staff.pin_hash = hash_pin("2468", n=2**10)
    app = App(cfg, sound=False)
    app.start()
    yield app
    app.close()


def test_keys_tap_cards_while_the_menu_is_open_but_not_on_the_pin_keypad(kiosk):
    menu = kiosk.staff.menu
    run_until(kiosk, lambda p: p.screen.screen == "attract")
    for _ in range(5):
        kiosk.touch_at((2, 2))
        kiosk.run(seconds=0.05)
    assert menu.page == "pin"
    for ch in "2468":
        key(kiosk, ch)  # on the keypad the digits are the PIN, not cards
    kiosk.inject(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, mod=0, unicode="\r"))
    kiosk.run(until=lambda a: menu.page == "home", seconds=5)
    assert menu.page == "home"
    menu.model.press("go", "reader_test")
    with card_on_reader(kiosk):  # the key's card stays on the reader until the reader test shows it
        key(kiosk, "3")  # the simulated ICOCA, through the reader thread, into the reader test
        kiosk.run(until=lambda a: "icoca" in menu.view().text.lower(), seconds=5)
    assert "icoca" in menu.view().text.lower(), menu.view().text

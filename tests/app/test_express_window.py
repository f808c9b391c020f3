"""Issue #15: an Express gift (a tap on the loop) and its window, through a real App: simulated reader thread,
service worker, SimulatedTerminal and ledger. A card held for the window gives; a card that only brushed the
reader, or やめる, gives nothing, and the ledger says so (docs/donation.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.app.demo import card_spec
from kiosk.app.runtime import App, target_center
from kiosk.donation import flow
from kiosk.ledger.clock import SystemClock
from kiosk.ui.screens import charging, chrome
from tests.app.drive import card_on_reader, entries, run_until
from tests.app.test_app_e2e import _cfg, media  # noqa: F401  (the module's clips fixture)

WINDOW_MS = 600


@pytest.fixture
def kiosk(tmp_path: Path, media: Path):  # noqa: F811
    cfg = _cfg(tmp_path / "data", media)
    cfg.flow.express_cancel_ms = WINDOW_MS
    app = App(cfg, sound=False)
    app.start()
    yield app
    app.close()


def kinds(app: App) -> list[str]:
    return [e.type for e in entries(app) if e.type in ("donation_intent", "donation", "donation_failed")]


def test_a_card_held_through_the_window_gives(kiosk):
    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.project is not None)
    with card_on_reader(kiosk, card_spec(0)):  # held through the window, however late the reader reads it
        # The window's screen is up from the tap, while the intent is still being committed (やめる works then
        # too): wait for the commit, inside the window. Durable first; nothing charged yet.
        p = run_until(kiosk, lambda p: p.screen.screen == "charging" and p.screen.can_withdraw
                      and kinds(kiosk) == ["donation_intent"])
        assert target_center(p.targets, chrome.CANCEL) is not None
        run_until(kiosk, lambda p: p.screen.screen == "thanks")
    assert kinds(kiosk) == ["donation_intent", "donation"]


def test_a_card_that_only_brushed_the_reader_gives_nothing(kiosk):
    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.project is not None)
    with card_on_reader(kiosk, card_spec(0), brush=True):  # taken away by the reader's thread as soon as it is read
        p = run_until(kiosk, lambda p: p.screen.screen == "error")
    assert p.screen.hint == "canceled"
    failed = [e for e in entries(kiosk) if e.type == "donation_failed"]
    assert kinds(kiosk) == ["donation_intent", "donation_failed"] and failed[0].data["reason"] == flow.WITHDRAWN
    assert not kiosk.terminal.charges()  # no charge ever reached the (simulated) terminal


def test_yameru_in_the_window_gives_nothing(kiosk):
    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.project is not None)
    with card_on_reader(kiosk, card_spec(0)):  # still on the reader: only the button stops it
        p = run_until(kiosk, lambda p: p.screen.screen == "charging" and p.screen.can_withdraw)
        kiosk.touch_at(target_center(p.targets, chrome.CANCEL))
        p = run_until(kiosk, lambda p: p.screen.screen == "error")
    assert p.screen.hint == "canceled" and kinds(kiosk) == ["donation_intent", "donation_failed"]
    assert not kiosk.terminal.charges()


def test_two_brushes_give_nothing(kiosk):
    """A card in a bag brushes the reader, and again while 取り消しました is up: the second brush is held for the
    window as the first was (docs/donation.md), so neither gives."""
    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.project is not None)
    with card_on_reader(kiosk, card_spec(0), brush=True):
        p = run_until(kiosk, lambda p: p.screen.screen == "error")
    assert p.screen.hint == "canceled"
    with card_on_reader(kiosk, card_spec(0), brush=True):  # the card brushes the reader again, as quickly
        kiosk.run(seconds=2)
    assert "donation" not in kinds(kiosk) and not kiosk.terminal.charges(), kinds(kiosk)
    p = run_until(kiosk, lambda p: p.screen.screen == "error" and p.snapshot.state.attempts == 2)
    assert p.screen.hint == "canceled" and kinds(kiosk) == ["donation_intent", "donation_failed"] * 2


class AfterSuspend(SystemClock):
    """The system clock one hour after boot time and time.monotonic parted (an hour of suspend)."""

    def mono_ms(self) -> int:
        return super().mono_ms() + 3_600_000


def test_the_window_is_shown_as_a_bar_running_out_on_the_flow_clock(kiosk):
    """Every flipped frame of the window draws the bar the flow's deadline gives at the flow's clock, and it runs
    out (docs/donation.md): measured on the real App's pixels, not on the screen model."""
    from tests.app.test_express_countdown import bar_fill

    frames: list[tuple[float, float, float]] = []  # measured fill, fraction at the flip, fraction 150 ms before

    def hook(app, pres, surface):  # noqa: ANN001
        if pres.screen.screen == "charging" and pres.screen.can_withdraw:
            now = app.worker.service.now_ms()  # the frame was drawn a moment before this
            frames.append((bar_fill(surface), charging.countdown_fraction(pres.screen, now),
                           charging.countdown_fraction(pres.screen, now - 150)))

    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.project is not None)
    # A kiosk woken from a suspend: the flow's boot clock ran on while time.monotonic (the player's) stood still.
    # The bar must follow the flow's clock, whose deadline it shows.
    kiosk.worker.service._clock = AfterSuspend()
    kiosk.frame_hooks.append(hook)
    with card_on_reader(kiosk, card_spec(0)):  # held through the window
        run_until(kiosk, lambda p: p.screen.screen == "thanks")
    kiosk.frame_hooks.remove(hook)
    assert len(frames) >= 3, frames
    fills = [f for f, _, _ in frames]
    assert fills == sorted(fills, reverse=True) and fills[0] > 0.5 and fills[-1] < 0.5, fills
    for fill, at_flip, before in frames:
        assert at_flip - 0.02 <= fill <= before + 0.02, frames
    assert kinds(kiosk) == ["donation_intent", "donation"]

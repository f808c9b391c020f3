"""The kiosk app with a Square Terminal, end to end and headless, through the real event path.

Real App (player on SDL's dummy driver, simulated reader, service worker, signed
ledger), the real Square adapter and SDK, and the fake Square API on loopback.
The donor chooses the amount on the kiosk, pays on the terminal, and sees the
terminal's live state; やめる on the kiosk cancels the checkout at Square.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import pytest

import kiosk.app.runtime as app_mod
from kiosk.app.runtime import App, target_center
from kiosk.ledger import verify_path
from kiosk.ui.screens import chrome
from tests.app import drive
from tests.app.drive import entries
from tests.payment.fake_square import FakeSquare

SIZE = (320, 180)


@pytest.fixture
def rig(tmp_path: Path):
    with FakeSquare() as fake:
        app = drive.square_app(tmp_path, fake, SIZE)
        app.start()
        yield app, fake
        app.close()
        assert verify_path(app.cfg.ledger_path).ok


def run_until(app: App, pred, seconds: float = 15.0) -> Any:  # noqa: ANN001
    return drive.run_until(app, pred, seconds)  # a terminal's states take longer to walk


def _to_terminal(app: App) -> Any:
    run_until(app, lambda p: p.screen.screen == "attract")
    app.touch_at((SIZE[0] // 2, SIZE[1] // 2))
    p = run_until(app, lambda p: p.screen.screen == "choose_amount")
    app.touch_at(target_center(p.targets, chrome.AMOUNT, 500))
    p = run_until(app, lambda p: p.screen.screen == "tap_card" and p.screen.on_terminal)
    app.touch_at(target_center(p.targets, chrome.PAY_ON_TERMINAL))
    return run_until(app, lambda p: p.screen.screen == "charging" and p.screen.terminal_state == "PENDING")


def test_cancel_on_the_kiosk_cancels_the_checkout_at_square(rig):
    app, fake = rig
    fake.plan = ["wait"] * 10_000  # nobody at the terminal
    p = _to_terminal(app)
    assert p.screen.on_terminal and p.screen.amount_yen == 500
    app.touch_at(target_center(p.targets, chrome.TERMINAL_CANCEL))
    p = run_until(app, lambda p: p.screen.screen == "error")
    assert p.screen.hint == "canceled"  # not "declined, try another card": the donor changed their mind
    co = fake.only()
    assert co.status == "CANCELED" and co.cancel_reason == "SELLER_CANCELED"
    failed = [e for e in entries(app) if e.type == "donation_failed"]
    assert len(failed) == 1 and "SELLER_CANCELED" in failed[0].data["reason"]


def test_paid_on_the_terminal_thanks_only_after_the_commit(rig, monkeypatch):
    app, fake = rig
    seen: list[str | None] = []
    real_render = app_mod.render

    def checking_render(data, surface, now_ms, *args, **kw):  # noqa: ANN001
        if data.screen == "thanks":
            seen.append({e.seq: e.type for e in entries(app)}.get(data.receipt_seq))
        return real_render(data, surface, now_ms, *args, **kw)

    monkeypatch.setattr(app_mod, "render", checking_render)
    fake.plan = ["wait", "wait", "tap", "wait", "wait", "complete"]
    _to_terminal(app)
    run_until(app, lambda p: p.screen.screen == "charging" and p.screen.terminal_state == "IN_PROGRESS")
    p = run_until(app, lambda p: p.screen.screen == "thanks")
    assert seen and set(seen) == {"donation"}  # never drawn before the donation entry was committed
    assert not p.screen.has_donor and p.screen.points_earned == 0
    d = next(e for e in entries(app) if e.type == "donation")
    assert d.data["provider_ref"] == fake.only().payment_ids[0] and d.data["donor"] is None
    # the status page shows the terminal's own state, not a constant
    x = app.staff.status_inputs()
    assert x.payment_state == "ready" and "last checkout: approved" in x.payment_detail

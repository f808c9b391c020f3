"""Driving a real :class:`~kiosk.app.runtime.App` in tests: wait for a presented screen, read its ledger."""

from __future__ import annotations

from typing import Any

from kiosk.app.runtime import App
from kiosk.ledger.store import iter_entries, read_only_engine


def run_until(app: App, pred, seconds: float = 10.0) -> Any:  # noqa: ANN001
    """Run the app's main loop until a flipped frame satisfies ``pred``; fail naming the screen it is on."""
    app.run(until=lambda a: a.presented is not None and pred(a.presented), seconds=seconds)
    p = app.presented
    assert p is not None and pred(p), f"still on {p.screen if p else None}"
    return p


def entries(app: App) -> list[Any]:
    """Every entry of the app's ledger, read through a connection of its own."""
    eng = read_only_engine(app.cfg.ledger_path)
    try:
        return list(iter_entries(eng))
    finally:
        eng.dispose()

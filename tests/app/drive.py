"""Driving a real :class:`~kiosk.app.runtime.App` in tests: wait for a presented screen, read its ledger."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kiosk.app.demo import demo_template
from kiosk.app.runtime import App
from kiosk.config import validate_config
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


def headless_cfg(data_dir: Path, size: tuple[int, int], media: Path | None = None,
                 flow: dict[str, Any] | None = None) -> Any:
    """The demo config on SDL's headless display at ``size`` with the simulated reader polled fast; with
    ``media`` (a folder of demo clips), those clips copied in and played as the demo playlist."""
    from kiosk.player import demo_playlist
    from kiosk.player.media import MediaCache

    data = demo_template()
    data["kiosk"]["data_dir"] = str(data_dir)
    data["player"] = {"display": "headless", "width": size[0], "height": size[1]}
    data["reader"] = {"backend": "sim", "poll_interval_ms": 10, "cooldown_ms": 0}
    if flow is not None:
        data["flow"] = flow
    cfg = validate_config(data, "<test>", data_dir)
    if media is not None:
        shutil.copytree(media, data_dir / "media")
        clips = {e.project: e.sha256 for e in MediaCache(data_dir / "media").entries()}
        cfg.player.playlist = demo_playlist(
            [type("C", (), {"project_id": p, "sha256": s})() for p, s in clips.items()])
    return cfg

"""Issue #15 item 10: at a clip boundary the loop's band named the previous project for a few frames (the
worker had not taken the new ProjectShown in yet). Through a real App with 0.5 s clips of several projects."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.app.runtime import App
from tests.app.drive import run_until
from tests.app.test_app_e2e import _cfg, media  # noqa: F401  (the module's clips fixture)


@pytest.fixture
def kiosk(tmp_path: Path, media: Path):  # noqa: F811
    app = App(_cfg(tmp_path / "data", media), sound=False)
    app.start()
    yield app
    app.close()


def test_every_attract_frame_names_the_clip_on_screen(kiosk):
    seen: list[tuple[str | None, str | None]] = []

    def hook(app, pres, surface):  # noqa: ANN001
        if pres.screen.screen == "attract":
            seen.append((pres.screen.project, app.player.current_project_id))

    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.project is not None)
    kiosk.frame_hooks.append(hook)
    kiosk.run(until=lambda a: len({shown for _, shown in seen if shown}) >= 3, seconds=15)
    kiosk.frame_hooks.remove(hook)
    shown = {s for _, s in seen if s}
    assert len(shown) >= 3, seen[-5:]  # several clip boundaries were crossed
    wrong = [(band, clip) for band, clip in seen if clip is not None and band != clip]
    assert not wrong, wrong[:5]

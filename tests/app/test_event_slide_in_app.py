"""Issue #15 item 2, through a real App: its player loop plays a clip and then an event slide, the service worker
runs the flow, the overlay draws the loop's band. On every flipped frame of the slide, and across the switch from
the clip, the slide's date, place and note are not covered (the frame under the top button row is the slide
exactly as the slide renderer draws it), and the band never names the project of the clip that played before.
tests/app/test_screens_issue15.py checks the same at screen level, over a still frame."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pygame
import pytest

from kiosk.app.runtime import App
from kiosk.config.player import EventSlide
from kiosk.ui import widgets as ui
from kiosk.ui.widgets import THEME
from tests.app.drive import run_until
from tests.app.test_app_e2e import _cfg, media  # noqa: F401  (the module's clips fixture)

SLIDE = EventSlide(title="子ども食堂まつり", date=dt.date.today() + dt.timedelta(days=3), time="10:00-14:00",
                   place="2階 会議室A", note="申込不要・参加無料", duration_s=2.0)


@pytest.fixture
def kiosk(tmp_path: Path, media: Path):  # noqa: F811
    cfg = _cfg(tmp_path / "data", media)
    cfg.player.slides = [SLIDE]
    cfg.player.slide_every = 1  # every clip is followed by the slide
    app = App(cfg, sound=False)
    app.start()
    yield app
    app.close()


def rgb(surface: pygame.Surface, rect: pygame.Rect) -> np.ndarray:
    return pygame.surfarray.array3d(surface.subsurface(rect))


def test_the_slide_after_a_clip_is_never_under_the_band_nor_under_the_clip_project(kiosk):
    w, h = kiosk.player.screen.get_size()
    # Below the top row of buttons (language, choose a project) the screen must be the slide itself.
    below_buttons = pygame.Rect(0, THEME.px(kiosk.player.screen, 0.03) + THEME.px(kiosk.player.screen, 0.11) + 2,
                                w, 0)
    below_buttons.height = h - below_buttons.top
    reference = kiosk.player.renderer.event(SLIDE, (w, h))
    band_area = pygame.Rect(0, int(h * 0.56), w, h - int(h * 0.56))
    assert (rgb(reference, band_area) != rgb(reference, band_area)[0, 0]).any()  # place and note are down there

    names = {n for p in kiosk.ctx.projects.values() for n in (p.name("ja"), p.name("en")) if n}
    frames: list[dict] = []

    def hook(app, pres, surface):  # noqa: ANN001
        texts = [t for _, t in drawn]
        drawn.clear()
        showing = app.player.showing
        frames.append({"kind": showing.kind if showing else None, "clip": app.player.current_project_id,
                       "texts": texts,
                       "slide_intact": showing is not None and showing.kind == "slide"
                       and np.array_equal(rgb(surface, below_buttons), rgb(reference, below_buttons))})

    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.project is not None)
    with ui.measure_text() as drawn:
        kiosk.frame_hooks.append(hook)
        # A clip, the slide, and the next clip after it.
        kiosk.run(until=lambda a: any(f["kind"] == "slide" for f in frames) and frames[-1]["kind"] == "video",
                  seconds=20)
        kiosk.frame_hooks.remove(hook)
    kinds = [f["kind"] for f in frames]
    first_slide = kinds.index("slide")
    assert "video" in kinds[:first_slide], kinds  # a clip played before the slide: the switch was crossed
    before = [f for f in frames[:first_slide] if f["kind"] == "video"][-1]
    assert any(n in before["texts"] for n in names), before  # the band named that clip's project…
    slide_frames = [f for f in frames if f["kind"] == "slide"]
    assert len(slide_frames) >= 3
    for i, f in enumerate(slide_frames):
        # …and not one frame of the slide shows it, from the first frame of the switch on.
        assert not names & set(f["texts"]), (i, f["texts"])
        assert f["slide_intact"], (i, "the band or its text covers the slide", f["texts"])
    after = frames[-1]
    assert after["kind"] == "video" and any(n in after["texts"] for n in names), after  # the band is back

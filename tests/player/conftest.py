"""Shared fixtures for the player tests: SDL's dummy drivers, tiny generated clips, configs."""

from __future__ import annotations

import os

# Before pygame is imported anywhere: no window, no sound card, no banner.
os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"
os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest

from kiosk.config import KioskConfig, validate_config

W, H = 160, 90
CLIP_S = 1.0
FPS = 30

PROJECTS = [
    {"id": "kids", "title": "こども食堂", "title_en": "Kids cafeteria", "area": "children"},
    {"id": "green", "title": "まちの緑化", "title_en": "Greening", "area": "green"},
    {"id": "art", "title": "アートの日", "title_en": "Art day", "area": "culture"},
]


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Real generated clips (160×90, 1 s, 30 fps), made once per session: (media dir, {project: sha256})."""
    from kiosk.player.demo_media import ensure_demo_media

    root = tmp_path_factory.mktemp("demo-data")
    cfg = validate_config({"kiosk": {"id": "test-1", "data_dir": str(root)}, "projects": PROJECTS,
                           "player": {"width": W, "height": H}})
    clips = ensure_demo_media(cfg, size=(W, H), seconds=CLIP_S, fps=FPS)
    return root / "media", {c.project_id: c.sha256 for c in clips}


@pytest.fixture
def make_cfg(tmp_path: Path, demo_cache: tuple[Path, dict[str, str]]):
    """``make_cfg(playlist=[...], slides=[...], **player)`` → a config whose data dir holds the demo clips."""

    def make(playlist: list[dict[str, Any]] | None = None, slides: list[dict[str, Any]] | None = None,
             **player: Any) -> KioskConfig:
        media = tmp_path / "media"
        if not media.exists():
            shutil.copytree(demo_cache[0], media)
        section = {"display": "headless", "width": W, "height": H, "playlist": playlist or [],
                   "slides": slides or [], **player}
        return validate_config({"kiosk": {"id": "test-1", "data_dir": str(tmp_path)}, "projects": PROJECTS,
                                "player": section})

    return make


@pytest.fixture
def shas(demo_cache: tuple[Path, dict[str, str]]) -> dict[str, str]:
    return demo_cache[1]


@pytest.fixture
def projects() -> list[dict[str, str]]:
    return [dict(p) for p in PROJECTS]


@pytest.fixture
def fake_clock():
    from kiosk.ledger.clock import FixedClock

    clock = FixedClock()
    clock.set_wall(dt.datetime(2025, 7, 7, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=9))))  # a Monday in Tokyo
    return clock

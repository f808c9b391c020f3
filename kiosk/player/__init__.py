"""The movie loop: gapless, self-healing playback of project movies from a checksummed media cache.

Public API::

    from kiosk.player import Player
    with Player(cfg) as player:              # opens the display, verifies media, starts decoding
        player.add_overlay(draw)             # draw(screen, now_ms) over every frame
        player.run(frames=300)               # or run(seconds=..., ticks=..., until=...)
        player.current_project_id            # the project on screen (a tap gives to it)
        player.metrics.latest()              # last one-second health sample

See docs/player.md for the architecture, cache layout and config keys.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# pygame-ce prints a banner on import; it would corrupt JSON written to stdout (bench, CLI).
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

# The sync and staff code import single modules of this package (transcode, media) without wanting
# a display: everything that pulls in pygame or PyAV is loaded on first use.
_LAZY = {
    "DemoClip": "demo_media", "demo_playlist": "demo_media", "ensure_demo_media": "demo_media",
    "Display": "display",
    "MediaCache": "media", "MediaEntry": "media",
    "Metrics": "metrics", "Sample": "metrics",
    "Overlay": "player", "Player": "player", "Showing": "player",
    "MediaError": "transcode", "ProbeInfo": "transcode", "probe": "transcode",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"kiosk.player.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kiosk.player' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from kiosk.player.demo_media import DemoClip, demo_playlist, ensure_demo_media
    from kiosk.player.display import Display
    from kiosk.player.media import MediaCache, MediaEntry
    from kiosk.player.metrics import Metrics, Sample
    from kiosk.player.player import Overlay, Player, Showing
    from kiosk.player.transcode import MediaError, ProbeInfo, probe

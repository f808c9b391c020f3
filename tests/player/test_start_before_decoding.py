"""`kiosk run` opens the display before the decode thread (cold start, #16): READY=1 does not wait for PyAV's
import or the movie's first frame. Until that frame, the still is on the screen under the overlays, drawn
again each frame; then the movie plays as always. Real loop, SDL's dummy driver, real generated clips."""

from __future__ import annotations

import time

import pygame

from kiosk.player import Player
from kiosk.player.slides import STILL_BG


def _near(c: tuple[int, ...], ref: tuple[int, ...], tol: int = 10) -> bool:
    return max(abs(a - b) for a, b in zip(c, ref, strict=True)) <= tol


def test_the_still_is_under_the_overlays_until_decoding_starts_then_the_movie(make_cfg, shas):
    cfg = make_cfg([{"project": "kids", "clip": shas["kids"]}])
    player = Player(cfg, metrics_path=False)

    def veil(screen: pygame.Surface, _now_ms: int) -> None:  # a translucent overlay, as the screens have
        shade = pygame.Surface((20, 20), pygame.SRCALPHA)
        shade.fill((0, 0, 0, 128))
        screen.blit(shade, (0, 0))

    try:
        player.start(decode=False)
        assert player.worker is None and player.showing is None
        player.add_overlay(veil)
        for _ in range(12):  # frames presented with nothing decoded
            player.tick()
        screen = player.display.surface
        assert screen is not None
        assert _near(screen.get_at((150, 12))[:3], STILL_BG)  # the still, never a black screen
        # Half the still under the veil, once: not the veil piled up twelve times on the last picture.
        assert _near(screen.get_at((5, 5))[:3], tuple(c // 2 for c in STILL_BG), tol=4)

        player.start_decoding(wait_s=0)
        deadline = time.monotonic() + 30
        while player.showing is None and time.monotonic() < deadline:
            player.tick()
            time.sleep(0.005)
        assert player.showing is not None and player.showing.project_id == "kids"
        assert not _near(screen.get_at((150, 12))[:3], STILL_BG)  # the clip's own picture now
    finally:
        player.stop()

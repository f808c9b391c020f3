"""Demo movies generated at first run: a moving title card per project, straight into the media cache.

No binary media lives in the repository. Each card is encoded in the cache
format (H.264, yuv420p, closed GOP, faststart) and tagged with a digest of
everything it was drawn from, so later runs reuse it and a changed title or
size makes a new one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pygame

from kiosk.config import KioskConfig, Project
from kiosk.config.player import PlaylistItem
from kiosk.player.media import MediaCache
from kiosk.player.slides import AREA_COLOURS, INK, Fonts, find_font
from kiosk.player.transcode import h264_encoder, open_output, panel_size

log = logging.getLogger("kiosk.player.demo")

GENERATOR_VERSION = 1


@dataclass(frozen=True)
class DemoClip:
    project_id: str
    sha256: str
    path: Path
    reused: bool


def _key(p: Project, w: int, h: int, seconds: float, fps: int, font: Path | None) -> str:
    spec = {"v": GENERATOR_VERSION, "id": p.id, "title": p.title, "title_en": p.title_en, "group": p.group,
            "area": p.area, "w": w, "h": h, "s": seconds, "fps": fps, "font": font.name if font else ""}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def _card(p: Project, size: tuple[int, int], fonts: Fonts) -> pygame.Surface:
    w, h = size
    base = pygame.Surface(size)
    bg = AREA_COLOURS.get(p.area, (40, 104, 186))
    base.fill(bg)
    # A lighter lower band gives the card depth and keeps every frame far from black.
    pygame.draw.rect(base, tuple(min(255, c + 40) for c in bg), (0, int(h * 0.72), w, h - int(h * 0.72)))
    title = fonts.pick(p.title, p.title_en or p.id)
    lines = [(title, 0.13), (fonts.pick(p.group, "") if p.group else "", 0.065)]
    y = int(h * 0.22)
    for text, rel in lines:
        if not text:
            continue
        px = max(10, int(h * rel))
        surf = fonts.get(px).render(text, True, INK)
        if surf.get_width() > w * 0.9:
            surf = pygame.transform.smoothscale(
                surf, (int(w * 0.9), max(1, int(surf.get_height() * w * 0.9 / surf.get_width()))))
        base.blit(surf, ((w - surf.get_width()) // 2, y))
        y += surf.get_height() + h // 40
    return base


def render_clip(p: Project, path: Path, *, size: tuple[int, int], seconds: float, fps: int, fonts: Fonts) -> None:
    """Encode one title card with a moving element to ``path`` in the cache format."""
    w, h = size
    base = _card(p, size, fonts)
    n = max(1, round(seconds * fps))
    out, stream = open_output(path, h264_encoder(), w, h, Fraction(fps), preset="veryfast", crf=23)
    frame_surface = pygame.Surface(size)
    try:
        with out:
            for i in range(n):
                t = i / n
                frame_surface.blit(base, (0, 0))
                # A dot gliding along a sine path and a filling bar: motion that loops seamlessly.
                cx = int(w * (0.1 + 0.8 * (0.5 - 0.5 * math.cos(2 * math.pi * t))))
                cy = int(h * (0.62 + 0.04 * math.sin(4 * math.pi * t)))
                pygame.draw.circle(frame_surface, INK, (cx, cy), max(3, h // 24))
                pygame.draw.rect(frame_surface, INK,
                                 (int(w * 0.1), int(h * 0.82), int(w * 0.8 * (i + 1) / n), max(2, h // 45)))
                vf = av.VideoFrame.from_bytes(pygame.image.tobytes(frame_surface, "RGBA"), w, h, "rgba")
                vf = vf.reformat(format="yuv420p")
                vf.pts, vf.time_base = i, Fraction(1, fps)
                for packet in stream.encode(vf):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def ensure_demo_media(
    cfg: KioskConfig,
    target_dir: Path | None = None,
    *,
    size: tuple[int, int] = (640, 360),
    seconds: float = 3.0,
    fps: int = 30,
    font_path: Path | None = None,
) -> list[DemoClip]:
    """A title-card clip per project in ``cfg.projects``, generated once into the media cache and reused after.

    ``target_dir`` is the media cache directory (default ``<data_dir>/media``).
    Returns one :class:`DemoClip` per project, in config order.
    """
    cache = MediaCache(target_dir or cfg.data_dir / "media")
    w, h = panel_size(*size)
    font = font_path or find_font(cfg.player.font)
    fonts: Fonts | None = None
    by_key = {e.demo_key: e for e in cache.entries() if e.demo_key}
    clips: list[DemoClip] = []
    for p in cfg.projects:
        key = _key(p, w, h, seconds, fps, font)
        old = by_key.get(key)
        if old is not None and old.project == p.id and cache.verify(old.sha256) == "ok":
            clips.append(DemoClip(p.id, old.sha256, cache.path(old.sha256), True))
            continue
        # Cards drawn from an older title, size or generator are regenerable clutter: drop them.
        for stale in [e for e in by_key.values() if e.project == p.id and e.source == "demo"]:
            cache.remove(stale.sha256)
        if fonts is None:
            fonts = Fonts(font)  # initialises pygame.font only: no display is needed to draw cards
        tmp = cache.tmp_dir() / f"demo-{p.id}-{os.getpid()}-{threading.get_ident()}.mp4"
        render_clip(p, tmp, size=(w, h), seconds=seconds, fps=fps, fonts=fonts)
        entry = cache.add(tmp, project=p.id, title=p.title, source="demo", demo_key=key)
        log.info("player: generated demo clip %s for %s", entry.short, p.id)
        clips.append(DemoClip(p.id, entry.sha256, cache.path(entry.sha256), False))
    return clips


def demo_playlist(clips: list[DemoClip]) -> list[PlaylistItem]:
    """Playlist items that play the demo clips in order (for ``cfg.player.playlist``)."""
    return [PlaylistItem(project=c.project_id, clip=c.sha256) for c in clips]

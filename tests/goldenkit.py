"""The golden-image framework: every screen and menu page at 1280×720 and 1920×1080, in Japanese and English.

A test draws a surface of one of ``SIZES`` and calls :func:`check` with its kind (``donation``, ``menu``,
or a new folder), name and language; the image lives at ``tests/golden/<kind>/<W>x<H>/<name>.<lang>.png``.

Regenerate after an intended change with ``KIOSK_UPDATE_GOLDEN=1 pytest tests/app tests/menu`` and look at
every changed PNG (``python -m tests.goldenkit sheet`` puts the four renders of each name side by side in
``build/golden-sheets`` for that) before committing them. A missing golden fails, it is never written silently.

Adding a screen (for example a new QR page): draw it in a test with :func:`cases`' sizes and languages and
call :func:`check`; ``tests/app/test_screens_golden.py`` shows the pattern (``EXTRA_SCREENS`` in
``tests/app/app_samples.py`` takes a drawing function when the screen is not a ``flow.Screen``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

import pygame
import pytest

from kiosk.ui.widgets import compare_images

ROOT = Path(__file__).resolve().parent / "golden"
SIZES: tuple[tuple[int, int], ...] = ((1280, 720), (1920, 1080))
LANGS: tuple[str, ...] = ("ja", "en")
UPDATE = os.environ.get("KIOSK_UPDATE_GOLDEN") == "1"


def path_for(kind: str, size: tuple[int, int], name: str, lang: str) -> Path:
    return ROOT / kind / f"{size[0]}x{size[1]}" / f"{name}.{lang}.png"


def cases(names: Iterable[str]) -> list:
    """pytest params (name, size, lang) for every name × size × language, with readable ids."""
    return [pytest.param(n, size, lang, id=f"{n}-{size[0]}x{size[1]}-{lang}")
            for n in names for size in SIZES for lang in LANGS]


def check(surface: pygame.Surface, kind: str, name: str, lang: str) -> None:
    """Compare ``surface`` with its golden (or write it with KIOSK_UPDATE_GOLDEN=1)."""
    path = path_for(kind, surface.get_size(), name, lang)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(surface, str(path))
        return
    assert path.exists(), f"no golden {path.relative_to(ROOT)}: run with KIOSK_UPDATE_GOLDEN=1 and look at it"
    result = compare_images(surface, pygame.image.load(str(path)))
    assert result.ok, f"{path.relative_to(ROOT)}: {result.detail}"


def names_on_disk(kind: str) -> dict[tuple[tuple[int, int], str], set[str]]:
    """{(size, lang): names} of the goldens stored for ``kind``."""
    out: dict[tuple[tuple[int, int], str], set[str]] = {}
    for size in SIZES:
        for lang in LANGS:
            folder = ROOT / kind / f"{size[0]}x{size[1]}"
            out[(size, lang)] = {p.name[: -len(f".{lang}.png")] for p in folder.glob(f"*.{lang}.png")}
    return out


def sheet(out_dir: Path = Path("build/golden-sheets")) -> list[Path]:
    """One contact sheet per name: ja/en across, 720p/1080p down, each scaled to 960×540 (for review by eye)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind_dir in sorted(p for p in ROOT.iterdir() if p.is_dir()):
        names = set().union(*names_on_disk(kind_dir.name).values())
        for name in sorted(names):
            s = pygame.Surface((1920 + 8, 1080 + 8))
            s.fill((255, 0, 255))
            for row, size in enumerate(SIZES):
                for col, lang in enumerate(LANGS):
                    p = path_for(kind_dir.name, size, name, lang)
                    if p.exists():
                        img = pygame.transform.smoothscale(pygame.image.load(str(p)), (960, 540))
                        s.blit(img, (col * 968, row * 548))
            target = out_dir / f"{kind_dir.name}-{name}.png"
            pygame.image.save(s, str(target))
            written.append(target)
    return written


if __name__ == "__main__" and sys.argv[1:] == ["sheet"]:
    for p in sheet():
        print(p)

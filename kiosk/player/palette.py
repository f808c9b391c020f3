"""Colours and the vendored font's folder, shared by the kiosk's slides and the portal's movie maker.

Plain values with no display library behind them: the movie maker runs in the portal's child process,
which has neither pygame nor a screen.
"""

from __future__ import annotations

from pathlib import Path

# A path, not an import: the player sits below the UI.
ASSET_FONTS = Path(__file__).resolve().parent.parent / "ui" / "assets" / "fonts"

# Policy-area colours: also the demo title-card backgrounds, so a slide is never black.
AREA_COLOURS: dict[str, tuple[int, int, int]] = {
    "children": (236, 128, 44),
    "welfare": (32, 150, 140),
    "green": (58, 142, 62),
    "culture": (128, 76, 168),
    "town": (40, 104, 186),
}

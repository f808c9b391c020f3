"""App and screen tests: SDL's dummy drivers, sample screen data and a stand-in movie frame."""

from __future__ import annotations

import os

# Before pygame is imported anywhere: no window, no sound card, no banner.
os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"
os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # for app_samples

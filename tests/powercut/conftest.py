"""Fixtures for the power-cut tests: a directory mounted through the power-cut filesystem (powercutfs.py).

Every test here needs FUSE (/dev/fuse, fusermount3, libfuse3 and the mfusepy binding); without it they
are skipped, saying which part is missing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for powercutfs and campaign

from powercutfs import PowerCutMount, fuse_unavailable  # noqa: E402


@pytest.fixture
def pcfs(tmp_path: Path) -> Iterator[PowerCutMount]:
    why = fuse_unavailable()
    if why:
        pytest.skip(why)
    m = PowerCutMount(tmp_path / "backing", tmp_path / "mnt").mount()
    try:
        yield m
    finally:
        m.unmount()

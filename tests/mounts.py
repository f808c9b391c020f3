"""A real, small file system for the tests that fill a disk (the ledger failing closed, atomic writes on a full
disk): a tmpfs of a given size, mounted for the test and gone after. Mounting needs root (CI runs as root);
elsewhere the test is skipped, saying so."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "2m") -> Iterator[Path]:
    """``where`` (made here) as a tmpfs of ``size`` bytes (mount's suffixes: ``640k``, ``2m``)."""
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)

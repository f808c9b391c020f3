"""A real, small file system for the tests that fill a disk (the ledger failing closed, atomic writes on a full
disk): a tmpfs of a given size, mounted for the test and gone after. Mounting needs root (CI runs as root);
elsewhere the test is skipped, saying so."""

from __future__ import annotations

import contextlib
import errno
import os
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


def fill(d: Path, leave: int = 0) -> Path:
    """Take every free byte of ``d``'s file system (but about ``leave``) with one file, ``d/filler``, as a growing
    log or another program would; returns it (unlink it to give the room back)."""
    filler = d / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        if leave:
            st = os.statvfs(d)
            os.write(fd, b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
        else:
            for size in (65536, 4096, 512, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler

"""Real, small file systems for the tests that fill a disk (the ledger failing closed, atomic writes on a full
disk): a tmpfs of a given size, mounted for the test and gone after; and for the tests of a disk that fails (a
dying SD card): an ext4 on a loop device that the kernel turns read-only on its first error. Mounting needs root
(CI runs as root); elsewhere the test is skipped, saying so."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
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


@contextlib.contextmanager
def failing_ext4(where: Path, size_mb: int = 32, image: Path | None = None) -> Iterator[Path]:
    """Mount a new ext4 of ``size_mb`` (a sparse file, ``image`` or ``where.img``) at ``where``; yield the sysfs
    file whose write makes the kernel see an error and turn it read-only (ext4's ``trigger_fs_error``), as a
    dying card does. Unmounted afterwards."""
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("needs mkfs.ext4 (e2fsprogs)")
    img = image or where.with_suffix(".img")
    with open(img, "wb") as f:
        f.truncate(size_mb * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True, capture_output=True)
    where.mkdir()
    r = subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(img), str(where)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a loop device here (needs root and loop devices): {r.stderr.decode().strip()}")
    try:
        point = str(where).replace(" ", "\\040")  # /proc/mounts writes a space as \040
        dev = next(line.split()[0] for line in Path("/proc/mounts").read_text().splitlines()
                   if line.split()[1] == point)
        trigger = Path(f"/sys/fs/ext4/{Path(dev).name}/trigger_fs_error")
        if not trigger.exists():
            pytest.skip(f"this kernel has no {trigger}")
        yield trigger
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)

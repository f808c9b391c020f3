"""The menu's own status measurement (MenuServices.measure without the app's status inputs: the menu run on its own)
says a data disk that cannot be written is the red disk line, as the app's does (docs/reliability.md).

Before, that fallback read the free space only, so a read-only disk showed green with its free megabytes.
Real parts: a real read-only bind mount of the data directory (root only: skipped elsewhere, saying why).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kiosk.ops.status import status_items

from .conftest import build_rig


def _read_only_view(src: Path, at: Path) -> None:
    at.mkdir()
    subprocess.run(["mount", "--bind", str(src), str(at)], check=True, capture_output=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(at)], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        subprocess.run(["umount", str(at)], check=False)
        raise


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only bind mount needs root (CI runs as root)")
def test_the_menus_own_measurement_calls_a_read_only_data_dir_red(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    ro = tmp_path / "data-ro"
    try:
        _read_only_view(data, ro)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot make a read-only bind mount here: {exc}")
    try:
        rig = build_rig(tmp_path / "rig", status_inputs=None, data_dir=ro)
        try:
            x = rig.services.measure()
            assert x.disk_writable is False
            disk = next(i for i in status_items(x, rig.ops.status) if i.key == "disk")
            assert (disk.level, disk.value) == ("red", "read-only: nothing can be saved")

            writable = build_rig(tmp_path / "rig2", status_inputs=None, data_dir=data).services.measure()
            assert writable.disk_writable is True  # the same directory, writable: not red
        finally:
            rig.ledger.close(checkpoint=False)
    finally:
        subprocess.run(["umount", str(ro)], check=False)

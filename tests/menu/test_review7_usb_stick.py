"""The USB export with a stick that will not take the files: one whose lock switch is on, and one that turns
read-only while staff are on the page (FAT does so on an error it finds).

A stick the kernel mounts read-only was left out of the list, so the page said 「USBメモリが見つかりません。差し込ん
でから…」 to staff holding it in the slot; and a stick that refused the write was said with the operating system's
English (「USBメモリに書き込めません: Read-only file system」). Real parts: a real ext4 on a loop device mounted below
the rig's mount root (the kernel's own /proc/mounts finds it, as on the kiosk), the real menu and export_day.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Rig
from .test_menu_words import english_words


@contextlib.contextmanager
def stick_at(where: Path, *, read_only: bool) -> Iterator[Path]:
    """A 4 MB ext4 (one of the kiosk's removable file systems) on a loop device, mounted at ``where``."""
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("needs mkfs.ext4 (e2fsprogs)")
    where.parent.mkdir(parents=True, exist_ok=True)
    img = where.parent / (where.name + ".img")
    with open(img, "wb") as f:
        f.truncate(4 * 1_048_576)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True, capture_output=True)
    where.mkdir()
    r = subprocess.run(["mount", "-o", "loop,ro" if read_only else "loop", str(img), str(where)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a loop device here (needs root): {r.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def _real_sticks(rig: Rig, media: Path) -> None:
    """The menu finds sticks itself (no fake list): the kernel's mount table, below ``media``."""
    rig.services.find_sticks = None
    rig.services.ops = dataclasses.replace(
        rig.ops, export=rig.ops.export.model_copy(update={"mount_roots": [str(media)]}))


def test_a_locked_stick_is_listed_as_read_only_and_said_in_plain_japanese(rig: Rig, tmp_path: Path) -> None:
    media = tmp_path / "media"
    with stick_at(media / "kiosk" / "sdb1", read_only=True) as stick:
        _real_sticks(rig, media)
        rig.open()
        rig.menu.model.press("go", "usb")
        view = rig.view()
        text = "\n".join(view.lines)
        assert "見つかりません" not in text, f"a stick in the slot said to be missing: {text}"
        assert [b.label for b in view.buttons] == ["sdb1"] and view.buttons[0].detail == "書き込み禁止"
        rig.menu.model.press("usb_export", 0)
        view = rig.view()
        assert view.page == "usb" and view.notice_level == "red"
        assert "書き込み禁止" in view.notice and "スイッチ" in view.notice, view.notice
        assert not english_words(view.notice), view.notice
        assert [p.name for p in stick.iterdir()] == ["lost+found"]  # nothing written


def test_a_stick_that_turned_read_only_is_said_in_plain_japanese(rig: Rig, tmp_path: Path) -> None:
    media = tmp_path / "media"
    with stick_at(media / "kiosk" / "sdb1", read_only=False) as stick:
        _real_sticks(rig, media)
        rig.donate(1, "kodomo", 500)
        rig.open()
        rig.menu.model.press("go", "usb")
        assert rig.view().buttons[0].detail.startswith("空き")
        subprocess.run(["mount", "-o", "remount,ro", str(stick)], check=True)  # what FAT does after an error
        rig.menu.model.press("usb_export", 0)
        view = rig.view()
        assert view.page == "usb_done" and view.notice_level == "red"
        assert not english_words(view.notice), f"the operating system's English on a Japanese page: {view.notice}"
        assert "書き込み禁止" in view.notice and "別のUSBメモリ" in view.notice, view.notice
        audit = rig.admin()[-1]
        assert audit["action"] == "usb_export" and "read-only" in audit["outcome"], audit  # English for the trail

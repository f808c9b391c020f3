"""A USB stick pulled out after the stick list was drawn: the export must not land on the kiosk's own disk
(review 8).

`export_day` only checked that the stick's folder existed. When the stick is pulled its mount point folder may
stay behind (or something else is mounted there), so the export was written onto the kiosk's own disk and the
page said 「書き出しました。USBメモリを抜いてかまいません」: staff left believing they carried it. Now the kernel's
mount table is read again right before writing: the device listed must still be mounted read-write there.
Real parts: a real ext4 on a loop device (tests/menu/test_review7_usb_stick.py's ``stick_at``), the real mount
table, the real menu and export_day (the menu's own export, not a test's).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import Rig
from .test_menu_words import english_words
from .test_review7_usb_stick import _real_sticks, stick_at


def _listed(rig: Rig, media: Path) -> None:
    _real_sticks(rig, media)
    rig.services.export = None  # the menu's own export: export_day with the stick as listed
    rig.donate(1, "kodomo", 500)
    rig.open()
    rig.menu.model.press("go", "usb")
    assert [b.label for b in rig.view().buttons] == ["sdb1"]


def _refused(rig: Rig, folder: Path) -> None:
    rig.menu.model.press("usb_export", 0)
    view = rig.view()
    assert view.page == "usb_done" and view.notice_level == "red", (view.page, view.notice)
    assert "書き出しました" not in view.notice and "見つかりません" in view.notice, view.notice
    assert "挿し直して" in view.notice and not english_words(view.notice), view.notice
    assert not [p.name for p in folder.iterdir() if p.name.startswith("kiosk-")], list(folder.iterdir())
    audit = rig.admin()[-1]
    assert audit["action"] == "usb_export" and "no longer there" in audit["outcome"], audit


def test_a_stick_pulled_after_the_list_leaves_nothing_on_the_kiosk_disk(rig: Rig, tmp_path: Path) -> None:
    media = tmp_path / "media"
    with stick_at(media / "kiosk" / "sdb1", read_only=False) as stick:
        _listed(rig, media)
        subprocess.run(["umount", str(stick)], check=True)  # pulled: the mount point folder stays behind
        _refused(rig, stick)


def test_something_else_mounted_there_is_not_the_stick(rig: Rig, tmp_path: Path) -> None:
    media = tmp_path / "media"
    with stick_at(media / "kiosk" / "sdb1", read_only=False) as stick:
        _listed(rig, media)
        subprocess.run(["umount", str(stick)], check=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(stick)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
        try:
            _refused(rig, stick)
        finally:
            subprocess.run(["umount", str(stick)], check=False)


def test_the_stick_still_there_is_written(rig: Rig, tmp_path: Path) -> None:
    media = tmp_path / "media"
    with stick_at(media / "kiosk" / "sdb1", read_only=False) as stick:
        _listed(rig, media)
        rig.menu.model.press("usb_export", 0)
        assert rig.view().notice_level == "green", rig.view().notice
        folder = next(p for p in stick.iterdir() if p.name.startswith("kiosk-"))
        assert (folder / "ledger.jsonl").stat().st_size > 0 and (folder / "MANIFEST.txt").exists()

"""The staff USB export, refused for good by values that are not card IDs, and a stick that fills up.

The export refuses a ledger that holds an IDm-shaped value (16 hex digits) and the ledger is append-only, so a
false alarm stands for every later export of that kiosk (kiosk/staff/usb_export.py, docs/menu.md). Real parts: the
real maintenance menu (tests/menu/conftest.py's rig), a real ledger, the real ``export_day`` onto a real small tmpfs
as the stick.
"""

from __future__ import annotations

import re

import pytest

from kiosk.ledger import verify_path
from kiosk.staff.usb_export import Stick, UsbExportError, export_day
from tests.mounts import small_tmpfs
from tests.sync.sync_helpers import make_rig


def test_usb_export_still_works_after_staff_switched_a_clip_off_in_the_menu(tmp_path):
    """Staff switch a clip off on the menu's playlist page (its id is the first 16 hex digits of the clip's SHA-256,
    as `kiosk media list` prints it), then export the day to a stick. The export must not be refused as holding a
    card ID: the ledger is append-only, so a refusal would stand for every export of this kiosk from then on."""
    import pygame

    from tests.menu.conftest import build_rig

    pygame.init()
    rig = build_rig(tmp_path)
    try:
        rig.donate(1, "kodomo", 500)
        rig.open()
        rig.touch("go", "playlist")
        rig.touch("toggle", 0)
        assert rig.actions()[-1] == "playlist_disable"
        rig.touch("back")
        rig.touch("go", "usb")
        rig.touch("usb_export", 0)
        assert rig.menu.page == "usb_done"
        assert rig.view().notice_level == "green", f"export refused: {rig.view().notice}"
    finally:
        rig.ledger.close(checkpoint=False)



def test_usb_export_works_for_a_kiosk_named_by_its_raspberry_pi_serial(tmp_path):
    """A site names each kiosk by its Raspberry Pi's serial number (/proc/cpuinfo: 16 hex digits), which the kiosk
    id's pattern allows. Every ledger entry carries the kiosk id; the export must not be refused as holding a
    card ID, for every export of that kiosk, for ever."""
    rig = make_rig(tmp_path, "10000000a3b5c7d9")
    try:
        rig.donate(3)
        with small_tmpfs(tmp_path / "stick", "4m") as stick:
            try:
                r = export_day(stick, rig.ledger.path, kiosk_id=rig.kiosk_id, logs=None)
            except UsbExportError as exc:
                pytest.fail(f"export refused for kiosk {rig.kiosk_id}: {exc}")
            assert verify_path(r.directory / "ledger.jsonl").ok
    finally:
        rig.ledger.close(checkpoint=False)

def test_a_stick_that_fills_up_during_the_export_is_said_in_japanese_with_what_to_do(tmp_path):
    """The stick passes the free-space check (made from the ledger's size alone) but fills up while the day's log
    is written. Nothing is left on it (sound); the Japanese menu must then say in Japanese that the stick is full,
    not put the operating system's English words ("No space left on device") into the sentence."""
    import pygame

    from tests.menu.conftest import build_rig

    pygame.init()
    rig = build_rig(tmp_path)
    line = "2026-12-06T10:00:00+0900 kiosk[812]: INFO kiosk.player switched clip, gap 31 ms " + "x" * 60
    with small_tmpfs(tmp_path / "stick", "4m") as stick:
        def big_day_log(start_ms: int, end_ms: int) -> list[str]:  # journalctl's answer: a busy day's log
            return [line] * 40_000  # about 6 MB

        rig.services.export = lambda path: export_day(path, rig.ledger.path, kiosk_id=rig.cfg.kiosk.id,
                                                      timezone=rig.cfg.kiosk.timezone, logs=big_day_log)
        rig.services.find_sticks = lambda: [Stick(stick, "/dev/sda1", "vfat", free_bytes=4 * 1_048_576)]
        try:
            rig.donate(1, "kodomo", 500)
            rig.open()
            rig.touch("go", "usb")
            rig.touch("usb_export", 0)
            assert rig.menu.page == "usb_done" and rig.view().notice_level == "red"
            assert list(stick.iterdir()) == [], "a half export was left on the stick"
            notice = rig.view().notice
            assert not re.search(r"[A-Za-z]{3,}", notice.replace("USB", "")), \
                f"the Japanese menu shows English words for a full stick: {notice}"
        finally:
            rig.ledger.close(checkpoint=False)

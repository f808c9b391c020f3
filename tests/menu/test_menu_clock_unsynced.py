"""A Z report of a day the kiosk's clock was not synchronised says so (issue #19, "Clocks"): in the signed
close_out entry (``clock_unsynced``), on the menu's X and Z pages (a line from the page model), and in the
CLI's bilingual lines. A synced day carries no such key and no such line."""

from __future__ import annotations

import csv
import io
import os

import pygame
import pytest

from kiosk.ledger.report import settled_report
from kiosk.staff.closeout import closeout_csv, summary_lines

SHOTS = os.environ.get("KIOSK_MENU_SHOTS")  # a directory: save the Z page as PNG to look at by eye


def go(rig, *steps: tuple) -> None:  # noqa: ANN001
    for action, *value in steps:
        rig.touch(action, *value)


def _z(rig) -> dict:  # noqa: ANN001
    rig.open()
    go(rig, ("go", "z_confirm"), ("z_run",))
    assert rig.menu.page == "z_done"
    return next(e for e in rig.ledger.iter_entries() if e.type == "close_out").data


def test_a_z_report_of_an_unsynced_day_says_so(rig):
    rig.wall.is_synced = False  # a Pi that booted without network: its clock is its own guess
    rig.donate(1, "kodomo", 500)
    rig.donate(2, "midori", 1000)
    rig.wall.is_synced = True  # NTP came back: this one is dated right
    rig.donate(3, "kodomo", 100)
    day = rig.ledger.business_date()
    assert settled_report(((e.seq, e.obj) for e in rig.ledger.iter_entries()), day)["clock_unsynced"] == 2
    data = _z(rig)
    assert data["clock_unsynced"] == 2 and data["count"] == 3
    text = rig.view().text
    assert "時計未同期の日（寄付 2 件）" in text, text
    if SHOTS:
        for size in ((640, 360), (1280, 720)):
            surface = pygame.Surface(size)
            rig.menu.render(surface, 0)
            pygame.image.save(surface, os.path.join(SHOTS, f"z_unsynced_{size[0]}.png"))
    # The CLI (`kiosk closeout`) prints the bilingual form, and the USB export's CSV has a row for it.
    assert any("時計未同期の日" in line and "clock not synced" in line for line in summary_lines(data))
    rows = list(csv.reader(io.StringIO(closeout_csv(data).lstrip("\ufeff"))))
    assert [r[4] for r in rows if r[1] == "clock_unsynced"] == ["2"]


def test_a_synced_day_has_no_clock_line(rig):
    rig.donate(1, "kodomo", 500)
    data = _z(rig)
    assert "clock_unsynced" not in data
    assert "時計未同期" not in rig.view().text
    assert not any("clock not synced" in line for line in summary_lines(data))
    assert "clock_unsynced" not in closeout_csv(data)


@pytest.mark.parametrize("lang,words", [("ja", "時計未同期の日（寄付 1 件）"),
                                        ("en", "Clock not synced on this day (1 donation): the date may be off")])
def test_the_x_report_says_so_too_in_the_staffs_language(rig, lang, words):
    rig.machine.language = lang
    rig.wall.is_synced = False
    rig.donate(1, "kodomo", 500)
    rig.open()
    go(rig, ("go", "x_report"))
    assert words in rig.view().text
    if SHOTS:
        surface = pygame.Surface((640, 360))
        rig.menu.render(surface, 0)
        pygame.image.save(surface, os.path.join(SHOTS, f"x_unsynced_640_{lang}.png"))

"""Issue #15: what staff saw in the maintenance menu, each fixed and checked through a real menu on a real ledger."""

from __future__ import annotations

import dataclasses

from kiosk.ops.status import overall, status_items
from kiosk.staff.menu import model as m

from .conftest import STATUS


def _open_to(rig, *steps: tuple) -> None:
    rig.open()
    for action, *value in steps:
        rig.menu.model.press(action, *value)


def test_pin_dashes_stay_while_typing(rig):
    """Item 14: the four dashes vanished at the first digit; typed digits replace them one by one."""
    for _ in range(5):
        rig.menu.hidden_gesture((3, 3), 0)
    assert rig.view().big == "_ _ _ _"
    rig.key("2")
    assert rig.view().big == "● _ _ _"
    rig.key("4")
    assert rig.view().big == "● ● _ _"


def test_points_and_volume_pages_do_not_open_with_focus_on_minus_ten(rig):
    """Item 14: a stray Enter on the opened page pressed "−10"."""
    _open_to(rig, ("go", "volunteer"), ("activity", "park-cleanup"))
    assert rig.menu.page == m.VOL_POINTS
    focused = rig.view().all_buttons[rig.menu.model.focus]
    assert focused.action == "points_ok", focused
    rig.menu.model.press("back")
    rig.menu.model.press("back")
    rig.menu.model.press("go", "volume")
    assert rig.menu.page == m.VOLUME
    before = rig.menu.model.volume
    focused = rig.view().all_buttons[rig.menu.model.focus]
    assert focused.action != "volume", focused
    rig.key("enter")
    assert rig.menu.model.volume == before


def test_plus_ten_past_the_maximum_says_why_it_stopped(rig):
    """Item 14: "+10" capped at the activity's maximum in silence."""
    _open_to(rig, ("go", "volunteer"), ("activity", "park-cleanup"))  # max 50
    for _ in range(6):
        rig.menu.model.press("points", 10)
    assert rig.menu.model.points == 50
    assert "50" in rig.view().notice and rig.view().notice_level == "yellow"


def test_donations_after_the_close_out_are_flagged_on_the_x_page(rig):
    """Item 6: after a Z, later gifts left the X page on a green "this day is closed"."""
    rig.donate(1, "kodomo", 500)
    _open_to(rig, ("go", "z_confirm"), ("z_run",))
    rig.menu.model.press("back")
    rig.menu.model.press("go", "x_report")
    assert rig.view().notice_level == "green"
    rig.donate(2, "midori", 1000)
    rig.menu.model.press("back")
    rig.menu.model.press("go", "x_report")
    view = rig.view()
    assert view.notice_level == "yellow" and "1" in view.notice, view.notice


def test_x_report_lines_are_plain_japanese_without_debug_text(rig):
    """Item 8: "件数 count 4 合計 total ¥800 points 8", "seq None..None" and "[sim]" on the staff screen."""
    _open_to(rig, ("go", "x_report"))
    empty = "\n".join(rig.view().lines)
    assert "None" not in empty and "seq" not in empty
    rig.donate(1, "kodomo", 500)
    rig.menu.model.press("back")
    rig.menu.model.press("go", "x_report")
    text = "\n".join(rig.view().lines)
    for debug in ("count", "total", "points", "seq", "[sim]"):
        assert debug not in text, (debug, text)
    assert "1 件" in text and "模擬端末" in text


def test_an_unreadable_temperature_does_not_keep_the_status_yellow():
    """Item 9: a machine without a temperature sensor was permanently yellow, so staff learned to ignore yellow."""
    items = status_items(dataclasses.replace(STATUS, soc_temp_c=None, dropped_frames_per_min=0.0,
                                             disk_free_bytes=50_000 * 1_048_576))
    temp = next(i for i in items if i.key == "temperature")
    assert temp.level == "green"
    assert overall(items) == overall(status_items(dataclasses.replace(
        STATUS, soc_temp_c=40.0, dropped_frames_per_min=0.0, disk_free_bytes=50_000 * 1_048_576)))


def test_status_values_are_plain_japanese_with_something_to_do(rig):
    """Item 8: "connected", "0 dropped frames/min" in English on a Japanese menu; "unknown" with nothing to do."""
    _open_to(rig, ("go", "status"))
    text = rig.view().text
    for english in ("connected", "dropped frames", "pending", "entries, last seq", "MB free", "last tap"):
        assert english not in text, (english, text)
    assert "接続中" in text and "コマ落ち" in text and "25分前" in text
    unknown = dataclasses.replace(STATUS, network_up=None, portal_reachable=None, enrolled=None)
    rig.services.status_inputs = lambda: unknown
    rig.menu.model.press("refresh")
    worst = next(i for i, item in enumerate(rig.menu.model.status) if item.value == "unknown")
    rig.menu.model.press("status_item", worst)
    lines = rig.view().lines
    # What staff can do (Refresh, then call), and the technician's command apart, on the last, 詳細 line (s54).
    assert lines and "更新" in lines[-2] and "kiosk doctor" not in lines[-2], lines
    assert lines[-1].startswith("詳細（保守担当者向け）：") and "kiosk doctor" in lines[-1], lines
    rig.machine.language = "en"
    rig.menu.model.press("back")
    assert "Connected (last card: Suica)" in rig.view().text  # the brand, not the raw family id


def test_a_grid_of_menu_buttons_shares_one_label_size(rig):
    """Item 14: labels in one grid were drawn at wildly different sizes (each shrunk to its own button)."""
    import pygame

    from kiosk.ui import widgets as ui

    for lang in ("ja", "en"):
        rig.machine.language = lang
        if rig.menu.page is None:
            rig.open()
        surface = pygame.Surface((1280, 720))
        with ui.measure_text() as drawn:
            rig.menu.render(surface, 0)
        labels = {b.label for b in rig.view().buttons}
        sizes = {size for size, text in drawn if text in labels}
        assert len(sizes) == 1, (lang, sorted((s, t) for s, t in drawn if t in labels))


def test_sync_now_answers_in_plain_words(rig):
    """Item 8: the sync page said "0 pending, accepted through seq 27" (the uploader's debug words)."""
    _open_to(rig, ("go", "sync"), ("sync_run",))
    notice = rig.view().notice
    assert notice == "同期しました。送信待ち: 0 件", notice
    assert "pending" not in rig.view().text and "seq" not in rig.view().text
    assert rig.actions()[-1] == "sync_now" and "uploaded" in rig.admin()[-1]["result"]  # kept for the audit

"""s54: the status rows' what-to-do lines ask staff only for what they can do at a touch screen or on the portal.

The device menu is for center staff; the lobby kiosk has a touch screen and no keyboard. Its status rows said
「端末で `kiosk doctor` を実行してください」 (a reader fault, a value not known yet),
「端末を登録してください（`kiosk doctor` に手順が出ます）」,
「動画を…取り込み直してください（`kiosk media import`）」, and for a disk filling up only
「早めに空き容量を増やしてください」 (red: 「USBに書き出してから、古いログと書き出しを消してください」, though a
USB export is written to the stick and frees nothing on the kiosk, and staff cannot remove logs). Now each says
what staff can do (a button by its on-screen name, the portal's playlists, whom to call), and a command is only
on the details line for the technician (詳細（保守担当者向け）：…). `kiosk status` keeps its command-line hints.

A kiosk that failed closed now says why (its ledger could not be written, or a fault in its program), read from
the running kiosk's donation worker.

Real parts: the real menu drawn headless over the status page's real model; a real ``App`` whose donation worker
stopped (as tests/menu/test_s54_payment_plain.py).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.ops.status import StatusInputs, status_items

from .conftest import STATUS, Rig, build_rig
from .test_menu_status_japanese import DETAILS_JA
from .test_menu_words import drawn, english_words

COMMAND = re.compile(r"`|kiosk (doctor|media|payment|status)|journalctl|\bdu -")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = build_rig(tmp_path / "menu")
    yield r
    r.ledger.close(checkpoint=False)


def _pages(rig: Rig, inputs: StatusInputs, lang: str = "ja") -> dict[str, list[str]]:
    """Every row's page (its lines) as the menu draws it over ``inputs``, by the row's key."""
    rig.machine.language = lang
    rig.services.status_inputs = lambda: inputs
    if not rig.menu.model.is_open:
        rig.open()
    rig.menu.model.press("go", "status")
    out = {}
    for n, item in enumerate(list(rig.menu.model.status)):
        rig.menu.model.press("status_item", n)
        assert "\n".join(t for _, t in drawn(rig))  # the page draws
        out[item.key] = list(rig.view().lines)
        rig.menu.model.press("back")
    return out


def _staff_lines(lines: list[str]) -> list[str]:
    return [t for t in lines if not t.startswith(DETAILS_JA)]


def _tech(lines: list[str]) -> str:
    tech = [t for t in lines if t.startswith(DETAILS_JA)]
    assert len(tech) <= 1, lines
    return tech[0] if tech else ""


# Each state: the rows whose CLI hint names a command, and the row's key.
COMMANDS = {
    "reader": dict(reader_state="missing", reader_detail=""),
    "network": dict(enrolled=False),
    "player": dict(dropped_frames_per_min=90.0, switch_gap_ms=500.0),
    "disk": dict(ledger_entries=None, disk_free_bytes=None, network_up=None, portal_reachable=None, enrolled=None),
}


@pytest.mark.parametrize("key", sorted(COMMANDS))
def test_no_row_asks_staff_to_type_a_command(rig, key):
    """The what-to-do lines say a button, the portal or whom to call; a command only on the technician's line."""
    inputs = dataclasses.replace(STATUS, **COMMANDS[key])
    cli = {i.key: i for i in status_items(inputs)}
    pages = _pages(rig, inputs)
    assert cli[key].level != "green", cli[key]
    for row, lines in pages.items():
        staff = _staff_lines(lines)
        assert not any(COMMAND.search(t) for t in staff), (row, lines)
        assert not any(english_words(t) for t in staff), (row, lines)
    lines = pages[key]
    assert _staff_lines(lines)[1:], lines  # 対処： and something to do
    # The command the CLI's hint names is still there, for the technician, on the last line.
    assert COMMAND.search(lines[-1]) and lines[-1] == _tech(lines), lines


def test_a_value_not_known_yet_says_refresh_then_whom_to_call(rig):
    unknown = dataclasses.replace(STATUS, network_up=None, portal_reachable=None, enrolled=None)
    lines = _pages(rig, unknown)["network"]
    todo = " ".join(_staff_lines(lines))
    assert "「更新」" in todo and "設定をした担当者" in todo and "kiosk" not in todo, lines
    assert "kiosk doctor" in _tech(lines), lines
    # `kiosk status` (the technician's, over ssh) keeps nothing less: the row has no hint of its own there.
    assert next(i for i in status_items(unknown) if i.key == "network").value == "unknown"


def test_a_reader_not_found_says_check_the_cable_then_refresh(rig):
    lines = _pages(rig, dataclasses.replace(STATUS, reader_state="missing", reader_detail=""))["reader"]
    todo = " ".join(_staff_lines(lines))
    assert "USBケーブル" in todo and "「更新」" in todo and "設定をした担当者" in todo, lines
    assert "kiosk doctor" in _tech(lines), lines
    cli = next(i for i in status_items(dataclasses.replace(STATUS, reader_state="missing")) if i.key == "reader")
    assert "`kiosk doctor`" in cli.hint, cli  # the technician's hint in `kiosk status` stays


def test_a_kiosk_not_enrolled_sends_staff_to_the_portal_administrator(rig):
    lines = _pages(rig, dataclasses.replace(STATUS, enrolled=False))["network"]
    todo = " ".join(_staff_lines(lines))
    assert "ポータルの管理者" in todo and "寄付は端末に保存されています" in todo, lines
    assert "kiosk doctor" in _tech(lines), lines


def test_movie_playback_says_donations_are_not_affected_and_whom_to_tell(rig):
    for dropped, gap in ((90.0, 500.0), (2.0, 35.0)):
        lines = _pages(rig, dataclasses.replace(STATUS, dropped_frames_per_min=dropped, switch_gap_ms=gap))["player"]
        todo = " ".join(_staff_lines(lines))
        assert "寄付には影響しません" in todo and "設定をした担当者" in todo, lines
        assert "kiosk media import" in _tech(lines), lines


# --- the disk: what fills it and what staff can do -------------------------------------------------------------

@pytest.mark.parametrize("free_mb", [900, 100])
def test_a_disk_filling_up_says_what_fills_it_and_what_to_do(rig, free_mb):
    """The movies fill a kiosk's disk (a USB export is written to the stick and frees nothing on the kiosk): on the
    portal, take the videos this kiosk no longer shows out of its playlists, and the kiosk deletes them."""
    inputs = dataclasses.replace(STATUS, disk_free_bytes=free_mb * 1_048_576)
    disk = next(i for i in status_items(inputs) if i.key == "disk")
    assert disk.level == ("yellow" if free_mb == 900 else "red"), disk
    lines = _pages(rig, inputs)["disk"]
    todo = " ".join(_staff_lines(lines))
    assert "動画" in todo and "ポータル" in todo and "「プレイリスト」" in todo and "消" in todo, lines
    assert "設定をした担当者" in todo and "USB" not in todo and "ログ" not in todo, lines
    if free_mb == 100:
        assert "寄付" in todo, lines  # why it matters: a full disk stops donations
    # `kiosk status`: not "remove old exports" (there are none on the kiosk), what fills it.
    assert "export" not in disk.hint and "media" in disk.hint, disk.hint


def test_a_kiosk_without_a_portal_is_not_sent_to_the_portal_for_its_disk(rig):
    inputs = dataclasses.replace(STATUS, portal_configured=False, disk_free_bytes=900 * 1_048_576)
    lines = _pages(rig, inputs)["disk"]
    todo = " ".join(_staff_lines(lines))
    assert "ポータル" not in todo and "設定をした担当者" in todo and "動画" in todo, lines


def test_the_english_menu_says_the_same_without_commands(rig):
    inputs = dataclasses.replace(STATUS, reader_state="missing", reader_detail="", enrolled=False,
                                 disk_free_bytes=100 * 1_048_576, dropped_frames_per_min=90.0)
    pages = _pages(rig, inputs, "en")
    for key in ("reader", "network", "disk", "player"):
        staff = [t for t in pages[key] if not t.startswith("Details (for the maintainer): ")]
        assert staff[1:] and not any(COMMAND.search(t) for t in staff), (key, pages[key])
    assert any("Playlists" in t for t in pages["disk"]), pages["disk"]


# --- a paired Square terminal that Square says is off: the same verdict for `kiosk status` and the menu ------------

@pytest.mark.parametrize("category", ["OFFLINE", "NEEDS_ATTENTION"])
def test_kiosk_status_does_not_call_a_terminal_square_says_is_off_ready(category):
    x = dataclasses.replace(STATUS, payment_state="ready", payment_detail=f"device dev-1 ({category}); no checkout yet")
    pay = next(i for i in status_items(x) if i.key == "payment")
    assert pay.level == "yellow" and pay.hint, pay
    assert pay.value == f"ready: device dev-1 ({category}); no checkout yet", pay  # Square's words, as before
    ok = dataclasses.replace(x, payment_detail="device dev-1 (AVAILABLE); no checkout yet")
    assert next(i for i in status_items(ok) if i.key == "payment").level == "green"


# --- a kiosk that failed closed says why -----------------------------------------------------------------------

def _failed_app_page(tmp_path: Path, exc: BaseException) -> tuple[str, list[str], Any]:
    import pygame

    from kiosk.app.runtime import App
    from kiosk.ledger import Pepper
    from kiosk.ops.local_files import ensure_secrets
    from kiosk.reader.sim import preset_idm
    from kiosk.ui import widgets as ui
    from tests.app.drive import headless_cfg, run_until

    cfg = headless_cfg(tmp_path / "data", (320, 180))
    cfg.kiosk.language = "ja"
    ensure_secrets(cfg)
    token = Pepper.load(cfg.pepper_path).token(preset_idm("suica"))
    cfg.staff.staff_tokens.append(token.hex)
    with App(cfg, sound=False) as app:
        def boom(svc: Any) -> None:
            raise exc

        app.submit(boom)
        run_until(app, lambda p: app.failed)
        menu = app.staff.menu
        assert menu.open_by_card(token)
        menu.model.press("go", "status")
        row = next(n for n, i in enumerate(menu.model.status) if i.key == "ledger")
        menu.model.press("status_item", row)
        view = menu.view()
        with ui.measure_text() as strings:
            menu.render(pygame.Surface((1280, 720)), 0)
        assert view.big in [t for _, t in strings]
        return view.big, list(view.lines), menu.model.status[row]


def test_a_kiosk_stopped_by_a_ledger_write_error_says_so(tmp_path):
    from kiosk.ledger import LedgerUnavailable

    big, lines, item = _failed_app_page(
        tmp_path, LedgerUnavailable("ledger write failed, nothing recorded: database or disk is full", disk_full=True))
    todo = " ".join(_staff_lines(lines))
    assert big == "停止中：寄付を安全に記録できません", big
    assert "保存できなかった" in todo and "「ディスクの空き」" in todo and "プログラム" not in todo, lines
    assert "貼り紙" in todo and "運用担当に連絡" in todo and not COMMAND.search(todo), lines
    assert re.match(DETAILS_JA + r"\d+ 件", lines[-1]) and "kiosk doctor" in lines[-1], lines
    assert "disk" in item.hint  # `kiosk status`'s words, if it were asked (the running kiosk's own)


def test_a_kiosk_stopped_by_a_fault_in_its_program_says_so(tmp_path):
    big, lines, _item = _failed_app_page(tmp_path, RuntimeError("a bug in the service"))
    todo = " ".join(_staff_lines(lines))
    assert big == "停止中：寄付を安全に記録できません", big
    assert "プログラム" in todo and "「ディスクの空き」" not in todo, lines
    assert "貼り紙" in todo and "運用担当に連絡" in todo and not COMMAND.search(todo), lines
    assert re.match(DETAILS_JA + r"\d+ 件", lines[-1]) and "journalctl" in lines[-1], lines

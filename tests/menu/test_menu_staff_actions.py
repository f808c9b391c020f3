"""What staff do in the menu reaches the real ledger: audit entries, the Z report, volunteer points."""

from __future__ import annotations

import json
from concurrent.futures import Future

from kiosk.ledger import settled_report, verify_path
from kiosk.staff.gate import ACTIONS

from .conftest import PLAYLIST, Rig


def go(rig: Rig, *steps: tuple) -> None:
    for action, *value in steps:
        rig.touch(action, *value)


def test_staff_card_opens_and_other_cards_do_not(rig):
    assert not rig.tap(1)  # an ordinary card: not consumed, the app takes it as a donation
    assert not rig.menu.is_open and rig.actions() == []
    assert rig.tap(token=rig.staff_token)
    assert rig.menu.page == "home"
    assert rig.admin()[0] == {"action": "menu_open", "by": f"card:{rig.staff_token.hex}", "via": "card"}
    assert rig.tap(1)  # while open every tap is the menu's, never a donation
    assert rig.menu.page == "home"


def test_every_staff_action_is_an_admin_action_entry(rig):
    rig.donate(1, "kodomo", 500)
    rig.open()
    go(rig, ("go", "status"), ("back",))
    go(rig, ("go", "x_report"), ("back",))
    go(rig, ("go", "z_confirm"), ("z_run",), ("back",))
    go(rig, ("go", "volunteer"), ("activity", "park-cleanup"), ("points_ok",))
    rig.tap(2)
    go(rig, ("go", "home"))
    go(rig, ("go", "sync"), ("sync_run",), ("back",))
    go(rig, ("go", "reader_test"))
    rig.tap(3)
    go(rig, ("back",))
    go(rig, ("go", "playlist"), ("toggle", 0), ("toggle", 0), ("playlist_reload",), ("back",))
    go(rig, ("go", "volume"), ("volume", -10), ("volume", -1), ("back",))
    go(rig, ("go", "language"), ("lang", "en"), ("back",))
    go(rig, ("go", "usb"), ("usb_export", 0), ("back",))
    go(rig, ("go", "power"), ("power", "restart_app"), ("power_run",))
    assert not rig.menu.is_open and rig.machine.restarts == 1
    rig.open()
    go(rig, ("go", "power"), ("power", "reboot"), ("power_run",))
    rig.open()
    go(rig, ("go", "power"), ("power", "poweroff"), ("power_run",))
    assert rig.machine.commands == [["systemctl", "reboot"], ["systemctl", "poweroff"]]

    names = rig.actions()
    # the keypad's, tested there; refunds need a payment terminal: tests/payment/test_square_refund.py
    expected = ACTIONS - {"menu_refused", "pin_failed", "pin_locked", "refund"}
    assert expected <= set(names), expected - set(names)
    sessions = [d for d in rig.admin() if d["action"] == "menu_open"]
    assert len(sessions) == 3
    # Everything after an open belongs to that session; details are plain values, no floats.
    for d in rig.admin():
        assert d["by"] == f"card:{rig.staff_token.hex}"
        assert all(not isinstance(v, float) for v in d.values())
        if d["action"] != "menu_open":
            assert "session_seq" in d
    vol = next(d for d in rig.admin() if d["action"] == "volume")
    assert (vol["level"], vol["previous"]) == (59, 70)  # one entry for the visit, not one per press
    power = [d["action"] for d in rig.admin() if d["action"] in ("restart_app", "reboot", "poweroff", "menu_close")]
    assert power == ["restart_app", "menu_close", "reboot", "menu_close", "poweroff", "menu_close"]
    assert verify_path(rig.ledger.path).ok


def test_z_report_from_the_menu_equals_the_settled_report(rig):
    rig.donate(1, "kodomo", 500, "suica-terminal")
    rig.donate(2, "midori", 1000)
    voided = rig.donate(1, "kodomo", 100)
    rig.ledger.void(voided, "test correction")
    day = rig.ledger.business_date()
    rig.open()
    go(rig, ("go", "z_confirm"))
    assert f"{day.month}月{day.day}日" in rig.view().big  # said plainly (review 11), not 2025-11-21
    go(rig, ("z_run",))
    assert rig.menu.page == "z_done"
    close = [e for e in rig.ledger.iter_entries() if e.type == "close_out"]
    assert len(close) == 1
    rep = settled_report(((e.seq, e.obj) for e in rig.ledger.iter_entries()), day)
    for k in ("count", "total_yen", "first_seq", "last_seq", "projects", "methods", "points"):
        assert close[0].data[k] == rep[k], k
    assert close[0].data["business_date"] == day.isoformat() and close[0].data["count"] == 2
    assert close[0].data["total_yen"] == 1500 and close[0].data["trigger"] == "staff"
    audit = [d for d in rig.admin() if d["action"] == "z_report"]
    assert audit == [{"action": "z_report", "by": audit[0]["by"], "session_seq": audit[0]["session_seq"],
                      "forced": False, "close_out_seq": close[0].seq, "business_date": day.isoformat(),
                      "outcome": "ok"}]
    assert "¥1,500" in rig.view().text

    # A second Z for the same day asks first, then supersedes.
    go(rig, ("back",), ("go", "z_confirm"), ("z_run",))
    assert rig.menu.page == "z_again" and rig.menu.model.z_closed_seq == close[0].seq
    assert "seq" not in rig.view().notice  # the ledger position stays in the audit trail, not on the screen
    go(rig, ("z_force",))
    close = [e for e in rig.ledger.iter_entries() if e.type == "close_out"]
    assert len(close) == 2 and close[1].data["supersedes_seq"] == close[0].seq
    outcomes = [d["outcome"].split(":")[0] for d in rig.admin() if d["action"] == "z_report"]
    assert outcomes == ["ok", "failed", "ok"]  # the refused attempt is in the trail too


def test_cancelling_the_z_confirm_writes_nothing(rig):
    rig.open()
    go(rig, ("go", "z_confirm"), ("back",))
    assert rig.menu.page == "home"
    assert not [e for e in rig.ledger.iter_entries() if e.type == "close_out"]


def test_volunteer_points_reach_the_donor_balance(rig):
    rig.donate(5, "kodomo", 1000)  # 10 points from giving
    volunteer = rig.token(5)
    assert rig.ledger.donor_points([volunteer.hex]) == 10
    rig.open()
    go(rig, ("go", "volunteer"), ("activity", "event-help"), ("points", 10), ("points", -1), ("points_ok",))
    assert rig.menu.page == "volunteer_tap"
    assert rig.tap(5)
    assert rig.menu.page == "volunteer_done"
    assert rig.ledger.donor_points([volunteer.hex]) == 10 + 29
    assert "39" in rig.view().text and "+29" in rig.view().big
    grant = [e for e in rig.ledger.iter_entries() if e.type == "points_grant"]
    assert len(grant) == 1 and grant[0].data["activity"] == "event-help"
    audit = [d for d in rig.admin() if d["action"] == "points_grant"]
    assert audit[0]["grant_seq"] == grant[0].seq and audit[0]["points"] == 29

    # The next volunteer, same activity; then the per-card daily limit refuses, and says why.
    go(rig, ("tap_again",))
    rig.tap(6)
    assert rig.ledger.donor_points([rig.token(6).hex]) == 29
    rig.menu.model.points = 100
    for _ in range(3):
        go(rig, ("tap_again",))
        rig.tap(6)
    assert rig.menu.page == "volunteer_done" and rig.view().notice_level == "red"
    assert "今日受け取れるのは、あと" in rig.view().notice  # says why, in the staff's language
    assert rig.ledger.donor_points([rig.token(6).hex]) == 229  # 29 + 100 + 100, the third refused
    assert rig.admin()[-1]["outcome"].startswith("refused")


def _disk_full_at_next_admin_action(rig: Rig) -> None:
    """SQLite's own "database or disk is full", raised by the ledger's writer connection on its next
    ``admin_action`` insert only. A temporary trigger (on that connection alone, never in the file) fills a
    temporary table capped at one more page; the failed write drops the connection, and the trigger with it."""
    conn = rig.ledger._writer()
    conn.execute("CREATE TEMP TABLE disk_filler (b BLOB)")
    pages = conn.execute("PRAGMA temp.page_count").fetchone()[0]
    conn.execute(f"PRAGMA temp.max_page_count={pages + 1}")
    conn.execute("CREATE TEMP TRIGGER disk_full BEFORE INSERT ON main.entries WHEN NEW.type = 'admin_action' "
                 "BEGIN INSERT INTO disk_filler VALUES (zeroblob(1000000)); END")


def test_a_grant_whose_audit_line_fails_is_shown_granted_and_tap_again_does_not_grant_twice(rig, caplog):
    volunteer = rig.token(5)
    rig.open()
    go(rig, ("go", "volunteer"), ("activity", "park-cleanup"), ("points_ok",))
    assert rig.menu.page == "volunteer_tap"
    _disk_full_at_next_admin_action(rig)
    assert rig.tap(5)
    grants = [e for e in rig.ledger.iter_entries() if e.type == "points_grant"]
    assert len(grants) == 1 and grants[0].data["activity"] == "park-cleanup"
    assert not [d for d in rig.admin() if d["action"] == "points_grant"]  # the audit line really failed
    # The grant is on disk, so the screen says granted (not red "nothing changed, press again").
    assert rig.menu.page == "volunteer_done" and rig.view().notice_level == "green", rig.view().notice
    assert "audit line" in caplog.text and "database or disk is full" in caplog.text
    assert "+10" in rig.view().big and rig.ledger.donor_points([volunteer.hex]) == 10
    # The next volunteer: one grant each, and the audit trail works again once the disk has room.
    go(rig, ("tap_again",))
    assert rig.tap(6)
    grants = [e for e in rig.ledger.iter_entries() if e.type == "points_grant"]
    assert [g.data["points"] for g in grants] == [10, 10] and rig.ledger.donor_points([volunteer.hex]) == 10
    assert [d["grant_seq"] for d in rig.admin() if d["action"] == "points_grant"] == [grants[1].seq]
    assert verify_path(rig.ledger.path).ok


def test_points_above_the_activity_maximum_are_not_offered(rig):
    rig.open()
    go(rig, ("go", "volunteer"), ("activity", "park-cleanup"))
    for _ in range(10):
        go(rig, ("points", 10))
    assert rig.menu.model.points == 50  # park-cleanup's max_points
    go(rig, ("points_ok",))
    assert rig.menu.page == "volunteer_tap"


def test_reader_test_shows_family_balance_and_read_time_and_never_the_card(rig):
    rig.open()
    go(rig, ("go", "reader_test"))
    record = rig.record(3, family="icoca", balance=2480, read_ms=112.6)
    assert rig.menu.card(record)
    text = rig.view().text
    assert "ICOCA" in text and "¥2,480" in text and "113" in text
    assert record.token.hex not in text and record.token.hex[:8] not in text
    assert rig.menu.model.reader is not None and not hasattr(rig.menu.model.reader, "token")
    entry = [d for d in rig.admin() if d["action"] == "reader_test"][0]
    assert entry["family"] == "icoca" and entry["read_ms"] == 113 and entry["balance_read"] is True
    assert record.token.hex not in json.dumps([e.obj for e in rig.ledger.iter_entries()])
    # An unreadable balance says so.
    rig.menu.card(rig.record(4, family="transit", balance=None))
    assert "¥" not in rig.view().text


def test_idle_timeout_closes_the_menu(rig):
    rig.open()
    rig.clock.advance(200)
    go(rig, ("go", "status"))  # a touch: the countdown starts over
    rig.clock.advance(299)
    rig.menu.tick(0)
    assert rig.menu.is_open
    rig.clock.advance(1)
    rig.menu.tick(0)
    assert not rig.menu.is_open
    assert rig.admin()[-1]["action"] == "menu_close" and rig.admin()[-1]["reason"] == "idle"
    assert not rig.tap(1)  # back in the attract loop: taps are donations again


def test_staff_closing_the_menu_is_recorded(rig):
    rig.open()
    opened = [e for e in rig.ledger.iter_entries() if e.type == "admin_action"][0]
    rig.clock.advance(42)
    go(rig, ("close",))
    assert not rig.menu.is_open
    assert rig.admin()[-1] == {"action": "menu_close", "by": f"card:{rig.staff_token.hex}", "reason": "staff",
                               "seconds": 42, "session_seq": opened.seq}


def test_slow_actions_show_working_and_ignore_presses_until_done(rig):
    pending: list[tuple[Future, object]] = []

    def later(fn):
        fut: Future = Future()
        pending.append((fut, fn))
        return fut

    rig.services.background = later
    rig.open()
    go(rig, ("go", "sync"), ("sync_run",))
    assert rig.menu.model.busy and rig.render() == []  # nothing to press while it runs
    rig.menu.model.press("back")
    rig.clock.advance(10_000)
    rig.menu.tick(0)
    assert rig.menu.is_open and rig.menu.page == "sync"  # never closed under a running action
    fut, fn = pending.pop()
    fut.set_result(fn())
    rig.menu.tick(0)
    assert not rig.menu.model.busy and "同期しました" in rig.view().notice
    assert [d["outcome"] for d in rig.admin() if d["action"] == "sync_now"] == ["ok"]


def test_failures_are_shown_and_recorded(rig):
    def broken() -> str:
        raise ConnectionError("portal unreachable")

    rig.services.sync_now = broken
    rig.services.run_command = lambda argv: (_ for _ in ()).throw(PermissionError("polkit refused"))
    rig.open()
    go(rig, ("go", "sync"), ("sync_run",))
    # Said in plain Japanese with what to do; the uploader's own words stay in the audit trail and the log.
    assert "ポータルにつながりません" in rig.view().notice and rig.view().notice_level == "red"
    assert "portal unreachable" not in rig.view().notice
    assert rig.admin()[-1]["outcome"].startswith("failed: ConnectionError: portal unreachable")
    go(rig, ("back",), ("go", "power"), ("power", "reboot"), ("power_run",))
    assert rig.menu.is_open and "管理者に連絡してください" in rig.view().notice
    rig.machine.language = "en"  # English mode keeps the technical detail, for the maintainer on the phone
    go(rig, ("power_run",))
    assert "polkit refused" in rig.view().notice


def test_playlist_toggles_apply_at_the_next_boundary_and_keep_one_clip(rig):
    rig.open()
    go(rig, ("go", "playlist"), ("toggle", 0))
    assert rig.machine.applied[-1] == PLAYLIST[1:]
    go(rig, ("toggle", 1))
    assert rig.machine.applied[-1] == [PLAYLIST[2]]
    go(rig, ("toggle", 2))  # the last clip on: refused
    assert len(rig.machine.applied) == 2 and rig.view().notice_level == "red"
    go(rig, ("toggle", 0))
    assert rig.machine.applied[-1] == [PLAYLIST[0], PLAYLIST[2]]
    go(rig, ("playlist_reload",))
    assert rig.machine.reloads == 1 and len(rig.machine.applied[-1]) == 4
    assert all(on for _, on in rig.menu.model.playlist)
    names = [d["action"] for d in rig.admin() if d["action"].startswith("playlist")]
    assert names == ["playlist_disable", "playlist_disable", "playlist_enable", "playlist_reload"]


def test_usb_export_writes_the_day_to_the_stick(rig):
    rig.donate(1, "kodomo", 500)
    rig.open()
    go(rig, ("go", "usb"))
    assert "KIOSK-USB" in rig.view().text
    go(rig, ("usb_export", 0))
    assert rig.menu.page == "usb_done" and rig.view().notice_level == "green"
    out = [p for p in rig.stick.iterdir() if p.name.startswith("kiosk-test-kiosk-1-")]
    assert len(out) == 1 and (out[0] / "ledger.jsonl").exists() and (out[0] / "MANIFEST.txt").exists()
    audit = [d for d in rig.admin() if d["action"] == "usb_export"][0]
    assert audit["outcome"] == "ok" and audit["device"] == "/dev/sda1" and audit["files"] >= 3


def test_no_stick_says_so(rig):
    rig.services.find_sticks = lambda: []
    rig.open()
    go(rig, ("go", "usb"))
    assert "USB" in rig.view().text and not rig.view().buttons
    go(rig, ("usb_scan",))
    assert rig.menu.page == "usb"


def test_the_menu_follows_the_kiosk_language(rig):
    rig.open()
    assert rig.view().title == "メンテナンスメニュー"
    go(rig, ("go", "language"), ("lang", "en"))
    assert rig.machine.language == "en" and rig.view().title == "Default language"
    go(rig, ("back",))
    assert rig.view().title == "Maintenance menu"


def test_services_from_config_hide_what_the_app_did_not_inject(rig):
    from kiosk.staff.menu import MaintenanceMenu, services_from_config

    services = services_from_config(rig.cfg, rig.services.writer, rig.gate, find_sticks=lambda: [])
    assert services.titles == {"kodomo": "こども食堂", "midori": "雑木林を守ろう"} and services.language() == "ja"
    assert services.kiosk_id == "test-kiosk-1" and services.ops.volunteer.activities
    menu = MaintenanceMenu(services, clock=rig.clock, screen_size=(640, 360))
    assert menu.open_by_card(rig.staff_token)
    pages = {b.value for b in menu.view().buttons}
    assert {"status", "x_report", "z_confirm", "volunteer", "reader_test", "usb", "power"} <= pages
    assert not pages & {"sync", "playlist", "volume", "language"}  # nothing injected for these
    menu.model.press("go", "status")
    ledger_item = next(i for i in menu.model.status if i.key == "ledger")
    assert ledger_item.level == "green" and f"last seq {rig.ledger.size - 1}" in ledger_item.value
    menu.model.press("back")
    menu.model.press("go", "power")
    assert [b.value for b in menu.view().buttons] == ["reboot", "poweroff"]  # no restart callback given

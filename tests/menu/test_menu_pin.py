"""The hidden gesture, the PIN keypad and its lockout, on a fake clock."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .conftest import PIN, Rig, build_rig, pin_hash


def gesture(rig: Rig, taps: int = 5, start_ms: int = 0, step_ms: int = 300, pos: tuple[int, int] = (10, 10)) -> bool:
    return any([rig.menu.hidden_gesture(pos, start_ms + i * step_ms) for i in range(taps)])


def type_pin(rig: Rig, pin: str) -> None:
    for d in pin:
        rig.key(d)
    rig.key("enter")


def test_five_quick_corner_taps_open_the_keypad(rig):
    assert not gesture(rig, taps=4)
    assert not rig.menu.is_open
    assert gesture(rig, taps=1, start_ms=1200)  # the fifth within 3 s of the first
    assert rig.menu.page == "pin" and rig.menu.model.session is None
    assert rig.actions() == []  # nothing recorded until someone is signed in
    rig.menu.model.press("go", "home")  # not drawn on the keypad, and refused even if pressed
    rig.menu.model.press("z_run")
    assert rig.menu.page == "pin" and rig.actions() == []


def test_slow_taps_or_taps_elsewhere_do_not(rig):
    assert not gesture(rig, taps=5, step_ms=800)  # 3.2 s from first to fifth
    assert not gesture(rig, taps=5, pos=(300, 10), start_ms=10_000)
    assert not gesture(rig, taps=4, start_ms=20_000) and not rig.menu.hidden_gesture((320, 180), 20_900)
    assert not gesture(rig, taps=1, start_ms=21_000)  # the count started over after the tap outside
    assert not rig.menu.is_open


def test_right_pin_opens_the_menu_and_is_recorded_without_the_pin(rig):
    gesture(rig)
    for d in PIN[:3]:
        rig.touch("digit", d)
    assert "●" in rig.view().big and PIN[:3] not in rig.view().text
    rig.touch("digit", PIN[3])
    rig.touch("pin_ok")
    assert rig.menu.page == "home"
    assert rig.admin()[0] == {"action": "menu_open", "by": "pin", "via": "pin"}


def test_wrong_pins_lock_with_growing_delays(rig):
    gesture(rig)
    for _n in range(3):
        type_pin(rig, "1357")
        assert rig.menu.page == "pin"
    # Three free attempts used: locked for 30 s, and the keypad says so.
    assert rig.gate.pin.locked_for() == 30
    view = rig.view()
    assert "30" in view.notice and not view.find("pin_ok").enabled and not view.find("digit", "5").enabled
    assert {t.action for t in rig.render()} == {"pin_del", "back"}  # digits and OK are not even touchable

    # Typing while locked does nothing; the right PIN is not even checked.
    type_pin(rig, PIN)
    assert rig.menu.page == "pin" and rig.menu.model.pin_length == 0
    rig.clock.advance(29)
    rig.menu.model.press("digit", "1")
    assert rig.menu.model.pin_length == 0
    assert "1" in rig.view().notice  # counts down: 1 s left

    rig.clock.advance(1)
    type_pin(rig, "0000")
    assert rig.gate.pin.locked_for() == 60  # doubled
    rig.clock.advance(60)
    type_pin(rig, "0000")
    assert rig.gate.pin.locked_for() == 120
    rig.clock.advance(120)
    type_pin(rig, PIN)
    assert rig.menu.page == "home"  # a right PIN after the lock opens, and clears the count
    assert rig.gate.pin.failures == 0

    names = rig.actions()
    assert names.count("pin_failed") == 5 and names.count("pin_locked") == 3
    assert [d["seconds"] for d in rig.admin() if d["action"] == "pin_locked"] == [30, 60, 120]


def test_the_lock_and_the_count_survive_a_restart(rig):
    """Pulling the plug must not clear the keypad's lock: a new process (a new gate over the same ledger, a new
    monotonic clock) takes up the recorded count and lock; a right PIN's menu_open clears them for the next."""
    from kiosk.ledger.writer import InlineWriter
    from kiosk.staff.gate import StaffGate

    from .conftest import FakeClock

    gesture(rig)
    for _n in range(4):  # the third locks for 30 s, the fourth for 60
        type_pin(rig, "1357")
        rig.clock.advance(rig.gate.pin.locked_for())
    type_pin(rig, "1357")
    assert rig.gate.pin.failures == 5 and rig.gate.pin.locked_for() == 120
    rig.ledger.clock.advance(20_000)  # 20 s pass on the wall clock (synced) before the kiosk is up again

    def restarted() -> StaffGate:
        return StaffGate(InlineWriter(rig.ledger), rig.ops.staff, clock=FakeClock(5.0))

    gate = restarted()
    assert gate.pin.failures == 5 and gate.pin.locked_for() == 100  # what was left of the lock
    rig.ledger.clock.is_synced = False  # no clock after the restart (a Pi without an RTC): the whole lock again
    assert restarted().pin.locked_for() == 120
    rig.ledger.clock.is_synced = True
    gate.pin._clock = FakeClock(5.0 + 100)
    session, attempt = gate.open_with_pin("1357")
    assert session is None and gate.pin.failures == 6 and attempt.locked_for_s == 240  # still doubling
    gate.pin._clock = FakeClock(5.0 + 100 + 240)
    session, attempt = gate.open_with_pin(PIN)
    assert session is not None and attempt.ok
    assert (restarted().pin.failures, restarted().pin.locked_for()) == (0, 0)  # the right PIN cleared it


_HEX = re.compile(r"[0-9a-f]{16,}")


def _blank(o: object) -> object:
    """An entry's object with every string that is wholly hex of 16 digits or more (a hash, a signature, a key
    id) as "": every other value it holds stays."""
    if isinstance(o, dict):
        return {k: _blank(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_blank(v) for v in o]
    return "" if isinstance(o, str) and _HEX.fullmatch(o) else o


def test_the_pin_is_never_kept_or_written_in_clear(rig, tmp_path):
    gesture(rig)
    type_pin(rig, "97531864")  # wrong, 8 digits: distinctive enough to search for
    type_pin(rig, PIN)
    assert rig.menu.page == "home"
    # Not in the menu's memory once submitted...
    state = json.dumps({k: repr(v) for k, v in vars(rig.menu.model).items()})
    assert "97531864" not in state and "'2', '4', '6', '8'" not in state and rig.menu.model.pin_length == 0
    # ...nor in any ledger entry, nor in the config the gate holds (a salted hash only).
    # Hashes, signatures and key ids are left out of the search: random hex, in which a 4-digit PIN stands by
    # chance in about one run of 60 (CI once found "2468" inside an entry hash). A PIN in clear is never one.
    bodies = json.dumps([_blank(e.obj) for e in rig.ledger.iter_entries()])
    assert "97531864" not in bodies and PIN not in bodies
    assert rig.ops.staff.pin_hash == pin_hash() and PIN not in rig.ops.staff.pin_hash
    assert rig.ops.staff.pin_hash.startswith("scrypt$")


def test_backspace_and_cancel(rig):
    gesture(rig)
    rig.key("1")
    rig.key("2")
    rig.key("backspace")
    assert rig.menu.model.pin_length == 1
    rig.touch("pin_del")
    assert rig.menu.model.pin_length == 0
    assert not rig.view().find("pin_ok").enabled  # fewer than 4 digits: OK is greyed out
    rig.key("esc")
    assert not rig.menu.is_open


def test_short_pin_is_not_submitted(rig):
    gesture(rig)
    type_pin(rig, "12")
    assert rig.menu.page == "pin" and rig.gate.pin.failures == 0


def test_a_staff_card_on_the_keypad_opens_the_menu(rig):
    gesture(rig)
    assert rig.tap(token=rig.staff_token)
    assert rig.menu.page == "home"


def test_keypad_closes_itself_when_left_alone(rig):
    gesture(rig)
    rig.clock.advance(59)
    rig.menu.tick(0)
    assert rig.menu.is_open
    rig.clock.advance(1)
    rig.menu.tick(0)
    assert not rig.menu.is_open


def test_without_a_pin_configured_the_gesture_does_nothing(tmp_path: Path):
    from kiosk.staff.gate import StaffGate

    rig = build_rig(tmp_path)
    try:
        rig.services.gate = StaffGate(rig.services.writer, rig.ops.staff.model_copy(update={"pin_hash": ""}),
                                      clock=rig.clock)
        assert not gesture(rig)
        assert not rig.menu.is_open
    finally:
        rig.ledger.close(checkpoint=False)


def test_the_demo_menu_opens_with_the_documented_demo_pin(tmp_path: Path):
    """Issue #15 item 7: `kiosk demo`'s config (as the demo writes it) opens the menu with the demo PIN
    printed in its start line and the README; a wrong PIN does not."""
    from kiosk.app.demo import DEMO_PIN, demo_config
    from kiosk.staff.gate import StaffGate

    demo = demo_config(tmp_path / "demo-data")
    assert DEMO_PIN in (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    rig = build_rig(tmp_path)
    try:
        rig.services.gate = StaffGate(rig.services.writer, demo.staff, clock=rig.clock)
        assert gesture(rig) and rig.menu.page == "pin"
        type_pin(rig, "0000" if DEMO_PIN != "0000" else "1111")
        assert rig.menu.page == "pin"
        type_pin(rig, DEMO_PIN)
        assert rig.menu.page == "home"
        assert rig.admin()[-1] == {"action": "menu_open", "by": "pin", "via": "pin"}
    finally:
        rig.ledger.close(checkpoint=False)

"""A wrong PIN says what to do: how many tries are left before the keypad locks, and, once locked, how long to
wait in minutes (rounded up) and who to ask (review 8).

It said 「暗証番号が違います」 and nothing else, then 「ロック中：あと900秒お待ちください」. The real keypad on the
rig's fake monotonic clock, the real gate and PinLock (3 free tries, 30 s doubling to 900 s).
"""

from __future__ import annotations

from .conftest import PIN, Rig
from .test_menu_words import english_words


def _keypad(rig: Rig) -> None:
    for _ in range(5):
        rig.menu.hidden_gesture((3, 3), 0)
    assert rig.menu.page == "pin"


def _wrong(rig: Rig) -> None:
    for d in "1357":
        rig.key(d)
    rig.key("enter")


def test_a_wrong_pin_says_how_many_tries_are_left(rig: Rig) -> None:
    _keypad(rig)
    _wrong(rig)
    notice = rig.view().notice
    assert "暗証番号が違います" in notice and "あと2回" in notice and "もう一度入力" in notice, notice
    assert not english_words(notice), notice
    rig.machine.language = "en"
    _wrong(rig)
    assert "1 more wrong try," in rig.view().notice, rig.view().notice  # singular in English


def test_the_lock_is_said_in_minutes_rounded_up_with_who_to_ask(rig: Rig) -> None:
    _keypad(rig)
    for _ in range(3):
        _wrong(rig)
    # 30 s: under a minute the countdown stays in seconds, where staff see it move.
    notice = rig.view().notice
    assert "あと30秒" in notice and "責任者" in notice and "スタッフカード" in notice, notice
    while rig.gate.pin.locked_for() < 900:  # 60, 120, 240, 480, 900 s
        rig.clock.advance(rig.gate.pin.locked_for())
        _wrong(rig)
    notice = rig.view().notice
    assert "900" not in notice and "あと15分" in notice and "責任者" in notice, notice
    assert not english_words(notice), notice
    rig.clock.advance(900 - 61)  # 61 s left: two minutes, rounded up, never "1分" while more than one remains
    assert "あと2分" in rig.view().notice, rig.view().notice
    rig.machine.language = "en"
    assert "try again in 2 minutes" in rig.view().notice and "manager" in rig.view().notice, rig.view().notice
    rig.machine.language = "ja"
    rig.clock.advance(61)
    # The lock is over: the notice left says that one more wrong PIN locks again; the right PIN opens.
    notice = rig.view().notice
    assert "次にまちがえると" in notice and rig.view().notice_level == "red", notice
    for d in PIN:
        rig.key(d)
    rig.key("enter")
    assert rig.menu.page == "home"

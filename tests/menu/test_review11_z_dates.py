"""The Z report's pages name the business day as staff say it (review 11): 「11月21日(金)」, not 2025-11-21.

The "close again?" page (the day already closed) showed a bare ISO date; the confirm page and its other-day
buttons did too. Real parts: the rig's ledger on its fixed wall clock (Friday 2025-11-21 13:40 JST), the real
Z report, the drawn strings of the real render.
"""

from __future__ import annotations

import re

from .conftest import Rig
from .test_menu_words import drawn

ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
TO_00_10 = (10 * 3600 + 30 * 60) * 1000  # from 13:40 to 00:10 the next day


def _close_then_again(rig: Rig) -> None:
    rig.donate(1, "kodomo", 500)
    rig.open()
    for action, *value in (("go", "z_confirm"), ("z_run",), ("back",), ("go", "z_confirm"), ("z_run",)):
        rig.menu.model.press(action, *value)
    assert rig.menu.page == "z_again"


def test_close_again_page_says_the_day_plainly_in_japanese(rig: Rig) -> None:
    _close_then_again(rig)
    texts = [t for _, t in drawn(rig)]
    assert rig.view().big == "11月21日(金)（今日）", rig.view().big
    assert not [t for t in texts if ISO.search(t)], texts


def test_close_again_page_in_english(rig: Rig) -> None:
    rig.machine.language = "en"
    _close_then_again(rig)
    assert rig.view().big == "Fri 21 Nov (today)", rig.view().big


def test_confirm_page_and_its_day_buttons_say_the_days_plainly(rig: Rig) -> None:
    rig.donate(1, "kodomo", 500)
    rig.wall.advance(TO_00_10)
    rig.donate(2, "midori", 1000)  # 00:10 Saturday: today has a gift too, so it is offered as a button
    rig.open()
    rig.menu.model.press("go", "z_confirm")
    texts = [t for _, t in drawn(rig)]
    assert rig.view().big == "11月21日(金)（昨日）", rig.view().big
    assert [b.label for b in rig.view().buttons if b.action == "z_day"] == ["11月22日(土)（今日）"]
    assert not [t for t in texts if ISO.search(t)], texts

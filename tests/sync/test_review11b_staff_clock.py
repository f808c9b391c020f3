"""The kiosks page says how a kiosk's clock is in one plain statement (docs/portal.md, "The kiosks page").

Before, a kiosk whose system said its clock was set from the network but was an hour off read
「正確 / -3597 秒ずれています」: "correct" and "off", and raw seconds with a sign. Now how far off it is, rounded to
what staff say (「約1時間遅れています」), wins over "set from the network", and "correct" is said only of a clock
that is right. Three real kiosk ledgers sync over loopback HTTP (their heartbeats carry their clocks: the test
kiosks' clocks are set, not the portal's), and the page is read in headless Chromium.
"""

from __future__ import annotations

import time

import pytest
from sync_helpers import PASSWORD, enrolled, make_rig, needs_chromium, staff_page

from kiosk.ledger.clock import FixedClock
from server_sync.embedded import start_portal
from server_sync.operator import clock_words, words_text
from server_sync.staff import add_user

# kiosk: (its clock's offset from real time in ms, whether its system says the clock is set from the network)
CLOCKS = {"center-1f": (0, True), "center-2f": (-3_597_000, True), "center-3f": (5 * 60_000, False)}


@pytest.fixture
def fleet(tmp_path):  # noqa: ANN001
    handle = start_portal(f"sqlite:///{tmp_path}/portal.db")
    add_user(handle.app.state.engine, "staff1", PASSWORD, "staff")
    for kid, (offset, synced) in CLOCKS.items():
        rig = make_rig(tmp_path, kid, clock=FixedClock(wall_ms=int(time.time() * 1000) + offset, synced=synced))
        try:
            up = enrolled(rig, handle)
            rig.clock.wall = int(time.time() * 1000) + offset  # the kiosk's clock runs on while it enrolls
            assert up.sync_once().ok
        finally:
            rig.ledger.close(checkpoint=False)
    yield handle
    handle.stop()


@needs_chromium
def test_the_clock_column_says_one_thing_in_plain_words(fleet, browser, tmp_path) -> None:  # noqa: ANN001
    page = staff_page(browser, fleet.url, "staff1", size=(1100, 900))
    page.goto(fleet.url + "/staff/kiosks")
    page.screenshot(path=str(tmp_path / "kiosks.png"), full_page=True)

    def clock(kid: str) -> tuple[str, str]:
        cell = page.locator(f'tr[data-kiosk="{kid}"] td.clock')
        return cell.inner_text().strip(), cell.locator("[data-clock]").get_attribute("data-clock") or ""

    assert clock("center-1f") == ("正確です", "ok")
    said, state = clock("center-2f")
    assert state == "bad" and said.startswith("約1時間遅れています"), said
    assert "管理者に連絡" in said and "正確" not in said and "秒" not in said and "3597" not in said, said
    said, state = clock("center-3f")
    assert state == "bad" and said.startswith("約5分進んでいます"), said
    assert "ネットワーク" in said and "正確" not in said, said
    page.goto(fleet.url + "/staff/lang?to=en&next=/staff/kiosks")
    assert clock("center-2f")[0] == "About 1 hour behind the portal's clock. Call the administrator."


@pytest.mark.parametrize(("synced", "skew_ms", "ja"), [
    (True, 1_500, "正確です"),  # the heartbeat's own trip on a slow line is no fault
    (True, -29_000, "正確です"),
    (True, 45_000, "約45秒進んでいます。"),
    (True, -3_597_000, "約1時間遅れています。"),
    (True, -2 * 86_400_000 - 5_000_000, "約2日遅れています。"),
    (False, -400_000, "約7分遅れています。端末がネットワーク"),
    (False, 0, "今は合っていますが"),
])
def test_clock_words(synced: bool, skew_ms: int, ja: str) -> None:
    words = clock_words(synced, skew_ms)
    assert words is not None
    text = words_text(words[0], "ja")
    assert text.startswith(ja), text
    assert words[1] is (not ja.startswith("正確")), "a fault is marked bad, a right clock is not"
    assert ("正確" in text) is (ja == "正確です")
    assert clock_words(None, None) is None

"""A kiosk the portal has not heard from for days is called out in plain words (docs/portal.md, "A kiosk that
stopped calling").

Two real kiosk ledgers enroll and sync over loopback HTTP with a real portal; one of them then goes quiet (its last
contact is put four days back in the portal's database: the portal stamps it with its own clock, so a test cannot
wait four days). The kiosks page and the dashboard are read in headless Chromium. Before: the silent kiosk showed only
a date among the others and the dashboard said 「警告はありません。すべての端末の台帳を確認しました。」.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update
from sync_helpers import PASSWORD, enrolled, make_rig, needs_chromium, staff_page

from server_sync.db import kiosks, writing
from server_sync.embedded import start_portal
from server_sync.operator import SILENT_MS
from server_sync.staff import add_user

DAY_MS = 86_400_000


@pytest.fixture
def fleet(tmp_path):  # noqa: ANN001
    """A portal with two synced kiosks: center-1f heard from now, center-2f last heard from four days ago."""
    handle = start_portal(f"sqlite:///{tmp_path}/portal.db")
    eng = handle.app.state.engine
    add_user(eng, "staff1", PASSWORD, "staff")
    for kid in ("center-1f", "center-2f"):
        rig = make_rig(tmp_path, kid)
        try:
            up = enrolled(rig, handle)
            rig.donate(2)
            assert up.sync_once().ok
        finally:
            rig.ledger.close(checkpoint=False)
    with writing(eng) as conn:
        conn.execute(update(kiosks).where(kiosks.c.id == "center-2f")
                     .values(last_seen_ms=int(time.time() * 1000) - 4 * DAY_MS - 60_000))
    yield handle
    handle.stop()


@needs_chromium
def test_a_kiosk_silent_for_days_is_named_with_what_to_do(fleet, browser) -> None:  # noqa: ANN001
    page = staff_page(browser, fleet.url, "staff1", size=(1100, 900))
    # The dashboard: the silent kiosk is named among the alarms, never "no alarms".
    silent = page.locator("#silent li")
    assert silent.count() == 1
    text = silent.inner_text()
    assert text.startswith("center-2f: この端末から4日間") and "連絡がありません" in text, text
    assert "電源" in text and "ネットワーク" in text and "端末に残っていて" in text, text
    assert page.get_by_text("警告はありません").count() == 0
    # The kiosks page: beside its last contact, in the same words; the kiosk heard from now has none.
    page.goto(fleet.url + "/staff/kiosks")
    row = page.locator('tr[data-kiosk="center-2f"] .silent')
    assert row.count() == 1 and "4日間" in row.inner_text() and "管理者に連絡" in row.inner_text()
    assert page.locator('tr[data-kiosk="center-1f"] .silent').count() == 0
    # In English with the switch.
    page.goto(fleet.url + "/staff/lang?to=en&next=/staff/kiosks")
    assert "No contact from this kiosk for 4 days" in page.locator('tr[data-kiosk="center-2f"] .silent').inner_text()


def test_a_kiosk_heard_from_within_a_day_is_not_called_silent(fleet) -> None:  # noqa: ANN001
    """Just under a day (a kiosk switched off overnight) is no alarm; the dashboard says all is well."""
    import requests

    eng = fleet.app.state.engine
    with writing(eng) as conn:
        conn.execute(update(kiosks).where(kiosks.c.id == "center-2f")
                     .values(last_seen_ms=int(time.time() * 1000) - SILENT_MS + 600_000))
    s = requests.Session()
    r = s.post(fleet.url + "/staff/login", data={"username": "staff1", "password": PASSWORD}, timeout=10)
    assert r.status_code == 200
    assert 'id="silent"' not in r.text and "警告はありません" in r.text
    assert 'class="bad silent"' not in s.get(fleet.url + "/staff/kiosks", timeout=10).text


def test_one_day_of_silence_is_said_in_the_singular() -> None:
    """A day is when the warning starts, so "1 day" is its most common case (not "1 days"); Japanese 「1日間」."""
    from server_sync.operator import silence_words, words_text

    now = int(time.time() * 1000)
    said_as = ((1, "for 1 day (since", "この端末から1日間（"), (3, "for 3 days (since", "この端末から3日間（"))
    for days, en, ja in said_as:
        k = {"last_seen_ms": now - days * 86_400_000 - 3_600_000}
        said = silence_words(k, now, "en")
        assert said is not None and en in words_text(said, "en")
        assert ja in words_text(silence_words(k, now, "ja"), "ja")  # type: ignore[arg-type]

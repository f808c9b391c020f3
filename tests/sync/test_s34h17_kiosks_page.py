"""s34-h17: the kiosks page and the staff sign-in page, as a center's staff member (not an engineer) meets them.

- The payment terminal's detail came as the kiosk's English line under the Japanese state (「使えます (sim)
  simulated terminal (approve): no real money」, 「Square unreachable (…)」): now a plain Japanese line for each
  kind of detail (operator.payment_words), the kiosk's own line on a 「詳細（管理者向け）」 line for the administrator.
- At 1280 px the page was a 46rem column: nine columns in ~700 px, the clock's sentence two characters a line. Now the
  kiosks page is wide (main.wide) and the clock has a short bold label (「約1時間遅れ」) with its sentence below; at
  375 px each kiosk is a card (table.stack), its alarms and buttons in sight without scrolling a table sideways.
- The sign-in page said 「Staff login / 職員ログイン」: Japanese first now.

Real parts: the portal over loopback HTTP, real kiosk ledgers whose uploader sends real heartbeats (their payment
reports and clocks are the kiosk's), headless Chromium for the layout.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests
from sync_helpers import PASSWORD, enrolled, make_rig, needs_chromium, staff_page, staff_session

from kiosk.ledger.clock import FixedClock
from kiosk.payment.sim import SimulatedTerminal
from server_sync.embedded import start_portal
from server_sync.operator import payment_words, words_text
from server_sync.staff import add_user

ROOT = Path(__file__).resolve().parents[2]

# kiosk id: (payment report, its clock's offset from real time in ms, whether its clock is set from the network)
KIOSKS = {
    "center-1f": ({"terminal": "sim", "state": "ready", "detail": "simulated terminal (approve): no real money"},
                  0, False),
    "center-2f": ({"terminal": "square", "state": "offline", "detail": "Square unreachable (ConnectTimeout)"},
                  -3_597_000, True),
    "center-3f": ({"terminal": "square", "state": "error",
                   "detail": "Square refused the last checkout (HTTP 401: UNAUTHORIZED: This request could not be "
                             "authorized.); Square refused the access token (HTTP 401)"}, 0, True),
}


def _fleet(db_url: str, tmp_path: Path, kiosks: dict[str, tuple[dict[str, str], int, bool]]):  # noqa: ANN202
    handle = start_portal(db_url)
    add_user(handle.app.state.engine, "admin1", PASSWORD)
    for kid, (report, offset, synced) in kiosks.items():
        rig = make_rig(tmp_path, kid, clock=FixedClock(wall_ms=int(time.time() * 1000) + offset, synced=synced))
        try:
            up = enrolled(rig, handle, payment_health=lambda r=report: dict(r))
            rig.clock.wall = int(time.time() * 1000) + offset
            assert up.sync_once().ok
            up.close()
        finally:
            rig.ledger.close(checkpoint=False)
    return handle


@pytest.fixture
def fleet(db_url: str, tmp_path: Path):
    handle = _fleet(db_url, tmp_path, KIOSKS)
    yield handle
    handle.stop()


@pytest.fixture
def one_kiosk(tmp_path: Path):
    """center-2f alone, on SQLite: the layout does not depend on the database."""
    handle = _fleet(f"sqlite:///{tmp_path}/portal.db", tmp_path, {"center-2f": KIOSKS["center-2f"]})
    yield handle
    handle.stop()


def _row(page: str, kid: str) -> str:
    m = re.search(rf'<tr data-kiosk="{kid}">.*?</tr>', page, re.S)
    assert m is not None, kid
    return m.group(0)


def _payment_cell(row: str) -> str:
    m = re.search(r'<td class="payment".*?</td>', row, re.S)
    assert m is not None
    return m.group(0)


def test_the_payment_terminals_detail_in_plain_japanese_and_the_login_page_japanese_first(fleet) -> None:
    s, _ = staff_session(fleet.url, "admin1")
    page = s.get(fleet.url + "/staff/kiosks", timeout=10).text
    details = "詳細（管理者向け）: "
    sim = _payment_cell(_row(page, "center-1f"))
    assert "練習用の決済端末です。本物のお金は動きません。" in sim, sim
    assert details + "simulated terminal (approve): no real money" in sim, sim  # the administrator's, labelled
    down = _payment_cell(_row(page, "center-2f"))
    assert "端末が Square（カード決済のサービス）につながりません。" in down and "Wi-Fi" in down, down
    assert details + "Square unreachable (ConnectTimeout)" in down, down
    refused = _payment_cell(_row(page, "center-3f"))
    assert "直前の支払いを断りました" in refused and "管理者に連絡してください" in refused, refused
    assert details + "Square refused the last checkout (HTTP 401" in refused, refused
    # The English line never stands alone, outside its details line.
    for cell in (sim, down, refused):
        bare = re.sub(r'<small class="detail muted">.*?</small>', "", cell, flags=re.S)
        assert "simulated" not in bare and "Square unreachable" not in bare and "refused" not in bare, bare

    login = requests.get(fleet.url + "/staff/login", timeout=10).text
    assert '<span lang="ja">職員ログイン</span> / <span lang="en">Staff login</span>' in login
    wrong = requests.post(fleet.url + "/staff/login", data={"username": "nobody", "password": "nope"}, timeout=10)
    assert wrong.status_code == 401
    assert wrong.text.index("ユーザー名かパスワードが違います") < wrong.text.index("wrong user or password")


def test_each_kind_of_detail_the_kiosks_send_has_its_plain_words(tmp_path: Path) -> None:
    """The plain line is chosen by the start of the kiosk's English line: the real simulated terminal's lines, and
    each start the Square adapter and the kiosk's staff side write (read from their source), have words."""
    term = SimulatedTerminal(tmp_path / "sim.db")
    try:
        for mode in ("approve", "offline"):
            term.mode = mode
            state, detail = term.health()
            words, _ = payment_words(state, detail)
            assert words is not None and "練習用" in words_text(words, "ja"), detail
    finally:
        term.close()
    square = (ROOT / "kiosk/payment/square.py").read_text("utf-8")
    staffside = (ROOT / "kiosk/app/staffside.py").read_text("utf-8")
    for start, state, example in [
        ('f"Square refused the last checkout (', "error", "Square refused the last checkout (HTTP 400: X)"),
        ('f"Square knows no device ', "error", "Square knows no device dev-1"),
        ('f"Square refused the access token (', "error", "Square refused the access token (HTTP 401)"),
        ('f"Square answered HTTP ', "offline", "Square answered HTTP 500"),
        ('f"no answer from Square (', "offline", "no answer from Square (ConnectError)"),
        ('f"Square unreachable (', "offline", "Square unreachable (no answer)"),
        ('f"device check failed (', "offline", "device check failed (RuntimeError)"),
        ('f"device {device_id}"', "ready", "device dev-1 (AVAILABLE); last checkout: COMPLETED"),
    ]:
        assert start in square, f"the Square adapter no longer writes {start}: update operator._PAYMENT_DETAILS"
        words, attention = payment_words(state, example)
        assert words is not None and not attention, example
        assert not re.search(r"[A-Za-z]{4,}", words_text(words, "ja").replace("Square", "")), words
    assert '"no terminal"' in staffside
    assert payment_words("offline", "no terminal")[0] is not None
    # Square's own word for a paired terminal that is off: "ready" from the kiosk, yet staff should look at it.
    words, attention = payment_words("ready", "device dev-1 (OFFLINE); last checkout: COMPLETED")
    assert attention and "電源" in words_text(words, "ja")  # type: ignore[arg-type]
    # A line this portal does not know: a pointer to the details when something is wrong, nothing when it is not.
    assert payment_words("error", "a newer kiosk's words")[0] is not None
    assert payment_words("ready", "a newer kiosk's words") == (None, False)


@needs_chromium
def test_the_kiosks_page_uses_a_desktops_width_and_is_cards_on_a_phone(one_kiosk, browser) -> None:  # noqa: ANN001
    page = staff_page(browser, one_kiosk.url, "admin1", size=(1280, 800))
    page.goto(one_kiosk.url + "/staff/kiosks")
    _check_layout(page, 1280)
    page.set_viewport_size({"width": 375, "height": 800})
    _check_layout(page, 375)


def _check_layout(page, width: int) -> None:  # noqa: ANN001
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    table = page.locator("#kiosks")
    row = page.locator('tr[data-kiosk="center-2f"]')
    clock = row.locator("td.clock [data-clock]")
    # The short label in bold, drawn above the statement (a ::before: the statement's own text stays as it was).
    assert clock.evaluate("e => getComputedStyle(e, '::before').content") == '"約1時間遅れ"'
    assert clock.evaluate("e => getComputedStyle(e, '::before').fontWeight") == "700"
    assert clock.inner_text().startswith("約1時間遅れています。")
    line = float(clock.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)"))
    # the statement in a few lines, not the ~30 lines of two characters each of a 46rem page
    text_height = clock.evaluate("e => { const r = document.createRange(); r.selectNodeContents(e);"
                                 " return r.getBoundingClientRect().height; }")
    assert text_height < 4.5 * line, (text_height, line)
    if width == 1280:
        # Wider than the 46rem (736 px) text column, and the clock's sentence no longer 2-3 characters a line.
        assert page.locator("main").bounding_box()["width"] > 1100  # type: ignore[index]
        assert row.locator("td.clock").bounding_box()["width"] >= 150  # type: ignore[index]
        assert table.locator("thead").is_visible()
        # Each heading on one line: 端末グループ, never 端末グルー / プ (table.nowrap-head).
        heads = table.locator("thead th").evaluate_all(
            "ths => ths.map(th => { const r = document.createRange(); r.selectNodeContents(th);"
            " const tops = new Set([...r.getClientRects()].map(c => Math.round(c.top)));"
            " return [th.innerText, tops.size]; })")
        assert heads and all(lines == 1 for _, lines in heads), heads
    else:
        # A card per kiosk: nothing scrolls sideways, and the alarms' column and its buttons are on the screen.
        box = page.locator(".scroll").first
        assert box.evaluate("e => e.scrollWidth <= e.clientWidth"), "the table scrolls sideways"
        for what in ("td.alarms", "td.alarms button[value=suspend]", "td.alarms details.confirm > summary",
                     "td.payment .payment-words", "td.config .stack-label"):
            b = row.locator(what).bounding_box()
            assert b is not None and b["x"] >= 0 and b["x"] + b["width"] <= width, (what, b)
        label_before = row.locator("td.alarms").evaluate("e => getComputedStyle(e, '::before').content")
        assert "警告" in label_before

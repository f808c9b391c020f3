"""The status page's what-to-do line for the payment terminal, from a real Square adapter's own health.

The finding: every payment state that was not green said 「決済端末の電源とケーブルを確認してください」. A refused
setup (an expired access token, a terminal no longer paired: ``SquareLive.setup_error``, which donors see as
"temporarily unavailable") sent staff to the cables, which cannot fix it. Here the adapter talks to the fake Square
on loopback (a refused token; Square not answering at all), its ``health()`` feeds the status inputs as the
running kiosk does (kiosk/app/staffside.py), and the line is read from the real maintenance menu's status page.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kiosk.ops.status import StatusInputs
from kiosk.payment.square import SquareTerminal
from tests.menu.conftest import STATUS, build_rig
from tests.menu.test_menu_words import english_words
from tests.payment.fake_square import DEVICE, LOCATION, TOKEN, FakeSquare

CABLES = "決済端末の電源とケーブルを確認してください。"


def _terminal(url: str, token: str, tmp_path: Path) -> SquareTerminal:
    return SquareTerminal(base_url=url, token=token, location_id=LOCATION, device_id=DEVICE,
                          journal=tmp_path / "square-journal.db", deadline_s=30, answer_grace_s=1,
                          poll_interval_ms=100, request_timeout_s=2.0)


def _payment_page(tmp_path: Path, inputs: StatusInputs) -> tuple[str, list[str]]:
    """The maintenance menu's status page, the payment row opened: its big value and its lines (Japanese)."""
    rig = build_rig(tmp_path / "menu", status_inputs=lambda: inputs)
    try:
        rig.open()
        rig.menu.model.press("go", "status")
        row = next(i for i, item in enumerate(rig.menu.model.status) if item.key == "payment")
        rig.menu.model.press("status_item", row)
        view = rig.view()
        return view.big, list(view.lines)
    finally:
        rig.ledger.close(checkpoint=False)


def test_a_refused_setup_sends_staff_to_the_settings_not_the_cables(tmp_path):
    with FakeSquare() as fake:
        term = _terminal(fake.url, "EAAA-expired-token", tmp_path)  # Square answers 401 to every request
        try:
            result = term.charge(300, "setup-refused-1", reference="1")
            assert result.status == "declined" and result.unavailable  # the donor saw "temporarily unavailable"
            state, detail = term.health(wait=True)
        finally:
            term.close()
    assert state == "error", (state, detail)
    big, lines = _payment_page(tmp_path, dataclasses.replace(STATUS, payment_state=state, payment_detail=detail))
    # What Square's words mean first (s54), then what to do; Square's own words on the details line (review 51).
    todo = lines[2]
    assert "Square（カード決済のサービス）" in lines[0] and not english_words(lines[0], frozenset({"Square"}))
    assert lines[1] == "対処：" and lines[-1].startswith("詳細（保守担当者向け）：Square refused")
    assert CABLES not in lines and "ケーブルでは直りません" in todo and "設定をした担当者に連絡" in todo, lines
    # s54: staff are told what they can look at (the terminal's own screen) and whom to call; which setting it is
    # (the access token) and the commands that find and fix it are the technician's, after Square's words on the
    # details line.
    assert "決済端末の画面" in todo and "アクセストークン" not in todo and "kiosk" not in todo, todo
    assert "kiosk payment pair" in lines[-1] and "kiosk doctor" in lines[-1] and "アクセストークン" in lines[-1], lines
    assert not english_words(todo, frozenset({"Square"})), todo
    assert big.startswith("エラー"), big


def test_a_terminal_service_that_does_not_answer_sends_staff_to_the_kiosks_network(tmp_path):
    """Square's service not answering the kiosk is the kiosk's network (s54): the card terminal's power and cable
    (it talks to Square on its own) cannot fix that, as this test once expected."""
    with FakeSquare() as fake:
        url = fake.url
    term = _terminal(url, TOKEN, tmp_path)  # the port is closed now: nothing answers
    try:
        state, detail = term.health(wait=True)
    finally:
        term.close()
    assert state == "offline", (state, detail)
    _big, lines = _payment_page(tmp_path, dataclasses.replace(STATUS, payment_state=state, payment_detail=detail))
    assert "Square（カード決済のサービス）につながりません" in lines[0], lines
    assert lines[1] == "対処：" and "LANケーブル" in lines[2] and CABLES not in lines, lines
    assert lines[-1].startswith("詳細（保守担当者向け）：no answer from Square"), lines

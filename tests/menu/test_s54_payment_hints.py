"""s54: the payment row's what-to-do asks staff only for what they can do; the commands are the technician's.

A payment setup Square refused (the access token, the terminal's pairing) said on the menu, on the staff's
what-to-do line: 「`kiosk doctor` でどの設定がおかしいかがわかり、`kiosk payment pair` で決済端末を登録し直し、
`kiosk payment test` で直ったか確かめられます」; a kiosk with no payment terminal: 「`kiosk doctor` で何が足りないかが
わかります」. Center staff have a touch screen and no keyboard. Now the what-to-do says whom to ask and what they can
look at themselves (the payment terminal's own screen: pairing is signing it in with a code, docs/payment.md), and
the commands go on the technician's details line (詳細（保守担当者向け）：…), after Square's own words when there are
some. `kiosk status` (the technician's, over ssh) keeps the commands in its advice.

Real parts: the real menu drawn headless over the status page's real model (as tests/menu/test_s54_status_hints.py);
the details are the ones the Square adapter writes (kiosk/payment/square.py ``health``, ``check_device``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.ops.status import PAYMENT_SETUP_HINT, StatusInputs, status_items

from .conftest import STATUS, Rig, build_rig
from .test_menu_status_japanese import DETAILS_EN, DETAILS_JA
from .test_menu_words import english_words
from .test_s54_status_hints import COMMAND, _pages, _staff_lines, _tech

SETUP_REFUSED = {
    "token": "Square refused the access token (HTTP 401)",
    "unpaired": "Square knows no device dev-1",
    "checkout": "Square refused the last checkout (HTTP 401: UNAUTHORIZED)",
}
"""The details of the ``error`` state, as the Square adapter writes them."""


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = build_rig(tmp_path / "menu")
    yield r
    r.ledger.close(checkpoint=False)


def _payment(rig: Rig, inputs: StatusInputs, lang: str = "ja") -> list[str]:
    return _pages(rig, inputs, lang)["payment"]


@pytest.mark.parametrize("kind", sorted(SETUP_REFUSED))
def test_a_refused_setup_says_whom_to_ask_and_what_to_look_at_the_commands_for_the_technician(rig, kind):
    inputs = dataclasses.replace(STATUS, payment_state="error", payment_detail=SETUP_REFUSED[kind])
    lines = _payment(rig, inputs)
    todo = " ".join(_staff_lines(lines))
    assert "設定をした担当者" in todo and "ケーブルでは直りません" in todo, lines
    assert "決済端末の画面" in todo, lines  # what staff can see for themselves
    assert "サインイン" not in todo and "アクセストークン" not in todo, lines  # the technician's words
    assert not COMMAND.search(todo) and not english_words(todo, frozenset({"Square"})), lines
    # The technician's line: Square's own words first (what to read out on the phone), then the commands.
    tech = _tech(lines)
    assert tech.startswith(DETAILS_JA + SETUP_REFUSED[kind]), lines
    assert "`kiosk doctor`" in tech and "`kiosk payment pair`" in tech and "`kiosk payment test`" in tech, tech
    # `kiosk status`, over ssh: the same advice as before, commands and all.
    pay = next(i for i in status_items(inputs) if i.key == "payment")
    assert pay.level == "red" and pay.hint == PAYMENT_SETUP_HINT and "`kiosk payment pair`" in pay.hint, pay


def test_a_refused_setup_without_squares_words_still_gives_the_technician_the_commands(rig):
    lines = _payment(rig, dataclasses.replace(STATUS, payment_state="error", payment_detail=""))
    assert not COMMAND.search(" ".join(_staff_lines(lines))), lines
    assert "`kiosk payment pair`" in _tech(lines), lines


def test_no_payment_terminal_says_whom_to_call_the_command_for_the_technician(rig):
    inputs = dataclasses.replace(STATUS, payment_state=None, payment_unused="no_terminal")
    lines = _payment(rig, inputs)
    todo = " ".join(_staff_lines(lines))
    assert "決済端末が設定されていない" in todo and "設定をした担当者に連絡" in todo, lines
    assert not COMMAND.search(todo) and not english_words(todo), lines
    assert "`kiosk doctor`" in _tech(lines), lines
    pay = next(i for i in status_items(inputs) if i.key == "payment")
    assert "`kiosk doctor`" in pay.hint, pay  # `kiosk status` keeps it


def test_other_payment_rows_have_no_command_for_staff_and_no_note_of_ours(rig):
    """The split touches only the setup rows: Square not answering is the network, not the settings."""
    for state, detail in (("offline", "no answer from Square (ConnectTimeout)"),
                          ("ready", "device dev-1 (OFFLINE); no checkout yet")):
        lines = _payment(rig, dataclasses.replace(STATUS, payment_state=state, payment_detail=detail))
        assert not COMMAND.search(" ".join(_staff_lines(lines))), lines
        assert _tech(lines) == DETAILS_JA + detail, lines


def test_the_english_menu_says_the_same_without_commands(rig):
    for inputs in (dataclasses.replace(STATUS, payment_state="error", payment_detail=SETUP_REFUSED["token"]),
                   dataclasses.replace(STATUS, payment_state=None, payment_unused="no_terminal")):
        lines = _payment(rig, inputs, "en")
        staff = [t for t in lines if not t.startswith(DETAILS_EN)]
        assert staff[1:] and not any(COMMAND.search(t) for t in staff), lines
        assert any(t.startswith(DETAILS_EN) and "`kiosk doctor`" in t for t in lines), lines

"""s54: the page of a payment setup Square refused is short enough to be read at the body size.

The payment row's page when Square refused the kiosk's settings (the access token, the terminal's pairing, a
checkout refused with HTTP 401) was a wall of eight lines drawn at 23 px on a 1280x720 panel (the Square-offline
page: 32 px). Its first line and its what-to-do said the same thing twice (Square refused the settings, the access
token), and the staff's part named what staff cannot act on (アクセストークン, 決済端末の登録, サインイン). Now it
says, once, at 31 px: card donations cannot be taken, cables will not fix it, call the person who set up the
kiosk and tell them what the payment terminal's own screen shows; the token, the pairing and the commands are on
the 詳細 line.

Real parts: the real menu drawn headless over the status page's real model (as tests/menu/test_s54_payment_hints.py),
its text sizes read from the drawing (``ui.measure_text``); the details are the ones the Square adapter writes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pygame
import pytest

from kiosk.ops.status import StatusInputs
from kiosk.ui import widgets as ui

from .conftest import STATUS, Rig, build_rig
from .test_menu_status_japanese import DETAILS_EN, DETAILS_JA
from .test_s54_payment_hints import SETUP_REFUSED
from .test_s54_status_hints import COMMAND

JARGON = ("アクセストークン", "登録", "サインイン", "ペアリング", "トークン")
"""Words of the setup staff cannot act on at the touch screen: the technician's, on the 詳細 line only."""
FLOOR = 30
"""The least text size of the page at 1280x720 (the menu shrinks a page's lines until they fit)."""


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = build_rig(tmp_path / "menu")
    yield r
    r.ledger.close(checkpoint=False)


def _payment_page(rig: Rig, inputs: StatusInputs, lang: str = "ja",
                  size: tuple[int, int] = (1280, 720)) -> tuple[str, list[str], list[tuple[int, str]]]:
    """The payment row's page as drawn: (its big line, its lines, the (size, text) of each drawn line of them)."""
    rig.machine.language = lang
    rig.services.status_inputs = lambda: inputs
    if not rig.menu.model.is_open:
        rig.open()
    rig.menu.model.press("go", "status")
    n = next(n for n, i in enumerate(rig.menu.model.status) if i.key == "payment")
    rig.menu.model.press("status_item", n)
    view = rig.view()
    with ui.measure_text() as strings:
        rig.menu.render(pygame.Surface(size), 0)
    rig.menu.model.press("back")
    rig.menu.model.press("back")
    drawn = list(strings)
    start = next(k for k, (_, t) in enumerate(drawn) if t == view.big) + 1  # after the title and the big line
    body = drawn[start:start + sum(1 for _, t in drawn[start:] if any(t.rstrip("…") in s for s in view.lines))]
    return view.big, list(view.lines), body


def _size(body: list[tuple[int, str]]) -> int:
    sizes = {s for s, _ in body}
    assert len(sizes) == 1, body  # one size for every line of the page
    return sizes.pop()


@pytest.mark.parametrize("kind", sorted(SETUP_REFUSED))
def test_a_refused_setup_page_says_it_once_in_two_short_lines_drawn_near_the_body_size(rig, kind):
    refused = dataclasses.replace(STATUS, payment_state="error", payment_detail=SETUP_REFUSED[kind])
    big, lines, body = _payment_page(rig, refused)
    staff = [t for t in lines if not t.startswith(DETAILS_JA)]
    assert len(staff) == 3 and staff[1] == "対処：", lines  # one meaning line, one what-to-do line
    said = " ".join(staff)
    assert "カードでの寄付" in said and "ケーブル" in said and "設定をした担当者に連絡" in said, lines
    assert "決済端末の画面" in said, lines  # what staff can look at themselves
    # Once: the big line says the settings were refused; the lines under it do not say it again.
    assert "設定が受け付けられません" in big and "決済の設定" not in said, (big, lines)
    assert said.count("カードでの寄付") == 1 and said.count("ケーブル") == 1, lines
    assert not any(w in said for w in JARGON) and not COMMAND.search(said), lines
    # The technician's line keeps Square's words, which setting it may be, and the commands.
    tech = lines[-1]
    assert tech.startswith(DETAILS_JA + SETUP_REFUSED[kind]), lines
    assert "アクセストークン" in tech and "`kiosk doctor`" in tech and "`kiosk payment pair`" in tech, tech
    # Short enough to be drawn near the size of the payment row's other pages (Square not reachable: 32 px; this
    # page was 23 px), nothing cut; the staff's part in four lines on the panel.
    assert _size(body) >= FLOOR, body
    assert len(body) <= 7 and not any(t.endswith("…") for _, t in body), body
    assert sum(1 for _, t in body if any(t.rstrip("…") in s for s in staff)) <= 4, body


def test_the_english_page_is_as_short(rig):
    refused = dataclasses.replace(STATUS, payment_state="error", payment_detail=SETUP_REFUSED["token"])
    _, lines, body = _payment_page(rig, refused, "en")
    staff = [t for t in lines if not t.startswith(DETAILS_EN)]
    assert len(staff) == 3 and not COMMAND.search(" ".join(staff)), lines
    assert not any(w in " ".join(staff).lower() for w in ("token", "pair", "sign in")), lines
    assert "token" in lines[-1] and "`kiosk payment pair`" in lines[-1], lines
    assert _size(body) >= FLOOR and not any(t.endswith("…") for _, t in body), body


def test_a_refused_setup_without_squares_words_still_says_card_donations_stop(rig):
    big, lines, body = _payment_page(rig, dataclasses.replace(STATUS, payment_state="error", payment_detail=""))
    staff = [t for t in lines if not t.startswith(DETAILS_JA)]
    assert staff[0] == "対処：" and "カードでの寄付" in staff[1] and "設定をした担当者に連絡" in staff[1], lines
    assert "`kiosk payment pair`" in lines[-1], lines
    assert _size(body) >= FLOOR, body

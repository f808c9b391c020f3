"""Review 51: the status page's payment and reader rows showed the adapter's and the reader's own English.

The reviewer saw 「エラー: Square refused the last checkout (HTTP 401…)」 on a Japanese status page; a healthy Square
Terminal's row read "ready: device … (AVAILABLE); last checkout: approved", the simulator's "ready: simulated
terminal (approve): no real money", a lost reader's 「再接続中 reader unplugged or not found (ENODEV)」, and a reader
fault's row was the shell lines of its fix (``sudo tee -a /etc/udev/rules.d/…``). The menu now says the state in
plain Japanese and puts those words on a 詳細（保守担当者向け） line of the row's page, for the technician staff phone;
`kiosk status` prints the same value as before.

The inputs are real: the Square adapter against the fake Square API on loopback with a refused token, the
simulated terminal, the simulated reader under its supervisor, read through the running kiosk's own
``StaffSide.status_inputs``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kiosk.app.staffside import StaffSide
from kiosk.config.reader import ReaderConfig
from kiosk.ledger import Pepper
from kiosk.ledger.clock import FixedClock
from kiosk.ops.status import status_items
from kiosk.payment.sim import SimulatedTerminal
from kiosk.reader.sim import SimReader
from kiosk.reader.supervisor import ReaderSupervisor
from tests.payment.fake_square import FakeSquare
from tests.payment.test_square_terminal import SleepLog, terminal

from .conftest import Rig, build_rig
from .test_menu_status_japanese import DETAILS_EN, DETAILS_JA, _before_details, _row
from .test_menu_words import drawn, english_words

IDEM = "51515151515151515151515151515151"


class _Kiosk:
    """The running kiosk's status inputs (``StaffSide.status_inputs``: the reader's state and words, the
    terminal's ``health()``) over a real terminal and a real reader supervisor, with no sync and no player."""

    def __init__(self, rig: Rig, terminal: Any = None, reader: ReaderSupervisor | None = None):
        app = SimpleNamespace(reader=reader, player=None, failed=False, terminal=terminal, ledger=rig.ledger,
                              cfg=rig.cfg)
        side = StaffSide.__new__(StaffSide)  # the inputs only: no menu, executor or sync thread of its own
        side.app, side.sync, side.last_family = app, None, None  # type: ignore[assignment]
        self.side = side
        rig.services.status_inputs = side.status_inputs


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = build_rig(tmp_path / "menu")
    yield r
    r.ledger.close(checkpoint=False)


@pytest.fixture
def refused_square(tmp_path: Path) -> Iterator[Any]:
    """The real Square adapter whose access token Square refuses: the donor's first checkout is refused (401)."""
    clk = SleepLog()
    with FakeSquare(clock=clk.monotonic) as fake:
        term = terminal(fake, clk, tmp_path, token="wrong-token")
        result = term.charge(500, IDEM)
        assert result.status == "declined" and result.unavailable, result
        state, detail = term.health(wait=True)
        assert state == "error" and "HTTP 401" in detail, detail  # what the reviewer saw
        yield term
        term.close()


@pytest.fixture
def approved_square(tmp_path: Path) -> Iterator[Any]:
    """The real Square adapter after a donation went through: the everyday, healthy row."""
    clk = SleepLog()
    with FakeSquare(clock=clk.monotonic) as fake:
        fake.plan = ["complete"]
        term = terminal(fake, clk, tmp_path)
        assert term.charge(500, IDEM).status == "approved"
        state, detail = term.health(wait=True)
        assert state == "ready" and "last checkout: approved" in detail, detail
        yield term
        term.close()


def _status(rig: Rig, key: str, lang: str) -> tuple[str, str, str]:
    """The status page's text as drawn, then the item page of ``key``: (status page, the item page as drawn
    before the details label, the details line)."""
    rig.machine.language = lang
    rig.open()
    rig.menu.model.press("go", "status")
    page = "\n".join(t for _, t in drawn(rig))
    rig.menu.model.press("status_item", _row(rig, key))
    label = DETAILS_JA if lang == "ja" else DETAILS_EN
    before, after = _before_details(drawn(rig), label)
    assert after.startswith(label), after  # drawn, last
    [line] = [t for t in rig.view().lines if t.startswith(label)]
    return page, before, line


def test_a_refused_square_token_is_said_in_japanese_with_squares_words_on_the_details_line(rig, refused_square):
    _Kiosk(rig, terminal=refused_square)
    page, before, after = _status(rig, "payment", "ja")
    assert "エラー：決済の設定が受け付けられません" in page, page
    assert not english_words(page), page  # was 「エラー: Square refused the last checkout (HTTP 401…)」
    assert "エラー：決済の設定が受け付けられません" in before and "対処：" in before, before
    assert not english_words(before), before
    # Square's own words stay, for the technician on the phone: on their own line, labelled.
    assert after.startswith(DETAILS_JA + "Square refused the last checkout (HTTP 401"), after


def test_the_english_menu_keeps_squares_words_on_the_details_line(rig, refused_square):
    _Kiosk(rig, terminal=refused_square)
    page, before, after = _status(rig, "payment", "en")
    assert "Error: the payment settings were refused" in page, page
    assert "UNAUTHORIZED" in after and after.startswith(DETAILS_EN + "Square refused"), after


def test_kiosk_status_prints_the_same_value_as_before(rig, refused_square):
    """`kiosk status` (English, for a terminal) is unchanged: the value still holds Square's words."""
    state, detail = refused_square.health(wait=True)
    [pay] = [i for i in status_items(_Kiosk(rig, terminal=refused_square).side.status_inputs())
             if i.key == "payment"]
    assert (pay.level, pay.value) == ("red", f"error: {detail}") and pay.value.startswith("error: Square refused")


def test_a_healthy_square_terminal_and_the_simulator_read_plainly(rig, approved_square, tmp_path):
    """The everyday green row: "ready: device … ; last checkout: approved" was English on every kiosk."""
    _Kiosk(rig, terminal=approved_square)
    page, before, after = _status(rig, "payment", "ja")
    assert "使用できます" in page and not english_words(page), page
    assert not english_words(before) and after.endswith("; last checkout: approved"), (before, after)
    sim = SimulatedTerminal(tmp_path / "sim-payments.db")
    try:
        _Kiosk(rig, terminal=sim)
        rig.menu.model.press("go", "status")
        page = "\n".join(t for _, t in drawn(rig))
        assert "使用できます" in page and not english_words(page), page
    finally:
        sim.close()


@pytest.mark.parametrize("fault,detail", [
    # a setup fault: why, then its fix (shell lines) on the same line (review 51b)
    ("eacces", "no permission to open the reader (EACCES): the udev rule is missing; fix: sudo tee -a /etc/udev/"),
    ("unplug", "reader unplugged or not found (ENODEV)"),  # lost: why, in the reader's words
])
def test_a_reader_fault_is_said_in_japanese_with_its_own_words_on_the_details_line(rig, tmp_path, fault, detail):
    clock = FixedClock()
    reader = SimReader(ReaderConfig(), Pepper.create(tmp_path / "pepper.json").token, clock=clock.monotonic,
                       sleep=clock.sleep)
    sup = ReaderSupervisor(reader)
    if fault == "unplug":
        reader.unplug()
    else:
        reader.set_fault(fault)
    sup.step()
    _Kiosk(rig, reader=sup)
    page, before, after = _status(rig, "reader", "ja")
    said = "動いていません" if fault == "eacces" else "再接続中"
    assert said in page and not english_words(page), page
    assert said in before and "対処：" in before and not english_words(before), before
    assert after.startswith(DETAILS_JA + detail), after
    assert "\n" not in after, after  # the fix's shell lines on one line
    reader.shutdown()

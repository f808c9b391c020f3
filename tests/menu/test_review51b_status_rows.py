"""Review 51b: two status rows that still told staff the wrong thing.

1. A reader refused by udev showed, on its details line, the shell fix ("sudo tee -a /etc/udev/rules.d/…") and not
   why ("no permission to open the reader (EACCES): the udev rule is missing"): staff read that line to the
   technician on the phone. Now the reason comes first, then the fix, on the one line (cut at 160 characters: the
   fix's tail is what is cut, never the reason).
2. A kiosk that failed closed (its ledger failed: ``App.failed``), or one with no payment terminal, showed the
   payment row as 「つながりません」 with 「決済端末の電源とケーブルを確認してください」: wrong for both. The failed
   ledger is the ledger row's problem, and a missing terminal is a setup matter; each now has its own words.

Real parts: the simulated reader under its supervisor, the simulated terminal (its own SQLite), read through the
running kiosk's ``StaffSide.status_inputs``; the real menu drawn headless.
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
from kiosk.staff.menu.status_text import DETAIL_CHARS

from .conftest import Rig, build_rig
from .test_menu_status_japanese import DETAILS_EN, DETAILS_JA, _before_details, _row
from .test_menu_words import drawn, english_words


def _kiosk(rig: Rig, *, terminal: Any = None, reader: ReaderSupervisor | None = None, failed: bool = False) -> Any:
    """The running kiosk's status inputs over a real terminal and a real reader supervisor (no sync, no player);
    ``failed``: the kiosk failed closed (``App.failed``: its ledger writer stopped)."""
    app = SimpleNamespace(reader=reader, player=None, failed=failed, terminal=terminal, ledger=rig.ledger,
                          cfg=rig.cfg)
    side = StaffSide.__new__(StaffSide)  # the inputs only: no menu, executor or sync thread of its own
    side.app, side.sync, side.last_family = app, None, None  # type: ignore[assignment]
    rig.services.status_inputs = side.status_inputs
    return side


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = build_rig(tmp_path / "menu")
    yield r
    r.ledger.close(checkpoint=False)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatedTerminal]:
    term = SimulatedTerminal(tmp_path / "sim-payments.db")
    yield term
    term.close()


def _item_page(rig: Rig, key: str, lang: str = "ja") -> tuple[str, str, str]:
    """(the status page as drawn, the row's page as drawn, the row's page's details line or "")."""
    rig.machine.language = lang
    rig.open()
    rig.menu.model.press("go", "status")
    page = "\n".join(t for _, t in drawn(rig))
    rig.menu.model.press("status_item", _row(rig, key))
    text = "".join(t for _, t in drawn(rig))
    label = DETAILS_JA if lang == "ja" else DETAILS_EN
    lines = [t for t in rig.view().lines if t.startswith(label)]
    return page, text, lines[0] if lines else ""


# --- 1. the reader's details line: the reason first, then the fix ------------------------------------------------

REASONS = {
    "eacces": ("no permission to open the reader (EACCES): the udev rule is missing", "sudo tee -a /etc/udev/"),
    "ebusy": ("reader is busy (EBUSY): a kernel driver or another program holds it", "printf 'blacklist port100"),
}


@pytest.mark.parametrize("fault", sorted(REASONS))
def test_a_reader_fault_reads_its_reason_first_then_the_fix(rig, tmp_path, fault):
    clock = FixedClock()
    reader = SimReader(ReaderConfig(), Pepper.create(tmp_path / "pepper.json").token, clock=clock.monotonic,
                       sleep=clock.sleep)
    sup = ReaderSupervisor(reader)
    try:
        reader.set_fault(fault)
        sup.step()
        assert sup.last_fault is not None and len(sup.last_fault.fix) > DETAIL_CHARS  # a fix longer than the line
        side = _kiosk(rig, reader=sup)
        reason, fix = REASONS[fault]
        page, text, line = _item_page(rig, "reader")
        assert "動いていません" in page and not english_words(page), page
        before, _after = _before_details(drawn(rig), DETAILS_JA)
        assert "対処：" in before and not english_words(before), before
        # What staff read out: the reason whole, then the fix (its tail cut with "…", never the reason).
        assert line.startswith(DETAILS_JA + reason + "; fix: " + fix), line
        assert "\n" not in line and len(line) <= len(DETAILS_JA) + DETAIL_CHARS and line.endswith("…"), line
        # `kiosk status` (English, --json): the reason then the fix, whole, in the value and the detail.
        [item] = [i for i in status_items(side.status_inputs()) if i.key == "reader"]
        assert (item.level, item.value) == ("red", f"{reason}; fix: {sup.last_fault.fix}"), item
        assert item.detail == item.value and item.short == "fault", item
    finally:
        reader.shutdown()


def test_a_lost_reader_keeps_its_reason_alone(rig, tmp_path):
    """A lost reader has no fix: its details line is the reason, as before."""
    clock = FixedClock()
    reader = SimReader(ReaderConfig(), Pepper.create(tmp_path / "pepper.json").token, clock=clock.monotonic,
                       sleep=clock.sleep)
    sup = ReaderSupervisor(reader)
    try:
        reader.unplug()
        sup.step()
        _kiosk(rig, reader=sup)
        _page, _text, line = _item_page(rig, "reader")
        assert line == DETAILS_JA + "reader unplugged or not found (ENODEV)", line
    finally:
        reader.shutdown()


# --- 2. the payment row of a kiosk that failed closed, or has no terminal ---------------------------------------

def test_a_kiosk_that_failed_closed_sends_staff_to_the_ledger_row_not_the_cables(rig, sim):
    side = _kiosk(rig, terminal=sim, failed=True)
    page, text, line = _item_page(rig, "payment")
    assert "決済端末の電源とケーブル" not in text, text  # was: 「つながりません」, check the power and cable
    assert "つながりません" not in page and "台帳の異常で停止中" in page and not english_words(page), page
    assert "「台帳」の行" in text and "ケーブルを確かめても直りません" in text, text
    assert not english_words(text) and line == "", (text, line)  # nothing technical to read out
    # The ledger row, where the advice points, is the red one that says what to do.
    items = {i.key: i for i in status_items(side.status_inputs())}
    assert items["ledger"].level == "red" and "kiosk doctor" in items["ledger"].hint
    # `kiosk status` in English: the same state, the same advice.
    pay = items["payment"]
    assert pay.level == "red" and pay.value == "stopped: the ledger failed", pay
    assert "Ledger row" in pay.hint and pay.hint != "check the payment terminal's power and cable", pay


def test_a_kiosk_with_no_payment_terminal_says_it_is_a_setup_matter(rig):
    side = _kiosk(rig, terminal=None)
    page, text, line = _item_page(rig, "payment")
    assert "決済端末の電源とケーブル" not in text, text
    assert "決済端末が設定されていません" in page and not english_words(page), page
    # s54: the what-to-do says whom to call; the command is the technician's, on the details line.
    todo = text.split(DETAILS_JA)[0]
    assert "設定をした担当者" in todo and "kiosk doctor" not in todo and not english_words(todo), text
    assert line.startswith(DETAILS_JA) and "`kiosk doctor`" in line, line
    [pay] = [i for i in status_items(side.status_inputs()) if i.key == "payment"]
    assert pay.level == "red" and pay.value == "no payment terminal set up", pay
    assert "kiosk doctor" in pay.hint and pay.hint != "check the payment terminal's power and cable", pay


def test_the_english_menu_says_both_in_english(rig, sim):
    _kiosk(rig, terminal=sim, failed=True)
    page, text, _line = _item_page(rig, "payment", "en")
    assert "Stopped: the ledger failed" in page and "Ledger row" in text, (page, text)


def test_a_healthy_kiosk_still_asks_the_terminal(rig, sim):
    """Not failed, a terminal: its own health() answers, as before (green, no advice)."""
    side = _kiosk(rig, terminal=sim)
    [pay] = [i for i in status_items(side.status_inputs()) if i.key == "payment"]
    assert pay.level == "green" and pay.value.startswith("ready: simulated terminal"), pay
    assert side._payment_report()["state"] == "ready"

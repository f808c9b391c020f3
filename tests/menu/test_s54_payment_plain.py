"""s54: the device menu's payment row in plain Japanese, and a kiosk that failed closed says why and what to do.

1. The payment terminal's row page showed the adapter's English detail as its only explanation: 「使用できます」
   and then 「詳細（保守担当者向け）：simulated terminal (approve): no real money」 (a practice terminal taking
   no real money, on a green row), 「つながりません」 + "check the power and cable" for "Square unreachable (…)"
   (the kiosk's network, not the terminal's cables), and a green 「使用できます」 for a paired Square Terminal that
   Square says is OFFLINE. Now each kind of detail has a plain line first (``status_text.PAYMENT_DETAILS``, as the
   portal's kiosks page does), its own advice where the state's was wrong, a yellow row when Square says the
   terminal is off; the English stays on the 詳細 line.
2. A kiosk that failed closed showed its ledger row as 「41 件・<1 MB」 in red with 「`kiosk doctor` を実行し…」:
   neither why nor anything staff can do. Now the status page says donations are stopped and where to read why,
   and the ledger row says why and what to do.

Real parts: the simulated terminal and the real Square adapter (against a refused loopback port, and a loopback
HTTP server answering Square's GetDevice), read through the running kiosk's ``StaffSide.status_inputs``; a real
``App`` whose donation worker died; the real menu drawn headless.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pygame
import pytest

from kiosk.ops.status import StatusInputs, StatusItem, status_items
from kiosk.payment.sim import SimulatedTerminal
from kiosk.staff.menu import status_text
from kiosk.ui import widgets as ui
from kiosk.ui.i18n import translations
from tests.loopback import LoopbackServer, answering, refused_port
from tests.payment.test_square_terminal import SleepLog, terminal

from .conftest import Rig, build_rig
from .test_menu_status_japanese import DETAILS_JA, _row
from .test_menu_words import drawn, english_words
from .test_review51b_status_rows import _kiosk

ROOT = Path(__file__).resolve().parents[2]
JA = translations("ja")


# --- every detail the adapters write has plain words ---------------------------------------------------------

def _sample(node: ast.expr) -> str | None:
    """A detail as the adapter's expression writes it, each {…} as "X"; None for one not written here (another
    detail passed on, or a composition starting with one)."""
    if isinstance(node, ast.BinOp):
        return _sample(node.left)
    if isinstance(node, ast.IfExp):
        return _sample(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)  # type: ignore[misc]
    return None


def _details_written(path: Path, functions: set[str]) -> set[str]:
    """Every (state, detail) pair ``functions`` of ``path`` return or assign: the detail's sample."""
    out: set[str] = set()
    for fn in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not isinstance(fn, ast.FunctionDef) or fn.name not in functions:
            continue
        for node in ast.walk(fn):
            value = node.value if isinstance(node, (ast.Return, ast.Assign)) else None
            if isinstance(value, ast.Tuple) and len(value.elts) == 2:
                state = value.elts[0]
                if isinstance(state, (ast.Constant, ast.IfExp)) and (d := _sample(value.elts[1])) is not None:
                    out.add(d)
            if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["last"]:
                for branch in (node.value.body, node.value.orelse) if isinstance(node.value, ast.IfExp) else ():
                    if (d := _sample(branch)) is not None:
                        out.add(d)
    return out


def test_every_detail_the_payment_adapters_write_has_a_plain_japanese_line():
    written = (_details_written(ROOT / "kiosk/payment/square.py", {"health", "_refresh_device", "check_device"})
               | _details_written(ROOT / "kiosk/payment/sim.py", {"health"}))
    # The walk finds what it must (a walk that finds nothing would pass anything).
    assert {"simulated terminal (offline mode)", "simulated terminal (X): no real money", "checkout X",
            "Square refused the last checkout (X)X", "Square unreachable (X)", "device check failed (X)",
            "Square knows no device X", "Square refused the access token (HTTP X)", "Square answered HTTP X",
            "no answer from Square (X)", "device X", "last checkout: X", "no checkout yet"} <= written, written
    for detail in sorted(written):
        item = StatusItem("payment", "green", f"ready: {detail}", detail=detail, short="ready")
        words = status_text.payment_words(item)
        assert words is not None, f"{detail!r}: the menu has no plain words for it (status_text.PAYMENT_DETAILS)"
        said = status_text.meaning(item, JA.gettext)
        assert said and said != words.meaning and not english_words(said), (detail, said)
        for msgid in (words.todo, words.row):
            assert not msgid or not english_words(JA.gettext(msgid)), (detail, msgid)
    # Square's word for a paired terminal that is off or needs a look: the row asks for a look although "ready"
    # (status_items says so, for `kiosk status` and the menu alike: tests/menu/test_s54_status_hints.py).
    for category in ("OFFLINE", "NEEDS_ATTENTION"):
        [item] = [i for i in status_items(StatusInputs(payment_state="ready", payment_detail=f"device dev-1 "
                                                       f"({category}); no checkout yet")) if i.key == "payment"]
        assert item.level == "yellow" and status_text.payment_words(item) is not None
    [item] = [i for i in status_items(StatusInputs(payment_state="ready", payment_detail="device dev-1 (AVAILABLE); "
                                                   "no checkout yet")) if i.key == "payment"]
    assert item.level == "green"


# --- the menu as staff read it, over the real adapters -----------------------------------------------------

@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = build_rig(tmp_path / "menu")
    yield r
    r.ledger.close(checkpoint=False)


def _payment(rig: Rig) -> tuple[str, str, Any, list[str]]:
    """(the payment row's value on the status page, its dot, the row's page, its lines) in Japanese."""
    rig.machine.language = "ja"
    if not rig.menu.model.is_open:
        rig.open()
    rig.menu.model.press("go", "status")
    row = rig.view().buttons[_row(rig, "payment")]
    rig.menu.model.press("status_item", _row(rig, "payment"))
    view = rig.view()
    assert "\n".join(t for _, t in drawn(rig))  # the page draws
    return row.detail, row.dot or "", view, list(view.lines)


def _plain_first(lines: list[str], english: str) -> None:
    """The adapter's English only on the last, 詳細 line; a plain Japanese line before everything else."""
    assert lines[-1] == DETAILS_JA + english, lines
    assert lines[0] and not english_words(lines[0]), lines
    assert not any(english_words(t) for t in lines[:-1]), lines


def test_a_practice_terminal_says_no_real_money_on_its_row(rig, tmp_path):
    sim = SimulatedTerminal(tmp_path / "sim.db")
    try:
        _kiosk(rig, terminal=sim)
        value, dot, view, lines = _payment(rig)
        assert dot == "green" and "練習用" in value and "お金は動きません" in value, value
        _plain_first(lines, "simulated terminal (approve): no real money")
        assert "練習用の決済端末" in lines[0] and any("設定をした担当者" in t for t in lines), lines
        sim.mode = "offline"
        value, dot, view, lines = _payment(rig)
        assert dot == "red" and "練習用" in lines[0] and "ふり" in lines[0], lines
        assert not any("電源とケーブル" in t for t in lines), lines  # a setting, not a cable
        _plain_first(lines, "simulated terminal (offline mode)")
    finally:
        sim.close()


def test_square_out_of_reach_sends_staff_to_the_network_not_the_terminals_cables(rig, tmp_path):
    with refused_port() as port:
        term = terminal(type("F", (), {"url": f"http://127.0.0.1:{port}"})(), SleepLog(), tmp_path,
                        request_timeout_s=2.0)
        try:
            state, detail = term.health(wait=True)
            assert state == "offline" and detail.startswith("no answer from Square ("), detail
            _kiosk(rig, terminal=term)
            value, dot, view, lines = _payment(rig)
        finally:
            term.close()
    assert dot == "red" and value == "つながりません", value
    _plain_first(lines, detail)
    assert "Square（カード決済のサービス）につながりません" in lines[0], lines
    assert any("LANケーブル" in t for t in lines) and not any("電源とケーブル" in t for t in lines), lines


def test_a_terminal_square_says_is_off_is_not_a_green_ready_row(rig, tmp_path):
    device = {"device": {"id": "device:TEST-1", "status": {"category": "OFFLINE"}}}
    with LoopbackServer(answering(200, json.dumps(device).encode())) as srv:
        term = terminal(type("F", (), {"url": srv.url})(), SleepLog(), tmp_path)
        try:
            state, detail = term.health(wait=True)
            assert state == "ready" and "(OFFLINE)" in detail, detail  # Square's own word: the kiosk says ready
            _kiosk(rig, terminal=term)
            value, dot, view, lines = _payment(rig)
            home = rig.menu.model.home_level
        finally:
            term.close()
    assert dot == "yellow" and view.dot == "yellow" and home != "green", (dot, view.dot, home)
    assert "電源が切れているか" in value and not english_words(value), value
    _plain_first(lines, detail)
    assert any("充電" in t for t in lines), lines


# --- a kiosk that failed closed ------------------------------------------------------------------------------

def test_a_kiosk_that_failed_closed_says_why_and_what_to_do(tmp_path):
    from kiosk.app.runtime import App
    from kiosk.ledger import Pepper
    from kiosk.ops.local_files import ensure_secrets
    from kiosk.reader.sim import preset_idm
    from tests.app.drive import headless_cfg, run_until

    cfg = headless_cfg(tmp_path / "data", (320, 180))
    cfg.kiosk.language = "ja"
    ensure_secrets(cfg)
    token = Pepper.load(cfg.pepper_path).token(preset_idm("suica"))
    cfg.staff.staff_tokens.append(token.hex)
    with App(cfg, sound=False) as app:
        def boom(svc: Any) -> None:
            raise RuntimeError("a bug in the service")

        app.submit(boom)
        run_until(app, lambda p: app.failed)
        app.staff.last_family = None
        menu = app.staff.menu
        assert menu.open_by_card(token)
        menu.model.press("go", "status")
        view = menu.view()
        surface = pygame.Surface((1280, 720))
        with ui.measure_text() as strings:
            menu.render(surface, 0)
        page = [t for _, t in strings]
        # Above the rows, on one line (drawn whole, not wrapped under the rows): stopped, and where to read why.
        assert view.notice_level == "red" and "寄付を止めています" in view.notice and "「台帳」" in view.notice
        assert view.notice in page, page
        ledger = next(b for b in view.buttons if b.value == _index(menu, "ledger"))
        assert ledger.dot == "red" and ledger.detail == "停止中：寄付を安全に記録できません", ledger
        menu.model.press("status_item", _index(menu, "ledger"))
        item = menu.view()
        text = "\n".join(item.lines)
        assert item.big == ledger.detail and not english_words(text), text
        assert "再起動" in text and "貼り紙" in text and "運用担当に連絡" in text, text
        assert re.search(r"詳細（保守担当者向け）：\d+ 件", item.lines[-1]), item.lines  # the figures it showed


def _index(menu: Any, key: str) -> int:
    return next(n for n, i in enumerate(menu.model.status) if i.key == key)

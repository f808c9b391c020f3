"""`kiosk status` and the maintenance menu tell staff what the uploader found, in the same words.

1. "the portal expects entries this ledger does not have" (a 409 ``gap`` whose ``expected_seq`` lies past the end
   of this ledger: the portal holds more of this kiosk than the kiosk does) is of the ``mismatch`` kind, like the
   heartbeat that names more entries than the ledger and like equivocation. Those raise the status page's red row
   ("this kiosk's records do not match the portal's": stop taking gifts, call the administrator); this one did
   not, because the uploader raised it without recording the mismatch (``extra["ledger_mismatch"]``), and the
   status page looked only at that record: staff saw a yellow or red "last sync" row saying to fix the error and
   press Sync now. Now the uploader records it as the others, and the status page raises the row for any error of
   the mismatch kind (a sync-state.json the earlier release saved without the record included).

   This release's portal never answers such a gap (it answers ``gap`` only when it holds fewer entries than the
   batch starts after), so the answer is played by a real HTTP server on loopback, as in
   tests/sync/test_uploader_answers.py: a portal holding more than this ledger, whose heartbeat answer lags.

2. `kiosk status` (a process of its own, reading sync-state.json through kiosk.ops) took a file with a field of the
   wrong type for a good one, while the uploader (``SyncState.load``) refuses to sync from it: staff read
   "enrolled" over ssh for a kiosk that cannot sync. Both now judge the file by the same rule.

Real ledgers and keys (tests/sync/sync_helpers.py), the real uploader, the real `kiosk status` CLI, the menu's real
Japanese catalog.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sync_helpers import Rig, make_rig

from kiosk.cli import main as kiosk_main
from kiosk.ops.status import LEDGER_MISMATCH, measured, read_saved_sync
from kiosk.staff.menu import status_text
from kiosk.sync.uploader import SyncState
from kiosk.ui.i18n import gettext_for
from tests.loopback import Handler, LoopbackServer

EXPECTS = "portal expects entries this ledger does not have"
DOES_NOT_MATCH_JA = "この端末の記録がポータルの記録と合っていません"
STOP_JA = "寄付の受付を止めて"  # "stop taking donations …" in the menu's Japanese


@pytest.fixture
def kiosk(tmp_path: Path) -> Any:
    r = make_rig(tmp_path)
    r.donate(3)
    yield r
    r.ledger.close(checkpoint=False)


def _portal_holding_more(kiosk_id: str, held: int) -> type[Handler]:
    """A portal that holds ``held`` entries of this kiosk: its heartbeat answer lags (0 held), and a batch is
    answered as the portal's gap check answers one: 409 ``gap``, expecting the seq after what it holds."""
    class Ahead(Handler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.endswith("/heartbeat"):
                self.answer(200, json.dumps({"kiosk_id": kiosk_id, "accepted_through_seq": 0, "checkpoint_size": 0,
                                             "config_version": 0, "server_time": int(time.time() * 1000)}).encode())
            else:
                self.answer(409, json.dumps({"error": "gap", "reason": f"the portal expects seq={held + 1}",
                                             "expected_seq": held + 1}).encode())

    return Ahead


def _enrolled_with(rig: Rig, url: str) -> None:
    """sync-state.json as `kiosk enroll` leaves it (the enrollment itself is the portal's business)."""
    SyncState(portal_url=url, kiosk_id=rig.kiosk_id, key_id="key-1", enrolled_ms=int(time.time() * 1000)).save(
        rig.cfg.data_dir / "sync-state.json")


def _status(rig: Rig, capsys: Any) -> dict[str, dict[str, Any]]:
    """`kiosk status --json`, the real CLI (what staff read over ssh): its items by key."""
    capsys.readouterr()
    assert kiosk_main(["status", "--config", str(rig.config_path), "--json"]) == 0
    return {i["key"]: i for i in json.loads(capsys.readouterr().out)["items"]}


def _menu_words(item: dict[str, Any]) -> str:
    """The sync row as the menu's status page says it in Japanese (kiosk.staff.menu.status_text)."""
    from kiosk.ops.status import StatusItem

    it = StatusItem(**item)
    tr = gettext_for("ja")
    return status_text.say(measured(it), tr) + " / " + status_text.say(it.hint, tr)


def test_a_portal_expecting_entries_the_ledger_lacks_raises_the_does_not_match_row(kiosk: Rig, capsys: Any) -> None:
    size = kiosk.ledger.size
    with LoopbackServer(_portal_holding_more(kiosk.kiosk_id, held=size + 5)) as server:
        _enrolled_with(kiosk, server.url)
        up = kiosk.uploader()
        try:
            state = up.sync_once(max_attempts=3)
        finally:
            up.close()
    assert state.last_error and state.last_error.startswith(EXPECTS), state.last_error
    assert state.last_error_kind == "mismatch"
    # Recorded as the other mismatches are, in the file `kiosk status` and the menu read.
    saved = json.loads((kiosk.cfg.data_dir / "sync-state.json").read_text("utf-8"))
    assert LEDGER_MISMATCH in saved["extra"] and saved["extra"][LEDGER_MISMATCH].startswith(EXPECTS), saved

    items = _status(kiosk, capsys)
    sync = items["sync"]
    assert sync["level"] == "red" and sync["value"].startswith("ledger does not match"), sync
    assert "stop taking donations" in sync["hint"], sync
    words = _menu_words(sync)
    assert DOES_NOT_MATCH_JA in words and STOP_JA in words, words


def test_a_mismatch_saved_without_its_record_still_raises_the_row(kiosk: Rig, capsys: Any) -> None:
    """The sync-state.json the earlier release saved after that answer: the error and its kind, no record. After
    the upgrade `kiosk status` (and the menu, from the same figures) shows the red row, not "press Sync now"."""
    SyncState(portal_url="http://127.0.0.1:9", kiosk_id=kiosk.kiosk_id, key_id="key-1",
              enrolled_ms=int(time.time() * 1000), local_size=kiosk.ledger.size, accepted_known=True,
              last_attempt_ms=int(time.time() * 1000), last_error=EXPECTS, last_error_kind="mismatch").save(
        kiosk.cfg.data_dir / "sync-state.json")
    sync = _status(kiosk, capsys)["sync"]
    assert sync["level"] == "red" and sync["value"].startswith("ledger does not match"), sync
    words = _menu_words(sync)
    assert DOES_NOT_MATCH_JA in words and STOP_JA in words and "今すぐ同期」を押して" not in words, words


# --- 2. what counts as an unreadable sync record: the same for `kiosk status` as for the uploader -----------------
WRONG_TYPES = {
    "enrolled_ms": "1765000000000",  # a string where the uploader wants an int
    "portal_url": None,
    "accepted_through_seq": True,  # a bool is no int here
    "extra": [],
    "last_error": 5,
}


@pytest.mark.parametrize("field", sorted(WRONG_TYPES))
def test_kiosk_status_and_the_uploader_agree_a_field_of_the_wrong_type_is_unreadable(
        kiosk: Rig, capsys: Any, field: str) -> None:
    path = kiosk.cfg.data_dir / "sync-state.json"
    good = SyncState(portal_url="http://127.0.0.1:9", kiosk_id=kiosk.kiosk_id, key_id="key-1",
                     enrolled_ms=int(time.time() * 1000), local_size=kiosk.ledger.size).to_json()
    path.write_text(json.dumps({**good, field: WRONG_TYPES[field]}), "utf-8")
    st = SyncState.load(path)
    assert st.unreadable is not None  # the uploader refuses to sync from it
    data, why = read_saved_sync(path)
    assert data is None and why == st.unreadable, (data, why, st.unreadable)  # the same verdict, the same words

    items = _status(kiosk, capsys)
    assert items["network"]["level"] == "red" and items["network"]["cause"] == "state_unreadable", items["network"]
    assert items["sync"]["cause"] == "state_unreadable" and st.unreadable in items["sync"]["value"], items["sync"]


def test_a_good_file_is_read_alike(kiosk: Rig) -> None:
    """Keys of another release and the report-only ones (pending, ok) are no reason to refuse a file."""
    path = kiosk.cfg.data_dir / "sync-state.json"
    good = SyncState(portal_url="http://127.0.0.1:9", kiosk_id=kiosk.kiosk_id, key_id="key-1",
                     enrolled_ms=int(time.time() * 1000)).to_json()
    path.write_text(json.dumps({**good, "a_newer_field": [1, 2]}), "utf-8")
    assert SyncState.load(path).unreadable is None
    data, why = read_saved_sync(path)
    assert why is None and data is not None and data["enrolled_ms"] == good["enrolled_ms"]

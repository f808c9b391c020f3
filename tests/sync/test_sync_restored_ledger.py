"""A kiosk whose data dir was restored from an old backup after it had synced (docs/sync.md, "A kiosk restored from
an old backup"): its ledger forks from what the portal holds, under the same key.

Real parts only: a real kiosk ledger and keys in tmp_path, the real uploader, a real portal on loopback HTTP on
SQLite and PostgreSQL, the staff pages read over HTTP, and the kiosk's own status rows in the staff's language.
Moved from the review of a kiosk's replacement (tests/review/test_kiosk_replacement.py, case (c)).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import requests
from sync_helpers import Rig, enrolled, staff_session

from kiosk.ops.local_files import open_ledger
from kiosk.ops.status import StatusInputs, status_items
from kiosk.staff.menu import status_text
from kiosk.ui.i18n import gettext_for
from server_sync import ingest, queries
from server_sync.db import make_engine
from server_sync.embedded import PortalHandle
from server_sync.staff import add_user

LEDGER_MISMATCH = "ledger_mismatch"
"""The key of sync-state.json's ``extra`` the uploader sets (kiosk.sync.uploader.LEDGER_MISMATCH): the file is what
`kiosk run`'s menu and staff read."""


def fleet_row(portal: PortalHandle, kiosk_id: str) -> dict[str, Any]:
    eng = make_engine(portal.db_url)
    try:
        return next(k for k in queries.fleet(eng) if k["id"] == kiosk_id)
    finally:
        eng.dispose()


def backup_data_dir(rig: Rig, dst: Path) -> None:
    rig.ledger.close(checkpoint=False)
    shutil.copytree(Path(rig.cfg.kiosk.data_dir), dst)
    rig.ledger = open_ledger(rig.cfg, clock=rig.clock)


def restore_data_dir(rig: Rig, backup: Path) -> None:
    """The kiosk's data dir replaced by an older copy of it, and the ledger opened again as `kiosk run` would."""
    data = Path(rig.cfg.kiosk.data_dir)
    rig.ledger.close(checkpoint=False)
    shutil.rmtree(data)
    shutil.copytree(backup, data)
    rig.ledger = open_ledger(rig.cfg, clock=rig.clock)


def restored(rig: Rig, portal: PortalHandle, tmp_path: Path) -> int:
    """Sync, back the data dir up, sync more, restore the backup: what the portal holds (more than the ledger)."""
    up = enrolled(rig, portal)
    rig.donate(4)
    rig.ledger.checkpoint()
    assert up.sync_once().ok
    backup_data_dir(rig, tmp_path / "backup")
    rig.donate(5)
    rig.ledger.checkpoint()
    assert rig.uploader(portal.url).sync_once().ok
    held = fleet_row(portal, rig.kiosk_id)["last_seq"]
    restore_data_dir(rig, tmp_path / "backup")
    return int(held)


def kiosk_sync_row(state: Any) -> tuple[str, str]:
    """The kiosk menu's sync row (its value and what-to-do line) in Japanese, from the uploader's state, as
    kiosk/app/staffside.py builds it."""
    st = state.to_json()
    x = StatusInputs(portal_configured=True, portal_reachable=True, enrolled=True, pending_entries=st["pending"],
                     last_sync_age_s=60.0, ledger_mismatch=LEDGER_MISMATCH in st["extra"],
                     sync_error=st["last_error"])
    item = next(i for i in status_items(x) if i.key == "sync")
    assert item.level == "red"
    ja = gettext_for("ja")
    return status_text.say(item.value, ja), status_text.hint(item.value, item.hint, ja)


def staff_kiosks_page(portal: PortalHandle) -> tuple[str, str]:
    add_user(portal.app.state.engine, "staff", "correct horse battery")
    s, _ = staff_session(portal.url, "staff")
    return s.get(portal.url + "/staff/kiosks", timeout=10).text, s.get(portal.url + "/staff", timeout=10).text


def test_kiosk_restored_from_an_old_backup_is_shown_to_staff_not_reported_as_up_to_date(
        portal: PortalHandle, rig: Rig, tmp_path: Path, monkeypatch: Any) -> None:
    """The data dir is restored from a backup older than what the portal holds, and the kiosk takes a gift on
    top: its seq 18 is not the portal's seq 18, signed by the same key. The portal showed this kiosk as healthy
    with nothing pending while every new gift went into a history it can never take, and the kiosk said
    "press Sync now" with an English "not believed" error."""
    held = restored(rig, portal, tmp_path)
    # The entries the restored ledger lacks were uploaded moments ago here; in the field, days ago (a stale
    # heartbeat's grace: test_a_heartbeat_sent_before_another_uploaders_batch_raises_no_alarm).
    monkeypatch.setattr(ingest, "BEHIND_GRACE_MS", 0)
    rig.donate(1)  # a citizen's gift into the restored ledger
    assert rig.ledger.size < held
    slept: list[float] = []
    up = rig.uploader(portal.url, sleep=slept.append)
    st = up.sync_once(max_attempts=5)
    assert not st.ok and slept == []  # permanent: no retry can mend it

    row = fleet_row(portal, rig.kiosk_id)
    assert row["alarm"] and [a["kind"] for a in row["alarms"]] == ["ledger_behind"], row["alarms"]
    assert row["alarms"][0]["seq"] == held
    # A heartbeat a minute later does not write the alarm again.
    assert not up.sync_once(max_attempts=1).ok
    assert len(fleet_row(portal, rig.kiosk_id)["alarms"]) == 1
    kiosks_page, dashboard = staff_kiosks_page(portal)
    for page in (kiosks_page, dashboard):
        assert "古いバックアップから戻された可能性があります" in page and "管理者に連絡してください" in page

    # The kiosk: recorded in its sync state, and said in plain Japanese.
    assert LEDGER_MISMATCH in st.extra and "old backup" in st.extra[LEDGER_MISMATCH]
    value, todo = kiosk_sync_row(st)
    assert value == "この端末の記録がポータルの記録と合っていません"
    assert "寄付の受付を止めて、管理者に連絡してください" in todo and "今すぐ同期」では直りません" in todo


def test_kiosk_restored_from_an_old_backup_that_grew_past_the_portal_raises_an_equivocation_alarm(
        portal: PortalHandle, rig: Rig, tmp_path: Path) -> None:
    """The same restore, and the kiosk took more gifts than the backup lacked: its new signed checkpoint is not
    consistent with the one the portal acknowledged, both signed by the kiosk's key. That is two histories
    under one key (docs/sync.md, "What the portal checks": equivocation, alarm shown to staff, the kiosk
    suspended). The portal answered a bare 422 bad_consistency_proof and kept no alarm."""
    held = restored(rig, portal, tmp_path)
    totals_before = portal.totals()
    rig.donate(12)
    rig.ledger.checkpoint()
    assert rig.ledger.size > held
    slept: list[float] = []
    st = rig.uploader(portal.url, sleep=slept.append).sync_once(max_attempts=5)
    assert not st.ok and slept == []
    row = fleet_row(portal, rig.kiosk_id)
    assert row["last_seq"] == held  # nothing of the fork was taken
    assert portal.totals() == totals_before
    assert row["alarm"] and [a["kind"] for a in row["alarms"]] == ["equivocation"], (st.last_error, row["alarms"])
    assert row["suspended_ms"] and "equivocation" in row["suspended_reason"]
    assert "409 equivocation" in (st.last_error or "")
    kiosks_page, dashboard = staff_kiosks_page(portal)
    for page in (kiosks_page, dashboard):
        assert "食い違う2つの台帳に署名しました" in page

    assert LEDGER_MISMATCH in st.extra
    value, todo = kiosk_sync_row(st)
    assert value == "この端末の記録がポータルの記録と合っていません"
    assert "寄付の受付を止めて、管理者に連絡してください" in todo


def test_a_heartbeat_sent_before_another_uploaders_batch_raises_no_alarm(
        portal: PortalHandle, rig: Rig, monkeypatch: Any) -> None:
    """`kiosk run`'s sync thread and `kiosk sync` from its timer both upload: a heartbeat one sent before the other
    uploaded the newest gifts can arrive after them, reporting a ledger shorter than the portal now holds. That is
    not a kiosk restored from a backup, and no alarm is raised; the same report once those entries have been
    held past the grace (a restored kiosk says hello every minute) is."""
    import json
    import time

    from kiosk.ledger import keys
    from server_sync.wire import protocol as P

    up = enrolled(rig, portal)
    rig.donate(2)
    rig.ledger.checkpoint()
    stale_size = rig.ledger.size  # what the delayed heartbeat says
    rig.donate(2)
    rig.ledger.checkpoint()
    assert up.sync_once().ok
    held = int(fleet_row(portal, rig.kiosk_id)["last_seq"])
    assert stale_size < held
    sk = keys.load_private(rig.cfg.private_key_path)
    path = f"/api/v1/kiosks/{rig.kiosk_id}/heartbeat"

    def hello() -> None:
        body = json.dumps({"boot": 1, "mono_ms": 1, "wall_ms": int(time.time() * 1000), "clock_synced": True,
                           "ledger_size": stale_size}).encode()
        headers = {**P.sign_request(sk, rig.kiosk_id, "POST", path, body, int(time.time())),
                   "Content-Type": "application/json"}
        assert requests.post(portal.url + path, data=body, headers=headers, timeout=10).status_code == 200

    hello()
    row = fleet_row(portal, rig.kiosk_id)
    assert not row["alarm"] and row["alarms"] == [], row["alarms"]
    monkeypatch.setattr(ingest, "BEHIND_GRACE_MS", 0)  # the same report, the entries long held
    hello()
    assert [a["kind"] for a in fleet_row(portal, rig.kiosk_id)["alarms"]] == ["ledger_behind"]

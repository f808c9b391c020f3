"""A kiosk whose own disk is full still uploads its gifts (docs/sync.md, "Kiosk side").

``sync-state.json`` is a report, not where an upload resumes from: every round starts from the portal's heartbeat.
Yet the round saved it right after the heartbeat and stopped there when the save failed, so a kiosk whose data
partition was full (a growing log, a card filling up) sent nothing at all: the gifts written before the disk filled
stayed on the card only, the portal's figures stayed behind, and staff could not see them from the center's PC.
The running kiosk (``kiosk run``'s thread) also called the full disk an internal error (「予期しないエラー」), not
"cannot save on this kiosk's disk". A real kiosk (ledger, keys) on a real small tmpfs that is filled, a real portal
over loopback HTTP.
"""

from __future__ import annotations

import time
from pathlib import Path

from sync_helpers import enrolled, make_rig, portal_entry_count

from kiosk.sync.uploader import BackgroundSync
from tests.mounts import fill, small_tmpfs


def test_a_full_kiosk_disk_still_uploads_every_gift(portal, db_url: str, tmp_path: Path) -> None:  # noqa: ANN001
    with small_tmpfs(tmp_path / "disk", "8m") as disk:
        rig = make_rig(disk, "full-disk-up")
        up = enrolled(rig, portal)
        try:
            rig.donate(4)
            held = rig.ledger.size
            filler = fill(disk)
            st = up.sync_once(max_attempts=1)
            # The portal has every entry: nothing is left on the card only.
            assert portal_entry_count(db_url, rig.kiosk_id) == (held, held)
            assert st.accepted_through_seq == held and st.pending == 0
            # And staff are told why the round is not clean: the kiosk's own disk.
            assert st.last_error_kind == "local_save", st
            assert "No space left on device" in (st.last_error or "")
            filler.unlink()
            assert up.sync_once(max_attempts=1).ok
        finally:
            up.close()
            rig.ledger.close(checkpoint=False)


def test_the_running_kiosk_says_its_full_disk_as_a_full_disk(portal, db_url: str, tmp_path: Path) -> None:  # noqa: ANN001
    with small_tmpfs(tmp_path / "disk", "8m") as disk:
        rig = make_rig(disk, "full-disk-bg")
        up = enrolled(rig, portal)
        rig.donate(3)
        held = rig.ledger.size
        filler = fill(disk)
        bg = BackgroundSync(up, interval_s=3600).start()
        try:
            end = time.monotonic() + 20
            while not bg.status().get("last_error") and time.monotonic() < end:
                time.sleep(0.02)
            status = bg.status()
            assert status.get("last_error_kind") == "local_save", status
            assert "internal" not in status["last_error"]
            assert portal_entry_count(db_url, rig.kiosk_id) == (held, held)
        finally:
            bg.stop()
            filler.unlink()
            rig.ledger.close(checkpoint=False)

"""The menu's sync page when the portal did not answer the last try: the count of entries still to upload is not
known (the portal may have been restored from a backup that lacks some), so it is not shown as a figure."""

from __future__ import annotations

from kiosk.sync.uploader import SyncState

from .conftest import build_rig


def _sync_page_lines(tmp_path, state: SyncState) -> tuple[str, ...]:
    rig = build_rig(tmp_path, sync_state=lambda: state)
    try:
        rig.open()
        rig.menu.model.press("go", "sync")
        assert rig.menu.page == "sync"
        return rig.view().lines
    finally:
        rig.ledger.close(checkpoint=False)


def test_sync_page_says_not_known_after_a_failed_heartbeat(tmp_path):
    # What the uploader leaves after a round whose heartbeat failed: all 40 entries acknowledged at the last answer.
    state = SyncState(local_size=40, accepted_through_seq=40, accepted_known=False,
                      last_success_ms=1_763_700_000_000 - 25 * 60_000, last_error="network: connection refused")
    lines = _sync_page_lines(tmp_path, state)
    assert "未送信：不明（ポータルから応答がありません）" in lines, lines
    assert not any("0件" in line for line in lines), lines


def test_sync_page_shows_the_count_the_portal_confirmed(tmp_path):
    state = SyncState(local_size=40, accepted_through_seq=28, last_success_ms=1_763_700_000_000 - 25 * 60_000)
    assert "未送信：12件" in _sync_page_lines(tmp_path, state)

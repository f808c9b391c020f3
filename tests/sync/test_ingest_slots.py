"""Ingest slots (server_sync/app.py IngestSlots): a bounded number of batch uploads run at once, the rest
wait in the event loop; the answers stay what they were (docs/portal.md, "Ingest slots").
Real portal over HTTP on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests
from sync_helpers import batch_body, enrolled, make_rig, portal_entry_count, signed_post, wait_for

from server_sync.app import options_from_env
from server_sync.embedded import start_portal


@pytest.fixture
def one_slot(db_url: str):
    handle = start_portal(db_url, ingest_slots=1)
    yield handle
    handle.stop()


def _post_in_thread(url: str, rig, key: str, out: dict) -> threading.Thread:  # noqa: ANN001
    def go() -> None:
        out[key] = signed_post(url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/batches", batch_body(rig, 1, rig.ledger.size),
                               key)
    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def test_uploads_wait_for_a_slot_and_a_second_copy_of_a_waiting_key_is_409(one_slot, db_url, tmp_path: Path):
    portal = one_slot
    a, b = make_rig(tmp_path, "slot-kiosk-a"), make_rig(tmp_path, "slot-kiosk-b")
    for rig in (a, b):
        rig.donate(3)
        enrolled(rig, portal)
    ing, slots = portal.app.state.ingestor, portal.app.state.ingest_slots
    # Kiosk a's batch takes the one slot and stops at its kiosk's lock, which the test holds.
    held = ing._locks.setdefault(a.kiosk_id, threading.Lock())
    held.acquire()
    out: dict[str, requests.Response] = {}
    try:
        ta = _post_in_thread(portal.url, a, "key-a", out)
        wait_for(lambda: slots.busy == 1, 10, "kiosk a's upload in the slot")
        tb = _post_in_thread(portal.url, b, "key-b", out)
        wait_for(lambda: slots.waiting == 1, 10, "kiosk b's upload waiting for the slot")
        # The same key again while the first waits: refused at once, as when it was being processed.
        r = signed_post(portal.url, b, f"/api/v1/kiosks/{b.kiosk_id}/batches", batch_body(b, 1, b.ledger.size),
                        "key-b")
        assert r.status_code == 409 and r.json()["error"] == "in_flight" and r.headers["Retry-After"] == "1"
        # A waiting upload holds no thread: the rest of the portal answers meanwhile.
        assert requests.get(portal.url + "/api/v1/totals", timeout=5).json()["count"] == 0
        assert portal_entry_count(db_url, b.kiosk_id) == (0, 0)  # still waiting, nothing stored
        assert "key-b" not in out and "key-a" not in out
    finally:
        held.release()
    ta.join(20)
    tb.join(20)
    assert out["key-a"].status_code == 200 and out["key-b"].status_code == 200, (out["key-a"].text, out["key-b"].text)
    for rig in (a, b):
        assert portal_entry_count(db_url, rig.kiosk_id) == (rig.ledger.size, rig.ledger.size)
    assert (slots.busy, slots.waiting) == (0, 0)
    assert not ing._inflight
    # The key is free again: the same upload is now answered from the idempotency record.
    r = signed_post(portal.url, b, f"/api/v1/kiosks/{b.kiosk_id}/batches", batch_body(b, 1, b.ledger.size), "key-b")
    assert r.status_code == 200 and r.json()["replayed"] is True
    assert requests.get(portal.url + "/api/v1/totals", timeout=5).json()["count"] == 6


def test_a_refused_upload_frees_its_slot_and_key(one_slot, tmp_path: Path):
    portal = one_slot
    rig = make_rig(tmp_path, "slot-kiosk-c")
    rig.donate(3)
    enrolled(rig, portal)
    path = f"/api/v1/kiosks/{rig.kiosk_id}/batches"
    r = signed_post(portal.url, rig, path, batch_body(rig, 5, rig.ledger.size), "gap-key")
    assert r.status_code == 409 and r.json()["error"] == "gap"
    slots = portal.app.state.ingest_slots
    assert (slots.busy, slots.waiting) == (0, 0) and not portal.app.state.ingestor._inflight
    r = signed_post(portal.url, rig, path, batch_body(rig, 1, rig.ledger.size), "good-key")
    assert r.status_code == 200 and r.json()["accepted_through_seq"] == rig.ledger.size


def test_slot_count_from_the_environment(monkeypatch):
    monkeypatch.setenv("KIOSK_PORTAL_INGEST_SLOTS", "3")
    assert options_from_env()["ingest_slots"] == 3
    monkeypatch.setenv("KIOSK_PORTAL_INGEST_SLOTS", "three")
    with pytest.raises(RuntimeError, match="KIOSK_PORTAL_INGEST_SLOTS"):
        options_from_env()


def test_a_worker_freezes_its_start_up_heap(monkeypatch, tmp_path: Path):
    import gc

    from server_sync.app import app_from_env

    monkeypatch.setenv("KIOSK_PORTAL_DB", f"sqlite:///{tmp_path / 'portal.db'}")
    monkeypatch.setenv("KIOSK_PORTAL_SECRET_FILE", str(tmp_path / "secret"))
    threshold = gc.get_threshold()  # app_from_env raises the young threshold too: given back below
    gc.unfreeze()
    try:
        app = app_from_env()
        assert gc.get_freeze_count() > 0  # the app and everything it holds is in the permanent generation
        assert all(o is not app for o in gc.get_objects())  # not scanned by the collector any more
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)

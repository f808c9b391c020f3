"""Pure pieces: the signature base, digests, keys, receipt codes, clock fixing, config documents,
plus the background thread never blocking the donation flow."""

from __future__ import annotations

import base64
import hashlib
import random
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.sync.uploader import BackgroundSync, SyncState
from server_sync.clockfix import BootClock
from server_sync.wire import configdoc
from server_sync.wire import protocol as P
from server_sync.wire.receipt import CODE_RE, normalise, receipt_code, receipt_code_of
from server_sync.wire.retry import Backoff


def test_signature_base_is_exactly_as_documented():
    base = P.signature_base("post", "/api/v1/kiosks/k-1/batches", "sha-256=:abc=:", "k-1:1-5:cp0-3", "k-1", 1700000000)
    assert base == (b"kiosk-sync-request/v1\nPOST\n/api/v1/kiosks/k-1/batches\nsha-256=:abc=:\n"
                    b"k-1:1-5:cp0-3\nk-1\n1700000000\n")
    body = b'{"a":1}'
    assert P.content_digest(body) == "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def test_signed_headers_verify_and_bind_every_part():
    sk = Ed25519PrivateKey.generate()
    h = P.sign_request(sk, "k-1", "POST", "/p", b"body", 1700000000, "key")
    base = P.signature_base("POST", "/p", h[P.H_DIGEST], "key", "k-1", 1700000000)
    assert P.verify_request_signature(sk.public_key(), h[P.H_SIGNATURE], base)
    for changed in (P.signature_base("POST", "/q", h[P.H_DIGEST], "key", "k-1", 1700000000),
                    P.signature_base("GET", "/p", h[P.H_DIGEST], "key", "k-1", 1700000000),
                    P.signature_base("POST", "/p", P.content_digest(b"other"), "key", "k-1", 1700000000),
                    P.signature_base("POST", "/p", h[P.H_DIGEST], "key2", "k-1", 1700000000),
                    P.signature_base("POST", "/p", h[P.H_DIGEST], "key", "k-1", 1700000001)):
        assert not P.verify_request_signature(sk.public_key(), h[P.H_SIGNATURE], changed)
    assert not P.verify_request_signature(sk.public_key(), "not base64!", base)


def test_idempotency_key_is_derived_from_kiosk_and_range():
    k = P.idempotency_key("k-1", 101, 600, 99, 590)
    assert k == "k-1:101-600:cp99-590" and P.IDEMPOTENCY_RE.match(k)
    assert P.idempotency_key("k-1", 101, 600, 99, 590) == k


class _E:
    def __init__(self, body: bytes, signature: bytes):
        self.body, self.signature = body, signature


def test_receipt_code_format_and_unpredictability():
    sk = Ed25519PrivateKey.generate()
    body = b'{"data":{"amount_yen":500}}'
    sig = sk.sign(hashlib.sha256(b"\x00" + body).digest())
    code = receipt_code(_E(body, sig))
    assert CODE_RE.match(code) and code == receipt_code_of(body, sig)
    assert normalise(code.lower()) == code and normalise("short") is None
    # Same public facts (amount, project, time), another signature: another code.
    other = Ed25519PrivateKey.generate().sign(hashlib.sha256(b"\x00" + body).digest())
    assert receipt_code_of(body, other) != code
    assert len({receipt_code_of(body + bytes([i]), sig) for i in range(200)}) == 200


def test_boot_clock_prefers_ntp_and_the_earliest_portal_estimate():
    c = BootClock()
    assert c.time_of(5_000, 123, False) == (123, False)  # nothing known yet: raw wall time, flagged
    c.observe_heartbeat(mono_ms=10_000, wall_ms=1, synced=False, portal_ms=1_000_010_000)
    assert c.epoch_ms == 1_000_000_000 and c.source == "portal"
    c.observe_heartbeat(mono_ms=20_000, wall_ms=1, synced=False, portal_ms=1_000_020_500)  # slower network
    assert c.epoch_ms == 1_000_000_000
    assert c.time_of(5_000, 1, False) == (1_000_005_000, True)
    c.observe_heartbeat(mono_ms=100, wall_ms=1, synced=False, portal_ms=5)  # a later OS boot: ignored
    assert c.epoch_ms == 1_000_000_000
    # A synced claim 11 days after what the heartbeats allow is contradicted by the portal's clock.
    c.observe_entry(mono_ms=30_000, wall_ms=2_000_030_000, synced=True)
    assert (c.epoch_ms, c.source) == (1_000_000_000, "portal")
    c.observe_entry(mono_ms=30_000, wall_ms=1_000_030_000 - 120_000, synced=True)  # 2 min earlier: inside
    assert (c.epoch_ms, c.source) == (999_880_000, "ntp")
    c.observe_heartbeat(mono_ms=40_000, wall_ms=1, synced=False, portal_ms=3)
    assert c.source == "ntp"  # never downgraded


def test_config_documents_are_validated_and_digested_canonically():
    doc = {"projects": [{"id": "a", "title": "A", "area": "town"}], "presets_yen": [100], "default_yen": 100}
    norm = configdoc.normalised(configdoc.validate(doc))
    assert configdoc.digest(norm) == configdoc.digest(dict(reversed(list(norm.items()))))
    for bad, msg in (({"projects": []}, "projects"),
                     ({**doc, "default_yen": 7}, "default_yen"),
                     ({**doc, "projects": doc["projects"] * 2}, "duplicate"),
                     ({**doc, "playlist": [{"sha256": "0" * 64, "name": "x", "project": "zz"}]}, "unknown projects"),
                     ({**doc, "surprise": 1}, "surprise")):
        with pytest.raises(configdoc.ConfigDocError, match=msg):
            configdoc.validate(bad)


def test_sync_state_is_saved_durably(tmp_path, monkeypatch):
    """sync-state.json holds "enrolled": its write and its rename must both survive a power cut."""
    import os
    import stat

    kinds = []
    real = os.fsync

    def observing_fsync(fd: int) -> None:
        kinds.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", observing_fsync)
    SyncState(portal_url="http://portal", enrolled_ms=1).save(tmp_path / "sync-state.json")
    assert kinds == ["file", "dir"]
    assert SyncState.load(tmp_path / "sync-state.json").enrolled_ms == 1
    assert [p.name for p in tmp_path.iterdir()] == ["sync-state.json"]


class _SlowUploader:
    """Stands in for an uploader stuck on a dead network: each round hangs until ``unstuck`` is set."""

    def __init__(self, tmp_path):  # noqa: ANN001
        self.state = SyncState(portal_url="http://192.0.2.1")
        self.state_path = tmp_path / "s.json"
        self.rounds = 0
        self.in_round = threading.Event()
        self.unstuck = threading.Event()

    def sync_round(self) -> None:
        self.rounds += 1
        self.in_round.set()
        self.unstuck.wait(60)
        from kiosk.sync.uploader import SyncError

        raise SyncError("network: timed out")

    backoff_policy = Backoff(base=0.01, cap=0.01)
    rng = random.Random(0)

    def save_state(self) -> None:  # what BackgroundSync calls after every round (Uploader.save_state)
        self.state.save(self.state_path)

    def close(self) -> None:
        pass


def test_background_sync_never_blocks_donations_and_reports_state(rig, tmp_path):
    up = _SlowUploader(tmp_path)
    bg = BackgroundSync(up, interval_s=0.05).start()  # type: ignore[arg-type]
    try:
        assert up.in_round.wait(60), "the sync thread never started a round"
        rig.donate(20)  # taps go on while the sync thread is stuck
        # The gifts were written while the first round still hung (it ends only once released below): nothing
        # they did waited for it. Checked by order, not by a wall-clock bound (2 s) that forty fsyncs on a loaded
        # CI disk could overrun with no wait at all.
        assert up.rounds == 1 and bg.status()["last_error"] is None
        up.unstuck.set()
        deadline = time.monotonic() + 60  # liveness only: the thread's next save of its state
        while "timed out" not in (bg.status()["last_error"] or "") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "timed out" in bg.status()["last_error"]
    finally:
        up.unstuck.set()
        bg.stop()
    assert not any(t.name == "portal-sync" and t.is_alive() for t in threading.enumerate())


def test_background_sync_uploads_for_real(portal, rig):
    from sync_helpers import enrolled

    up = enrolled(rig, portal)
    bg = BackgroundSync(up, interval_s=0.05).start()
    try:
        rig.donate(6)
        bg.nudge()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            s = bg.status()
            if s["accepted_through_seq"] >= rig.ledger.size and s["last_error"] is None:
                break
            time.sleep(0.05)
        s = bg.status()
        assert s["accepted_through_seq"] >= rig.ledger.size and s["last_success_ms"]
    finally:
        bg.stop()

"""Enrollment over a bad link: the portal stored the enrollment but the kiosk never heard the answer.

The answer is dropped on the way back by the fault proxy (a real TCP proxy on loopback), so the kiosk
sees a network error while the portal has already spent the code. A retry — with the same code, or a
fresh one staff issue — for the same kiosk and key must enroll it, never leave it stuck.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.sync.uploader import EnrollError, SyncState


def _lose_the_answer(rig, portal, code: str) -> None:  # noqa: ANN001
    """Enroll through a proxy that forwards the request, lets the portal commit, and drops the answer."""
    from fault_proxy import FaultProxy

    with FaultProxy(portal.url, rate=1.0, faults=("drop_after",)) as proxy:
        up = rig.uploader(proxy.url, backoff_base=0.01)
        with pytest.raises(EnrollError):
            up.enroll(code)
        up.close()
        assert proxy.counts["drop_after"] >= 1
    assert SyncState.load(rig.cfg.data_dir / "sync-state.json").enrolled_ms is None


def test_a_retry_with_the_same_code_after_a_lost_answer_enrolls(portal, rig):
    code = portal.issue_code(rig.kiosk_id)
    _lose_the_answer(rig, portal, code)
    up = rig.uploader(portal.url)
    ans = up.enroll(code)
    assert ans["kiosk_id"] == rig.kiosk_id
    rig.donate(3)
    st = up.sync_once()
    assert st.ok and st.accepted_through_seq == rig.ledger.size


def test_a_fresh_code_for_the_same_kiosk_and_key_enrolls_again(portal, rig):
    up = rig.uploader(portal.url)
    up.enroll(portal.issue_code(rig.kiosk_id))
    rig.donate(2)
    assert up.sync_once().ok
    (rig.cfg.data_dir / "sync-state.json").unlink()  # the kiosk forgot (a restored SD card image)
    up2 = rig.uploader(portal.url)
    up2.enroll(portal.issue_code(rig.kiosk_id))
    rig.donate(1)
    st = up2.sync_once()
    assert st.ok and st.accepted_through_seq == rig.ledger.size


def test_a_spent_code_with_another_key_is_refused(portal, rig):
    code = portal.issue_code(rig.kiosk_id)
    _lose_the_answer(rig, portal, code)
    other = rig.uploader(portal.url)
    other.sk = Ed25519PrivateKey.generate()
    other.pub_hex = other.sk.public_key().public_bytes_raw().hex()
    with pytest.raises(EnrollError, match="already used"):
        other.enroll(code)


def test_a_kiosk_moves_to_another_portal_with_a_new_code_and_no_file_edits(portal, rig, tmp_path, capsys):
    """Enrolled with portal A (also named in kiosk.toml), the kiosk joins portal B with `kiosk enroll`:
    from then on `kiosk sync` goes to B, though the config file still says A."""
    from sync_helpers import make_rig

    from kiosk.cli import main as kiosk_main
    from server_sync.embedded import start_portal

    moving = make_rig(tmp_path / "moving", kiosk_id="moving-kiosk", portal_url=portal.url)
    try:
        cfg = str(moving.config_path)
        assert kiosk_main(["enroll", "--config", cfg, "--portal", portal.url,
                           "--code", portal.issue_code("moving-kiosk")]) == 0
        moving.donate(3)
        assert kiosk_main(["sync", "--config", cfg, "--once"]) == 0
        b = start_portal(f"sqlite:///{tmp_path / 'portal-b.db'}")
        try:
            assert kiosk_main(["enroll", "--config", cfg, "--portal", b.url,
                               "--code", b.issue_code("moving-kiosk")]) == 0
            moving.donate(2)
            capsys.readouterr()
            assert kiosk_main(["sync", "--config", cfg, "--once"]) == 0
            assert f"acknowledged through seq={moving.ledger.size}" in capsys.readouterr().out
            assert b.totals() == moving.expected_totals()  # everything, from seq 1, went to B
            assert SyncState.load(moving.cfg.data_dir / "sync-state.json").portal_url == b.url
        finally:
            b.stop()
    finally:
        moving.ledger.close(checkpoint=False)


def test_enroll_retries_by_itself_when_the_answer_is_lost(portal, rig):
    """One `kiosk enroll` over a link that drops the first answer: the retry gets the same enrollment."""
    import random

    from fault_proxy import FaultProxy

    def schedule(seed: int) -> list[str]:  # what FaultProxy.pick will choose, request by request
        r = random.Random(seed)
        return [r.choice(("drop_after",)) if r.random() < 0.5 else "none" for _ in range(2)]

    # A seed whose first request loses its answer and whose second goes through.
    seed = next(s for s in range(1000) if schedule(s) == ["drop_after", "none"])
    with FaultProxy(portal.url, rate=0.5, seed=seed, faults=("drop_after",)) as proxy:
        # pepper_path=None: only the enrollment's own requests cross the proxy (not the city pepper's fetch
        # that follows a successful enrollment, docs/privacy.md), so the counts below are exact.
        up = rig.uploader(proxy.url, backoff_base=0.01, pepper_path=None)
        ans = up.enroll(portal.issue_code(rig.kiosk_id))
        up.close()
        assert proxy.counts["drop_after"] == 1 and proxy.counts["none"] == 1
    assert ans["kiosk_id"] == rig.kiosk_id
    assert SyncState.load(rig.cfg.data_dir / "sync-state.json").enrolled_ms is not None

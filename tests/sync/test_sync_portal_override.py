"""A refused or failed `--portal` override, and an unreadable sync-state.json, change nothing the kiosk keeps.

`kiosk sync --once --portal URL` with a URL the kiosk is not enrolled with (staff mistype the port) used to
rewrite DATA_DIR/sync-state.json with that URL and clear ``enrolled_ms``: every later sync to the right portal
was then refused "not enrolled" until staff issued a new one-time code. A sync-state.json a power cut left
unreadable (a lying SD card) was read as "never enrolled", overwritten at the next sync, and a file of JSON
that was not an object stopped `kiosk sync` with a traceback. Real kiosks (ledger, keys, pepper in tmp_path),
real portals on loopback, the real `kiosk` command line (docs/sync.md, "Enrollment").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiosk.cli import main as kiosk_main
from kiosk.sync.uploader import SyncState
from server_sync.embedded import start_portal
from tests.loopback import refused_port


def _state_file(rig) -> Path:  # noqa: ANN001
    return rig.cfg.data_dir / "sync-state.json"


def _enrolled_and_synced(rig, portal, capsys) -> str:  # noqa: ANN001
    """Enroll with ``portal`` and sync 3 gifts through the CLI; returns the config path."""
    cfg = str(rig.config_path)
    assert kiosk_main(["enroll", "--config", cfg, "--portal", portal.url, "--code",
                       portal.issue_code(rig.kiosk_id)]) == 0
    rig.donate(3)
    assert kiosk_main(["sync", "--config", cfg, "--once"]) == 0
    capsys.readouterr()
    return cfg


def _sync_everything_to(portal, rig, cfg: str, capsys) -> None:  # noqa: ANN001
    """One more gift, and a plain `kiosk sync --once` takes everything to ``portal``: no re-enrollment needed."""
    rig.donate(1)
    assert kiosk_main(["sync", "--config", cfg, "--once"]) == 0, capsys.readouterr().err
    assert f"acknowledged through seq={rig.ledger.size} of {rig.ledger.size}; pending 0" in capsys.readouterr().out
    assert portal.totals() == rig.expected_totals()


def test_a_mistyped_portal_port_changes_no_saved_state(portal, rig, capsys):
    """The reviewer's case: the port mistyped (nothing listens there). Refused, and the kiosk still syncs."""
    cfg = _enrolled_and_synced(rig, portal, capsys)
    before = _state_file(rig).read_bytes()
    rig.donate(2)
    with refused_port() as port:
        typo = f"http://127.0.0.1:{port}"
        assert kiosk_main(["sync", "--config", cfg, "--once", "--portal", typo, "--attempts", "1"]) == 1
    err = capsys.readouterr().err
    assert "not enrolled" in err and typo in err and portal.url in err, err
    assert "kiosk enroll" in err  # how to move the kiosk, if that was meant
    assert _state_file(rig).read_bytes() == before
    assert SyncState.load(_state_file(rig)).enrolled_ms is not None
    _sync_everything_to(portal, rig, cfg, capsys)


def test_another_real_portal_named_by_mistake_changes_no_saved_state(portal, rig, tmp_path, capsys):
    """A portal that answers (the test portal, another city's) but never enrolled this kiosk: nothing is sent,
    nothing is changed."""
    cfg = _enrolled_and_synced(rig, portal, capsys)
    before = _state_file(rig).read_bytes()
    other = start_portal(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        assert kiosk_main(["sync", "--config", cfg, "--once", "--portal", other.url, "--attempts", "1"]) == 1
        assert "not enrolled" in capsys.readouterr().err
        assert _state_file(rig).read_bytes() == before
        assert other.totals()["count"] == 0
    finally:
        other.stop()
    _sync_everything_to(portal, rig, cfg, capsys)


def test_the_enrolled_portal_named_again_still_syncs(portal, rig, capsys):
    """`--portal` naming the enrolled portal (with or without the trailing slash) is no override at all."""
    cfg = _enrolled_and_synced(rig, portal, capsys)
    rig.donate(1)
    assert kiosk_main(["sync", "--config", cfg, "--once", "--portal", portal.url + "/"]) == 0
    assert SyncState.load(_state_file(rig)).portal_url == portal.url


def test_sync_portal_on_a_kiosk_enrolled_nowhere_writes_nothing(portal, rig, capsys):
    """Not enrolled at all: refused with what to run, and no sync-state.json appears with the typo in it."""
    rig.donate(1)
    assert kiosk_main(["sync", "--config", str(rig.config_path), "--once", "--portal", portal.url,
                       "--attempts", "1"]) == 1
    err = capsys.readouterr().err
    assert "not enrolled" in err and f"--portal {portal.url}" in err, err
    assert not _state_file(rig).exists()


def test_a_failed_enroll_with_another_portal_changes_nothing(portal, rig, tmp_path, capsys):
    """`kiosk enroll --portal` to an address nothing answers, and to a real portal with a wrong code: exit 1,
    the enrollment kept as it was."""
    cfg = _enrolled_and_synced(rig, portal, capsys)
    before = _state_file(rig).read_bytes()
    with refused_port() as port:
        assert kiosk_main(["enroll", "--config", cfg, "--portal", f"http://127.0.0.1:{port}",
                           "--code", "AAAA-BBBB-CCCC"]) == 1
    other = start_portal(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        assert kiosk_main(["enroll", "--config", cfg, "--portal", other.url, "--code", "ZZZZ-ZZZZ-ZZZZ"]) == 1
        assert "unknown enrollment code" in capsys.readouterr().err
    finally:
        other.stop()
    assert _state_file(rig).read_bytes() == before
    _sync_everything_to(portal, rig, cfg, capsys)


def test_moving_still_works_after_a_mistyped_sync(portal, rig, tmp_path, capsys):
    """The documented move (docs/sync.md): `kiosk enroll --portal NEW --code CODE`, then plain `kiosk sync`
    uploads the whole ledger to NEW; a `kiosk sync --portal NEW` tried first (before the code came) did not
    get in the way."""
    cfg = _enrolled_and_synced(rig, portal, capsys)
    new = start_portal(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        assert kiosk_main(["sync", "--config", cfg, "--once", "--portal", new.url, "--attempts", "1"]) == 1
        assert kiosk_main(["enroll", "--config", cfg, "--portal", new.url, "--code",
                           new.issue_code(rig.kiosk_id)]) == 0
        st = SyncState.load(_state_file(rig))
        assert st.portal_url == new.url and st.enrolled_ms is not None
        capsys.readouterr()
        _sync_everything_to(new, rig, cfg, capsys)
    finally:
        new.stop()


# --- an unreadable sync-state.json -------------------------------------------------------------------------
TORN = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\x00" * 512, id="zeros"),
    pytest.param(b'{"portal_url": "http://127.0.0.1:1", "kiosk_id": "test-ki', id="cut-off"),
    pytest.param(b"null", id="json-null"),
    pytest.param(b"[1, 2]", id="json-list"),
    pytest.param(b'{"accepted_through_seq": "12", "enrolled_ms": "yesterday"}', id="wrong-types"),
]


@pytest.mark.parametrize("torn", TORN)
def test_an_unreadable_sync_state_is_reported_and_kept(portal, rig, capsys, torn):
    """A power cut on a lying SD card left sync-state.json unreadable. `kiosk sync --status` and `--once` say so,
    name the file and what to do (exit 1, never a traceback, never "not enrolled" as if it were a fresh kiosk),
    and leave the file as it is (evidence, and nothing overwritten). A new code re-enrolls the same kiosk and
    key; the unreadable file is set aside beside it, and the whole ledger reaches the portal."""
    cfg = _enrolled_and_synced(rig, portal, capsys)
    _state_file(rig).write_bytes(torn)
    rig.donate(2)
    for args in (["--status"], ["--once", "--attempts", "1"], ["--once", "--attempts", "1", "--portal", portal.url]):
        assert kiosk_main(["sync", "--config", cfg, *args]) == 1, args
        err = capsys.readouterr().err
        assert "sync-state.json" in err and "unreadable" in err and "kiosk enroll" in err, (args, err)
        assert _state_file(rig).read_bytes() == torn, args
    assert kiosk_main(["enroll", "--config", cfg, "--portal", portal.url, "--code",
                       portal.issue_code(rig.kiosk_id)]) == 0
    assert "set aside" in capsys.readouterr().out
    kept = list(rig.cfg.data_dir.glob("sync-state.json.unreadable*"))
    assert [p.read_bytes() for p in kept] == [torn]
    assert json.loads(_state_file(rig).read_text("utf-8"))["enrolled_ms"] is not None
    _sync_everything_to(portal, rig, cfg, capsys)


def test_the_running_kiosks_uploader_never_overwrites_an_unreadable_state(portal, rig):
    """`kiosk run`'s uploader (BackgroundSync's rounds) meets an unreadable state file: each round fails with a
    last error staff can read on the status page, and the file is not replaced by a blank "not enrolled" one."""
    from kiosk.sync.uploader import BackgroundSync, SyncError

    up = rig.uploader(portal.url)
    up.enroll(portal.issue_code(rig.kiosk_id))
    up.close()
    _state_file(rig).write_bytes(b"\x00" * 64)
    up = rig.uploader()
    bg = BackgroundSync(up, interval_s=3600)
    with pytest.raises(SyncError):
        bg._round()  # one round, on this thread: what the thread's loop runs
    up.close()
    assert "unreadable" in (bg.status()["last_error"] or "")
    assert _state_file(rig).read_bytes() == b"\x00" * 64

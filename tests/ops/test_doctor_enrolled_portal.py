"""`kiosk doctor` checks the portal the kiosk really syncs with: the one it is enrolled with, else [portal] url.

A kiosk moved with `kiosk enroll --portal NEW` (docs/sync.md, "Enrollment") syncs with NEW although its config's
[portal] url still names the old portal. Doctor used to check [portal] url: it called the kiosk healthy while the
portal it uploads to was down, and when the old portal did not know the kiosk its fix was `kiosk enroll --portal
OLD`, which would have moved the kiosk back. Real portals on loopback (SQLite), the real `kiosk` command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.cli import main as kiosk_main
from kiosk.config import load_config
from kiosk.ops.doctor import collect
from kiosk.sync.uploader import enrolled_portal

from .test_ops_doctor import hermetic_reader, make_site

pytest.importorskip("uvicorn")
from server_sync.embedded import start_portal  # noqa: E402


def _portal(tmp_path: Path, name: str):  # noqa: ANN202
    return start_portal(f"sqlite:///{tmp_path / f'{name}.db'}")


def _checks(path: Path, tmp_path: Path) -> dict:
    kw = dict(root=tmp_path, min_free_bytes=1, reader_kw=hermetic_reader(tmp_path))
    return {c.name: c for c in collect(str(path), **kw)}


def _enroll(path: Path, portal, capsys) -> None:  # noqa: ANN001
    kiosk_id = load_config(path).kiosk.id
    assert kiosk_main(["enroll", "--config", str(path), "--portal", portal.url, "--code",
                       portal.issue_code(kiosk_id)]) == 0, capsys.readouterr().err
    capsys.readouterr()


def _no_fix_moves_back(checks: dict, old_url: str) -> None:
    for c in checks.values():
        assert f"--portal {old_url}" not in c.fix, c  # would move the kiosk back to the old portal


def test_a_moved_kiosk_is_checked_against_its_new_portal(tmp_path, capsys):
    """Moved from OLD to NEW as documented: doctor checks NEW, says so and why, and names the config's OLD."""
    with _portal(tmp_path, "old") as old, _portal(tmp_path, "new") as new:
        path = make_site(tmp_path / "site", old.url)
        _enroll(path, old, capsys)
        _enroll(path, new, capsys)
        checks = _checks(path, tmp_path)
        portal, enrolled = checks["portal"], checks["portal.enrolled"]
        assert portal.status == "ok" and new.url in portal.detail, portal
        assert "sync-state.json" in portal.detail and old.url in portal.detail, portal  # which one, and why
        assert enrolled.status == "ok", enrolled
        _no_fix_moves_back(checks, old.url)


def test_a_moved_kiosk_unknown_to_its_old_portal_is_not_told_to_enroll_there(tmp_path, capsys):
    """The reviewer's case: [portal] url names a portal that does not know this kiosk (it was enrolled with NEW
    only). Doctor used to fail it "not enrolled" with the fix `kiosk enroll --portal OLD`."""
    with _portal(tmp_path, "old") as old, _portal(tmp_path, "new") as new:
        path = make_site(tmp_path / "site", old.url)
        _enroll(path, new, capsys)
        checks = _checks(path, tmp_path)
        assert checks["portal"].status == "ok" and new.url in checks["portal"].detail, checks["portal"]
        assert checks["portal.enrolled"].status == "ok", checks["portal.enrolled"]
        _no_fix_moves_back(checks, old.url)


def test_a_moved_kiosk_whose_new_portal_is_down_fails(tmp_path, capsys):
    """NEW down, OLD up and still holding the kiosk: the kiosk cannot sync, and doctor says so about NEW (it used
    to say "reachable" and "enrolled" of OLD)."""
    with start_portal(f"sqlite:///{tmp_path / 'old.db'}") as old:
        path = make_site(tmp_path / "site", old.url)
        _enroll(path, old, capsys)
        new = start_portal(f"sqlite:///{tmp_path / 'new.db'}")
        try:
            _enroll(path, new, capsys)
        finally:
            new.stop()
        checks = _checks(path, tmp_path)
        c = checks["portal"]
        assert c.status == "fail" and new.url in c.detail and "unreachable" in c.detail, c
        assert "kiosk enroll" in c.fix or "sync-state.json" in c.detail, c  # why that portal, not [portal] url
        _no_fix_moves_back(checks, old.url)


def test_doctor_follows_the_uploaders_rule(tmp_path, capsys):
    """The same portal as the uploader's (kiosk/sync/uploader.py: enrolled_portal, then [portal] url): never
    enrolled, enrolled where the config says, moved, and an unreadable sync-state.json (the uploader refuses to
    sync until the kiosk is enrolled again, and so does doctor)."""
    from kiosk.ops.doctor import sync_portal

    with _portal(tmp_path, "old") as old, _portal(tmp_path, "new") as new:
        path = make_site(tmp_path / "site", old.url)
        cfg = load_config(path)
        state = cfg.data_dir / "sync-state.json"

        def uploader_target() -> str:
            return enrolled_portal(state) or cfg.portal.url.rstrip("/")
        assert sync_portal(cfg)[0] == uploader_target() == old.url
        _enroll(path, old, capsys)
        assert sync_portal(cfg)[0] == uploader_target() == old.url
        _enroll(path, new, capsys)
        assert sync_portal(cfg)[0] == uploader_target() == new.url

        state.write_bytes(b"\0" * 64)  # a power cut on an SD card that lied about its writes
        assert uploader_target() == old.url
        assert sync_portal(cfg)[0] == old.url
        checks = _checks(path, tmp_path)
        c = checks["portal.enrolled"]
        assert c.status == "fail" and "sync-state.json" in c.detail and "unreadable" in c.detail, c
        assert "kiosk enroll" in c.fix and "enroll-code" in c.fix, c

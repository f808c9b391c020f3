"""A full disk and a disk gone read-only, on every file the kiosk writes besides the ledger
(tests/ledger/test_fail_closed.py covers the ledger itself): the write fails with the system's error,
the file keeps its old content (or stays absent), no temp file is left, and the same write succeeds
once space returns or the disk is writable again.

A small real tmpfs is the data directory; filling it and remounting it read-only need root (CI has it).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.ledger.durable import write_atomic
from tests.mounts import fill, small_tmpfs


def _state(d: Path) -> dict[str, bytes]:
    """Every file under d (but the filler) and its content."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and p.name != "filler"}


# --- the write paths ---------------------------------------------------------------------------------

def _sync_state(d: Path, n: int) -> None:
    from kiosk.sync.uploader import SyncState

    SyncState(portal_url="https://portal.example", kiosk_id="k-1", enrolled_ms=1, accepted_through_seq=n,
              extra={"pad": "x" * 20_000}).save(d / "sync-state.json")


def _pushed_config(d: Path, n: int) -> None:
    from kiosk.sync.configapply import ConfigApplier
    from server_sync.wire import configdoc

    clip = (b"clip %d " % n) * 5000
    sha = hashlib.sha256(clip).hexdigest()
    project = {"id": "kodomo", "title": "こども食堂", "title_en": "Children's cafeteria", "group": "g",
               "area": "children", "goal_yen": 1000}
    body = {"projects": [project], "presets_yen": [100, 500], "default_yen": 100,
            "playlist": [{"sha256": sha, "name": "c.mp4", "project": "kodomo"}]}
    norm = configdoc.normalised(configdoc.validate(body))
    doc = {"version": n, "digest": configdoc.digest(norm), "config": norm}
    # No ledger writer (a standalone `kiosk sync --once`): fetched clips and the staged config only.
    ConfigApplier(d, writer=None).apply(doc, lambda s: clip)


def _media_index(d: Path, n: int) -> None:
    from kiosk.player.media import MediaCache

    cache = MediaCache(d / "media")
    cache._index = {}
    for i in range(40 + n):  # a big index: the write needs room
        from kiosk.player.media import MediaEntry

        sha = hashlib.sha256(b"%d-%d" % (n, i)).hexdigest()
        cache._index[sha] = MediaEntry(sha256=sha, project="kodomo", title="t" * 200, width=16, height=16, fps=30.0,
                                       frames=1, duration_s=0.1, source="x", imported="2026-01-01T00:00:00")
    cache._write_index()


def _secrets(d: Path, n: int) -> None:
    from kiosk.config import validate_config
    from kiosk.ops.local_files import ensure_secrets

    cfg = validate_config({"kiosk": {"id": "k-1", "data_dir": str(d / f"kiosk-{n}")}}, "<test>", d)
    ensure_secrets(cfg)


PATHS: dict[str, Callable[[Path, int], None]] = {
    "sync-state.json": _sync_state, "pushed config and its clips": _pushed_config,
    "media index": _media_index, "key and pepper (first boot)": _secrets,
}


@pytest.mark.parametrize("condition", ["full", "read-only"])
@pytest.mark.parametrize("name", list(PATHS))
def test_each_write_path_fails_whole_and_recovers(tmp_path: Path, name: str, condition: str) -> None:
    write = PATHS[name]
    with small_tmpfs(tmp_path / "data") as d:
        write(d, 1)  # a first version, written while there was room
        before = _state(d)
        filler = None
        if condition == "full":
            filler = fill(d)
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(d)], check=True)
        try:
            with pytest.raises(OSError) as exc:
                write(d, 2)
            assert exc.value.errno in (errno.ENOSPC, errno.EROFS), exc.value
            assert os.strerror(exc.value.errno) in str(exc.value)  # says what is wrong, in the system's words
            assert _state(d) == before  # nothing partial, nothing half-replaced
            assert not [p for p in d.rglob("*.tmp")]  # and no temp file left behind
        finally:
            if filler is not None:
                filler.unlink()
            else:
                subprocess.run(["mount", "-o", "remount,rw", str(d)], check=True)
        write(d, 2)  # space is back: the same write goes through
        assert _state(d) != before


def test_a_full_disk_is_reported_and_sync_goes_on_when_space_returns(tmp_path: Path) -> None:
    """The uploader cannot save its state: the round fails with the system's error in last_error and the
    log, and the next round after space returns saves it."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent.parent / "sync"))
    from sync_helpers import make_rig

    from server_sync.embedded import start_portal

    with small_tmpfs(tmp_path / "data", size="8m") as d:
        rig = make_rig(d)
        portal = start_portal(f"sqlite:///{tmp_path / 'portal.db'}")
        try:
            up = rig.uploader(portal.url)
            up.enroll(portal.issue_code(rig.kiosk_id))
            rig.donate(3)
            filler = fill(d)
            st = up.sync_once(max_attempts=2)
            assert not st.ok and "No space left on device" in (st.last_error or ""), st.last_error
            saved = json.loads((rig.cfg.data_dir / "sync-state.json").read_text())
            assert saved["enrolled_ms"] is not None  # the enrollment is intact
            filler.unlink()
            st = up.sync_once(max_attempts=2)
            assert st.ok and st.accepted_through_seq == rig.ledger.size
            assert json.loads((rig.cfg.data_dir / "sync-state.json").read_text())["accepted_through_seq"] == \
                rig.ledger.size
        finally:
            up.close()
            portal.stop()
            rig.ledger.close(checkpoint=False)


def test_write_atomic_on_a_full_disk_keeps_the_old_file(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "data", size="1m") as d:
        write_atomic(d / "f.json", "old")
        filler = fill(d)
        with pytest.raises(OSError):
            write_atomic(d / "f.json", "x" * 100_000)
        assert (d / "f.json").read_text() == "old"
        filler.unlink()


def test_the_status_page_says_read_only_and_shows_the_sync_error(tmp_path: Path) -> None:
    """What staff see on the device: a data partition gone read-only turns the disk item red with what to do,
    and an error the uploader kept (here its own state file it could not save) is on the sync item, not only
    in the log. Measured on a real read-only remount, through the probe the running kiosk uses."""
    from kiosk.ops.status import StatusInputs, read_disk_writable, status_items

    with small_tmpfs(tmp_path / "data") as d:
        assert read_disk_writable(d) is True
        subprocess.run(["mount", "-o", "remount,ro", str(d)], check=True)
        try:
            writable = read_disk_writable(d)
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(d)], check=True)
    assert writable is False
    err = "cannot save sync-state.json: [Errno 30] Read-only file system"
    items = {i.key: i for i in status_items(StatusInputs(
        portal_configured=True, network_up=True, portal_reachable=False, enrolled=True, pending_entries=3,
        last_sync_age_s=60, disk_free_bytes=8 * 2**30, disk_writable=writable, sync_error=err))}
    assert items["disk"].level == "red" and "read-only" in items["disk"].value and items["disk"].hint
    assert items["sync"].level == "red" and err in items["sync"].value and items["sync"].hint

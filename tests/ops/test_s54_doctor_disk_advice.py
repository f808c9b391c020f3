"""s54: `kiosk doctor`'s advice for a data partition running out of room says what really fills it.

It said "free space: remove old exports/logs, or grow the data partition". There are no exports on a kiosk (a USB
export is written to the stick), and the journal lives in RAM under the overlay or is capped (docs/deploy.md,
"Logs"): the technician was sent looking for files that are not there. What fills the data dir is the movies
(``DATA_DIR/media``). Now the report names the data dir's largest entries with their size, the command that shows
the rest, that the portal's clips leave the kiosk once no playlist names them (so the portal's Playlists page is
how they are taken off), that clips imported by hand never leave by a sync, and what must never be deleted.

Real parts: a real config and data dir (keys, pepper, ledger), real files measured on disk (sparse, so the test
writes no megabytes), the real check and its rendering as `kiosk doctor` prints it.
"""

from __future__ import annotations

import json
from pathlib import Path

from kiosk.config import load_config
from kiosk.ops.doctor import disk_checks
from kiosk.ops.local_files import ensure_secrets, open_ledger

from .conftest import write_config

SHA = "ab" * 32


def _site(tmp_path: Path, extra: str = ""):  # noqa: ANN202
    cfg = load_config(write_config(tmp_path / "site", extra))
    ensure_secrets(cfg)
    open_ledger(cfg).close()
    media = cfg.data_dir / "media"
    media.mkdir(parents=True)
    with open(media / f"{SHA}.mp4", "wb") as f:  # a 300 MB clip, sparse: measured by its size, nothing written
        f.truncate(300 * 1_048_576)
    (media / "index.json").write_text(json.dumps({"version": 1, "clips": {}}))
    metrics = cfg.data_dir / "metrics"
    metrics.mkdir()
    with open(metrics / "player.jsonl", "wb") as f:
        f.truncate(2 * 1_048_576)
    return cfg


def _low_disk(cfg):  # noqa: ANN001, ANN202
    (check,) = disk_checks(cfg, min_free_bytes=1 << 62)  # more than any disk: the check fails as on a full card
    assert check.status == "fail", check
    return check


def test_a_low_disk_names_what_fills_it_and_how_the_portals_videos_leave(tmp_path):
    cfg = _site(tmp_path, '\n[portal]\nurl = "http://127.0.0.1:9"\n')
    check = _low_disk(cfg)
    d = cfg.data_dir
    # The detail: what takes the room, largest first, with its size.
    assert f"the most room in {d}: media/ 300 MB, metrics/ 2 MB" in check.detail, check.detail
    fix = check.fix
    assert "export" not in fix and "logs" not in fix, fix  # nothing of the kind fills a kiosk
    assert f"du -xh --max-depth=2 {d}" in fix and f"({d}/media)" in fix, fix
    assert "Playlists page" in fix and "kiosk media list" in fix and "kiosk media import" in fix, fix
    assert "never delete the ledger" in fix, fix
    assert f"grow the data partition holding {d}" in fix, fix
    out = check.render()  # as `kiosk doctor` prints it: each step on a line of its own, under "fix:"
    assert out.startswith("[FAIL] disk: ") and "\n       fix: free space: " in out, out
    assert "\n            the clips the portal pushed leave the kiosk by themselves" in out, out


def test_a_kiosk_without_a_portal_is_not_sent_to_the_portal(tmp_path):
    check = _low_disk(_site(tmp_path))
    assert "Playlists" not in check.fix and "the portal" not in check.fix, check.fix
    assert "kiosk media list" in check.fix and "media/ 300 MB" in check.detail, check


def test_a_small_entry_is_said_in_kb_not_0_mb(tmp_path):
    cfg = load_config(write_config(tmp_path / "site"))
    ensure_secrets(cfg)
    open_ledger(cfg).close()  # a fresh ledger: some KB
    check = _low_disk(cfg)
    assert " KB" in check.detail and " 0 MB" not in check.detail, check.detail

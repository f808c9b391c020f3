"""The portal's database restored from an older backup (docs/portal.md, "Backups"): the kiosk gives back
everything the restored portal lacks, also when it was re-keyed after the backup was taken (docs/sync.md,
"Re-keying"), and its state file never claims nothing is pending while the portal is not answering.

Real parts only: real kiosk ledgers and keys in tmp_path, the real uploader, `kiosk` commands as processes, a
real portal on loopback HTTP (server_sync.embedded.start_portal) on a real SQLite file, restored with SQLite's
own online backup (the way docs/portal.md says to back it up).
"""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from sync_helpers import enrolled, make_rig

from kiosk.ledger import keys
from kiosk.ops.status import StatusInputs, status_items
from kiosk.sync.uploader import SyncState
from server_sync.embedded import PortalHandle, start_portal
from tests.loopback import refused_port

REPO = Path(__file__).parents[2]


def kiosk_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiosk", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def sqlite_backup(src: Path, dst: Path) -> None:
    """`sqlite3 portal.db ".backup dst"` (docs/portal.md, "Backups"), through the same online-backup API."""
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        a.backup(b)
    finally:
        b.close()
        a.close()


def port_of(portal: PortalHandle) -> int:
    return int(portal.url.rsplit(":", 1)[1])


def test_portal_restored_from_before_a_rekey_gets_everything_back_from_the_kiosk(tmp_path: Path) -> None:
    """The portal restored from a backup taken before the kiosk was re-keyed (docs/sync.md, "Re-keying": say its
    SD card may have been copied). Until 2026-12-07 the kiosk deleted its previous key once the portal took the
    new one; the restored portal knows only the previous one, and refused every request for ever. The retired
    key is now kept (0600) and signs again only for a portal that refuses every newer key."""
    db = tmp_path / "portal.db"
    portal = start_portal(f"sqlite:///{db}")
    rig = make_rig(tmp_path / "k")
    try:
        up = enrolled(rig, portal)
        rig.donate(4)
        rig.ledger.checkpoint()
        assert up.sync_once().ok
        old_pub = keys.public_raw(keys.load_private(rig.cfg.private_key_path).public_key())
        sqlite_backup(db, tmp_path / "yesterday.db")
        rig.rekey()
        rig.donate(5)
        rig.ledger.checkpoint()
        assert rig.uploader(portal.url).sync_once().ok
        assert rig.uploader(portal.url).sync_once().ok  # the next round: the portal took the new key
        key_dir = rig.cfg.private_key_path.parent
        assert not list(key_dir.glob("kiosk.key.previous*"))  # not signing with it while the portal knows the new
        port = port_of(portal)
        portal.stop()
        with refused_port(port):  # down, and nobody else takes its port meanwhile
            sqlite_backup(tmp_path / "yesterday.db", db)
        portal = start_portal(f"sqlite:///{db}", port=port)

        r = kiosk_cli("sync", "--config", str(rig.config_path), "--once")
        assert r.returncode == 0 and portal.totals()["total_yen"] == rig.ledger.totals()["total_yen"], (
            f"exit {r.returncode}: {r.stderr.strip()[-300:]}; portal ¥{portal.totals()['total_yen']} against "
            f"the ledger's ¥{rig.ledger.totals()['total_yen']}; keys left on the kiosk: "
            f"{sorted(p.name for p in key_dir.iterdir())}")
        # The portal has the key_change again: the next request is signed by the key in force alone.
        up = rig.uploader(portal.url)
        assert up.sync_once().ok and up.state.pending == 0
        # Kept beside the key, retired: readable by its owner only, the key the restored portal knew.
        retired = key_dir / "kiosk.key.retired.1"
        assert stat.S_IMODE(retired.stat().st_mode) == 0o600
        assert keys.public_raw(keys.load_private(retired).public_key()) == old_pub
    finally:
        rig.ledger.close(checkpoint=False)
        portal.stop()


def test_a_failed_heartbeat_leaves_the_pending_count_unknown_not_zero(tmp_path: Path) -> None:
    """Staff read "pending 0" (`kiosk sync --status`, the status page, the menu's sync page) as "everything is on
    the portal" before wiping a kiosk. The portal is down while its database is restored from a backup that lacks
    the kiosk's last gifts. Until 2026-12-07 a failed heartbeat left the last round's figure, 0, in the state
    file, though the portal came back holding fewer entries than it had acknowledged."""
    db = tmp_path / "portal.db"
    portal = start_portal(f"sqlite:///{db}")
    rig = make_rig(tmp_path / "k")
    try:
        up = enrolled(rig, portal)
        rig.donate(2)
        rig.ledger.checkpoint()
        assert up.sync_once().ok
        sqlite_backup(db, tmp_path / "yesterday.db")
        rig.donate(3)
        rig.ledger.checkpoint()
        assert up.sync_once().ok and up.state.pending == 0
        port = port_of(portal)
        portal.stop()  # the portal's disk fails; it is down while being restored
        with refused_port(port):  # down, and nobody else takes its port meanwhile
            r = kiosk_cli("sync", "--config", str(rig.config_path), "--once", "--attempts", "1")
            assert r.returncode == 1
            assert "pending unknown" in r.stderr, r.stderr
            s = kiosk_cli("sync", "--config", str(rig.config_path), "--status")
            saved = json.loads(s.stdout)
            assert saved["pending"] is None and saved["last_error"], saved
            state = SyncState.load(rig.cfg.data_dir / "sync-state.json")
            # The status page (what `kiosk run`'s menu shows from the same state): not green, not "0 pending".
            item = next(i for i in status_items(StatusInputs(portal_configured=True, pending_entries=state.pending,
                                                             last_sync_age_s=60, sync_error=state.last_error))
                        if i.key == "sync")
            assert item.level == "red" and "0 pending" not in item.value, item

            sqlite_backup(tmp_path / "yesterday.db", db)
        portal = start_portal(f"sqlite:///{db}", port=port)
        r = kiosk_cli("sync", "--config", str(rig.config_path), "--once")
        assert r.returncode == 0, r.stderr
        assert json.loads(kiosk_cli("sync", "--config", str(rig.config_path), "--status").stdout)["pending"] == 0
        assert portal.totals()["total_yen"] == rig.ledger.totals()["total_yen"]
    finally:
        rig.ledger.close(checkpoint=False)
        portal.stop()

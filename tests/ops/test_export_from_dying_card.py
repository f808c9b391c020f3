"""Exporting the ledger to a USB stick from a kiosk whose SD card is dying: the kernel has turned the data partition
read-only after an I/O error (ext4's ``errors=remount-ro``), and `kiosk doctor` tells staff to "export the ledger to
USB if it still reads (`kiosk export usb`)". The running kiosk holds its ledger open, so its newest entries are in
SQLite's write-ahead log (``ledger.db-wal``), not yet in ``ledger.db``; they are committed gifts and must be on the
stick. Nothing can be written next to the ledger any more (no ``-shm``, no checkpoint).

A real ext4 on a loop device turned read-only by the kernel's own ``trigger_fs_error``, a real tmpfs as the stick, a
real `kiosk export usb` process (what staff run, and what the maintenance menu calls) and a real `kiosk ledger
verify` of what it wrote. Mounting needs root (CI has it); elsewhere the test is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.ledger import Pepper
from kiosk.ledger.clock import FixedClock
from kiosk.ops.local_files import ensure_secrets, open_ledger
from tests.mounts import failing_ext4, small_tmpfs
from tests.ops.conftest import DAY1, donate, idm, write_config

ROOT = Path(__file__).resolve().parents[2]


def _kiosk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiosk", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _committed(db: Path) -> list[tuple[int, str]]:
    """Every committed entry (seq, entry hash) as a reader on the healthy disk sees it, WAL included."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [(s, h.hex()) for s, h in conn.execute("SELECT seq, entry_hash FROM entries ORDER BY seq")]
    finally:
        conn.close()


@pytest.mark.parametrize("kiosk", ["running", "stopped"])
def test_the_ledger_exports_whole_to_usb_from_a_data_disk_the_kernel_turned_read_only(tmp_path: Path,
                                                                                      kiosk: str) -> None:
    """Gifts recorded by the kiosk, the newest still in the WAL; the kernel turns the data disk read-only; with the
    kiosk still running (its ledger open, as when staff export from the maintenance menu) or stopped since, `kiosk
    export usb` puts every committed entry on the stick, exactly, the export verifies, and the data disk is left as
    it was. Regression test: this works (SQLite reads a WAL database on read-only media when its -shm exists)."""
    site = tmp_path / "site"
    with failing_ext4(site, size_mb=64) as trigger, small_tmpfs(tmp_path / "stick", "16m") as stick:
        config = write_config(site)
        cfg = load_config(config)
        ensure_secrets(cfg)
        led = open_ledger(cfg, clock=FixedClock())  # the running kiosk holds its ledger open for writing
        try:
            pepper = Pepper.load(cfg.pepper_path)
            for n in range(12):
                donate(led, pepper, idm(n % 3), "kodomo" if n % 2 else "midori", 100 * (1 + n % 10), "sim", f"g{n}")
            wal = Path(f"{cfg.ledger_path}-wal")
            # The newest gifts are only in the write-ahead log, as on a running kiosk between checkpoints.
            assert wal.exists() and wal.stat().st_size > 0
            want = _committed(cfg.ledger_path)
            assert len(want) >= 25, want  # genesis, boot, and an intent and a donation per gift
            main_only = sqlite3.connect(f"file:{cfg.ledger_path}?immutable=1", uri=True)
            try:  # the main file alone (what a reader that skips the WAL would see) lacks the newest entries
                assert main_only.execute("SELECT count(*) FROM entries").fetchone()[0] < len(want)
            finally:
                main_only.close()
            files = {p.name: p.stat().st_size for p in cfg.data_dir.iterdir()}

            trigger.write_text("test: the SD card is failing\n")
            with pytest.raises(OSError):
                (cfg.data_dir / "a-write").write_bytes(b"x")
            if kiosk == "stopped":  # the kiosk stopped after the error: SQLite could neither checkpoint nor tidy up
                led.close(checkpoint=False)
                assert wal.stat().st_size > 0 and Path(f"{cfg.ledger_path}-shm").exists()

            r = _kiosk("export", "usb", "--config", str(config), "--stick", str(stick), "--no-logs",
                       "--date", DAY1.isoformat(), "--json")
            assert r.returncode == 0, r.stderr
            result = json.loads(r.stdout)
            assert result["entries"] == len(want), (result, len(want))
            exported = Path(result["directory"]) / "ledger.jsonl"
            assert exported.parent.parent == stick

            lines = exported.read_text("utf-8").splitlines()
            header = json.loads(lines[0])
            assert header["entries"] == len(want)
            got = [(d["seq"], d["entry_hash"]) for d in map(json.loads, lines[1:])]
            assert got == want  # every committed entry, the newest (in the WAL) included, nothing else

            v = _kiosk("ledger", "verify", str(exported))
            assert v.returncode == 0, v.stdout + v.stderr

            # The read-only data disk was left as it was: nothing new next to the ledger.
            assert {p.name: p.stat().st_size for p in cfg.data_dir.iterdir()} == files
        finally:
            led.close(checkpoint=False)

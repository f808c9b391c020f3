"""The kiosk's data partition turned read-only by the kernel after an I/O error, while the kiosk runs: ext4's
``errors=remount-ro``, what a failing SD card in a Raspberry Pi does. The mount still says "rw" to statvfs and
passes access(2) (the kernel shows only "emergency_ro" among the file system's options), yet every write fails.
The status page (`kiosk status --json`, the menu's page in Japanese) shows the red "disk" line, and `kiosk doctor`
fails its disk check with what to do; a full disk is not taken for a read-only one, and the check leaves no file.

A real ext4 on a loop device, the kernel's own ``trigger_fs_error``, real `kiosk status` and `kiosk doctor`
processes. Mounting needs root (CI has it); elsewhere the tests are skipped, saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.ledger import Pepper
from kiosk.ledger.clock import FixedClock
from kiosk.ops.local_files import ensure_secrets, open_ledger
from kiosk.ops.status import StatusInputs, read_disk_writable, status_items
from kiosk.staff.menu import status_text
from kiosk.ui.i18n import translations
from tests.mounts import failing_ext4, fill, small_tmpfs
from tests.ops.conftest import donate, idm, write_config

ROOT = Path(__file__).resolve().parents[2]


def _kiosk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiosk", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _status(config: Path) -> dict[str, dict[str, str]]:
    r = _kiosk("status", "--config", str(config), "--json")
    assert r.returncode == 0, r.stderr
    return {i["key"]: i for i in json.loads(r.stdout)["items"]}


def _doctor_disk(config: Path) -> str:
    r = _kiosk("doctor", "--config", str(config))
    lines = r.stdout.splitlines()
    i = next(n for n, line in enumerate(lines) if "] disk: " in line)
    return "\n".join(lines[i:i + 2])


def test_a_data_disk_the_kernel_turns_read_only_is_the_red_disk_line(tmp_path: Path) -> None:
    """The kiosk runs with its ledger open on the data partition (a mount point with a space, as mountinfo
    escapes it); the kernel turns the partition read-only after an error. statvfs and access(2) still say it can
    be written, but `kiosk status` shows the disk red, "read-only: nothing can be saved", the menu says it in
    Japanese with what to do, and `kiosk doctor` fails its disk check with the fix. Before the error, all green."""
    site = tmp_path / "kiosk site"
    with failing_ext4(site, size_mb=1600, image=site.parent / "disk.img") as trigger:  # room enough to be green
        config = write_config(site)
        cfg = load_config(config)
        ensure_secrets(cfg)
        led = open_ledger(cfg, clock=FixedClock())  # the running kiosk holds its ledger open for writing
        try:
            pepper = Pepper.load(cfg.pepper_path)
            donate(led, pepper, idm(0), "kodomo", 500, "sim", "before-the-error")
            assert _status(config)["disk"]["level"] == "green"
            assert "[OK  ] disk: " in _doctor_disk(config)

            trigger.write_text("test: the SD card is failing\n")
            st = os.statvfs(cfg.data_dir)
            # What the kiosk used to measure, still saying all is well: the reason for this test.
            assert not st.f_flag & os.ST_RDONLY and os.access(cfg.data_dir, os.W_OK)
            with pytest.raises(OSError):
                (cfg.data_dir / "a-write").write_bytes(b"x")

            disk = _status(config)["disk"]
            assert (disk["level"], disk["value"]) == ("red", "read-only: nothing can be saved"), disk
            assert "SD card" in disk["hint"], disk

            doctor = _doctor_disk(config)
            assert doctor.startswith("[FAIL] disk: ") and "read-only" in doctor, doctor
            assert "kernel stopped all writes after a disk error" in doctor, doctor
            assert "replace the SD card" in doctor and "kiosk export usb" in doctor and "maintainer" in doctor, doctor

            # The menu's status page, as staff read it: in Japanese, with what to do.
            assert read_disk_writable(cfg.data_dir) is False
            ja = translations("ja")
            item = next(i for i in status_items(StatusInputs(disk_free_bytes=8 * 2**30,
                                                             disk_writable=read_disk_writable(cfg.data_dir)))
                        if i.key == "disk")
            assert item.level == "red"
            assert status_text.say(item.value, ja.gettext, ja.ngettext) == "読み取り専用: 何も保存できません"
            todo = status_text.hint(item.value, item.hint, ja.gettext, ja.ngettext)
            assert "SDカード" in todo and "連絡" in todo, todo
            assert not list(cfg.data_dir.glob(".disk-probe-*"))
        finally:
            led.close(checkpoint=False)


def test_a_full_disk_is_not_called_read_only_and_the_check_leaves_nothing(tmp_path: Path) -> None:
    """The probe of a full disk fails for want of room, not because it is read-only: still writable (the free
    space line says the rest); a healthy disk is writable and keeps no probe file."""
    with small_tmpfs(tmp_path / "data", "1m,nr_inodes=32") as d:
        assert read_disk_writable(d) is True
        assert list(d.iterdir()) == []
        fill(d)
        for n in range(64):  # take the inodes too, so not even an empty file can be made
            try:
                (d / f"f{n}").touch()
            except OSError:
                break
        else:
            pytest.fail("the tmpfs did not run out of inodes")
        assert read_disk_writable(d) is True
        assert not list(d.glob(".disk-probe-*"))

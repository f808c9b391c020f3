"""The unit files pass `systemd-analyze verify`; install.sh into a temp root is idempotent."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from kiosk.ops.doctor import display_checks, unit_checks

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
UNITS = ["kiosk.service", "kiosk-sync.service", "kiosk-sync.timer", "kiosk-closeout.service",
         "kiosk-closeout.timer", "kiosk-portal.service"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_units_pass_systemd_analyze_verify(tmp_path):
    # verify insists that ExecStart binaries exist; point them at stand-ins in tmp_path.
    fake_bin = tmp_path / "venv" / "bin"
    fake_bin.mkdir(parents=True)
    for name in ("kiosk", "uvicorn"):
        exe = fake_bin / name
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    for u in UNITS:
        (units / u).write_text((SYSTEMD / u).read_text().replace("/opt/kiosk/venv/bin/", f"{fake_bin}/"))
    r = subprocess.run(["systemd-analyze", "verify", *[str(units / u) for u in UNITS]],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "kiosk" not in r.stderr, r.stderr  # no warnings about our units either


def test_kiosk_unit_has_the_required_settings():
    text = (SYSTEMD / "kiosk.service").read_text()
    settings = {tuple(line.split("=", 1)) for line in text.splitlines() if "=" in line and not line.startswith("#")}
    for pair in [("Type", "notify"), ("Restart", "always"), ("User", "kiosk"), ("StateDirectory", "kiosk"),
                 ("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                 ("NoNewPrivileges", "yes"), ("SupplementaryGroups", "video render input plugdev"),
                 ("Environment", "SDL_VIDEODRIVER=kmsdrm"), ("TTYPath", "/dev/tty1"), ("LimitCORE", "0")]:
        assert pair in settings, pair
    assert any(k == "WatchdogSec" for k, _ in settings)
    assert "PrivateDevices" not in text.replace("no PrivateDevices=", "")  # /dev/dri, /dev/input, /dev/bus/usb


def test_polkit_rule_allows_only_reboot_and_poweroff_for_kiosk():
    rule = (SYSTEMD / "50-kiosk-power.rules").read_text()
    actions = {a for a in rule.split('"') if a.startswith("org.freedesktop.")}
    assert actions == {"org.freedesktop.login1.reboot", "org.freedesktop.login1.reboot-multiple-sessions",
                       "org.freedesktop.login1.power-off", "org.freedesktop.login1.power-off-multiple-sessions"}
    assert 'subject.user == "kiosk"' in rule


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path below root with its type, mode and content (or link target); not times."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def run_install(root: Path, stub_log: Path) -> subprocess.CompletedProcess:
    # Commands that would change the host are skipped with --root; stubs prove they are not called.
    stub = root.parent / "stub"
    stub.write_text(f"#!/bin/sh\necho \"$0 $*\" >> {stub_log}\nexit 1\n")
    stub.chmod(0o755)
    env = {**os.environ, "KIOSK_APT": str(stub), "KIOSK_USERADD": str(stub), "KIOSK_USERMOD": str(stub),
           "KIOSK_UDEVADM": str(stub), "KIOSK_PYTHON": str(stub)}
    if shutil.which("systemctl") is None:
        env["KIOSK_SYSTEMCTL"] = "true"
    return subprocess.run(["bash", str(SYSTEMD / "install.sh"), "--root", str(root)], capture_output=True,
                          text=True, env=env, timeout=120)


def test_install_twice_into_a_temp_root_gives_the_same_tree(tmp_path):
    root = tmp_path / "root"
    (root / "boot/firmware").mkdir(parents=True)
    (root / "boot/firmware/cmdline.txt").write_text(
        "console=serial0,115200 console=tty1 root=PARTUUID=abc rootfstype=ext4 consoleblank=600 rootwait\n")
    log = tmp_path / "stub.log"
    first = run_install(root, log)
    assert first.returncode == 0, first.stderr
    tree1 = snapshot(root)
    second = run_install(root, log)
    assert second.returncode == 0, second.stderr
    assert snapshot(root) == tree1
    assert "installed" not in second.stdout and "copied" not in second.stdout  # nothing to do the second time
    assert not log.exists(), log.read_text()  # apt/useradd/udevadm/pip never ran

    etc = root / "etc"
    for u in UNITS:
        assert (etc / "systemd/system" / u).read_text() == (SYSTEMD / u).read_text()
    assert (etc / "udev/rules.d/99-kiosk-readers.rules").read_bytes() == \
        (SYSTEMD / "99-kiosk-readers.rules").read_bytes()
    assert (etc / "modprobe.d/kiosk-readers-blacklist.conf").read_bytes() == \
        (SYSTEMD / "kiosk-readers-blacklist.conf").read_bytes()
    assert (etc / "kiosk/kiosk.toml").exists() and (root / "opt/kiosk/src/kiosk/staff/cli.py").exists()
    assert not (root / "opt/kiosk/src/tests").exists()
    cmdline = (root / "boot/firmware/cmdline.txt").read_text()
    assert cmdline.count("consoleblank=") == 1 and " consoleblank=0 " in cmdline
    # The doctor's unit checks agree that the tree is set up.
    if shutil.which("systemctl"):
        assert (etc / "systemd/system/multi-user.target.wants/kiosk.service").is_symlink()
        assert all(c.status == "ok" for c in unit_checks(None, root)), unit_checks(None, root)


def test_install_keeps_a_site_config(tmp_path):
    root = tmp_path / "root"
    (root / "etc/kiosk").mkdir(parents=True)
    (root / "etc/kiosk/kiosk.toml").write_text("# the center's own settings\n")
    assert run_install(root, tmp_path / "log").returncode == 0
    assert (root / "etc/kiosk/kiosk.toml").read_text() == "# the center's own settings\n"


def test_display_check_reads_consoleblank(tmp_path):
    p = tmp_path / "sys/module/kernel/parameters/consoleblank"
    p.parent.mkdir(parents=True)
    p.write_text("600\n")
    assert display_checks(tmp_path)[0].status == "warn"
    p.write_text("0\n")
    assert display_checks(tmp_path)[0].status == "ok"

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kiosk.config.reader import ReaderConfig
from kiosk.ops.reader_doctor import reader_checks


def plug(sysfs: Path, name: str, vid: str, pid: str, bus: int, dev: int) -> None:
    d = sysfs / name
    d.mkdir(parents=True)
    (d / "idVendor").write_text(vid + "\n")
    (d / "idProduct").write_text(pid + "\n")
    (d / "busnum").write_text(f"{bus}\n")
    (d / "devnum").write_text(f"{dev}\n")
    (sysfs / f"{name}:1.0").mkdir()  # an interface directory without ids


@pytest.fixture
def tree(tmp_path):
    t = {
        "sysfs_root": tmp_path / "sys",
        "dev_root": tmp_path / "dev",
        "proc_modules": tmp_path / "modules",
        "proc_root": tmp_path / "proc",
        "pcscd_socket": tmp_path / "run/pcscd/pcscd.comm",
        "libccid_plists": [tmp_path / "libccid_Info.plist"],
    }
    t["sysfs_root"].mkdir()
    t["proc_root"].mkdir()
    t["proc_modules"].write_text("snd 1 0 - Live 0x0\n")
    plug(t["sysfs_root"], "1-1", "1d6b", "0002", 1, 1)  # a hub: ignored
    return t


def by_name(checks):
    return {c.name: c for c in checks}


def devnode(tree, bus, dev):
    p = tree["dev_root"] / "bus/usb" / f"{bus:03d}" / f"{dev:03d}"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("")
    return p


def test_no_reader(tree):
    c = by_name(reader_checks(ReaderConfig(backend="nfcpy"), **tree))
    assert c["reader.usb"].status == "fail" and "RC-S380" in c["reader.usb"].fix


def test_rcs380_ok(tree):
    plug(tree["sysfs_root"], "1-2", "054c", "06c3", 1, 4)
    devnode(tree, 1, 4)
    checks = reader_checks(ReaderConfig(backend="nfcpy"), access=lambda p: True, **tree)
    assert all(ch.status == "ok" for ch in checks), [ch.render() for ch in checks]
    c = by_name(checks)
    assert "RC-S380/P" in c["reader.usb"].detail and "bus 001 dev 004" in c["reader.usb"].detail


def test_udev_permission_missing_prints_the_rule(tree):
    plug(tree["sysfs_root"], "1-2", "054c", "06c3", 1, 4)
    node = devnode(tree, 1, 4)
    seen = []
    c = by_name(reader_checks(ReaderConfig(backend="nfcpy"), access=lambda p: seen.append(p) or False, **tree))
    assert seen == [node]
    assert c["reader.udev"].status == "fail"
    assert ('SUBSYSTEM=="usb", ATTRS{idVendor}=="054c", ATTRS{idProduct}=="06c3", GROUP="plugdev"'
            in c["reader.udev"].fix)
    assert "udevadm control --reload-rules" in c["reader.udev"].fix


def test_kernel_modules_holding_the_reader(tree):
    plug(tree["sysfs_root"], "1-2", "054c", "06c3", 1, 4)
    devnode(tree, 1, 4)
    tree["proc_modules"].write_text("port100 16384 0 - Live 0x0\nnfc 1 1 port100, Live 0x0\n")
    c = by_name(reader_checks(ReaderConfig(backend="nfcpy"), access=lambda p: True, **tree))
    assert c["reader.kernel"].status == "fail" and "port100" in c["reader.kernel"].detail
    fix = c["reader.kernel"].fix
    assert "blacklist port100" in fix and "sudo tee /etc/modprobe.d/kiosk-readers-blacklist.conf" in fix
    assert "modprobe -r port100" in fix


def test_backend_mismatch(tree):
    plug(tree["sysfs_root"], "1-2", "054c", "06c3", 1, 4)
    c = by_name(reader_checks(ReaderConfig(backend="pcsc"), **tree))
    assert c["reader.usb"].status == "fail" and 'backend = "nfcpy"' in c["reader.usb"].fix


@pytest.mark.parametrize("opts,status", [("0x0000", "fail"), ("0x0001", "ok"), ("0x0005", "ok")])
def test_rcs300_libccid_escape_option(tree, opts, status):
    plug(tree["sysfs_root"], "3-1", "054c", "0dc9", 3, 2)
    tree["pcscd_socket"].parent.mkdir(parents=True)
    pcscd = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # a listening socket, as pcscd's (a file is not)
    pcscd.bind(str(tree["pcscd_socket"]))
    pcscd.listen()
    tree["libccid_plists"][0].write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
        '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n<dict>\n'
        f"\t<key>ifdDriverOptions</key>\n\t<string>{opts}</string>\n"
        "\t<key>ifdProductID</key>\n\t<array><string>0x0DC9</string></array>\n</dict>\n</plist>\n"
    )
    with pcscd:
        c = by_name(reader_checks(ReaderConfig(backend="pcsc"), pyscard_available=lambda: True, **tree))
    assert c["reader.pcscd"].status == "ok" and c["reader.pyscard"].status == "ok"
    assert c["reader.libccid"].status == status
    if status == "fail":
        assert "s/0x0000/0x0001/" in c["reader.libccid"].fix and "restart pcscd" in c["reader.libccid"].fix
    assert "reader.udev" not in c  # pcscd opens the device, not us


def test_pcscd_not_running_and_pyscard_missing(tree):
    plug(tree["sysfs_root"], "3-1", "072f", "223e", 3, 2)
    c = by_name(reader_checks(ReaderConfig(backend="pcsc"), pyscard_available=lambda: False, **tree))
    assert c["reader.usb"].status == "ok"
    assert c["reader.pcscd"].status == "fail"
    assert c["reader.pcscd"].fix == "sudo apt install pcscd libccid && sudo systemctl enable --now pcscd"
    assert c["reader.pyscard"].status == "fail"
    assert "reader.libccid" not in c  # only the RC-S300 needs the escape


def test_pcscd_found_by_process_name(tree):
    plug(tree["sysfs_root"], "3-1", "072f", "223e", 3, 2)
    (tree["proc_root"] / "123").mkdir()
    (tree["proc_root"] / "123" / "comm").write_text("pcscd\n")
    c = by_name(reader_checks(ReaderConfig(backend="pcsc"), pyscard_available=lambda: True, **tree))
    assert c["reader.pcscd"].status == "ok"


def test_sim_backend_needs_nothing(tree):
    checks = reader_checks(ReaderConfig(backend="sim"), **tree)
    assert [(c.name, c.status) for c in checks] == [("reader.usb", "ok")]


def test_without_config_everything_found_is_checked(tree):
    plug(tree["sysfs_root"], "1-2", "054c", "06c3", 1, 4)
    plug(tree["sysfs_root"], "3-1", "054c", "0dc8", 3, 2)
    devnode(tree, 1, 4)
    names = {c.name for c in reader_checks(None, access=lambda p: True, pyscard_available=lambda: True, **tree)}
    assert names == {"reader.usb", "reader.udev", "reader.kernel", "reader.pcscd", "reader.pyscard", "reader.libccid"}
    for c in reader_checks(None, access=lambda p: True, pyscard_available=lambda: False, **tree):
        assert c.status == "ok" or c.fix, c.render()  # every failure says how to fix it

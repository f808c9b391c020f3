"""`kiosk doctor`'s reader checks against the set-ups an installer meets, on a fake sysfs/proc tree and a real
Unix socket where pcscd's would be (the lowest seams: files and a socket).

Defects: a pcscd socket file left behind (pcscd.socket stopped: systemd does not remove the file; pcscd crashed)
was taken for a running pcscd; and an RC-S300 with ``backend = "nfcpy"`` got only "set backend = pcsc", the
pcscd and libccid problems it also had coming one `kiosk doctor` run later.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest
from test_reader_doctor import by_name, plug, tree  # noqa: F401  (the fixture, reused)

from kiosk.config.reader import ReaderConfig
from kiosk.ops.reader_doctor import reader_checks


@pytest.fixture
def short_dir():
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path may be longer.
    with tempfile.TemporaryDirectory(prefix="r7-", dir="/tmp") as d:
        yield Path(d)


def _listening(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen()
    return s


def _libccid(path: Path, opts: str) -> None:
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n'
                    f"\t<key>ifdDriverOptions</key>\n\t<string>{opts}</string>\n</dict>\n</plist>\n")


def test_a_socket_file_left_by_a_stopped_pcscd_is_not_a_running_pcscd(tree, short_dir):  # noqa: F811
    plug(tree["sysfs_root"], "3-1", "072f", "223e", 3, 2)
    tree["pcscd_socket"] = short_dir / "pcscd.comm"
    _listening(tree["pcscd_socket"]).close()  # the file stays, nobody listens: SCardEstablishContext fails
    assert tree["pcscd_socket"].exists()
    c = by_name(reader_checks(ReaderConfig(backend="pcsc"), pyscard_available=lambda: True, **tree))
    assert c["reader.pcscd"].status == "fail", c["reader.pcscd"]
    assert c["reader.pcscd"].fix == "sudo apt install pcscd libccid && sudo systemctl enable --now pcscd"


def test_a_listening_pcscd_socket_is_a_running_pcscd(tree, short_dir):  # noqa: F811
    plug(tree["sysfs_root"], "3-1", "072f", "223e", 3, 2)
    tree["pcscd_socket"] = short_dir / "pcscd.comm"
    with _listening(tree["pcscd_socket"]):
        c = by_name(reader_checks(ReaderConfig(backend="pcsc"), pyscard_available=lambda: True, **tree))
    assert c["reader.pcscd"].status == "ok", c["reader.pcscd"]


def test_an_rcs300_on_nfcpy_gets_the_backend_and_everything_pcsc_needs_in_one_run(tree):  # noqa: F811
    plug(tree["sysfs_root"], "3-1", "054c", "0dc9", 3, 2)
    _libccid(tree["libccid_plists"][0], "0x0000")
    c = by_name(reader_checks(ReaderConfig(backend="nfcpy"), pyscard_available=lambda: False, **tree))
    usb = c["reader.usb"]
    assert usb.status == "fail" and "Sony RC-S300/P (054c:0dc9)" in usb.detail
    assert "backend 'nfcpy' cannot drive it: it is a PC/SC reader" in usb.detail
    assert usb.fix.startswith('set backend = "pcsc" in the [reader] section')
    assert c["reader.pcscd"].status == "fail" and "systemctl enable --now pcscd" in c["reader.pcscd"].fix
    assert c["reader.pyscard"].status == "fail"
    assert c["reader.libccid"].status == "fail" and "s/0x0000/0x0001/" in c["reader.libccid"].fix
    assert "reader.udev" not in c  # pcscd opens it, not the kiosk user


def test_an_acr122u_on_nfcpy_needs_no_pcscd(tree):  # noqa: F811
    """nfcpy can drive the ACR122U: no PC/SC check for it then."""
    plug(tree["sysfs_root"], "3-1", "072f", "2200", 3, 2)
    names = {c.name for c in reader_checks(ReaderConfig(backend="nfcpy"), access=lambda p: True, **tree)}
    assert "reader.pcscd" not in names and "reader.libccid" not in names

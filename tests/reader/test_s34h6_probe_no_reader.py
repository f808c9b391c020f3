"""Review 34: `kiosk reader probe` with no reader plugged in ended in English only and named no fix ("reader
reader-1: reader unplugged or not found (ENODEV); retrying" / "kiosk reader probe: no reader connected"): staff and
installers, who are not engineers, were not told what to do. Now its last words are Japanese first, each with its
English line under it: plug the reader in, check `lsusb` lists it, and, listed but still not found, the exact
commands that install systemd/99-kiosk-readers.rules (kiosk/reader/fixes.py ``no_reader_report``, translated with
the screens' catalog by kiosk/cli.py and kiosk/reader/__main__.py: the reader package has no UI).

The real commands run in a subprocess on a config with the nfcpy backend; nfcpy's own device search runs, faked
only at libusb (``nfc.clf.transport.USB``, as tests/reader/test_reader_nfcpy_backend.py does) and at sysfs (no
reader plugged in), so the test says the same on a machine with a reader attached.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.ledger.pepper import Pepper

ROOT = Path(__file__).resolve().parents[2]

# Run in the child before the command: libusb sees the devices below, sysfs none of our readers.
BOOT = """
import errno, os, runpy, sys, types
import nfc.clf.transport, nfc.clf.device
import kiosk.reader.devices as devices
from pathlib import Path

MODE, EMPTY, ARGV = sys.argv[1], sys.argv[2], sys.argv[3:]
devices.SYSFS_USB_DEVICES = Path(EMPTY)

class USB:
    @classmethod
    def find(cls, path):
        if not path.startswith("usb"):
            return None
        return [(0x054C, 0x06C3, 1, 4)] if MODE == "eacces" else []

    def __init__(self, bus, dev):
        raise OSError(errno.EACCES, "fake libusb")

nfc.clf.transport.USB = USB
if MODE == "eacces":  # nfcpy checks the device node's access before it opens it
    nfc.clf.device.os = types.SimpleNamespace(access=lambda p, m: False, R_OK=os.R_OK, W_OK=os.W_OK,
                                              strerror=os.strerror)
if ARGV[0] == "-m":
    sys.argv = ["python -m kiosk.reader", *ARGV[1:]]
    runpy.run_module("kiosk.reader", run_name="__main__")
else:
    from kiosk.cli import main
    sys.exit(main(ARGV))
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    Pepper.create(tmp_path / "data" / "keys" / "pepper.json")
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('[kiosk]\nid = "probe-1"\ndata_dir = "data"\n[reader]\nbackend = "nfcpy"\n', "utf-8")
    (tmp_path / "sysfs").mkdir()
    return tmp_path


def probe(site: Path, mode: str, *entry: str) -> subprocess.CompletedProcess[str]:
    argv = [*entry, "reader", "probe", "--config", str(site / "kiosk.toml"), "--timeout", "0.4"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", BOOT, mode, str(site / "sysfs"), *argv], capture_output=True,
                          text=True, env=env, cwd=site, timeout=60)


@pytest.mark.parametrize("entry", [(), ("-m",)], ids=["kiosk", "python -m kiosk.reader"])
def test_no_reader_says_in_japanese_first_what_to_plug_in_and_type(site: Path, entry: tuple[str, ...]) -> None:
    done = probe(site, "none", *entry)
    assert done.returncode == 1, done.stderr
    assert "ENODEV" in done.stdout  # the event line, for whoever is called
    err = done.stderr
    words = err[err.index("カードリーダーが見つかりません。"):].splitlines()
    assert words[0] == "カードリーダーが見つかりません。"
    assert words[1] == "kiosk reader probe: no reader connected"
    text = "\n".join(words)
    # Each step in Japanese, its English line under it, then what to type.
    ja_plug, en_plug = text.index("USBケーブルを、キオスク本体に差し込んで"), text.index("Plug the card reader's USB")
    ja_list, en_list = text.index("一覧にカードリーダーがあるか"), text.index("check that the card reader is in")
    assert ja_plug < en_plug < ja_list < en_list
    assert "\n       lsusb\n" in text
    shipped = ROOT / "systemd" / "99-kiosk-readers.rules"
    ja_udev = text.index(f"設定ファイル {shipped} を入れてから")
    en_udev = text.index(f"Install the rule file {shipped} with these commands")
    cp = text.index(f"       sudo cp {shipped} /etc/udev/rules.d/99-kiosk-readers.rules\n")
    reload = text.index("       sudo udevadm control --reload-rules && sudo udevadm trigger\n")
    assert en_list < ja_udev < en_udev < cp < reload
    assert text.index("もう一度このチェック") > reload


def test_a_refused_reader_points_to_its_fix_in_japanese(site: Path) -> None:
    """A reader there but refused (EACCES): its udev fix is printed with the event; the last words say to type it."""
    done = probe(site, "eacces")
    assert done.returncode == 1, done.stderr
    assert 'ATTRS{idProduct}=="06c3"' in done.stdout and "fix: " in done.stdout
    err = done.stderr.splitlines()
    first = next(i for i, line in enumerate(err) if line.startswith("カードリーダーを使えません。"))
    assert "「fix:」の行にあるコマンド" in err[first]
    assert err[first + 1].startswith('The card reader cannot be used. Type the commands on the "fix:" lines')
    assert err[first + 2] == "kiosk reader probe: no reader connected"
    assert "lsusb" not in done.stderr  # it was found: no "plug it in"


def test_without_a_catalog_the_words_are_english_once() -> None:
    from kiosk.reader.fixes import no_reader_report

    text = no_reader_report("lost", "pcsc", None, "/etc/kiosk/kiosk.toml")
    assert not any("\u3040" <= ch <= "\u30ff" for ch in text)
    assert text.count("Plug the card reader's USB cable") == 1
    assert "kiosk doctor --config /etc/kiosk/kiosk.toml" in text  # PC/SC readers need no udev rule
    assert "udev" not in text

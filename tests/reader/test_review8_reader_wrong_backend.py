"""A reader plugged in that the configured backend cannot drive: an RC-S300 (PC/SC only) with
``backend = "nfcpy"``, or an RC-S380 (nfcpy only) with ``backend = "pcsc"``.

The backend finds no reader, which was reported as "reader unplugged or not found (ENODEV)": a lost reader,
retried quietly, the fix never printed, the status page saying "check the reader's USB cable" of a reader that was
plugged in. It is a setup fault: the reason names the reader and why, the fix says what to change.

nfcpy's own device search runs (``ContactlessFrontend.open``), faked at libusb (``nfc.clf.transport.USB``: the
devices libusb lists); PC/SC at pyscard's reader list; the plugged-in readers the kiosk looks at come from a sysfs
tree in tmp_path.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path

import nfc.clf.transport
import pytest

from kiosk.reader import devices
from kiosk.reader.events import ReaderDisconnected
from kiosk.reader.nfcpy_backend import NfcpyReader, open_frontend
from kiosk.reader.pcsc_backend import PcscReader
from kiosk.reader.supervisor import ReaderSupervisor, State

REASON = "Sony RC-S300/P is plugged in but nfcpy cannot drive it: it is a PC/SC reader"
FIX = 'set backend = "pcsc" in the [reader] section of the config, then run `kiosk doctor`'


def plug(sysfs: Path, name: str, vid: str, pid: str, bus: int, dev: int) -> None:
    d = sysfs / name
    d.mkdir(parents=True)
    for key, value in (("idVendor", vid), ("idProduct", pid), ("busnum", bus), ("devnum", dev)):
        (d / key).write_text(f"{value}\n")
    (sysfs / f"{name}:1.0").mkdir()  # an interface directory without ids


def libusb_lists(*ids: tuple[int, int, int, int]) -> type:
    """nfc.clf.transport.USB as libusb would answer it with these devices on the bus."""

    class FakeUSB:
        @classmethod
        def find(cls, path):
            if not path.startswith("usb"):
                return None
            parts = path.split(":")[1:]
            if len(parts) == 2 and all(len(p) == 4 for p in parts):  # usb:VVVV:PPPP
                return [d for d in ids if (d[0], d[1]) == (int(parts[0], 16), int(parts[1], 16))]
            return list(ids)

        def __init__(self, bus, dev):  # pragma: no cover - nfcpy opens only readers it has a driver for
            raise AssertionError("nfcpy opened a device it has no driver for")

    return FakeUSB


@pytest.fixture
def usb(tmp_path, monkeypatch):
    """Plug readers in: both where libusb (nfcpy) and where sysfs (devices.scan_usb) see them."""
    sysfs = tmp_path / "sys"
    sysfs.mkdir()
    plug(sysfs, "1-1", "1d6b", "0002", 1, 1)  # a hub
    monkeypatch.setattr(devices, "SYSFS_USB_DEVICES", sysfs)
    plugged: list[tuple[int, int, int, int]] = [(0x1D6B, 0x0002, 1, 1)]

    def plug_in(vid: int, pid: int, bus: int, dev: int) -> None:
        plug(sysfs, f"{bus}-{dev}", f"{vid:04x}", f"{pid:04x}", bus, dev)
        plugged.append((vid, pid, bus, dev))
        monkeypatch.setattr(nfc.clf.transport, "USB", libusb_lists(*plugged))

    monkeypatch.setattr(nfc.clf.transport, "USB", libusb_lists(*plugged))
    return plug_in


@pytest.mark.parametrize("device", ["usb", "usb:054c:06c3"])
def test_an_rcs300_under_nfcpy_is_a_setup_fault_with_the_fix(usb, rconf, pepper, clock, device):
    usb(0x054C, 0x0DC9, 3, 2)  # Sony RC-S300/P
    sup = ReaderSupervisor(NfcpyReader(rconf(backend="nfcpy", device=device), pepper.token, clock=clock))
    delays = [sup.step() for _ in range(3)]
    (e,) = sup.events.drain()  # one event, not one per retry
    assert isinstance(e, ReaderDisconnected)
    assert e.fault == "setup" and e.is_config_fault
    assert e.reason == REASON
    assert e.fix == FIX
    assert sup.state is State.FAULT  # the status page's red "run kiosk doctor", not "check the USB cable"
    assert delays == [0.5, 1.0, 2.0]  # still retrying: it recovers once the config is fixed


def test_with_nothing_plugged_in_it_is_still_a_lost_reader(usb, rconf, pepper, clock):
    with pytest.raises(OSError) as ei:
        open_frontend("usb")
    assert ei.value.errno == errno.ENODEV
    sup = ReaderSupervisor(NfcpyReader(rconf(backend="nfcpy"), pepper.token, clock=clock))
    sup.step()
    (e,) = sup.events.drain()
    assert e.fault == "lost" and "ENODEV" in e.reason and sup.state is State.RECONNECTING


def test_an_rcs380_under_pcsc_is_a_setup_fault_with_the_fix(usb, rconf, pepper, clock):
    usb(0x054C, 0x06C3, 1, 4)  # Sony RC-S380/P: pcscd lists no reader (libccid has no driver for it)
    reader = PcscReader(rconf(backend="pcsc"), pepper.token, list_readers=lambda: [], clock=clock)
    sup = ReaderSupervisor(reader)
    sup.step()
    (e,) = sup.events.drain()
    assert (e.fault, e.reason) == ("setup", "Sony RC-S380/P is plugged in but PC/SC cannot drive it: "
                                            "it is an nfcpy reader")
    assert e.fix == 'set backend = "nfcpy" in the [reader] section of the config, then run `kiosk doctor`'
    assert sup.state is State.FAULT


def test_pcsc_with_an_rcs300_plugged_in_but_not_listed_is_still_not_found(usb, rconf, pepper, clock):
    """A PC/SC reader pcscd does not list (yet): not a backend mistake."""
    usb(0x054C, 0x0DC8, 1, 4)
    sup = ReaderSupervisor(PcscReader(rconf(backend="pcsc"), pepper.token, list_readers=lambda: [], clock=clock))
    sup.step()
    (e,) = sup.events.drain()
    assert e.fault == "lost" and "ENODEV" in e.reason and sup.state is State.RECONNECTING


def in_a_child(fn: Callable[[], int]) -> tuple[int, str]:
    """``fn()`` in a forked child (the probe switches core dumps off for its whole process: kiosk/reader/nodump.py);
    its exit code and everything it printed."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            os.close(r)
            with os.fdopen(w, "w") as out:
                sys.stdout = sys.stderr = out
                code = fn()
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), text


def test_reader_probe_prints_the_reason_and_the_fix(usb, tmp_path):
    from kiosk.config import load_config
    from kiosk.ops.local_files import ensure_secrets
    from kiosk.reader.__main__ import main

    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[kiosk]\nid = "probe-1"\ndata_dir = "{tmp_path / "data"}"\n\n[reader]\nbackend = "nfcpy"\n')
    ensure_secrets(load_config(cfg))
    usb(0x054C, 0x0DC8, 3, 2)  # Sony RC-S300/S
    code, out = in_a_child(lambda: main(["reader", "probe", "--config", str(cfg), "--timeout", "0.3"]))
    assert code == 1, out
    assert "Sony RC-S300/S is plugged in but nfcpy cannot drive it: it is a PC/SC reader" in out
    assert f"fix: {FIX}" in out
    assert "ENODEV" not in out and "unplugged" not in out

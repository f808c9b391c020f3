"""Which USB card readers we know, which backend drives each, and finding them in sysfs.

Like nfcpy's ``usb_device_map``: (vendor, product) -> what it is. Ids from
nfcpy 1.0.4's driver map and libccid 1.5.2's supported-reader list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec

Backend = Literal["nfcpy", "pcsc"]


class ReaderModel(msgspec.Struct, frozen=True):
    name: str
    backend: Backend
    """The backend that should drive it."""
    kernel_modules: tuple[str, ...] = ()
    """Kernel NFC drivers that grab it (and make libusb/pcscd fail with EBUSY)."""
    note: str = ""
    also_nfcpy: bool = False
    """A PC/SC reader nfcpy can drive too (the ACR122U): it needs the udev rule when run that way."""

    @property
    def nfcpy_opens(self) -> bool:
        """nfcpy may open it through libusb, so the kiosk user needs a udev rule for it."""
        return self.backend == "nfcpy" or self.also_nfcpy


SONY = 0x054C
ACS = 0x072F

DEVICE_MAP: dict[tuple[int, int], ReaderModel] = {
    (SONY, 0x06C1): ReaderModel("Sony RC-S380/S", "nfcpy", ("port100",)),
    (SONY, 0x06C3): ReaderModel("Sony RC-S380/P", "nfcpy", ("port100",)),
    (SONY, 0x02E1): ReaderModel("Sony RC-S330/S360/S370", "nfcpy"),
    (SONY, 0x0DC8): ReaderModel("Sony RC-S300/S", "pcsc", (), "needs libccid ifdDriverOptions 0x0001"),
    (SONY, 0x0DC9): ReaderModel("Sony RC-S300/P", "pcsc", (), "needs libccid ifdDriverOptions 0x0001"),
    (ACS, 0x223E): ReaderModel("ACS ACR1252U", "pcsc"),
    (ACS, 0x2200): ReaderModel("ACS ACR122U", "pcsc", ("pn533_usb", "pn533"), "not recommended", also_nfcpy=True),
    (0x04E6, 0x5591): ReaderModel("SCM SCL3711", "nfcpy", ("pn533_usb", "pn533")),
    (0x04CC, 0x2533): ReaderModel("NXP PN533 board", "nfcpy", ("pn533_usb", "pn533")),
}

RCS300_IDS = frozenset({(SONY, 0x0DC8), (SONY, 0x0DC9)})

NFCPY_IDS: tuple[tuple[int, int], ...] = tuple(ids for ids, m in DEVICE_MAP.items() if m.nfcpy_opens)
"""Every reader nfcpy may open, in DEVICE_MAP order: the udev rules (fixes.udev_rules) and the shipped
systemd/99-kiosk-readers.rules list exactly these."""


class UsbReader(msgspec.Struct, frozen=True):
    vendor: int
    product: int
    busnum: int
    devnum: int
    model: ReaderModel

    @property
    def usb_id(self) -> str:
        return f"{self.vendor:04x}:{self.product:04x}"

    def devnode(self, dev_root: Path = Path("/dev")) -> Path:
        return dev_root / "bus" / "usb" / f"{self.busnum:03d}" / f"{self.devnum:03d}"

    @property
    def nfcpy_path(self) -> str:
        return f"usb:{self.vendor:04x}:{self.product:04x}"


def _read_hex(p: Path) -> int | None:
    try:
        return int(p.read_text().strip(), 16)
    except (OSError, ValueError):
        return None


def _read_int(p: Path) -> int | None:
    try:
        return int(p.read_text().strip())
    except (OSError, ValueError):
        return None


SYSFS_USB_DEVICES = Path("/sys/bus/usb/devices")
"""Where the kernel lists USB devices: ``scan_usb``'s default (tests point it at a tree of their own)."""


def scan_usb(sysfs_root: Path | None = None) -> list[UsbReader]:
    """Known readers plugged in now, from ``*/idVendor`` and ``*/idProduct`` under sysfs."""
    found: list[UsbReader] = []
    if sysfs_root is None:
        sysfs_root = SYSFS_USB_DEVICES
    try:
        entries = sorted(sysfs_root.iterdir())
    except OSError:
        return found
    for d in entries:
        vid, pid = _read_hex(d / "idVendor"), _read_hex(d / "idProduct")
        if vid is None or pid is None:
            continue  # interfaces (1-1:1.0) have no ids
        model = DEVICE_MAP.get((vid, pid))
        if model is None:
            continue
        found.append(UsbReader(vid, pid, _read_int(d / "busnum") or 0, _read_int(d / "devnum") or 0, model))
    return found

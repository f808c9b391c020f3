"""The exact fixes we print for reader faults, shared by the supervisor and ``kiosk doctor``.

Each returns text a staff member can paste into a shell.
"""

from __future__ import annotations

from collections.abc import Iterable

from kiosk.reader.devices import DEVICE_MAP, NFCPY_IDS

UDEV_RULES = "/etc/udev/rules.d/99-kiosk-readers.rules"
BLACKLIST_CONF = "/etc/modprobe.d/kiosk-readers-blacklist.conf"
BLACKLISTED_MODULES = ("port100", "pn533_usb", "pn533")
LIBCCID_PLIST = "/etc/libccid_Info.plist"


def udev_rule(vendor: int, product: int) -> str:
    return (
        f'SUBSYSTEM=="usb", ATTRS{{idVendor}}=="{vendor:04x}", ATTRS{{idProduct}}=="{product:04x}", '
        'GROUP="plugdev", MODE="0660"'
    )


def udev_rules(ids: Iterable[tuple[int, int]] = NFCPY_IDS) -> str:
    """One ``# name`` comment and rule per reader: by default every reader nfcpy may open (the ACR122U
    too, which PC/SC drives by default). The rule part of systemd/99-kiosk-readers.rules is exactly this."""
    return "\n".join(f"# {DEVICE_MAP[(v, p)].name}\n{udev_rule(v, p)}" for v, p in ids)


def udev_fix(vendor: int | None = None, product: int | None = None) -> str:
    """The fix for EACCES: the reader's own rule when its ids are known, else every rule of the shipped file
    (nfcpy on a partial path such as ``usb`` does not say which reader it was refused)."""
    if vendor is None or product is None:
        rules = udev_rules()
    else:
        rules = udev_rule(vendor, product)
    return (
        f"sudo tee -a {UDEV_RULES} <<'EOF'\n{rules}\nEOF\n"
        "sudo udevadm control --reload-rules && sudo udevadm trigger\n"
        "sudo usermod -aG plugdev kiosk   # then log in again / restart the service\n"
        f"(or install the shipped file: sudo cp systemd/99-kiosk-readers.rules {UDEV_RULES})"
    )


def blacklist_fix(modules: tuple[str, ...] = BLACKLISTED_MODULES) -> str:
    lines = "\\n".join(f"blacklist {m}" for m in BLACKLISTED_MODULES)
    return (
        f"printf '{lines}\\n' | sudo tee {BLACKLIST_CONF}\n"
        f"sudo modprobe -r {' '.join(modules)}   # or unplug and replug the reader"
    )


def pcscd_fix() -> str:
    return "sudo apt install pcscd libccid && sudo systemctl enable --now pcscd"


def pyscard_fix() -> str:
    return ("sudo apt install python3-pyscard   "
            "(or: sudo apt install swig libpcsclite-dev && pip install 'ic-donation-kiosk[pcsc]')")


def libccid_fix(path: str = LIBCCID_PLIST) -> str:
    return (
        f"sudo sed -i '/<key>ifdDriverOptions<\\/key>/{{n;s/0x0000/0x0001/}}' {path}\n"
        "sudo systemctl restart pcscd"
    )


def backend_fix(backend: str) -> str:
    """The fix for a reader the configured backend cannot drive (an RC-S300 under nfcpy, an RC-S380 under PC/SC);
    `kiosk doctor` then says what that backend still needs (for PC/SC: pcscd, pyscard, libccid)."""
    return f'set backend = "{backend}" in the [reader] section of the config, then run `kiosk doctor`'


def busy_fix(backend: str) -> str:
    if backend == "nfcpy":
        return blacklist_fix() + ("\nan ACR122U is also claimed by pcscd; for nfcpy stop it: "
                                  "sudo systemctl disable --now pcscd.socket pcscd")
    return blacklist_fix() + "\nand stop any other program using the reader (another kiosk process, nfcpy)"

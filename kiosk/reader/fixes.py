"""The exact fixes we print for reader faults, shared by the supervisor and ``kiosk doctor``.

Each returns text a staff member can paste into a shell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

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


# --- `kiosk reader probe` found no reader: what to do, in words -------------------------------------------------
# English msgids, translated by the caller (kiosk/cli.py passes the screens' Japanese gettext: this package does not
# import the UI). Staff and installers run the probe at the kiosk; they are told what to plug in and what to type.

Translate = Callable[[str], str]

RULES_FILE = "99-kiosk-readers.rules"
SHIPPED_RULES_FILES = (
    Path(__file__).resolve().parents[2] / "systemd" / RULES_FILE,  # a checkout
    Path("/opt/kiosk/src/systemd") / RULES_FILE,  # where systemd/install.sh copies the application
)

PROBE_NOT_FOUND = "The card reader was not found."
PROBE_PLUG_IN = ("Plug the card reader's USB cable into the kiosk. If it is plugged in already, unplug it and plug it "
                 "in again.")
PROBE_LSUSB = ("Type this command and check that the card reader is in the list it prints (a line such as "
               "\"Sony Corp. RC-S380\"):")
PROBE_UDEV = ("If the reader is in the list but still not found, the kiosk may not use it yet. Install the rule file "
              "{file} with these commands, then unplug the reader and plug it in again:")
PROBE_DOCTOR = ("If the reader is in the list but still not found, check the kiosk's set-up with this command and do "
                "what it prints:")
PROBE_CANNOT_USE = ("The card reader cannot be used. Type the commands on the \"fix:\" lines above, in that order, "
                    "then run this check again.")
PROBE_AGAIN = "Then run this check again."


def shipped_rules_file() -> Path | None:
    """The shipped systemd/99-kiosk-readers.rules on this machine (a checkout, or /opt/kiosk/src), if there is one."""
    return next((p for p in SHIPPED_RULES_FILES if p.is_file()), None)


def install_rules_fix() -> str:
    """The commands that install the shipped udev rules (every reader nfcpy may open): a copy of the shipped file, or
    without it at hand the same rules written with tee (:func:`udev_fix`)."""
    shipped = shipped_rules_file()
    if shipped is None:
        return udev_fix()
    return (
        f"sudo cp {shipped} {UDEV_RULES}\n"
        "sudo udevadm control --reload-rules && sudo udevadm trigger\n"
        "sudo usermod -aG plugdev kiosk   # then log in again / restart the service"
    )


def no_reader_report(fault: str | None, backend: str, tr: Translate | None = None,
                     config: str | None = None) -> str:
    """What ``kiosk reader probe`` prints when no reader ever connected: Japanese first when ``tr`` (the screens'
    gettext) is given, each line's English under it, then the commands to type.

    ``fault``: the last :class:`~kiosk.reader.events.ReaderDisconnected` fault (None: nothing was heard). A setup
    fault (no permission, busy, a missing service) had its fix printed with it: the report points there. Otherwise
    the reader was not found (``lost``, ENODEV): plug it in, check ``lsusb`` lists it, and, listed but still not
    found, the udev rule file for nfcpy (PC/SC readers are opened by pcscd, which needs none: ``kiosk doctor``).
    """
    def both(msgid: str, **figures: str) -> list[str]:
        english = msgid.format(**figures)
        said = tr(msgid).format(**figures) if tr is not None else english
        return [said] if said == english else [said, english]

    def step(n: int, msgid: str, commands: str = "", **figures: str) -> list[str]:
        first, *rest = both(msgid, **figures)
        lines = [f"  {n}. {first}", *(f"     {line}" for line in rest)]
        return lines + [f"       {c}" for c in commands.splitlines()]

    if fault is not None and fault != "lost":
        return "\n".join([*both(PROBE_CANNOT_USE), "kiosk reader probe: no reader connected"])
    lines = [*both(PROBE_NOT_FOUND)[:1], "kiosk reader probe: no reader connected"]
    if backend == "sim":
        return "\n".join(lines)
    lines += step(1, PROBE_PLUG_IN)
    lines += step(2, PROBE_LSUSB, "lsusb")
    if backend == "nfcpy":
        shipped = shipped_rules_file()
        lines += step(3, PROBE_UDEV, install_rules_fix(), file=str(shipped or f"systemd/{RULES_FILE}"))
    else:
        lines += step(3, PROBE_DOCTOR, f"kiosk doctor --config {config}" if config else "kiosk doctor --config FILE")
    lines += step(4, PROBE_AGAIN)
    return "\n".join(lines)

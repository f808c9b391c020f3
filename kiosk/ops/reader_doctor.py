"""``kiosk doctor``, reader part: is a reader plugged in, may we open it, is anything in the way?

Every path is a parameter so tests run against a fake sysfs/dev/proc tree.
Each failed check carries the exact fix (see :mod:`kiosk.reader.fixes`).
"""

from __future__ import annotations

import os
import plistlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kiosk.ops.checks import Check
from kiosk.reader.devices import DEVICE_MAP, RCS300_IDS, scan_usb
from kiosk.reader.fixes import BLACKLISTED_MODULES, blacklist_fix, libccid_fix, pcscd_fix, pyscard_fix, udev_fix

LIBCCID_PLISTS = (
    Path("/etc/libccid_Info.plist"),  # Debian/Raspberry Pi OS: the bundle's Info.plist links here
    Path("/usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist"),
    Path("/usr/local/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist"),
)
PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")


def _backend(cfg: Any) -> str | None:
    if cfg is None:
        return None
    reader = getattr(cfg, "reader", cfg)
    return getattr(reader, "backend", None)


def loaded_modules(proc_modules: Path) -> set[str]:
    try:
        return {line.split()[0] for line in proc_modules.read_text().splitlines() if line.strip()}
    except OSError:
        return set()


def _socket_answers(path: Path) -> bool:
    """Something listens on the Unix socket ``path`` (pcscd, or systemd's pcscd.socket that starts it).

    The file alone proves nothing: systemd leaves it behind when pcscd.socket is stopped (``RemoveOnStop=`` is
    off by default, and `busy_fix` tells staff to stop it), as does a pcscd that crashed; connecting to it then
    fails with ECONNREFUSED, as SCardEstablishContext would."""
    import errno
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(path))
        except OSError as exc:
            # Not allowed to connect (another user's socket): something is there; we cannot tell more.
            return exc.errno in (errno.EACCES, errno.EPERM)
    return True


def pcscd_running(proc_root: Path = Path("/proc"), socket_path: Path = PCSCD_SOCKET) -> bool:
    """pcscd's socket answers, or a process named pcscd runs (socket activation creates the socket)."""
    if socket_path.exists() and _socket_answers(socket_path):
        return True
    try:
        for d in proc_root.iterdir():
            if d.name.isdigit():
                try:
                    if (d / "comm").read_text().strip() == "pcscd":
                        return True
                except OSError:
                    continue
    except OSError:
        pass
    return False


def libccid_options(paths: Iterable[Path]) -> tuple[Path, int] | None:
    """(plist path, ifdDriverOptions) from the first libccid plist found."""
    for p in paths:
        try:
            raw = p.read_bytes()
        except OSError:
            continue
        value: Any = None
        try:
            value = plistlib.loads(raw).get("ifdDriverOptions")
        except Exception:
            m = re.search(rb"<key>\s*ifdDriverOptions\s*</key>\s*<string>\s*([^<]+?)\s*</string>", raw)
            value = m.group(1).decode() if m else None
        if value is None:
            continue
        try:
            return p, int(str(value), 0)
        except ValueError:
            continue
    return None


def _pyscard_importable() -> bool:
    try:
        import smartcard  # noqa: F401
    except ImportError:
        return False
    return True


def reader_checks(
    cfg: Any = None,
    *,
    sysfs_root: Path = Path("/sys/bus/usb/devices"),
    dev_root: Path = Path("/dev"),
    proc_modules: Path = Path("/proc/modules"),
    proc_root: Path = Path("/proc"),
    pcscd_socket: Path = PCSCD_SOCKET,
    libccid_plists: Iterable[Path] = LIBCCID_PLISTS,
    access: Callable[[Path], bool] | None = None,
    pyscard_available: Callable[[], bool] = _pyscard_importable,
) -> list[Check]:
    """Reader checks for ``kiosk doctor``. ``cfg`` is a KioskConfig, a ReaderConfig, or None."""
    can_open = access or (lambda p: os.access(p, os.R_OK | os.W_OK))
    backend = _backend(cfg)
    checks: list[Check] = []
    readers = scan_usb(sysfs_root)

    # 1. Is a known reader plugged in, and does it match the configured backend?
    if backend == "sim":
        detail = "simulated reader configured"
        detail += f"; also plugged in: {', '.join(r.model.name for r in readers)}" if readers else ""
        checks.append(Check("reader.usb", "ok", detail))
    elif not readers:
        names = ", ".join(sorted({m.name for m in DEVICE_MAP.values()}))
        checks.append(Check("reader.usb", "fail", "no supported card reader on USB",
                            f"plug in a supported reader ({names}); check `lsusb`"))
    else:
        wrong = [r for r in readers
                 if backend and r.model.backend != backend and not (backend == "nfcpy" and r.model.nfcpy_opens)]
        listing = ", ".join(f"{r.model.name} ({r.usb_id}) on bus {r.busnum:03d} dev {r.devnum:03d}" for r in readers)
        if wrong and len(wrong) == len(readers):
            want = wrong[0].model.backend
            why = (f"backend {backend!r} cannot drive it: it is {'a PC/SC' if want == 'pcsc' else 'an nfcpy'} reader"
                   if len(wrong) == 1 else f"[reader] backend {backend!r} drives none of them")
            checks.append(Check("reader.usb", "fail", f"found {listing}, but {why}",
                                f'set backend = "{want}" in the [reader] section of the config'
                                + (" (the checks below say what PC/SC needs)" if want == "pcsc" else "")))
        else:
            checks.append(Check("reader.usb", "ok", f"found {listing}"))

    use = backend if backend in ("nfcpy", "pcsc") else None
    nfcpy_readers = [r for r in readers if r.model.nfcpy_opens]

    # 2. udev permissions: nfcpy opens /dev/bus/usb/BBB/DDD itself (pcscd runs as root).
    if backend in (None, "nfcpy"):
        for r in nfcpy_readers:
            node = r.devnode(dev_root)
            if not node.exists():
                checks.append(Check("reader.udev", "warn", f"{node} does not exist (is /dev/bus/usb mounted?)",
                                    "replug the reader; check `ls -l /dev/bus/usb/*/*`"))
            elif can_open(node):
                checks.append(Check("reader.udev", "ok", f"{node} is readable and writable"))
            else:
                checks.append(Check("reader.udev", "fail", f"no read/write permission on {node} ({r.model.name})",
                                    udev_fix(r.vendor, r.product)))

    # 3. Kernel NFC drivers grab the readers away from libusb and pcscd.
    if backend != "sim":
        held = sorted(loaded_modules(proc_modules) & set(BLACKLISTED_MODULES))
        if held:
            checks.append(Check("reader.kernel", "fail",
                                f"kernel NFC module(s) loaded: {', '.join(held)} (they claim the reader: EBUSY)",
                                blacklist_fix(tuple(held))))
        else:
            checks.append(Check("reader.kernel", "ok", "port100/pn533 kernel drivers are not loaded"))

    # 4-6. PC/SC: pcscd, pyscard, and libccid's escape option for the RC-S300. Also for a PC/SC reader plugged
    # in while the config names nfcpy (which cannot drive it): the reader.usb fix says to switch to pcsc, and
    # what PC/SC needs is said now, every problem at once, not on the run of `kiosk doctor` after the switch.
    rcs300 = [r for r in readers if (r.vendor, r.product) in RCS300_IDS]
    pcsc_only = [r for r in readers if r.model.backend == "pcsc" and not (use == "nfcpy" and r.model.nfcpy_opens)]
    if use == "pcsc" or (backend != "sim" and pcsc_only):
        if pcscd_running(proc_root, pcscd_socket):
            checks.append(Check("reader.pcscd", "ok", "pcscd is running"))
        else:
            checks.append(Check("reader.pcscd", "fail",
                                "pcscd is not running (SCardEstablishContext would fail: 0x8010001D)", pcscd_fix()))
        if pyscard_available():
            checks.append(Check("reader.pyscard", "ok", "pyscard is importable"))
        else:
            checks.append(Check("reader.pyscard", "fail", "pyscard is not installed (optional extra 'pcsc')",
                                pyscard_fix()))
    if rcs300 and backend != "sim":
        found = libccid_options(libccid_plists)
        if found is None:
            checks.append(Check("reader.libccid", "fail", "libccid_Info.plist not found (is libccid installed?)",
                                "sudo apt install libccid\n" + libccid_fix()))
        else:
            path, opts = found
            if opts & 0x0001:
                checks.append(Check("reader.libccid", "ok",
                                    f"{path}: ifdDriverOptions 0x{opts:04X} allows the RC-S300 escape"))
            else:
                checks.append(Check("reader.libccid", "fail",
                                    f"{path}: ifdDriverOptions 0x{opts:04X} refuses the CCID escape the RC-S300 needs",
                                    libccid_fix(str(path))))
    return checks

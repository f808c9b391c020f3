"""nfcpy backend: Sony RC-S380/S370 and the other readers nfcpy drives.

Polls with ``ContactlessFrontend.sense`` in a loop (one 212F target whose
SENSF_REQ asks for system 0x0003 with request code 1) rather than
``connect``, which almost never fires for a phone in Express mode. Reads go
through nfcpy's own Type3Tag code.

nfcpy logs whole frames at DEBUG, IDm included, so this module drops DEBUG
records from every ``nfc.*`` logger: the IDm must never reach a log.
"""

from __future__ import annotations

import errno
import logging
import struct
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, TypeAlias

import nfc
import nfc.clf
import nfc.clf.device
import nfc.clf.transport
import nfc.tag
import nfc.tag.tt3
import nfc.tag.tt3_sony  # imported now (nfcpy imports it lazily) so its logger gets the filter

from kiosk.reader import felica
from kiosk.reader.base import CardReader, Clock, ReaderFault, Tokenizer
from kiosk.reader.devices import scan_usb
from kiosk.reader.events import EventQueue
from kiosk.reader.fixes import backend_fix
from kiosk.reader.session import CardLost, CardSession

if TYPE_CHECKING:
    from kiosk.config.reader import ReaderConfig

log = logging.getLogger(__name__)


class _DropDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_DROP_DEBUG = _DropDebug()


def quiet_nfcpy_logs() -> None:
    """Attach the DEBUG-dropping filter to every nfcpy logger that exists (idempotent)."""
    for name in list(logging.root.manager.loggerDict):
        if name == "nfc" or name.startswith("nfc."):
            lg = logging.getLogger(name)
            if _DROP_DEBUG not in lg.filters:
                lg.addFilter(_DROP_DEBUG)


quiet_nfcpy_logs()

Frontend: TypeAlias = nfc.clf.ContactlessFrontend
Opener = Callable[[str], Frontend]


def open_frontend(path: str) -> Frontend:
    """Open a reader on ``path`` the way nfcpy does, but keep the real errno.

    For a partial path such as ``usb``, nfcpy skips a reader it may not open
    and just returns False. We then reopen each supported reader it can see by
    bus/device number, which makes nfcpy raise the real EACCES or EBUSY.

    When nfcpy finds no reader at all but a reader only PC/SC drives is plugged in (an RC-S300 with
    ``backend = "nfcpy"``), that is a setup fault with its fix, not a lost reader retried quietly.
    """
    clf = nfc.clf.ContactlessFrontend()
    if clf.open(path):
        quiet_nfcpy_logs()
        return clf
    if path.startswith("usb") and path.count(":") < 2:
        for vid, pid, bus, dev in nfc.clf.transport.USB.find(path) or []:
            if (vid, pid) in nfc.clf.device.usb_device_map:
                if clf.open(f"usb:{int(bus):03d}:{int(dev):03d}"):
                    quiet_nfcpy_logs()
                    return clf
    plugged = scan_usb()
    if plugged and not any(r.model.nfcpy_opens for r in plugged):
        raise ReaderFault("setup", f"{plugged[0].model.name} is plugged in but nfcpy cannot drive it: "
                                   "it is a PC/SC reader", backend_fix("pcsc"))
    raise OSError(errno.ENODEV, f"no nfcpy-supported reader found on {path}")


def _service(code: int) -> nfc.tag.tt3.ServiceCode:
    return nfc.tag.tt3.ServiceCode(code >> 6, code & 0x3F)


# What nfcpy 1.0.4 raises, besides TagCommandError, when it parses a frame that is too short: its
# send_cmd_recv_rsp reads rsp[10] of a Read Without Encryption answer with no status flags (IndexError)
# and unpacks SF1 SF2 from rsp[10:12] when SF2 is missing (struct.error); Type3Tag() unpacks the system code
# of a poll answer cut inside it (struct.error), tt3_sony.activate reads the PMm's IC code (IndexError).
NFCPY_PARSE_ERRORS: tuple[type[Exception], ...] = (IndexError, struct.error)


def _parse_error(exc: Exception) -> felica.FrameError:
    # Only the type: an nfcpy message may one day quote the frame, and the frame holds the IDm.
    return felica.FrameError(f"short answer ({type(exc).__name__} in nfcpy)")


def _translate(exc: nfc.tag.TagCommandError) -> Exception:
    code = exc.errno
    if code > 0xFF:
        return felica.StatusError(code >> 8, code & 0xFF)
    if code in (nfc.tag.TIMEOUT_ERROR, nfc.tag.RECEIVE_ERROR, nfc.tag.PROTOCOL_ERROR):
        return CardLost()
    return felica.FrameError(f"nfcpy reports {nfc.tag.tt3.Type3TagCommandError.errno_str.get(code, code)}")


class Type3Session:
    """A card as nfcpy's Type3Tag sees it."""

    __slots__ = ("idm", "pmm", "system_code", "_tag")

    def __init__(self, tag: nfc.tag.tt3.Type3Tag, system_code: int):
        self._tag = tag
        self.idm = bytes(tag.idm)
        self.pmm = bytes(tag.pmm)
        self.system_code = tag.sys if tag.sys != 0xFFFF else system_code

    def __repr__(self) -> str:
        return f"Type3Session(system={self.system_code:04X}, idm=<hidden>)"

    def read_blocks(self, services: Sequence[int], blocks: Sequence[tuple[int, int]]) -> list[bytes]:
        sl = [_service(sc) for sc in services]
        bl = [nfc.tag.tt3.BlockCode(num, service=idx) for idx, num in blocks]
        try:
            data = bytes(self._tag.read_without_encryption(sl, bl))
        except nfc.tag.TagCommandError as exc:
            raise _translate(exc) from None
        except NFCPY_PARSE_ERRORS as exc:
            raise _parse_error(exc) from None
        return [data[16 * i : 16 * (i + 1)] for i in range(len(blocks))]

    def request_service(self, nodes: Sequence[int]) -> list[int]:
        try:
            if hasattr(self._tag, "request_service"):  # FeliCa Standard / Mobile
                return list(self._tag.request_service([_service(n) for n in nodes]))
            # A plain Type3Tag (unknown IC code): same command through nfcpy's framing.
            data = bytes([len(nodes)]) + b"".join(struct.pack("<H", n) for n in nodes)
            timeout = felica.max_response_time(self.pmm, "request_service", len(nodes))
            raw = self._tag.send_cmd_recv_rsp(felica.REQUEST_SERVICE, data, timeout, check_status=False)
        except nfc.tag.TagCommandError as exc:
            raise _translate(exc) from None
        except NFCPY_PARSE_ERRORS as exc:
            raise _parse_error(exc) from None
        return felica.parse_request_service_payload(bytes(raw), len(nodes))


class NfcpyReader(CardReader):
    backend: ClassVar[str] = "nfcpy"

    def __init__(
        self,
        config: ReaderConfig,
        tokenizer: Tokenizer,
        *,
        opener: Opener = open_frontend,
        clock: Clock = time.monotonic,
        events: EventQueue | None = None,
    ):
        super().__init__(config, tokenizer, clock=clock, events=events)
        self.path = config.device
        self._opener = opener
        self.clf: Frontend | None = None
        self._targets: dict[int, nfc.clf.RemoteTarget] = {}

    def open(self) -> str:
        self.close()
        clf = self._opener(self.path)
        self.clf = clf
        dev = clf.device
        return f"{dev}" if dev is not None else "nfcpy reader"

    def close(self) -> None:
        clf, self.clf = self.clf, None
        if clf is not None:
            try:
                clf.close()
            except Exception:  # closing a vanished device may fail in many ways
                pass

    def usb_id(self) -> tuple[int, int] | None:
        parts = self.path.split(":")
        if len(parts) == 3 and all(len(p) == 4 for p in parts[1:]):
            try:
                return int(parts[1], 16), int(parts[2], 16)
            except ValueError:
                return None
        return None

    def _target(self, system_code: int) -> nfc.clf.RemoteTarget:
        t = self._targets.get(system_code)
        if t is None:
            # felica.sensf_req refuses wildcards; request code 1 asks for the system code.
            t = nfc.clf.RemoteTarget("212F", sensf_req=bytearray(felica.sensf_req(system_code)))
            self._targets[system_code] = t
        return t

    def sense(self, system_code: int) -> CardSession | None:
        clf = self.clf
        if clf is None:
            raise OSError(errno.ENODEV, "reader is not open")
        try:
            target = clf.sense(self._target(system_code))
        except nfc.clf.UnsupportedTargetError:
            raise ReaderFault("setup", "this reader cannot poll FeliCa (212F)",
                              "use a Sony RC-S380 or another FeliCa reader") from None
        if target is None:
            return None
        try:
            tag = nfc.tag.activate(clf, target)
        except NFCPY_PARSE_ERRORS as exc:  # a poll answer cut short: poll() takes it as no answer
            raise _parse_error(exc) from None
        if not isinstance(tag, nfc.tag.tt3.Type3Tag):
            return None
        return Type3Session(tag, system_code)

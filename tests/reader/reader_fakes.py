"""Fakes at the lowest I/O seams: a clock, an nfcpy Device, pyscard connections.

Cards behind the fakes are either literal frame tables or kiosk.reader.sim.SimCard
(which answers FeliCa frames the way a card does on air).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import nfc.clf
import nfc.clf.device

from kiosk.reader import pcsc_backend as pb


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, s: float) -> None:
        self.now += s

    sleep = advance


Responder = Callable[[bytes], "bytes | None"]


class FrameTable:
    """Replays recorded frames: exact command bytes -> response bytes."""

    def __init__(self, table: dict[str, str]):
        self.table = {bytes.fromhex(k.replace(" ", "")): bytes.fromhex(v.replace(" ", "")) for k, v in table.items()}
        self.unknown: list[bytes] = []

    def __call__(self, frame: bytes) -> bytes | None:
        rsp = self.table.get(bytes(frame))
        if rsp is None:
            self.unknown.append(bytes(frame))
        return rsp


class FakeNfcDevice(nfc.clf.device.Device):
    """An nfcpy driver at the lowest seam: sense_ttf / send_cmd_recv_rsp answer from a card responder.

    ``card`` answers frames (len byte included) or returns None for silence.
    ``unplugged`` makes every call raise IOError(ENODEV), as libusb does.
    """

    def __init__(self, card: Responder | None = None):  # no super().__init__: it raises by design
        self.card = card
        self.unplugged = False
        self.sensf_reqs: list[bytes] = []
        self.commands: list[bytes] = []
        self.mutes = 0
        self._path = "usb:001:004"
        self._vendor_name = "SONY"
        self._device_name = "RC-S380/P"
        self._chipset_name = "fake"

    def _check(self) -> None:
        if self.unplugged:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))

    def close(self) -> None:
        pass

    def mute(self) -> None:
        self._check()
        self.mutes += 1

    def sense_tta(self, target):  # pragma: no cover - we only poll F
        raise nfc.clf.UnsupportedTargetError("fake")

    sense_ttb = sense_tta
    sense_dep = sense_tta

    def sense_ttf(self, target):
        self._check()
        req = bytes(target.sensf_req)
        self.sensf_reqs.append(req)
        if self.card is None:
            return None
        frame = self.card(bytes([len(req) + 1]) + req)
        if frame is None:
            return None
        # Like nfc.clf.rcs380: the target carries the SENSF_RES without its length byte.
        return nfc.clf.RemoteTarget(target.brty, sensf_res=bytearray(frame[1:]))

    def get_max_send_data_size(self, target):
        return 290

    def get_max_recv_data_size(self, target):
        return 290

    def send_cmd_recv_rsp(self, target, data, timeout):
        self._check()
        self.commands.append(bytes(data))
        rsp = self.card(bytes(data)) if self.card is not None else None
        if rsp is None:
            raise nfc.clf.TimeoutError("no answer")
        return bytearray(rsp)


def frontend_with(device: FakeNfcDevice) -> nfc.clf.ContactlessFrontend:
    clf = nfc.clf.ContactlessFrontend()
    clf.device = device
    return clf


# --- pyscard seam ----------------------------------------------------------------

class PcscError(Exception):
    """Shaped like pyscard's exceptions: an ``hresult``."""

    def __init__(self, hresult: int):
        self.hresult = hresult
        super().__init__(f"hresult 0x{hresult:08X}")


ESCAPE_CODE = 0x42000001


@dataclass
class FakeRcs300Connection:
    """Answers like pcscd + libccid + RC-S300: feature list, escape APDUs, transparent session."""

    card: Responder | None = None
    escape_allowed: bool = True
    gone: bool = False
    mode: int | None = None
    apdus: list[list[int]] = field(default_factory=list)
    session: bool = False
    felica: bool = False
    timers_us: list[int] = field(default_factory=list)

    def connect(self, protocol=None, mode=None, disposition=None):
        self.mode = mode

    def disconnect(self):
        pass

    def transmit(self, command, protocol=None):  # pragma: no cover - the RC-S300 path uses control()
        raise AssertionError("RC-S300 in direct mode takes escape commands, not transmit")

    def control(self, code, command=()):
        if self.gone:
            raise PcscError(0x80100017)  # SCARD_E_READER_UNAVAILABLE
        if code == pb.CM_IOCTL_GET_FEATURE_REQUEST:
            feats = [0x12, 4, 0x42, 0x33, 0x00, 0x12]  # FEATURE_IFD_PIN_PROPERTIES-ish filler
            if self.escape_allowed:
                feats += [0x13, 4, *ESCAPE_CODE.to_bytes(4, "big")]
            return feats
        if code != ESCAPE_CODE:
            raise PcscError(0x80100001)
        if not self.escape_allowed:
            raise PcscError(0x80100016)  # SCARD_E_NOT_TRANSACTED
        apdu = list(command)
        self.apdus.append(apdu)
        ok = [0xC0, 0x03, 0x00, 0x90, 0x00, 0x90, 0x00]
        if apdu == pb.RCS300_START_SESSION:
            self.session = True
            return ok
        if apdu == pb.RCS300_END_SESSION:
            self.session = False
            return ok
        if apdu == pb.RCS300_SWITCH_FELICA:
            assert self.session
            self.felica = True
            return ok
        assert apdu[:4] == [0xFF, 0xC2, 0x00, 0x01] and apdu[4] == len(apdu) - 5, "communicate-thru header"
        assert self.session and self.felica
        data = bytes(apdu[5:])
        assert data[:3] == b"\x5f\x46\x04"
        self.timers_us.append(int.from_bytes(data[3:7], "little"))
        assert data[7] == 0x95 and data[8] == len(data) - 9
        frame = data[9:]
        rsp = self.card(frame) if self.card else None
        if rsp is None:
            return [0xC0, 0x03, 0x01, 0x64, 0x01, 0x90, 0x00]  # timeout: no card answer
        return [0xC0, 0x03, 0x00, 0x90, 0x00, 0x92, 0x01, 0x00, 0x96, 0x02, 0x00, 0x00, 0x97, len(rsp), *rsp,
                0x90, 0x00]


@dataclass
class FakeAcsConnection:
    """ACR1252U (direct transmit) or ACR122U (D4 42 InCommunicateThru) with a card on it."""

    card: Responder | None
    uid: bytes
    acr122: bool = False
    apdus: list[list[int]] = field(default_factory=list)
    connected: bool = False

    def connect(self, protocol=None, mode=None, disposition=None):
        if self.card is None:
            raise PcscError(0x8010000C)  # SCARD_E_NO_SMARTCARD
        self.connected = True

    def disconnect(self):
        self.connected = False

    def control(self, code, command=()):  # pragma: no cover
        raise AssertionError("ACS readers take transmit()")

    def transmit(self, command, protocol=None):
        apdu = list(command)
        self.apdus.append(apdu)
        assert self.connected
        if apdu == pb.GET_DATA_UID:
            return list(self.uid), 0x90, 0x00
        assert apdu[:4] == [0xFF, 0x00, 0x00, 0x00] and apdu[4] == len(apdu) - 5
        body = bytes(apdu[5:])
        if self.acr122:
            assert body[:2] == b"\xd4\x42"
            rsp = self.card(body[2:]) if self.card else None
            return ([0xD5, 0x43, 0x01] if rsp is None else [0xD5, 0x43, 0x00, *rsp]), 0x90, 0x00
        rsp = self.card(body) if self.card else None
        return ([], 0x63, 0x00) if rsp is None else (list(rsp), 0x90, 0x00)


class FakePcscReader:
    """What smartcard.System.readers() returns: str() is the name, createConnection() a connection."""

    def __init__(self, name: str, connection_factory: Callable[[], object]):
        self.name = name
        self.factory = connection_factory

    def __str__(self) -> str:
        return self.name

    def createConnection(self):
        return self.factory()


class FakePresence:
    def __init__(self) -> None:
        self.readers: set[str] = set()
        self.closed = False

    def present(self, name: str) -> bool:
        return name in self.readers

    def close(self) -> None:
        self.closed = True

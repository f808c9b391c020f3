"""PC/SC backend (pyscard, optional extra ``pcsc``): Sony RC-S300 and ACS ACR1252U/ACR122U.

pyscard is imported lazily, so the rest of the kiosk runs without it. All the
APDU logic talks to a connection object with pyscard's ``CardConnection``
interface — ``transmit(apdu) -> (data, sw1, sw2)`` and
``control(code, bytes) -> bytes`` — so tests use a fake that answers byte for
byte as those readers do.

* RC-S300: direct connection, CCID escape through the ``FEATURE_CCID_ESC_COMMAND``
  ioctl, transparent session (start, switch to FeliCa, communicate-thru with the
  card's reply in TLV tag 0x97, end). libccid allows the escape only with
  ``ifdDriverOptions`` 0x0001. We poll ourselves, with system code 0x0003.
* ACR1252U: direct transmit ``FF 00 00 00 Lc <frame>``.
* ACR122U: ``FF 00 00 00 Lc D4 42 <frame>`` (PN533 InCommunicateThru).
  Card presence for the ACS readers comes from pyscard's ``CardMonitor``; the
  IDm from GET DATA (``FF CA 00 00 00``) tells a FeliCa card (8 bytes) from others.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from kiosk.reader import felica
from kiosk.reader.base import CardReader, Clock, ReaderFault, Tokenizer, UnsupportedCard
from kiosk.reader.devices import scan_usb
from kiosk.reader.events import EventQueue
from kiosk.reader.fixes import backend_fix, libccid_fix, pcscd_fix, pyscard_fix
from kiosk.reader.session import CardLost, CardSession, FrameSession

if TYPE_CHECKING:
    from kiosk.config.reader import ReaderConfig

SCARD_SHARE_SHARED = 2
SCARD_SHARE_DIRECT = 3
SCARD_PROTOCOL_UNDEFINED = 0
SCARD_E_NO_SERVICE = 0x8010001D
# Errors that mean the reader (not the card) is gone.
READER_GONE = {0x80100017, 0x80100009, 0x8010001D, 0x8010002E, 0x80100003, 0x80100001}


def scard_ctl_code(code: int) -> int:
    """pcsc-lite's SCARD_CTL_CODE (Linux/macOS)."""
    return 0x42000000 + code


CM_IOCTL_GET_FEATURE_REQUEST = scard_ctl_code(3400)
FEATURE_CCID_ESC_COMMAND = 0x13

GET_DATA_UID = [0xFF, 0xCA, 0x00, 0x00, 0x00]
RCS300_START_SESSION = [0xFF, 0xC2, 0x00, 0x00, 0x02, 0x81, 0x00, 0x00]
RCS300_END_SESSION = [0xFF, 0xC2, 0x00, 0x00, 0x02, 0x82, 0x00, 0x00]
RCS300_SWITCH_FELICA = [0xFF, 0xC2, 0x00, 0x02, 0x04, 0x8F, 0x02, 0x03, 0x00, 0x00]
POLL_TIMEOUT_S = 0.02


class Connection(Protocol):
    """The part of pyscard's CardConnection we use."""

    def connect(self, protocol: Any = None, mode: Any = None, disposition: Any = None) -> None: ...
    def disconnect(self) -> None: ...
    def transmit(self, command: list[int], protocol: Any = None) -> tuple[list[int], int, int]: ...
    def control(self, controlCode: int, command: list[int] = ...) -> list[int]: ...


def _hresult(exc: BaseException) -> int | None:
    h = getattr(exc, "hresult", None)
    return h & 0xFFFFFFFF if isinstance(h, int) else None


def _io(fn: Callable[[], Any]) -> Any:
    """Run a pyscard call; reader gone -> OSError(ENODEV), anything else -> the card is lost."""
    try:
        return fn()
    except (OSError, CardLost, felica.FelicaError):
        raise
    except Exception as exc:
        if _hresult(exc) in READER_GONE:
            raise OSError(errno.ENODEV, f"PC/SC reader gone (0x{_hresult(exc):08X})") from None
        raise CardLost() from None


# --- the three readers' ways of passing a FeliCa frame --------------------------

class Acr1252Transport:
    """ACR1252U (and similar): direct transmit pseudo-APDU, response is the card's frame."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def exchange(self, frame: bytes, timeout: float) -> bytes:
        data, sw1, sw2 = _io(lambda: self.conn.transmit([0xFF, 0x00, 0x00, 0x00, len(frame), *frame]))
        if (sw1, sw2) != (0x90, 0x00) or not data:
            raise CardLost()  # 63 00: the card did not answer in time
        return bytes(data)


class Acr122Transport:
    """ACR122U: PN533 InCommunicateThru (D4 42) wrapped in a direct transmit."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def exchange(self, frame: bytes, timeout: float) -> bytes:
        body = [0xD4, 0x42, *frame]
        data, sw1, sw2 = _io(lambda: self.conn.transmit([0xFF, 0x00, 0x00, 0x00, len(body), *body]))
        if (sw1, sw2) != (0x90, 0x00) or len(data) < 3 or data[0:2] != [0xD5, 0x43]:
            raise CardLost()
        if data[2] & 0x3F:  # PN533 status: 01 timeout, others RF errors
            raise CardLost()
        return bytes(data[3:])


def _parse_tlv(data: bytes) -> list[tuple[int, bytes]]:
    """BER-TLV as used by the PC/SC transparent-session responses."""
    out = []
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:  # two-byte tag such as 5F46
            if i >= len(data):
                raise felica.FrameError("truncated TLV tag")
            tag = tag << 8 | data[i]
            i += 1
        if i >= len(data):
            raise felica.FrameError("truncated TLV length")
        ln = data[i]
        i += 1
        if ln == 0x81 or ln == 0x82:
            n = ln - 0x80
            if i + n > len(data):
                raise felica.FrameError("truncated TLV length")
            ln = int.from_bytes(data[i : i + n], "big")
            i += n
        elif ln > 0x80:
            raise felica.FrameError("unsupported TLV length form")
        if i + ln > len(data):
            raise felica.FrameError("TLV value runs past the end")
        out.append((tag, data[i : i + ln]))
        i += ln
    return out


def _tlv_len(n: int) -> list[int]:
    return [n] if n < 0x80 else [0x81, n] if n < 0x100 else [0x82, n >> 8, n & 0xFF]


class Rcs300Transport:
    """Sony RC-S300 through pcscd's CCID escape: transparent session, FeliCa communicate-thru."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.escape_code: int | None = None

    def find_escape(self) -> int:
        raw = bytes(_io(lambda: self.conn.control(CM_IOCTL_GET_FEATURE_REQUEST, [])))
        # Each feature is tag(1) len(1)=4 value(4, big-endian ioctl code).
        for i in range(0, len(raw) - 5, 6):
            if raw[i] == FEATURE_CCID_ESC_COMMAND and raw[i + 1] == 4:
                return int.from_bytes(raw[i + 2 : i + 6], "big")
        raise ReaderFault(
            "setup", "the RC-S300 offers no CCID escape command: libccid refuses it (ifdDriverOptions)", libccid_fix()
        )

    def _escape(self, apdu: list[int]) -> bytes:
        code = self.escape_code
        assert code is not None
        rsp = bytes(_io(lambda: self.conn.control(code, apdu)))
        if len(rsp) < 2:
            raise felica.FrameError("escape response without status word")
        if rsp[-2:] != b"\x90\x00":
            raise felica.FrameError(f"escape command refused with SW {rsp[-2]:02X} {rsp[-1]:02X}")
        return rsp[:-2]

    def start(self) -> None:
        self.escape_code = self.find_escape()
        try:
            self._escape(RCS300_START_SESSION)
            self._escape(RCS300_SWITCH_FELICA)
        except (felica.FrameError, CardLost) as exc:
            # libccid answers an unauthorised escape with a communication error.
            why = str(exc) or "escape command failed"
            raise ReaderFault("setup", f"RC-S300 transparent session refused ({why})", libccid_fix()) from None

    def end(self) -> None:
        if self.escape_code is not None:
            try:
                self._escape(RCS300_END_SESSION)
            except Exception:
                pass

    def exchange(self, frame: bytes, timeout: float) -> bytes:
        # 5F46: timer in microseconds (the card's PMm promise); 95: the frame to send.
        timer = [0x5F, 0x46, 0x04, *int(timeout * 1e6).to_bytes(4, "little")]
        data = timer + [0x95, *_tlv_len(len(frame)), *frame]
        body = self._escape([0xFF, 0xC2, 0x00, 0x01, len(data), *data])
        for tag, value in _parse_tlv(body):
            if tag == 0x97:
                if not value:
                    raise CardLost()
                return bytes(value)
        raise CardLost()  # status only (C0 ...): no answer from a card


# --- card presence for the ACS readers --------------------------------------------

class CardPresence:
    """pyscard's CardMonitor (a thread on SCardGetStatusChange) -> which readers hold a card."""

    def __init__(self) -> None:
        from smartcard.CardMonitoring import CardMonitor, CardObserver  # lazy: optional extra

        presence = self
        self._lock = threading.Lock()
        self._readers: dict[str, int] = {}

        class Observer(CardObserver):
            def update(self, observable: Any, handlers: Any) -> None:
                added, removed = handlers
                with presence._lock:
                    for card in added:
                        presence._readers[str(card.reader)] = presence._readers.get(str(card.reader), 0) + 1
                    for card in removed:
                        presence._readers[str(card.reader)] = max(0, presence._readers.get(str(card.reader), 0) - 1)

        self._monitor = CardMonitor()
        self._observer = Observer()
        self._monitor.addObserver(self._observer)

    def present(self, reader_name: str) -> bool:
        with self._lock:
            return self._readers.get(reader_name, 0) > 0

    def close(self) -> None:
        self._monitor.deleteObserver(self._observer)


def pyscard_readers() -> list[Any]:
    """``smartcard.System.readers()``, with its two setup failures turned into faults."""
    try:
        from smartcard.System import readers
    except ImportError:
        raise ReaderFault("missing", "pyscard is not installed (optional extra 'pcsc')", pyscard_fix()) from None
    try:
        return list(readers())
    except Exception as exc:
        if _hresult(exc) == SCARD_E_NO_SERVICE or type(exc).__name__ == "EstablishContextException":
            raise ReaderFault("no-service", "pcscd is not running (SCardEstablishContext: 0x8010001D)",
                              pcscd_fix()) from None
        raise


KNOWN_NAMES = ("RC-S300", "ACR1252", "ACR122")


def reader_kind(name: str) -> str:
    n = name.upper()
    if "RC-S300" in n:
        return "rcs300"
    if "ACR122" in n:
        return "acr122"
    return "acr1252"


class PcscReader(CardReader):
    backend: ClassVar[str] = "pcsc"

    def __init__(
        self,
        config: ReaderConfig,
        tokenizer: Tokenizer,
        *,
        list_readers: Callable[[], Sequence[Any]] = pyscard_readers,
        presence_factory: Callable[[], Any] = CardPresence,
        clock: Clock = time.monotonic,
        events: EventQueue | None = None,
    ):
        super().__init__(config, tokenizer, clock=clock, events=events)
        self.wanted = "" if config.device in ("", "usb") else config.device
        self._list_readers = list_readers
        self._presence_factory = presence_factory
        self.name = ""
        self.kind = ""
        self._reader: Any = None
        self._conn: Connection | None = None
        self._transport: Any = None
        self._presence: Any = None

    def open(self) -> str:
        self.close()
        names = self._list_readers()
        chosen = None
        for r in names:
            label = str(r)
            if (self.wanted and self.wanted.lower() in label.lower()) or (
                not self.wanted and any(k in label.upper() for k in KNOWN_NAMES)
            ):
                chosen = r
                break
        if chosen is None:
            plugged = scan_usb()
            if plugged and all(r.model.backend == "nfcpy" for r in plugged):  # an RC-S380 with backend = "pcsc"
                raise ReaderFault("setup", f"{plugged[0].model.name} is plugged in but PC/SC cannot drive it: "
                                           "it is an nfcpy reader", backend_fix("nfcpy"))
            want = repr(self.wanted) if self.wanted else "RC-S300, ACR1252U or ACR122U"
            raise OSError(errno.ENODEV, f"no PC/SC reader matching {want}")
        self._reader, self.name, self.kind = chosen, str(chosen), reader_kind(str(chosen))
        if self.kind == "rcs300":
            conn = chosen.createConnection()
            _io(lambda: conn.connect(SCARD_PROTOCOL_UNDEFINED, SCARD_SHARE_DIRECT))
            self._conn = conn
            transport = Rcs300Transport(conn)
            transport.start()
            self._transport = transport
        else:
            self._presence = self._presence_factory()
        return f"{self.name} (PC/SC, {self.kind})"

    def close(self) -> None:
        if isinstance(self._transport, Rcs300Transport):
            self._transport.end()
        self._transport = None
        self._drop_card_connection()
        if self._presence is not None:
            try:
                self._presence.close()
            except Exception:
                pass
            self._presence = None

    def _drop_card_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.disconnect()
            except Exception:
                pass

    def sense(self, system_code: int) -> CardSession | None:
        if self._reader is None:
            raise OSError(errno.ENODEV, "reader is not open")
        if self.kind != "rcs300":
            if not self._presence.present(self.name):
                self._drop_card_connection()
                self._transport = None
                return None
            if self._conn is None:
                conn = self._reader.createConnection()
                try:
                    _io(lambda: conn.connect(None, SCARD_SHARE_SHARED))
                except CardLost:
                    return None  # the card left between the event and the connect
                uid, sw1, sw2 = _io(lambda: conn.transmit(GET_DATA_UID))
                if (sw1, sw2) != (0x90, 0x00):
                    conn.disconnect()
                    return None
                if len(uid) != 8:
                    conn.disconnect()
                    raise UnsupportedCard(f"not a FeliCa card (UID of {len(uid)} bytes)")
                self._conn = conn
                self._transport = Acr122Transport(conn) if self.kind == "acr122" else Acr1252Transport(conn)
        transport = self._transport
        try:
            frame = transport.exchange(felica.polling_command(system_code), POLL_TIMEOUT_S)
        except CardLost:
            return None
        poll = felica.parse_polling_response(frame)
        return FrameSession(poll, transport.exchange, system_code)

"""FeliCa frames: building commands and parsing responses, as pure functions.

Frames here always include the leading length byte, exactly as they travel on
air (and as nfcpy's ``exchange`` and the PC/SC pass-through commands carry
them). Service and node codes are sent little-endian; system codes big-endian.
Source: JIS X 6319-4 / Sony "FeliCa card user's manual" command layouts, as
summarised in the project's field notes.

Nothing here logs, and no exception text ever contains an IDm: a parse error
names the field and the length, not the bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

POLLING = 0x00
REQUEST_SERVICE = 0x02
READ_WITHOUT_ENCRYPTION = 0x06

SYSTEM_TRANSIT = 0x0003
"""The transit-IC group (Suica, PASMO, ICOCA ...). Express-mode phones answer only this."""

REQUEST_SYSTEM_CODE = 0x01
"""Polling request code asking the card to append its system code."""

MAX_NODES_PER_REQUEST = 32
MAX_BLOCKS_PER_READ = 15
"""Protocol ceiling; real cards accept fewer (see :func:`max_blocks_for`)."""

T0_SECONDS = 256 * 16 / 13.56e6
"""The FeliCa time unit for PMm timeouts: 256*16/fc, about 302 us."""


class FelicaError(Exception):
    """Base for every error the frame code raises on card data."""


class FrameError(FelicaError, ValueError):
    """A response that is truncated, too long, or of the wrong type."""


class StatusError(FelicaError):
    """The card answered with status flags other than 00 00 (e.g. 01 A6)."""

    def __init__(self, sf1: int, sf2: int):
        self.sf1 = sf1
        self.sf2 = sf2
        super().__init__(f"card returned status {sf1:02X} {sf2:02X}: {describe_status(sf1, sf2)}")


_STATUS_TEXT = {
    0xA1: "illegal number of services",
    0xA2: "illegal command packet (number of blocks)",
    0xA3: "illegal block list (service order)",
    0xA4: "illegal service type",
    0xA5: "access is not allowed",
    0xA6: "illegal service code",
    0xA7: "illegal block list (access mode)",
    0xA8: "illegal block number",
    0xA9: "data write failure",
    0xB1: "authentication required",
}


def describe_status(sf1: int, sf2: int) -> str:
    return _STATUS_TEXT.get(sf2, "unknown error") if sf1 else "ok"


def is_wildcard(system_code: int) -> bool:
    """True for a system code with an 0xFF byte: such polls wake every system, phone wallets included."""
    return (system_code >> 8) & 0xFF == 0xFF or system_code & 0xFF == 0xFF


# --- Polling -------------------------------------------------------------------

def sensf_req(system_code: int, request_code: int = REQUEST_SYSTEM_CODE, time_slots: int = 0) -> bytes:
    """The Polling command body without the length byte (nfcpy's ``sensf_req``).

    Wildcard system codes are refused on purpose: a 0xFFFF poll brings up the
    wallet UI on a phone instead of answering in Express mode.
    """
    if not 0 <= system_code <= 0xFFFF:
        raise ValueError("system code is 16 bits")
    if is_wildcard(system_code):
        raise ValueError(f"refusing wildcard poll for system {system_code:04X}: it wakes phone wallets")
    if request_code not in (0, 1, 2):
        raise ValueError("request code must be 0, 1 or 2")
    if time_slots not in (0, 1, 3, 7, 15):
        raise ValueError("time slots must be 0, 1, 3, 7 or 15")
    return bytes([POLLING]) + struct.pack(">HBB", system_code, request_code, time_slots)


def polling_command(system_code: int, request_code: int = REQUEST_SYSTEM_CODE, time_slots: int = 0) -> bytes:
    body = sensf_req(system_code, request_code, time_slots)
    return bytes([len(body) + 1]) + body


@dataclass(frozen=True, repr=False)
class PollingResponse:
    """IDm, PMm and (with request code 1) the system code. ``repr`` hides the IDm."""

    idm: bytes
    pmm: bytes
    system_code: int | None

    def __repr__(self) -> str:
        sc = "-" if self.system_code is None else f"{self.system_code:04X}"
        return f"PollingResponse(idm=<hidden>, ic={self.pmm[1]:02X}, system={sc})"

    __str__ = __repr__


def parse_polling_response(frame: bytes) -> PollingResponse:
    """Parse ``len 01 IDm PMm [SC]`` (18 bytes, or 20 with the system code)."""
    frame = bytes(frame)
    _check_header(frame, POLLING + 1, (18, 20))
    sc = struct.unpack(">H", frame[18:20])[0] if len(frame) == 20 else None
    return PollingResponse(frame[2:10], frame[10:18], sc)


# --- Request Service -----------------------------------------------------------

def request_service_command(idm: bytes, node_codes: Sequence[int]) -> bytes:
    _check_idm(idm)
    if not 1 <= len(node_codes) <= MAX_NODES_PER_REQUEST:
        raise ValueError(f"request service takes 1..{MAX_NODES_PER_REQUEST} node codes")
    body = bytes([REQUEST_SERVICE]) + bytes(idm) + bytes([len(node_codes)])
    body += b"".join(struct.pack("<H", _u16(c)) for c in node_codes)
    return bytes([len(body) + 1]) + body


def parse_request_service_payload(payload: bytes, count: int) -> list[int]:
    """``n kv…`` (the part after the IDm) -> key versions; 0xFFFF means the node does not exist."""
    payload = bytes(payload)
    if len(payload) != 1 + 2 * count or payload[0] != count:
        raise FrameError(f"request service: expected {count} key versions, got {len(payload)} bytes")
    return [struct.unpack("<H", payload[i : i + 2])[0] for i in range(1, len(payload), 2)]


def parse_request_service_response(frame: bytes, idm: bytes, count: int) -> list[int]:
    frame = bytes(frame)
    _check_header(frame, REQUEST_SERVICE + 1, (11 + 2 * count,))
    _check_same_card(frame, idm)
    return parse_request_service_payload(frame[10:], count)


# --- Read Without Encryption ---------------------------------------------------

def block_list_element(service_index: int, block_number: int) -> bytes:
    """A 2-byte element (block < 256) or a 3-byte one, as the spec allows."""
    if not 0 <= service_index <= 15:
        raise ValueError("service index is 0..15")
    if not 0 <= block_number <= 0xFFFF:
        raise ValueError("block number is 16 bits")
    if block_number <= 0xFF:
        return bytes([0x80 | service_index, block_number])
    return bytes([service_index]) + struct.pack("<H", block_number)


def read_command(idm: bytes, service_codes: Sequence[int], blocks: Sequence[tuple[int, int]]) -> bytes:
    """Read Without Encryption; ``blocks`` are ``(service index, block number)`` pairs."""
    _check_idm(idm)
    if not 1 <= len(service_codes) <= 16:
        raise ValueError("read takes 1..16 service codes")
    if not 1 <= len(blocks) <= MAX_BLOCKS_PER_READ:
        raise ValueError(f"read takes 1..{MAX_BLOCKS_PER_READ} blocks")
    for sc in service_codes:
        if not _u16(sc) & 1:
            # Services with the low bit clear need issuer keys; we never ask for them.
            raise ValueError(f"service {sc:04X} needs a key; only keyless services can be read")
    for idx, _ in blocks:
        if idx >= len(service_codes):
            raise ValueError("block refers to a service index that is not in the service list")
    body = bytes([READ_WITHOUT_ENCRYPTION]) + bytes(idm) + bytes([len(service_codes)])
    body += b"".join(struct.pack("<H", sc) for sc in service_codes)
    body += bytes([len(blocks)]) + b"".join(block_list_element(i, n) for i, n in blocks)
    return bytes([len(body) + 1]) + body


def parse_read_payload(payload: bytes, count: int) -> list[bytes]:
    """``SF1 SF2 [n data]`` (the part after the IDm) -> ``count`` 16-byte blocks.

    Status flags are checked first: an error answer is only ``SF1 SF2``.
    """
    payload = bytes(payload)
    if len(payload) < 2:
        raise FrameError("read: response has no status flags")
    sf1, sf2 = payload[0], payload[1]
    if sf1 != 0 or sf2 != 0:
        raise StatusError(sf1, sf2)
    if len(payload) != 3 + 16 * count or payload[2] != count:
        raise FrameError(f"read: expected {count} blocks, got {len(payload) - 2} data bytes")
    return [payload[3 + 16 * i : 19 + 16 * i] for i in range(count)]


def parse_read_response(frame: bytes, idm: bytes, count: int) -> list[bytes]:
    frame = bytes(frame)
    # An error answer is 12 bytes (no block count); success is 13 + 16n.
    _check_header(frame, READ_WITHOUT_ENCRYPTION + 1, (12, 13 + 16 * count))
    _check_same_card(frame, idm)
    return parse_read_payload(frame[10:], count)


# --- PMm-derived timeouts ------------------------------------------------------

_PMM_BYTE = {"request_service": 2, "request_response": 3, "authenticate": 4, "read": 5, "write": 6, "other": 7}


def max_response_time(pmm: bytes, command: str, n: int = 1) -> float:
    """Worst-case card response time in seconds for ``n`` nodes/blocks.

    PMm bytes 2..7 each encode ``A`` (bits 0-2), ``B`` (bits 3-5) and ``E``
    (bits 6-7); the card promises to answer within T0 * ((B+1)*n + A+1) * 4^E.
    """
    if len(pmm) != 8:
        raise FrameError("PMm is 8 bytes")
    try:
        p = pmm[_PMM_BYTE[command]]
    except KeyError:
        raise ValueError(f"unknown command kind {command!r}") from None
    a, b, e = p & 7, (p >> 3) & 7, p >> 6
    return T0_SECONDS * ((b + 1) * n + a + 1) * 4**e


MOBILE_IC_CODES = frozenset(range(0x06, 0x08)) | frozenset(range(0x10, 0x20))
"""PMm byte 1 (IC type) values used by Mobile FeliCa (phones and watches)."""


def is_mobile(pmm: bytes) -> bool:
    return len(pmm) == 8 and pmm[1] in MOBILE_IC_CODES


# --- helpers -------------------------------------------------------------------

def _u16(v: int) -> int:
    if not 0 <= v <= 0xFFFF:
        raise ValueError("code is 16 bits")
    return v


def _check_idm(idm: bytes) -> None:
    if len(idm) != 8:
        raise ValueError("an IDm is 8 bytes")


def _check_header(frame: bytes, code: int, lengths: tuple[int, ...]) -> None:
    if len(frame) < 2:
        raise FrameError(f"response of {len(frame)} bytes is too short")
    if frame[0] != len(frame):
        raise FrameError(f"length byte says {frame[0]}, frame has {len(frame)} bytes")
    if frame[1] != code:
        raise FrameError(f"response code {frame[1]:02X}, expected {code:02X}")
    if len(frame) not in lengths:
        raise FrameError(f"response code {code:02X} with {len(frame)} bytes"
                         f" (expected {' or '.join(map(str, lengths))})")


def _check_same_card(frame: bytes, idm: bytes) -> None:
    if frame[2:10] != bytes(idm):
        raise FrameError("answer came from a different card")

"""A card on the reader, as the backends hand it over, and the errors of talking to it.

A backend's ``sense`` returns a :class:`CardSession`: the IDm/PMm from the
poll plus two operations (read blocks, request service). :class:`FrameSession`
implements them with :mod:`kiosk.reader.felica` frames over any
``exchange(frame, timeout)`` function, which is all the PC/SC readers and the
simulator provide; the nfcpy backend has its own session on nfcpy's Type3Tag.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from kiosk.reader import felica


class CardLost(Exception):
    """The card stopped answering mid-conversation (pulled away, or out of range)."""


class Collision(Exception):
    """More than one card answered the poll."""


class CardSession(Protocol):
    idm: bytes
    pmm: bytes
    system_code: int

    def read_blocks(self, services: Sequence[int], blocks: Sequence[tuple[int, int]]) -> list[bytes]:
        """Read Without Encryption. Raises StatusError, FrameError or CardLost."""
        ...

    def request_service(self, nodes: Sequence[int]) -> list[int]:
        """Key versions of ``nodes`` (0xFFFF = absent). Raises FrameError or CardLost."""
        ...


Exchange = Callable[[bytes, float], bytes]
"""Send one FeliCa command frame, return the response frame; raise CardLost on timeout."""

# Readers add their own latency on top of the card's PMm promise (USB round trip,
# firmware); a floor keeps us from timing out on a card that is merely slow.
MIN_TIMEOUT_S = 0.02


class FrameSession:
    """A card reached through raw FeliCa frames."""

    __slots__ = ("idm", "pmm", "system_code", "_exchange")

    def __init__(self, poll: felica.PollingResponse, exchange: Exchange, system_code: int):
        self.idm = poll.idm
        self.pmm = poll.pmm
        self.system_code = poll.system_code if poll.system_code is not None else system_code
        self._exchange = exchange

    def __repr__(self) -> str:  # never show the IDm
        return f"FrameSession(system={self.system_code:04X}, idm=<hidden>)"

    def read_blocks(self, services: Sequence[int], blocks: Sequence[tuple[int, int]]) -> list[bytes]:
        cmd = felica.read_command(self.idm, services, blocks)
        timeout = max(MIN_TIMEOUT_S, felica.max_response_time(self.pmm, "read", len(blocks)))
        return felica.parse_read_response(self._exchange(cmd, timeout), self.idm, len(blocks))

    def request_service(self, nodes: Sequence[int]) -> list[int]:
        cmd = felica.request_service_command(self.idm, nodes)
        timeout = max(MIN_TIMEOUT_S, felica.max_response_time(self.pmm, "request_service", len(nodes)))
        return felica.parse_request_service_response(self._exchange(cmd, timeout), self.idm, len(nodes))

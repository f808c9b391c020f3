"""What readers report: small immutable values (msgspec Structs), and the queue they travel on.

Structs, not frozen dataclasses: a Struct class is built in C, a frozen dataclass compiles three methods
from source at every start of the kiosk (cold start, #16; kiosk/donation/flow.py says more).

Privacy rule: no event holds an IDm. A tap carries the keyed
:class:`~kiosk.ledger.pepper.DonorToken` instead, whose ``repr`` is short.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from kiosk.ledger.pepper import DonorToken
from kiosk.reader.transit import HistoryRecord

log = logging.getLogger(__name__)

Family = str
"""``suica`` … ``pitapa`` (see :data:`kiosk.reader.transit.FAMILIES`), ``transit`` or ``unknown``."""


class TapRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One counted tap: everything the kiosk needs, nothing that identifies the card."""

    reader_id: str
    family: Family
    system_code: int
    token: DonorToken
    balance_yen: int | None
    """``None`` when the card's balance could not be read (the tap still counts)."""
    last_transaction: int | None
    """Transaction number of the newest history entry, when readable."""
    read_ms: float
    """From the poll that found the card to the finished record."""
    mobile: bool = False
    """A phone or watch (Mobile FeliCa), told from the PMm."""
    history: tuple[HistoryRecord, ...] = ()
    """Newest first; at most ``[reader] history_blocks`` entries."""


class ReaderEvent(msgspec.Struct, frozen=True, kw_only=True):
    reader_id: str
    at: float
    """Reader clock (monotonic seconds) when the event was made."""


class ReaderConnected(ReaderEvent, frozen=True, kw_only=True):
    backend: str
    description: str


class ReaderDisconnected(ReaderEvent, frozen=True, kw_only=True):
    reason: str
    """One line for staff, e.g. ``unplugged (ENODEV)``."""
    fault: Literal["lost", "permission", "busy", "no-service", "missing", "setup"] = "lost"
    """``lost`` is retried quietly; the others are configuration faults needing a fix."""
    fix: str = ""
    """The exact command or file change that fixes a configuration fault."""

    @property
    def is_config_fault(self) -> bool:
        return self.fault != "lost"


class CardPresented(ReaderEvent, frozen=True, kw_only=True):
    record: TapRecord


class CardRemoved(ReaderEvent, frozen=True, kw_only=True):
    token: DonorToken | None


class ReadError(ReaderEvent, frozen=True, kw_only=True):
    kind: Literal["card-lost", "status", "protocol", "collision", "unsupported"]
    detail: str
    status: tuple[int, int] | None = None
    """FeliCa status flags for ``kind == 'status'``, e.g. ``(0x01, 0xA6)``."""


AnyEvent = ReaderConnected | ReaderDisconnected | CardPresented | CardRemoved | ReadError


@dataclass
class EventQueue:
    """Thread-safe hand-off from the polling thread to the app, plus optional listeners.

    Listeners run on the polling thread, so they must be quick (the demo
    window only sets a flag); a failing listener is logged and skipped.
    """

    maxsize: int = 1000
    _q: queue.Queue[ReaderEvent] = field(init=False, repr=False)
    _listeners: list[Callable[[ReaderEvent], None]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._q = queue.Queue(self.maxsize)

    def subscribe(self, fn: Callable[[ReaderEvent], None]) -> None:
        with self._lock:
            self._listeners.append(fn)

    def put(self, event: ReaderEvent) -> None:
        try:
            self._q.put_nowait(event)
        except queue.Full:
            # A stalled consumer must not stall polling: drop the oldest.
            try:
                self._q.get_nowait()
            except queue.Empty:
                pass
            self._q.put_nowait(event)
        with self._lock:
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(event)
            except Exception:
                log.exception("reader event listener failed on %s", type(event).__name__)

    def get(self, timeout: float | None = None) -> ReaderEvent | None:
        try:
            return self._q.get(timeout=timeout) if timeout != 0 else self._q.get_nowait()
        except queue.Empty:
            return None

    def drain(self) -> list[ReaderEvent]:
        out = []
        while True:
            try:
                out.append(self._q.get_nowait())
            except queue.Empty:
                return out

"""The reader interface every backend implements, and the tap logic they share.

A backend (nfcpy, PC/SC, simulator) subclasses :class:`CardReader` and fills
in three device hooks — :meth:`open`, :meth:`close`, :meth:`sense` — in the
plain-base-class style Mopidy uses for its backends. Everything above the
radio (debounce, reading the balance and history, family detection, making
the tap record, events) lives here once, so the backends cannot disagree.

The IDm exists only inside :meth:`poll`: it goes into the tokenizer and into
the card session's frames, and is dropped when the poll returns.
"""

from __future__ import annotations

import errno
import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from kiosk.ledger.pepper import DonorToken
from kiosk.reader import felica, transit
from kiosk.reader.debounce import Debouncer, Seen
from kiosk.reader.events import (
    CardPresented,
    CardRemoved,
    EventQueue,
    ReaderDisconnected,
    ReaderEvent,
    ReadError,
    TapRecord,
)
from kiosk.reader.fixes import busy_fix, udev_fix
from kiosk.reader.session import CardLost, CardSession, Collision

if TYPE_CHECKING:
    from kiosk.config.reader import ReaderConfig

log = logging.getLogger(__name__)

Tokenizer = Callable[[bytes], DonorToken]
# Monotonic seconds as a plain function (time.monotonic, or a kiosk.ledger.clock.Clock's .monotonic):
# the reader polls it on every frame and needs nothing else of the kiosk's clock.
Clock = Callable[[], float]

# errnos that mean "the device went away": retried quietly by the supervisor.
LOST_ERRNOS = {errno.ENODEV, errno.EIO, errno.ENXIO, errno.EPIPE, errno.ENOENT, errno.ESHUTDOWN}


class ReaderFault(Exception):
    """A reader that cannot work until someone changes the setup. ``fix`` is the exact remedy."""

    def __init__(self, fault: str, reason: str, fix: str = ""):
        self.fault = fault
        self.reason = reason
        self.fix = fix
        super().__init__(reason)


class UnsupportedCard(Exception):
    """The reader sees a card that is not FeliCa, or answers none of our system codes."""


class CardReader:
    """Base class: subclasses set :attr:`backend` and override the three device hooks."""

    backend: ClassVar[str] = "base"

    def __init__(
        self,
        config: ReaderConfig,
        tokenizer: Tokenizer,
        *,
        clock: Clock = time.monotonic,
        events: EventQueue | None = None,
    ):
        self.config = config
        self.reader_id = config.reader_id
        self.tokenizer = tokenizer
        self.clock = clock
        self.events = events if events is not None else EventQueue()
        self.debouncer = Debouncer(config.cooldown_ms / 1000.0, config.removal_misses)
        # Polls go to 0x0003 first; others only when configured. Never a wildcard.
        self.system_codes: tuple[int, ...] = (felica.SYSTEM_TRANSIT, *config.extra_system_codes)
        self._cycle = 0
        self._announced = False  # did the current card produce a tap or an error?
        self._current_token: DonorToken | None = None
        self._episode: str | None = None  # collision/unsupported already reported

    # --- device hooks (override) ---------------------------------------------
    def open(self) -> str:
        """Open the device; return a one-line description. Raise OSError or ReaderFault."""
        raise NotImplementedError(f"{type(self).__name__}.open")

    def close(self) -> None:
        """Release the device. Must not raise."""

    def shutdown(self) -> None:
        """Stop for good (the supervisor is stopping): close, and end any helper threads."""
        self.close()

    def sense(self, system_code: int) -> CardSession | None:
        """One poll for ``system_code`` (request code 1). Return a session, or None for no card.

        Raise OSError when the device is gone, Collision for two cards,
        UnsupportedCard for a card we cannot talk to.
        """
        raise NotImplementedError(f"{type(self).__name__}.sense")

    def usb_id(self) -> tuple[int, int] | None:
        """(vendor, product) of the open or expected device, for precise fixes."""
        return None

    # --- faults ----------------------------------------------------------------
    def describe_fault(self, exc: BaseException) -> ReaderDisconnected:
        """Turn an open/poll failure into the event staff see, with the fix for setup faults."""
        now = self.clock()
        if isinstance(exc, ReaderFault):
            return ReaderDisconnected(reader_id=self.reader_id, at=now, reason=exc.reason, fault=exc.fault, fix=exc.fix)  # type: ignore[arg-type]
        code = getattr(exc, "errno", None)
        name = errno.errorcode.get(code, "") if isinstance(code, int) else ""
        if code in (errno.EACCES, errno.EPERM):
            ids = self.usb_id()
            return ReaderDisconnected(
                reader_id=self.reader_id, at=now, fault="permission",
                reason=f"no permission to open the reader ({name}): the udev rule is missing",
                fix=udev_fix(*ids) if ids else udev_fix(),
            )
        if code == errno.EBUSY:
            return ReaderDisconnected(
                reader_id=self.reader_id, at=now, fault="busy",
                reason=f"reader is busy ({name}): a kernel driver or another program holds it",
                fix=busy_fix(self.backend),
            )
        if code in LOST_ERRNOS or isinstance(exc, (OSError, CardLost)):
            what = "reader unplugged or not found" if code in (errno.ENODEV, errno.ENOENT) else "reader lost"
            return ReaderDisconnected(
                reader_id=self.reader_id, at=now, fault="lost", reason=f"{what} ({name or type(exc).__name__})"
            )
        return ReaderDisconnected(
            reader_id=self.reader_id, at=now, fault="lost", reason=f"reader error: {type(exc).__name__}"
        )

    # --- the shared tap logic --------------------------------------------------
    def emit(self, event: ReaderEvent) -> None:
        self.events.put(event)

    def poll(self) -> None:
        """One poll cycle: find a card, debounce, read it if it is a new tap, emit events.

        OSError (device gone) and ReaderFault propagate to the supervisor.
        """
        started = self.clock()
        card: CardSession | None = None
        self._cycle += 1
        # The other systems (0xFE00: WAON, Edy, nanaco ...) only every EXTRA_POLL_EVERY-th cycle, or while a
        # card is held: a phone in Express mode that hears one of them before 0x0003 shows its wallet
        # instead of answering, so the few ms after a 0x0003 miss are kept rare. A held card is never such a
        # phone (a phone that answered 0x0003 ends the cycle there).
        extra = self.debouncer.current is not None or self._cycle % self.EXTRA_POLL_EVERY == 0
        codes = self.system_codes if extra else self.system_codes[:1]
        try:
            for sc in codes:
                card = self.sense(sc)
                if card is not None:
                    break
        except Collision:
            self._report_once("collision", "more than one card on the reader: hold up one card")
            return  # the card already on the reader is still there; not a miss
        except UnsupportedCard as exc:
            self._report_once("unsupported", f"card not supported: {exc}")
            return
        except felica.FelicaError:
            card = None  # a garbled poll answer is treated like no answer, as readers do
        if card is None:
            self._episode = None
            self._missed(started)
            return
        self._episode = None
        try:
            self._seen(card, started)
        finally:
            card = None  # the IDm goes out of scope with the session

    def reader_lost(self) -> None:
        """The device went away: whatever card was on it is gone as far as we can know.

        The cooldown memory stays, so a card held through a quick replug is not counted twice.
        """
        if self.debouncer.current is not None:
            self.debouncer.current = None
            self.debouncer.misses = 0
            self._removed()
        self._episode = None

    def _report_once(self, kind: str, detail: str) -> None:
        if self._episode != kind:
            self._episode = kind
            self.emit(ReadError(reader_id=self.reader_id, at=self.clock(), kind=kind, detail=detail))  # type: ignore[arg-type]

    def _missed(self, now: float) -> None:
        removed = self.debouncer.missed(now)
        if removed is not None:
            self._removed()

    def _removed(self) -> None:
        if self._announced:
            self.emit(CardRemoved(reader_id=self.reader_id, at=self.clock(), token=self._current_token))
        self._announced = False
        self._current_token = None

    def _seen(self, card: CardSession, started: float) -> None:
        token = self.tokenizer(card.idm)
        verdict, replaced = self.debouncer.seen(token.hex, started)
        if replaced is not None:
            self._removed()
        if verdict is Seen.HELD:
            return
        self._current_token = token
        if verdict is Seen.COOLDOWN:
            self._announced = False
            return
        self._announced = True
        try:
            record = self._read(card, token, started)
        except CardLost:
            self._read_failed(token, "card-lost", "card moved away during the read: tap again")
        except felica.StatusError as exc:
            self._read_failed(token, "status", str(exc), (exc.sf1, exc.sf2))
        except felica.FrameError as exc:
            self._read_failed(token, "protocol", f"garbled answer from the card ({exc})")
        except (OSError, ReaderFault):
            raise  # the device itself went away or needs staff: the supervisor's business
        except Exception as exc:
            # Last resort (a backend let a parse error through, or a bug): the donor still sees "tap again",
            # and the card is forgotten, so lifting it and tapping again is a fresh read, not a cooldown repeat.
            # Logged by type and place only: an exception's text may quote a frame, and a frame holds the IDm.
            where = traceback.extract_tb(exc.__traceback__)[-1]
            log.error("reader %s: unexpected %s while reading a card (%s:%d in %s)", self.reader_id,
                      type(exc).__name__, Path(where.filename).name, where.lineno or 0, where.name)
            self._read_failed(token, "protocol", "the card's answer could not be read: tap again")
        else:
            self.emit(CardPresented(reader_id=self.reader_id, at=self.clock(), record=record))

    def _read_failed(self, token: DonorToken, kind: str, detail: str, status: tuple[int, int] | None = None) -> None:
        self.debouncer.forget(token.hex)
        log.info("reader %s: read error (%s) for card %s", self.reader_id, kind, token)
        self.emit(ReadError(reader_id=self.reader_id, at=self.clock(), kind=kind, detail=detail, status=status))  # type: ignore[arg-type]

    def _read(self, card: CardSession, token: DonorToken, started: float) -> TapRecord:
        balance: int | None = None
        history: list[transit.HistoryRecord] = []
        card_type: int | None = None
        family = "unknown"
        if card.system_code == felica.SYSTEM_TRANSIT:
            attr_block, hist_blocks = self._read_transit_blocks(card)
            try:
                attr = transit.parse_attribute_block(attr_block)
                balance, card_type = attr.balance_yen, attr.card_type
            except ValueError as exc:
                log.warning("reader %s: attribute block unreadable: %s", self.reader_id, exc)
            history, bad = transit.parse_history(hist_blocks)
            if bad:
                log.warning("reader %s: %d history block(s) unreadable", self.reader_id, bad)
            family = self._family(card, card_type)
        return TapRecord(
            reader_id=self.reader_id,
            family=family,
            system_code=card.system_code,
            token=token,
            balance_yen=balance,
            last_transaction=history[0].transaction_number if history else None,
            read_ms=round((self.clock() - started) * 1000.0, 3),
            mobile=felica.is_mobile(card.pmm),
            history=tuple(history),
        )

    EXTRA_POLL_EVERY: ClassVar[int] = 4
    """Poll ``extra_system_codes`` on one cycle in this many while no card is held (4 × 50 ms: a non-transit
    card still gets its answer within 0.2 s)."""

    READ_CHUNK: ClassVar[int] = 8
    """Blocks per Read Without Encryption; cards that take fewer say so with status A1/A2."""

    def _read_transit_blocks(self, card: CardSession) -> tuple[bytes, list[bytes]]:
        """Balance and history in as few commands as the card allows (one, usually)."""
        n = self.config.history_blocks
        try:
            first = min(n, self.READ_CHUNK - 1)
            services = [transit.SERVICE_ATTRIBUTE, transit.SERVICE_HISTORY] if n else [transit.SERVICE_ATTRIBUTE]
            data = card.read_blocks(services, [(0, 0)] + [(1, i) for i in range(first)])
            attr, hist = data[0], data[1:]
            for start in range(first, n, self.READ_CHUNK):
                stop = min(n, start + self.READ_CHUNK)
                hist += card.read_blocks([transit.SERVICE_HISTORY], [(0, i) for i in range(start, stop)])
            return attr, hist
        except felica.StatusError as exc:
            # A1/A2: too many services or blocks for this card (phones often take one).
            if exc.sf2 not in (0xA1, 0xA2):
                raise
        attr = card.read_blocks([transit.SERVICE_ATTRIBUTE], [(0, 0)])[0]
        hist = [card.read_blocks([transit.SERVICE_HISTORY], [(0, i)])[0] for i in range(n)]
        return attr, hist

    def _family(self, card: CardSession, card_type: int | None) -> str:
        if not self.config.detect_family:
            return "icoca" if card_type == 3 else "transit"
        try:
            kvs = card.request_service(transit.PROBE_NODES)
        except (felica.FrameError, felica.StatusError):
            kvs = [0xFFFF] * len(transit.PROBE_NODES)
        return transit.family_from_key_versions(transit.PROBE_NODES, kvs, card_type)

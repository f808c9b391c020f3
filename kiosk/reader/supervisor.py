"""Keeps a reader running: opens it, polls it, reopens it with backoff when it is lost.

Readers get unplugged, replugged and misconfigured in the field. The
supervisor turns every failure into one :class:`ReaderDisconnected` event (not
one per retry), retries after 0.5 s, 1 s, 2 s, 4 s, then every 5 s, and
reports its state. Permission (EACCES), busy (EBUSY) and missing-service
faults are configuration faults: the event carries the exact fix, and the
supervisor keeps retrying so the kiosk recovers as soon as staff apply it.

:meth:`step` does one unit of work and says how long to wait; tests drive it
with a fake clock, :meth:`start` runs it on a thread.
"""

from __future__ import annotations

import enum
import logging
import threading

from kiosk.reader.base import CardReader, ReaderFault
from kiosk.reader.events import EventQueue, ReaderConnected, ReaderDisconnected, ReaderEvent

log = logging.getLogger(__name__)

MIN_BACKOFF_S = 0.5
MAX_BACKOFF_S = 5.0


class State(str, enum.Enum):
    STARTING = "starting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    """Lost (unplugged, no device yet): retrying quietly."""
    FAULT = "fault"
    """A configuration fault: retrying, but staff must fix something (see ``last_fault.fix``)."""
    STOPPED = "stopped"


class ReaderSupervisor:
    def __init__(
        self,
        reader: CardReader,
        *,
        poll_interval_s: float | None = None,
        min_backoff_s: float = MIN_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
    ):
        self.reader = reader
        self.poll_interval_s = poll_interval_s if poll_interval_s is not None else reader.config.poll_interval_ms / 1000
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.state = State.STARTING
        self.last_fault: ReaderDisconnected | None = None
        self._backoff = min_backoff_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the public face the app uses ---------------------------------------------
    @property
    def events(self) -> EventQueue:
        return self.reader.events

    def get_event(self, timeout: float | None = None) -> ReaderEvent | None:
        return self.reader.events.get(timeout)

    def start(self) -> ReaderSupervisor:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self.run, name=f"reader-{self.reader.reader_id}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.reader.shutdown()
        self.state = State.STOPPED

    def __enter__(self) -> ReaderSupervisor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self) -> None:
        while not self._stop.is_set():
            delay = self.step()
            if delay > 0:
                self._stop.wait(delay)

    # --- one unit of work -------------------------------------------------------------
    def step(self) -> float:
        """Open or poll once; return the seconds to wait before the next step."""
        if self.state is not State.CONNECTED:
            return self._try_open()
        started = self.reader.clock()
        try:
            self.reader.poll()
        except (OSError, ReaderFault) as exc:
            self.reader.close()
            self.reader.reader_lost()
            self._backoff = self.min_backoff_s
            self._failed(exc)
            return self._next_backoff()
        except Exception:
            # A bug must not kill the polling thread of an unattended kiosk.
            log.exception("reader %s: poll failed unexpectedly", self.reader.reader_id)
        spent = self.reader.clock() - started
        return max(0.0, self.poll_interval_s - spent)

    def _try_open(self) -> float:
        try:
            description = self.reader.open()
        except (OSError, ReaderFault) as exc:
            self._failed(exc)
            return self._next_backoff()
        except Exception as exc:
            log.exception("reader %s: open failed unexpectedly", self.reader.reader_id)
            self._failed(exc)
            return self._next_backoff()
        self.state = State.CONNECTED
        self.last_fault = None
        self._backoff = self.min_backoff_s
        log.info("reader %s connected: %s", self.reader.reader_id, description)
        self.reader.emit(ReaderConnected(
            reader_id=self.reader.reader_id, at=self.reader.clock(), backend=self.reader.backend,
            description=description,
        ))
        return 0.0

    def _failed(self, exc: BaseException) -> None:
        event = self.reader.describe_fault(exc)
        new_state = State.FAULT if event.is_config_fault else State.RECONNECTING
        last = self.last_fault
        if last is None or (last.fault, last.reason) != (event.fault, event.reason) or self.state is State.CONNECTED:
            if event.is_config_fault:
                log.error("reader %s: %s; fix:\n%s", self.reader.reader_id, event.reason, event.fix)
            else:
                log.warning("reader %s: %s; retrying", self.reader.reader_id, event.reason)
            self.reader.emit(event)
        self.last_fault = event
        self.state = new_state

    def _next_backoff(self) -> float:
        delay = self._backoff
        self._backoff = min(self.max_backoff_s, self._backoff * 2)
        return delay

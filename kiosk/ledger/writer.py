"""The one-writer seam: how code that is not on the ledger's owning thread gets an entry appended.

Inside ``kiosk run`` exactly one thread appends: the app's service worker, which
also runs every donation, so a staff action, a PIN failure or a pushed config
is strictly ordered with the gifts around it and no fsync ever happens on the
render or reader thread. Everything else hands the worker a function of the
ledger through :meth:`LedgerWriter.submit` and gets a future back. The ledger
enforces this itself once claimed (:meth:`~kiosk.ledger.store.Ledger.claim_writer`):
an append from any other thread raises :class:`~kiosk.ledger.store.LedgerThreadError`.

Single-threaded processes (``kiosk closeout``, ``kiosk sync --once``) and tests
use :class:`InlineWriter`, which runs the function at once in the caller.

Two ways to wait, by thread:

- threads that may block (the menu's background executor, the sync thread, CLIs):
  :func:`call` (submit and wait for the result);
- the render and reader threads must never wait for an fsync: :func:`fire`
  (submit; a failure is logged by a done-callback, never raised into the caller).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:  # the store pulls in SQLAlchemy; the gate and the menu import this module for the types only
    from kiosk.ledger.store import Ledger

log = logging.getLogger(__name__)

T = TypeVar("T")


class LedgerThreadError(RuntimeError):
    """An append from a thread other than the one that claimed the ledger. Nothing was written.

    A RuntimeError, deliberately not a LedgerError: callers catch LedgerError as an operational condition to
    report and carry on from (the uploader notes a failed config push and keeps uploading, the menu shows the
    message, the CLI prints it). Appending from the wrong thread is a bug in the caller, which must not be
    absorbed as "the ledger said no"; it should surface as the programming error it is.
    """

WAIT_S = 120.0
"""How long :func:`call` waits. The worker finishes the job in hand first, and a charge on a real terminal
(card held, terminal slow to answer) can take most of a minute; past this the caller reports "ledger busy"
rather than hanging a menu page forever. The job itself still runs, in order, when its turn comes."""


class LedgerWriter(Protocol):
    """Runs functions of the ledger on the thread that owns it, one at a time, in submission order."""

    @property
    def ledger(self) -> Ledger:
        """The ledger appended to. Any thread may *read* it (the published snapshot and SQL queries are
        consistent); appending through it directly from another thread raises LedgerThreadError."""
        ...

    def submit(self, fn: Callable[[Ledger], T]) -> Future[T]:
        """Queue ``fn(ledger)`` for the owning thread. The future holds its result or its exception; when the
        writer has stopped (shut down, or failed closed) the future fails with LedgerUnavailable."""
        ...


class InlineWriter:
    """Runs ``fn`` immediately in the calling thread: for single-threaded processes and tests."""

    def __init__(self, ledger: Ledger):
        self._ledger = ledger

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    def submit(self, fn: Callable[[Ledger], T]) -> Future[T]:
        fut: Future[T] = Future()
        try:
            fut.set_result(fn(self._ledger))
        except Exception as exc:  # the same contract as a queued writer: errors travel in the future
            fut.set_exception(exc)
        return fut


def call(writer: LedgerWriter, fn: Callable[[Ledger], T], timeout: float | None = WAIT_S) -> T:
    """Submit ``fn`` and wait for its result (re-raising its exception). Not for the render or reader thread."""
    return writer.submit(fn).result(timeout)


def fire(writer: LedgerWriter, fn: Callable[[Ledger], T], what: str) -> Future[T]:
    """Submit ``fn`` without waiting: for threads that must not block on an fsync (render, reader).

    A failure cannot be shown to whoever caused it (they have moved on), so it is logged here with ``what``;
    a LedgerThreadError (a bug: someone bypassed the writer) is logged with its traceback.
    """
    fut = writer.submit(fn)

    def report(f: Future[T]) -> None:
        if f.cancelled():
            log.error("ledger append cancelled: %s", what)
            return
        exc = f.exception()
        if exc is None:
            return
        if isinstance(exc, LedgerThreadError):
            log.error("ledger append from the wrong thread: %s", what, exc_info=exc)
        else:
            log.error("ledger append failed: %s: %s", what, exc)

    fut.add_done_callback(report)
    return fut

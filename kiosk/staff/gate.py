"""Who may open the maintenance menu, and the audit trail of what they did there.

Every staff action becomes an ``admin_action`` ledger entry (signed and
synced like everything else), so the portal can show who closed the day or
granted points. Entries name the staff card by its donor token, or ``pin``
when the menu was opened with the PIN; they never hold the PIN.

Entries are appended through a :class:`~kiosk.ledger.writer.LedgerWriter`,
never directly: inside ``kiosk run`` the gate is driven from the render
thread (PIN keypad) and the reader thread (staff cards), which must not wait
for an fsync, and only the service worker may append. So the records made
there (:meth:`StaffSession.record`, PIN failures, menu open/close) are
queued and their failures logged; the menu's background actions, which may
wait, use :meth:`StaffSession.record_wait` and :meth:`StaffSession.action`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from kiosk.ledger import DonorToken, Entry, Ledger
from kiosk.ledger.writer import LedgerWriter, call, fire
from kiosk.staff.pin import PinAttempt, PinLock

if TYPE_CHECKING:
    from kiosk.config.staff import StaffSection

log = logging.getLogger(__name__)

ACTIONS = frozenset({
    "menu_open", "menu_close", "menu_refused", "pin_failed", "pin_locked",
    "status_view", "x_report", "z_report", "points_grant", "sync_now", "reader_test",
    "playlist_enable", "playlist_disable", "playlist_reload", "volume", "language",
    "restart_app", "reboot", "poweroff", "usb_export", "refund",
})
"""Action names the menu records. A fixed set so a typo cannot slip into the audit trail."""


class StaffError(ValueError):
    """A staff action that cannot be recorded as asked."""


def _seq(fut: Future[Entry] | None) -> int | None:
    if fut is None or not fut.done() or fut.cancelled() or fut.exception() is not None:
        return None
    return fut.result().seq


class StaffSession:
    """One visit to the menu: opened by a card or the PIN, closed by staff or the idle timeout."""

    def __init__(self, writer: LedgerWriter, by: str, *, clock: Callable[[], float] = time.monotonic):
        self.writer = writer
        self.by = by
        """``card:<token hex>`` or ``pin``."""
        self._clock = clock
        self.opened_at = clock()
        self.open = True
        self.opened: Future[Entry] | None = None
        """The queued ``menu_open`` append; entries of this session name its seq."""

    @property
    def opened_seq(self) -> int | None:
        """Seq of the ``menu_open`` entry, once it is written (None before, or if it could not be)."""
        return _seq(self.opened)

    def _data(self, action: str, detail: dict[str, Any]) -> dict[str, Any]:
        # Checked on the caller's thread, so a typo fails where it was made, not later on the writer's.
        if action not in ACTIONS:
            raise StaffError(f"unknown staff action {action!r}")
        if "action" in detail or "by" in detail:
            raise StaffError("'action' and 'by' are set by the session")
        return {"action": action, "by": self.by, **detail}

    def _append(self, ledger: Ledger, data: dict[str, Any]) -> Entry:
        # On the writer's thread. Jobs run one at a time in submission order, so the menu_open job has
        # finished (its future is done) before any later job of this session runs: the seq is known here
        # even when the caller queued both without waiting.
        seq = self.opened_seq
        if seq is not None:
            data = {**data, "session_seq": seq}
        entry = ledger.append("admin_action", data)
        log.info("staff action %s by %s (seq=%d)", data["action"], self.by.split(":")[0], entry.seq)
        return entry

    def record(self, action: str, **detail: Any) -> Future[Entry]:
        """Queue an ``admin_action`` entry for ``action`` and return at once (render and reader threads);
        a failure to append is logged. Details must be ledger-encodable (no floats)."""
        data = self._data(action, detail)
        return fire(self.writer, lambda led: self._append(led, data), f"staff action {action}")

    def record_wait(self, action: str, **detail: Any) -> Entry:
        """Append an ``admin_action`` entry and wait until it is durable (background threads only);
        raises what the append raised."""
        data = self._data(action, detail)
        return call(self.writer, lambda led: self._append(led, data))

    def append_to(self, ledger: Ledger, action: str, **detail: Any) -> Entry:
        """Append now, inside a job already running on the writer's thread (an action and its audit
        line in one job, with nothing of anyone else's between them)."""
        return self._append(ledger, self._data(action, detail))

    @contextmanager
    def action(self, name: str, **detail: Any) -> Iterator[dict[str, Any]]:
        """Run one menu action and record it afterwards with its outcome.

        The block may add results (e.g. the close-out seq) to the yielded dict.
        A failure is recorded as ``outcome = "failed: <error>"`` and re-raised.
        """
        result: dict[str, Any] = {}
        try:
            yield result
        except Exception as exc:
            self.record_wait(name, **detail, **result, outcome=f"failed: {type(exc).__name__}: {exc}"[:200])
            raise
        self.record_wait(name, **detail, **result, outcome="ok")

    def close(self, reason: str = "staff") -> Future[Entry] | None:
        """Close the menu (``reason``: ``staff`` or ``idle``); the ``menu_close`` entry is queued."""
        if not self.open:
            return None
        self.open = False
        return self.record("menu_close", reason=reason, seconds=int(self._clock() - self.opened_at))


PIN_TRAIL_LOOKBACK = 200
"""Newest ``admin_action`` entries read at start for the PIN's record (every wrong PIN writes one or two)."""


def pin_trail(ledger: Ledger) -> tuple[int, float]:
    """(wrong PINs in a row, seconds the keypad is still locked) as the ledger recorded them before this start:
    the newest ``pin_failed`` after the last menu opened by PIN, and its ``pin_locked``, whose lock runs from the
    entry's wall time when both the entry's and this kiosk's clocks are synced, and in full from now when either
    is not (a Pi without its clock: never shorter than recorded)."""
    locked: dict[str, Any] | None = None
    for entry in ledger.newest_of_type("admin_action", PIN_TRAIL_LOOKBACK):
        obj = entry.obj
        data = obj["data"]
        action = data.get("action")
        if action == "menu_open" and data.get("via") == "pin":
            return 0, 0.0  # a right PIN cleared the count
        if action == "pin_locked" and locked is None:
            locked = obj
        elif action == "pin_failed" and isinstance(data.get("failures"), int):
            if locked is None:
                return data["failures"], 0.0
            seconds = float(locked["data"].get("seconds") or 0)
            if locked["clock_synced"] and ledger.clock.synced():
                seconds -= (ledger.clock.wall_ms() - locked["wall_ms"]) / 1000
            return data["failures"], max(0.0, seconds)
    return 0, 0.0


class StaffGate:
    """The two ways into the menu: a registered staff card, or the hidden gesture plus the PIN."""

    def __init__(self, writer: LedgerWriter, settings: StaffSection, *,
                 clock: Callable[[], float] = time.monotonic):
        self.writer = writer
        self.settings = settings
        self._clock = clock
        self._tokens = frozenset(settings.staff_tokens)
        self._pin = PinLock(settings.pin_hash, free_attempts=settings.free_attempts,
                            base_s=settings.lockout_base_s, max_s=settings.lockout_max_s, clock=clock)
        self._pin_restored = not settings.pin_hash

    @property
    def pin(self) -> PinLock:
        """The keypad's lock, taken up from the ledger's record the first time it is needed (the hidden gesture),
        not at the kiosk's start: reading back through the ledger would delay READY=1."""
        if not self._pin_restored:
            self._pin_restored = True
            try:
                self._pin.restore(*pin_trail(self.writer.ledger))
            except (sqlite3.Error, OSError) as exc:  # unreadable ledger: the keypad starts locked (fail closed)
                log.error("PIN lock not restored (%s): locked for %d s", exc, self.settings.lockout_max_s)
                self._pin.restore(self.settings.free_attempts, self.settings.lockout_max_s)
        return self._pin

    def is_staff_card(self, token: DonorToken) -> bool:
        # Under any epoch the kiosk holds: a staff card registered before the city's pepper arrived (or
        # before a rotation) still opens the menu (docs/privacy.md).
        return any(h in self._tokens for h in token.all_hexes)

    def _open(self, by: str, how: str) -> StaffSession:
        # Queued, not awaited: a staff card opens the menu on the reader thread, the PIN on the render thread.
        s = StaffSession(self.writer, by, clock=self._clock)
        s.opened = s.record("menu_open", via=how)
        return s

    def open_with_card(self, token: DonorToken) -> StaffSession | None:
        """A session when ``token`` is a staff card, else None (the tap is an ordinary donor tap)."""
        if not self.is_staff_card(token):
            return None
        return self._open(f"card:{token.hex}", "card")

    def open_with_pin(self, pin: str) -> tuple[StaffSession | None, PinAttempt]:
        """Try the PIN. Wrong PINs and the locks they cause are recorded (without the PIN)."""
        attempt = self.pin.attempt(pin)
        if attempt.ok:
            return self._open("pin", "pin"), attempt
        if not attempt.refused:
            # Typed on the render thread: queued for the writer, never waited for.
            failed = {"action": "pin_failed", "by": "pin", "failures": attempt.failures}
            locked = ({"action": "pin_locked", "by": "pin", "seconds": int(attempt.locked_for_s)}
                      if attempt.locked_for_s > 0 else None)

            def append(led: Ledger) -> None:
                led.append("admin_action", failed)
                if locked is not None:
                    led.append("admin_action", locked)

            fire(self.writer, append, "PIN failure")
        return None, attempt

    def idle_expired(self, session: StaffSession, last_input: float) -> bool:
        """Whether the menu should close itself: no touch or key for ``idle_timeout_s``."""
        return session.open and self._clock() - last_input >= self.settings.idle_timeout_s

"""Who may open the maintenance menu, and the audit trail of what they did there.

Every staff action becomes an ``admin_action`` ledger entry (signed and
synced like everything else), so the portal can show who closed the day or
granted points. Entries name the staff card by its donor token, or ``pin``
when the menu was opened with the PIN; they never hold the PIN.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from kiosk.ledger import DonorToken, Entry, Ledger
from kiosk.config.staff import StaffSection
from kiosk.staff.pin import PinAttempt, PinLock

log = logging.getLogger(__name__)

ACTIONS = frozenset({
    "menu_open", "menu_close", "menu_refused", "pin_failed", "pin_locked",
    "status_view", "x_report", "z_report", "points_grant", "sync_now", "reader_test",
    "playlist_enable", "playlist_disable", "playlist_reload", "volume", "language",
    "restart_app", "reboot", "poweroff", "usb_export",
})
"""Action names the menu records. A fixed set so a typo cannot slip into the audit trail."""


class StaffError(ValueError):
    """A staff action that cannot be recorded as asked."""


class StaffSession:
    """One visit to the menu: opened by a card or the PIN, closed by staff or the idle timeout."""

    def __init__(self, ledger: Ledger, by: str, *, clock: Callable[[], float] = time.monotonic):
        self.ledger = ledger
        self.by = by
        """``card:<token hex>`` or ``pin``."""
        self._clock = clock
        self.opened_at = clock()
        self.open = True
        self.opened_seq: int | None = None

    def record(self, action: str, **detail: Any) -> Entry:
        """Append an ``admin_action`` entry for ``action``. Details must be ledger-encodable (no floats)."""
        if action not in ACTIONS:
            raise StaffError(f"unknown staff action {action!r}")
        if "action" in detail or "by" in detail:
            raise StaffError("'action' and 'by' are set by the session")
        data = {"action": action, "by": self.by, **detail}
        if self.opened_seq is not None:
            data["session_seq"] = self.opened_seq
        entry = self.ledger.append("admin_action", data)
        log.info("staff action %s by %s (seq=%d)", action, self.by.split(":")[0], entry.seq)
        return entry

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
            self.record(name, **detail, **result, outcome=f"failed: {type(exc).__name__}: {exc}"[:200])
            raise
        self.record(name, **detail, **result, outcome="ok")

    def close(self, reason: str = "staff") -> Entry | None:
        """Close the menu (``reason``: ``staff`` or ``idle``)."""
        if not self.open:
            return None
        self.open = False
        return self.record("menu_close", reason=reason, seconds=int(self._clock() - self.opened_at))


class StaffGate:
    """The two ways into the menu: a registered staff card, or the hidden gesture plus the PIN."""

    def __init__(self, ledger: Ledger, settings: StaffSection, *, clock: Callable[[], float] = time.monotonic):
        self.ledger = ledger
        self.settings = settings
        self._clock = clock
        self._tokens = frozenset(settings.staff_tokens)
        self.pin = PinLock(settings.pin_hash, free_attempts=settings.free_attempts,
                           base_s=settings.lockout_base_s, max_s=settings.lockout_max_s, clock=clock)

    def is_staff_card(self, token: DonorToken) -> bool:
        return token.hex in self._tokens

    def _open(self, by: str, how: str) -> StaffSession:
        s = StaffSession(self.ledger, by, clock=self._clock)
        s.opened_seq = s.record("menu_open", via=how).seq
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
            self.ledger.append("admin_action", {"action": "pin_failed", "by": "pin", "failures": attempt.failures})
            if attempt.locked_for_s > 0:
                self.ledger.append("admin_action", {"action": "pin_locked", "by": "pin",
                                                    "seconds": int(attempt.locked_for_s)})
        return None, attempt

    def idle_expired(self, session: StaffSession, last_input: float) -> bool:
        """Whether the menu should close itself: no touch or key for ``idle_timeout_s``."""
        return session.open and self._clock() - last_input >= self.settings.idle_timeout_s

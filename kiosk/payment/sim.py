"""The simulated payment terminal: the default, and the stand-in for a certified one.

It behaves like a provider where it matters for crash safety:

- its state (card balances and every charge by idempotency key) lives in its
  own SQLite file, committed with ``synchronous=FULL`` before it answers, so a
  ``lookup`` after a kiosk restart finds a charge whose answer was lost;
- a repeated idempotency key returns the first answer and never debits twice;
- it can be told to decline, to time out (with the charge applied or not), to
  be unreachable, or to be slow;
- it refunds like Square's Refunds API: one refund per idempotency key, whose
  status is PENDING, COMPLETED, REJECTED or FAILED (``refund_steps``), and a
  PENDING one moves on when it is asked again with the same key. REJECTED and
  FAILED are final for that refund; a new refund (a new key) of the same
  payment plays the steps left after them, so one script can say "the first
  request is refused, the second completes".

It debits the simulated card's balance. A real terminal reads the card itself;
the simulator is told which card is on it through :meth:`card_seen` (the kiosk
forwards its reader's taps). The first time it sees a card it adopts the
balance the reader read (or ``default_balance_yen``); after that its own
record wins, because it is the one that made the debits.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from kiosk.payment.base import ChargeResult, PaymentTerminal, RefundRefused, RefundResult, TerminalUnavailable

SimMode = Literal["approve", "decline", "timeout_applied", "timeout_lost", "offline"]
"""``approve`` normal; ``decline`` refuse every charge; ``timeout_applied`` debit (or refund) but lose the
answer; ``timeout_lost`` lose the request (nothing debited or refunded); ``offline`` like ``timeout_lost``, and
lookups fail too."""

SIM_MODES: tuple[str, ...] = ("approve", "decline", "timeout_applied", "timeout_lost", "offline")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cards (token TEXT PRIMARY KEY, balance_yen INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS charges (idem TEXT PRIMARY KEY, amount_yen INTEGER NOT NULL, token TEXT,"
    " status TEXT NOT NULL CHECK (status IN ('approved', 'declined')), provider_ref TEXT, reason TEXT,"
    " at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS refunds (idem TEXT PRIMARY KEY, refund_id TEXT NOT NULL UNIQUE,"
    " provider_ref TEXT NOT NULL, amount_yen INTEGER NOT NULL, status TEXT NOT NULL, steps TEXT NOT NULL,"
    " at_ms INTEGER NOT NULL)",
)
REFUND_STATUSES = ("PENDING", "COMPLETED", "REJECTED", "FAILED")


class SimulatedTerminal(PaymentTerminal):
    """A durable simulated terminal. ``mode``, ``slow_ms`` and ``decline_reason`` may be changed at any time."""

    method = "sim"

    def __init__(self, path: str | os.PathLike, *, mode: SimMode = "approve", slow_ms: int = 0,
                 decline_reason: str = "declined by the card issuer", default_balance_yen: int = 2000,
                 sleep: Callable[[float], None] = time.sleep):
        if mode not in SIM_MODES:
            raise ValueError(f"unknown simulator mode {mode!r} (one of {', '.join(SIM_MODES)})")
        self.path = Path(path)
        self.mode: SimMode = mode
        self.slow_ms = slow_ms
        """Delay before the answer, *after* the charge is durable: a crash in it loses only the answer."""
        self.decline_reason = decline_reason
        self.default_balance_yen = default_balance_yen
        self.refund_steps: tuple[str, ...] = ("COMPLETED",)
        """The statuses each *new* refund goes through: the first answer, then one step each time the same
        refund is asked for again (it stays at the last). E.g. ``("PENDING", "COMPLETED")`` or ``("REJECTED",)``.
        A refund that reaches REJECTED or FAILED stays there, and the steps after it are what the *next* new
        refund of the same payment plays: ``("REJECTED", "COMPLETED")`` is a refused first request and a
        completed second one; ``("FAILED", "PENDING", "COMPLETED")`` a failed one, then one that is pending
        and completes when asked again."""
        self._sleep = sleep
        self._card: tuple[str, int | None] | None = None
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL, as for the ledger: a provider does not forget a charge it approved.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        for stmt in _SCHEMA:
            self._db.execute(stmt)

    # --- the card on the terminal ---------------------------------------------------
    def card_seen(self, token_hex: str | None, balance_yen: int | None) -> None:
        self._card = None if token_hex is None else (token_hex, balance_yen)

    def balance(self, token_hex: str) -> int | None:
        """The simulator's own balance for a card it has debited before (``None``: never seen)."""
        row = self._db.execute("SELECT balance_yen FROM cards WHERE token = ?", (token_hex,)).fetchone()
        return None if row is None else row[0]

    # --- the seam ---------------------------------------------------------------------
    def charge(self, amount_yen: int, idempotency_key: str, *, reference: str | None = None) -> ChargeResult:
        if amount_yen < 1:
            raise ValueError("a charge is at least 1 yen")
        with self._lock:
            mode = self.mode
            if mode in ("timeout_lost", "offline"):
                self._delay()
                return ChargeResult.unknown("timeout: no answer from the terminal")
            result = self._apply(amount_yen, idempotency_key, mode)
            # The answer is held back only after the charge is durable, so a crash in the delay
            # leaves what a real provider leaves: an applied charge whose answer never arrived.
            self._delay()
            if mode == "timeout_applied":
                return ChargeResult.unknown("timeout: the answer was lost")
            return result

    def _delay(self) -> None:
        if self.slow_ms > 0:
            self._sleep(self.slow_ms / 1000)

    def lookup(self, idempotency_key: str, *, brief: bool = False) -> ChargeResult:
        if self.mode == "offline":
            raise TerminalUnavailable("simulated terminal is offline")
        row = self._db.execute("SELECT status, provider_ref, reason FROM charges WHERE idem = ?",
                               (idempotency_key,)).fetchone()
        if row is None:
            return ChargeResult.not_found()
        status, ref, reason = row
        return ChargeResult.approved(ref) if status == "approved" else ChargeResult.declined(reason, ref)

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction on the simulator's file: committed when the block ends (unless it rolled
        back itself), rolled back when it raises."""
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
            if self._db.in_transaction:
                cur.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        finally:
            cur.close()

    def _apply(self, amount_yen: int, idem: str, mode: SimMode) -> ChargeResult:
        with self._immediate() as cur:
            row = cur.execute("SELECT status, provider_ref, reason FROM charges WHERE idem = ?", (idem,)).fetchone()
            if row is not None:  # the same key again: replay the first answer, debit nothing
                cur.execute("ROLLBACK")
                status, ref, reason = row
                return ChargeResult.approved(ref) if status == "approved" else ChargeResult.declined(reason, ref)
            token = self._card[0] if self._card else None
            ref = "sim-" + secrets.token_hex(8)
            status, reason = "approved", None
            if token is None:
                status, reason = "declined", "no card on the terminal"
            elif mode == "decline":
                status, reason = "declined", self.decline_reason
            else:
                read = self._card[1] if self._card else None
                start = read if read is not None else self.default_balance_yen
                cur.execute("INSERT OR IGNORE INTO cards (token, balance_yen) VALUES (?, ?)", (token, start))
                balance = cur.execute("SELECT balance_yen FROM cards WHERE token = ?", (token,)).fetchone()[0]
                if balance < amount_yen:
                    status, reason = "declined", f"insufficient balance (¥{balance})"
                else:
                    cur.execute("UPDATE cards SET balance_yen = balance_yen - ? WHERE token = ?", (amount_yen, token))
            cur.execute("INSERT INTO charges (idem, amount_yen, token, status, provider_ref, reason, at_ms)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (idem, amount_yen, token, status, ref, reason, time.time_ns() // 1_000_000))
        return ChargeResult.approved(ref) if status == "approved" else ChargeResult.declined(reason or "", ref)

    # --- refunds (the maintenance menu) ---------------------------------------------------
    can_refund = True

    def refund(self, provider_ref: str, amount_yen: int, idempotency_key: str, reason: str) -> RefundResult:
        """Refund an approved charge. The same key again is the same refund: it answers with that refund's status
        now (moving a PENDING one on by one of its steps) and never credits the card twice."""
        mode = self.mode
        if mode in ("offline", "timeout_lost"):
            raise TerminalUnavailable("simulated terminal is offline" if mode == "offline"
                                      else "timeout: no answer from the terminal")
        with self._lock, self._immediate() as cur:
            result = self._refund(cur, provider_ref, amount_yen, idempotency_key)
        if mode == "timeout_applied":  # made and durable, the answer lost: as for a charge
            raise TerminalUnavailable("timeout: the answer was lost")
        return result

    def _refund(self, cur: sqlite3.Cursor, ref: str, amount_yen: int, idem: str) -> RefundResult:
        row = cur.execute("SELECT refund_id, provider_ref, amount_yen, status, steps FROM refunds WHERE idem = ?",
                          (idem,)).fetchone()
        if row is not None:
            refund_id, was_ref, was_amount, status, steps = row
            if (was_ref, was_amount) != (ref, amount_yen):
                raise RefundRefused("the refund key was used for another refund")
            rest = [x for x in steps.split(",") if x]
            if status == "PENDING" and rest:  # only a PENDING refund moves: the others are final
                status, rest = rest[0], rest[1:]
                cur.execute("UPDATE refunds SET status = ?, steps = ? WHERE idem = ?", (status, ",".join(rest), idem))
                self._credit(cur, ref, amount_yen, status)
            return RefundResult(refund_id, status)
        charge = cur.execute("SELECT amount_yen, status FROM charges WHERE provider_ref = ?", (ref,)).fetchone()
        if charge is None or charge[1] != "approved":
            raise RefundRefused(f"no approved payment {ref}")
        done = cur.execute("SELECT COALESCE(SUM(amount_yen), 0) FROM refunds WHERE provider_ref = ?"
                           " AND status IN ('PENDING', 'COMPLETED')", (ref,)).fetchone()[0]
        if amount_yen < 1 or amount_yen + done > charge[0]:
            raise RefundRefused(f"the refund exceeds the payment (¥{charge[0]}, ¥{done} refunded)")
        steps = [x for x in self.refund_steps if x in REFUND_STATUSES] or ["COMPLETED"]
        ended = cur.execute("SELECT idem, steps FROM refunds WHERE provider_ref = ? AND status IN ('REJECTED',"
                            " 'FAILED') AND steps != '' ORDER BY rowid DESC LIMIT 1", (ref,)).fetchone()
        if ended is not None:  # this payment's script goes on from the refused or failed refund, once
            steps = ended[1].split(",")
            cur.execute("UPDATE refunds SET steps = '' WHERE idem = ?", (ended[0],))
        refund_id = "simrf-" + secrets.token_hex(8)
        cur.execute("INSERT INTO refunds (idem, refund_id, provider_ref, amount_yen, status, steps, at_ms)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (idem, refund_id, ref, amount_yen, steps[0], ",".join(steps[1:]), time.time_ns() // 1_000_000))
        self._credit(cur, ref, amount_yen, steps[0])
        return RefundResult(refund_id, steps[0])

    @staticmethod
    def _credit(cur: sqlite3.Cursor, ref: str, amount_yen: int, status: str) -> None:
        if status == "COMPLETED":  # the money is back on the card only when the refund completes
            cur.execute("UPDATE cards SET balance_yen = balance_yen + ? WHERE token ="
                        " (SELECT token FROM charges WHERE provider_ref = ?)", (amount_yen, ref))

    def set_refund(self, refund_id: str, *steps: str) -> None:
        """Tests: what the refund ``refund_id`` answers from the next time it is asked for (the bank decided)."""
        with self._lock:
            self._db.execute("UPDATE refunds SET steps = ? WHERE refund_id = ?", (",".join(steps), refund_id))

    def refunds(self) -> list[dict]:
        """Every refund, oldest first."""
        rows = self._db.execute("SELECT idem, refund_id, provider_ref, amount_yen, status FROM refunds"
                                " ORDER BY rowid").fetchall()
        keys = ("idem", "refund_id", "provider_ref", "amount_yen", "status")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def health(self) -> tuple[str, str]:
        if self.mode == "offline":
            return "offline", "simulated terminal (offline mode)"
        return "ready", f"simulated terminal ({self.mode}): no real money"

    # --- inspection (tests, `kiosk demo` summary) ----------------------------------------
    def charges(self) -> list[dict]:
        """Every recorded charge, oldest first."""
        rows = self._db.execute("SELECT idem, amount_yen, token, status, provider_ref, reason FROM charges"
                                " ORDER BY rowid").fetchall()
        keys = ("idem", "amount_yen", "token", "status", "provider_ref", "reason")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def close(self) -> None:
        self._db.close()

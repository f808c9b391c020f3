"""Square Terminal: a certified terminal driven through Square's Terminal API (the ``squareup`` SDK).

The donor taps the card (or shows a QR code) on the Square Terminal, not on
our reader; the terminal and Square do the e-money debit. This module maps the
Terminal API onto the two calls of the payment seam (:mod:`kiosk.payment.base`).

charge(amount, idem)
    1. The exact CreateTerminalCheckout body is written to the adapter's journal
       (SQLite, ``synchronous=FULL``) *before* it is sent, keyed by ``idem``.
    2. CreateTerminalCheckout with ``idempotency_key = idem``: Square answers a
       repeat of the same key and body with the same checkout, never a second one.
    3. GetTerminalCheckout every ``poll_interval_ms`` through PENDING,
       IN_PROGRESS, CANCEL_REQUESTED to COMPLETED (``approved``, the payment id is
       the provider reference) or CANCELED (``declined`` with ``cancel_reason``).
       A COMPLETED checkout that names several payments (a declined tap, then one
       that paid) is resolved with GetPayment to the one payment that took the
       money; when that cannot be told, the gift is recorded as ``checkout:<id>``.
       A CANCELED checkout that lists payments is asked about the same way: one COMPLETED payment for the amount
       is the gift (Square reports some device errors as BUYER_CANCELED), one that may still move money or no
       answer is ``unknown``, and only declined taps (FAILED, CANCELED payments) leave it ``declined``.
       Nothing final by ``deadline_s + answer_grace_s``: ``unknown``.
    429 and 5xx answers and network errors are retried with the project's one
    backoff (:mod:`server_sync.wire.retry`, honouring ``Retry-After``); the SDK's
    own retries are switched off so there is exactly one policy. No network
    problem ever reaches the caller as an exception. Every answer is checked
    against what was asked (the checkout's id, amount and currency, a create's
    reference and device; a refund's payment, amount and id): one about
    something else is asked again like an unreadable one, never acted on.

lookup(idem), after a crash or an ``unknown``
    No journal row: the create was never sent, so ``not_found``. A journaled
    checkout id: GetTerminalCheckout. No id (the create's answer was lost) and the
    create younger than :data:`IDEM_KEPT_S`: re-send the identical create (the same
    checkout comes back, or, if the first create never reached Square, the one and
    only checkout for that key is made now). Older (Square may have forgotten the
    key, and the same create would make a second checkout): never created again;
    SearchTerminalCheckouts on the device from when the create was journaled finds
    the checkout it made (the same reference, sum, note and payment type), or shows
    that the create never reached Square (``not_found``). Then follow it. A
    checkout still PENDING is canceled first: the kiosk that asked for it has
    restarted or given up, so nobody is looking at a screen for it. An
    IN_PROGRESS one is followed (a donor is tapping right now); not final within
    ``answer_grace_s`` (``brief``, the retry between donors: within
    :data:`BRIEF_LOOKUP_S`) raises :class:`TerminalUnavailable`, so the intent
    stays open and is asked about again later. A completed payment is never lost
    and there is never a second checkout for one intent.

Cancel
    :meth:`SquareTerminal.request_cancel` (any thread: the donor pressed やめる)
    makes the charge loop send CancelTerminalCheckout. Square refuses to cancel an
    e-money checkout from the API after an error on the terminal; then
    :attr:`SquareTerminal.live` says ``cancel_refused`` (the screen asks the donor
    to finish or cancel on the terminal) and the loop keeps following.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from square import Square
from square.core.api_error import ApiError

from kiosk.ledger.clock import Clock, SystemClock
from kiosk.payment.base import (
    ChargeResult,
    PaymentTerminal,
    RefundRefused,
    RefundResult,
    TerminalProgress,
    TerminalSetupError,
    TerminalUnavailable,
)
from server_sync.wire.retry import Backoff, Transient, retry, retry_after_of

log = logging.getLogger(__name__)
# httpx logs every request at INFO: one line per poll would bury the kiosk's own log.
logging.getLogger("httpx").setLevel(logging.WARNING)

T = TypeVar("T")

FINAL = ("COMPLETED", "CANCELED")
REFERENCE_MAX = 40
"""Square's limit on a checkout's ``reference_id`` (the fake Square enforces it, as Square does)."""
PAYMENT_ID_WAIT_S = 10.0
"""How long a COMPLETED checkout whose answer names no payment is asked about again for its payment id (Square's
payment lists are eventually consistent, "several seconds"); then the gift is recorded as ``checkout:<id>``."""
PAYMENT_PICK_S = 10.0
"""How long the payments a COMPLETED checkout names are asked about (GetPayment) to find the one that took the
money, when it names more than one; then the gift is recorded as ``checkout:<id>``."""
TOOK_MONEY = ("APPROVED", "COMPLETED")
"""A Square payment's statuses that mean the donor's money was taken (FAILED and CANCELED took none; PENDING has
not yet)."""
IDEM_KEPT_S = 6 * 3600.0
"""How old an intent's create may be for :meth:`SquareTerminal.lookup` to re-send it under the same idempotency
key. Square keeps idempotency keys for a limited time and publishes no figure (a day is the usual one, and Square's
own staff ask "what is the longest delay you need between the request and a retry"); a create repeated after Square
forgot its key makes a *second* checkout, which the donor never asked for, while the first may have been paid. Six
hours is a quarter of a day: margin for a shorter retention than the usual day and for a kiosk clock that was off,
and still far longer than any ordinary retry (a restart, the retry between donors: seconds to minutes). Past it,
lookup searches for the checkout instead (:meth:`SquareTerminal._search`): a search never makes one."""
SEARCH_MARGIN_S = 3600.0
"""How far before the journaled time of a create :meth:`SquareTerminal._search` starts looking: room for a kiosk
clock that was ahead of Square's when the create was written."""
CHECKOUTS_KEPT_S = 29 * 86400.0
"""Square keeps Terminal checkouts searchable for 30 days: a create journaled longer ago than this cannot be shown
never to have reached Square, so its intent stays open (and the log says to look on the Square Dashboard)."""
BRIEF_LOOKUP_S = 2.0
"""How long a ``lookup(brief=True)`` (the retry between donors) follows a checkout that is not final: a glance. A
checkout still in progress then stays open for the next retry instead of holding the kiosk for ``answer_grace_s``
(a donor who walked away from an e-money error the API cannot cancel; a cancel Square leaves at CANCEL_REQUESTED
for hours)."""
SQUARE_BACKOFF = Backoff(base=0.5, cap=8.0, longest_retry_after=60.0)
"""Short windows: a donor is waiting at the terminal, and the charge has its own deadline."""
NO_RETRIES: dict[str, Any] = {"max_retries": 0}  # the SDK's own retry loop is off: ours is the one policy

_JOURNAL = (
    "CREATE TABLE IF NOT EXISTS checkouts (idem TEXT PRIMARY KEY, body TEXT NOT NULL, checkout_id TEXT,"
    " status TEXT, payment_id TEXT, cancel_reason TEXT, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS refunds (idem TEXT PRIMARY KEY, payment_id TEXT NOT NULL, amount_yen INTEGER NOT NULL,"
    " refund_id TEXT, status TEXT, created_ms INTEGER NOT NULL)",
)
_JOURNAL_ADDED = {"boot_id": "TEXT", "created_mono_ms": "INTEGER"}
"""Columns of ``checkouts`` added after the first release (NULL in a row an older kiosk wrote): the boot and the
since-boot time the create was journaled in, so a lookup in the same boot measures its age without trusting the
wall clock (a Raspberry Pi has no RTC: until NTP syncs, its wall clock may be days behind)."""


def boot_id() -> str:
    """This boot's id (Linux: ``/proc/sys/kernel/random/boot_id``; "" where there is none)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text("ascii").strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class Journaled:
    """When an intent's create was journaled: wall ms, and (rows since :data:`_JOURNAL_ADDED`) the boot and its
    since-boot ms."""

    wall_ms: int
    boot_id: str | None
    mono_ms: int | None


class SquareSetupError(TerminalSetupError):
    """The Square configuration cannot be used (no token file, no device). ``str()`` says what to do."""


class RefundSetupRefused(SquareSetupError, RefundRefused):
    """Square refused a refund, or the question which payment to refund, because of the kiosk's payment settings
    (:data:`REFUND_SETUP_REFUSED`: the access token refused, or not allowed to refund). Nothing was refunded, and
    the payment is not what is wrong: once the settings are fixed the same refund can be made (the same key: never
    twice). A :class:`RefundRefused` (Square answered, nothing moved: ``kiosk payment test`` prints "NOT refunded"
    with the payment id) and a :class:`TerminalSetupError`, which the menu's refund page says as the settings, with
    whom to ask (``kiosk.staff.words``), not as a refusal to look up on the Square Dashboard."""


@dataclass(frozen=True)
class SquareLive:
    """What the terminal is doing now, for the donor's screen and the status page (replaced, never mutated)."""

    status: str = "IDLE"
    """``IDLE``, ``CREATING``, a Square checkout status, or ``UNREACHABLE`` (requests failing, still trying)."""
    checkout_id: str | None = None
    amount_yen: int | None = None
    cancel_requested: bool = False
    cancel_refused: bool = False
    """Square would not cancel from the API (e-money after a terminal error): the donor finishes on the terminal."""
    last_outcome: str | None = None
    """The last finished charge: ``approved``, ``declined: …`` or ``unknown: …``."""
    last_ok_mono: float | None = None
    """When Square last answered a request (monotonic seconds)."""
    last_error: str | None = None
    setup_error: str | None = None
    """Square refused the last create for the terminal's setup (HTTP status and Square's words): no checkout can
    be made until staff fix it. Cleared when a create succeeds; :meth:`SquareTerminal.health` says ``error``."""


class _Refused(Exception):
    """Square answered with a non-retryable error. ``retried``: an earlier try of the same request went
    unanswered or failed on Square's side, so it may have been carried out although this answer is a refusal."""

    def __init__(self, exc: ApiError, retried: bool = False):
        self.status = exc.status_code
        self.retried = retried
        errs = exc.errors or []
        self.codes = [str(e.code) for e in errs]
        self.detail = "; ".join(f"{e.code}: {e.detail}" if e.detail else str(e.code) for e in errs)
        super().__init__(f"HTTP {self.status}: {self.detail}")


class _DeadlinePassed(Exception):
    """The next retry would end after the caller's deadline."""


class _WrongAnswer(ValueError):
    """A well-formed answer that is not about what was asked: another checkout or refund, or another sum or
    currency than the journaled request (a proxy that mixed two answers up, a cached answer). Acting on it could
    record another payment as this gift, cancel somebody else's checkout, or void a donation whose money never
    went back, so it is treated like an unreadable answer (a ``ValueError``): asked again under the same key
    until the caller's deadline, then ``unknown``."""


def _check_checkout(co: Any, body: dict[str, Any], checkout_id: str | None) -> Any:
    """``co`` if it is the checkout asked about: ``checkout_id`` when it is known, else (a create's answer) the
    journaled body's reference and device; always the body's amount and currency. Raises :class:`_WrongAnswer`."""
    if co is None:
        raise _WrongAnswer("Square's answer holds no checkout")
    if checkout_id is not None and co.id != checkout_id:
        raise _WrongAnswer(f"asked about checkout {checkout_id}, Square's answer is about {co.id}")
    want = body["amount_money"]
    money = getattr(co, "amount_money", None)
    got = (getattr(money, "amount", None), str(getattr(money, "currency", None)))
    if got != (want["amount"], want["currency"]):
        raise _WrongAnswer(f"checkout {co.id} is for {got[0]} {got[1]}, the request was {want['amount']} "
                           f"{want['currency']}")
    if checkout_id is None:
        ref, device = body.get("reference_id"), body["device_options"]["device_id"]
        got_device = getattr(getattr(co, "device_options", None), "device_id", None)
        if (ref is not None and co.reference_id != ref) or (got_device is not None and got_device != device):
            raise _WrongAnswer(f"the create's answer is checkout {co.id} of reference {co.reference_id} on device "
                               f"{got_device}, the request was reference {ref} on device {device}")
    return co


def _same_request(co: Any, body: dict[str, Any]) -> bool:
    """Whether the checkout ``co`` (a search's answer) is what the create ``body`` asked for: its reference, sum,
    currency, note, payment type and device (a field Square's answer leaves out is not compared)."""
    money = getattr(co, "amount_money", None)
    want = body["amount_money"]
    if (getattr(money, "amount", None), str(getattr(money, "currency", None))) != (want["amount"], want["currency"]):
        return False
    if getattr(co, "reference_id", None) != body.get("reference_id") or (getattr(co, "note", None) or "") != (
            body.get("note") or ""):
        return False
    ptype = getattr(co, "payment_type", None)
    device = getattr(getattr(co, "device_options", None), "device_id", None)
    return ((ptype is None or str(ptype) == body.get("payment_type", "CARD_PRESENT"))
            and (device is None or device == body["device_options"]["device_id"]))


def _rfc3339(wall_ms: int) -> str:
    """``wall_ms`` as Square writes times: RFC 3339 in UTC, milliseconds."""
    return datetime.fromtimestamp(wall_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _check_refund(refund: Any, payment_id: str, amount_yen: int, refund_id: str | None = None) -> Any:
    """``refund`` if it is a refund of ``payment_id`` for ``amount_yen`` JPY (and ``refund_id`` when it is
    known). Raises :class:`_WrongAnswer`."""
    if refund is None:
        raise _WrongAnswer("Square's answer holds no refund")
    money = getattr(refund, "amount_money", None)
    got = (refund.payment_id, getattr(money, "amount", None), str(getattr(money, "currency", None)))
    if got != (payment_id, amount_yen, "JPY") or (refund_id is not None and refund.id != refund_id):
        raise _WrongAnswer(f"refund answer {refund.id} is of payment {got[0]} for {got[1]} {got[2]}; asked about "
                           f"{refund_id or 'a refund'} of payment {payment_id} for {amount_yen} JPY")
    return refund


def _payment_ids(checkout: Any) -> list[str]:
    """The payments a checkout lists, each once, in Square's order (a declined tap's FAILED payment among them)."""
    return [str(p) for p in dict.fromkeys(checkout.payment_ids or [])]


def _check_payment(payment: Any, payment_id: str) -> Any:
    """``payment`` if it is GetPayment's answer about ``payment_id``. Raises :class:`_WrongAnswer`."""
    if payment is None:
        raise _WrongAnswer("Square's answer holds no payment")
    if payment.id != payment_id:
        raise _WrongAnswer(f"asked about payment {payment_id}, Square's answer is about {payment.id}")
    return payment


def _took_money(payment: Any, body: dict[str, Any]) -> bool:
    """Whether ``payment`` took the journaled request's money: APPROVED or COMPLETED, for its amount and currency."""
    want = body["amount_money"]
    money = getattr(payment, "amount_money", None)
    got = (getattr(money, "amount", None), str(getattr(money, "currency", None)))
    return str(payment.status) in TOOK_MONEY and got == (want["amount"], want["currency"])


NOTHING_CREATED = (400, 401, 403, 404)
"""Square's answers to a create that prove no checkout was made: the request was malformed, not authorised, or
named a device or location Square does not know. Every other refusal (408, 409, ...) leaves the outcome open.
Such a refusal comes before any card is asked for, so it is never about the donor's card: it is the terminal's
setup, and every tap would fail the same way (``ChargeResult.declined(unavailable=True)``)."""

SETUP_FIX = {
    400: "Square refused the request: check [payment.square] (payment_type, device, location) in the config",
    401: "Square refused the access token (wrong, expired or revoked): put a valid one in the token file",
    403: "Square does not allow this (the token's permissions, the location, or e-money for the location)",
    404: "Square does not know the device or location: check location_id, or pair the terminal again "
         "(kiosk payment pair)",
}
"""What to fix, per refused create's status (the log; docs/payment.md)."""

REFUND_SETUP_REFUSED = (401, 403)
"""Square's refusals of a refund (or of the checkout it is asked about first) that are the kiosk's settings, not the
payment's: the access token refused (wrong, expired, revoked) or without the permission (``INSUFFICIENT_SCOPES``,
the location). :class:`RefundSetupRefused`."""


def _refund_refused(exc: _Refused, what: str) -> RefundRefused:
    """The error for Square refusing a refund's request: :class:`RefundSetupRefused` for the settings' statuses
    (:data:`REFUND_SETUP_REFUSED`: not "Square does not know checkout …" for a refused token), else
    :class:`RefundRefused` saying ``what``, with Square's words."""
    if exc.status in REFUND_SETUP_REFUSED:
        why = f"HTTP {exc.status}" + (f": {exc.detail}" if exc.detail else "")
        # Square's words first: the menu's English mode shows the first 100 characters, for the maintainer.
        return RefundSetupRefused(f"Square refused the refund: {why} (the kiosk's payment settings: "
                                  f"{SETUP_FIX[exc.status or 0]}; nothing was refunded)")
    return RefundRefused(f"{what}: {exc.detail or exc.status}")


def _nothing_created(exc: _Refused) -> bool:
    """Whether a refused create proves that Square holds no checkout under its key: one of
    :data:`NOTHING_CREATED`, to the first try (an earlier try that went unanswered may have made one), and not
    IDEMPOTENCY_KEY_REUSED (a checkout exists under another body)."""
    return (exc.status in NOTHING_CREATED and not exc.retried
            and not (exc.status == 400 and "IDEMPOTENCY_KEY_REUSED" in exc.codes))


class SquareJournal:
    """The adapter's own durable record: each create body before it is sent, then Square's answers."""

    def __init__(self, path: str | Path, clock: Clock | None = None, boot: str | None = None):
        self.path = Path(path)
        self._clock = clock or SystemClock()
        self._boot = boot_id() if boot is None else boot
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # the body must be on disk before the request leaves
        self._db.execute("PRAGMA busy_timeout=5000")
        for stmt in _JOURNAL:
            self._db.execute(stmt)
        have = {r[1] for r in self._db.execute("PRAGMA table_info(checkouts)")}
        for col, kind in _JOURNAL_ADDED.items():  # a journal an older kiosk made: still loads, rows keep NULL
            if col not in have:
                self._db.execute(f"ALTER TABLE checkouts ADD COLUMN {col} {kind}")

    def body(self, idem: str) -> dict[str, Any] | None:
        row = self._one("SELECT body FROM checkouts WHERE idem = ?", idem)
        return None if row is None else dict(json.loads(row[0]))

    def checkout_id(self, idem: str) -> str | None:
        row = self._one("SELECT checkout_id FROM checkouts WHERE idem = ?", idem)
        return None if row is None else row[0]

    def journaled(self, idem: str) -> Journaled | None:
        """When the create of ``idem`` was first journaled (just before it was first sent)."""
        row = self._one("SELECT created_ms, boot_id, created_mono_ms FROM checkouts WHERE idem = ?", idem)
        return None if row is None else Journaled(int(row[0]), row[1], row[2])

    def put(self, idem: str, body: dict[str, Any]) -> dict[str, Any]:
        """Record the body for ``idem`` (the first one wins: a retry re-sends exactly what was sent), with when."""
        now = self._clock.wall_ms()
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO checkouts (idem, body, created_ms, updated_ms, boot_id,"
                             " created_mono_ms) VALUES (?,?,?,?,?,?)",
                             (idem, json.dumps(body, sort_keys=True, ensure_ascii=False), now, now, self._boot,
                              self._clock.mono_ms()))
        found = self.body(idem)
        assert found is not None
        return found

    def update(self, idem: str, checkout: Any, payment_id: str | None = None) -> None:
        """Record Square's answer about ``idem``'s checkout. The payment id stored is ``payment_id`` (the one that
        took the money) when given, else a COMPLETED checkout's only payment, else none (several: not yet resolved;
        or the checkout is not COMPLETED, so what it lists are declined taps, FAILED payments that took nothing)."""
        pids = list(dict.fromkeys(getattr(checkout, "payment_ids", None) or []))
        if payment_id is None and len(pids) == 1 and str(checkout.status) == "COMPLETED":
            payment_id = pids[0]
        with self._lock:
            self._db.execute(
                "UPDATE checkouts SET checkout_id = ?, status = ?, payment_id = ?, cancel_reason = ?, updated_ms = ?"
                " WHERE idem = ?",
                (checkout.id, checkout.status, payment_id, _reason(checkout), self._clock.wall_ms(), idem))

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._db.execute("SELECT idem, checkout_id, status, payment_id, cancel_reason FROM checkouts"
                                   " ORDER BY rowid")
            keys = [d[0] for d in cur.description]
            return [dict(zip(keys, r, strict=True)) for r in cur.fetchall()]

    def refund_put(self, idem: str, payment_id: str, amount_yen: int) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO refunds (idem, payment_id, amount_yen, created_ms)"
                             " VALUES (?,?,?,?)", (idem, payment_id, amount_yen, time.time_ns() // 1_000_000))

    def refund_update(self, idem: str, refund_id: str | None, status: str | None) -> None:
        with self._lock:
            self._db.execute("UPDATE refunds SET refund_id = ?, status = ? WHERE idem = ?", (refund_id, status, idem))

    def _one(self, sql: str, *args: Any) -> Any:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _reason(checkout: Any) -> str | None:
    r = getattr(checkout, "cancel_reason", None)
    return None if r is None else str(r)


def read_token(path: str | Path) -> str:
    """The access token in ``path`` (one line). Raises :class:`SquareSetupError` with what to do."""
    p = Path(path)
    try:
        token = p.read_text("utf-8").strip()
    except FileNotFoundError:
        raise SquareSetupError(f"Square access token file {p} is missing (docs/payment.md: credentials)") from None
    except OSError as exc:
        raise SquareSetupError(f"cannot read the Square access token file {p}: {exc.strerror}") from None
    if not token or any(c.isspace() for c in token):
        raise SquareSetupError(f"Square access token file {p} must hold the token on one line")
    return token


class SquareTerminal(PaymentTerminal):
    """A Square Terminal through the Terminal API. ``charge`` and ``lookup`` run on one thread (the
    donation worker); :meth:`request_cancel` and :attr:`live` may be used from any thread."""

    method = "square"
    external = True

    def __init__(self, *, base_url: str, token: str, location_id: str, device_id: str, journal: str | Path,
                 payment_type: str = "FELICA_TRANSPORTATION_GROUP", deadline_s: int = 120,
                 answer_grace_s: int = 30, poll_interval_ms: int = 1000, request_timeout_s: float = 10.0,
                 note: str = "", reference_prefix: str = "", clock: Clock | None = None,
                 backoff: Backoff = SQUARE_BACKOFF,
                 rng: random.Random | None = None, on_live: Callable[[SquareLive], None] | None = None,
                 boot: str | None = None):
        if not device_id:
            raise SquareSetupError("no Square Terminal is paired: run `kiosk payment pair` (docs/payment.md)")
        self.location_id = location_id
        self.device_id = device_id
        self.payment_type = payment_type
        self.deadline_s = deadline_s
        self.answer_grace_s = answer_grace_s
        self.poll_s = poll_interval_ms / 1000
        self.note = note
        self.reference_prefix = reference_prefix
        self._clock = clock or SystemClock()
        self._backoff = backoff
        self._rng = rng
        self.on_live = on_live
        self._http = httpx.Client(timeout=request_timeout_s)
        self.client = Square(base_url=base_url.rstrip("/"), token=token, httpx_client=self._http)
        self.journal = SquareJournal(journal, self._clock, boot)
        self._cancel = threading.Event()
        self.live = SquareLive()
        self._device_check: tuple[str, str, float] | None = None
        self._device_checking = threading.Event()
        self._device_lock = threading.Lock()
        self._device_started = self._device_done = 0

    # --- live state --------------------------------------------------------------------------
    def _set_live(self, **changes: Any) -> None:
        self.live = replace(self.live, **changes)  # one reference assignment: readers never see half of it
        if self.on_live is not None:
            try:
                self.on_live(self.live)
            except Exception:  # a drawing problem must not break a payment
                log.exception("on_live callback failed")

    def progress(self) -> TerminalProgress:
        live = self.live
        return TerminalProgress(live.status, live.cancel_requested, live.cancel_refused)

    def request_cancel(self) -> None:
        """The donor pressed やめる: cancel the checkout in progress (thread-safe; the charge loop sends it)."""
        self._cancel.set()
        self.live = replace(self.live, cancel_requested=True)  # no callback: that runs on the charging thread

    # --- HTTP with the one retry policy ---------------------------------------------------------
    def _call(self, fn: Callable[[], T], until: float, *, live: bool = True) -> T:
        """``fn()`` retried on 429, 5xx and network errors until ``until`` (monotonic seconds).

        Raises :class:`_Refused` for any other Square error and :class:`_DeadlinePassed` when the next try
        would start after ``until``. ``live=False`` (refunds, on the menu's thread) leaves :attr:`live`
        alone: only the charging thread publishes the donor's screen.
        """
        set_live = self._set_live if live else (lambda **_kw: None)

        retried = False

        def classify(exc: Exception) -> Transient | None:
            if isinstance(exc, ApiError):
                code = exc.status_code or 0
                # 408 is Square's REQUEST_TIMEOUT: whether the request was carried out is not known. A 2xx
                # ApiError is the SDK's way of saying a success's body could not be read (cut short, or changed
                # on the way). Every request here is safe to send again (an idempotency key, or a read).
                if code == 429 or code >= 500 or code in (0, 408) or 200 <= code < 300:
                    return Transient(retry_after_of(httpx.Headers(exc.headers or {}), self._clock.now()))
                return None
            # RequestError: network errors, and also an answer httpx cannot decode (a Content-Encoding its body
            # does not match) or too many redirects; ValueError: a garbled body.
            if isinstance(exc, (httpx.RequestError, ValueError)):
                return Transient()
            return None

        def on_retry(exc: Exception, attempt: int, wait: float) -> None:
            nonlocal retried
            retried = True
            why = f"HTTP {exc.status_code}" if isinstance(exc, ApiError) else type(exc).__name__
            if isinstance(exc, _WrongAnswer):
                log.error("Square's answer is not about what was asked (%s), retry %d in %.1fs", exc, attempt + 1, wait)
                why = "wrong answer"
            else:
                log.warning("Square request failed (%s), retry %d in %.1fs", why, attempt + 1, wait)
            set_live(last_error=why, status="UNREACHABLE" if not isinstance(exc, ApiError) else self.live.status)

        def sleep(s: float) -> None:
            if self._clock.monotonic() + s > until:
                raise _DeadlinePassed()
            self._clock.sleep(s)

        try:
            out = retry(fn, classify=classify, backoff=self._backoff, on_retry=on_retry, sleep=sleep, rng=self._rng)
        except ApiError as exc:
            set_live(last_ok_mono=self._clock.monotonic())  # Square answered, it just said no
            raise _Refused(exc, retried) from None
        except (httpx.RequestError, ValueError) as exc:
            set_live(last_error=type(exc).__name__)
            raise _DeadlinePassed() from exc
        set_live(last_ok_mono=self._clock.monotonic(), last_error=None)
        return out

    # Every answer is checked against what was asked (_check_checkout) inside the retried call: a wrong one is
    # asked again, never acted on.
    def _create(self, idem: str, body: dict[str, Any], until: float) -> Any:
        checkout = self._call(lambda: _check_checkout(self.client.terminal.checkouts.create(
            idempotency_key=idem, checkout=body, request_options=NO_RETRIES).checkout,
            body, None), until)
        if self.live.setup_error is not None:  # Square makes checkouts again: the setup was fixed
            self._set_live(setup_error=None)
        return checkout

    def _get(self, checkout_id: str, body: dict[str, Any], until: float, *, live: bool = True) -> Any:
        return self._call(lambda: _check_checkout(self.client.terminal.checkouts.get(
            checkout_id, request_options=NO_RETRIES).checkout, body, checkout_id), until, live=live)

    def _cancel_checkout(self, checkout_id: str, body: dict[str, Any], until: float) -> Any:
        def cancel() -> Any:
            co = self.client.terminal.checkouts.cancel(checkout_id, request_options=NO_RETRIES).checkout
            return None if co is None else _check_checkout(co, body, checkout_id)

        return self._call(cancel, until)

    # --- the seam -----------------------------------------------------------------------------
    def checkout_body(self, amount_yen: int, reference: str | None) -> dict[str, Any]:
        """The CreateTerminalCheckout ``checkout`` object (Square's API reference, TerminalCheckout)."""
        body: dict[str, Any] = {
            "amount_money": {"amount": amount_yen, "currency": "JPY"},
            "device_options": {"device_id": self.device_id, "skip_receipt_screen": True},
            "payment_type": self.payment_type,
            "deadline_duration": f"PT{self.deadline_s}S",
        }
        if reference:
            body["reference_id"] = checkout_reference(self.reference_prefix, reference)
        if self.note:
            body["note"] = self.note[:500]
        return body

    def charge(self, amount_yen: int, idempotency_key: str, *, reference: str | None = None) -> ChargeResult:
        if amount_yen < 1:
            raise ValueError("a charge is at least 1 yen")
        self._cancel.clear()
        self._set_live(status="CREATING", checkout_id=None, amount_yen=amount_yen, cancel_requested=False,
                       cancel_refused=False)
        try:
            result = self._charge(amount_yen, idempotency_key, reference)
        except Exception as exc:  # never an exception to the caller: the intent stays open, lookup settles it
            log.exception("Square charge %s failed unexpectedly", idempotency_key)
            result = ChargeResult.unknown(f"unexpected error: {type(exc).__name__}")
        self._set_live(last_outcome=result.status + (f": {result.reason}" if result.reason else ""))
        return result

    def _charge(self, amount_yen: int, idem: str, reference: str | None) -> ChargeResult:
        until = self._clock.monotonic() + self.deadline_s + self.answer_grace_s
        # Durable before it leaves: after a crash, lookup re-sends exactly these bytes under this key.
        body = self.journal.put(idem, self.checkout_body(amount_yen, reference))
        try:
            checkout = self._create(idem, body, until)
        except _Refused as exc:
            if not _nothing_created(exc):
                # Square may hold a checkout under this key (IDEMPOTENCY_KEY_REUSED: under another body; or an
                # earlier try went unanswered): the intent stays open and lookup settles it.
                return ChargeResult.unknown(f"Square: {exc.detail or exc.status}")
            # Refused before any card was asked for: the terminal's setup, not the donor's card. The donor is told
            # to try later (not "another card": every card fails the same way), and staff see the cause.
            why = f"HTTP {exc.status}" + (f": {exc.detail}" if exc.detail else "")
            log.error("Square refused to create the checkout (%s): nothing was charged; the terminal's setup needs "
                      "fixing before it can take payments: %s", why,
                      SETUP_FIX.get(exc.status or 0, "see docs/payment.md"))
            self._set_live(status="IDLE", setup_error=why)
            return ChargeResult.declined(f"refused by Square (terminal setup): {exc.detail or exc.status}",
                                         unavailable=True)
        except _DeadlinePassed:
            self._set_live(status="UNREACHABLE")
            return ChargeResult.unknown("timeout: Square did not answer the checkout request")
        return self._follow(idem, body, checkout, until, interactive=True)

    def _follow(self, idem: str, body: dict[str, Any], checkout: Any, until: float, *,
                interactive: bool) -> ChargeResult:
        """Poll ``checkout`` until COMPLETED or CANCELED, or until ``until``; a final answer or ``unknown``."""
        cancel_sent = False
        while True:
            self._note(idem, checkout)
            status = str(checkout.status)
            self._set_live(status=status, checkout_id=checkout.id)
            if status == "COMPLETED":
                pids = list(checkout.payment_ids or [])
                if not pids:
                    checkout = self._await_payment_id(idem, body, checkout)
                    pids = list(checkout.payment_ids or [])
                if not pids:
                    # Square says the donor paid but not yet with which payment: the money is taken, so the gift is
                    # recorded (never left unrecorded); refund() resolves the checkout to its payment later.
                    log.error("checkout %s is COMPLETED and Square named no payment in %.0f s: recorded as "
                              "checkout:%s", checkout.id, PAYMENT_ID_WAIT_S, checkout.id)
                    return ChargeResult.approved(f"checkout:{checkout.id}")
                paid, why = self._paying_payment(checkout, body, self._clock.monotonic() + PAYMENT_PICK_S)
                if paid is None:
                    # Several payments and no telling which one took the money: the money is taken all the same, so
                    # the gift is recorded under its checkout, and refund() resolves it when Square can say.
                    log.error("checkout %s is COMPLETED with payments %s: %s; recorded as checkout:%s",
                              checkout.id, pids, why, checkout.id)
                    return ChargeResult.approved(f"checkout:{checkout.id}")
                if len(pids) > 1:
                    log.warning("checkout %s is COMPLETED with payments %s: %s is the one that took the money",
                                checkout.id, pids, paid)
                    self._note(idem, checkout, paid)
                return ChargeResult.approved(paid)
            if status == "CANCELED":
                took = self._canceled_payments(idem, body, checkout)
                if took is not None:
                    return took
                return ChargeResult.declined(_cancel_text(_reason(checkout)), provider_ref=checkout.id, canceled=True)
            want_cancel = (self._cancel.is_set() if interactive else status == "PENDING")
            if want_cancel and not cancel_sent and status in ("PENDING", "IN_PROGRESS"):
                cancel_sent = True
                try:
                    answer = self._cancel_checkout(checkout.id, body, until)
                except _Refused as exc:
                    # Square will not cancel (e-money after a terminal error, or already finishing):
                    # the donor finishes or cancels on the terminal, and we keep following.
                    log.warning("Square refused to cancel checkout %s: %s", checkout.id, exc.detail)
                    self._set_live(cancel_refused=True)
                except _DeadlinePassed:
                    pass
                else:
                    if answer is not None:
                        checkout = answer
                        continue
            if self._clock.monotonic() >= until:
                return ChargeResult.unknown(f"timeout: checkout {checkout.id} still {status} at the deadline")
            self._clock.sleep(self.poll_s)
            try:
                checkout = self._get(checkout.id, body, until)
            except _DeadlinePassed:
                return ChargeResult.unknown(f"timeout: no answer from Square about checkout {checkout.id}")
            except _Refused as exc:
                return ChargeResult.unknown(f"Square: {exc.detail}")

    def _get_payment(self, pid: str, until: float, *, live: bool = True) -> Any:
        """GetPayment ``pid``, its answer checked against the id asked; retried as every call (raises ``_Refused`` or
        ``_DeadlinePassed``)."""
        return self._call(lambda: _check_payment(self.client.payments.get(pid, request_options=NO_RETRIES).payment,
                                                 pid), until, live=live)

    def _paying_payment(self, checkout: Any, body: dict[str, Any], until: float, *,
                        live: bool = True) -> tuple[str | None, str]:
        """The payment of the COMPLETED ``checkout`` that took the money, and why when there is none.

        One payment id: that one (Square's answer was already checked against the request). Several (the donor's
        card was declined, then a second tap paid: Square lists the FAILED payment too, and not always last):
        GetPayment for each, and the one APPROVED or COMPLETED for the request's amount and currency. ``None``
        when none or more than one qualifies, or Square cannot be asked by ``until``: never a guess, since a
        wrong payment id would send a refund to a payment that took no money and hide the gift's payment from
        an auditor matching Square's payments to the ledger."""
        pids = _payment_ids(checkout)
        if len(pids) <= 1:
            return (pids[0], "") if pids else (None, "Square named no payment")
        paid = []
        for pid in pids:
            try:
                pay = self._get_payment(pid, until, live=live)
            except _Refused as exc:
                return None, f"Square would not say what payment {pid} is ({exc.detail or exc.status})"
            except _DeadlinePassed:
                return None, f"Square did not answer about payment {pid}"
            if _took_money(pay, body):
                paid.append(pid)
        if len(paid) != 1:
            return None, (f"{len(paid)} of its payments took the money" if paid else
                          "none of its payments is approved or completed for the amount asked")
        return paid[0], ""

    def _canceled_payments(self, idem: str, body: dict[str, Any], checkout: Any) -> ChargeResult | None:
        """A CANCELED ``checkout`` that lists payments: ``None`` when each is FAILED or CANCELED (declined taps: the
        checkout is declined as usual); ``approved`` when exactly one is COMPLETED for the request's amount and
        currency and none may still move; else ``unknown`` (one APPROVED or PENDING, another sum, or Square not
        saying within :data:`PAYMENT_PICK_S`), so the intent stays open and lookup asks again.

        Square reports some errors on the device as BUYER_CANCELED, so CANCELED alone does not prove that the
        donor was not debited; closing such a checkout as "not charged" would settle the intent as failed, and
        the money Square took could never be recorded."""
        pids = _payment_ids(checkout)
        if not pids:
            return None
        until = self._clock.monotonic() + PAYMENT_PICK_S
        paid: list[str] = []
        open_: list[str] = []
        for pid in pids:
            try:
                pay = self._get_payment(pid, until)
            except (_Refused, _DeadlinePassed) as exc:
                return ChargeResult.unknown(f"checkout {checkout.id} is CANCELED and Square did not say what its "
                                            f"payment {pid} is ({exc})")
            state = str(pay.status)
            if state in ("FAILED", "CANCELED"):
                continue
            (paid if state == "COMPLETED" and _took_money(pay, body) else open_).append(pid)
        if not paid and not open_:
            return None
        if len(paid) == 1 and not open_:
            log.error("checkout %s is CANCELED (%s) but its payment %s took the money: recorded as a gift",
                      checkout.id, _reason(checkout), paid[0])
            self._note(idem, checkout, paid[0])
            return ChargeResult.approved(paid[0])
        log.error("checkout %s is CANCELED (%s) with payments that took or may take money (%s): left open",
                  checkout.id, _reason(checkout), paid + open_)
        return ChargeResult.unknown(f"checkout {checkout.id} is CANCELED but payments {paid + open_} took or may "
                                    "take money")

    def _note(self, idem: str, checkout: Any, payment_id: str | None = None) -> None:
        """Journal Square's latest answer about ``idem``'s checkout, best effort.

        Only the create body (written before the create is sent) is needed for recovery: :meth:`lookup` re-sends
        it and Square answers with the same checkout; the checkout id and status stored here only save that
        request. So a journal that cannot be written (a full disk) must not turn Square's answer into
        ``unknown``: after a COMPLETED one the donor has paid, and the ledger, which keeps room aside for exactly
        this record (kiosk/ledger/store.py ``_ensure_reserve``), is what must record the gift now."""
        try:
            self.journal.update(idem, checkout, payment_id)
        except (sqlite3.Error, OSError) as exc:
            log.error("Square journal not updated for %s (checkout %s %s): %s; Square's answer is used all the "
                      "same", idem, checkout.id, checkout.status, exc)

    def _await_payment_id(self, idem: str, body: dict[str, Any], checkout: Any) -> Any:
        """A COMPLETED ``checkout`` whose answer names no payment: GetTerminalCheckout again every poll until it
        does, for at most :data:`PAYMENT_ID_WAIT_S`. The last answer (which may still name none)."""
        until = self._clock.monotonic() + PAYMENT_ID_WAIT_S
        while not checkout.payment_ids and self._clock.monotonic() + self.poll_s <= until:
            self._clock.sleep(self.poll_s)
            try:
                got = self._get(checkout.id, body, until)
            except (_Refused, _DeadlinePassed) as exc:
                log.warning("no payment id for COMPLETED checkout %s: %s", checkout.id, exc)
                break
            if str(got.status) == "COMPLETED":  # a final state does not change; anything else is not believed
                checkout = got
                self._note(idem, checkout)
        return checkout

    def _payment_of(self, provider_ref: str, amount_yen: int, until: float) -> str:
        """The Square payment id a donation's ``provider_ref`` names: itself, or for ``checkout:<id>`` (a
        COMPLETED checkout Square had named no payment for, or several of which none could be told to be the
        one that took the money) the checkout's paying payment, asked of Square now."""
        if not provider_ref.startswith("checkout:"):
            return provider_ref
        cid = provider_ref.removeprefix("checkout:")
        want = {"amount_money": {"amount": amount_yen, "currency": "JPY"}}
        try:
            co = self._get(cid, want, until, live=False)
        except _Refused as exc:
            raise _refund_refused(exc, f"Square does not know checkout {cid}") from None
        except _DeadlinePassed:
            raise TerminalUnavailable("Square did not answer about the payment; try again "
                                      "(it is never refunded twice)") from None
        pids = list(co.payment_ids or [])
        if str(co.status) != "COMPLETED" or not pids:
            raise TerminalUnavailable(f"Square has not said which payment checkout {cid} made; try again later")
        paid, why = self._paying_payment(co, want, until, live=False)
        if paid is None:  # nothing is sent: a refund must go to the payment that took the money, or nowhere
            raise TerminalUnavailable(f"cannot tell which payment of checkout {cid} took the money ({why}); "
                                      "try again later")
        return paid

    def lookup(self, idempotency_key: str, *, brief: bool = False) -> ChargeResult:
        body = self.journal.body(idempotency_key)
        if body is None:
            return ChargeResult.not_found()  # the create was never sent: no checkout can exist for this key
        # brief (between donors): a glance, never answer_grace_s of polling on the thread that answers taps.
        until = self._clock.monotonic() + (BRIEF_LOOKUP_S if brief else max(self.answer_grace_s, 5))
        try:
            known = self.journal.checkout_id(idempotency_key)
            if known:
                checkout = self._get(known, body, until)
            elif self._key_kept(idempotency_key):
                checkout = self._create(idempotency_key, body, until)  # identical create: the same checkout back
            else:  # Square may have forgotten the key: the same create could make a second checkout
                checkout = self._search(idempotency_key, body, until)
                if checkout is None:
                    self._set_live(status="IDLE", last_outcome="not_found")
                    return ChargeResult.not_found()
        except TerminalUnavailable:
            raise
        except _Refused as exc:
            raise TerminalUnavailable(f"Square refused the lookup: {exc.detail}") from None
        except _DeadlinePassed:
            raise TerminalUnavailable("Square did not answer") from None
        except Exception as exc:  # anything else unforeseen: the intent stays open, as for an outage
            raise TerminalUnavailable(f"lookup failed: {type(exc).__name__}") from exc
        try:
            result = self._follow(idempotency_key, body, checkout, until, interactive=False)
        except Exception as exc:
            raise TerminalUnavailable(f"lookup failed: {type(exc).__name__}") from exc
        if result.status == "unknown":
            raise TerminalUnavailable(result.reason or "no final state yet")
        self._set_live(status="IDLE", last_outcome=result.status)
        return result

    def _create_age_s(self, idem: str) -> float | None:
        """How long ago the create of ``idem`` was journaled; ``None`` when that cannot be told: journaled in
        another boot (or by an older kiosk) while this kiosk's wall clock is not synchronised (a Raspberry Pi has
        no RTC: until NTP syncs after a long power cut, its clock may say the create was a minute ago)."""
        when = self.journal.journaled(idem)
        if when is None:
            return None
        if when.mono_ms is not None and when.boot_id and when.boot_id == self.journal._boot:
            return (self._clock.mono_ms() - when.mono_ms) / 1000  # the same boot: the clock that never jumps
        if not self._clock.synced():
            return None
        return (self._clock.wall_ms() - when.wall_ms) / 1000

    def _key_kept(self, idem: str) -> bool:
        """Whether Square surely still holds ``idem``'s idempotency key (:data:`IDEM_KEPT_S`), so the identical
        create returns the checkout it made. Raises :class:`TerminalUnavailable` when the age cannot be told:
        the intent stays open until the kiosk's clock is set."""
        age = self._create_age_s(idem)
        if age is None:
            raise TerminalUnavailable("the kiosk's clock is not set yet, so the age of the checkout request cannot "
                                      "be told; asked again once it is")
        return 0 <= age < IDEM_KEPT_S

    def _search(self, idem: str, body: dict[str, Any], until: float) -> Any | None:
        """The checkout the create of ``idem`` made, found with SearchTerminalCheckouts, or ``None`` when Square
        holds none: the create never reached Square.

        Searched: this device's checkouts created since :data:`SEARCH_MARGIN_S` before the create was journaled
        (no end: a re-sent create of an earlier lookup made it later), every page. Matched: the same
        ``reference_id`` (kiosk id and intent seq, unique per gift), sum, currency, note and payment type. Raises
        :class:`TerminalUnavailable` (the intent stays open) when more than one matches or the create is older
        than Square keeps checkouts (:data:`CHECKOUTS_KEPT_S`): nothing is then proven either way."""
        when = self.journal.journaled(idem)
        assert when is not None
        if self._clock.wall_ms() - when.wall_ms > CHECKOUTS_KEPT_S * 1000:
            log.error("intent %s: its checkout request (reference %s, %s JPY) is older than Square keeps terminal "
                      "checkouts and its answer was never received: look for it on the Square Dashboard",
                      idem, body.get("reference_id"), body["amount_money"]["amount"])
            raise TerminalUnavailable("the checkout request is older than Square keeps checkouts (30 days): "
                                      "look for it on the Square Dashboard")
        start = _rfc3339(when.wall_ms - int(SEARCH_MARGIN_S * 1000))
        query = {"filter": {"device_id": body["device_options"]["device_id"], "created_at": {"start_at": start}},
                 "sort": {"sort_order": "ASC"}}
        found: dict[str, Any] = {}
        cursor: str | None = None
        pages = 0
        while True:
            page: dict[str, Any] = {"query": query, **({"cursor": cursor} if cursor else {})}
            def search(page: dict[str, Any] = page) -> Any:
                return self.client.terminal.checkouts.search(**page, request_options=NO_RETRIES)

            resp = self._call(search, until)
            pages += 1
            for co in resp.checkouts or []:
                if _same_request(co, body):
                    found[co.id] = co
            cursor = resp.cursor or None
            if cursor is None:
                break
        if len(found) > 1:
            log.error("intent %s: %d checkouts at Square match its request (%s): left open for staff",
                      idem, len(found), sorted(found))
            raise TerminalUnavailable(f"{len(found)} checkouts at Square match the request: cannot tell which")
        if not found:
            log.warning("intent %s: its create is older than Square surely keeps idempotency keys, and no checkout "
                        "at Square matches it (%d page(s) searched since %s): the create never reached Square, "
                        "nothing was charged", idem, pages, start)
            return None
        [checkout] = found.values()
        log.warning("intent %s: found its checkout %s by search (the create's answer was lost)", idem, checkout.id)
        return checkout

    # --- refunds, pairing, health (staff side) ---------------------------------------------------
    can_refund = True

    def refund(self, provider_ref: str, amount_yen: int, idempotency_key: str, reason: str) -> RefundResult:
        """RefundPayment for the payment ``provider_ref`` (the id a COMPLETED checkout gave, or ``checkout:<id>``
        when Square had not named it: then the checkout's payment, asked of Square first)."""
        until = self._clock.monotonic() + 30
        provider_ref = self._payment_of(provider_ref, amount_yen, until)
        self.journal.refund_put(idempotency_key, provider_ref, amount_yen)
        try:
            refund = self._call(lambda: _check_refund(self.client.refunds.refund_payment(
                idempotency_key=idempotency_key, amount_money={"amount": amount_yen, "currency": "JPY"},
                payment_id=provider_ref, reason=reason[:192], request_options=NO_RETRIES).refund,
                provider_ref, amount_yen), until, live=False)
        except _Refused as exc:
            raise _refund_refused(exc, "Square refused the refund") from None
        except _DeadlinePassed:
            raise TerminalUnavailable("Square did not answer the refund; try again (it is never made twice)") from None
        result = RefundResult(refund.id, str(refund.status))
        if result.status == "PENDING" and result.refund_id:
            # A replayed key answers with the refund Square already has; GetPaymentRefund says where it is
            # *now*, so asking again after a PENDING one can finish it (the void waits for COMPLETED).
            try:
                got = self._call(lambda: _check_refund(self.client.refunds.get(
                    result.refund_id, request_options=NO_RETRIES).refund, provider_ref, amount_yen, result.refund_id),
                    until, live=False)
            except (_Refused, _DeadlinePassed) as exc:
                log.warning("GetPaymentRefund %s failed (%s): keeping PENDING", result.refund_id, exc)
            else:
                if got is not None and got.status:
                    result = RefundResult(result.refund_id, str(got.status))
        self.journal.refund_update(idempotency_key, result.refund_id, result.status)
        return result

    def device_status(self) -> tuple[str, str]:
        """``(state, detail)``: ``ok``, ``unpaired``, ``unauthorized`` or ``unreachable`` (doctor, status page)."""
        return check_device(self.client, self.device_id, clock=self._clock)

    DEVICE_CHECK_S = 60.0
    """How old the cached device check may be before :meth:`health` starts a new one in the background."""

    def health(self, *, wait: bool = False) -> tuple[str, str]:
        """The terminal's real state for the status page, from the live checkout state and a device check
        (GetDevice) at most every :attr:`DEVICE_CHECK_S`, run on its own thread (``wait``: run it now)."""
        now = self._clock.monotonic()
        checked = self._device_check
        if wait:
            self._refresh_device()
            checked = self._device_check
        elif (checked is None or now - checked[2] >= self.DEVICE_CHECK_S) and not self._device_checking.is_set():
            self._device_checking.set()
            threading.Thread(target=self._refresh_device, name="square-device-check", daemon=True).start()
        live = self.live
        if live.status in ("CREATING", "PENDING", "IN_PROGRESS", "CANCEL_REQUESTED"):
            return "busy", f"checkout {live.status.lower()}"
        if live.setup_error is not None:  # the last create was refused: no donation can be taken until fixed
            device = f"; {checked[1]}" if checked is not None and checked[0] != "ok" else ""
            return "error", f"Square refused the last checkout ({live.setup_error}){device}"
        if checked is not None and checked[0] != "ok":
            return ("error" if checked[0] in ("unpaired", "unauthorized") else "offline"), checked[1]
        if live.status == "UNREACHABLE":
            return "offline", f"Square unreachable ({live.last_error or 'no answer'})"
        last = f"last checkout: {live.last_outcome}" if live.last_outcome else "no checkout yet"
        return "ready", (f"{checked[1]}; {last}" if checked is not None else last)

    def _refresh_device(self) -> None:
        with self._device_lock:
            self._device_started += 1
            mine = self._device_started
        try:
            try:
                state, detail = self.device_status()
            except Exception as exc:  # e.g. the terminal was closed meanwhile: a status, never a thread crash
                state, detail = "unreachable", f"device check failed ({type(exc).__name__})"
            with self._device_lock:
                if mine > self._device_done:  # an older check finishing late must not hide a newer answer
                    self._device_done = mine
                    self._device_check = (state, detail, self._clock.monotonic())
        finally:
            self._device_checking.clear()

    def close(self) -> None:
        self.journal.close()
        self._http.close()


def reference_tag(kiosk_id: str) -> str:
    """The 8 hex digits that stand for ``kiosk_id`` in a shortened reference: the start of SHA-256 of the id's
    UTF-8 bytes (``printf %s KIOSK-ID | sha256sum | cut -c1-8``)."""
    return hashlib.sha256(kiosk_id.encode()).hexdigest()[:8]


def checkout_reference(kiosk_id: str, reference: str) -> str:
    """Square's ``reference_id`` for gift ``reference`` (the intent's seq) of kiosk ``kiosk_id``: unique per kiosk
    and gift within Square's :data:`REFERENCE_MAX` characters (docs/payment.md, "Reference numbers at Square").

    ``<kiosk id>-<seq>`` when it fits; else ``<start of the kiosk id>~<reference_tag(kiosk id)>-<seq>``. A kiosk id
    has no ``~`` (``[a-z0-9-]``), so the two forms never meet, and the tag is taken from the whole id, so two
    kiosks whose ids start alike still differ (cutting the id short, as before, gave them the same reference)."""
    if not kiosk_id:
        out = reference
    elif len(kiosk_id) + 1 + len(reference) <= REFERENCE_MAX:
        out = f"{kiosk_id}-{reference}"
    else:
        room = REFERENCE_MAX - len(reference) - 10  # "~" + 8 hex digits + "-"
        out = f"{kiosk_id[:max(0, room)]}~{reference_tag(kiosk_id)}-{reference}"
    if len(out) > REFERENCE_MAX:
        raise ValueError(f"reference {reference!r} is too long for Square's reference_id")
    return out


def check_device(client: Square, device_id: str, *, clock: Clock | None = None,
                 timeout_s: float = 10.0) -> tuple[str, str]:
    """Ask Square about ``device_id`` (GetDevice): ``(state, detail)`` with state ``ok``, ``unpaired`` (Square
    does not know the device: not paired, or paired to another account), ``unauthorized`` (the token is
    refused) or ``unreachable``. Never raises."""
    try:
        resp = client.devices.get(device_id, request_options={"max_retries": 0, "timeout_in_seconds": int(timeout_s)})
    except ApiError as exc:
        if exc.status_code == 404:
            return "unpaired", f"Square knows no device {device_id}"
        if exc.status_code in (401, 403):
            return "unauthorized", f"Square refused the access token (HTTP {exc.status_code})"
        return "unreachable", f"Square answered HTTP {exc.status_code}"
    except (httpx.TransportError, ValueError) as exc:
        return "unreachable", f"no answer from Square ({type(exc).__name__})"
    dev = resp.device
    category = getattr(getattr(dev, "status", None), "category", None)
    return "ok", f"device {device_id}" + (f" ({category})" if category else "")


def _cancel_text(reason: str | None) -> str:
    return {"BUYER_CANCELED": "canceled on the terminal (BUYER_CANCELED)",
            "SELLER_CANCELED": "canceled from the kiosk (SELLER_CANCELED)",
            "TIMED_OUT": "no card was presented in time (TIMED_OUT)"}.get(reason or "", f"canceled ({reason})")


def pair(client: Square, location_id: str, name: str, *, wait_s: float, clock: Clock | None = None,
         show: Callable[[str], None] = print, poll_s: float = 3.0) -> str:
    """CreateDeviceCode (``TERMINAL_API``), show the code, wait until PAIRED; the device id."""
    clock = clock or SystemClock()
    import uuid

    resp = client.devices.codes.create(idempotency_key=uuid.uuid4().hex, device_code={
        "name": name, "product_type": "TERMINAL_API", "location_id": location_id}, request_options=NO_RETRIES)
    code = resp.device_code
    if code is None or not code.id:
        raise SquareSetupError("Square did not return a device code")
    show(f"Sign in on the Square Terminal with this device code: {code.code}  (expires {code.pair_by})")
    until = clock.monotonic() + wait_s
    while clock.monotonic() < until:
        clock.sleep(poll_s)
        try:
            got = client.devices.codes.get(code.id, request_options=NO_RETRIES).device_code
        except (ApiError, httpx.TransportError) as exc:
            log.warning("GetDeviceCode failed: %s", exc)
            continue
        if got is not None and got.status == "PAIRED" and got.device_id:
            return str(got.device_id)
        if got is not None and got.status == "EXPIRED":
            raise SquareSetupError("the device code expired before the terminal was paired; run pair again")
    raise SquareSetupError(f"the terminal was not paired within {wait_s:.0f} s")

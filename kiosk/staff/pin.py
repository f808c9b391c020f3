"""The maintenance-menu PIN: a salted scrypt hash in config, and a lock that slows guessing.

The PIN is never stored, logged or recorded: config holds only
``scrypt$N$r$p$salt$hash`` (hashlib.scrypt, stdlib), and checks compare in
constant time. A 4–8 digit PIN has at most 10^8 values, so the hash alone
does not make it safe against someone holding the config file; the point is
that the file never shows the PIN to whoever reads it, and the lock makes
guessing at the screen hopeless. The lock lives in memory, and the ledger records each wrong PIN and
lock: at start the gate takes them up again (kiosk/staff/gate.py ``pin_trail``), so pulling the plug
clears nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

import msgspec

# scrypt cost: 16 MiB and ~0.1 s on a Raspberry Pi 4. Stored in the hash line, so it can grow later.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
PIN_MIN, PIN_MAX = 4, 8


class PinError(ValueError):
    """A PIN or hash line that cannot be used."""


def check_pin_format(pin: str) -> str:
    """The PIN if it is 4–8 ASCII digits (what the on-screen keypad can type), else :class:`PinError`."""
    if not (PIN_MIN <= len(pin) <= PIN_MAX) or not pin.isascii() or not pin.isdigit():
        raise PinError(f"a PIN is {PIN_MIN} to {PIN_MAX} digits")
    return pin


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=256 * 1024 * 1024)


def hash_pin(pin: str, *, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """The config line value for ``pin``: ``scrypt$N$r$p$<salt b64>$<hash b64>`` with a fresh random salt."""
    check_pin_format(pin)
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(_scrypt(pin, salt, n, r, p, HASH_BYTES))}"


def verify_pin(pin: str, stored: str) -> bool:
    """Whether ``pin`` matches the hash line ``stored``, compared in constant time."""
    try:
        scheme, n, r, p, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        salt = base64.b64decode(salt_b64, validate=True)
        want = base64.b64decode(hash_b64, validate=True)
        n_, r_, p_ = int(n), int(r), int(p)
    except ValueError:
        raise PinError("the stored PIN hash is malformed; set it again with `kiosk staff set-pin`") from None
    try:
        got = _scrypt(pin, salt, n_, r_, p_, len(want))
    except (ValueError, MemoryError):
        raise PinError("the stored PIN hash has impossible scrypt parameters") from None
    return hmac.compare_digest(got, want)


class PinAttempt(msgspec.Struct, frozen=True):
    ok: bool
    """The PIN was right (and the lock was open)."""
    locked_for_s: float
    """Seconds until the next attempt is accepted (0 when open). Show this on the keypad."""
    failures: int
    """Wrong PINs in a row so far."""
    refused: bool = False
    """The attempt came while locked and was not even checked."""


class PinLock:
    """Checks PINs and locks with growing delays: after ``free_attempts`` wrong PINs in a row the
    keypad locks for ``base_s``, then twice that for each further wrong PIN, up to ``max_s``.

    ``clock`` returns monotonic seconds; tests pass a fake. A right PIN clears the count. The count and the
    lock survive a restart through the ledger's record of them (:meth:`restore`).
    """

    def __init__(self, pin_hash: str, *, free_attempts: int = 3, base_s: float = 30, max_s: float = 900,
                 clock: Callable[[], float] = time.monotonic):
        self._hash = pin_hash
        self.free_attempts = free_attempts
        self.base_s = base_s
        self.max_s = max_s
        self._clock = clock
        self.failures = 0
        self._locked_until = 0.0

    @property
    def configured(self) -> bool:
        return bool(self._hash)

    def locked_for(self) -> float:
        return max(0.0, self._locked_until - self._clock())

    def delay_after(self, failures: int) -> float:
        """Lock length after ``failures`` wrong PINs in a row (0 while still within the free attempts)."""
        extra = failures - self.free_attempts
        if extra < 0:
            return 0.0
        return float(min(self.max_s, self.base_s * (2 ** min(extra, 32))))

    def restore(self, failures: int, locked_for_s: float) -> None:
        """Take up where the keypad stood before a restart (:func:`kiosk.staff.gate.pin_trail` reads it from the
        ledger): a restart must not clear a lock, or pulling the plug would give three free guesses a boot."""
        self.failures = max(0, failures)
        self._locked_until = self._clock() + max(0.0, min(float(self.max_s), locked_for_s))

    def attempt(self, pin: str) -> PinAttempt:
        wait = self.locked_for()
        if wait > 0:
            # Not checked at all while locked, so hammering the keypad gains nothing.
            return PinAttempt(False, wait, self.failures, refused=True)
        if not self._hash:
            return PinAttempt(False, 0.0, self.failures, refused=True)
        try:
            ok = check_pin_format(pin) == pin and verify_pin(pin, self._hash)
        except PinError:
            ok = False
        if ok:
            self.failures = 0
            return PinAttempt(True, 0.0, 0)
        self.failures += 1
        delay = self.delay_after(self.failures)
        self._locked_until = self._clock() + delay
        return PinAttempt(False, delay, self.failures)

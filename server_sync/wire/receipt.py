"""Receipt codes: the short code in the kiosk's QR that opens ``/r/{code}`` on the portal.

``code = BASE32(SHA-256("civic-kiosk-receipt/v1" || 0x00 || signature || body)[:16])`` without
padding: 26 characters from A–Z and 2–7, which QR codes store in their compact alphanumeric mode.

Why it cannot be guessed: the input holds the entry's Ed25519 signature, which only the kiosk's
private key can produce, and the body's idempotency key (a random UUID) and keyed donor token.
The public pages publish totals, amounts and times, never bodies or signatures, so nothing public is
enough to compute a code; 128 bits rule out enumeration. The portal holds bodies and signatures,
so it computes the same code at ingest and indexes it. Pure: no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Protocol

DOMAIN = b"civic-kiosk-receipt/v1\x00"
CODE_RE = re.compile(r"^[A-Z2-7]{26}$")


def receipt_code_of(body: bytes, signature: bytes) -> str:
    digest = hashlib.sha256(DOMAIN + signature + body).digest()[:16]
    return base64.b32encode(digest).decode("ascii").rstrip("=")


class SignedEntry(Protocol):
    """Anything with an entry's exact signed ``body`` bytes and its ``signature`` (read-only is enough)."""

    @property
    def body(self) -> bytes: ...

    @property
    def signature(self) -> bytes: ...


def receipt_code(entry: SignedEntry) -> str:
    """The receipt code of a ``donation`` entry (anything with ``.body`` and ``.signature`` bytes)."""
    return receipt_code_of(entry.body, entry.signature)


def normalise(code: str) -> str | None:
    """Codes typed or scanned in lower case are accepted; anything else malformed is ``None``."""
    c = code.strip().upper()
    return c if CODE_RE.match(c) else None

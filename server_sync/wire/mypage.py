"""The one-time my-page request a kiosk shows as a QR code (docs/privacy.md).

A donor asks for their page on the kiosk and taps their card; the kiosk, which knows the card's token
under every pepper epoch it holds, signs a short request naming those tokens, with a random nonce and
an expiry a few minutes ahead, and shows ``{portal}/me/new#{request}``. The request rides in the URL's
fragment, which a browser never sends: the page's script posts it to ``/me/claim``, so it is in no
access log. The portal checks the kiosk's Ed25519 signature, the expiry and that the nonce was never
used, and answers with a private link ``/me/<secret>``.

Compact binary, base64url without padding (it is a QR code)::

    version 1 | len(kiosk_id) 1 | kiosk_id | nonce 16 | issued_ms 8 | expires_ms 8 | n 1 | n x token 16 | sig 64

The signature is over ``CONTEXT ‖ every byte before it``, so it can never be taken for a ledger
entry, a sync request or a checkpoint signed by the same key.
"""

from __future__ import annotations

import base64
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

VERSION = 1
CONTEXT = b"kiosk-mypage-request/v1\n"
NONCE_BYTES = 16
TOKEN_BYTES = 16
SIG_BYTES = 64
MAX_TOKENS = 16
MAX_TTL_MS = 15 * 60_000
"""The portal refuses a request meant to live longer than this, whatever the kiosk asked."""


class MyPageRequestError(ValueError):
    """A request that is malformed (the signature is checked separately, against the kiosk's key)."""


@dataclass(frozen=True)
class MyPageRequest:
    kiosk_id: str
    nonce: bytes
    issued_ms: int
    """The kiosk's wall clock when it made the request."""
    expires_ms: int
    tokens: tuple[str, ...]
    """The card's donor tokens (hex), one per pepper epoch the kiosk holds."""
    signed: bytes
    """The bytes the signature covers, context excluded."""
    signature: bytes

    def verify(self, public: Ed25519PublicKey) -> bool:
        try:
            public.verify(self.signature, CONTEXT + self.signed)
        except InvalidSignature:
            return False
        return True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_request(sk: Ed25519PrivateKey, kiosk_id: str, tokens: list[str] | tuple[str, ...], issued_ms: int,
                 ttl_ms: int, nonce: bytes | None = None) -> str:
    """The signed request, as the text that follows ``#`` in the QR code's URL."""
    kid = kiosk_id.encode("ascii")
    if not 1 <= len(kid) <= 255:
        raise MyPageRequestError("kiosk id must be 1-255 ASCII characters")
    uniq = list(dict.fromkeys(tokens))
    if not 1 <= len(uniq) <= MAX_TOKENS:
        raise MyPageRequestError(f"a request names 1-{MAX_TOKENS} tokens")
    raw_tokens = b"".join(bytes.fromhex(t) for t in uniq)
    if len(raw_tokens) != TOKEN_BYTES * len(uniq):
        raise MyPageRequestError("a donor token is 16 bytes")
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise MyPageRequestError(f"the nonce is {NONCE_BYTES} bytes")
    signed = (bytes([VERSION, len(kid)]) + kid + nonce + struct.pack(">QQ", issued_ms, issued_ms + ttl_ms)
              + bytes([len(uniq)]) + raw_tokens)
    return _b64(signed + sk.sign(CONTEXT + signed))


def parse_request(text: str) -> MyPageRequest:
    """Decode a request; :class:`MyPageRequestError` for anything malformed (never a crash)."""
    if not text or len(text) > 2000:
        raise MyPageRequestError("no request, or far too long")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise MyPageRequestError("not base64url") from None
    try:
        if raw[0] != VERSION:
            raise MyPageRequestError(f"unknown request version {raw[0]}")
        n_kid = raw[1]
        pos = 2
        kiosk_id = raw[pos:pos + n_kid].decode("ascii")
        pos += n_kid
        nonce = raw[pos:pos + NONCE_BYTES]
        pos += NONCE_BYTES
        issued_ms, expires_ms = struct.unpack(">QQ", raw[pos:pos + 16])
        pos += 16
        n = raw[pos]
        pos += 1
        tokens = tuple(raw[pos + i * TOKEN_BYTES:pos + (i + 1) * TOKEN_BYTES].hex() for i in range(n))
        pos += n * TOKEN_BYTES
    except (IndexError, struct.error, UnicodeDecodeError):
        raise MyPageRequestError("request is cut short or garbled") from None
    if len(kiosk_id) != n_kid or len(nonce) != NONCE_BYTES or not 1 <= n <= MAX_TOKENS \
            or any(len(t) != 2 * TOKEN_BYTES for t in tokens):
        raise MyPageRequestError("request is cut short or garbled")
    if len(raw) != pos + SIG_BYTES:
        raise MyPageRequestError("request has the wrong length")
    return MyPageRequest(kiosk_id, nonce, issued_ms, expires_ms, tokens, raw[:pos], raw[pos:])

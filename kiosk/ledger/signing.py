"""Ed25519 signing for the ledger's writer: libsodium (PyNaCl) where installed, ``cryptography`` otherwise.

Every durable append signs its entry, on the citizen's tap path (a gift is an intent, a donation and a
checkpoint: four signatures with the checkpoint's note). libsodium signs in about 20 µs here against
about 34 µs for ``cryptography``'s OpenSSL (docs/ledger.md, "Speed"). Ed25519 signing is deterministic
(RFC 8032: the nonce is a hash of the key and the message), so both give the same 64 bytes for the same
key and message, and nothing that reads a ledger can tell which one signed it.

The key stays a ``cryptography`` key everywhere else (files, public keys, verification): :class:`Signer`
wraps one, and takes libsodium's form of the same key (the 32-byte seed it was made from) only to sign.
Before it signs with libsodium it checks, once per key, that libsodium derives the same public key and
the same signature of a test message as ``cryptography``; if not, it signs with ``cryptography``.
PyNaCl is in the ``kiosk`` extra; a base install (an auditor's verifier) signs with ``cryptography``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)

_PROBE = b"kiosk ledger signing self-check"


class SigningKey(Protocol):
    """What signs a ledger entry or a checkpoint note: an ``Ed25519PrivateKey`` or a :class:`Signer`."""

    def sign(self, data: bytes) -> bytes: ...

    def public_key(self) -> Ed25519PublicKey: ...


def _libsodium(key: Ed25519PrivateKey) -> Callable[[bytes], bytes] | None:
    """libsodium's signing function for ``key``, or None (PyNaCl not installed, or it disagrees with
    ``cryptography`` about this key: never expected, but a signature nobody can verify must not be written)."""
    try:
        from nacl.bindings import crypto_sign, crypto_sign_seed_keypair
    except ImportError:
        return None
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    pk, sk = crypto_sign_seed_keypair(seed)
    ours = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def sign(data: bytes) -> bytes:
        return crypto_sign(data, sk)[:64]  # libsodium returns signature || message

    if pk != ours or sign(_PROBE) != key.sign(_PROBE):
        log.warning("libsodium does not agree with cryptography about the signing key; signing with cryptography")
        return None
    return sign


class Signer:
    """Signs with ``key`` (see the module's text); ``backend`` says which library does it."""

    __slots__ = ("backend", "sign", "_key", "_public")

    def __init__(self, key: Ed25519PrivateKey, *, use_libsodium: bool = True):
        self._key = key
        self.backend = "cryptography"
        self.sign: Callable[[bytes], bytes] = key.sign
        """The 64-byte Ed25519 signature of ``data`` (a plain attribute, not a method: one call less)."""
        self._public = key.public_key()
        if use_libsodium:
            self.use_libsodium()

    def use_libsodium(self) -> bool:
        """Sign with libsodium from now on, if it is installed and agrees (see the module's text); whether it
        does. ``kiosk run`` calls it after READY=1: importing PyNaCl and checking the key take ≈ 10 ms, four
        times that at a quarter of a core, and the signatures are the same bytes either way (cold start, #16).
        Safe while another thread signs: the attribute is swapped in one step."""
        if self.backend != "libsodium":
            fast = _libsodium(self._key)
            if fast is not None:
                self.sign = fast
                self.backend = "libsodium"
        return self.backend == "libsodium"

    def public_key(self) -> Ed25519PublicKey:
        return self._public

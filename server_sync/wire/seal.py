"""Sealing the city's pepper to one kiosk: ephemeral X25519, HKDF-SHA256, AES-256-GCM (``cryptography``).

The portal seals each pepper epoch to the X25519 key the kiosk made for it (``keys/seal.key``, never
sent anywhere); only that kiosk can open it. A fresh ephemeral key per box makes the AES key single-use.
The associated data binds a box to its token domain, epoch and kiosk, so a box for one epoch or one
kiosk cannot be replayed as another's.

    box = version (1) ‖ ephemeral public key (32) ‖ nonce (12) ‖ AES-GCM ciphertext and tag (32 + 16)
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = 1
INFO = b"kiosk-pepper-seal/v1"
PUBLIC_BYTES = 32


class SealError(Exception):
    """A box that is malformed, or not for this key and context."""


def aad(domain: str, epoch: int, kiosk_id: str) -> bytes:
    """What a box is for: its token domain, pepper epoch and kiosk."""
    return f"{domain}\n{epoch}\n{kiosk_id}".encode()


def _key(shared: bytes, eph_pub: bytes, recipient_pub: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=eph_pub + recipient_pub, info=INFO).derive(shared)


def seal(recipient_public: bytes, plaintext: bytes, associated: bytes) -> bytes:
    """A box only the holder of ``recipient_public``'s private key can open."""
    if len(recipient_public) != PUBLIC_BYTES:
        raise SealError(f"an X25519 public key is {PUBLIC_BYTES} bytes, not {len(recipient_public)}")
    eph = X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes_raw()
    shared = eph.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    nonce = os.urandom(12)
    ct = AESGCM(_key(shared, eph_pub, recipient_public)).encrypt(nonce, plaintext, associated)
    return bytes([VERSION]) + eph_pub + nonce + ct


def open_box(private: X25519PrivateKey, box: bytes, associated: bytes) -> bytes:
    """The plaintext of ``box``; :class:`SealError` when it is malformed, altered or not for this key."""
    if len(box) < 1 + PUBLIC_BYTES + 12 + 16 or box[0] != VERSION:
        raise SealError("not a sealed box of a known version")
    head = 1 + PUBLIC_BYTES
    eph_pub, nonce, ct = box[1:head], box[head:head + 12], box[head + 12:]
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
        own = private.public_key().public_bytes_raw()
        return AESGCM(_key(shared, eph_pub, own)).decrypt(nonce, ct, associated)
    except (InvalidTag, ValueError):
        raise SealError("the box does not open with this kiosk's key (altered, or sealed to another key)") from None

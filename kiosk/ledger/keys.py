"""The kiosk's Ed25519 signing key: generation, loading, and key ids.

``kiosk keygen --out DIR`` writes ``DIR/kiosk.key`` (PKCS#8 PEM, mode 0600)
and ``DIR/kiosk.pub`` (SubjectPublicKeyInfo PEM).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.ledger.durable import write_atomic
from kiosk.ledger.secretfile import write_secret


class KeyError_(Exception):
    """A key file is missing, unreadable, of the wrong kind or too open."""


def key_id(public_raw: bytes) -> str:
    """Ledger key id: first 8 bytes of SHA-256 of the raw 32-byte public key, as hex."""
    return hashlib.sha256(public_raw).digest()[:8].hex()


def public_raw(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def generate(out_dir: str | os.PathLike[str], overwrite: bool = False) -> tuple[Path, Path]:
    """Write a new key pair as ``DIR/kiosk.key`` and ``DIR/kiosk.pub`` (see :func:`generate_at`)."""
    d = Path(out_dir)
    return generate_at(d / "kiosk.key", d / "kiosk.pub", overwrite)


def generate_at(key_path: Path, pub_path: Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Write a new key pair at these paths; refuses to replace an existing private key unless ``overwrite``.

    Written in place under their final names (not generated elsewhere and renamed): a crash half-way
    must not leave a key under a name the next start would refuse to overwrite.
    """
    if key_path.exists() and not overwrite:
        raise KeyError_(f"{key_path} already exists; refusing to replace a signing key")
    sk = Ed25519PrivateKey.generate()
    pem = sk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_secret(key_path, pem, replace=overwrite)
    write_public(sk, pub_path)
    return key_path, pub_path


def write_public(sk: Ed25519PrivateKey, pub_path: Path) -> None:
    """Write (or rewrite) the public key file of ``sk``."""
    write_atomic(pub_path, sk.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))


def load_private(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise KeyError_(f"signing key {p} does not exist (run `kiosk keygen --out {p.parent}`)") from None
    except OSError as exc:
        raise KeyError_(f"cannot read signing key {p}: {exc.strerror}") from None
    try:
        sk = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # the last: a damaged algorithm identifier
        raise KeyError_(f"{p} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(sk, Ed25519PrivateKey):
        raise KeyError_(f"{p} is not an Ed25519 key")
    return sk


PUBLIC_KEY_EXPECTED = ("expected the kiosk's public key: a PEM file that begins with '-----BEGIN PUBLIC KEY-----', "
                       "as `kiosk keygen` writes it (a copy of keys/kiosk.pub from the kiosk's data folder)")
"""What a public key file must be, said plainly (an auditor reads it after a wrong ``--pubkey``)."""


def _what_it_holds(data: bytes) -> str:
    """What a file that is not a PEM public key holds, in words (never the library's own message)."""
    text = data.strip()
    if not text:
        return "is empty"
    if b"PRIVATE KEY-----" in text:
        return ("is a private signing key (like kiosk.key), not the public key: a private key stays on its "
                "kiosk and is never handed out")
    if b"-----BEGIN PUBLIC KEY-----" in text:
        return "looks like a PEM public key but is damaged or cut short"
    if text.startswith(b"-----BEGIN "):
        label = text[len(b"-----BEGIN "):].split(b"-----", 1)[0].decode("ascii", "replace")
        return f"is a PEM file of another kind ({label}), not a public key"
    if len(text) == 64 and all(c in b"0123456789abcdefABCDEF" for c in text):
        return "holds a key written as 64 hex digits (as the portal shows keys), not a PEM public key file"
    return "is not a public key file"


def load_public(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """The public key in the PEM file ``path``; :class:`KeyError_` saying what the file is instead, if not."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise KeyError_(f"public key file {p} does not exist; {PUBLIC_KEY_EXPECTED}") from None
    except OSError as exc:
        raise KeyError_(f"cannot read public key {p}: {exc.strerror}") from None
    try:
        pk = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise KeyError_(f"{p} {_what_it_holds(data)}; {PUBLIC_KEY_EXPECTED}") from None
    if not isinstance(pk, Ed25519PublicKey):
        kind = type(pk).__name__.removesuffix("PublicKey").removeprefix("_") or "other"
        raise KeyError_(f"{p} is a public key of another kind ({kind}), not a kiosk's Ed25519 key; "
                        f"{PUBLIC_KEY_EXPECTED}")
    return pk


def public_from_raw(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def verify(pub: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        pub.verify(signature, message)
        return True
    except InvalidSignature:
        return False

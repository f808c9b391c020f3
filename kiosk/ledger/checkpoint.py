"""Signed checkpoints in the C2SP tlog-checkpoint signed-note form.

A checkpoint note is::

    <origin>\n
    <tree size, decimal>\n
    <base64 root hash>\n
    \n
    — <key name> <base64(key id (4 bytes) || Ed25519 signature)>\n

The signature covers the first three lines (with their newlines). The key id is
``SHA-256(name || 0x0A || 0x01 || public key)[:4]`` (0x01 = Ed25519), as in
the signed-note spec. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.ledger.keys import public_raw, verify

ALG_ED25519 = b"\x01"
DASH = "\u2014"  # the em dash that starts every signature line


class CheckpointError(ValueError):
    """A note that is malformed or whose signature does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def note_key_id(name: str, pub: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ALG_ED25519 + public_raw(pub)).digest()[:4]


def origin_for(kiosk_id: str) -> str:
    """The log's origin line, unique per kiosk."""
    return f"civic-kiosk.ledger/{kiosk_id}"


def sign(cp: Checkpoint, sk: Ed25519PrivateKey, name: str | None = None) -> str:
    name = name or cp.origin
    body = cp.body()
    sig = sk.sign(body.encode())
    blob = base64.b64encode(note_key_id(name, sk.public_key()) + sig).decode()
    return f"{body}\n{DASH} {name} {blob}\n"


def parse(note: str) -> tuple[Checkpoint, list[tuple[str, bytes, bytes]]]:
    """Split a note into its checkpoint and its (name, key id, signature) lines."""
    if "\n\n" not in note:
        raise CheckpointError("note has no blank line between text and signatures")
    text, _, sigs = note.partition("\n\n")
    lines = text.split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint text needs origin, size and root lines")
    origin, size_s, root_s = lines[0], lines[1], lines[2]
    if not origin:
        raise CheckpointError("empty origin line")
    if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
        raise CheckpointError(f"tree size {size_s!r} is not a decimal number")
    try:
        root = base64.b64decode(root_s, validate=True)
    except (ValueError, binascii.Error):
        raise CheckpointError("root line is not base64") from None
    if len(root) != 32:
        raise CheckpointError("root is not 32 bytes")
    out = []
    for line in sigs.split("\n"):
        if not line:
            continue
        if not line.startswith(DASH + " "):
            raise CheckpointError("signature line does not start with an em dash")
        try:
            _, name, blob = line.split(" ")
            raw = base64.b64decode(blob, validate=True)
        except ValueError:
            raise CheckpointError("malformed signature line") from None
        if len(raw) != 4 + 64:
            raise CheckpointError("Ed25519 note signature must be 4 + 64 bytes")
        out.append((name, raw[:4], raw[4:]))
    if not out:
        raise CheckpointError("note carries no signature")
    return Checkpoint(origin, int(size_s), root), out


def open_note(note: str, pub: Ed25519PublicKey, name: str | None = None) -> Checkpoint:
    """Parse a note and verify it carries a good signature by ``pub`` (under ``name``, default origin)."""
    cp, sigs = parse(note)
    name = name or cp.origin
    want = note_key_id(name, pub)
    for sig_name, kid, sig in sigs:
        if sig_name == name and kid == want:
            if verify(pub, sig, cp.body().encode()):
                return cp
            raise CheckpointError("checkpoint signature does not verify")
    raise CheckpointError(f"checkpoint is not signed by key {want.hex()} ({name})")

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
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.ledger.keys import public_raw, verify
from kiosk.ledger.signing import SigningKey

ALG_ED25519 = b"\x01"
DASH = "\u2014"  # the em dash that starts every signature line


class CheckpointError(ValueError):
    """A note that is malformed or whose signature does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()
    """tlog-checkpoint extension lines (kiosks write none); signed like the rest of the text."""

    def body(self) -> str:
        ext = "".join(line + "\n" for line in self.extensions)
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n{ext}"


def note_key_id(name: str, pub: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ALG_ED25519 + public_raw(pub)).digest()[:4]


def origin_for(kiosk_id: str) -> str:
    """The log's origin line, unique per kiosk."""
    return f"civic-kiosk.ledger/{kiosk_id}"


def sign(cp: Checkpoint, sk: SigningKey, name: str | None = None) -> str:
    name = name or cp.origin
    body = cp.body()
    sig = sk.sign(body.encode())
    blob = base64.b64encode(note_key_id(name, sk.public_key()) + sig).decode()
    return f"{body}\n{DASH} {name} {blob}\n"


MAX_NOTE_SIGNATURES = 100
MAX_TREE_SIZE = 2**63 - 1
_B64_ROOT = re.compile(r"[A-Za-z0-9+/]{43}=\Z")
_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")
_SIZE = re.compile(r"(?:0|[1-9][0-9]{0,18})\Z")
# Any control character but the newline, and DEL: one C-speed scan (a per-character generator cost
# more than the rest of the parse, and the portal parses every checkpoint entry's note).
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f]")


def _canonical_b64(text: str) -> bytes:
    """Standard base64 with padding, and only its canonical spelling (unused bits zero), or ValueError."""
    if not _B64.match(text):
        raise ValueError("not base64")
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("non-canonical base64")
    return raw


# The note a kiosk writes (sign() over a checkpoint without extension lines, one signature line), matched
# whole by one regular expression that accepts only what :func:`parse` accepts, so :func:`parse` answers
# without its line-by-line checks (the portal parses the note of every checkpoint entry it receives, a
# third of them; this took about half the time). Each part, against parse's rule for it:
# - origin: no control character and no newline (the spaces around it are looked at after the match);
# - size: ASCII decimal without a leading zero (its bound is looked at after the match);
# - root and signature: exactly the canonical base64 of 32 and of 4 + 64 bytes. Both lengths leave two
#   unused bits in the last character before the "=", which are zero only for the 16 characters listed,
#   so the text is the one spelling base64.b64encode gives (no decode and re-encode to compare);
# - name: no whitespace (``\s`` is str.split's whitespace, ``str.isspace``), no "+", no control character;
# - exactly one blank line, one signature line ending in a newline, nothing after it.
# Anything else (extensions, several signatures, any fault) goes through the full parse, which names the
# fault; tests/ledger/test_checkpoint_parse.py holds both to the same answer over mangled notes.
_CANONICAL_B64_LAST = "[AEIMQUYcgkosw048]="  # a 6-bit value with its two low bits zero, then the padding
_COMMON_NOTE = re.compile(
    r"([^\x00-\x1f\x7f]+)\n"  # origin
    r"(0|[1-9][0-9]{0,18})\n"  # size
    rf"([A-Za-z0-9+/]{{42}}{_CANONICAL_B64_LAST})\n"  # root: 32 bytes
    rf"\n{DASH} "
    r"([^\s+\x00-\x1f\x7f]+) "  # key name
    rf"([A-Za-z0-9+/]{{90}}{_CANONICAL_B64_LAST})\n"  # key id (4 bytes) || signature (64 bytes)
)


def parse(note: str) -> tuple[Checkpoint, list[tuple[str, bytes, bytes]]]:
    """Split a note into its checkpoint and its (name, key id, signature) lines, accepting only the exact
    layout of C2SP signed-note + tlog-checkpoint (anything else is a :class:`CheckpointError`):

    - text: origin, tree size (ASCII decimal, no leading zero), base64 root of 32 bytes, then optional
      non-empty extension lines, each ending in a newline; no blank line, no control character, no
      carriage return; every text line is signed (:meth:`Checkpoint.body` includes the extensions);
    - one blank line, then one or more signature lines ``— <name> <base64(key id || signature)>`` with
      exactly one space between the parts, a name without spaces or ``+``, canonical base64, each ending
      in a newline; nothing after the last one.
    """
    if not isinstance(note, str):
        raise CheckpointError("note is not text")
    common = _COMMON_NOTE.fullmatch(note)
    if common is not None:
        origin, size_s, root_s, name, blob = common.groups()
        if origin == origin.strip() and int(size_s) <= MAX_TREE_SIZE:
            raw = binascii.a2b_base64(blob)  # the pattern admits only canonical base64: nothing to re-check
            return Checkpoint(origin, int(size_s), binascii.a2b_base64(root_s)), [(name, raw[:4], raw[4:])]
    return _parse_any(note)


def _parse_any(note: str) -> tuple[Checkpoint, list[tuple[str, bytes, bytes]]]:
    """:func:`parse` for every note, line by line: the rules themselves, and the error naming the fault."""
    if _CONTROL.search(note):
        raise CheckpointError("note contains a control character (only newlines are allowed)")
    if note.count("\n\n") != 1:
        raise CheckpointError("note needs exactly one blank line between text and signatures")
    text, _, sigs = note.partition("\n\n")
    lines = text.split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint text needs origin, size and root lines")
    origin, size_s, root_s, extensions = lines[0], lines[1], lines[2], tuple(lines[3:])
    if not origin or origin != origin.strip():
        raise CheckpointError("empty origin line, or spaces around it")
    if not _SIZE.match(size_s) or int(size_s) > MAX_TREE_SIZE:
        raise CheckpointError(f"tree size {size_s[:24]!r} is not a decimal number")
    if not _B64_ROOT.match(root_s):
        raise CheckpointError("root line is not the base64 of 32 bytes")
    try:
        root = _canonical_b64(root_s)
    except (ValueError, binascii.Error):
        raise CheckpointError("root line is not canonical base64") from None
    if len(root) != 32:
        raise CheckpointError("root is not 32 bytes")
    if not sigs.endswith("\n"):
        raise CheckpointError("the last signature line does not end in a newline")
    out = []
    for line in sigs[:-1].split("\n"):
        if not line.startswith(DASH + " "):
            raise CheckpointError("signature line does not start with an em dash and a space")
        parts = line.split(" ")
        if len(parts) != 3 or not parts[1] or "+" in parts[1] or parts[1].split() != [parts[1]]:
            raise CheckpointError("malformed signature line")
        try:
            raw = _canonical_b64(parts[2])
        except (ValueError, binascii.Error):
            raise CheckpointError("malformed signature line") from None
        if len(raw) != 4 + 64:
            raise CheckpointError("Ed25519 note signature must be 4 + 64 bytes")
        out.append((parts[1], raw[:4], raw[4:]))
    if len(out) > MAX_NOTE_SIGNATURES:
        raise CheckpointError("too many signature lines")
    return Checkpoint(origin, int(size_s), root, extensions), out


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

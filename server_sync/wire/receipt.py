"""Receipt codes: the short code in the kiosk's QR that opens ``/r/{code}`` on the portal.

``code = BASE32(SHA-256("civic-kiosk-receipt/v1" || 0x00 || signature || body)[:16])`` without
padding: 26 characters from A–Z and 2–7, which QR codes store in their compact alphanumeric mode.

Why it cannot be guessed: the input holds the entry's Ed25519 signature, which only the kiosk's
private key can produce, and the body's idempotency key (a random UUID) and keyed donor token.
The public pages publish totals, amounts and times, never bodies or signatures, so nothing public is
enough to compute a code; 128 bits rule out enumeration. The portal holds bodies and signatures,
so it computes the same code at ingest and indexes it. Pure: no I/O.

:func:`check_receipt` checks a receipt answer against the code the donor holds and the kiosk's key id,
trusting nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

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


# --- checking a receipt without trusting the portal --------------------------------------------------
@dataclass(frozen=True)
class ReceiptCheck:
    """What :func:`check_receipt` found. ``ok`` only when every step held; ``body`` is the signed body
    (parsed) once it is known to be the kiosk's, else ``None``.

    ``reason`` is the English sentence, with the figures; ``why`` is the step that failed as a stable word,
    for a caller that says it in another language (``kiosk receipt verify`` prints it in Japanese):
    ``verified``, ``bad_code``, ``incomplete``, ``other_receipt``, ``bad_key``, ``no_key_id``, ``wrong_key``,
    ``bad_signature``, ``not_an_entry``, ``not_this_donation``, ``bad_checkpoint``, ``other_log``,
    ``not_included``, ``key_change``, ``admin_key_change``, ``shown_amount_yen``, ``shown_project``,
    ``shown_seq``, ``shown_kiosk_id``."""

    ok: bool
    reason: str
    body: dict[str, Any] | None = None
    checkpoint_size: int = 0
    key_id: str = ""
    why: str = ""


def check_receipt(doc: Any, key_id: str | None, *, code: str) -> ReceiptCheck:
    """Check a ``GET /api/v1/receipts/{code}`` answer as an auditor would, trusting nothing the portal says.

    ``code`` is the receipt code the donor holds (the QR link's ``/r/CODE``, or typed: case does not
    matter). First of all, the entry body and signature served must be the ones that code was computed
    from (:func:`receipt_code_of`): otherwise a portal could answer one donor's code with another gift's
    genuine receipt from the same kiosk, and every later step would hold. The answer's own ``receipt``
    field is only the portal's word and is not used.

    ``key_id`` is the kiosk's ledger key id from the QR's fragment (``#k=...``, 16 hex characters): the
    key in the answer must hash to it. Then: the entry body hashes to the leaf; the entry signature is
    that key's; the body is a donation of that kiosk at that seq; the checkpoint note is signed by the same
    key for that kiosk's log; the inclusion proof takes the leaf to the checkpoint's root; and the
    amount, project and seq the answer shows are the body's. The same steps run in the browser
    (server_sync/static/receipt.js) and in ``kiosk receipt verify``. Pure: no I/O.
    """
    from kiosk.ledger import checkpoint as cpmod
    from kiosk.ledger import merkle
    from kiosk.ledger.encoding import EncodingError, entry_hash, parse_body

    asked = normalise(code)
    if asked is None:
        return ReceiptCheck(False, "the code asked for is not a receipt code (26 letters A-Z and digits 2-7)",
                            why="bad_code")
    try:
        v = doc["verification"]
        body = base64.b64decode(v["entry_body"], validate=True)
        sig = bytes.fromhex(v["entry_signature"])
        pub_raw = bytes.fromhex(v["public_key"])
        seq, note, proof_hex = int(v["seq"]), str(v["checkpoint"]), list(v["proof"])
        proof = [bytes.fromhex(p) for p in proof_hex]
        shown, changes = doc["donation"], v.get("key_changes") or []
        if not isinstance(shown, dict) or not isinstance(changes, list):  # else a TypeError further down
            raise TypeError("donation or key_changes")
    except (KeyError, TypeError, ValueError, binascii.Error):
        return ReceiptCheck(False, "the receipt lacks its body, signature, checkpoint or proof (not yet checkpointed?)",
                            why="incomplete")
    if receipt_code_of(body, sig) != asked:
        return ReceiptCheck(False, "the signed record served is not this receipt code's: its body and signature give "
                                   "another code (the portal answered with another donation's receipt)",
                            why="other_receipt")
    if len(pub_raw) != 32 or len(sig) != 64:
        return ReceiptCheck(False, "the public key or the signature has the wrong length", why="bad_key")
    kid = hashlib.sha256(pub_raw).digest()[:8].hex()
    if key_id is None:
        return ReceiptCheck(False, "no key id to check the portal's key against (the QR's #k=... part)", key_id=kid,
                            why="no_key_id")
    if kid != key_id.strip().lower():
        return ReceiptCheck(False, f"the key is {kid}, not the kiosk key {key_id} named in the receipt link",
                            key_id=kid, why="wrong_key")
    leaf = entry_hash(body)
    pub = Ed25519PublicKey.from_public_bytes(pub_raw)
    try:
        pub.verify(sig, leaf)
    except InvalidSignature:
        return ReceiptCheck(False, "the entry signature is not the kiosk key's", key_id=kid,
                            why="bad_signature")
    try:
        obj = parse_body(body)
    except EncodingError as exc:
        return ReceiptCheck(False, f"the signed body is not a ledger entry: {exc}", key_id=kid,
                            why="not_an_entry")
    data = obj.get("data") or {}
    if obj.get("type") != "donation" or obj.get("seq") != seq or obj.get("key_id") != kid:
        return ReceiptCheck(False, "the signed body is not this donation (type, seq or key id differ)", key_id=kid,
                            why="not_this_donation")
    try:
        cp, _ = cpmod.parse(note)
    except cpmod.CheckpointError as exc:
        return ReceiptCheck(False, f"checkpoint: {exc}", obj, key_id=kid, why="bad_checkpoint")
    if cp.origin != cpmod.origin_for(str(obj.get("kiosk"))):
        return ReceiptCheck(False, f"the checkpoint is for log {cp.origin!r}, not this kiosk's", obj, key_id=kid,
                            why="other_log")
    if not merkle.verify_inclusion(leaf, seq - 1, cp.size, proof, cp.root):
        return ReceiptCheck(False, "the inclusion proof does not reach the checkpoint's root", obj, cp.size, kid,
                            why="not_included")
    # A kiosk that re-keyed since: each key_change, signed by the key it replaces and in the same signed
    # tree, hands over to the next key; the checkpoint must be the last key's.
    signer, after = pub, seq
    for kc in changes:
        handed = _key_change(kc, signer, after, obj.get("kiosk"), cp)
        if isinstance(handed, _Refused):
            return ReceiptCheck(False, handed.reason, obj, cp.size, kid, why=handed.why)
        signer, after = handed
    try:
        cpmod.open_note(note, signer)
    except cpmod.CheckpointError as exc:
        return ReceiptCheck(False, f"checkpoint: {exc}", obj, cp.size, kid, why="bad_checkpoint")
    for name, want in (("amount_yen", data.get("amount_yen")), ("project", data.get("project")),
                       ("seq", seq), ("kiosk_id", obj.get("kiosk"))):
        if shown.get(name) != want:
            return ReceiptCheck(False, f"the portal shows {name}={shown.get(name)!r}, the signed body says {want!r}",
                                obj, cp.size, kid, why=f"shown_{name}")
    return ReceiptCheck(True, "verified", obj, cp.size, kid, why="verified")


@dataclass(frozen=True)
class _Refused:
    """Why a key change in the receipt does not hand over the key: the stable word and the English sentence."""

    why: str
    reason: str


def _key_change(kc: Any, signer: Ed25519PublicKey, after: int, kiosk: Any,
                cp: Any) -> tuple[Ed25519PublicKey, int] | _Refused:
    """The next key and seq if ``kc`` is a key_change entry ``signer`` signed after ``after`` in the tree
    ``cp``; else why not."""
    from kiosk.ledger import merkle
    from kiosk.ledger.encoding import VOUCHED_BY_PREVIOUS_KEY, EncodingError, entry_hash, parse_body
    from kiosk.ledger.keys import key_id, public_raw

    try:
        body = base64.b64decode(kc["entry_body"], validate=True)
        sig = bytes.fromhex(kc["entry_signature"])
        proof = [bytes.fromhex(p) for p in kc["proof"]]
        obj = parse_body(body)
        new = Ed25519PublicKey.from_public_bytes(bytes.fromhex(obj["data"]["public_key"]))
    except (KeyError, TypeError, ValueError, binascii.Error, EncodingError):
        return _Refused("key_change", "a key change in the receipt is malformed")
    kseq = obj.get("seq")
    if obj.get("type") != "key_change" or obj.get("kiosk") != kiosk or not isinstance(kseq, int) or kseq <= after:
        return _Refused("key_change", "a key change in the receipt is not this kiosk's, or out of order")
    if obj["data"].get("vouched_by") != VOUCHED_BY_PREVIOUS_KEY:
        return _Refused("admin_key_change", "the kiosk's key was replaced on an administrator's word: only the portal "
                                            "vouches for the new key")
    leaf = entry_hash(body)
    try:
        signer.verify(sig, leaf)
    except InvalidSignature:
        return _Refused("key_change", f"the key change at seq={kseq} is not signed by the key it replaces")
    if obj.get("key_id") != key_id(public_raw(signer)):
        return _Refused("key_change", f"the key change at seq={kseq} names another signing key")
    if not merkle.verify_inclusion(leaf, kseq - 1, cp.size, proof, cp.root):
        return _Refused("key_change", f"the key change at seq={kseq} is not in the signed checkpoint")
    return new, kseq

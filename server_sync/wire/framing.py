"""The kiosk ↔ portal wire protocol's framing: limits, signed requests, batch documents.

Everything here is pure (no I/O) and shared by the kiosk-side uploader and the portal, so the two cannot
disagree about what is signed. The exact formats are documented in docs/sync.md; keep the two in step.
The request and answer models the portal validates with are in :mod:`server_sync.wire.protocol`, which
re-exports all of this: this part imports no pydantic, so the kiosk's uploader, built while ``kiosk run``
starts, costs the start no pydantic import (cold start, #16).
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PROTOCOL = "kiosk-sync/1"
SIGNATURE_CONTEXT = "kiosk-sync-request/v1"
ENROLL_CONTEXT = "kiosk-enroll/v1"

# Limits. A batch of 500 typical entries is ~250 KB of JSON; the caps leave room without letting one
# request pin a worker for long (signature checks run at ~7k/s per core).
MAX_BATCH_ENTRIES = 1000
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_ENTRY_BYTES = 16 * 1024
MAX_PAYMENT_DETAIL = 200
"""Characters of the payment terminal's status line in a heartbeat (the kiosk cuts longer ones)."""
MAX_PROOF_HASHES = 64
DEFAULT_BATCH_ENTRIES = 500
# How far a request's creation time may be from the portal's clock. The uploader learns the portal's
# clock from every answer, so a kiosk with a wrong clock still signs acceptable times.
MAX_CLOCK_SKEW_S = 300

H_DIGEST = "Content-Digest"
H_IDEMPOTENCY = "Idempotency-Key"
H_KIOSK = "Kiosk-Id"
H_CREATED = "Kiosk-Created"
H_SIGNATURE = "Kiosk-Signature"

KIOSK_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
IDEMPOTENCY_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,200}$")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Strict standard base64; raises ValueError on anything else."""
    return base64.b64decode(text.encode("ascii"), validate=True)


def content_digest(body: bytes) -> str:
    """RFC 9530 ``Content-Digest`` field value for ``body`` (sha-256)."""
    return f"sha-256=:{b64(hashlib.sha256(body).digest())}:"


def signature_base(method: str, path: str, digest: str, idempotency_key: str, kiosk_id: str, created: int) -> bytes:
    """The exact bytes a kiosk signs for one request (docs/sync.md, "Signed requests").

    ``path`` is the request target as sent: path plus ``?query`` when there is one.
    """
    lines = [SIGNATURE_CONTEXT, method.upper(), path, digest, idempotency_key, kiosk_id, str(created)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def sign_request(sk: Ed25519PrivateKey, kiosk_id: str, method: str, path: str, body: bytes,
                 created: int, idempotency_key: str = "") -> dict[str, str]:
    """Headers that authenticate one request."""
    digest = content_digest(body)
    sig = sk.sign(signature_base(method, path, digest, idempotency_key, kiosk_id, created))
    headers = {H_DIGEST: digest, H_KIOSK: kiosk_id, H_CREATED: str(created), H_SIGNATURE: b64(sig)}
    if idempotency_key:
        headers[H_IDEMPOTENCY] = idempotency_key
    return headers


def verify_request_signature(pub: Ed25519PublicKey, signature_b64: str, base: bytes) -> bool:
    try:
        pub.verify(unb64(signature_b64), base)
        return True
    except (InvalidSignature, ValueError):
        return False


def enroll_message(kiosk_id: str, code: str, public_key_hex: str) -> bytes:
    """What the kiosk signs at enrollment: proof that it holds the key it registers."""
    return f"{ENROLL_CONTEXT}\n{kiosk_id}\n{code}\n{public_key_hex}\n".encode()


def idempotency_key(kiosk_id: str, first_seq: int, last_seq: int, old_cp_size: int, cp_size: int) -> str:
    """Derived from the kiosk and the range (plus the checkpoint sizes, which fix the rest of the body).

    A kiosk that crashes and resends the same range sends the same key and, because the batch is
    built deterministically from those numbers, the same bytes.
    """
    return f"{kiosk_id}:{first_seq}-{last_seq}:cp{old_cp_size}-{cp_size}"


def normalise_code(code: str) -> str:
    """Enrollment codes are typed by people: ignore case, spaces and dashes."""
    return re.sub(r"[\s-]", "", code).upper()


def batch_end(accepted: int, target: int, max_entries: int, checkpoint_seqs: list[int]) -> int:
    """The last seq of the next batch after ``accepted`` (the batch rule of docs/sync.md).

    ``checkpoint_seqs``: seqs of the kiosk's checkpoint entries in ``accepted+1 ..``. When the rest does
    not fit in one batch, the batch ends at the newest checkpoint entry within reach, so the portal can
    accept all of it on that entry's one signature instead of checking each entry's; entries after the
    newest checkpoint entry are checked one by one wherever they fall, so the rest goes whole.
    """
    last = min(target, accepted + max_entries)
    if last == target:
        return last
    ends = [c for c in checkpoint_seqs if accepted < c <= last]
    return max(ends) if ends else last


def batch_document(kiosk_id: str, entries: list[tuple[int, bytes, bytes]], checkpoint: str | None,
                   old_size: int, proof: list[bytes]) -> dict[str, Any]:
    """The JSON body of an upload, from (seq, body, signature) triples."""
    return {
        "protocol": PROTOCOL,
        "kiosk_id": kiosk_id,
        "first_seq": entries[0][0],
        "last_seq": entries[-1][0],
        "entries": [{"seq": s, "body": b64(b), "signature": b64(sig)} for s, b, sig in entries],
        "checkpoint": checkpoint,
        "consistency": {"old_size": old_size, "proof": [b64(p) for p in proof]},
    }

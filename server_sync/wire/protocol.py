"""The kiosk ↔ portal wire protocol: limits, signed requests, batch documents, and the models of requests
and answers the portal validates.

The framing (limits, signatures, batch documents) is in :mod:`server_sync.wire.framing`, without pydantic,
and re-exported here; the models below are pydantic's. The exact formats are documented in docs/sync.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from server_sync.wire.framing import (
    DEFAULT_BATCH_ENTRIES,
    ENROLL_CONTEXT,
    H_CREATED,
    H_DIGEST,
    H_IDEMPOTENCY,
    H_KIOSK,
    H_SIGNATURE,
    IDEMPOTENCY_RE,
    KIOSK_ID_RE,
    MAX_BATCH_ENTRIES,
    MAX_BODY_BYTES,
    MAX_CLOCK_SKEW_S,
    MAX_ENTRY_BYTES,
    MAX_PAYMENT_DETAIL,
    MAX_PROOF_HASHES,
    PROTOCOL,
    SIGNATURE_CONTEXT,
    b64,
    batch_document,
    batch_end,
    content_digest,
    enroll_message,
    idempotency_key,
    normalise_code,
    sign_request,
    signature_base,
    unb64,
    verify_request_signature,
)

__all__ = [
    "BatchRequest", "ConfigRefused", "Consistency", "DEFAULT_BATCH_ENTRIES", "ENROLL_CONTEXT", "EnrollRequest",
    "ErrorAnswer", "H_CREATED", "H_DIGEST", "H_IDEMPOTENCY", "H_KIOSK", "H_SIGNATURE", "IDEMPOTENCY_RE",
    "KIOSK_ID_RE", "KioskNow", "MAX_BATCH_ENTRIES", "MAX_BODY_BYTES", "MAX_CLOCK_SKEW_S", "MAX_CONFIG_REFUSED_DETAIL",
    "MAX_ENTRY_BYTES", "MAX_PAYMENT_DETAIL", "MAX_PROOF_HASHES", "PROTOCOL", "PaymentHealth", "SIGNATURE_CONTEXT",
    "SyncAnswer", "WireEntry", "b64", "batch_document", "batch_end", "content_digest", "enroll_message",
    "idempotency_key", "normalise_code", "sign_request", "signature_base", "unb64", "verify_request_signature",
]


# --- documents -----------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class WireEntry(_Strict):
    seq: int = Field(ge=1, le=2**53 - 1)
    body: str = Field(max_length=MAX_ENTRY_BYTES * 4 // 3 + 4, description="base64 of the exact signed body bytes")
    signature: str = Field(max_length=100, description="base64 of the 64-byte Ed25519 signature over entry_hash")


class Consistency(_Strict):
    old_size: int = Field(ge=0, le=2**53 - 1, description="size of the checkpoint the portal acknowledged")
    proof: list[str] = Field(max_length=MAX_PROOF_HASHES, description="RFC 9162 consistency proof, base64 hashes")


class PaymentHealth(_Strict):
    """The payment terminal's own word at heartbeat time (``PaymentTerminal.health()``), for the fleet page.

    A report, not a ledger fact: it tells staff a kiosk cannot take money before a citizen finds out.
    """

    terminal: str = Field(pattern=r"^[a-z][a-z0-9_]{0,15}$", description="the [payment] terminal: sim, square…")
    state: Literal["ready", "busy", "offline", "error"]
    detail: str = Field("", max_length=MAX_PAYMENT_DETAIL, description="one line for staff (never a card number)")


MAX_CONFIG_REFUSED_DETAIL = 200
"""Characters of a refused config's detail line in a heartbeat (the kiosk cuts longer ones: kiosk/sync/uploader.py
``CONFIG_REFUSED_DETAIL``, which does not import this module)."""


class ConfigRefused(_Strict):
    """A pushed config the kiosk fetched and refused (kiosk/sync/uploader.py ``_pull_config``), for the kiosks page:
    staff see that the playlist will not arrive by itself, why, and what to do (docs/portal.md)."""

    version: int = Field(ge=1, le=2**31 - 1, description="the config version the kiosk refused (as the heartbeat "
                         "answer's config_version named it)")
    reason: str = Field(pattern=r"^[a-z][a-z_]{0,15}$", description="media, invalid, damaged, disk or other; a "
                        "portal says a reason it does not know as other")
    detail: str = Field("", max_length=MAX_CONFIG_REFUSED_DETAIL, pattern=r"^[^\x00-\x1f\x7f]*$",
                        description="the kiosk's own words, one line, for the administrator")


class KioskNow(_Strict):
    """The kiosk's clocks when it said hello: lets the portal fix times per boot.

    Sent in the heartbeat, never in a batch, so a batch's bytes depend only on its range.
    """

    boot: int = Field(ge=0, le=2**53 - 1)
    mono_ms: int = Field(ge=0, le=2**53 - 1)
    wall_ms: int = Field(ge=0, le=2**53 - 1)
    clock_synced: bool
    ledger_size: int = Field(ge=0, le=2**53 - 1)
    payment: PaymentHealth | None = None
    """Absent from kiosks older than this field and from tools that sync without a running kiosk."""
    config_refused: ConfigRefused | None = None
    """The newest pushed config the kiosk refused and has not applied a newer one since; absent when there is none
    (and from kiosks older than this field)."""


class BatchRequest(_Strict):
    protocol: str = Field(PROTOCOL, pattern=r"^kiosk-sync/1$")
    kiosk_id: str = Field(pattern=KIOSK_ID_RE.pattern)
    first_seq: int = Field(ge=1, le=2**53 - 1)
    last_seq: int = Field(ge=1, le=2**53 - 1)
    entries: list[WireEntry] = Field(min_length=1, max_length=MAX_BATCH_ENTRIES)
    checkpoint: str | None = Field(None, max_length=2000, description="the kiosk's latest signed checkpoint note")
    consistency: Consistency


class EnrollRequest(_Strict):
    kiosk_id: str = Field(pattern=KIOSK_ID_RE.pattern)
    code: str = Field(min_length=1, max_length=64)
    public_key: str = Field(pattern=r"^[0-9a-f]{64}$", description="raw Ed25519 public key, hex")
    signature: str = Field(max_length=100, description="base64 Ed25519 signature over the enroll message")


class SyncAnswer(BaseModel):
    """A successful upload or state answer."""

    kiosk_id: str
    accepted_through_seq: int
    checkpoint_size: int
    server_time: int = Field(description="portal clock, ms since the Unix epoch")
    config_version: int
    pepper_epoch: int = Field(0, description="the city's newest donor-token pepper epoch (0: none yet); a kiosk "
                                             "that lacks it asks POST /api/v1/kiosks/{id}/peppers")
    next_sync_after: int = Field(description="seconds the kiosk should wait before its next sync")
    duplicates: int = Field(0, description="entries in the batch the portal already held (same bytes)")
    accepted: int = Field(0, description="entries newly stored by this request")
    replayed: bool = Field(False, description="the stored answer to an earlier request with this Idempotency-Key")


class ErrorAnswer(BaseModel):
    error: str
    reason: str

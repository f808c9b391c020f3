"""Checking a kiosk's signed request (signature base: server_sync.wire.protocol.signature_base)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine

from kiosk.ledger.keys import public_from_raw
from server_sync.db import KIOSK_ROW
from server_sync.errors import PortalError
from server_sync.wire import protocol as P
from server_sync.wire.numbers import decimal


def authenticate(engine: Engine, method: str, target: str, headers: Mapping[str, str], body: bytes,
                 now_ms: int, path_kiosk: str, *, private: bool = False) -> dict[str, Any]:
    """Return the enrolled kiosk's row, or raise :class:`PortalError` saying what is wrong. ``private``: the
    request asks for something private (the city's pepper, a card's points), which a revoked key is refused
    (:func:`server_sync.kiosk_keys.refuse_revoked_request_key`); heartbeats and batches are not private."""
    kiosk_id = headers.get(P.H_KIOSK)
    created_s = headers.get(P.H_CREATED)
    sig = headers.get(P.H_SIGNATURE)
    digest = headers.get(P.H_DIGEST)
    missing = [h for h, v in ((P.H_KIOSK, kiosk_id), (P.H_CREATED, created_s), (P.H_SIGNATURE, sig),
                              (P.H_DIGEST, digest)) if not v]
    if missing:
        raise PortalError(401, "unsigned", f"signed request headers missing: {', '.join(missing)}")
    if digest != P.content_digest(body):
        raise PortalError(400, "digest_mismatch", "Content-Digest does not match the body (sha-256)")
    created = decimal(created_s, 0, 10**12)  # ASCII digits only: "²".isdigit() is True, int("²") fails
    if created is None:
        raise PortalError(401, "bad_created", f"{P.H_CREATED} must be Unix seconds (ASCII digits)")
    if abs(created * 1000 - now_ms) > P.MAX_CLOCK_SKEW_S * 1000:
        # Replays and badly set kiosk clocks land here; server_time lets an honest kiosk correct itself.
        raise PortalError(401, "stale_request", f"request created {created}, portal time is {now_ms // 1000} "
                          f"(allowed skew {P.MAX_CLOCK_SKEW_S} s)", server_time=now_ms)
    if kiosk_id != path_kiosk:
        raise PortalError(403, "kiosk_mismatch", f"signed as {kiosk_id!r} but addressed to {path_kiosk!r}")
    idem = headers.get(P.H_IDEMPOTENCY, "")
    if idem and not P.IDEMPOTENCY_RE.match(idem):
        raise PortalError(400, "bad_idempotency_key", "Idempotency-Key must be 1-200 of A-Z a-z 0-9 . _ : / -")
    with engine.connect() as conn:
        row = conn.execute(KIOSK_ROW, {"kid": kiosk_id}).mappings().first()
    if row is None:
        raise PortalError(401, "unknown_kiosk", f"kiosk {kiosk_id!r} is not enrolled")
    base = P.signature_base(method, target, digest, idem, kiosk_id, created)
    if not P.verify_request_signature(public_from_raw(row["public_key"]), sig, base):  # type: ignore[arg-type]
        raise PortalError(401, "bad_request_signature", "request signature does not verify with the enrolled key")
    if private:
        from server_sync.kiosk_keys import refuse_revoked_request_key  # the key events: the portal's web side

        refuse_revoked_request_key(engine, kiosk_id, bytes(row["public_key"]))
    return dict(row)

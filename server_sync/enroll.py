"""Enrollment: one-time codes issued by staff, redeemed by a kiosk to register its public key.

Only SHA-256 of a code is stored, so a database dump does not hand out codes. The kiosk proves it
holds the private key by signing the enroll message (server_sync.wire.protocol.enroll_message).

Redeeming is idempotent for the kiosk and key that redeemed the code (the answer may have been lost),
and a fresh code for a kiosk already enrolled with the same key simply enrolls it again; a used code
presented with any other key, or for another kiosk, is refused.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from kiosk.ledger.encoding import ZERO_HASH
from kiosk.ledger.keys import key_id, public_from_raw
from server_sync import kiosk_keys
from server_sync.configstore import current_version
from server_sync.db import enroll_codes, kiosks, writing
from server_sync.errors import PortalError
from server_sync.wire import protocol as P

# Crockford-style alphabet without 0/O/1/I/L/U: codes are read aloud and typed.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_CHARS = 12
CODE_TTL_DAYS = 7
CODE_MAX_DAYS = 365
"""The longest a code may stay valid (a code is a credential lying around until it is used)."""


def _hash(code: str) -> str:
    return hashlib.sha256(P.normalise_code(code).encode()).hexdigest()


def issue_code(engine: Engine, kiosk_id: str, ttl_days: int = CODE_TTL_DAYS) -> str:
    """A new one-time code for ``kiosk_id``, printed as XXXX-XXXX-XXXX."""
    if not P.KIOSK_ID_RE.match(kiosk_id):
        raise ValueError(f"kiosk id {kiosk_id!r} must be 2-40 lowercase letters, digits or dashes")
    if isinstance(ttl_days, bool) or not isinstance(ttl_days, int) or not 1 <= ttl_days <= CODE_MAX_DAYS:
        raise ValueError(f"a code stays valid 1 to {CODE_MAX_DAYS} days, not {ttl_days!r}")
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_CHARS))
    now = time.time_ns() // 1_000_000
    with writing(engine) as conn:
        conn.execute(enroll_codes.insert().values(code_hash=_hash(raw), kiosk_id=kiosk_id, created_ms=now,
                                                  expires_ms=now + ttl_days * 86_400_000))
    return "-".join(raw[i:i + 4] for i in range(0, CODE_CHARS, 4))


def enroll(engine: Engine, req: P.EnrollRequest) -> dict[str, Any]:
    pub_raw = bytes.fromhex(req.public_key)
    try:
        pub = public_from_raw(pub_raw)
    except ValueError:
        raise PortalError(422, "bad_public_key", "public_key is not a valid Ed25519 key") from None
    if not P.verify_request_signature(pub, req.signature, P.enroll_message(req.kiosk_id, req.code, req.public_key)):
        raise PortalError(401, "bad_enroll_signature", "enrollment not signed by the key being registered")
    now = time.time_ns() // 1_000_000
    with writing(engine) as conn:
        code = conn.execute(select(enroll_codes).where(enroll_codes.c.code_hash == _hash(req.code))
                            .with_for_update()).mappings().first()
        if code is None:
            raise PortalError(404, "unknown_code", "unknown enrollment code (check it, or ask staff for a new one)")
        if code["used_ms"] is not None:
            # Idempotent: the kiosk that redeemed this code, with the key it registered, may ask again. That is
            # a retry whose answer was lost (a dropped link, or a power cut before the kiosk saved it): it gets
            # the same answer instead of being left "not enrolled" with a spent code.
            mine = conn.execute(select(kiosks.c.public_key).where(kiosks.c.id == req.kiosk_id)).first()
            if code["kiosk_id"] == req.kiosk_id and mine is not None and mine[0] == pub_raw:
                version = current_version(conn, req.kiosk_id)
                return {"kiosk_id": req.kiosk_id, "key_id": key_id(pub_raw), "server_time": now,
                        "config_version": version}
            raise PortalError(409, "code_used", "this enrollment code was already used; ask staff for a new one")
        if code["expires_ms"] < now:
            raise PortalError(410, "code_expired", "this enrollment code has expired; ask staff for a new one")
        if code["kiosk_id"] != req.kiosk_id:
            raise PortalError(403, "code_for_other_kiosk",
                              f"this code was issued for kiosk {code['kiosk_id']!r}, not {req.kiosk_id!r}")
        existing = conn.execute(select(kiosks.c.public_key, kiosks.c.size).where(kiosks.c.id == req.kiosk_id)
                                .with_for_update()).first()
        if existing is not None and existing[0] != pub_raw and existing[1] > 0:
            raise PortalError(409, "already_enrolled",
                              f"kiosk {req.kiosk_id!r} is enrolled with another key and has entries on the portal; "
                              "a new key needs a new kiosk id")
        conn.execute(update(enroll_codes).where(enroll_codes.c.code_hash == code["code_hash"]).values(used_ms=now))
        if existing is None:
            conn.execute(kiosks.insert().values(
                id=req.kiosk_id, public_key=pub_raw, key_id=key_id(pub_raw), enrolled_ms=now, size=0,
                tip=ZERO_HASH, cp_size=0, reported_size=0, config_applied=0, alarm=False))
        else:
            conn.execute(update(kiosks).where(kiosks.c.id == req.kiosk_id).values(
                public_key=pub_raw, key_id=key_id(pub_raw)))
        kiosk_keys.record_enrolment(conn, req.kiosk_id, pub_raw, now)
        version = current_version(conn, req.kiosk_id)
    return {"kiosk_id": req.kiosk_id, "key_id": key_id(pub_raw), "server_time": now, "config_version": version}

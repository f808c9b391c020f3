"""The city's donor-token pepper: one secret per token domain, with epochs (docs/privacy.md).

The portal makes the pepper (at the first kiosk that asks, or ``kiosk-portal pepper rotate``) and keeps
it in ``portal_peppers``. It leaves the portal only sealed to one kiosk (:mod:`server_sync.wire.seal`),
in the answer to that kiosk's signed ``POST /api/v1/kiosks/{id}/peppers``: the kiosk sends the X25519
key it made for this, the portal stores it and answers with every epoch sealed to it. Kiosks never send
a pepper back, and no pepper is in the ledger, the logs or any other answer.

The portal never computes a token (it has no card IDs): the pepper is here only to be handed to kiosks,
so every kiosk of the city makes the same token for one card.

- enrollment: ``kiosk enroll`` asks right after the code is accepted;
- an already-enrolled kiosk (its own pepper, made before the city had one): its next sync round sees
  the heartbeat's ``pepper_epoch`` and asks; its own epochs stay for the tokens it already wrote;
- rotation: ``kiosk-portal pepper rotate`` adds an epoch; each kiosk learns it from its next heartbeat.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from server_sync.auth import authenticate
from server_sync.db import kiosks, peppers, settings, writing
from server_sync.errors import PortalError
from server_sync.wire import protocol as P
from server_sync.wire import seal

CITY_FIRST_EPOCH = 1000
"""The first city epoch (kiosk.ledger.pepper.CITY_FIRST_EPOCH: a kiosk's own epochs stay below it)."""
PEPPER_BYTES = 32
DOMAIN_SETTING = "token_domain"
DOMAIN_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")


class PepperRequest(BaseModel):
    model_config = {"extra": "forbid"}
    seal_key: str = Field(pattern=r"^[0-9a-f]{64}$", description="the kiosk's X25519 public key, hex")


def _now() -> int:
    return time.time_ns() // 1_000_000


def domain(conn: Connection) -> str | None:
    row = conn.execute(select(settings.c.value).where(settings.c.name == DOMAIN_SETTING)).first()
    return row[0] if row else None


def current_epoch(conn: Connection) -> int:
    """The newest city epoch, 0 before the city has a pepper."""
    return int(conn.execute(select(func.max(peppers.c.epoch))).scalar() or 0)


def ensure(engine: Engine, name: str | None = None) -> tuple[str, int]:
    """The token domain and current epoch, making the first pepper if there is none yet (idempotent)."""
    with engine.connect() as conn:
        d, ep = domain(conn), current_epoch(conn)
    if d is not None and ep:
        return d, ep
    if name is not None and not DOMAIN_RE.match(name):
        raise ValueError(f"token domain {name!r} must be 2-40 lowercase letters, digits or dashes")
    try:
        with writing(engine) as conn:
            if domain(conn) is None:
                conn.execute(settings.insert().values(name=DOMAIN_SETTING,
                                                      value=name or f"city-{secrets.token_hex(4)}"))
            if not current_epoch(conn):
                conn.execute(peppers.insert().values(epoch=CITY_FIRST_EPOCH, pepper=secrets.token_bytes(PEPPER_BYTES),
                                                     created_ms=_now()))
    except IntegrityError:
        pass  # another portal worker made it at the same moment: theirs is the city's
    with engine.connect() as conn:
        return domain(conn) or "", current_epoch(conn)


def rotate(engine: Engine) -> int:
    """Add a new epoch (the first one if there is none); returns it. Old epochs stay: kiosks keep them to
    count a card's points and daily limit across the rotation, and my pages link the card's tokens."""
    ensure(engine)
    for _ in range(3):
        try:
            with writing(engine) as conn:
                new = current_epoch(conn) + 1
                conn.execute(peppers.insert().values(epoch=new, pepper=secrets.token_bytes(PEPPER_BYTES),
                                                     created_ms=_now()))
                return new
        except IntegrityError:
            continue  # a concurrent rotation took that number: take the next
    raise RuntimeError("could not rotate the pepper: concurrent rotations kept colliding")


def status(engine: Engine) -> dict[str, Any]:
    """What staff may see: the domain, the epochs and when they were made, how many kiosks hold a seal key.
    Never a pepper."""
    with engine.connect() as conn:
        eps = conn.execute(select(peppers.c.epoch, peppers.c.created_ms).order_by(peppers.c.epoch)).all()
        sealed = conn.execute(select(func.count()).select_from(kiosks).where(kiosks.c.seal_key.is_not(None))).scalar()
        total = conn.execute(select(func.count()).select_from(kiosks)).scalar()
        return {"domain": domain(conn), "current_epoch": current_epoch(conn),
                "epochs": [{"epoch": e, "created_ms": c} for e, c in eps],
                "kiosks_with_seal_key": int(sealed or 0), "kiosks": int(total or 0)}


def provision(engine: Engine, kiosk_id: str, seal_key: bytes) -> dict[str, Any]:
    """Record ``kiosk_id``'s seal key and answer with every epoch sealed to it.

    The caller has authenticated the request as ``kiosk_id`` (its Ed25519 key signed it), so a new
    seal key replaces an old one: a kiosk whose key file was lost makes a new one and asks again.
    """
    dom, _ = ensure(engine)
    with writing(engine) as conn:
        conn.execute(update(kiosks).where(kiosks.c.id == kiosk_id).values(seal_key=seal_key))
        rows = conn.execute(select(peppers.c.epoch, peppers.c.pepper).order_by(peppers.c.epoch)).all()
    boxes = [{"epoch": ep, "sealed": seal.seal(seal_key, pep, seal.aad(dom, ep, kiosk_id)).hex()} for ep, pep in rows]
    return {"domain": dom, "current_epoch": rows[-1][0], "peppers": boxes}


_REFUSALS: dict[int | str, dict[str, Any]] = {code: {"model": P.ErrorAnswer, "description": d} for code, d in (
    (401, "unsigned, forged, stale or unknown kiosk"), (403, "wrong kiosk, or its key is revoked (key_revoked)"),
    (413, "request body over 1024 bytes"), (422, "invalid seal key"), (503, "database busy; retry"),
    (507, "the portal's disk is full (no_room): nothing was saved; retry later"))}
"""The refusals this request can get, in the OpenAPI document (the portal's error shape, server_sync/app.py)."""


def install(app: FastAPI, engine: Engine) -> None:
    @app.post("/api/v1/kiosks/{kiosk_id}/peppers", tags=["sync"], responses=_REFUSALS,
              summary="Register the kiosk's seal key; get the city's pepper epochs sealed to it",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": PepperRequest.model_json_schema()}}}})
    async def kiosk_peppers(kiosk_id: str, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > 1024:
            raise PortalError(413, "too_large", "request body over 1024 bytes")
        target = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
        # private: a revoked key gets no pepper (rotating it after a kiosk is stolen must leave the thief behind).
        await run_in_threadpool(lambda: authenticate(engine, request.method, target, request.headers, raw, _now(),
                                                     kiosk_id, private=True))
        try:
            req = PepperRequest.model_validate(json.loads(raw or b"null"))
        except (ValueError, ValidationError, RecursionError) as exc:  # RecursionError: JSON nested too deep
            raise PortalError(422, "invalid_request", f"body: {str(exc).splitlines()[0]}") from None
        return await run_in_threadpool(provision, engine, kiosk_id, bytes.fromhex(req.seal_key))

"""The kiosk's side of city-wide donor tokens: receive the city's pepper sealed to this kiosk (docs/privacy.md).

The kiosk makes an X25519 key pair of its own (``seal.key`` beside the pepper file, mode 0600, never
sent anywhere but its public half) and asks ``POST /api/v1/kiosks/{id}/peppers`` — a request signed
with its Ed25519 key like every sync request — with the public half. The portal answers every city
epoch sealed to it (server_sync/wire/seal.py); the kiosk opens them and adds them to its pepper file
(:meth:`kiosk.ledger.pepper.Pepper.adopt`), keeping its own older epochs for tokens already written.

When: right after ``kiosk enroll``; then whenever a heartbeat names a ``pepper_epoch`` this kiosk does
not hold (an already-enrolled kiosk on its first sync with a portal that has a city pepper, or after
``kiosk-portal pepper rotate``). A failure is reported and retried at the next round; it never stops
an upload.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kiosk.ledger.pepper import Pepper, PepperError
from kiosk.ledger.secretfile import write_secret
from server_sync.wire import seal

log = logging.getLogger(__name__)

SEAL_KEY_NAME = "seal.key"


class PepperSyncError(Exception):
    """The portal's answer could not be used (nothing was written)."""


def seal_key_path(pepper_path: Path) -> Path:
    """Where the kiosk keeps the private key the city's pepper is sealed to: beside the pepper file."""
    return pepper_path.with_name(SEAL_KEY_NAME)


def load_or_create_seal_key(path: Path) -> X25519PrivateKey:
    if path.exists():
        raw = path.read_bytes()
        if len(raw) != 32:
            raise PepperSyncError(f"{path} is {len(raw)} bytes, not an X25519 private key (32): remove it to make "
                                  "a new one")
        return X25519PrivateKey.from_private_bytes(raw)
    key = X25519PrivateKey.generate()
    write_secret(path, key.private_bytes_raw(), replace=False)
    return key


def open_answer(key: X25519PrivateKey, kiosk_id: str, answer: Any) -> tuple[str, dict[int, bytes]]:
    """The token domain and every epoch's pepper from the portal's answer; :class:`PepperSyncError` if any
    box is malformed or does not open for this kiosk's key."""
    if not isinstance(answer, dict) or not isinstance(answer.get("domain"), str) \
            or not isinstance(answer.get("peppers"), list) or not answer["peppers"]:
        raise PepperSyncError("the portal's pepper answer is malformed")
    domain = answer["domain"]
    out: dict[int, bytes] = {}
    for item in answer["peppers"]:
        try:
            epoch, box = int(item["epoch"]), bytes.fromhex(item["sealed"])
        except (KeyError, TypeError, ValueError):
            raise PepperSyncError("the portal's pepper answer is malformed") from None
        try:
            out[epoch] = seal.open_box(key, box, seal.aad(domain, epoch, kiosk_id))
        except seal.SealError as exc:
            raise PepperSyncError(f"pepper epoch {epoch}: {exc}") from None
    return domain, out


def fetch(uploader: Any, pepper_path: Path, live: Pepper | None = None) -> list[int]:
    """Ask the portal for the city's pepper and adopt it; returns the epochs that were new.

    ``uploader`` is a :class:`kiosk.sync.uploader.Uploader` (its signed ``_call``); ``live`` is the running
    kiosk's Pepper, updated in place so the next tap uses the new epoch (else the file is loaded).
    """
    key = load_or_create_seal_key(seal_key_path(pepper_path))
    body = json.dumps({"seal_key": key.public_key().public_bytes_raw().hex()}).encode()
    status, data, resp = uploader._call("POST", f"/api/v1/kiosks/{uploader.kiosk_id}/peppers", body)
    if status != 200:
        raise uploader._fail(status, data, resp)
    domain, peppers = open_answer(key, uploader.kiosk_id, data)
    pepper = live if live is not None else Pepper.load(pepper_path)
    try:
        new = pepper.adopt(pepper_path, domain, peppers)
    except PepperError as exc:
        raise PepperSyncError(str(exc)) from None
    if new:
        log.info("city pepper: token domain %s, epochs %s adopted (now epoch %d)", domain, new, pepper.epoch)
    return new

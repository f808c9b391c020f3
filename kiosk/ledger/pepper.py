"""The donor-token pepper: a secret kept outside the ledger file.

A raw IDm is 2 manufacturer bytes + 6 serial bytes, so a plain hash of it is
brute-forceable and anyone holding the card can confirm it. The donor token is
therefore ``HMAC-SHA256(pepper, IDm)[:16]`` with a pepper that lives in its own
0600 file, never in the ledger or its exports. Each pepper has an epoch number
so it can be rotated: entries record the epoch their token was made under.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from kiosk.ledger.secretfile import write_secret

PEPPER_BYTES = 32
TOKEN_BYTES = 16


class PepperError(Exception):
    """The pepper file is missing, unreadable or malformed."""


@dataclass(frozen=True)
class DonorToken:
    """An anonymous, keyed card token. ``hex`` is 32 lowercase hex chars."""

    hex: str
    epoch: int

    def __repr__(self) -> str:  # short on purpose: tokens show up in logs
        return f"DonorToken({self.hex[:8]}…, epoch={self.epoch})"


class Pepper:
    """All pepper epochs; the highest is used for new tokens."""

    def __init__(self, peppers: dict[int, bytes]):
        if not peppers:
            raise PepperError("pepper file holds no epochs")
        for epoch, key in peppers.items():
            if len(key) != PEPPER_BYTES:
                raise PepperError(f"pepper epoch {epoch} is {len(key)} bytes, expected {PEPPER_BYTES}")
        self._peppers = dict(peppers)

    @property
    def epoch(self) -> int:
        return max(self._peppers)

    @property
    def epochs(self) -> list[int]:
        return sorted(self._peppers)

    def token(self, idm: bytes, epoch: int | None = None) -> DonorToken:
        """Token for a card ID under ``epoch`` (default: the current one)."""
        if not isinstance(idm, (bytes, bytearray)) or len(idm) != 8:
            raise ValueError("an IDm is exactly 8 bytes")
        ep = self.epoch if epoch is None else epoch
        key = self._peppers.get(ep)
        if key is None:
            raise PepperError(f"no pepper for epoch {ep}")
        digest = hmac.new(key, bytes(idm), hashlib.sha256).digest()[:TOKEN_BYTES]
        return DonorToken(digest.hex(), ep)

    def all_tokens(self, idm: bytes) -> list[DonorToken]:
        """The card's token under every epoch (to join history across rotations)."""
        return [self.token(idm, ep) for ep in self.epochs]

    # --- file I/O -----------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Pepper:
        p = Path(path)
        try:
            raw = json.loads(p.read_text("utf-8"))
            peppers = {int(k): bytes.fromhex(v) for k, v in raw["peppers"].items()}
        except FileNotFoundError:
            raise PepperError(f"pepper file {p} does not exist (run `kiosk keygen` or `kiosk demo`)") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PepperError(f"pepper file {p} is unreadable or malformed: {exc}") from None
        return cls(peppers)

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> Pepper:
        """Write a new pepper file (epoch 1). Refuses to overwrite one."""
        p = Path(path)
        pepper = cls({1: secrets.token_bytes(PEPPER_BYTES)})
        pepper._write(p, exclusive=True)
        return pepper

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> Pepper:
        return cls.load(path) if Path(path).exists() else cls.create(path)

    def rotate(self, path: str | os.PathLike[str]) -> int:
        """Add a new epoch and rewrite the file atomically; returns the new epoch."""
        new = self.epoch + 1
        self._peppers[new] = secrets.token_bytes(PEPPER_BYTES)
        self._write(Path(path), exclusive=False)
        return new

    def _write(self, p: Path, exclusive: bool) -> None:
        data = json.dumps(
            {"format": "kiosk-pepper/1", "peppers": {str(k): v.hex() for k, v in sorted(self._peppers.items())}},
            indent=1,
        ).encode()
        write_secret(p, data, replace=not exclusive)

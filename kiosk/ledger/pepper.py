"""The donor-token pepper: a secret kept outside the ledger file.

A raw IDm is 2 manufacturer bytes + 6 serial bytes, so a plain hash of it is
brute-forceable and anyone holding the card can confirm it. The donor token is
therefore ``HMAC-SHA256(pepper, IDm)[:16]`` with a pepper that lives in its own
0600 file, never in the ledger or its exports. Each pepper has an epoch number
so it can be rotated: entries record the epoch their token was made under.

City-wide tokens (docs/privacy.md): a city's portal holds one pepper per token domain and seals each
epoch to every kiosk (:mod:`server_sync.wire.seal`), so a card has the same token at every kiosk of the
city. City epochs are numbered from :data:`CITY_FIRST_EPOCH`, above the kiosk's own epochs (a kiosk
made its own random pepper, epoch 1, before it joined a city): both stay in the file, so a card's
tokens under every epoch, its own and the city's, are known to the kiosk, and its balance and daily
limit see all of them (:meth:`Pepper.card_token`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.ledger.secretfile import write_secret

PEPPER_BYTES = 32
TOKEN_BYTES = 16
CITY_FIRST_EPOCH = 1000
"""The city's first pepper epoch. A kiosk's own peppers are numbered from 1 and stay below this."""


class PepperError(Exception):
    """The pepper file is missing, unreadable or malformed."""


@dataclass(frozen=True)
class DonorToken:
    """An anonymous, keyed card token. ``hex`` is 32 lowercase hex chars."""

    hex: str
    epoch: int
    older: tuple[str, ...] = field(default=(), compare=False)
    """The same card's tokens under the kiosk's other pepper epochs (newest first): the balance, the daily
    limit and a my-page request span them. Not part of equality: one card is one token per epoch."""

    def __repr__(self) -> str:  # short on purpose: tokens show up in logs
        return f"DonorToken({self.hex[:8]}…, epoch={self.epoch})"

    @property
    def all_hexes(self) -> tuple[str, ...]:
        """This card's token under every epoch the kiosk knows, the current one first."""
        return (self.hex, *self.older)


class Pepper:
    """All pepper epochs; the highest is used for new tokens."""

    def __init__(self, peppers: dict[int, bytes], domain: str | None = None):
        if not peppers:
            raise PepperError("pepper file holds no epochs")
        for epoch, key in peppers.items():
            if len(key) != PEPPER_BYTES:
                raise PepperError(f"pepper epoch {epoch} is {len(key)} bytes, expected {PEPPER_BYTES}")
            if epoch < 1:
                raise PepperError(f"pepper epoch {epoch} is not a positive number")
        if domain is None and max(peppers) >= CITY_FIRST_EPOCH:
            raise PepperError("pepper file holds city epochs but names no token domain")
        # Replaced whole, never mutated: the reader thread reads it while the sync thread adopts epochs.
        self._peppers = dict(peppers)
        self.domain = domain
        """The city's token domain once the portal provisioned its pepper; ``None``: the kiosk's own only."""

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

    def card_token(self, idm: bytes) -> DonorToken:
        """The token a tap carries: the current epoch's, with the card's tokens under every other epoch in
        ``older`` (so the IDm can be dropped at once and the balance still spans rotations)."""
        peppers = self._peppers  # one snapshot: an adoption on another thread swaps the dict whole
        current = max(peppers)
        tok = self.token(idm, current)
        older = tuple(hmac.new(peppers[ep], bytes(idm), hashlib.sha256).digest()[:TOKEN_BYTES].hex()
                      for ep in sorted(peppers, reverse=True) if ep != current)
        return DonorToken(tok.hex, current, older)

    @property
    def city_epoch(self) -> int | None:
        """The newest city epoch held, ``None`` before the portal provisioned one."""
        city = [e for e in self._peppers if e >= CITY_FIRST_EPOCH]
        return max(city) if city else None

    def adopt(self, path: str | os.PathLike[str], domain: str, peppers: dict[int, bytes]) -> list[int]:
        """Take the city's pepper epochs (opened from the portal's sealed answer) and rewrite the file
        atomically; returns the epochs that were new. The kiosk's own epochs stay (old tokens still count).

        Refuses (:class:`PepperError`, nothing written) another city's domain, an epoch outside the city's
        range, or a different key for an epoch already held: tokens already in the ledger were made with it.
        """
        if not domain:
            raise PepperError("the portal named no token domain")
        if self.domain is not None and domain != self.domain:
            raise PepperError(f"this kiosk's donor tokens belong to token domain {self.domain!r}, "
                              f"not {domain!r}: a kiosk moving to another city needs a new pepper file")
        merged = dict(self._peppers)
        new: list[int] = []
        for epoch, key in sorted(peppers.items()):
            if epoch < CITY_FIRST_EPOCH:
                raise PepperError(f"city pepper epoch {epoch} is below {CITY_FIRST_EPOCH}")
            if len(key) != PEPPER_BYTES:
                raise PepperError(f"city pepper epoch {epoch} is {len(key)} bytes, expected {PEPPER_BYTES}")
            held = merged.get(epoch)
            if held is not None and not hmac.compare_digest(held, key):
                raise PepperError(f"the portal sent a different pepper for epoch {epoch} than the one this "
                                  "kiosk holds; keeping the one held")
            if held is None:
                merged[epoch] = key
                new.append(epoch)
        if not new and self.domain == domain:
            return []
        staged = Pepper(merged, domain)
        staged._write(Path(path), exclusive=False)
        self.domain = domain
        self._peppers = merged
        return new

    # --- file I/O -----------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Pepper:
        p = Path(path)
        try:
            raw = json.loads(p.read_text("utf-8"))
            peppers = {int(k): bytes.fromhex(v) for k, v in raw["peppers"].items()}
            domain = raw.get("domain")
            if domain is not None and not isinstance(domain, str):
                raise ValueError("domain is not a string")
        except FileNotFoundError:
            raise PepperError(f"pepper file {p} does not exist (run `kiosk keygen` or `kiosk demo`)") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PepperError(f"pepper file {p} is unreadable or malformed: {exc}") from None
        return cls(peppers, domain)

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
        """Add a new epoch of the kiosk's own and rewrite the file atomically; returns the new epoch.
        A kiosk in a city does not rotate on its own: the portal does (``kiosk-portal pepper rotate``)."""
        if self.domain is not None:
            raise PepperError(f"this kiosk uses token domain {self.domain!r}: its portal rotates the pepper")
        new = self.epoch + 1
        if new >= CITY_FIRST_EPOCH:
            raise PepperError(f"a kiosk's own pepper epochs stop below {CITY_FIRST_EPOCH}")
        self._peppers = {**self._peppers, new: secrets.token_bytes(PEPPER_BYTES)}
        self._write(Path(path), exclusive=False)
        return new

    def _write(self, p: Path, exclusive: bool) -> None:
        doc: dict[str, object] = {"format": "kiosk-pepper/1" if self.domain is None else "kiosk-pepper/2",
                                  "peppers": {str(k): v.hex() for k, v in sorted(self._peppers.items())}}
        if self.domain is not None:
            doc["domain"] = self.domain
        data = json.dumps(doc, indent=1).encode()
        write_secret(p, data, replace=not exclusive)

"""The ``[kiosk]``, ``[keys]`` and ``[ledger]`` sections: who this kiosk is and where its files live."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from kiosk.config.base import Section
from kiosk.config.plain import DEFAULT_DATA_DIR


class KioskSection(Section):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")
    """Kiosk identifier, unique across the city (lowercase letters, digits, dashes), e.g. ``tsurugashima-center-1``."""

    name: str = "市民活動推進センター"
    """Human name of the place the kiosk stands, shown on staff pages."""

    data_dir: Path = DEFAULT_DATA_DIR
    """Where the ledger, keys, media cache and metrics live. Relative paths are relative to the config file."""

    timezone: str = "Asia/Tokyo"
    """IANA time zone used for business dates (日計)."""

    language: Literal["ja", "en"] = "ja"
    """Default screen language; citizens can toggle to the other."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Level for logs written to stdout (journald)."""

    demo: bool = False
    """A demo or test kiosk: the simulated payment terminal is allowed. ``kiosk doctor`` fails a kiosk that is not a demo and still has ``[payment] terminal = "sim"`` (it would record gifts nobody paid)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a region's folder ("Asia"), not a zone
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as 'Asia/Tokyo')") from None
        return v


class KeysSection(Section):
    private_key: Path = Path("keys/kiosk.key")
    """Ed25519 private key (PEM, mode 0600), made by ``kiosk keygen``. Relative to data_dir."""

    public_key: Path = Path("keys/kiosk.pub")
    """Ed25519 public key (PEM). Relative to data_dir."""

    pepper: Path = Path("keys/pepper.json")
    """HMAC pepper for donor tokens (mode 0600). Kept outside the ledger and never exported. Relative to data_dir."""


class LedgerSection(Section):
    path: Path = Path("ledger.db")
    """SQLite ledger file. Relative to data_dir."""

    checkpoint_every: int = Field(100, ge=1, le=1_000_000)
    """Write a signed Merkle checkpoint after this many entries."""

    checkpoint_minutes: int = Field(60, ge=1, le=24 * 60)
    """...or when this many minutes have passed since the last one (checked on append)."""

    snapshot_every: int = Field(500, ge=1, le=1_000_000)
    """Keep a signed snapshot of the ledger's totals and open intents in the ledger file, renewed after this
    many entries (when the kiosk is idle) and at shutdown: a restart then re-reads only the entries after it."""

"""Turning a config into live parts: keys, pepper and the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiosk.ledger import Ledger, Pepper, keys

if TYPE_CHECKING:
    from kiosk.config import KioskConfig


def ensure_secrets(cfg: KioskConfig) -> None:
    """Create the signing key pair and the pepper if they do not exist yet (first run)."""
    if not cfg.private_key_path.exists():
        # Straight under the configured names: generating as kiosk.key and renaming left, after a crash
        # between the two, a kiosk.key the next start refused to overwrite.
        keys.generate_at(cfg.private_key_path, cfg.public_key_path)
    elif not cfg.public_key_path.exists():
        # A power cut between the two files: the public key is derived from the private one.
        keys.write_public(keys.load_private(cfg.private_key_path), cfg.public_key_path)
    Pepper.load_or_create(cfg.pepper_path)


def open_ledger(cfg: KioskConfig, *, boot: bool = True, clock=None, libsodium: bool = True) -> Ledger:  # noqa: ANN001
    sk = keys.load_private(cfg.private_key_path)
    return Ledger.open(
        cfg.ledger_path, sk, cfg.kiosk.id, timezone=cfg.kiosk.timezone, clock=clock, boot=boot,
        checkpoint_every=cfg.ledger.checkpoint_every, checkpoint_minutes=cfg.ledger.checkpoint_minutes,
        libsodium=libsodium, snapshot_every=cfg.ledger.snapshot_every,
    )

"""``kiosk rekey``: hand the kiosk's ledger over to a new signing key, continuing the same chain.

The ledger side is :meth:`kiosk.ledger.store.Ledger.rekey` (a key_change entry signed by the key in
force) and :meth:`~kiosk.ledger.store.Ledger.announce_new_key` (the old key is lost: the new key signs
its own key_change and an administrator vouches for it at the portal). This module moves the key files
so that a crash at any step is finished by running the command again:

1. the new key is written as ``kiosk.key.next`` (0600) unless it is already there;
2. the key_change entry is appended (skipped when the ledger already names the new key);
3. ``kiosk.key`` becomes ``kiosk.key.previous`` and ``kiosk.key.next`` becomes ``kiosk.key``; ``kiosk.pub``
   is rewritten. The uploader signs its requests with the previous key until the portal has taken the
   key_change entry, then retires it (kiosk/sync/uploader.py). A ``kiosk.key.previous`` already there
   (re-keyed again before the portal took the last hand-over) is kept as ``kiosk.key.previous.1`` (then
   ``.2``...), never overwritten: the portal may still know only that key, and the uploader tries each.

A retired key is moved to ``kiosk.key.retired.N`` (0600, N = 1, 2... in the order they were retired), not
deleted: a portal restored from a backup taken before the hand-over knows only that key, and the uploader
signs with it again (only after the key in force and every ``kiosk.key.previous*`` were refused as
``bad_request_signature``) until the portal has taken the key_change entry once more (docs/sync.md,
"Re-keying", which says why keeping it is safe).

The kiosk must be stopped: a running kiosk would go on signing with the old key, and its next append
is refused (the ledger names another key in force).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kiosk.config import KioskConfig
from kiosk.ledger import Ledger, LedgerError, keys
from kiosk.ledger.durable import fsync_dir


@dataclass(frozen=True)
class RekeyResult:
    seq: int | None  # the key_change entry's seq (None: an interrupted re-key was only finished)
    public_key: str  # the new key, hex
    key_id: str
    vouched_by: str


def next_path(cfg: KioskConfig) -> Path:
    return cfg.private_key_path.with_name(cfg.private_key_path.name + ".next")


def previous_path(cfg: KioskConfig) -> Path:
    return cfg.private_key_path.with_name(cfg.private_key_path.name + ".previous")


def older_previous_paths(prev: Path) -> list[Path]:
    """Beside ``prev`` (``kiosk.key.previous``): ``kiosk.key.previous.1``, ``.2``..., the keys of earlier
    hand-overs the portal may still know, oldest first."""
    return [p for _, p in _numbered(prev)]


def _numbered(prev: Path) -> list[tuple[int, Path]]:
    """(N, path) of each ``<prev>.N`` beside ``prev``, by N."""
    found = []
    for p in prev.parent.glob(prev.name + ".*"):
        tail = p.name.rsplit(".", 1)[1]
        if tail.isdigit():
            found.append((int(tail), p))
    return sorted(found)


def retired_paths(key: Path) -> list[Path]:
    """Beside the signing key ``key`` (``kiosk.key``): the retired ``kiosk.key.retired.N``, oldest first."""
    return [p for _, p in _numbered(key.with_name(key.name + ".retired"))]


def retire(old: Path, key: Path) -> Path:
    """Move ``old`` (a ``kiosk.key.previous*`` the portal no longer needs) to the next free
    ``kiosk.key.retired.N`` beside ``key``, readable by its owner only. Returns the new path."""
    numbered = _numbered(key.with_name(key.name + ".retired"))
    n = numbered[-1][0] + 1 if numbered else 1
    dst = key.with_name(f"{key.name}.retired.{n}")
    os.chmod(old, 0o600)
    os.replace(old, dst)
    fsync_dir(dst.parent)
    return dst


def _keep_previous(cfg: KioskConfig) -> None:
    """Move an existing ``kiosk.key.previous`` to the next free ``.N`` (see the module's text)."""
    prev = previous_path(cfg)
    if prev.exists():
        older = _numbered(prev)
        n = older[-1][0] + 1 if older else 1
        os.replace(prev, prev.with_name(f"{prev.name}.{n}"))


def rekey(cfg: KioskConfig, *, old_key_lost: bool = False) -> RekeyResult:
    key, nxt = cfg.private_key_path, next_path(cfg)
    if not cfg.ledger_path.exists():
        raise LedgerError(f"{cfg.ledger_path} does not exist: a kiosk without a ledger has no chain to hand over "
                          "(a new key is just `kiosk keygen --force`)")
    if not nxt.exists():
        if not key.exists() and not old_key_lost:
            raise LedgerError(f"{key} does not exist: if the kiosk's key is lost, use --old-key-lost")
        keys.generate_at(nxt, nxt.with_name(nxt.name + ".pub"))
    new_sk = keys.load_private(nxt)
    new_hex = keys.public_raw(new_sk.public_key()).hex()
    seq = None
    by = "previous_key"
    opts = {"timezone": cfg.kiosk.timezone, "checkpoint_every": cfg.ledger.checkpoint_every,
            "checkpoint_minutes": cfg.ledger.checkpoint_minutes, "boot": False}
    try:  # already handed over (a re-key interrupted after its entry): only the files are left to move
        Ledger.open(cfg.ledger_path, new_sk, cfg.kiosk.id, **opts).close(checkpoint=False)
    except LedgerError:
        if old_key_lost:
            led = Ledger.open(cfg.ledger_path, new_sk, cfg.kiosk.id, key_lost=True, **opts)
            try:
                seq = led.announce_new_key().seq
                by = "administrator"
            finally:
                led.close(checkpoint=False)
        else:
            led = Ledger.open(cfg.ledger_path, keys.load_private(key), cfg.kiosk.id, **opts)
            try:
                seq = led.rekey(new_sk).seq
            finally:
                led.close(checkpoint=False)
    if key.exists():
        # A lost key's file (unreadable, or of another kiosk) is kept aside, never used to sign requests.
        if not old_key_lost:
            _keep_previous(cfg)
        os.replace(key, previous_path(cfg) if not old_key_lost else key.with_name(key.name + ".lost"))
    os.replace(nxt, key)
    fsync_dir(key.parent)
    keys.write_public(new_sk, cfg.public_key_path)
    nxt.with_name(nxt.name + ".pub").unlink(missing_ok=True)
    return RekeyResult(seq, new_hex, keys.key_id(bytes.fromhex(new_hex)), by)

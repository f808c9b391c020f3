"""Kiosk side of config push: validate, fetch media by checksum, record, apply.

Order matters: nothing is recorded until the document validates, its digest matches and every
media file is on disk with the right SHA-256; then a ``config_change`` entry
``{"version", "digest", "source": "portal"}`` goes into the ledger, and only then is
``portal-config.json`` replaced (atomically) and the ``on_config`` callback told.

Appending needs the ledger's single writer. Inside ``kiosk run`` the uploader is given the app's
:class:`~kiosk.ledger.writer.LedgerWriter` (the service worker): the sync thread queues the
``config_change`` append and waits for it, so it is ordered with the donations around it. A standalone
``kiosk sync --once`` is not the writer, so it only *stages* the config (``portal-config.pending.json``
plus media) for the running kiosk to apply; with ``--apply-config`` it uses an ``InlineWriter``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.ledger.durable import write_atomic
from kiosk.ledger.writer import LedgerWriter, call

APPLIED = "portal-config.json"
STAGED = "portal-config.pending.json"


class ConfigApplyError(Exception):
    """A pushed config this kiosk cannot apply. ``reason`` says why in one word, for the portal's kiosks page
    (the heartbeat's ``config_refused``, server_sync/wire/protocol.py ``ConfigRefused``): ``invalid`` (its content
    fails this kiosk's checks), ``damaged`` (it does not match its digest, or lacks one), ``media`` (a movie did
    not arrive intact), ``busy`` (saved, but its ledger entry waits: not a refusal, the kiosk takes it later)."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


def load_applied(data_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The pushed config this kiosk last applied (``{version, digest, config}``), or None."""
    try:
        return json.loads((Path(data_dir) / APPLIED).read_text("utf-8"))
    except (OSError, ValueError):
        return None


class ConfigApplier:
    def __init__(self, data_dir: Path, writer: LedgerWriter | None = None,
                 on_config: Callable[[dict[str, Any]], None] | None = None,
                 check: Callable[[dict[str, Any]], object] | None = None):
        self.data_dir = data_dir
        self.media_dir = data_dir / "media"
        self.writer = writer
        """None: not the ledger's writer, stage only."""
        self.on_config = on_config
        self.check = check
        """Raises for a document (valid as a pushed config) that this kiosk cannot run: the kiosk's own config with
        the document laid over it (kiosk/sync/adopt.py ``overlay``) fails the kiosk's checks, e.g. a preset above the
        kiosk's own ``max_per_transaction_yen`` in a document of an older portal, which does not carry one. Run
        before anything is fetched, written or recorded; None: not checked."""
        held = load_applied(data_dir)
        self._told: tuple[Any, Any] | None = (held.get("version"), held.get("digest")) if held else None
        """(version, digest) of the pushed config the running kiosk was last told of: the one it started with
        (the app reads the same file at its start, before the sync thread runs), then each :attr:`on_config`."""

    def apply(self, doc: dict[str, Any], fetch: Callable[[str], bytes]) -> str:
        """Returns "applied", "staged", or "unchanged" (this version and digest are applied and recorded already:
        nothing is written, so an answer repeated every round adds no ``config_change`` a round); raises
        ConfigApplyError (or the fetcher's error) otherwise."""
        version, dig, body = doc.get("version"), doc.get("digest"), doc.get("config")
        if type(version) is not int or not isinstance(dig, str):
            raise ConfigApplyError("config answer lacks version/digest", "damaged")
        held = load_applied(self.data_dir)
        if held is not None and held.get("version") == version and held.get("digest") == dig:
            if self.writer is None:
                return "unchanged"  # the running kiosk has it: nothing to stage
            # Applied: recorded too, unless the append failed after the file was written; then record it now
            # (as the next start would: record_applied_config) and tell the running kiosk, which was not told.
            # The running kiosk was not told either when an earlier round's wait for its entry ran out (a charge
            # on a separate terminal holds the writer for minutes): it is told now, once the entry is written.
            recorded = self._record(version, lambda led: record_applied_config(led, held))
            if not recorded and self._told == (version, dig):
                return "unchanged"
            self._tell({"version": version, "digest": dig, "config": held.get("config")})
            return "applied"
        # Here, not at the top: the start path needs load_applied only, and configdoc's pydantic models cost
        # ~20 ms to build (~0.08 s at a quarter core) before READY=1 (#16). apply() runs on the sync thread.
        from server_sync.wire import configdoc

        try:
            cfg = configdoc.validate(body)
        except configdoc.ConfigDocError as exc:
            raise ConfigApplyError(f"config v{version} is invalid: {exc}") from None
        norm = configdoc.normalised(cfg)
        if configdoc.digest(norm) != dig:
            raise ConfigApplyError(f"config v{version}: digest does not match its content", "damaged")
        if self.check is not None:
            try:
                self.check(norm)
            except Exception as exc:  # noqa: BLE001 - pydantic's or the kiosk's own checks: refused, nothing written
                raise ConfigApplyError(f"config v{version} cannot be used on this kiosk: "
                                       f"{' '.join(str(exc).split())[:300]}") from None
        for item in cfg.playlist:
            path = self.media_dir / item.sha256
            if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == item.sha256:
                continue
            data = fetch(item.sha256)
            if hashlib.sha256(data).hexdigest() != item.sha256:
                raise ConfigApplyError(f"media {item.sha256[:12]}…: content does not match its checksum",
                                       "media")
            write_atomic(path, data)
        record = json.dumps({"version": version, "digest": dig, "config": norm}, ensure_ascii=False).encode()
        if self.writer is None:
            write_atomic(self.data_dir / STAGED, record)
            return "staged"
        # The file first, then the ledger: a power cut between the two leaves a config on disk that the ledger
        # does not name yet, and the next start records it (record_applied_config) before any tap. The other
        # order could leave the ledger naming a version the restarted kiosk no longer runs, and the portal would
        # judge its gifts by presets it never showed (server_sync/policy.py).
        write_atomic(self.data_dir / APPLIED, record)
        change = {"version": version, "digest": dig, "source": "portal"}
        self._record(version, lambda led: led.append("config_change", change))  # on the sync thread: may wait
        (self.data_dir / STAGED).unlink(missing_ok=True)
        self._tell({"version": version, "digest": dig, "config": norm})
        return "applied"

    def _record(self, version: int, fn: Callable[[Any], Any]) -> Any:
        """``fn`` run by the ledger's writer, waited for. A wait that runs out (the writer is inside a charge that
        takes longer: a donor at a separate terminal) is a :class:`ConfigApplyError` saying so; the entry is still
        written when the writer is free, and the next round tells the kiosk (:meth:`apply`)."""
        assert self.writer is not None
        try:
            return call(self.writer, fn)
        except TimeoutError:
            raise ConfigApplyError(f"config v{version} is saved, but its ledger entry waits behind a donation in "
                                   "progress; the kiosk takes it up at a later sync", "busy") from None

    def _tell(self, doc: dict[str, Any]) -> None:
        if self.on_config is not None:
            self.on_config(doc)
        self._told = (doc["version"], doc["digest"])


def record_applied_config(ledger: Any, applied: dict[str, Any] | None) -> bool:
    """At start, before the kiosk takes a tap: if ``portal-config.json`` (``applied``, as :func:`load_applied`
    read it) holds a version the ledger's newest ``config_change`` does not name (a power cut fell between the
    two writes in :meth:`ConfigApplier.apply`), record it now, so that every gift is judged at the portal by
    the config this kiosk really runs. Returns whether an entry was written. ``ledger`` is the open
    :class:`~kiosk.ledger.Ledger`, on its writer's thread."""
    if not applied or not isinstance(applied.get("version"), int) or not isinstance(applied.get("digest"), str):
        return False
    last = ledger.last_of_type("config_change")
    if last is not None and last.data.get("version") == applied["version"] \
            and last.data.get("digest") == applied["digest"]:
        return False
    ledger.append("config_change", {"version": applied["version"], "digest": applied["digest"], "source": "portal"})
    return True

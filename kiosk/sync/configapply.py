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

Pushed clips that no playlist this kiosk may still play names any more (a video the portal's staff removed: someone
shown in it withdrew their consent) are deleted from ``DATA_DIR/media`` once the new config is durable and the
running kiosk's player has taken its playlist (:meth:`ConfigApplier.player_took`, :meth:`ConfigApplier.prune`;
docs/sync.md, "Removed videos leave the kiosk").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.ledger.durable import write_atomic
from kiosk.ledger.writer import LedgerWriter, call

log = logging.getLogger(__name__)

APPLIED = "portal-config.json"
STAGED = "portal-config.pending.json"
PRUNED = "portal-config.pruned.json"
"""``{version, digest}`` of the applied config whose leftover pushed clips were deleted: a start that finds another
version applied (a power cut fell before or during the deletion) deletes them then."""
PRUNE_RETRY_S = 60.0
"""After a deletion failed (a read-only disk), the next try: a sync round later (``[portal] sync_interval_s``)."""


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
        self._taken: tuple[Any, Any] | None = None
        """(version, digest) of the pushed config whose playlist the running kiosk's player plays
        (:meth:`player_took`): until then a clip it no longer names may still be opened."""
        self._lock = _media_lock(self.media_dir)
        """Held by :meth:`apply` and :meth:`prune` (of every applier of this media folder in the process: `kiosk run`
        makes another on a new enrollment): a deletion never runs while clips of a newer config are being fetched
        (before ``portal-config.json`` names them)."""
        self._timer: threading.Timer | None = None
        self._timer_lock = threading.Lock()
        """Guards :attr:`_timer`; never the media lock, which a fetch holds for minutes: :meth:`player_took` is called
        on the main loop."""
        self.prune_retry_s = PRUNE_RETRY_S
        if held is not None and writer is not None and on_config is None and _pruned_for(data_dir) != self._told:
            self.prune()  # a power cut fell before the deletion ended (`kiosk run` waits for its player: player_took)

    def apply(self, doc: dict[str, Any], fetch: Callable[[str], bytes]) -> str:
        """Returns "applied", "staged", or "unchanged" (this version and digest are applied and recorded already:
        nothing is written, so an answer repeated every round adds no ``config_change`` a round); raises
        ConfigApplyError (or the fetcher's error) otherwise. Once "applied", the clips no playlist needs any more
        are deleted (:meth:`prune`): at once without a running kiosk to tell, else once its player has taken the
        new playlist (:meth:`player_took`, which may come first: an ``on_config`` that plays nothing says so at once).
        """
        with self._lock:
            result = self._apply(doc, fetch)
        if result == "applied" and (self.on_config is None or self._taken == self._told):
            self._schedule_prune(0.0)
        return result

    def player_took(self, version: Any, digest: Any) -> None:
        """Told by the running kiosk's main loop (``App.step``, from any thread): its player plays the playlist of the
        pushed config ``(version, digest)``, the one it started with or the one ``on_config`` handed it. The player's
        scheduler takes a new playlist at a clip boundary, and the decode thread opens each clip right after taking
        it, so from then on no clip the playlist does not name is opened: the pushed clips it no longer names are
        deleted now, on a thread of their own (never on the render loop), unless that was done for this version
        already (``portal-config.pruned.json``)."""
        key = (version, digest)
        self._taken = key
        if self.on_config is not None and key == self._told:
            self._schedule_prune(0.0, unless_done=True)

    def _apply(self, doc: dict[str, Any], fetch: Callable[[str], bytes]) -> str:
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
        cache = None
        for item in cfg.playlist:
            path = self.media_dir / item.sha256
            if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == item.sha256:
                continue
            if cache is None:
                from kiosk.player.media import MediaCache

                cache = MediaCache(self.media_dir)
            # Adopted already (moved into the player's cache as <sha256>.mp4, adopt.py): not fetched again, which
            # left a second copy beside it for good and needed a writable disk to take a playlist without new clips.
            entry = cache.find(item.sha256)
            if entry is not None and entry.sha256 == item.sha256 and cache.verify(item.sha256) == "ok":
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

    # --- pushed clips no playlist needs any more --------------------------------------------------------------
    def _schedule_prune(self, delay: float, unless_done: bool = False) -> None:
        """:meth:`prune` now when no running kiosk is told (``kiosk sync --once --apply-config``, which runs while
        ``kiosk run`` is stopped), else on a thread of its own ``delay`` seconds from now (one at a time: a later
        call moves it). A stage-only applier (``kiosk sync --once``) never deletes: the running kiosk may play other
        clips."""
        if self.writer is None:
            return
        if self.on_config is None:
            self.prune()
            return
        with self._timer_lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(max(0.0, delay), self._prune_unless_done if unless_done else self.prune)
            self._timer.name = "media-prune"
            self._timer.daemon = True
            self._timer.start()

    def _prune_unless_done(self) -> None:
        if _pruned_for(self.data_dir) != self._told:  # read here, not on the main loop that called player_took
            self.prune()

    def settle(self, timeout: float | None = None) -> None:
        """Wait until the deletion planned on the timer thread, if any, has run (tests, a clean stop)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        timer = self._timer
        while timer is not None and timer is not threading.current_thread():
            timer.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if timer.is_alive() or self._timer is timer:
                return  # ran out of time, or done
            timer = self._timer  # it planned another try (a failure)

    def close(self) -> None:
        """Drop a deletion planned on the timer thread (a stopping kiosk: the next start plans it again)."""
        with self._timer_lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def prune(self) -> list[str] | None:
        """Delete the pushed clips that no playlist this kiosk may still play names: the applied config's, a
        staged newer one's (``kiosk sync --once``), and always every clip imported by hand or made as a demo
        (kiosk/sync/adopt.py ``prune_pushed_media``). Only once the applied config is durable and, in ``kiosk run``,
        the running kiosk was told of it and its player has taken its playlist (:meth:`player_took`: no clip the
        playlist does not name is opened after that); an unreadable config file deletes nothing. Never
        raises: a failure (a full or read-only disk) is logged and tried again :attr:`prune_retry_s` later, and at
        the next start. Returns the hashes deleted, None when nothing was tried or a try failed."""
        with self._lock:
            try:
                return self._prune()
            except OSError as exc:
                log.error("media: deleting the clips no playlist names any more failed (%s); trying again in "
                          "%.0f s", exc.strerror or exc, self.prune_retry_s)
            except Exception:  # noqa: BLE001 - on the sync or a timer thread: never a reason to stop uploads
                log.exception("media: deleting the clips no playlist names any more failed")
        if self.on_config is not None:
            self._schedule_prune(self.prune_retry_s)
        return None

    def _prune(self) -> list[str] | None:
        from kiosk.sync.adopt import prune_pushed_media

        try:
            raw = (self.data_dir / APPLIED).read_bytes()
        except FileNotFoundError:
            return None  # no pushed config applied: nothing pushed is left over
        applied = json.loads(raw)
        key = (applied.get("version"), applied.get("digest"))
        if self.on_config is not None:
            if key != self._told:
                return None  # saved, but the running kiosk was not told yet (its ledger entry waits): later
            if key != self._taken:
                return None  # told, but its player may still open an old clip: player_took plans it
        keep = set(_clips(applied))
        try:
            staged = json.loads((self.data_dir / STAGED).read_bytes())
        except FileNotFoundError:
            staged = None
        if staged is not None and isinstance(staged.get("version"), int) and isinstance(key[0], int) \
                and staged["version"] > key[0]:
            keep |= set(_clips(staged))  # fetched for the next version by `kiosk sync --once`: it needs them
        removed = prune_pushed_media(self.media_dir, keep)
        if _pruned_for(self.data_dir) != key:
            write_atomic(self.data_dir / PRUNED, json.dumps({"version": key[0], "digest": key[1]}).encode())
        return removed


_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _media_lock(media_dir: Path) -> threading.RLock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(os.path.abspath(media_dir), threading.RLock())


def _clips(record: Any) -> list[str]:
    """The clips a saved config (``{version, digest, config}``) plays. Raises ValueError for one not of that shape:
    a file that cannot be read whole deletes nothing."""
    playlist = record.get("config", {}).get("playlist", []) if isinstance(record, dict) else None
    if not isinstance(playlist, list):
        raise ValueError("saved config has no playlist list")
    shas = [item.get("sha256") if isinstance(item, dict) else None for item in playlist]
    if not all(isinstance(sha, str) for sha in shas):
        raise ValueError("saved config names a clip without its checksum")
    return shas  # type: ignore[return-value]


def _pruned_for(data_dir: Path) -> tuple[Any, Any] | None:
    try:
        done = json.loads((Path(data_dir) / PRUNED).read_text("utf-8"))
        return (done.get("version"), done.get("digest"))
    except (OSError, ValueError, AttributeError):
        return None


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

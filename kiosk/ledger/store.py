"""The ledger file: append-only, signed, hash-chained entries in SQLite.

Durability rules (why the code looks the way it does):

- WAL with ``synchronous=FULL``: NORMAL can lose the last commits on power
  loss, FULL cannot. One transaction per entry, opened with BEGIN IMMEDIATE so
  the write lock is taken before the next seq is chosen.
- In-memory state (tip, totals, Merkle range) changes only *after* COMMIT
  returns. If anything fails, :class:`LedgerUnavailable` is raised, the
  transaction is rolled back, and the next call re-reads the tip from disk, so
  a caller never takes payment for a gift that is not on disk.

Threads: one thread appends. Once a thread has called :meth:`Ledger.claim_writer`
(the app's service worker), an append from any other thread raises
:class:`LedgerThreadError`; those threads go through a
:class:`~kiosk.ledger.writer.LedgerWriter`. Readers on any thread use the
:class:`~kiosk.ledger.view.LedgerView` the writer publishes after each append.
"""

from __future__ import annotations

import base64
import errno
import gc
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk import __version__
from kiosk.ledger import checkpoint as cpmod
from kiosk.ledger import snapshot as snapmod
from kiosk.ledger.clock import Clock, SystemClock
from kiosk.ledger.durable import fsync_dir, make_dirs
from kiosk.ledger.encoding import (
    VOUCHED_BY_ADMINISTRATOR,
    VOUCHED_BY_PREVIOUS_KEY,
    entry_hash,
    key_change_message,
    new_entry,
    parse_body,
)
from kiosk.ledger.keys import key_id, public_from_raw, public_raw
from kiosk.ledger.pepper import DonorToken
from kiosk.ledger.report import day_window_ms
from kiosk.ledger.schema import DENORMALISED, MIGRATIONS, RARE_KINDS, SCHEMA_VERSION, denormalised_row
from kiosk.ledger.signing import Signer
from kiosk.ledger.state import LedgerState
from kiosk.ledger.view import LedgerView
from kiosk.ledger.writer import LedgerThreadError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

_INSERT = (f"INSERT INTO entries (seq, body, entry_hash, signature, {', '.join(DENORMALISED)}) "
           f"VALUES ({', '.join('?' * (4 + len(DENORMALISED)))})")


NO_DONOR_EPOCH = 0
"""``pepper_epoch`` of a gift without a donor token (paid on a separate terminal without a card on our reader)."""


class LedgerError(Exception):
    """The ledger cannot be opened or used as asked."""


class LedgerUnavailable(LedgerError):
    """An append could not be made durable. Nothing was written; do not take payment."""

    def __init__(self, message: str, *, disk_full: bool = False):
        super().__init__(message)
        self.disk_full = disk_full
        """The file system had no room (SQLite's "database or disk is full", ENOSPC, EDQUOT)."""


RESERVE_BYTES = 256 * 1024
"""Room the ledger keeps aside, in ``<ledger>-reserve``, for settling a charge (docs/ledger.md, "A full disk").
A settlement and the checkpoint after it write a few WAL frames (4 KiB pages: the row and its index pages); this is
several times that."""


class _SeqTaken(Exception):
    """The seq we chose was appended by another process first (nothing of ours was written)."""


@dataclass(frozen=True)
class Entry:
    seq: int
    body: bytes
    entry_hash: bytes
    signature: bytes
    obj: dict[str, Any] = field(repr=False, compare=False)

    @property
    def type(self) -> str:
        return cast(str, self.obj["type"])

    @property
    def data(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.obj["data"])


class _Db:
    """The ledger file's SQLite connections, through ``sqlite3`` itself.

    No SQLAlchemy here: the ledger is one SQLite table with a handful of fixed queries, and importing
    SQLAlchemy took 0.1-0.4 s of every start of ``kiosk run`` (four times that on a quarter of a core),
    before the kiosk could take a tap (docs/performance.md, "Cold start"). Every connection is in
    autocommit mode (``isolation_level=None``): the writer issues its own ``BEGIN IMMEDIATE``/``COMMIT``,
    and a read is one statement, so one implicit read transaction (WAL: it never blocks the writer).
    Readers on any thread borrow an idle connection and give it back (a small pool, as SQLAlchemy's was).
    """

    POOL = 4

    def __init__(self, path: Path):
        self.path = path
        self.on_connect: list[Callable[[sqlite3.Connection], None]] = []
        """Called with every new connection (tests install SQLite authorizers here to fake a failing disk)."""
        self._idle: list[sqlite3.Connection] = []
        self._gen = 0
        self._lock = threading.Lock()

    def new(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LedgerError(f"{self.path}: could not switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=5000")
            for fn in list(self.on_connect):
                fn(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection for reading, returned to the pool afterwards (closed if the statement failed)."""
        with self._lock:
            conn, gen = (self._idle.pop() if self._idle else None), self._gen
        if conn is None:
            conn = self.new()
        ok = False
        try:
            yield conn
            ok = True
        finally:
            if conn.in_transaction:
                conn.rollback()
            with self._lock:
                keep = ok and gen == self._gen and len(self._idle) < self.POOL
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def dispose(self) -> None:
        """Close the idle connections; those in use are closed when given back. New ones see ``on_connect``."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._gen += 1
        for conn in idle:
            conn.close()


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION` (``conn`` in autocommit mode); returns the version found before."""
    found: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise LedgerError(f"ledger schema {found} is newer than this software understands ({SCHEMA_VERSION})")
    for version in range(found, SCHEMA_VERSION):
        conn.execute("BEGIN")
        try:
            for stmt in MIGRATIONS[version]:
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version={version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
    return found


class Ledger:
    """One kiosk's ledger. Open with :meth:`open`; single writer per file."""

    def __init__(self, path: Path, engine: _Db, signing_key: Ed25519PrivateKey, kiosk_id: str,
                 timezone: str, clock: Clock, checkpoint_every: int, checkpoint_minutes: int,
                 libsodium: bool = True, snapshot_every: int = 500):
        self.path = path
        self._engine = engine
        self._sk = signing_key
        self._libsodium = libsodium
        self._signer = Signer(signing_key, use_libsodium=libsodium)
        self._pub_raw = public_raw(signing_key.public_key())
        self._pub_hex = self._pub_raw.hex()
        self.kiosk_id = kiosk_id
        self.key_id = key_id(self._pub_raw)
        self.timezone = timezone
        self._tz = ZoneInfo(timezone)
        self.clock = clock
        self.checkpoint_every = checkpoint_every
        self.checkpoint_ms = checkpoint_minutes * 60_000
        self.snapshot_every = snapshot_every
        self.snapshot_size = 0
        self._synced_wall: tuple[int, int | None] = (0, None)
        """(size read up to, the newest wall time an entry up to there was written with a synced clock, or None):
        :meth:`newest_synced_wall_ms`'s cache."""
        """The size of the newest state snapshot in the file that this process read or wrote (0: none)."""
        self.origin = cpmod.origin_for(kiosk_id)
        self._lock = threading.RLock()
        self._owner: int | None = None
        """``threading.get_ident()`` of the thread that claimed the ledger; None: any thread may append."""
        self._owner_thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._stale = True
        self.reserve_bytes = 0
        """Room kept aside in :attr:`reserve_path` for settling charges (:meth:`record_intent`); 0: none."""
        self._reserved = False
        """Whether this process made or found the reserve whole and has not given it up since."""
        self._reset_state()

    # --- opening ----------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str], signing_key: Ed25519PrivateKey, kiosk_id: str, *,
             timezone: str = "Asia/Tokyo", clock: Clock | None = None, boot: bool = True,
             checkpoint_every: int = 100, checkpoint_minutes: int = 60, key_lost: bool = False,
             libsodium: bool = True, snapshot_every: int = 500, reserve_bytes: int = RESERVE_BYTES) -> Ledger:
        """Open (creating if needed) the ledger at ``path``.

        A new file gets a genesis entry binding ``kiosk_id`` and the public key.
        With ``boot`` a boot entry and a checkpoint are appended.
        ``key_lost``: ``signing_key`` is a new key for an existing ledger whose key in force is lost; it
        appends nothing but a key_change an administrator vouches for (:meth:`announce_new_key`).
        ``libsodium=False``: sign with ``cryptography`` until :meth:`use_libsodium` (kiosk/ledger/signing.py).
        ``snapshot_every``: :attr:`snapshot_due` once this many entries are past the newest state snapshot.
        ``reserve_bytes``: room kept aside for settling charges (:meth:`record_intent`; 0: none).
        """
        p = Path(path)
        try:
            make_dirs(p.parent)
            new = not p.exists()
            eng = _Db(p)
            with eng.read() as conn:
                migrate(conn)
            eng.dispose()
            if new:
                # SQLite syncs the file, never the directory that names it: without this a power cut could
                # take a new ledger's name away, and with it the genesis entry.
                fsync_dir(p.parent)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"cannot open ledger {p}: {_reason(exc)}") from None
        led = cls(p, eng, signing_key, kiosk_id, timezone, clock or SystemClock(),
                  checkpoint_every, checkpoint_minutes, libsodium, snapshot_every)
        led.reserve_bytes = reserve_bytes
        try:
            led._load()
            if key_lost:
                if led.size == 0 or led.st.public_key == led._pub_raw.hex():
                    raise LedgerError(f"ledger {p}: key_lost needs an existing ledger and a key other than the one "
                                      "in force")
                led._check_identity(key=False)
                return led
            if led.size == 0:
                led._append("genesis", {"public_key": led._pub_raw.hex(), "origin": led.origin, "timezone": timezone})
            else:
                led._check_identity()
            if boot:
                led._append("boot", {"software": f"kiosk {__version__}"})
                led.checkpoint()
                if reserve_bytes > 0:
                    try:  # made here, not at the first tap (an allocation and an fsync); a full disk refuses taps
                        led._ensure_reserve()
                    except LedgerUnavailable as exc:
                        log.error("%s", exc)
        except BaseException:
            # A ledger that did not open holds no connection: one opened while the medium was read-only
            # would keep SQLite's file handle read-only for every later open in this process.
            led._drop_writer()
            eng.dispose()
            raise
        return led

    def close(self, checkpoint: bool = True) -> None:
        # Closing drops the connection the owner appends on, and may append a checkpoint: the owner's act.
        self._check_writer()
        with self._lock:
            if checkpoint and self.size and self._since_checkpoint() > 0:
                try:
                    self.checkpoint()
                except LedgerUnavailable as exc:
                    log.error("no shutdown checkpoint: %s", exc)
            if checkpoint and self.size > self.snapshot_size and not self._stale:
                try:
                    self.save_snapshot()
                except LedgerError as exc:
                    log.warning("no shutdown state snapshot (the next start replays more entries): %s", exc)
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the one writer ----------------------------------------------------------
    def claim_writer(self) -> None:
        """Make the calling thread the only one that may append (or checkpoint, or close) from now on.

        Called by the app's service worker as it starts, after :meth:`open` has written genesis/boot/checkpoint
        on the opening thread. A ledger never claimed (CLIs, tests) lets any thread append, as before.
        Claiming a ledger another live thread holds raises :class:`LedgerThreadError`.
        """
        me = threading.current_thread()
        with self._lock:
            holder = self._owner_thread
            if holder is not None and holder is not me and holder.is_alive():
                raise LedgerThreadError(f"ledger {self.path} is already claimed by thread {holder.name!r}; "
                                        f"thread {me.name!r} cannot claim it too")
            self._owner_thread, self._owner = me, me.ident

    def release_writer(self) -> None:
        """Give up the claim (on the owning thread): any thread may append again."""
        self._check_writer()
        with self._lock:
            self._owner_thread, self._owner = None, None

    @property
    def writer_thread(self) -> str | None:
        """Name of the thread that claimed the ledger, or None."""
        holder = self._owner_thread
        return holder.name if holder is not None else None

    def _check_writer(self) -> None:
        # On every append: one attribute read and one integer compare when the ledger is claimed.
        owner = self._owner
        if owner is not None and owner != threading.get_ident():
            raise LedgerThreadError(
                f"ledger {self.path} is appended to only by thread {self.writer_thread!r}, "
                f"not by {threading.current_thread().name!r}: submit the append through its LedgerWriter")

    # --- state ------------------------------------------------------------------
    def _reset_state(self) -> None:
        self.st = LedgerState()
        """The writer's working state: mutated in place by each append, so only the writer's thread reads it."""
        self._view = LedgerView()

    @property
    def view(self) -> LedgerView:
        """The state after the latest append, frozen: what any thread may read, without a lock."""
        return self._view

    @property
    def size(self) -> int:
        return self._view.size

    def _load(self, use_snapshot: bool = True) -> None:
        """Rebuild in-memory state from the file (at open and after a failed write): from the newest state
        snapshot when it is sound, replaying only the entries after it, else from the first entry."""
        # Replayed into a fresh state and swapped in at the end, so readers keep the last good view
        # (not an empty or half-replayed one) while the file is re-read.
        # The newest checkpoint entry with ``sigs`` and everything after it: what no signed checkpoint
        # vouches for yet. A snapshot vouches for the entries it covers as a checkpoint does: this key signed
        # it over a state built only from entries checked at an open or written by the process itself.
        tail: list[tuple[int, bytes, bytes, str | None]] = []  # (seq, hash, signature, key that signs it)
        st = LedgerState()
        found: LedgerState | None = None
        snapshot_size = 0
        try:
            with self._engine.read() as conn, _no_gc():
                found = self._read_snapshot(conn) if use_snapshot else None
                if found is not None:
                    st, snapshot_size = found, found.size
                rows = conn.execute("SELECT seq, body, entry_hash, signature FROM entries WHERE seq > ? "
                                    "ORDER BY seq", (st.size,))
                for seq, body, h, sig in rows:
                    obj = parse_body(body)
                    signer = st.signer_of(seq, obj)
                    st.apply(seq, obj, h, sig)
                    if obj["type"] == "checkpoint" and "sigs" in obj["data"]:
                        tail.clear()  # an older checkpoint entry without ``sigs`` vouches for no signature
                    tail.append((seq, h, sig, signer))
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read ledger {self.path}: {_reason(exc)}") from None
        except ValueError as exc:
            raise LedgerError(f"ledger {self.path} is damaged at seq={st.size + 1}: {exc}; "
                              "run `kiosk ledger verify`") from None
        self._check_tail(st, tail)
        self.st = st
        self._view = LedgerView.of(st)
        self._stale = False
        self.snapshot_size = snapshot_size

    def _read_snapshot(self, conn: sqlite3.Connection) -> LedgerState | None:
        """The state in the file's snapshot if it is sound, else None (the caller replays every entry).

        Sound: of the format this code writes, signed by this process's key (so it was written by this
        kiosk, from entries that were checked, and not edited since), of this kiosk, and standing on the
        file as it is now (the entry at its size has its tip as hash). Anything else is logged and ignored:
        the snapshot only saves time, it never decides what the ledger holds.
        """
        row = conn.execute("SELECT format, state, signature FROM state_snapshot WHERE id = 1").fetchone()
        if row is None:
            return None
        fmt, blob, sig = row
        why = None
        if fmt != snapmod.FORMAT:
            why = f"of format {fmt!r}, not {snapmod.FORMAT}"
        elif not isinstance(blob, bytes) or not isinstance(sig, bytes):  # SQLite lets text into any column
            why = "not stored as bytes"
        else:
            try:
                self._signer.public_key().verify(sig, snapmod.message(blob))
            except InvalidSignature:
                why = "not signed by this kiosk's key"
        if why is None:
            try:
                st = snapmod.decode(blob)
            except snapmod.SnapshotError as exc:
                why = str(exc)
            else:
                at = conn.execute("SELECT entry_hash FROM entries WHERE seq = ?", (st.size,)).fetchone()
                if st.kiosk_id != self.kiosk_id or st.public_key != self._pub_hex:
                    why = "of another kiosk or key"
                elif st.size == 0 or at is None or at[0] != st.tip:
                    why = f"at seq={st.size}, which the file does not hold as it was"
                else:
                    return st
        log.warning("ledger %s: state snapshot ignored (%s); replaying every entry", self.path, why)
        return None

    def _check_tail(self, st: LedgerState, tail: list[tuple[int, bytes, bytes, str | None]]) -> None:
        """Check the signatures no checkpoint vouches for before this process signs a checkpoint over them.

        The next checkpoint entry commits to every body (Merkle root) and every signature (``sigs``)
        before it, and the portal accepts entries on that one signature (docs/sync.md, "Ingest by
        checkpoint"). Entries up to the newest checkpoint entry are bound by it (replay checked its root
        and digest); that entry and the ones after it are checked here, so a row edited on disk is never
        laundered into a signed checkpoint. A ledger of another key is left to :meth:`_check_identity`.
        """
        if st.kiosk_id != self.kiosk_id:
            return
        # Each entry by the key in force when it was written (the ledger names them: genesis, key_change).
        for seq, h, sig, signer in tail:
            try:
                public_from_raw(bytes.fromhex(signer or "")).verify(sig, h)
            except (InvalidSignature, ValueError):
                raise LedgerError(f"ledger {self.path} is damaged at seq={seq}: bad signature; "
                                  "run `kiosk ledger verify`") from None

    def _check_identity(self, key: bool = True) -> None:
        if key and self.st.public_key != self._pub_raw.hex():
            g = self.st.genesis or {}
            if not self.st.key_changes or g.get("public_key") == self._pub_raw.hex():
                raise LedgerError(f"ledger {self.path} was created with another signing key (genesis key differs)"
                                  if not self.st.key_changes else
                                  f"ledger {self.path} is signed with key {self.st.key_id} since seq="
                                  f"{self.st.key_changes[-1][0]}; this is an earlier key of the kiosk "
                                  "(`kiosk rekey` finishes an interrupted re-key)")
            raise LedgerError(f"ledger {self.path} is signed with key {self.st.key_id} since seq="
                              f"{self.st.key_changes[-1][0]}, not with this key")
        if self.st.kiosk_id != self.kiosk_id:
            raise LedgerError(f"ledger {self.path} belongs to kiosk {self.st.kiosk_id!r}, not {self.kiosk_id!r}")

    # --- appending ---------------------------------------------------------------
    def _writer(self) -> sqlite3.Connection:
        """The writer's own connection (autocommit mode: :meth:`_append_once` begins and commits)."""
        if self._conn is None:
            self._conn = self._engine.new()
        return self._conn

    def _append(self, kind: str, data: dict[str, Any] | Callable[[LedgerState], dict[str, Any]]) -> Entry:
        """Append one entry durably. ``data`` may be a function of the current state (running totals),
        so that it can be rebuilt if another process appended first."""
        self._check_writer()
        with self._lock:
            for attempt in (1, 2):
                if self._stale:
                    self._load()
                try:
                    return self._append_once(kind, data(self.st) if callable(data) else data)
                except _SeqTaken:
                    # Another process (the nightly `kiosk closeout`, say) appended since we last read the
                    # file. Nothing of ours was written: re-read the tip and build the entry again, once.
                    log.warning("another process appended to %s; re-reading the ledger and retrying", self.path)
                    if attempt == 2:
                        raise LedgerError(f"{self.path} keeps changing under this process; "
                                          "only one writer at a time may append") from None
        raise AssertionError("unreachable")

    def _append_once(self, kind: str, data: dict[str, Any]) -> Entry:
        st, clock = self.st, self.clock
        seq = st.size + 1
        body, obj = new_entry(self.kiosk_id, self.key_id, seq, st.tip, st.boot + (kind == "boot"),
                              clock.mono_ms(), clock.wall_ms(), clock.synced(), kind, data)
        if st.signer_of(seq, obj) != self._pub_hex:
            # `kiosk rekey` handed the chain to another key while this process held the old one.
            raise LedgerError(f"ledger {self.path} is signed with key {st.key_id} now, not with this "
                              "process's key: restart the kiosk")
        h = entry_hash(body)
        sig = self._signer.sign(h)
        params = (seq, body, h, sig, *denormalised_row(obj))
        try:
            raw = self._writer()
            cur = raw.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                cur.execute(_INSERT, params)
                cur.execute("COMMIT")
            except BaseException:
                if raw.in_transaction:
                    raw.rollback()
                raise
            finally:
                cur.close()
        except sqlite3.IntegrityError as exc:
            # Under BEGIN IMMEDIATE the seq primary key is what catches a second writer.
            self._stale = True
            self._drop_writer()
            if "entries.seq" in str(exc) or "PRIMARY KEY" in str(exc):
                raise _SeqTaken() from None
            raise LedgerError(f"ledger refused seq={seq}: {exc}") from None
        except (sqlite3.Error, OSError) as exc:
            self._stale = True
            self._drop_writer()
            raise LedgerUnavailable(f"ledger write failed, nothing recorded: {_reason(exc)}",
                                    disk_full=_is_disk_full(exc)) from None
        entry = Entry(seq, body, h, sig, obj)
        st.apply(seq, obj, h, sig)
        self._view = LedgerView.of(st, self._view, kind)  # one reference swap: readers see all of it or none
        return entry

    def _drop_writer(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    def append(self, kind: str, data: dict[str, Any] | Callable[[LedgerState], dict[str, Any]]) -> Entry:
        """Append a generic entry (admin_action, config_change, close_out...) and checkpoint if due. ``data`` may
        be a function of the state, called again if another process appended first (the retry of
        :meth:`_append`): the nightly close-out re-counts its day there, inside the write."""
        if kind in ("genesis", "checkpoint", "donation_intent", "donation", "donation_failed", "void",
                    "points_grant", "boot", "key_change"):
            raise LedgerError(f"use the dedicated method for {kind} entries")
        return self._after(self._append(kind, data))

    def _after(self, entry: Entry) -> Entry:
        """Checkpoint when N entries or T minutes have passed. A failed checkpoint is logged, not raised:
        the entry itself is already durable, and the next append retries."""
        since = self._since_checkpoint()
        # The entry's own stamp, microseconds old, not another clock read.
        due = since >= self.checkpoint_every or (
            since > 0 and entry.obj["mono_ms"] - self.st.cp_mono >= self.checkpoint_ms)
        if due:
            try:
                self.checkpoint()
            except LedgerUnavailable as exc:
                log.error("checkpoint deferred: %s", exc)
        return entry

    def _since_checkpoint(self) -> int:
        """Entries appended after the last checkpoint entry (which itself sits at cp_size + 1)."""
        return self.size - (self.st.cp_size + 1 if self.st.cp_note is not None else 0)

    def checkpoint(self) -> str:
        """Append a signed checkpoint over every entry so far; returns the signed note."""
        self._check_writer()  # before _load, which would rebuild the writer's state from this thread
        with self._lock:
            if self._stale:
                self._load()
            # A function of the state, not a dict: if another process (`kiosk closeout` from its timer) appended
            # since this one last read the file, _append re-reads the tip and the checkpoint is built again over
            # it. A dict built here would be committed one entry short, and the file would no longer open.
            return cast(str, self._append("checkpoint", self._checkpoint_data).data["note"])

    def _checkpoint_data(self, st: LedgerState) -> dict[str, Any]:
        cp = cpmod.Checkpoint(self.origin, st.size, st.tree.root())
        # ``sigs``: the digest of every signature the checkpoint covers (LedgerState.fold_signature).
        data = {"size": cp.size, "root": cp.root.hex(), "note": cpmod.sign(cp, self._signer)}
        if st.sigs is not None:
            data["sigs"] = st.sigs.hex()
        return data

    # --- the state snapshot ---------------------------------------------------------
    @property
    def snapshot_due(self) -> bool:
        """Whether :attr:`snapshot_every` entries have been appended since the newest state snapshot."""
        return self.size - self.snapshot_size >= self.snapshot_every

    def save_snapshot(self) -> int:
        """Write the state as it is now into the file's state snapshot, signed (kiosk/ledger/snapshot.py);
        returns the size it stands at. Its own transaction, never an entry's: the writer calls it when idle
        (the app's service worker) and at :meth:`close`. A newer snapshot in the file (another process's)
        is kept. Raises :class:`LedgerUnavailable` if it could not be written; the entries are untouched."""
        self._check_writer()
        with self._lock:
            if self._stale:
                self._load()
            st = self.st
            if st.public_key != self._pub_hex:  # opened with key_lost, before announce_new_key
                raise LedgerError("this process's key is not the key in force: no state snapshot")
            blob = snapmod.encode(st)
            sig = self._signer.sign(snapmod.message(blob))
            try:
                raw = self._writer()
                try:
                    raw.execute("BEGIN IMMEDIATE")
                    raw.execute("INSERT INTO state_snapshot (id, format, size, state, signature) "
                                "VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET format = excluded.format, "
                                "size = excluded.size, state = excluded.state, signature = excluded.signature "
                                "WHERE excluded.size >= state_snapshot.size OR state_snapshot.format != ?",
                                (snapmod.FORMAT, st.size, blob, sig, snapmod.FORMAT))
                    raw.execute("COMMIT")
                except BaseException:
                    if raw.in_transaction:
                        raw.rollback()
                    raise
            except (sqlite3.Error, OSError) as exc:
                self._drop_writer()
                raise LedgerUnavailable(f"state snapshot not written: {_reason(exc)}") from None
            self.snapshot_size = st.size
            return st.size

    # --- the room kept for settling charges ------------------------------------------------
    @property
    def reserve_path(self) -> Path:
        return Path(f"{self.path}-reserve")

    def _ensure_reserve(self) -> None:
        """Make sure :attr:`reserve_path` holds :attr:`reserve_bytes` of allocated blocks, making or completing it
        (a file of its own beside the ledger: SQLite reuses free pages of its file, so space inside it could not be
        handed to a settlement this way). Raises :class:`LedgerUnavailable` when it cannot: the disk is full or
        read-only, and no charge may start."""
        path, want = self.reserve_path, self.reserve_bytes
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_blocks * 512 < want:
                    os.posix_fallocate(fd, 0, want)  # real blocks (glibc writes zeros where a file system cannot)
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            self._reserved = False
            raise LedgerUnavailable(f"no room to settle a charge, nothing recorded: {_reason(exc)} "
                                    f"({path.name} needs {want // 1024} KiB on the ledger's disk)",
                                    disk_full=_is_disk_full(exc)) from None
        self._reserved = True

    def _release_reserve(self) -> bool:
        """Give the kept room to the settlement in hand; whether there was any to give."""
        try:
            os.unlink(self.reserve_path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.error("ledger %s: cannot free %s for a settlement: %s", self.path, self.reserve_path.name,
                      _reason(exc))
            return False
        finally:
            self._reserved = False
        try:
            fsync_dir(self.path.parent)  # ext4 hands freed blocks out again once the removal is committed
        except OSError:
            pass
        log.error("ledger %s: the disk is full; the room kept for settling charges is used for this one. No new "
                  "donation is taken until there is room again", self.path)
        return True

    # --- re-keying ---------------------------------------------------------------
    def rekey(self, new_key: Ed25519PrivateKey) -> Entry:
        """Hand the chain over to ``new_key``: a key_change entry signed by the key in force announces it
        (with the new key's proof of possession), every later entry is signed by the new key, starting
        with the checkpoint appended at once. Returns the key_change entry (docs/ledger.md, "Re-keying")."""
        self._check_writer()
        with self._lock:
            new_hex = public_raw(new_key.public_key()).hex()
            if new_hex == self._pub_raw.hex():
                raise LedgerError("the new key is the key in force")
            entry = self._append("key_change", lambda st: _key_change_data(
                self.kiosk_id, st.size + 1, new_key, VOUCHED_BY_PREVIOUS_KEY))
            self._use_key(new_key)
            self.checkpoint()
            return entry

    def announce_new_key(self) -> Entry:
        """For a ledger opened with ``key_lost``: a key_change the new key signs itself, vouched for by an
        administrator's announcement at the portal (``kiosk-portal kiosk rekey ... --from-seq`` this seq)."""
        self._check_writer()
        with self._lock:
            if self._stale:
                self._load()
            if self.st.public_key == self._pub_raw.hex():
                raise LedgerError("this key is already the key in force")
            entry = self._append("key_change", lambda st: _key_change_data(
                self.kiosk_id, st.size + 1, self._sk, VOUCHED_BY_ADMINISTRATOR))
            self.checkpoint()
            return entry

    def use_libsodium(self) -> bool:
        """Sign with libsodium from now on where it is installed (:meth:`Signer.use_libsodium`); whether it does."""
        self._libsodium = True
        return self._signer.use_libsodium()

    def _use_key(self, sk: Ed25519PrivateKey) -> None:
        self._sk = sk
        self._signer = Signer(sk, use_libsodium=self._libsodium)
        self._pub_raw = public_raw(sk.public_key())
        self._pub_hex = self._pub_raw.hex()
        self.key_id = key_id(self._pub_raw)

    # --- donations ---------------------------------------------------------------
    def record_intent(self, project: str, amount_yen: int, method: str, donor: DonorToken | None,
                      idem: str) -> Entry:
        """Commit the intent to charge. Same ``idem`` again returns the existing intent (no new entry).

        ``donor`` is ``None`` for a gift paid on a separate terminal without a card on the kiosk's reader:
        the entry then carries ``donor: null`` and ``pepper_epoch: 0`` (no pepper: epochs start at 1; the
        format keeps ``pepper_epoch`` an integer), and earns no points.

        A charge follows an intent, so an intent is refused (:class:`LedgerUnavailable`, nothing written) unless
        the room to settle it is kept aside (:meth:`_ensure_reserve`): no charge is taken that the ledger cannot
        record because the disk filled up meanwhile.
        """
        self._check_writer()
        with self._lock:
            if self._stale:
                self._load()
            if idem in self.st.idem:
                return self.entry(self.st.idem[idem])
            if not self._reserved and self.reserve_bytes > 0:
                self._ensure_reserve()
            return self._after(self._append("donation_intent", {
                "project": project, "amount_yen": amount_yen, "method": method, "idem": idem,
                "donor": donor.hex if donor else None, "pepper_epoch": donor.epoch if donor else NO_DONOR_EPOCH,
            }))

    def record_donation(self, intent_seq: int, provider_ref: str, points: int) -> Entry:
        """Settle an intent as a donation. Idempotent: an already-resolved intent returns its resolution."""
        return self._settle(intent_seq, "donation", lambda intent, st: {
            "intent_seq": intent_seq, "project": intent["project"], "amount_yen": intent["amount_yen"],
            "points": points, "method": intent["method"], "provider_ref": provider_ref, "idem": intent["idem"],
            "donor": intent["donor"], "pepper_epoch": intent["pepper_epoch"],
            "totals": st.next_totals(intent["project"], intent["amount_yen"]),
        })

    def record_failure(self, intent_seq: int, reason: str, provider_ref: str | None = None) -> Entry:
        """Settle an intent as not charged. Idempotent like :meth:`record_donation`."""
        extra = {"provider_ref": provider_ref} if provider_ref else {}
        return self._settle(intent_seq, "donation_failed", lambda intent, st: {
            "intent_seq": intent_seq, "idem": intent["idem"], "reason": reason, **extra})

    def _settle(self, intent_seq: int, kind: str,
                make_data: Callable[[dict[str, Any], LedgerState], dict[str, Any]]) -> Entry:
        self._check_writer()
        with self._lock:
            if self._stale:
                self._load()
            if intent_seq in self.st.resolution:
                return self.entry(self.st.resolution[intent_seq])
            intent = self.st.intents.get(intent_seq)
            if intent is None:
                raise LedgerError(f"seq={intent_seq} is not a donation intent")
            # Data is built from the state at write time (running totals), see _append.
            try:
                entry = self._append(kind, lambda st: make_data(intent, st))
            except LedgerUnavailable as exc:
                if not (exc.disk_full and self._release_reserve()):
                    raise
                # The disk filled up after the intent (a log, another process): the room kept for this.
                entry = self._append(kind, lambda st: make_data(intent, st))
            return self._after(entry)

    def void(self, donation_seq: int, reason: str) -> Entry:
        """Correct a settled donation; the original entry stays, totals drop."""
        self._check_writer()
        with self._lock:
            if donation_seq not in self.st.donations:
                raise LedgerError(f"seq={donation_seq} is not a settled donation")
            if donation_seq in self.st.voided:
                raise LedgerError(f"seq={donation_seq} is already voided")
            return self._after(self._append("void", {"voids_seq": donation_seq, "reason": reason}))

    def grant_points(self, donor: DonorToken, points: int, activity: str, rules: int | None = None) -> Entry:
        """``rules``: the version of the portal's written point rules the grant follows (docs/points.md)."""
        data: dict[str, Any] = {"donor": donor.hex, "pepper_epoch": donor.epoch, "points": points,
                                "activity": activity}
        if rules is not None:
            data["rules"] = rules
        return self._after(self._append("points_grant", data))

    def spend_points(self, donor: DonorToken, points: int, project: str, amount_yen: int, pool: str) -> Entry:
        """Record points exchanged for a sponsor-matched gift. The caller (kiosk/donation/exchange.py) has
        checked, on this thread, that the card and the pool can afford it (docs/points.md)."""
        return self._after(self._append("points_spent", {
            "donor": donor.hex, "pepper_epoch": donor.epoch, "points": points, "project": project,
            "amount_yen": amount_yen, "pool": pool}))

    def points_spent(self, donor_hexes: list[str] | None = None, pool: str | None = None) -> tuple[int, int]:
        """(points, yen) this kiosk's ledger has spent: of some donor tokens, of one pool, or in all."""
        view = self._view
        q = "SELECT points, amount_yen, body FROM entries WHERE type = 'points_spent' AND seq <= ?"
        args: list[Any] = [view.size]
        if donor_hexes is not None:
            q += f" AND donor IN ({_marks(donor_hexes)})"
            args += donor_hexes
        rows = self._rows(q, args)
        # The pool is in the body only (a kiosk spends a few a day: parsing them is cheap).
        rows = [r for r in rows if pool is None or json.loads(r[2])["data"].get("pool") == pool]
        return sum(int(r[0]) for r in rows), sum(int(r[1]) for r in rows)

    # --- queries -----------------------------------------------------------------
    # Any thread: the figures below come from one published view (or SQL bounded by it). The intent
    # queries read the writer's working state and are for the writer's own thread (the donation service).
    def unresolved_intents(self) -> list[dict[str, Any]]:
        """Intents committed without a donation/donation_failed: resolve each through the payment seam."""
        with self._lock:
            return [dict(v) for _, v in sorted(self.st.intents.items())]

    def intent_for(self, idem: str) -> int | None:
        seq: int | None = self.st.idem.get(idem)
        return seq

    def resolution_of(self, intent_seq: int) -> Entry | None:
        seq = self.st.resolution.get(intent_seq)
        return self.entry(seq) if seq else None

    def project_total(self, project: str) -> tuple[int, int]:
        """(yen, count) of settled, un-voided donations to ``project`` on this kiosk."""
        yen, count = self._view.project_totals.get(project, (0, 0))
        return yen, count

    def totals(self) -> dict[str, Any]:
        return self._view.totals()

    @property
    def tip(self) -> bytes:
        return self._view.tip

    @property
    def public_key_raw(self) -> bytes:
        return self._pub_raw

    @property
    def boot_count(self) -> int:
        return self._view.boot

    def latest_checkpoint(self) -> str | None:
        return self._view.cp_note

    def tree_root(self) -> bytes:
        with self._lock:  # the Merkle range is mutated in place by appends; rarely asked, so it may wait
            return self.st.tree.root()

    def business_date(self, wall_ms: int | None = None) -> date:
        ms = self.clock.wall_ms() if wall_ms is None else wall_ms
        return datetime.fromtimestamp(ms / 1000, self._tz).date()

    def business_date_at_least(self) -> date:
        """Today's business date by the clock; when the clock is not synced, never a day before the newest entry
        written with a synced one. A Raspberry Pi has no real-time clock: booted offline, its clock starts where
        fake-hwclock last saved it (or in 1970) until NTP sets it, and real time has passed that entry. For
        judging when something starts (a points pool's period), where the portal judges an unsynced entry by its
        arrival, after that moment too (server_sync/policy.py)."""
        ms = self.clock.wall_ms()
        if not self.clock.synced():
            bound = self.newest_synced_wall_ms()
            if bound is not None and bound > ms:
                ms = bound
        return self.business_date(ms)

    def newest_synced_wall_ms(self) -> int | None:
        """The wall time of the newest entry written with a synced clock (the latest of them, should a synced
        clock have stepped back), or None. Walks back from the tip to the first such entry, once; later calls read
        only the entries appended since."""
        read_to, found = self._synced_wall
        hi = size = self.size
        while hi > read_to:
            lo = max(read_to, hi - 256)
            rows = self._rows("SELECT body FROM entries WHERE seq > ? AND seq <= ? ORDER BY seq DESC", [lo, hi])
            walls = [obj["wall_ms"] for obj in map(json.loads, (r[0] for r in rows)) if obj.get("clock_synced")]
            if walls:
                found = max(walls) if found is None else max(found, *walls)
                break
            hi = lo
        self._synced_wall = (size, found)
        return found

    def day_bounds_ms(self, day: date) -> tuple[int, int]:
        start = datetime(day.year, day.month, day.day, tzinfo=self._tz)
        end = start + timedelta(days=1)
        return int(start.timestamp() * 1000), int(end.timestamp() * 1000)

    def donor_given(self, donor_hex: str | Sequence[str], day: date) -> int:
        """Yen a donor has given (settled, un-voided) on a business day: for the daily limit. Pass every
        epoch's token of the card (:attr:`DonorToken.all_hexes`) so a pepper rotation does not reset it."""
        hexes = [donor_hex] if isinstance(donor_hex, str) else list(donor_hex)
        lo, hi = self.day_bounds_ms(day)
        view = self._view  # rows up to its size, voids as of it: one point in the history
        rows = self._rows(f"SELECT seq, amount_yen FROM entries WHERE type = 'donation' AND donor IN ({_marks(hexes)})"
                          " AND seq <= ? AND wall_ms >= ? AND wall_ms < ?", [*hexes, view.size, lo, hi])
        return sum(a for s, a in rows if s not in view.voided)

    def donor_points(self, donor_hexes: list[str]) -> int:
        """Point balance of a donor (all its tokens across pepper epochs), derived from the ledger."""
        if not donor_hexes:
            return 0
        view = self._view  # as in donor_given: rows and voids of the same moment
        rows = self._rows(f"SELECT seq, type, points FROM entries WHERE donor IN ({_marks(donor_hexes)})"
                          " AND type IN ('donation', 'points_grant', 'points_spent') AND seq <= ?",
                          [*donor_hexes, view.size])
        return sum((-(p or 0) if t == "points_spent" else (p or 0)) for s, t, p in rows
                   if not (t == "donation" and s in view.voided))

    def entry(self, seq: int) -> Entry:
        rows = self._rows("SELECT seq, body, entry_hash, signature FROM entries WHERE seq = ?", [seq])
        row = rows[0] if rows else None
        if row is None:
            raise LedgerError(f"no entry seq={seq}")
        return Entry(row[0], row[1], row[2], row[3], parse_body(row[1]))

    def last_of_type(self, kind: str) -> Entry | None:
        """The newest entry of ``kind`` (for example the ``config_change`` in force after a restart), or None.
        See :meth:`newest_of_type`."""
        newest = self.newest_of_type(kind, 1)
        return newest[0] if newest else None

    def newest_of_type(self, kind: str, limit: int) -> list[Entry]:
        """The newest ``limit`` entries of ``kind``, newest first. A kind of :data:`~kiosk.ledger.schema.RARE_KINDS`
        is found through its index; any other by walking back from the newest entry (all of them when there are
        fewer than ``limit``)."""
        rows = self._rows(f"SELECT seq, body, entry_hash, signature FROM entries WHERE {_kind_term(kind)} "
                          "ORDER BY seq DESC LIMIT ?", ([] if kind in RARE_KINDS else [kind]) + [limit])
        return [Entry(s, b, h, g, parse_body(b)) for s, b, h, g in rows]

    def entries_of(self, kind: str, stop: int | None = None) -> list[Entry]:
        """Every entry of ``kind``, one of :data:`~kiosk.ledger.schema.RARE_KINDS` (voids, close-outs, config
        changes, points spent), oldest first, up to ``stop``: through their index, not the whole history."""
        if kind not in RARE_KINDS:
            raise ValueError(f"entries_of reads only the kinds {RARE_KINDS}, not {kind!r}")
        q, args = f"SELECT seq, body, entry_hash, signature FROM entries WHERE {_kind_term(kind)}", []
        if stop is not None:
            q, args = q + " AND seq <= ?", [stop]
        return [Entry(s, b, h, g, parse_body(b)) for s, b, h, g in self._rows(q + " ORDER BY seq", args)]

    def donation_times(self, first: date, last: date) -> list[int]:
        """The wall times of the donations (voided ones too) that may fall on business days ``first``..``last``
        in any time zone (:func:`~kiosk.ledger.report.day_window_ms`: a superset), from their index alone."""
        return [r[0] for r in self._rows("SELECT wall_ms FROM entries WHERE type = 'donation' AND wall_ms >= ?"
                                         " AND wall_ms < ?", list(day_window_ms(first, last)))]

    def donation_times_after(self, seq: int, before_ms: int) -> list[int]:
        """The wall times of the donations after ``seq`` dated before ``before_ms``: gifts dated by a clock far
        behind (kiosk/staff/closeout.py ``open_dates``). Walked by the primary key (``NOT INDEXED``: the donations'
        wall-time index would walk every older gift of the history), so it costs the entries after ``seq``."""
        return [r[0] for r in self._rows("SELECT wall_ms FROM entries NOT INDEXED WHERE seq > ? AND type = 'donation'"
                                         " AND wall_ms < ?", [seq, before_ms])]

    def report_entries(self, first: date, last: date, stop: int | None = None) -> list[tuple[int, dict[str, Any]]]:
        """``(seq, parsed body)`` in seq order of what close-out reports of business days ``first``..``last`` read
        (:func:`report_query`), up to ``stop``. The same as the whole ledger to
        :func:`~kiosk.ledger.report.settled_report` for any of those days (kiosk/staff/closeout.py), at the cost
        of those entries alone: a lobby kiosk writes tens of thousands of entries a year, and these reports run
        on its CPU while it takes gifts (docs/ledger.md, "Reads that do not grow with the history")."""
        sql, args = report_query(first, last, stop)
        return [(s, parse_body(b)) for s, b in self._rows(sql, args)]

    def iter_entries(self, start: int = 1, stop: int | None = None) -> Iterator[Entry]:
        q = "SELECT seq, body, entry_hash, signature FROM entries WHERE seq >= ?"
        args: list[Any] = [start]
        if stop is not None:
            q += " AND seq <= ?"
            args.append(stop)
        with self._engine.read() as conn:
            for seq, body, h, sig in conn.execute(q + " ORDER BY seq", args):
                yield Entry(seq, body, h, sig, parse_body(body))

    def leaf_hashes(self, stop: int | None = None) -> list[bytes]:
        q, args = "SELECT entry_hash FROM entries", []
        if stop is not None:
            q, args = q + " WHERE seq <= ?", [stop]
        return [r[0] for r in self._rows(q + " ORDER BY seq", args)]

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One read on a pooled connection. A read that fails raises ``sqlite3.Error`` (the medium is gone):
        callers that must fail closed on it say so (the daily limit, kiosk/donation/service.py)."""
        with self._engine.read() as conn:
            return conn.execute(sql, tuple(args)).fetchall()


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector off while a ledger's state is decoded and replayed: that makes tens of
    thousands of objects that all stay alive, and each full collection it would trigger meanwhile walks every
    object of the process (30,000 entries' snapshot: ≈ 36 ms to decode with it, ≈ 15 ms without)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _key_change_data(kiosk: str, seq: int, new_key: Ed25519PrivateKey, vouched_by: str) -> dict[str, Any]:
    new_hex = public_raw(new_key.public_key()).hex()
    proof = new_key.sign(key_change_message(kiosk, seq, new_hex))
    return {"public_key": new_hex, "vouched_by": vouched_by, "proof": base64.b64encode(proof).decode()}


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _kind_term(kind: str) -> str:
    """``type = '<kind>'`` written out for a rare kind: SQLite uses a partial index only when it can prove the
    query's WHERE implies the index's, which it cannot for a bound parameter; ``type = ?`` for any other kind."""
    return f"type = '{kind}'" if kind in RARE_KINDS else "type = ?"


def report_query(first: date, last: date, stop: int | None = None) -> tuple[str, list[int]]:
    """The statement behind :meth:`Ledger.report_entries` (and the off-line ``kiosk ledger report --date``): seq
    and body of the genesis (its time zone), of the donations whose wall time lies in business days
    ``first``..``last`` with a day's margin either side (:func:`~kiosk.ledger.report.day_window_ms`, which
    ``settled_report`` then narrows to each entry's date in the genesis's zone) and of every void and close-out,
    in seq order, each part through its index (schema migration 3)."""
    lo_ms, hi_ms = day_window_ms(first, last)
    upto = "" if stop is None else " AND seq <= ?"
    cut = [] if stop is None else [stop]
    parts = ["SELECT seq, body FROM entries WHERE seq = 1",
             f"SELECT seq, body FROM entries WHERE type = 'donation' AND wall_ms >= ? AND wall_ms < ?{upto}",
             f"SELECT seq, body FROM entries WHERE {_kind_term('void')}{upto}",
             f"SELECT seq, body FROM entries WHERE {_kind_term('close_out')}{upto}"]
    return " UNION ALL ".join(parts) + " ORDER BY seq", [lo_ms, hi_ms, *cut, *cut, *cut]


def iter_entries(engine: Engine, start: int = 1, stop: int | None = None) -> Iterator[Entry]:
    """The entries of a ledger read through SQLAlchemy (:func:`read_only_engine`): the off-line tools' way in.
    SQLAlchemy is imported here, not at module level, so ``kiosk run`` never loads it (see :class:`_Db`)."""
    from sqlalchemy import select

    from kiosk.ledger.schema import entries

    q = select(entries.c.seq, entries.c.body, entries.c.entry_hash, entries.c.signature).where(
        entries.c.seq >= start).order_by(entries.c.seq)
    if stop is not None:
        q = q.where(entries.c.seq <= stop)
    with engine.connect() as conn:
        for seq, body, h, sig in conn.execute(q):
            yield Entry(seq, body, h, sig, parse_body(body))


def engine_report_entries(engine: Engine, first: date, last: date) -> list[tuple[int, dict[str, Any]]]:
    """:meth:`Ledger.report_entries` for an off-line reader (:func:`read_only_engine`)."""
    sql, args = report_query(first, last)
    with engine.connect() as conn:
        return [(s, parse_body(b)) for s, b in conn.exec_driver_sql(sql, tuple(args))]


def read_only_engine(path: str | os.PathLike[str]) -> Engine:
    """An engine for reading someone's ledger file without changing it (verify, report, export)."""
    from sqlalchemy import create_engine

    p = Path(path)
    if not p.exists():
        raise LedgerError(f"{p} does not exist")
    uri = f"file:{p.resolve()}?mode=ro"
    return create_engine("sqlite://", creator=lambda: __import__("sqlite3").connect(uri, uri=True,
                                                                                     check_same_thread=False))


def _is_disk_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL ("database or disk is full"), or the system's ENOSPC or EDQUOT."""
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, sqlite3.Error):
        return str(exc)
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
    if isinstance(orig, BaseException):
        return str(orig)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc).splitlines()[0]

"""Accepting uploads: the portal's checks, in the order docs/sync.md lists them.

Verification (every signature, the chain continuing from the last accepted entry, the checkpoint's
consistency) runs *before* the write transaction, so the database's write lock is held only for
the inserts. The write transaction then re-reads the kiosk's high-water mark under a row lock and
commits only if nothing moved in between; (kiosk, seq) is the primary key, so a duplicate can never
be stored twice even if two portal processes race.

Resuming the chain needs the replayed :class:`~kiosk.ledger.state.LedgerState` (open intents, running
totals, the Merkle compact range). A process keeps the verifier it last used per kiosk, keyed by the
(size, tip) it stands at; when that does not match the database (another process ingested, or this
process restarted) it is rebuilt by replaying the stored entries, which were verified on arrival, so
the rebuild parses and applies them without re-checking signatures. The cache is only a speed-up:
correctness never depends on it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from pydantic import ValidationError
from sqlalchemy import BigInteger, and_, bindparam, case, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import NoResultFound, SQLAlchemyError

from kiosk.ledger import checkpoint as cpmod
from kiosk.ledger import merkle
from kiosk.ledger.encoding import entry_hash
from kiosk.ledger.keys import public_from_raw, public_raw
from kiosk.ledger.verify import BAD_SIGNATURE, ChainVerifier, Row, VerifyFailure
from server_sync import bodies, citypepper, columns, kiosk_keys, policy, totals, tree, verifier_states
from server_sync.bodies import parse_body
from server_sync.clockfix import BootClock
from server_sync.configstore import current_version
from server_sync.db import (
    IS_CONFIG_CHANGE,
    KIOSK_ROW,
    UNSYNCED,
    alarms,
    boots,
    closed_date,
    configs,
    entries,
    idempotency,
    is_sqlite,
    kiosk_info,
    kiosks,
    lock_kiosk,
    peppers,
    projects,
    writing,
)
from server_sync.errors import PortalError
from server_sync.wire import protocol as P
from server_sync.wire.receipt import receipt_code_of

log = logging.getLogger(__name__)

CACHED_ENTRIES = 4_000_000
"""Default of ``Ingestor(cached_entries=...)`` and $KIOSK_PORTAL_VERIFIER_CACHE: the entries of the kiosks' chains
whose verifiers a portal process keeps in memory (about 92 MB; docs/sync.md, "Resuming verification")."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Plan:
    """What one verified batch will write."""

    size: int = 0
    tip: bytes = b""
    ack: tuple[int, bytes | None, str | None] = (0, None, None)
    pending: tuple[int | None, bytes | None] = (None, None)
    objs: list[dict[str, Any]] = field(default_factory=list)  # parsed bodies, from the verifier
    rows: list[dict[str, Any]] = field(default_factory=list)  # the portal_entries rows, one per obj
    made: list[tuple[int, int, bytes]] = field(default_factory=list)  # tree nodes the batch completes (tree.py)


@dataclass
class Upload:
    """A parsed batch whose Idempotency-Key this process holds in flight (:meth:`Ingestor.claim`)."""

    ingestor: Ingestor
    kiosk: dict[str, Any]
    key: str
    digest: str
    batch: tuple[P.BatchRequest, list[Row]]
    lock: threading.Lock  # the kiosk's: one batch of a kiosk at a time in this process
    released: bool = False

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Let the key be used again (once: a second call does nothing)."""
        if not self.released:
            self.released = True
            self.ingestor._release(self.kiosk["id"], self.key)


class Conflict(Exception):
    """Another writer moved the kiosk's high-water mark while we verified."""


BEHIND_GRACE_MS = 90_000
"""A heartbeat reporting a ledger shorter than the portal holds raises the "restored from a backup" alarm only once
the first entry it lacks has been held this long (:meth:`Ingestor._behind`)."""


class Ingestor:
    """Batch ingest and heartbeats for one portal process. Thread-safe."""

    def __init__(self, engine: Engine, next_sync_s: int = 60, state_every: int = verifier_states.EVERY,
                 cached_entries: int = CACHED_ENTRIES):
        self.engine = engine
        self.next_sync_s = next_sync_s
        self.state_every = state_every
        """Save a kiosk's verifier state each time its chain grows by this many entries (verifier_states.py)."""
        self.cached_entries = cached_entries
        """Keep verifiers of at most this many entries in all (:data:`CACHED_ENTRIES`; 0: no limit)."""
        # Least recently stored to first; every change under _guard (eviction walks it from another kiosk's thread).
        self._verifiers: OrderedDict[str, ChainVerifier] = OrderedDict()
        self._saved: dict[str, int] = {}  # per kiosk, the size of the verifier state saved, as this worker knows it
        self._locks: dict[str, threading.Lock] = {}
        self._inflight: set[tuple[str, str]] = set()
        self._guard = threading.Lock()

    # --- answers ----------------------------------------------------------------------------------
    def answer(self, conn: Connection, kiosk_id: str, duplicates: int = 0, accepted: int = 0) -> dict[str, Any]:
        # One statement (one round trip on PostgreSQL): the kiosk's marks, the config version it should run
        # (configstore.current_version) and the city's pepper epoch (citypepper.current_epoch).
        row = conn.execute(_ANSWER, {"kid": kiosk_id, "kiosk_target": f"kiosk:{kiosk_id}"}).first()
        if row is None:
            size, cp_size, reported, version, epoch = 0, 0, 0, current_version(conn, kiosk_id), \
                citypepper.current_epoch(conn)
        else:
            size, cp_size, reported, version, epoch = row
        return P.SyncAnswer(
            kiosk_id=kiosk_id, accepted_through_seq=size, checkpoint_size=cp_size, server_time=now_ms(),
            config_version=version, pepper_epoch=int(epoch or 0),
            next_sync_after=0 if reported > size else self.next_sync_s,
            duplicates=duplicates, accepted=accepted,
        ).model_dump()

    # --- heartbeat --------------------------------------------------------------------------------
    def heartbeat(self, kiosk: dict[str, Any], raw: bytes) -> dict[str, Any]:
        try:
            now = P.KioskNow.model_validate_json(raw)
        except ValidationError as exc:
            raise _invalid(exc) from None
        kid = kiosk["id"]
        t = now_ms()
        with self._write() as conn:
            row = self._lock_kiosk(conn, kid)
            if now.ledger_size < row["size"]:
                self._behind(conn, kid, row["size"], now.ledger_size, t)
            b = _clock_boot(now.boot)
            columns.require(boots, {"boot": b})
            known = self._boot_clocks(conn, kid, [b])
            clock = known.get(b, BootClock())
            clock.observe_heartbeat(now.mono_ms, now.wall_ms, now.clock_synced, t)
            self._save_boots(conn, kid, {b: clock}, set(known))
            pay, refused = now.payment, now.config_refused
            conn.execute(_SET_KIOSK, {
                "kid": kid, "last_seen_ms": t, "reported_size": now.ledger_size, "clock_synced": now.clock_synced,
                "clock_skew_ms": now.wall_ms - t,
                **({} if pay is None else {"payment_terminal": pay.terminal, "payment_state": pay.state,
                                           "payment_detail": pay.detail, "payment_seen_ms": t}),
                # Each heartbeat says it again while it holds: one without it (the kiosk applied a config since,
                # or is older than the field) clears it.
                "config_refused_version": None if refused is None else refused.version,
                "config_refused_reason": None if refused is None else refused.reason,
                "config_refused_detail": None if refused is None else refused.detail})
            return self.answer(conn, kid)

    @staticmethod
    def _behind(conn: Connection, kid: str, held: int, reported: int, t: int) -> None:
        """The kiosk reports a ledger shorter than what the portal holds of it: its data was restored from an
        older backup (or it is another kiosk under this id). Nothing it writes from here can be taken, so staff
        must hear of it: one alarm for each size the portal holds (a kiosk heartbeats every minute), in the
        heartbeat's own transaction (docs/sync.md, "A kiosk restored from an old backup")."""
        first_missing = conn.execute(select(entries.c.received_ms).where(
            entries.c.kiosk_id == kid, entries.c.seq == reported + 1)).scalar()
        if first_missing is not None and t - first_missing < BEHIND_GRACE_MS:
            # Those entries arrived moments ago: this heartbeat may have been sent before them, by one process
            # (the app's sync thread) while another (`kiosk sync` from its timer) uploaded them. A restored kiosk
            # says hello every minute: its next heartbeat, past the grace, raises the alarm.
            return
        if conn.execute(select(alarms.c.id).where(alarms.c.kiosk_id == kid, alarms.c.kind == "ledger_behind",
                                                  alarms.c.seq == held).limit(1)).first() is None:
            conn.execute(_INSERT_ALARM, {
                "kiosk_id": kid, "kind": "ledger_behind", "seq": held, "created_ms": t,
                "detail": f"kiosk reports a ledger of {reported} entries; the portal already holds {held} "
                          "(restored from an old backup?)"})
        conn.execute(_SET_KIOSK, {"kid": kid, "alarm": True})

    # --- batches ----------------------------------------------------------------------------------
    def ingest(self, kiosk: dict[str, Any], key: str, digest: str, raw: bytes) -> dict[str, Any]:
        with self.claim(kiosk, key, digest, raw) as upload:
            return self.run(upload)

    def claim(self, kiosk: dict[str, Any], key: str, digest: str, raw: bytes) -> Upload:
        """The first half of :meth:`ingest`: the batch parsed and its Idempotency-Key marked in flight (the
        refusals of those two steps, in that order), as a context manager that releases the key on exit.
        The portal's app waits for an ingest slot between the halves (docs/portal.md, "Ingest slots"), so a
        second upload of the same key that arrives while the first waits is still a 409 in_flight."""
        kid = kiosk["id"]
        if not key:
            raise PortalError(400, "idempotency_key_required", "batch uploads need an Idempotency-Key header")
        batch = _parse_batch(raw, kid)
        with self._guard:
            if (kid, key) in self._inflight:
                raise PortalError(409, "in_flight", "the same Idempotency-Key is still being processed",
                                  headers={"Retry-After": "1"})
            self._inflight.add((kid, key))
            lock = self._locks.setdefault(kid, threading.Lock())
        return Upload(self, kiosk, key, digest, batch, lock)

    def run(self, upload: Upload) -> dict[str, Any]:
        """The second half of :meth:`ingest`: every other check, and the write."""
        kiosk, kid = upload.kiosk, upload.kiosk["id"]
        with upload.lock:
            for _ in range(3):
                try:
                    return self._ingest_locked(kiosk, upload.key, upload.digest, upload.batch)
                except Conflict:
                    self._forget(kid)
            raise PortalError(409, "conflict", "the kiosk's ledger moved during the upload; retry",
                              headers={"Retry-After": "1"})

    def _release(self, kid: str, key: str) -> None:
        with self._guard:
            self._inflight.discard((kid, key))

    def _replay(self, conn: Connection, kid: str, key: str, digest: str) -> dict[str, Any] | None:
        """The stored answer to ``key`` (in the connection that then reads the kiosk: one checkout, not two)."""
        row = conn.execute(_STORED_ANSWER, {"kid": kid, "key": key}).first()
        if row is None:
            return None
        if row[0] != digest:
            raise PortalError(422, "idempotency_mismatch",
                              "this Idempotency-Key was already used with a different body")
        stored = json.loads(row[1])
        stored["server_time"] = now_ms()  # the kiosk learns the portal's clock from every answer
        stored["replayed"] = True
        # Through the model: an answer stored by an older portal gets the fields added since, at their defaults.
        return P.SyncAnswer.model_validate(stored).model_dump()

    def _ingest_locked(self, kiosk: dict[str, Any], key: str, digest: str,
                       batch: tuple[P.BatchRequest, list[Row]]) -> dict[str, Any]:
        req, decoded = batch
        kid = kiosk["id"]
        pub = public_from_raw(kiosk["public_key"])
        with self.engine.connect() as conn:
            replay = self._replay(conn, kid, key, digest)
            if replay is not None:
                return replay
            k = conn.execute(KIOSK_ROW, {"kid": kid}).mappings().one()
            ks = kiosk_keys.load(conn, kid, bytes(k["public_key"]))
        size = k["size"]
        if size == 0:  # the chain starts with this batch: its genesis names the enrolled key
            pub = public_from_raw(ks.genesis_key(bytes(kiosk["public_key"])))
        if req.first_seq > size + 1:
            raise PortalError(409, "gap", f"batch starts at seq={req.first_seq}, the portal expects seq={size + 1}",
                              expected_seq=size + 1)
        overlap = [d for d in decoded if d.seq <= size]
        fresh = [d for d in decoded if d.seq > size]
        if ks.revoked and fresh:
            fresh, cut = _drop_revoked(fresh, ks)
            if cut is not None:
                if not fresh:
                    raise PortalError(403, "key_revoked", f"the key that signed seq={cut[0]} is revoked from "
                                      f"seq={cut[1]} on (docs/sync.md, \"Revoking a key\")", seq=cut[0])
                # The entries before the revoked one are taken; the batch's note may cover revoked ones.
                req = req.model_copy(update={"checkpoint": None, "consistency": None})
        if overlap:
            self._check_overlap(kid, [public_from_raw(r) for r in ks.known]
                                + [lambda: self._verifier(kid, pub, k).keys], overlap)
        if not fresh:
            with self._write() as conn:
                self._lock_kiosk(conn, kid)
                ans = self.answer(conn, kid, duplicates=len(overlap))
                self._remember(conn, kid, key, digest, ans)
                conn.execute(_SET_KIOSK, {"kid": kid, "last_seen_ms": now_ms()})
            return ans
        verifier = self._verifier(kid, pub, k)
        verifier.trusted_keys = ks.trusted  # an administrator's announcement may be newer than the cache
        plan = self._verify(kid, pub, k, verifier, req, fresh)
        try:
            with self._write() as conn:
                cur = self._lock_kiosk(conn, kid)
                if (cur["size"], cur["tip"]) != (k["size"], k["tip"]):
                    raise Conflict()
                # A key revoked or announced since the events were read (kiosk_keys.revoke takes the same lock,
                # so from here on it waits): judge the batch again. Its revocation quarantined only what the
                # portal held, so a batch verified before it would have stored the revoked key's entries.
                now_keys = kiosk_keys.load(conn, kid, bytes(k["public_key"]))
                if (now_keys.revoked, now_keys.trusted) != (ks.revoked, ks.trusted):
                    raise Conflict()
                self._store(conn, kid, plan, fresh, cur)
                ans = self.answer(conn, kid, duplicates=len(overlap), accepted=len(fresh))
                self._remember(conn, kid, key, digest, ans)
        except BaseException:
            self._forget(kid)  # it has moved past what the database holds
            raise
        self._cache(kid, verifier)
        self._keep_state(kid, verifier)
        return ans

    # --- checks -----------------------------------------------------------------------------------
    def _check_overlap(self, kid: str, pubs: list[Any], overlap: list[Row]) -> None:
        """Entries the portal already holds must be the same bytes; a different signed body is equivocation.
        ``pubs``: the keys the kiosk has signed with (and a function giving the chain's own, read if needed)."""
        lo, hi = overlap[0].seq, overlap[-1].seq
        with self.engine.connect() as conn:
            held = dict(conn.execute(select(entries.c.seq, entries.c.entry_hash).where(
                entries.c.kiosk_id == kid, entries.c.seq >= lo, entries.c.seq <= hi)).all())
        for d in overlap:
            if held.get(d.seq) == d.entry_hash:
                continue
            if not _signed_by_any(pubs, d):
                raise PortalError(422, "invalid_entry", "bad signature (not signed by this kiosk's key)",
                                  seq=d.seq) from None
            detail = f"kiosk signed a different entry at seq={d.seq}, which the portal already holds"
            self._alarm(kid, "equivocation", d.seq, detail)
            raise PortalError(409, "equivocation", detail, seq=d.seq)

    def _verify(self, kid: str, pub: Any, k: Any, v: ChainVerifier, req: P.BatchRequest,
                fresh: list[Row]) -> _Plan:
        st = v.state
        cp = None
        chain_pub = v.pub or pub  # the key in force (pub before genesis)
        # From here on: the key that signs each entry (the chain may change keys), and the notes found good.
        # The batch's note is usually its newest checkpoint entry's, which _bad_signature checks below under
        # the same key: opened through the same _Signers, its signature is checked once.
        pub = _Signers(chain_pub)
        if req.checkpoint is not None:
            try:
                cp = _open_note(pub, req.checkpoint, [chain_pub, *_announced_keys(fresh),
                                                      *map(public_from_raw, v.trusted_keys.values())])
            except cpmod.CheckpointError as exc:
                raise PortalError(422, "bad_checkpoint", f"checkpoint note: {exc}") from None
            if cp.origin != cpmod.origin_for(kid):
                raise PortalError(422, "bad_checkpoint", f"checkpoint origin {cp.origin!r} is not this kiosk's log")
            old = req.consistency.old_size
            if old != k["cp_size"]:
                raise PortalError(409, "checkpoint_ack_mismatch",
                                  f"proof starts at size {old}, the portal acknowledged size {k['cp_size']}",
                                  checkpoint_size=k["cp_size"])
            if cp.size < old:
                raise PortalError(422, "stale_checkpoint",
                                  f"checkpoint of size {cp.size} is older than the acknowledged size {old}")
            try:
                proof = [P.unb64(h) for h in req.consistency.proof]
            except ValueError:
                raise PortalError(422, "bad_consistency_proof", "proof hashes must be base64") from None
            old_root = k["cp_root"] if old else merkle.EMPTY_ROOT
            if not merkle.verify_consistency(old, cp.size, old_root, cp.root, proof):
                detail = (f"checkpoint of size {cp.size} is not proven consistent with the acknowledged "
                          f"checkpoint of size {old}")
                if old and _signed_by_kiosk(pub, req.checkpoint, [chain_pub, *map(public_from_raw,
                                                                                  v.trusted_keys.values())]):
                    # Both checkpoints are signed by a key the portal holds for this kiosk: two histories under one
                    # key (a data dir restored from an old backup that took gifts past the portal, a copied SD
                    # card), as step 8's mismatch is. Alarm and suspension commit though the batch is refused.
                    self._alarm(kid, "equivocation", old, f"{detail}: the kiosk's key signed two different ledgers")
                    raise PortalError(409, "equivocation", detail, seq=old)
                raise PortalError(422, "bad_consistency_proof", detail)
        roots = {st.size: st.tree.root()}
        want = {}
        if k["pending_cp_size"] is not None and k["pending_cp_size"] > st.size:
            want[k["pending_cp_size"]] = k["pending_cp_root"]
        objs = []
        # Ingest by checkpoint (docs/sync.md): entries are chained and replayed without their Ed25519
        # signatures; a checkpoint entry in the batch whose root and signature digest match what the
        # portal recomputed from the received bytes vouches for every entry up to its size, so only
        # that checkpoint entry and the entries after it have their own signatures checked below.
        # The same holds for the notes of the checkpoint entries: a covered checkpoint entry's note is the
        # one the kiosk's writer signed with it, so only the notes of uncovered ones are checked below.
        covered = 0
        # The verifier's Merkle range notes the nodes of the portal's tree that this batch completes (tree.py).
        rng = tree.Recorder.over(st)
        try:
            for d in fresh:
                obj = v.feed(d, check_signature=False, check_note=False, hashed=True)  # _parse_batch hashed d.body
                pub.by_seq[d.seq], pub.default = v.signer, v.pub
                objs.append(obj)
                if obj["type"] == "checkpoint":
                    pub.notes[d.seq] = (obj["data"]["note"], v.pub)
                    if "sigs" in obj["data"] and st.sigs is not None:
                        covered = obj["data"]["size"]  # LedgerState checked its root and digest against ours
                if cp is not None and st.size == cp.size:
                    roots[st.size] = st.tree.root()
                if st.size in want and st.tree.root() != want[st.size]:
                    _first_bad_signature(pub, fresh, st.size)  # a forged entry is refused, not an equivocation
                    detail = (f"entries 1..{st.size} do not produce the root of the checkpoint the kiosk signed "
                              "earlier")
                    self._alarm(kid, "equivocation", st.size, detail)
                    raise PortalError(409, "equivocation", detail, seq=st.size)
            tail_bad = _bad_signature(pub, [d for d in fresh if d.seq > covered])
            if tail_bad is not None:
                # Entries below the checkpoint entry are not vouched for if its own signature is bad.
                _first_bad_signature(pub, fresh, tail_bad[0])
                raise PortalError(422, "invalid_entry", tail_bad[1], seq=tail_bad[0])
        except VerifyFailure as bad:
            self._forget(kid)
            # As a verifier checking every signature in order would: an earlier (or the same) entry's bad
            # signature outranks a structural fault, which a forged entry usually also shows.
            # (A key change the portal cannot vouch for is named as such: its signer is not known here.)
            keyish = any(w in bad.reason for w in ("key_change", "key change", "announced key"))
            _first_bad_signature(pub, fresh, bad.seq - keyish)
            raise PortalError(422, "invalid_entry", bad.reason, seq=bad.seq) from None
        except PortalError:
            self._forget(kid)
            raise
        # The rows to store, built once: _store sets their times (and quarantine) in the write transaction.
        rows = [entry_row(kid, d.seq, d.body, d.signature, d.entry_hash, o, 0, False, 0)
                for d, o in zip(fresh, objs, strict=True)]
        plan = _Plan(size=st.size, tip=st.tip, objs=objs, rows=rows, made=rng.made)
        try:  # a value a column cannot hold is a 422 here, never a database error (server_sync/columns.py)
            columns.require_entries(rows, objs)
        except PortalError:
            self._forget(kid)
            raise
        ack = (k["cp_size"], k["cp_root"], k["cp_note"])
        if st.cp_note is not None and st.cp_size > ack[0]:
            ack = (st.cp_size, st.cp_root, st.cp_note)
        pending = (k["pending_cp_size"], k["pending_cp_root"])
        if pending[0] is not None and pending[0] <= st.size:
            pending = (None, None)  # fulfilled above
        if cp is not None:
            if cp.size <= st.size:
                known = roots.get(cp.size) or self._root_from_chain(kid, cp.size, ack)
                if known is None:
                    raise PortalError(422, "bad_checkpoint", f"no checkpoint of size {cp.size} in this kiosk's chain")
                if known != cp.root:
                    try:
                        _first_bad_signature(pub, fresh, fresh[-1].seq)
                    except PortalError:
                        self._forget(kid)
                        raise
                    detail = f"signed checkpoint of size {cp.size} contradicts the kiosk's own entries"
                    self._alarm(kid, "equivocation", cp.size, detail)
                    raise PortalError(409, "equivocation", detail, seq=cp.size)
                if cp.size > ack[0]:
                    ack = (cp.size, cp.root, req.checkpoint)
            elif pending[0] is None:
                pending = (cp.size, cp.root)
        plan.ack, plan.pending = ack, pending
        return plan

    def _root_from_chain(self, kid: str, size: int, ack: tuple[int, bytes | None, str | None]) -> bytes | None:
        """Root at ``size`` for a size the portal already passed: the acknowledged one or an in-chain checkpoint."""
        if size == ack[0]:
            return ack[1] if size else merkle.EMPTY_ROOT
        with self.engine.connect() as conn:
            body = conn.execute(select(entries.c.body).where(
                entries.c.kiosk_id == kid, entries.c.seq == size + 1, entries.c.type == "checkpoint")).scalar()
        if body is None:
            return None
        data = parse_body(body)["data"]
        return bytes.fromhex(data["root"]) if data["size"] == size else None

    # --- verifier cache ---------------------------------------------------------------------------
    def _verifier(self, kid: str, pub: Any, k: Any) -> ChainVerifier:
        v = self._verifiers.get(kid)
        if v is not None and v.state.size == k["size"] and v.state.tip == k["tip"]:
            return v
        self._forget(kid)
        if v is not None and 0 < v.state.size < k["size"] and self._catch_up(kid, v, k):
            return v
        v = self._from_saved(kid, pub, k)
        if v is not None:
            return v
        v = _new_verifier(pub)
        with self.engine.connect() as conn:
            _replay(v, conn.execution_options(stream_results=True, yield_per=2000).execute(
                _STORED, {"kid": kid, "lo": 1, "hi": k["size"]}))
        if v.state.size != k["size"] or v.state.tip != k["tip"]:
            raise Conflict()
        return v

    def _cache(self, kid: str, v: ChainVerifier) -> None:
        """Keep ``v`` as kiosk ``kid``'s verifier, the most recently used; then, while the cached verifiers hold
        more than ``cached_entries`` entries in all, forget the least recently used (never this one). A state
        costs about 21 bytes an entry (its idempotency keys, donations and resolutions: kiosk/ledger/idemmap.py
        and seqmap.py),
        so a city's kiosks, years in, would otherwise hold gigabytes in every worker; a forgotten kiosk's next
        batch starts from its saved state (server_sync/verifier_states.py). Kiosks send batches only when they
        have new entries, so that is a gift's sync, not every minute's."""
        with self._guard:
            self._verifiers[kid] = v
            self._verifiers.move_to_end(kid)
            if not self.cached_entries:
                return
            total = sum(c.state.size for c in self._verifiers.values())
            while total > self.cached_entries and len(self._verifiers) > 1:
                _, old = self._verifiers.popitem(last=False)
                total -= old.state.size

    def _forget(self, kid: str) -> None:
        with self._guard:
            self._verifiers.pop(kid, None)

    def _from_saved(self, kid: str, pub: Any, k: Any) -> ChainVerifier | None:
        """A verifier started from the kiosk's saved state (server_sync/verifier_states.py), with the entries
        stored after it replayed, as ``_catch_up`` replays them onto a cached one; None if there is none this
        worker can use (it then replays from the first entry, and saves over it after the next batch)."""
        self._saved[kid] = 0
        with self.engine.connect() as conn:
            saved = verifier_states.load(conn, kid)
            if saved is None or not 0 < saved.size <= k["size"]:
                return None
            rows = conn.execute(_STORED, {"kid": kid, "lo": saved.size, "hi": k["size"]}).all()
        st = verifier_states.restore(saved)  # its size and tip are the row's
        if st is None:
            return None
        v = _new_verifier(pub)
        v.state = st
        if not _replay_onto(v, rows, k):
            return None
        self._saved[kid] = saved.size
        return v

    def _keep_state(self, kid: str, v: ChainVerifier) -> None:
        """After a stored batch: save the kiosk's verifier state if it is due. Its own transaction, after the
        batch's: a state that is not saved costs a longer replay later, never a batch. (Every verifier this
        worker holds went through ``_from_saved`` first, which set what it knows of the saved one.)"""
        if not verifier_states.due(v.state.size, self._saved.get(kid, 0), self.state_every):
            return
        try:
            with self._write() as conn:
                verifier_states.save(conn, kid, v.state)
        except SQLAlchemyError as exc:  # a busy database: the next batch tries again
            log.warning("kiosk %s: verifier state not saved (%s)", kid, type(exc).__name__)
            return
        self._saved[kid] = v.state.size

    def _catch_up(self, kid: str, v: ChainVerifier, k: Any) -> bool:
        """Another process (a worker behind the same proxy) stored this kiosk's entries since this one last
        verified it: replay only those onto the cached verifier (``_replay_onto``), as the rebuild replays them
        all. False (the verifier is then dropped): the caller rebuilds from the first entry."""
        with self.engine.connect() as conn:
            rows = conn.execute(_STORED, {"kid": kid, "lo": v.state.size, "hi": k["size"]}).all()
        return _replay_onto(v, rows, k)

    # --- writing ----------------------------------------------------------------------------------
    def _write(self):  # noqa: ANN202
        return writing(self.engine)

    def _lock_kiosk(self, conn: Connection, kid: str) -> Any:
        row = lock_kiosk(conn, kid)
        if row is None:  # an authenticated request named it: not seen, but never taken for a kiosk without a row
            raise NoResultFound("No row was found when one was required")
        return row

    def _boot_clocks(self, conn: Connection, kid: str, wanted: list[int]) -> dict[int, BootClock]:
        rows = conn.execute(_BOOTS, {"kid": kid, "boots": sorted(set(wanted))}).all()
        return {b: BootClock(e, s, m, f) for b, e, s, m, f in rows}

    def _save_boots(self, conn: Connection, kid: str, clocks: dict[int, BootClock],
                    existing: set[int] | None = None) -> None:
        """``existing``: the boots of ``clocks`` that :meth:`_boot_clocks` read in this transaction (the kiosk
        row is locked, so no other writer added one since); None to look them up."""
        if existing is None:
            existing = {r[0] for r in conn.execute(select(boots.c.boot).where(
                boots.c.kiosk_id == kid, boots.c.boot.in_(list(clocks)))).all()}
        news, olds = [], []
        for b, c in clocks.items():
            vals = {"epoch_ms": c.epoch_ms, "source": c.source, "max_mono_ms": c.max_mono_ms, "floor_ms": c.floor_ms}
            if b in existing:
                olds.append({"kid": kid, "b": b, **vals})
            else:
                news.append({"kiosk_id": kid, "boot": b, **vals})
        if olds:
            conn.execute(_SET_BOOT, olds)
        if news:
            conn.execute(_INSERT_BOOT, news)
        for b, c in clocks.items():
            if c.changed:
                # Re-time the unsynced entries of this boot stored earlier (through db.UNSYNCED_ENTRIES).
                conn.execute(_RETIME, {"kid": kid, "boots": [0, 1] if b == 1 else [b], "epoch": c.epoch_ms})

    def _store(self, conn: Connection, kid: str, plan: _Plan, fresh: list[Row], cur: Any) -> None:
        objs = plan.objs
        received = now_ms()
        for o in objs:
            if o["type"] == "key_change" and o["data"].get("vouched_by") == "previous_key":
                kiosk_keys.record_ledger_change(conn, kid, o["seq"] + 1, o["data"]["public_key"])
        # Policy first (docs/sync.md, "Policy on ingest"): a quarantined entry is stored, but none of its
        # claims acts on anything else: not its clock reading, not a void it carries.
        catalog_ids = {r[0] for r in conn.execute(_CATALOG).all()}
        applied, suspended, tree_have = cur["config_applied"], cur["suspended_ms"], cur["tree_size"]  # locked row
        ctx = _policy_context(conn, kid, received, catalog_ids, applied or 0)
        whys: list[str | None] = []
        for o in objs:
            whys.append(policy.violation(o, ctx))
            if o["type"] == "config_change" and o["data"].get("source") == "portal":
                # Entries after this one were made under the new version's limits.
                v = o["data"]["version"]
                ctx = policy.Context.build(kid, received, catalog_ids, _config_doc(conn, v), v).after_change(
                    ctx, o["boot"], o["mono_ms"])
        clocks = self._boot_clocks(conn, kid, [_clock_boot(o["boot"]) for o in objs])
        known = set(clocks)
        for o, why in zip(objs, whys, strict=True):
            c = clocks.setdefault(_clock_boot(o["boot"]), BootClock())
            if why is None:
                c.observe_entry(o["mono_ms"], o["wall_ms"], o["clock_synced"], received)
        rows = plan.rows  # built (and checked against the columns) by _verify; the times are set here
        voids = []
        config_applied = None
        quarantined: list[tuple[int, str]] = []
        for d, o, why, row in zip(fresh, objs, whys, rows, strict=True):
            data, kind = o["data"], o["type"]
            row["time_ms"], row["time_fixed"] = clocks[_clock_boot(o["boot"])].time_of(
                o["mono_ms"], o["wall_ms"], o["clock_synced"], received)
            row["received_ms"] = received
            if why is not None:
                row["quarantine"] = why[:200]
                quarantined.append((d.seq, why))
            elif suspended is not None:
                row["quarantine"] = policy.HELD  # its void, if any, applies at `kiosk resume`
            if kind == "void" and row["quarantine"] is None:
                voids.append(data["voids_seq"])
            elif kind == "config_change" and data.get("source") == "portal":
                config_applied = data["version"]
        conn.execute(entries.insert(), rows)
        kept = totals.counted(rows)  # the public totals move in the same transaction (server_sync/totals.py)
        # The Merkle tree's new perfect subtrees, in the same transaction (O(log n) receipt proofs): those the
        # verifier's range made as it replayed this batch, in one INSERT; tree_size moves with size below.
        tree.store_made(conn, kid, fresh[0].seq - 1, tree_have, plan.made)
        if quarantined:
            # In the batch's own transaction: the entry and its alarm are stored together or not at all.
            conn.execute(_INSERT_ALARM, [
                {"kiosk_id": kid, "kind": "quarantine", "seq": seq, "detail": f"seq={seq} quarantined: {why}",
                 "created_ms": received} for seq, why in quarantined])
        # The kept totals count the entries 1..totals_seq (locked row). Any other value than the seq before this
        # batch: a process of an older release stored entries since without counting them (a rolling upgrade),
        # so the kiosk is counted again from its entries, this batch's included, instead of adding to it.
        in_step = cur["totals_seq"] == fresh[0].seq - 1
        if voids:  # the voided donation may be in this batch or an earlier one
            if in_step:
                totals.take_voided(conn, kid, voids, kept)  # what they take back, read before they are voided
            conn.execute(_VOID, {"kid": kid, "seqs": voids})
        if in_step:
            totals.add(conn, kid, kept)
        else:
            totals.recount(conn, kid)
        self._save_boots(conn, kid, clocks, known)
        vals: dict[str, Any] = {
            "kid": kid, "size": plan.size, "tip": plan.tip, "cp_size": plan.ack[0], "cp_root": plan.ack[1],
            "cp_note": plan.ack[2], "pending_cp_size": plan.pending[0], "pending_cp_root": plan.pending[1],
            "last_seen_ms": received, "tree_size": plan.size, "totals_seq": plan.size,
        }
        if config_applied is not None:
            vals["config_applied"] = config_applied
        if quarantined:
            vals["alarm"] = True
        conn.execute(_SET_KIOSK, vals)

    def _remember(self, conn: Connection, kid: str, key: str, digest: str, ans: dict[str, Any]) -> None:
        # The kiosk row is locked, so another process with the same key cannot slip in between; a key
        # already stored (a batch of nothing new, answered again) keeps its first answer.
        conn.execute(_REMEMBER_SQLITE if is_sqlite(self.engine) else _REMEMBER_PG, {
            "kiosk_id": kid, "key": key, "request_digest": digest, "status": 200, "response": json.dumps(ans),
            "created_ms": now_ms()})

    def _alarm(self, kid: str, kind: str, seq: int | None, detail: str) -> None:
        """Alarms commit on their own: the refused batch rolls back, the alarm must stay. An equivocation the kiosk
        sends again (it retries every round) is not written twice."""
        with self._write() as conn:
            if kind == "equivocation" and conn.execute(select(alarms.c.id).where(
                    alarms.c.kiosk_id == kid, alarms.c.kind == kind, alarms.c.seq == seq,
                    alarms.c.detail == detail).limit(1)).first() is not None:
                return
            conn.execute(_INSERT_ALARM, {"kiosk_id": kid, "kind": kind, "seq": seq, "detail": detail,
                                         "created_ms": now_ms()})
            conn.execute(_SET_KIOSK, {"kid": kid, "alarm": True})
            if kind == "equivocation":  # a kiosk that signs two histories is not trusted until staff look
                suspend(conn, kid, f"equivocation at seq={seq}")


def suspend(conn: Connection, kid: str, reason: str) -> bool:
    """Hold ``kid``'s uploads from now on (stored, not counted). False if no such kiosk."""
    n = conn.execute(update(kiosks).where(kiosks.c.id == kid, kiosks.c.suspended_ms.is_(None))
                     .values(suspended_ms=now_ms(), suspended_reason=reason[:200])).rowcount
    return bool(n) or conn.execute(select(kiosks.c.id).where(kiosks.c.id == kid)).first() is not None


def resume(conn: Connection, kid: str) -> int | None:
    """Count ``kid``'s uploads again, releasing those held while suspended (policy quarantine stays).
    Returns how many entries were released, None if no such kiosk."""
    if lock_kiosk(conn, kid) is None:  # as ingest does, before touching its entries
        return None
    conn.execute(update(kiosks).where(kiosks.c.id == kid).values(suspended_ms=None, suspended_reason=None))
    voids = [r[0] for r in conn.execute(select(entries.c.ref_seq).where(
        entries.c.kiosk_id == kid, entries.c.quarantine == policy.HELD, entries.c.type == "void")).all()]
    n = conn.execute(update(entries).where(entries.c.kiosk_id == kid, entries.c.quarantine == policy.HELD)
                     .values(quarantine=None)).rowcount
    if voids:  # voids that arrived while suspended take effect now
        conn.execute(update(entries).where(entries.c.kiosk_id == kid, entries.c.seq.in_(voids)).values(voided=True))
    totals.recount(conn, kid)
    return int(n)


def _policy_context(conn: Connection, kid: str, received: int, catalog_ids: set[str], applied: int) -> policy.Context:
    """The policy context a batch starts in: the version the kiosk runs, and the one before it when the
    newest config_change entry is recent enough for policy.GRACE_MS to matter."""
    ctx = policy.Context.build(kid, received, catalog_ids, _config_doc(conn, applied), applied)
    rows = conn.execute(_CONFIG_CHANGES, {"kid": kid}).all()
    changes = [o for o in (parse_body(bytes(r[0])) for r in rows) if o["data"].get("source") == "portal"]
    if changes and changes[0]["data"].get("version") == applied:
        before = changes[1]["data"]["version"] if len(changes) > 1 else 0
        prev = policy.Context.build(kid, received, catalog_ids, _config_doc(conn, before), before)
        ctx.after_change(prev, changes[0]["boot"], changes[0]["mono_ms"])
    return ctx


def _config_doc(conn: Connection, version: int) -> dict[str, Any] | None:
    """The pushed config document of ``version`` (None for 0: the kiosk runs only its own file)."""
    if not version:
        return None
    doc = conn.execute(_CONFIG_DOC, {"version": version}).scalar()
    return json.loads(doc) if doc else None


_ROW = dict.fromkeys(("kiosk_id", "seq", "body", "entry_hash", "signature", "type", "boot", "mono_ms", "wall_ms",
                      "clock_synced", "time_ms", "time_fixed", "project", "amount_yen", "points", "donor", "ref_seq",
                      "voided", "receipt", "received_ms", "quarantine", "business_date"))
_ROW["voided"] = False
"""A ``portal_entries`` row's columns in order, for :func:`entry_row` to copy: a copy of a dict is one C call and
has room for every key, where a literal of 22 keys is built in two parts and merged (about 4,000 instructions an
entry more)."""


def entry_row(kid: str, seq: int, body: bytes, signature: bytes, h: bytes, obj: dict[str, Any], time_ms: int,
              time_fixed: bool, received_ms: int) -> dict[str, Any]:
    """The ``portal_entries`` row for one verified entry (bench/sync.py inserts the same rows bare)."""
    data, kind = obj["data"], obj["type"]
    get = data.get
    row = _ROW.copy()
    row["kiosk_id"], row["seq"], row["body"], row["entry_hash"], row["signature"] = kid, seq, body, h, signature
    row["type"], row["boot"], row["mono_ms"], row["wall_ms"] = kind, obj["boot"], obj["mono_ms"], obj["wall_ms"]
    row["clock_synced"], row["time_ms"], row["time_fixed"] = obj["clock_synced"], time_ms, time_fixed
    row["project"], row["amount_yen"], row["points"] = get("project"), get("amount_yen"), get("points")
    row["donor"], row["ref_seq"] = get("donor"), get("intent_seq", get("voids_seq"))
    row["received_ms"] = received_ms
    if kind == "donation":
        row["receipt"] = receipt_code_of(body, signature)
    elif kind == "close_out":
        row["business_date"] = closed_date(get("business_date"))
    return row


class _Signers:
    """The key each entry of a batch must be signed by (the verifier's, per seq; ``default`` for the rest),
    and the notes of the batch's checkpoint entries with the key each must be signed by."""

    def __init__(self, default: Any):
        self.default = default
        self.by_seq: dict[int, Any] = {}
        self.notes: dict[int, tuple[str, Any]] = {}
        self.opened: dict[tuple[str, bytes], cpmod.Checkpoint] = {}  # (note, raw key): signatures found good

    def check(self, seq: int, signature: bytes, h: bytes) -> None:
        (self.by_seq.get(seq) or self.default).verify(signature, h)

    def open_note(self, note: str, key: Any) -> cpmod.Checkpoint:
        """cpmod.open_note, once for each note and key: its verdict depends on nothing else."""
        raw = public_raw(key)
        cp = self.opened.get((note, raw))
        if cp is None:
            cp = self.opened[note, raw] = cpmod.open_note(note, key)
        return cp


def _bad_signature(pub: Any, ds: list[Row]) -> tuple[int, str] | None:
    """The seq of the first of ``ds`` whose own signature, or (for a checkpoint entry) whose note's
    signature, does not verify, and the reason a verifier checking both in order gives; else None."""
    for d in ds:
        try:
            if isinstance(pub, _Signers):
                pub.check(d.seq, d.signature, d.entry_hash)
            else:
                pub.verify(d.signature, d.entry_hash)
        except InvalidSignature:
            return d.seq, BAD_SIGNATURE
        note = pub.notes.get(d.seq) if isinstance(pub, _Signers) else None
        if note is not None:
            try:
                pub.open_note(*note)
            except cpmod.CheckpointError as exc:
                return d.seq, f"checkpoint note: {exc}"
    return None


def _signed_by_any(pubs: list[Any], d: Row) -> bool:
    for p in pubs:
        if not hasattr(p, "verify"):  # the function giving the chain's keys
            if _signed_by_any(list(p()), d):
                return True
            continue
        try:
            p.verify(d.signature, d.entry_hash)
            return True
        except InvalidSignature:
            continue
    return False


def _signed_by_kiosk(signers: _Signers, note: str, keys: list[Any]) -> bool:
    """True if one of ``keys`` (those the portal itself holds for the kiosk, not one a batch announces) signed
    ``note``."""
    for k in keys:
        try:
            signers.open_note(note, k)
            return True
        except cpmod.CheckpointError:
            continue
    return False


def _announced_keys(fresh: list[Row]) -> list[Any]:
    """Keys that key_change entries of this batch announce (a later checkpoint note is signed by one)."""
    out = []
    for d in fresh:
        if b'"type":"key_change"' in d.body:
            try:
                out.append(public_from_raw(bytes.fromhex(parse_body(d.body)["data"]["public_key"])))
            except (ValueError, KeyError, TypeError):
                continue  # the chain check refuses it
    return out


def _open_note(signers: _Signers, note: str, keys: list[Any]) -> cpmod.Checkpoint:
    """The note opened by the first of ``keys`` that signed it (remembered by ``signers``)."""
    err: cpmod.CheckpointError | None = None
    for k in keys:
        try:
            return signers.open_note(note, k)
        except cpmod.CheckpointError as exc:
            err = err or exc
    raise err or cpmod.CheckpointError("no key")


def _drop_revoked(fresh: list[Row], ks: kiosk_keys.KioskKeys) -> tuple[list[Row], tuple[int, int] | None]:
    """``fresh`` up to the first entry signed by a revoked key, and (its seq, the revocation's seq) or None."""
    for i, d in enumerate(fresh):
        try:
            signed_by = parse_body(d.body)["key_id"]
        except ValueError:
            return fresh, None  # the chain check refuses it
        start = ks.revoked_at(d.seq, signed_by)
        if start is not None:
            return fresh[:i], (d.seq, start)
    return fresh, None


def _first_bad_signature(pub: Any, fresh: list[Row], upto: int) -> None:
    """Refuse the batch (422) at the first entry up to ``upto`` whose own signature (or checkpoint note)
    does not verify."""
    bad = _bad_signature(pub, [d for d in fresh if d.seq <= upto])
    if bad is not None:
        raise PortalError(422, "invalid_entry", bad[1], seq=bad[0])


def _new_verifier(pub: Any) -> ChainVerifier:
    v = ChainVerifier(pub)
    v.pub = pub
    v.parse_body = parse_body  # the ledger's rules, msgspec's speed (server_sync/bodies.py)
    return v


def _replay(v: ChainVerifier, rows: Iterable[Any]) -> None:
    """Stored (seq, body, hash, signature) rows applied to ``v``'s state in order, their signatures not checked
    again (they were verified on arrival), then the key in force taken from it (after a key_change)."""
    for seq, body, h, sig in rows:
        v.state.apply(seq, parse_body(bytes(body)), bytes(h), bytes(sig))
    v.resume_at_state()


def _replay_onto(v: ChainVerifier, rows: Sequence[Any], k: Any) -> bool:
    """``rows`` (``_STORED`` from ``v``'s size on) replayed onto ``v``, for a cached verifier behind or one started
    from a saved state. Sound because stored entries are never rewritten and each entry's hash covers every one
    before it: if the first row is the entry ``v`` stands at (its seq and tip), the stored chain runs through
    ``v``'s state. False if it is not, if the replay fails, or if it does not end at kiosk row ``k``'s size and tip
    (the caller then rebuilds from the first entry, which meets the same fault and reports it)."""
    if not rows or rows[0][0] != v.state.size or bytes(rows[0][2]) != v.state.tip:
        return False
    try:
        _replay(v, rows[1:])
    except ValueError:  # HistoryError, EncodingError
        return False
    return (v.state.size, v.state.tip) == (k["size"], k["tip"])


def _bounded_sql(epoch_ms: Any) -> Any:
    """clockfix.bounded(epoch + mono, wall, False, received) as SQL, for re-timing a boot's stored
    unsynced rows: never before the entry's own wall_ms, never after the portal received it."""
    t = entries.c.mono_ms + epoch_ms
    low = case((t < entries.c.wall_ms, entries.c.wall_ms), else_=t)
    return case((low > entries.c.received_ms, entries.c.received_ms), else_=low)


# The statements every batch runs, built once with bound parameters: building and cache-keying a
# statement costs several times what executing one does here (about 115 µs against 26 µs on SQLite).
def _config_version_sql() -> Any:
    """configstore.current_version(conn, :kid) as a scalar subquery: the newest version for all kiosks, this
    kiosk (``:kiosk_target`` = "kiosk:<id>"), or its group (a NULL or empty group names none)."""
    grp = select(kiosk_info.c.kiosk_group).where(kiosk_info.c.kiosk_id == bindparam("kid")).scalar_subquery()
    target = configs.c.target
    mine = or_(target == "all", target == bindparam("kiosk_target"),
               and_(grp != "", target == literal("group:") + grp))
    return select(func.coalesce(func.max(configs.c.version), 0)).where(mine).scalar_subquery()


_ANSWER = select(kiosks.c.size, kiosks.c.cp_size, kiosks.c.reported_size, _config_version_sql(),
                 select(func.max(peppers.c.epoch)).scalar_subquery()).where(kiosks.c.id == bindparam("kid"))
"""The answer's figures; the last is citypepper.current_epoch (NULL before the city has a pepper)."""
_STORED_ANSWER = select(idempotency.c.request_digest, idempotency.c.response).where(
    idempotency.c.kiosk_id == bindparam("kid"), idempotency.c.key == bindparam("key"))
_CATALOG = select(projects.c.id)
_BOOTS = select(boots.c.boot, boots.c.epoch_ms, boots.c.source, boots.c.max_mono_ms, boots.c.floor_ms).where(
    boots.c.kiosk_id == bindparam("kid"), boots.c.boot.in_(bindparam("boots", expanding=True)))
_SET_KIOSK = update(kiosks).where(kiosks.c.id == bindparam("kid"))
"""UPDATE of the kiosk row: the SET clause is the parameters' column names (``kid`` names the row)."""
_SET_BOOT = update(boots).where(boots.c.kiosk_id == bindparam("kid"), boots.c.boot == bindparam("b"))
_VOID = update(entries).where(entries.c.kiosk_id == bindparam("kid"),
                              entries.c.seq.in_(bindparam("seqs", expanding=True))).values(voided=True)
_REMEMBER_SQLITE = sqlite.insert(idempotency).on_conflict_do_nothing(index_elements=["kiosk_id", "key"])
_REMEMBER_PG = postgresql.insert(idempotency).on_conflict_do_nothing(index_elements=["kiosk_id", "key"])
_RETIME = update(entries).where(
    entries.c.kiosk_id == bindparam("kid"), entries.c.boot.in_(bindparam("boots", expanding=True)),
    UNSYNCED,  # the term of db.UNSYNCED_ENTRIES: the partial index serves it
).values(time_ms=_bounded_sql(bindparam("epoch", type_=BigInteger)), time_fixed=True)
_STORED = (select(entries.c.seq, entries.c.body, entries.c.entry_hash, entries.c.signature)
           .where(entries.c.kiosk_id == bindparam("kid"), entries.c.seq >= bindparam("lo"),
                  entries.c.seq <= bindparam("hi"))
           .order_by(entries.c.seq))
"""A kiosk's stored entries lo..hi, in order: all of them for a rebuild of its verifier; for a catch-up, the
cached verifier's last one, then the ones another process stored."""
_INSERT_ALARM = alarms.insert()
_INSERT_BOOT = boots.insert()
_CONFIG_DOC = select(configs.c.document).where(configs.c.version == bindparam("version"))
_CONFIG_CHANGES = (select(entries.c.body).where(entries.c.kiosk_id == bindparam("kid"), IS_CONFIG_CHANGE,
                                                entries.c.quarantine.is_(None))  # through db.CONFIG_CHANGES
                   .order_by(entries.c.seq.desc()).limit(20))


def _clock_boot(boot: int) -> int:
    """The genesis entry (boot 0) is written by the same ``Ledger.open`` as boot 1: same OS boot, same epoch."""
    return max(boot, 1)


# --- parsing ---------------------------------------------------------------------------------------
def _invalid(exc: ValidationError) -> PortalError:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    if err["type"] == "json_invalid":
        return PortalError(400, "malformed_json", f"body is not valid JSON: {err['msg']}")
    if err["type"] == "too_long" and tuple(err["loc"][:1]) == ("entries",):
        return PortalError(413, "batch_too_large", f"a batch carries at most {P.MAX_BATCH_ENTRIES} entries")
    return PortalError(422, "invalid_request", f"{where}: {err['msg']}")


def _parse_batch(raw: bytes, kid: str) -> tuple[P.BatchRequest, list[Row]]:
    """The batch's header (its ``entries`` are in the list) and its entries, decoded as the verifier's own
    :class:`Row` (each entry is wrapped once, for the checks here and for the verifier); or the PortalError why not."""
    fast = bodies.batch(raw, kid)  # msgspec: well-formed documents only, in one C pass (server_sync/bodies.py)
    if fast is not None:
        return fast[0], [Row(seq, body, entry_hash(body), sig) for seq, body, sig in fast[1]]
    try:
        req = P.BatchRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise _invalid(exc) from None
    if req.kiosk_id != kid:
        raise PortalError(403, "kiosk_mismatch", f"batch is for {req.kiosk_id!r}, signed by {kid!r}")
    if req.last_seq != req.first_seq + len(req.entries) - 1:
        raise PortalError(422, "bad_range", "last_seq - first_seq + 1 must equal the number of entries")
    out = []
    for i, e in enumerate(req.entries):
        if e.seq != req.first_seq + i:
            raise PortalError(422, "reordered", f"entries[{i}] has seq={e.seq}, expected {req.first_seq + i} "
                              "(entries must be consecutive and in order)", seq=e.seq)
        try:
            body, sig = P.unb64(e.body), P.unb64(e.signature)
        except ValueError:
            raise PortalError(422, "invalid_request", f"entries[{i}]: body and signature must be base64") from None
        if len(body) > P.MAX_ENTRY_BYTES:
            raise PortalError(413, "entry_too_large", f"entries[{i}] is over {P.MAX_ENTRY_BYTES} bytes")
        if len(sig) != 64:
            raise PortalError(422, "invalid_request", f"entries[{i}]: an Ed25519 signature is 64 bytes")
        out.append(Row(e.seq, body, entry_hash(body), sig))
    return req, out


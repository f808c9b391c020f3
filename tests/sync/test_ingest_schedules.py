"""Random schedules of kiosks and portal workers, against what the kiosks' own ledgers say.

The portal's ingest keeps several things between uploads for speed (docs/sync.md, "Resuming verification";
docs/performance.md): each worker's cached verifier per kiosk (evicted past ``cached_entries``), the verifier
states it saves every ``state_every`` entries, the Merkle tree's frontier, and the kiosk row's marks. The
scenario tests name one path each. Here hypothesis draws whole schedules: three kiosks giving, voiding,
re-keying (or losing the key in force, replaced by an administrator's announcement) and checkpointing;
their syncs landing on either of two workers on one database (as behind a proxy), with the uploader's batch
size drawn each time; a worker restarted (every cache gone) or its cache squeezed; already-accepted
entries sent again under a new Idempotency-Key (the overlap check); staff suspending and resuming a kiosk;
new config versions for all kiosks or one, which the kiosks adopt as config_change entries; and syncs
through a link that breaks half the requests (tests/sync/fault_proxy.py), which may give up part way.

Every sync over a sound link must succeed, every resend must be answered as duplicates, and at the end
(after each kiosk's last sync) the portal must hold exactly each kiosk's ledger: the same entries, the same
tip, public totals that are the sum of the ledgers', kept totals that are a count of the entries (the
``portal`` invariant), inclusion proofs from the stored tree nodes that verify against the ledger's own
Merkle root, and in every worker a cached verifier in the very state a replay of the stored entries gives.
Real HTTP on loopback, real uploaders, real ledger files; SQLite and (with $KIOSK_TEST_PG_URL) PostgreSQL.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from fault_proxy import FaultProxy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sync_helpers import PROJECTS, batch_body, chain_figures, enrolled, make_rig, signed_post

from kiosk.ledger import keys, merkle
from kiosk.ops.local_files import open_ledger
from kiosk.ops.rekey import older_previous_paths, previous_path
from kiosk.ops.rekey import rekey as rekey_files
from server_sync import kiosk_keys, totals, tree
from server_sync.configstore import publish
from server_sync.db import entries, kiosks, writing
from server_sync.embedded import PortalHandle, start_portal
from server_sync.ingest import _STORED, Ingestor, _new_verifier, _replay, resume, suspend
from tests.portal_db import fresh_db

N_KIOSKS = 3
N_WORKERS = 2
STATE_EVERY = 7  # saves often, so a restarted or squeezed worker starts from a saved state, not only from seq 1

kiosk_i = st.integers(0, N_KIOSKS - 1)
worker_i = st.integers(0, N_WORKERS - 1)
OPS = st.one_of(
    st.tuples(st.just("give"), kiosk_i, st.integers(1, 3), st.booleans()),
    st.tuples(st.just("void"), kiosk_i, st.integers(0, 50)),
    st.tuples(st.just("sync"), kiosk_i, worker_i, st.integers(1, 12)),
    st.tuples(st.just("sync"), kiosk_i, worker_i, st.integers(1, 12)),  # twice as likely as the others
    st.tuples(st.just("resend"), kiosk_i, worker_i, st.integers(0, 50), st.integers(1, 6)),
    st.tuples(st.just("restart"), worker_i),
    st.tuples(st.just("squeeze"), worker_i, st.integers(0, 40)),
    st.tuples(st.just("rekey"), kiosk_i),
    st.tuples(st.just("lose"), kiosk_i),
    st.tuples(st.just("hold"), kiosk_i, st.booleans()),
    st.tuples(st.just("publish"), st.sampled_from(["all", "kiosk"]), kiosk_i),
    st.tuples(st.just("flaky"), kiosk_i, worker_i, st.integers(1, 12), st.integers(0, 2**16)),
)


class _Schedule:
    """One drawn schedule's world: the kiosks, the workers on one fresh database, what each kiosk gave."""

    def __init__(self, db_url: str, root: Path):
        self.db_url = db_url
        self.workers = [self._start() for _ in range(N_WORKERS)]
        publish(self.workers[0].app.state.engine, {"projects": PROJECTS})
        self.rigs = [make_rig(root, f"sched-kiosk-{i}") for i in range(N_KIOSKS)]
        self.donations: list[list[int]] = [[] for _ in self.rigs]  # donation seqs not voided yet
        for r in self.rigs:
            enrolled(r, self.workers[0]).close()

    def _start(self) -> PortalHandle:
        handle = start_portal(self.db_url)
        handle.app.state.ingestor.state_every = STATE_EVERY
        return handle

    def close(self) -> None:
        for r in self.rigs:
            r.ledger.close(checkpoint=False)
        for w in self.workers:
            w.stop()

    # --- the operations ---------------------------------------------------------------------------
    def run(self, op: tuple[Any, ...]) -> None:
        getattr(self, op[0])(*op[1:])

    def give(self, i: int, n: int, checkpoint: bool) -> None:
        self.donations[i] += [e.seq for e in self.rigs[i].donate(n)]
        if checkpoint:  # as DonationService does after each gift; otherwise every 10 entries
            self.rigs[i].ledger.checkpoint()

    def void(self, i: int, pick: int) -> None:
        if self.donations[i]:
            seq = self.donations[i].pop(pick % len(self.donations[i]))
            self.rigs[i].ledger.void(seq, "refunded at the desk")

    def sync(self, i: int, w: int, batch: int) -> None:
        up = self.rigs[i].uploader(batch_entries=batch)
        up.state.portal_url = self.workers[w].url
        try:
            state = up.sync_once()
        finally:
            up.close()
        assert state.ok, f"sync of kiosk {i} to worker {w} (batch {batch}) failed: {state}"

    def flaky(self, i: int, w: int, batch: int, seed: int) -> None:
        """A sync through a link that breaks half the requests (tests/sync/fault_proxy.py: dropped before or
        after the portal commits, sent twice at once, answered 500, answer cut, delayed). It may give up;
        whatever it left, the end check finds every entry once."""
        with FaultProxy(self.workers[w].url, rate=0.5, seed=seed, delay_s=0.01) as proxy:
            up = self.rigs[i].uploader(batch_entries=batch)
            up.state.portal_url = proxy.url
            try:
                up.sync_once(max_attempts=3)
            finally:
                up.close()

    def resend(self, i: int, w: int, start: int, n: int) -> None:
        """Entries the portal already holds, sent again under a new key: all duplicates, nothing moves."""
        rig, size = self.rigs[i], self._kiosk_row(i)["size"]
        if size == 0:
            return
        first = 1 + start % size
        last = min(size, first + n - 1)
        path = f"/api/v1/kiosks/{rig.kiosk_id}/batches"
        r = signed_post(self.workers[w].url, rig, path, batch_body(rig, first, last), key=uuid.uuid4().hex,
                        sk=self._request_key(i))
        assert r.status_code == 200, r.text
        assert r.json()["duplicates"] == last - first + 1 and r.json()["accepted"] == 0, r.json()
        assert self._kiosk_row(i)["size"] == size

    def restart(self, w: int) -> None:
        self.workers[w].stop()
        self.workers[w] = self._start()

    def squeeze(self, w: int, entries_kept: int) -> None:
        self.workers[w].app.state.ingestor.cached_entries = entries_kept  # 0: no limit

    def rekey(self, i: int) -> None:
        self.rigs[i].rekey()

    def lose(self, i: int) -> None:
        """The key in force is lost: `kiosk rekey --old-key-lost`, then the administrator's announcement of the
        new key from the seq it printed (what `kiosk-portal kiosk rekey` calls)."""
        rig = self.rigs[i]
        rig.cfg.private_key_path.unlink()
        rig.ledger.close(checkpoint=False)
        done = rekey_files(rig.cfg, old_key_lost=True)
        assert done.seq is not None
        kiosk_keys.announce(self.workers[0].app.state.engine, rig.kiosk_id, done.public_key, done.seq, "admin")
        rig.ledger = open_ledger(rig.cfg, clock=rig.clock)

    def _request_key(self, i: int) -> Any:
        """The key the portal takes kiosk ``i``'s requests signed by: after a re-key, the previous one until the
        portal holds the key_change entry (as the uploader does: docs/sync.md, "Re-keying")."""
        cfg = self.rigs[i].cfg
        files = [cfg.private_key_path, previous_path(cfg), *older_previous_paths(previous_path(cfg))]
        enrolled_key = bytes(self._kiosk_row(i)["public_key"])
        return next(sk for sk in (keys.load_private(f) for f in files if f.exists())
                    if keys.public_raw(sk.public_key()) == enrolled_key)

    def hold(self, i: int, suspend_it: bool) -> None:
        """Staff suspend the kiosk (its uploads stored, not counted) or resume it (what it sent since counts,
        its voids apply): what the kiosks page and `kiosk-portal kiosk suspend|resume` call."""
        with writing(self.workers[0].app.state.engine) as conn:
            if suspend_it:
                assert suspend(conn, self.rigs[i].kiosk_id, "by the schedule")
            else:
                assert resume(conn, self.rigs[i].kiosk_id) is not None

    def publish(self, target: str, i: int) -> None:
        """A new config version (the same catalog) for all kiosks or one: each adopts it at its next sync and
        writes a config_change entry, which the portal's policy context follows (docs/sync.md)."""
        publish(self.workers[0].app.state.engine, {"projects": PROJECTS},
                target="all" if target == "all" else f"kiosk:{self.rigs[i].kiosk_id}")

    # --- the checks -------------------------------------------------------------------------------
    def _kiosk_row(self, i: int) -> Any:
        with self.workers[0].app.state.engine.connect() as conn:
            return conn.execute(kiosks.select().where(kiosks.c.id == self.rigs[i].kiosk_id)).mappings().one()

    def check_holds_the_ledgers(self) -> None:
        engine = self.workers[0].app.state.engine
        count = total = 0
        for i, rig in enumerate(self.rigs):
            led = rig.ledger
            row = self._kiosk_row(i)
            assert (row["size"], bytes(row["tip"])) == (led.size, led.tip), f"kiosk {i}: marks differ"
            ours = [(e.seq, e.entry_hash) for e in led.iter_entries()]
            with engine.connect() as conn:
                held = [(s, bytes(h)) for s, h in conn.execute(
                    select(entries.c.seq, entries.c.entry_hash).where(entries.c.kiosk_id == rig.kiosk_id)
                    .order_by(entries.c.seq)).all()]
                assert held == ours, f"kiosk {i}: the stored entries are not the ledger's"
                leaves = [h for _, h in ours]
                want_root = merkle.root(leaves)
                picks = sorted({0, len(leaves) // 2, len(leaves) - 1})
                for index, proof in zip(picks, tree.inclusion_proofs(conn, rig.kiosk_id, picks, len(leaves)),
                                        strict=True):
                    assert merkle.verify_inclusion(leaves[index], index, len(leaves), proof, want_root), \
                        f"kiosk {i}: the stored tree's proof of leaf {index} does not reach the ledger's root"
            t = rig.expected_totals()
            count, total = count + t["count"], total + t["total_yen"]
        public = self.workers[0].totals()
        assert (public["count"], public["total_yen"]) == (count, total)
        assert totals.check(engine) == []
        # A cached verifier stands where a replay of the stored entries from the first one to its size would. (It
        # may stand behind the database, when the other worker took the kiosk's last syncs: the next upload to
        # this worker replays what it has not seen, tests/sync/test_ingest_workers.py.)
        for w in self.workers:
            ing: Ingestor = w.app.state.ingestor
            for kid, cached in list(ing._verifiers.items()):
                replayed = _new_verifier(cached.expected_pub)
                with engine.connect() as conn:
                    _replay(replayed, conn.execute(_STORED, {"kid": kid, "lo": 1, "hi": cached.state.size}))
                assert chain_figures(cached.state) == chain_figures(replayed.state), f"{kid}: cached verifier"
                assert [k.public_bytes_raw() for k in cached.keys] == [k.public_bytes_raw() for k in replayed.keys]


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(ops=st.lists(OPS, min_size=4, max_size=24))
def test_any_schedule_of_syncs_leaves_the_portal_holding_exactly_the_ledgers(db_url: str, ops: list) -> None:
    with tempfile.TemporaryDirectory(prefix="kiosk-sched-") as tmp:
        root = Path(tmp)
        world = _Schedule(fresh_db(db_url, root), root)
        try:
            for op in ops:
                world.run(op)
            for i in range(N_KIOSKS):  # each kiosk resumed and its last sync (to the first worker): the portal
                world.hold(i, False)    # counts all it holds
                world.sync(i, 0, 500)
            world.check_holds_the_ledgers()
        finally:
            world.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_schedule_check_sees_a_portal_that_lost_an_entry(db_url: str, tmp_path: Path) -> None:
    """The end check can fail: a stored entry deleted behind the portal's back is found."""
    world = _Schedule(fresh_db(db_url, tmp_path), tmp_path)
    try:
        world.give(0, 2, True)
        world.sync(0, 0, 500)
        with world.workers[0].app.state.engine.begin() as conn:
            conn.execute(entries.delete().where(entries.c.kiosk_id == world.rigs[0].kiosk_id, entries.c.seq == 3))
        with pytest.raises(AssertionError, match="stored entries"):
            world.check_holds_the_ledgers()
    finally:
        world.close()

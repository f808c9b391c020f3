"""Two portal workers taking turns with a kiosk's syncs: prints one JSON line.

With `kiosk-portal serve --workers N` (or N hosts behind a proxy that does not route by kiosk), each sync
lands on whichever worker accepts the connection, so a worker often finds that another one stored the
kiosk's last batches: its cached verifier is behind (docs/sync.md, "Resuming verification").

Each of --kiosks kiosks has a ledger of --history entries as `kiosk run` writes them (intent, donation,
checkpoint entry a gift), all stored by the portal first (not timed), then --gifts gifts, each uploaded on
its own as a lobby kiosk syncs. The gift syncs are timed twice, on a fresh database each time:

- one_worker_ms: every sync to the same worker (one Ingestor): its cache is always current. The baseline.
- two_workers_ms: the syncs alternately to worker A and worker B (two Ingestors on one database, what two
  processes hold), after one sync to B that is not counted (a worker's first sync of a kiosk after it
  started replays the kiosk's whole history: cold_worker_ms).
- ratio = one_worker_ms / two_workers_ms (1.0: taking turns costs nothing).
- start_from_state_ms: a worker's first verifier of a kiosk built from the kiosk's saved state and the entries
  after it (server_sync/verifier_states.py; what cold_worker_ms holds since it was built);
  start_from_first_ms: the same with the saved state deleted, every entry replayed (cold_worker_ms before);
  save_state_ms: one save of the kiosk's state (encoded, written), which ingest runs every 5,000 entries, or
  a quarter of the saved size if more.

Each figure is the portal's CPU per sync (the request's authentication and ``Ingestor.ingest``, in this
process, without HTTP), the median over the syncs; ``*_wall_ms`` the same syncs' wall-clock time, which
also holds the database server's work (PostgreSQL's CPU is not this process's). SQLite, and PostgreSQL
(``_pg``) when $KIOSK_TEST_PG_URL is set. No aim of issue #16's names this; it measures the cost of a cache miss.

Usage: python bench/workers.py [--kiosks 2] [--history 20000] [--gifts 12]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sync as bench_sync  # noqa: E402  bench/sync.py: the same simulated kiosks and batches

from kiosk.ledger import Pepper  # noqa: E402
from server_sync.auth import authenticate  # noqa: E402
from server_sync.db import drop_schema  # noqa: E402
from server_sync.ingest import Ingestor  # noqa: E402
from server_sync.wire import protocol as P  # noqa: E402


def _upload(eng, ingestor: Ingestor, k: bench_sync.SimKiosk, j: int) -> tuple[float, float]:  # noqa: ANN001
    """Batch ``j`` of kiosk ``k`` to ``ingestor``, as the app does it: CPU and wall-clock seconds."""
    body, key = k.batches[j]
    path = f"/api/v1/kiosks/{k.id}/batches"
    headers = P.sign_request(k.sk, k.id, "POST", path, body, int(time.time()), key)
    t0, c0 = time.perf_counter(), time.process_time()
    kiosk = authenticate(eng, "POST", path, headers, body, int(time.time() * 1000), k.id)
    ingestor.ingest(kiosk, key, headers[P.H_DIGEST], body)
    return time.process_time() - c0, time.perf_counter() - t0


def _cpu_ms(fn) -> float:  # noqa: ANN001
    c0 = time.process_time()
    fn()
    return (time.process_time() - c0) * 1e3


def starts(eng, kiosks: list[bench_sync.SimKiosk]) -> dict[str, float]:  # noqa: ANN001
    """A worker's first verifier of each kiosk, from its saved state and (the state deleted) from the first
    entry, and one save of the state; medians of the kiosks, CPU ms."""
    from server_sync import verifier_states
    from server_sync.db import kiosks as kiosk_rows
    from server_sync.db import verifier_states as saved_states
    from server_sync.db import writing

    got: dict[str, list[float]] = {"from_state": [], "from_first": [], "save": []}
    for k in kiosks:
        with eng.connect() as conn:
            row = conn.execute(kiosk_rows.select().where(kiosk_rows.c.id == k.id)).mappings().one()
        pub = k.sk.public_key()
        v = Ingestor(eng)._verifier(k.id, pub, row)
        got["from_state"].append(_cpu_ms(lambda: Ingestor(eng)._verifier(k.id, pub, row)))  # noqa: B023

        def save() -> None:
            with writing(eng) as conn:
                verifier_states.save(conn, k.id, v.state)  # noqa: B023
        got["save"].append(_cpu_ms(save))
        with writing(eng) as conn:
            conn.execute(saved_states.delete().where(saved_states.c.kiosk_id == k.id))
        got["from_first"].append(_cpu_ms(lambda: Ingestor(eng)._verifier(k.id, pub, row)))  # noqa: B023
    return {name: statistics.median(ms) for name, ms in got.items()}


def arm(db_url: str, kiosks: list[bench_sync.SimKiosk], history_batches: int, turns: bool) -> dict[str, float]:
    eng = bench_sync.enrolled_db(db_url, kiosks)
    a = Ingestor(eng)
    b = Ingestor(eng) if turns else a
    cold, timed = [], []
    try:
        for k in kiosks:
            for j in range(history_batches):
                _upload(eng, a, k, j)
            cold.append(_upload(eng, b, k, history_batches))  # B's first sync of this kiosk
            for n, j in enumerate(range(history_batches + 1, len(k.batches))):
                timed.append(_upload(eng, b if n % 2 else a, k, j))
        more = starts(eng, kiosks) if turns else {}
    finally:
        drop_schema(eng)
        eng.dispose()
    return {"cold": statistics.median(c for c, _ in cold) * 1e3, "sync": statistics.median(c for c, _ in timed) * 1e3,
            "wall": statistics.median(w for _, w in timed) * 1e3, **more}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiosks", type=int, default=2)
    ap.add_argument("--history", type=int, default=20_000, help="entries each kiosk's portal holds first")
    ap.add_argument("--gifts", type=int, default=12, help="gift syncs per kiosk after the history")
    args = ap.parse_args()
    work = bench_sync.scratch_dir()
    try:
        pepper = Pepper.create(work / "pepper.json")
        # One gift (three entries) a sync after the history, as bench/sync.py's gift syncs.
        kiosks = [bench_sync.SimKiosk(i, args.history + 3 * (args.gifts + 1), 3, work, pepper, "long-kiosk",
                                      history=args.history) for i in range(args.kiosks)]
        history_batches = min(sum(1 for a, _ in k.cuts if a < args.history) for k in kiosks)
        out: dict = {"bench": "workers", "kiosks": args.kiosks, "history": args.history, "gifts": args.gifts}
        backends = [("", f"sqlite:///{work / 'portal.db'}")]
        if os.environ.get("KIOSK_TEST_PG_URL"):
            backends.append(("_pg", os.environ["KIOSK_TEST_PG_URL"]))
        for suffix, url in backends:
            one = arm(url, kiosks, history_batches, turns=False)
            two = arm(url, kiosks, history_batches, turns=True)
            out[f"one_worker_ms{suffix}"] = round(one["sync"], 3)
            out[f"two_workers_ms{suffix}"] = round(two["sync"], 3)
            # From the printed figures, so that a reader (and the smoke test) gets the same ratio from the line.
            out[f"ratio{suffix}"] = round(out[f"one_worker_ms{suffix}"] / out[f"two_workers_ms{suffix}"], 3)
            out[f"cold_worker_ms{suffix}"] = round(two["cold"], 1)
            out[f"start_from_state_ms{suffix}"] = round(two["from_state"], 2)
            out[f"start_from_first_ms{suffix}"] = round(two["from_first"], 1)
            out[f"save_state_ms{suffix}"] = round(two["save"], 2)
            out[f"one_worker_wall_ms{suffix}"] = round(one["wall"], 3)
            out[f"two_workers_wall_ms{suffix}"] = round(two["wall"], 3)
        print(json.dumps(out), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Ingest cost in instructions: prints one JSON line.

bench/sync.py's wall-clock and CPU figures follow the load of a shared machine (on the 2-core development
machine, ±20 % between runs minutes apart). This bench counts instructions instead, with valgrind's
callgrind, which do not depend on the load: the same tree gives the same count to a fraction of a
percent, so a change of a few percent in the portal's ingest can be seen in one run of each tree.

- ingest_ir_per_entry: instructions of ``Ingestor.ingest`` (with the request's authentication,
  ``server_sync.auth.authenticate``; without HTTP) per entry, on bench/sync.py's simulated kiosks (ledgers
  as ``kiosk run`` writes them) uploading in the uploader's batches, one batch at a time.
- bare_ir_per_entry: the same rows inserted into the same schema with the same batching by the same call
  the portal makes (bench/sync.py's bare insert).
- ir_ratio = bare / ingest (bench/sync.py's ``cpu_ratio``, in instructions).
- Both counts run under the garbage collector settings of ``kiosk-portal serve`` (bench/sync.py's
  ``collector_as_served``), as bench/sync.py's bare insert does: with the default ones the collector also
  scanned this process's simulated ledgers again and again, which a portal does not hold (on the default
  6 kiosks: 523,153 instructions an entry for ingest, 181,993 bare, against 502,189 and 177,618).
- ingest_ir_per_batch, bare_ir_per_batch: the same per upload. With ``--batch 3`` every upload is one gift
  (intent, donation, checkpoint entry), as a lobby kiosk syncs: bench/sync.py's gift syncs, in instructions.

Instructions are not time: callgrind runs SHA-256 in plain code (no SHA extensions) and counts a
cache miss as nothing, so hashing weighs more here than on the CPU and memory traffic less. Use it to
compare trees, bench/sync.py for rates. The first batch is left out of both counts (caches, first calls).

Needs valgrind (Debian: ``apt-get install valgrind``); without it the line says ``skipped``.
Usage: python bench/ingest_ir.py [--kiosks 6] [--entries 500] [--batch 500] [--db URL]
       (default: a SQLite file in a scratch dir; the uploader's batch size)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _control(*args: str) -> None:
    """Tell the callgrind running this process to switch counting on or off, or to dump its counts."""
    subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True, stdout=subprocess.DEVNULL)


def measure(db_url: str, n_kiosks: int, work: Path, n_entries: int, batch: int) -> dict:
    """Runs inside callgrind (started with counting off): dump 1 is the ingest, dump 2 the bare insert."""
    import sync as bench_sync  # bench/sync.py: the same simulated kiosks and batches

    from kiosk.ledger import Pepper
    from server_sync.auth import authenticate
    from server_sync.db import drop_schema, entries
    from server_sync.ingest import Ingestor
    from server_sync.wire import protocol as P

    pepper = Pepper.create(work / "pepper.json")
    kiosks = [bench_sync.SimKiosk(i, n_entries, batch, work, pepper) for i in range(n_kiosks)]
    eng = bench_sync.enrolled_db(db_url, kiosks)
    ingestor = Ingestor(eng)
    requests = []
    for j in range(max(len(k.batches) for k in kiosks)):  # round robin, as kiosks uploading at once would
        for k in kiosks:
            if j < len(k.batches):
                body, key = k.batches[j]
                path = f"/api/v1/kiosks/{k.id}/batches"
                requests.append((k.id, path, body, key,
                                 P.sign_request(k.sk, k.id, "POST", path, body, int(time.time()), key)))

    def upload(kid: str, path: str, body: bytes, key: str, headers: dict) -> None:
        kiosk = authenticate(eng, "POST", path, headers, body, int(time.time() * 1000), kid)
        ingestor.ingest(kiosk, key, headers[P.H_DIGEST], body)

    with bench_sync.collector_as_served():  # as `kiosk-portal serve` collects (and the bare insert below)
        upload(*requests[0])  # warm-up, not counted
        _control("-i", "on")
        for r in requests[1:]:
            upload(*r)
        _control("-i", "off")
    _control("--dump=ingest")
    _control("-z")
    counted = sum(r[2].count(b'"seq":') for r in requests[1:])
    eng.dispose()

    eng, batches = bench_sync.bare_batches(db_url, kiosks)
    with bench_sync.collector_as_served():
        with eng.begin() as conn:  # warm-up, not counted
            conn.execute(entries.insert(), batches[0])
        _control("-i", "on")
        for rows in batches[1:]:
            with eng.begin() as conn:
                conn.execute(entries.insert(), rows)
        _control("-i", "off")
    _control("--dump=bare")
    drop_schema(eng)
    eng.dispose()
    return {"entries": counted, "bare_entries": sum(len(b) for b in batches[1:]), "batches": len(requests) - 1,
            "bare_batches": len(batches) - 1}


def _total(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith("totals:") or line.startswith("summary:"):
            value = int(line.split()[1])
            if value:
                return value
    raise SystemExit(f"no instruction total in {dump}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiosks", type=int, default=6)
    ap.add_argument("--entries", type=int, default=500, help="entries in each kiosk's ledger")
    ap.add_argument("--batch", type=int, default=None, help="the uploader's batch size (default: its own)")
    ap.add_argument("--db", default=None, help="portal database URL (default: a SQLite file in a scratch dir)")
    ap.add_argument("--inside", default=None, help=argparse.SUPPRESS)  # set when re-run under callgrind
    args = ap.parse_args()
    if args.inside:
        work = Path(args.inside)
        (work / "counts.json").write_text(json.dumps(measure(args.db, args.kiosks, work, args.entries, args.batch)))
        return
    from server_sync.wire import protocol as P

    args.batch = args.batch or P.DEFAULT_BATCH_ENTRIES
    out: dict = {"bench": "ingest_ir", "kiosks": args.kiosks, "entries_per_kiosk": args.entries, "batch": args.batch}
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        out["skipped"] = "valgrind is not installed (Debian: apt-get install valgrind)"
        print(json.dumps(out), flush=True)
        return
    work = Path(tempfile.mkdtemp(prefix="kiosk-bench-ir-"))
    try:
        db = args.db or f"sqlite:///{work / 'portal.db'}"
        out["backend"] = db.split(":", 1)[0].split("+", 1)[0]
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={work}/cg.%p",
               sys.executable, __file__, "--inside", str(work), "--kiosks", str(args.kiosks), "--db", db,
               "--entries", str(args.entries), "--batch", str(args.batch)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        if res.returncode != 0:
            raise SystemExit(f"callgrind run failed: {res.stderr[-2000:]}")
        counts = json.loads((work / "counts.json").read_text())
        dumps = sorted(work.glob("cg.*.[0-9]"), key=lambda p: int(p.suffix[1:]))
        ingest_ir, bare_ir = _total(dumps[0]), _total(dumps[1])
        out["entries"] = counts["entries"]
        out["ingest_ir_per_entry"] = round(ingest_ir / counts["entries"])
        out["bare_ir_per_entry"] = round(bare_ir / counts["bare_entries"])
        out["ir_ratio"] = round(out["bare_ir_per_entry"] / out["ingest_ir_per_entry"], 3)
        out["ingest_ir_per_batch"] = round(ingest_ir / counts["batches"])
        out["bare_ir_per_batch"] = round(bare_ir / counts["bare_batches"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

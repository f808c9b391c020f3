"""The staff reconciliation month after a year of history: prints one JSON line.

Center staff open ``/staff/reconciliation`` (one month of kiosk-days against the kiosks' Z reports and the
provider's file) and download its CSV; both call ``reconcile.kiosk_days`` for the month. A portal in use
holds every earlier month too, and what one month's page costs must not grow with them.

Each of --kiosks kiosks writes --days business days as `kiosk run` and its daily close-out do: --gifts
gifts a day (intent, donation, checkpoint entry each), then the day's signed ``close_out`` entry with the
day's settled report (``kiosk.ledger.report.settled_report``, as ``z_report`` computes it, over the day's
entries only: ``z_report`` rescans the whole ledger each evening, which would make the set-up quadratic). The
portal stores every entry through its ``Ingestor`` in process (not timed). Then, medians over --calls calls:

- month_ms: ``kiosk_days`` of the newest full month, on the portal that holds the whole history;
- month_ms_base: the same month on a portal that holds only that month (and the day before it) of kiosks
  written the same way; the baseline;
- ratio = month_ms_base / month_ms (1.0: the page costs the same after a year as after a month);
- csv_ms: ``month_csv`` of that month (the download) on the whole history; day_ms: ``kiosk_day`` (one kiosk's
  day page).

SQLite, and PostgreSQL (``_pg``) when $KIOSK_TEST_PG_URL is set. No aim of issue #16's names this one; the
staff pages must stay usable as a city's history grows.

Usage: python bench/reconcile.py [--kiosks 20] [--days 365] [--gifts 6] [--calls 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sync as bench_sync  # noqa: E402  bench/sync.py: enrolment and the scratch dir
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from kiosk.ledger import Ledger, Pepper  # noqa: E402
from kiosk.ledger.clock import FixedClock  # noqa: E402
from kiosk.ledger.merkle import consistency_proof  # noqa: E402
from server_sync import reconcile  # noqa: E402
from server_sync.auth import authenticate  # noqa: E402
from server_sync.db import drop_schema  # noqa: E402
from server_sync.ingest import Ingestor  # noqa: E402
from server_sync.wire import protocol as P  # noqa: E402

TOKYO = bench_sync.TOKYO


class DayKiosk:
    """A kiosk's ledger of ``days`` business days ending yesterday, and its uploads in the uploader's batches."""

    def __init__(self, i: int, days: int, gifts: int, work: Path, pepper: Pepper, name: str):
        self.id = f"{name}-{i:02d}"
        self.sk = Ed25519PrivateKey.generate()
        today = datetime.now(TOKYO).date()
        first = today - timedelta(days=days)
        clock = FixedClock(wall_ms=bench_sync.tokyo_ms(first, 8))
        led = Ledger.open(work / f"{self.id}-{uuid.uuid4().hex[:6]}.db", self.sk, self.id, clock=clock,
                          checkpoint_every=100)
        n = 0
        for d in range(days):  # a gift every 40 minutes from 9:40, and the evening close-out
            n = bench_sync.business_day(led, clock, pepper, first + timedelta(days=d), gifts, n, every_minutes=40,
                                        ref=f"r{self.id}-")
        self.entries = list(led.iter_entries())
        led.close(checkpoint=False)
        self.batches = _batches(self.id, self.entries)


def _batches(kid: str, entries: list[Any]) -> list[tuple[bytes, str]]:
    """The uploader's batches (bench/sync.py's SimKiosk, without its gift-sync tail)."""
    leaves = [e.entry_hash for e in entries]
    cps = [(e.data["size"], e.data["note"], e.seq) for e in entries if e.type == "checkpoint"]
    cp_seqs = [c[2] for c in cps]
    out, accepted, cp_ack = [], 0, 0
    while accepted < len(entries):
        end = P.batch_end(accepted, len(entries), P.DEFAULT_BATCH_ENTRIES, cp_seqs)
        part = entries[accepted:end]
        cp = max((c for c in cps if c[2] <= end), default=None)
        note, size, proof = None, cp_ack, []
        if cp is not None and cp[0] >= cp_ack:
            size, note = cp[0], cp[1]
            proof = consistency_proof(cp_ack, leaves[:size]) if size > cp_ack else []
        doc = P.batch_document(kid, [(e.seq, e.body, e.signature) for e in part], note, cp_ack, proof)
        out.append((json.dumps(doc, separators=(",", ":")).encode(),
                    P.idempotency_key(kid, part[0].seq, end, cp_ack, size)))
        cp_ack = cp[0] if cp is not None else cp_ack
        accepted = end
    return out


def load(db_url: str, kiosks: list[DayKiosk]) -> Any:
    """A fresh portal with ``kiosks`` enrolled and every batch of theirs stored, as uploads make it."""
    eng = bench_sync.enrolled_db(db_url, kiosks)  # type: ignore[arg-type]  # it reads .id and .sk only
    ingestor = Ingestor(eng)
    for k in kiosks:
        path = f"/api/v1/kiosks/{k.id}/batches"
        for body, key in k.batches:
            headers = P.sign_request(k.sk, k.id, "POST", path, body, int(time.time()), key)
            kiosk = authenticate(eng, "POST", path, headers, body, int(time.time() * 1000), k.id)
            ingestor.ingest(kiosk, key, headers[P.H_DIGEST], body)
    return eng


def timed(fn: Any, calls: int) -> tuple[float, Any]:
    """Median wall-clock ms of ``calls`` calls of ``fn()`` (after one not counted), and its last result."""
    got = fn()
    ts = []
    for _ in range(calls):
        t0 = time.perf_counter()
        got = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3, got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiosks", type=int, default=20)
    ap.add_argument("--days", type=int, default=365, help="business days of history each kiosk has")
    ap.add_argument("--gifts", type=int, default=6, help="gifts a kiosk takes a day")
    ap.add_argument("--calls", type=int, default=5)
    args = ap.parse_args()
    today = datetime.now(TOKYO).date()
    first, last, month = reconcile.month_bounds((today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m"), today)
    base_days = (today - first).days + 1  # the baseline's kiosks begin the day before the month
    work = bench_sync.scratch_dir()
    try:
        pepper = Pepper.create(work / "pepper.json")
        full = [DayKiosk(i, max(args.days, base_days), args.gifts, work, pepper, "year-kiosk")
                for i in range(args.kiosks)]
        short = [DayKiosk(i, base_days, args.gifts, work, pepper, "month-kiosk") for i in range(args.kiosks)]
        out: dict = {"bench": "reconcile", "kiosks": args.kiosks, "days": max(args.days, base_days),
                     "gifts_a_day": args.gifts, "month": month, "entries": sum(len(k.entries) for k in full),
                     "base_entries": sum(len(k.entries) for k in short)}
        backends = [("", f"sqlite:///{work / 'portal.db'}")]
        if os.environ.get("KIOSK_TEST_PG_URL"):
            backends.append(("_pg", os.environ["KIOSK_TEST_PG_URL"]))
        for suffix, url in backends:
            eng = load(url, short)
            try:
                base_ms, base_days_got = timed(lambda: reconcile.kiosk_days(eng, first, last), args.calls)  # noqa: B023
            finally:
                drop_schema(eng)
                eng.dispose()
            eng = load(url, full)
            try:
                month_ms, got = timed(lambda: reconcile.kiosk_days(eng, first, last), args.calls)  # noqa: B023
                csv_ms, _ = timed(lambda: reconcile.month_csv(eng, first, last), args.calls)  # noqa: B023
                day_ms, _ = timed(lambda: reconcile.kiosk_day(eng, full[0].id, last), args.calls)  # noqa: B023
            finally:
                drop_schema(eng)
                eng.dispose()
            # Both portals hold the month whole: a kiosk-day for each kiosk and day, each matching its Z.
            want = args.kiosks * ((last - first).days + 1)
            if len(got) != want or len(base_days_got) != want or not all(r["ok"] for r in got):
                raise SystemExit(f"reconcile bench: {len(got)} and {len(base_days_got)} kiosk-days, want {want}")
            out[f"month_ms{suffix}"] = round(month_ms, 2)
            out[f"month_ms_base{suffix}"] = round(base_ms, 2)
            out[f"ratio{suffix}"] = round(out[f"month_ms_base{suffix}"] / out[f"month_ms{suffix}"], 3)
            out[f"csv_ms{suffix}"] = round(csv_ms, 2)
            out[f"day_ms{suffix}"] = round(day_ms, 2)
        print(json.dumps(out), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

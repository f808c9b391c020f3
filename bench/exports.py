"""The staff donations CSV and points report of a portal holding a city's donations: prints one JSON line.

``/staff/donations.csv`` is every donation the portal holds (server_sync/queries.py ``donations_csv_parts``),
sent as it is read. This bench stores --donations donation rows bare (20 kiosks; the export reads no body),
then, medians of --runs:

- stream_s: the whole export read part by part, as the download sends it; bare_fetch_s: a bare SELECT of
  the same columns in the same order, fetched whole (the baseline); time_ratio = bare_fetch_s / stream_s;
- stream_peak_mb: the most Python memory the export held at once (tracemalloc, a run of its own); text_mb:
  the size of the CSV text (UTF-8), what building it whole costs at the least (the baseline);
  memory_ratio = stream_peak_mb / text_mb;
- report_s: the staff points report (server_sync/points_ui.py ``report``: points issued and exchanged a
  month), the donations spread over a year; report_ratio = bare_fetch_s / report_s; report_peak_mb: the
  most Python memory it held.

SQLite, and PostgreSQL (``_pg``) when $KIOSK_TEST_PG_URL is set (the bench drops and recreates the schema of
the database it is given).

Usage: python bench/exports.py [--donations 300000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sync as bench_sync  # noqa: E402  bench/sync.py: the scratch dir
from sqlalchemy import select  # noqa: E402

from server_sync import points_ui, queries, totals  # noqa: E402
from server_sync.db import create_schema, drop_schema, entries, make_engine  # noqa: E402

ROW = {"body": b"{}", "entry_hash": bytes(32), "signature": bytes(64), "type": "donation", "boot": 1, "mono_ms": 5,
       "clock_synced": True, "time_fixed": True, "voided": False, "received_ms": 1_796_000_000_000,
       "quarantine": None, "project": "kodomo", "amount_yen": 500, "points": 5}


def fill(url: str, n: int) -> Any:
    eng = make_engine(url)
    drop_schema(eng)
    create_schema(eng)
    per = n // 20
    step = 365 * 86_400_000 // per  # each kiosk's gifts spread over a year
    with eng.begin() as conn:
        for k in range(20):
            for lo in range(1, per + 1, 50_000):
                conn.execute(entries.insert(), [
                    {**ROW, "kiosk_id": f"k{k:02d}", "seq": s, "wall_ms": 1_760_000_000_000 + s * step + k,
                     "time_ms": 1_760_000_000_000 + s * step + k, "amount_yen": 100 * (1 + s % 10),
                     "points": 1 + s % 10}
                    for s in range(lo, min(per, lo + 49_999) + 1)])
    totals.recount_all(eng)
    return eng


def bare(eng: Any) -> int:
    with eng.connect() as conn:
        return len(conn.execute(
            select(entries.c.time_ms, entries.c.kiosk_id, entries.c.seq, entries.c.project, entries.c.amount_yen,
                   entries.c.points, entries.c.voided)
            .where(entries.c.type == "donation", entries.c.quarantine.is_(None))
            .order_by(entries.c.time_ms, entries.c.kiosk_id, entries.c.seq)).all())


def stream(eng: Any) -> int:
    parts = getattr(queries, "donations_csv_parts", None)
    if parts is None:  # a tree from before the stream (for the record): the whole text at once
        return len(queries.donations_csv(eng).encode())
    return sum(len(p.encode()) for p in parts(eng))


def peak_mb(fn: Any) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def timed(fn: Any, runs: int) -> float:
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--donations", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = bench_sync.scratch_dir()
    try:
        out: dict = {"bench": "exports", "donations": args.donations // 20 * 20,
                     "streamed": hasattr(queries, "donations_csv_parts")}
        backends = [("", f"sqlite:///{work / 'portal.db'}")]
        if os.environ.get("KIOSK_TEST_PG_URL"):
            backends.append(("_pg", os.environ["KIOSK_TEST_PG_URL"]))
        for suffix, url in backends:
            eng = fill(url, args.donations)
            try:
                rows = bare(eng)
                if rows != out["donations"]:
                    raise SystemExit(f"exports bench: {rows} rows read, {out['donations']} stored")
                size = stream(eng)
                peak = peak_mb(lambda: stream(eng)) * 1e6  # noqa: B023
                report = points_ui.report(eng)
                given = [i for i in report["issued"] if i["what"] == "giving"]
                if sum(i["points"] for i in given) != sum(1 + s % 10 for s in range(1, args.donations // 20 + 1)) * 20:
                    raise SystemExit("exports bench: the points report does not hold every donation's points")
                out[f"stream_s{suffix}"] = round(timed(lambda: stream(eng), args.runs), 3)  # noqa: B023
                out[f"bare_fetch_s{suffix}"] = round(timed(lambda: bare(eng), args.runs), 3)  # noqa: B023
                out[f"time_ratio{suffix}"] = round(out[f"bare_fetch_s{suffix}"] / out[f"stream_s{suffix}"], 3)
                out[f"stream_peak_mb{suffix}"] = round(peak / 1e6, 2)
                out[f"text_mb{suffix}"] = round(size / 1e6, 2)
                out[f"memory_ratio{suffix}"] = round(out[f"stream_peak_mb{suffix}"] / out[f"text_mb{suffix}"], 3)
                out[f"report_s{suffix}"] = round(timed(lambda: points_ui.report(eng), args.runs), 3)  # noqa: B023
                out[f"report_ratio{suffix}"] = round(out[f"bare_fetch_s{suffix}"] / out[f"report_s{suffix}"], 3)
                out[f"report_peak_mb{suffix}"] = round(peak_mb(lambda: points_ui.report(eng)), 2)  # noqa: B023
                out[f"report_months{suffix}"] = len(given)
            finally:
                drop_schema(eng)
                eng.dispose()
        print(json.dumps(out), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

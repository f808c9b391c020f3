"""The kiosk's own reads after a year of history: prints one JSON line.

A lobby kiosk's ledger grows by tens of thousands of entries a year, and some of what the kiosk reads from it
is about one day or a few entries: the X and Z reports of the maintenance menu (a business day), the nightly
close of forgotten days (the last month), the newest ``config_change`` (read at every start of a kiosk that
runs a config from the portal, before its first tap) and a points pool's balance (read on the writer's
thread during an exchange). What those cost must not grow with the history, and they run on the kiosk's own
CPU, beside the movie and the taps.

One ledger is written as `kiosk run` and its daily close-out write it: --days business days of --gifts gifts
(intent, donation, checkpoint entry each), each day closed by a signed ``close_out`` entry (its settled report,
as ``z_report`` computes it, over the day's entries only, so the set-up stays linear); the kiosk's config
change and a pool's spends are at the start of the year. A second ledger holds only the newest day, written the
same way (its genesis, the config change and spends, then the day): the baseline. Medians over --calls calls
(after one not counted), in ms, of the public calls on each:

- x_ms: ``x_report`` of the newest day (the menu's X page);
- z_ms: ``z_report(force=True)`` of the newest day (the menu's Z; it appends a durable entry: an fsync);
- open_ms: ``open_dates`` (the nightly timer, 31 days);
- config_ms: ``last_of_type("config_change")`` (every start of a ``kiosk run`` that runs a portal config);
- pool_ms: ``points_spent(pool=...)`` (a pool's balance during an exchange).

The ledgers are written on tmpfs (an fsync an entry is cheap there), then copied to the default temp
directory, a disk, and measured there with the file in the page cache. Two more figures start cold, as after a
power cut: the ledger is opened (which reads its state snapshot and the entries after it), the file's pages
are dropped from the page cache (``posix_fadvise(DONTNEED)``), and one call is timed, median of --calls opens:

- config_cold_ms: ``last_of_type("config_change")``, what ``kiosk run`` reads before its first tap when it
  runs a config from the portal;
- x_cold_ms: the X report.

Two costs that still grow with the history, measured so that they can be followed:

- first_proof_ms: a restarted kiosk's uploader's first consistency proof (``LedgerSource.consistency_proof``
  from three entries back: the compact range built from every leaf hash up to there, read in chunks),
  median of --calls;
- export_ms: ``write_export`` of the whole ledger (the USB export from the menu, ``kiosk ledger export``), and
  export_peak_mb, the most Python memory it holds at once (tracemalloc), which must not grow with the history;
- state_mb: the Python memory an open ledger holds (its replayed state: every intent's idempotency key and
  resolution, every settled donation), and proof_mb, what the uploader keeps for its next proofs after its
  first one (tracemalloc; until 2026-12-05 every leaf hash, leaves_mb).

Each with ``_base`` (the one-day ledger) and ``_ratio`` = base / history (1.0: a year costs nothing). The cold
figures read this machine's disk; a kiosk's SD card reads slower. No aim of issue #16 names these; they are
the kiosk's side of "costs that grow with the history" (docs/performance.md).

Usage: python bench/closeout.py [--days 365] [--gifts 30] [--calls 7]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sync as bench_sync  # noqa: E402  bench/sync.py: the scratch dir and the projects
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from kiosk.ledger import Ledger, Pepper, write_export  # noqa: E402
from kiosk.ledger.clock import FixedClock  # noqa: E402
from kiosk.ledger.writer import InlineWriter  # noqa: E402
from kiosk.staff.closeout import open_dates, x_report, z_report  # noqa: E402
from kiosk.sync.source import LedgerSource  # noqa: E402

TOKYO = bench_sync.TOKYO
KIOSK = "bench-closeout"
POOL = "sponsor-2026"


def write(path: Path, first: date, days: int, gifts: int, pepper: Pepper) -> tuple[Ledger, FixedClock]:
    """A kiosk's ledger of ``days`` business days from ``first``: the config change and three spends of the pool
    on the first morning, then each day's gifts and its evening close-out, but for the newest day, today, which
    is still open as the menu's X and Z see it. The clock is left on the last gift."""
    clock = FixedClock(wall_ms=bench_sync.tokyo_ms(first, 8))
    led = Ledger.open(path, Ed25519PrivateKey.generate(), KIOSK, clock=clock, checkpoint_every=100)
    led.append("config_change", {"version": 1, "digest": "ab" * 32, "source": "portal"})
    card = pepper.token(b"\x01" * 8)
    for _ in range(3):
        led.spend_points(card, 10, bench_sync.PROJECTS[0], 100, POOL)
    n = 0
    for d in range(days):
        n = bench_sync.business_day(led, clock, pepper, first + timedelta(days=d), gifts, n, every_minutes=20,
                                    close=d < days - 1)
    return led, clock


def timed(fn: Any, calls: int) -> float:
    """Median wall-clock ms of ``calls`` calls of ``fn()``, after one not counted."""
    fn()
    ts = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return round(statistics.median(ts) * 1e3, 3)


def drop_pages(path: Path) -> None:
    """Evict the file's pages from the page cache (written back first, so none stays dirty), as a power cut
    leaves it: the next read of each page goes to the disk."""
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def cold(path: Path, key: Ed25519PrivateKey, fn: Any, calls: int) -> float:
    """Median ms of ``fn(ledger)`` as the first read of a ledger just opened, its file's pages dropped after the
    open (which reads the state snapshot and the entries after it): a start after a power cut."""
    ts = []
    for _ in range(calls):
        led = Ledger.open(path, key, KIOSK, boot=False, checkpoint_every=100)
        drop_pages(path)
        t0 = time.perf_counter()
        fn(led)
        ts.append(time.perf_counter() - t0)
        led.close(checkpoint=False)
    return round(statistics.median(ts) * 1e3, 3)


def measure(path: Path, key: Ed25519PrivateKey, calls: int) -> dict[str, float]:
    out = {
        "config_cold_ms": cold(path, key, lambda led: led.last_of_type("config_change"), calls),
        "x_cold_ms": cold(path, key, lambda led: x_report(led, led.business_date()), calls),
    }
    led = Ledger.open(path, key, KIOSK, boot=False, checkpoint_every=100)
    writer = InlineWriter(led)
    day = led.business_date()
    out.update({
        "x_ms": timed(lambda: x_report(led, day), calls),
        "z_ms": timed(lambda: z_report(writer, day, force=True), calls),
        "open_ms": timed(lambda: open_dates(led), calls),
        "config_ms": timed(lambda: led.last_of_type("config_change"), calls),
        "pool_ms": timed(lambda: led.points_spent(pool=POOL), calls),
    })
    led.close(checkpoint=False)
    out["first_proof_ms"] = timed(lambda: first_proof(path), calls)
    out.update(held(path, key))
    dump = path.with_suffix(".export.jsonl")
    out["export_ms"] = timed(lambda: write_export(path, dump), max(1, calls // 2))
    gc.collect()
    tracemalloc.start()
    try:
        write_export(path, dump)
        out["export_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 3)
    finally:
        tracemalloc.stop()
    dump.unlink()
    return out


def first_proof(path: Path) -> None:
    """What a restarted kiosk's uploader does for its first batch's consistency proof (kiosk/sync/uploader.py):
    the proof from a checkpoint three entries back, on a new LedgerSource."""
    src = LedgerSource(path)
    try:
        n = src.size()
        src.consistency_proof(n - 3, n)
    finally:
        src.close()


def held(path: Path, key: Ed25519PrivateKey) -> dict[str, float]:
    """Python memory (tracemalloc) an open ledger holds (its replayed state), and what an uploader keeps after
    its first proof."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        led = Ledger.open(path, key, KIOSK, boot=False, checkpoint_every=100)
        gc.collect()
        state = tracemalloc.get_traced_memory()[0] - before
        led.close(checkpoint=False)
        src = LedgerSource(path)
        n = src.size()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        src.consistency_proof(n - 3, n)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
        src.close()
    finally:
        tracemalloc.stop()
    return {"state_mb": round(state / 1e6, 3), "proof_mb": round(kept / 1e6, 3)}


def on_disk(led: Ledger, disk: Path) -> tuple[Path, Ed25519PrivateKey]:
    """Close ``led`` (written on tmpfs, where its fsyncs are cheap) and copy its file to ``disk``."""
    key, src = led._sk, led.path  # noqa: SLF001 - the same kiosk opens its ledger again
    led.close(checkpoint=False)
    dst = disk / src.name
    shutil.copyfile(src, dst)
    return dst, key


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=365, help="business days of history, the newest one open")
    ap.add_argument("--gifts", type=int, default=30, help="gifts a day")
    ap.add_argument("--calls", type=int, default=7)
    args = ap.parse_args()
    work = bench_sync.scratch_dir()
    disk = Path(tempfile.mkdtemp(prefix="kiosk-bench-closeout-"))  # the default temp dir: not tmpfs here
    try:
        pepper = Pepper.create(work / "pepper.json")
        today = datetime.now(TOKYO).date()
        year, _ = write(work / "year.db", today - timedelta(days=args.days - 1), args.days, args.gifts, pepper)
        one, _ = write(work / "day.db", today, 1, args.gifts, pepper)
        out: dict[str, Any] = {"bench": "closeout", "days": args.days, "gifts_a_day": args.gifts,
                               "entries": year.size, "entries_base": one.size}
        history, base = measure(*on_disk(year, disk), args.calls), measure(*on_disk(one, disk), args.calls)
        for k, v in history.items():
            out[k] = v
            out[k + "_base"] = base[k]
            if k.endswith("_ms"):
                out[k.replace("_ms", "_ratio")] = round(base[k] / v, 3) if v else None
        print(json.dumps(out), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(disk, ignore_errors=True)


if __name__ == "__main__":
    main()

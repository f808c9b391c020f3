"""Fleet soak: many simulated kiosks against several portal worker processes on PostgreSQL; one JSON line.

    KIOSK_TEST_PG_URL=postgresql+psycopg://… python bench/fleet.py [--kiosks 200] [--workers 2] [--seconds 60]

Each simulated kiosk is real where it matters: its own Ed25519 key, its own signed SQLite ledger
(two-phase donations through :class:`kiosk.ledger.Ledger`), and the real
:class:`kiosk.sync.uploader.Uploader` over real HTTP (signed requests, heartbeats, batches, config
pulls). The portal is ``kiosk-portal serve --workers N`` as its own processes on one PostgreSQL
database. A published config makes every sync round also poll the config (a standalone uploader
stages it and asks again next round), and visitors look up receipts of donations already synced
(``GET /api/v1/receipts/{code}``).

The kiosks take turns on a pool of threads: every ``--period`` seconds (jittered) a kiosk records 0–3
donations and runs one sync round (heartbeat, config poll, batch upload). After ``--seconds`` every
kiosk syncs until the portal holds everything, and the portal's totals are compared with the sum
of the kiosks' own ledgers, exactly.

Printed: kiosks, workers, seconds, requests (by kind), p50/p99 batch acknowledgement latency (one
POST of a batch, sent to answer), p50/p99 of the other kinds, errors (any non-2xx answer or failed
round), and ``exact`` (portal totals == sum of ledgers). Aims (issue #16): p99 ≤ 250 ms, 0 errors,
exact. Without a PostgreSQL URL (``--db`` or ``$KIOSK_TEST_PG_URL``) it prints ``skipped``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from kiosk.ledger import Ledger, Pepper  # noqa: E402
from kiosk.sync.uploader import SyncError, Uploader  # noqa: E402
from server_sync.configstore import publish  # noqa: E402
from server_sync.db import create_schema, drop_schema, make_engine  # noqa: E402
from server_sync.enroll import issue_code  # noqa: E402
from server_sync.wire.receipt import receipt_code  # noqa: E402

PROJECTS = [
    {"id": "kodomo", "title": "こども食堂", "title_en": "Kids cafeteria", "area": "children", "goal_yen": 50000},
    {"id": "midori", "title": "雑木林", "title_en": "Woodland", "area": "green", "goal_yen": 80000},
]


QUANTILES = [1] + list(range(5, 100, 5)) + [99]


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lat: dict[str, list[float]] = {}
        self.errors: list[str] = []

    def add(self, kind: str, ms: float, status: int, url: str) -> None:
        with self.lock:
            self.lat.setdefault(kind, []).append(ms)
            if status >= 400:
                self.errors.append(f"{kind} {status} {url[-60:]}")

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def _kind(method: str, url: str) -> str:
    for part, kind in (("/batches", "batch"), ("/heartbeat", "heartbeat"), ("/config", "config"),
                       ("/receipts/", "receipt"), ("/media/", "media"), ("/enroll", "enroll")):
        if part in url:
            return kind
    return method.lower()


class TimedSession(requests.Session):
    """Times every request (send to answer read) and records it by kind."""

    def __init__(self, stats: Stats):
        super().__init__()
        self.stats = stats

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]  # noqa: ANN001, ANN002, ANN003, ANN201
        t = time.perf_counter()
        try:
            resp = super().request(method, url, *args, **kwargs)
            _ = resp.content
        except requests.RequestException as exc:
            self.stats.error(f"{_kind(method, url)} {type(exc).__name__}")
            raise
        self.stats.add(_kind(method, url), (time.perf_counter() - t) * 1000, resp.status_code, url)
        return resp


class SimKiosk:
    def __init__(self, i: int, work: Path, url: str, stats: Stats, pepper: Pepper, rng: random.Random):
        self.id = f"fleet-{i:04d}"
        self.dir = work / self.id
        self.dir.mkdir()
        self.sk = Ed25519PrivateKey.generate()
        self.ledger = Ledger.open(self.dir / "ledger.db", self.sk, self.id)
        self.pepper = pepper
        self.rng = rng
        self.up = Uploader(kiosk_id=self.id, signing_key=self.sk, ledger_path=self.ledger.path,
                           state_path=self.dir / "sync-state.json", portal_url=url, session=TimedSession(stats),
                           backoff_base=0.05, backoff_cap=0.5, timeout=(5.0, 30.0))
        self.lock = threading.Lock()  # one action of a kiosk at a time (a kiosk is one process)
        self.n = 0

    def donate(self, k: int) -> None:
        for _ in range(k):
            p = PROJECTS[self.n % len(PROJECTS)]["id"]
            amount = (100, 500, 1000)[self.n % 3]
            card = hashlib_card(self.id, self.n % 7)
            intent = self.ledger.record_intent(p, amount, "sim", self.pepper.token(card), uuid.uuid4().hex)
            self.ledger.record_donation(intent.seq, f"sim-{intent.seq}", amount // 100)
            self.n += 1

    def synced_donation_code(self) -> str | None:
        acked = self.up.state.accepted_through_seq
        if acked < 3:
            return None
        for _ in range(5):
            e = self.ledger.entry(self.rng.randint(3, acked))
            if e.type == "donation":
                return receipt_code(e)
        return None


def hashlib_card(kid: str, n: int) -> bytes:
    import hashlib

    return hashlib.sha256(f"{kid}-card-{n}".encode()).digest()[:8]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))], 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=os.environ.get("KIOSK_TEST_PG_URL"))
    ap.add_argument("--kiosks", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--period", type=float, default=10.0, help="seconds between a kiosk's sync rounds (jittered)")
    ap.add_argument("--threads", type=int, default=32, help="client threads the kiosks take turns on")
    ap.add_argument("--quick", action="store_true", help="20 kiosks for 10 s (a smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.kiosks, args.seconds, args.period = min(args.kiosks, 20), min(args.seconds, 10.0), 2.0
    if not args.db or not args.db.startswith("postgresql"):
        print(json.dumps({"bench": "fleet", "skipped": "needs PostgreSQL: --db or $KIOSK_TEST_PG_URL "
                          "(several portal workers cannot share one SQLite file)"}))
        return 0
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    work = Path(tempfile.mkdtemp(prefix="kiosk-bench-fleet-", dir=base))
    try:
        return run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    eng = make_engine(args.db)
    drop_schema(eng)
    create_schema(eng)
    publish(eng, {"projects": PROJECTS})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The workers stand behind a reverse proxy (docs/deploy.md): the portal trusts the proxy's address and
    # counts each visitor by the address it forwards. Here the "proxy" is this process on loopback and each
    # visitor sends the address a city's phones would come from, so the per-address receipt limit
    # (server_sync/ratelimit.py) runs as in the field instead of counting the whole city as one visitor.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "KIOSK_PORTAL_TRUSTED_PROXIES": "127.0.0.1"}
    proc = subprocess.Popen([sys.executable, "-m", "server_sync.portal_cli", "serve", "--db", args.db, "--port",
                             str(port), "--workers", str(args.workers), "--log-level", "warning"], env=env)
    stats = Stats()
    rng = random.Random(16)
    kiosks: list[SimKiosk] = []
    try:
        for _ in range(600):
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        pepper = Pepper.create(work / "pepper.json")
        for i in range(args.kiosks):
            k = SimKiosk(i, work, url, stats, pepper, random.Random(i))
            k.up.enroll(issue_code(eng, k.id))
            kiosks.append(k)
        stop_at = time.monotonic() + args.seconds
        rounds = [0]
        visitors = requests.Session()

        def act(k: SimKiosk) -> None:
            with k.lock:
                try:
                    k.donate(k.rng.choice((0, 1, 1, 2, 3)))
                    k.up.sync_round()
                    with stats.lock:
                        rounds[0] += 1
                except SyncError as exc:
                    stats.error(f"{k.id}: {exc}")
                except Exception as exc:  # noqa: BLE001 - a soak reports, it does not stop
                    stats.error(f"{k.id}: {type(exc).__name__}: {exc}")
            code = k.synced_donation_code()
            if code is not None:  # a visitor scans the receipt QR code
                t = time.perf_counter()
                try:
                    visitor = f"10.{k.rng.randrange(256)}.{k.rng.randrange(256)}.{k.rng.randrange(1, 255)}"
                    r = visitors.get(f"{url}/api/v1/receipts/{code}", timeout=30,
                                     headers={"X-Forwarded-For": visitor})
                    stats.add("receipt", (time.perf_counter() - t) * 1000, r.status_code, r.url)
                except requests.RequestException as exc:
                    stats.error(f"receipt {type(exc).__name__}")

        t0 = time.monotonic()
        with ThreadPoolExecutor(args.threads) as pool:
            # Each kiosk's next turn, spread over the first period so they do not all start at once.
            due = sorted((t0 + rng.uniform(0, args.period), i) for i in range(len(kiosks)))
            pending = []
            while time.monotonic() < stop_at:
                when, i = due.pop(0)
                wait = when - time.monotonic()
                if wait > 0:
                    time.sleep(min(wait, max(0.0, stop_at - time.monotonic())))
                if time.monotonic() >= stop_at:
                    break
                pending.append(pool.submit(act, kiosks[i]))
                due.append((when + args.period * rng.uniform(0.8, 1.2), i))
                due.sort()
                pending = [f for f in pending if not f.done()]
            for f in pending:
                f.result()
            soak_s = time.monotonic() - t0
            # Drain: every kiosk uploads the rest; then the portal must hold exactly what the ledgers hold.
            finals = list(pool.map(lambda k: k.up.sync_once(max_attempts=8), kiosks))
        not_ok = [f"{k.id}: {s.last_error}" for k, s in zip(kiosks, finals, strict=True) if not s.ok]
        portal = requests.get(url + "/api/v1/totals", timeout=60).json()
        count = sum(k.ledger.totals()["count"] for k in kiosks)
        yen = sum(k.ledger.totals()["total_yen"] for k in kiosks)
        entries = sum(k.ledger.size for k in kiosks)
    finally:
        proc.terminate()
        proc.wait(30)
        for k in kiosks:
            k.up.close()
            k.ledger.close(checkpoint=False)
        eng.dispose()
    lat = stats.lat
    out = {
        "bench": "fleet", "kiosks": args.kiosks, "workers": args.workers, "seconds": round(soak_s, 1),
        "period_s": args.period, "sync_rounds": rounds[0], "entries": entries,
        "requests": sum(len(v) for v in lat.values()),
        "requests_by_kind": {k: len(v) for k, v in sorted(lat.items())},
        "batch_ack_p50_ms": pct(lat.get("batch", []), 50), "batch_ack_p99_ms": pct(lat.get("batch", []), 99),
        "heartbeat_p99_ms": pct(lat.get("heartbeat", []), 99), "config_p99_ms": pct(lat.get("config", []), 99),
        "receipt_p50_ms": pct(lat.get("receipt", []), 50), "receipt_p99_ms": pct(lat.get("receipt", []), 99),
        "errors": len(stats.errors) + len(not_ok), "error_samples": (stats.errors + not_ok)[:5],
        "portal_count": portal["count"], "portal_total_yen": portal["total_yen"],
        "ledgers_count": count, "ledgers_total_yen": yen,
        "exact": portal["count"] == count and portal["total_yen"] == yen and not not_ok,
        "aim": {"batch_ack_p99_ms": 250, "errors": 0, "exact": True},
        "batch_ack_mean_ms": round(statistics.fmean(lat["batch"]), 1) if lat.get("batch") else None,
        # The distribution, for bench/report.py's plot: the 1st, 5th, 10th, …, 95th and 99th percentiles.
        "batch_ack_quantiles_ms": [pct(lat.get("batch", []), q) for q in QUANTILES],
    }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

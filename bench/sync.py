"""Sync benchmark: prints one JSON line.

Ledgers are built as `kiosk run` writes them: intent, donation, then a signed checkpoint entry after each
donation (DonationService), besides every 100 entries.

- catchup_s: a kiosk with 10,000 unsynced entries, from the first request to "everything
  acknowledged", real uploader -> real portal over loopback HTTP (SQLite portal; also PostgreSQL as
  catchup_s_pg when $KIOSK_TEST_PG_URL is set).
- ingest: 50 simulated kiosks upload at once (one thread each, pre-built signed batches) to a portal
  running as its own process (`kiosk-portal serve`); entries/s from first request to last answer.
  bare_insert_eps: the same rows the portal stores, inserted into the same empty schema with the same
  batching (one transaction per batch the kiosks send, cut where they cut them), in the same run, by
  the same call the portal's ingest makes for its entries (SQLAlchemy Core
  ``conn.execute(entries.insert(), rows)``: an executemany), under the same garbage collector settings
  as the portal's process (``collector_as_served``: this process holds every simulated kiosk's ledger,
  about 150,000 objects the portal does not have, and the default collector scanned them during the
  insert: 24.5-25.2 µs of CPU an entry, against 20.0-20.6 µs as the portal runs it).
  ingest_ratio = ingest_eps / bare_insert_eps, per backend.
  On a shared machine those wall-clock rates follow the load; the CPU time per entry follows the work:
  ingest_cpu_us (the portal processes' user+system CPU over the upload, per entry) and bare_cpu_us (this
  process's over the bare insert), with cpu_ratio = bare_cpu_us / ingest_cpu_us. Neither counts the
  PostgreSQL server's own CPU (nor the clients'), so on PostgreSQL cpu_ratio weighs only the Python side.

- gift syncs: a lobby kiosk uploads what it wrote since its last sync, usually one gift (intent, donation,
  checkpoint entry: three entries). 20 kiosks (--gift-kiosks) each upload 15 such batches (--gifts) at once;
  gift_sync_cpu_ms is the portal processes' CPU per upload, bare_gift_cpu_ms the bare insert's per batch of the
  same rows (one transaction each), gift_sync_cpu_ratio = bare / portal. This is the figure that says how many
  kiosk syncs one core serves at city scale, where the per-upload work (the request's signature, the
  statements every batch runs, HTTP) outweighs the per-entry work.

Aims (issue #16): catch-up <= 3 s; ingest_ratio >= 0.5. The gift syncs have no aim of their own.
Batches are cut as the uploader cuts them (at most --batch entries, ending at the newest checkpoint entry
within reach: server_sync.wire.protocol.batch_end); the default 500 is the uploader's own
(P.DEFAULT_BATCH_ENTRIES, which Uploader.from_config uses).
Usage: python bench/sync.py [--catchup-entries 10000] [--kiosks 50] [--entries-per-kiosk 500] [--batch 500]
                            [--gift-kiosks 20] [--gifts 15]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from kiosk.ledger import Ledger, Pepper, merkle  # noqa: E402
from kiosk.ledger.clock import FixedClock  # noqa: E402
from kiosk.ledger.keys import public_raw  # noqa: E402
from kiosk.sync.uploader import Uploader  # noqa: E402
from server_sync.app import settle_collector  # noqa: E402
from server_sync.db import create_schema, drop_schema, entries, make_engine  # noqa: E402
from server_sync.enroll import enroll, issue_code  # noqa: E402
from server_sync.ingest import entry_row  # noqa: E402
from server_sync.wire import protocol as P  # noqa: E402

PROJECTS = ("kodomo", "midori", "ongaku", "machi")


def scratch_dir() -> Path:
    # Building test ledgers pays an fsync per entry; tmpfs makes the set-up fast. The measured parts
    # read them back through the page cache either way.
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="kiosk-bench-sync-", dir=base))


def build_ledger(path: Path, kiosk_id: str, n_entries: int, sk: Ed25519PrivateKey, pepper: Pepper) -> Ledger:
    led = Ledger.open(path, sk, kiosk_id, clock=FixedClock(wall_ms=int(time.time() * 1000) - 86_400_000),
                      checkpoint_every=100)
    add_gifts(led, n_entries - 1, pepper, PROJECTS)
    return led


def add_gifts(led: Ledger, size: int, pepper: Pepper, projects: tuple[str, ...] | list[str]) -> None:
    """Gifts of ¥100–¥1,000 to ``projects`` in turn, as `kiosk run` writes them, until ``led`` holds ``size``
    entries or a gift more (bench/coldstart.py fills a kiosk's ledger with it too)."""
    i = 0
    while led.size < size:
        intent = led.record_intent(projects[i % len(projects)], 100 * (1 + i % 10), "sim",
                                   pepper.token(i.to_bytes(8, "big")), uuid.uuid4().hex)
        led.record_donation(intent.seq, f"r{i}", 1 + i % 10)  # one point a ¥100, as the policy checks
        # As `kiosk run` writes its ledger: a signed checkpoint right after each donation's commit
        # (kiosk/donation/service.py, DonationService._checkpoint), besides every checkpoint_every entries.
        led.checkpoint()
        i += 1


TOKYO = ZoneInfo("Asia/Tokyo")


def tokyo_ms(day: date, hour: int) -> int:
    """Wall time of ``hour`` o'clock on ``day`` in Tokyo, in ms."""
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=TOKYO).timestamp() * 1000)


def business_day(led: Ledger, clock: FixedClock, pepper: Pepper, day: date, gifts: int, n: int, *,
                 every_minutes: int, ref: str = "r", close: bool = True) -> int:
    """One business day of ``led`` as `kiosk run` and its evening close-out write it: ``gifts`` gifts from 9:00,
    one every ``every_minutes`` (intent, donation, checkpoint entry, as ``add_gifts``), then (``close``) the
    day's signed ``close_out`` at 21:00 with the day's settled report, as ``z_report`` computes it but over
    the day's entries only (its reading of the ledger would make a year's set-up slow). ``n`` numbers the
    gifts (amounts, projects, card tokens, the provider's reference ``{ref}{n}``); returns the next number."""
    from kiosk.ledger.report import settled_report
    from kiosk.staff.closeout import CLOSE_OUT_KEYS

    clock.wall = tokyo_ms(day, 9)
    made: list[tuple[int, dict[str, Any]]] = []
    for _ in range(gifts):
        clock.advance(every_minutes * 60_000)
        intent = led.record_intent(PROJECTS[n % 4], 100 * (1 + n % 10), "sim", pepper.token(n.to_bytes(8, "big")),
                                   uuid.uuid4().hex)
        gift = led.record_donation(intent.seq, f"{ref}{n}", 1 + n % 10)
        led.checkpoint()
        made += [(intent.seq, intent.obj), (gift.seq, gift.obj)]
        n += 1
    if close:
        clock.wall = tokyo_ms(day, 21)
        rep = settled_report(made, day)
        data: dict[str, Any] = {k: rep[k] for k in CLOSE_OUT_KEYS if k != "business_date"}
        led.append("close_out", {**data, "business_date": day.isoformat(), "trigger": "timer"})
    return n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- catch-up ------------------------------------------------------------------------------------------
def catchup(db_url: str, n: int, work: Path) -> float:
    from server_sync.embedded import start_portal

    sk = Ed25519PrivateKey.generate()
    pepper = Pepper.create(work / f"pepper-{uuid.uuid4().hex}.json")
    kid = "catchup-kiosk"
    led = build_ledger(work / f"catchup-{uuid.uuid4().hex}.db", kid, n, sk, pepper)
    portal = start_portal(db_url)
    try:
        up = Uploader(kiosk_id=kid, signing_key=sk, ledger_path=led.path, state_path=work / f"st-{uuid.uuid4().hex}",
                      portal_url=portal.url, clock=led.clock)
        up.enroll(portal.issue_code(kid))
        t0 = time.perf_counter()
        st = up.sync_once()
        dt = time.perf_counter() - t0
        assert st.ok and st.accepted_through_seq == led.size, st.last_error
        up.close()
    finally:
        portal.stop()
        led.close(checkpoint=False)
    return dt


# --- ingest --------------------------------------------------------------------------------------------
class SimKiosk:
    """A kiosk's ledger of ``n`` entries, written as `kiosk run` writes them, and its uploads: batches of at most
    ``batch`` entries cut by the uploader's rule. ``history``: the first that many entries go in the uploader's
    own batches (a kiosk catching up) and only the rest in ``batch`` (bench/workers.py: gifts after a history)."""

    def __init__(self, i: int, n: int, batch: int, work: Path, pepper: Pepper, name: str = "sim-kiosk",
                 history: int = 0):
        self.id = f"{name}-{i:02d}"
        self.sk = Ed25519PrivateKey.generate()
        led = build_ledger(work / f"{self.id}.db", self.id, n, self.sk, pepper)
        self.entries = list(led.iter_entries())
        self.cuts: list[tuple[int, int]] = []  # (start index, end index) of each batch, as sent
        led.close(checkpoint=False)
        leaves = [e.entry_hash for e in self.entries]
        self.batches = []
        cp_ack = 0
        checkpoints = [(e.data["size"], e.data["note"], e.seq) for e in self.entries if e.type == "checkpoint"]
        cp_seqs = [e.seq for e in self.entries if e.type == "checkpoint"]
        accepted = 0
        while accepted < len(self.entries):
            # The uploader's batch rule: end at a checkpoint entry when the rest does not fit.
            if accepted < history:
                end = P.batch_end(accepted, min(history, len(self.entries)), P.DEFAULT_BATCH_ENTRIES, cp_seqs)
            else:
                end = P.batch_end(accepted, len(self.entries), batch, cp_seqs)
            part = self.entries[accepted:end]
            self.cuts.append((accepted, end))
            accepted = last = end
            # As the real uploader would: the kiosk's latest checkpoint (here: the last one the kiosk had
            # written when the batch's last entry existed) and a proof from the portal's acknowledgement.
            cp = max((c for c in checkpoints if c[2] <= last), default=None)
            note, size, proof = None, cp_ack, []
            if cp is not None and cp[0] >= cp_ack:
                size, note = cp[0], cp[1]
                proof = merkle.consistency_proof(cp_ack, leaves[:size]) if size > cp_ack else []
            doc = P.batch_document(self.id, [(e.seq, e.body, e.signature) for e in part], note, cp_ack, proof)
            self.batches.append((json.dumps(doc, separators=(",", ":")).encode(),
                                 P.idempotency_key(self.id, part[0].seq, last, cp_ack, size)))
            # The portal acknowledges the newest in-chain checkpoint it has verified.
            in_chain = [c for c in checkpoints if c[2] <= last]
            cp_ack = in_chain[-1][0] if in_chain else cp_ack

    def upload(self, url: str, errors: list) -> None:
        s = requests.Session()
        path = f"/api/v1/kiosks/{self.id}/batches"
        for body, key in self.batches:
            headers = P.sign_request(self.sk, self.id, "POST", path, body, int(time.time()), key)
            headers["Content-Type"] = "application/json"
            r = s.post(url + path, data=body, headers=headers, timeout=120)
            if r.status_code != 200:
                errors.append(f"{self.id}: {r.status_code} {r.text[:200]}")
                return


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its living children (uvicorn's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14, 15 of stat(5))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue  # gone, or no /proc: counted as nothing
    return total


def enrolled_db(db_url: str, kiosks: list[SimKiosk]) -> Any:
    """An engine on a fresh empty portal schema with ``kiosks`` enrolled in process (bench/ingest_ir.py and
    bench/workers.py drive the portal's Ingestor without HTTP)."""
    eng = make_engine(db_url)
    drop_schema(eng)
    create_schema(eng)
    for k in kiosks:
        code, pk = issue_code(eng, k.id), public_raw(k.sk.public_key()).hex()
        enroll(eng, P.EnrollRequest(kiosk_id=k.id, code=code, public_key=pk,
                                    signature=P.b64(k.sk.sign(P.enroll_message(k.id, code, pk)))))
    return eng


def bare_batches(db_url: str, kiosks: list[SimKiosk]) -> tuple[Any, list[list[dict]]]:
    """An engine on a fresh empty schema, and the rows the portal would store, in the batches the kiosks send."""
    eng = make_engine(db_url)
    drop_schema(eng)
    create_schema(eng)
    now = int(time.time() * 1000)
    batches = []
    for k in kiosks:
        rows = [entry_row(k.id, e.seq, e.body, e.signature, e.entry_hash, e.obj, e.obj["wall_ms"], True, now)
                for e in k.entries]
        batches += [rows[a:b] for a, b in k.cuts]
    return eng, batches


@contextmanager
def collector_as_served() -> Iterator[None]:
    """Python's cyclic garbage collector as ``kiosk-portal serve`` runs it (server_sync.app.settle_collector:
    what is alive now frozen, the young generation's threshold raised), put back as it was afterwards.

    For a baseline timed in this process: the portal's process holds its own start-up heap, frozen, and the
    batch in hand; this one also holds every simulated kiosk's ledger and the baseline's rows, which the
    default collector would scan again and again while the baseline runs, a cost the portal never pays.
    ``gc.unfreeze`` afterwards thaws whatever is frozen, so this is for processes that freeze nothing else."""
    threshold = gc.get_threshold()
    settle_collector()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def bare_insert(db_url: str, kiosks: list[SimKiosk]) -> tuple[float, float, float]:
    """The same rows through SQLAlchemy with the same batching, no checks, no HTTP: entries/s, CPU µs an
    entry and CPU ms a batch. Under the portal's collector settings (:func:`collector_as_served`)."""
    eng, batches = bare_batches(db_url, kiosks)
    total = sum(len(b) for b in batches)
    with collector_as_served():
        t0, c0 = time.perf_counter(), time.process_time()
        for rows in batches:
            with eng.begin() as conn:
                conn.execute(entries.insert(), rows)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    eng.dispose()
    return total / dt, cpu / total * 1e6, cpu / len(batches) * 1e3


def ingest(db_url: str, kiosks: list[SimKiosk], workers: int) -> tuple[float, float, float]:
    """The kiosks' uploads to a portal process: entries/s, the portal's CPU µs an entry and CPU ms an upload."""
    eng = make_engine(db_url)
    drop_schema(eng)
    create_schema(eng)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "server_sync.portal_cli", "serve", "--db", db_url, "--port",
                             str(port), "--log-level", "warning", "--workers", str(workers)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        for k in kiosks:
            code = issue_code(eng, k.id)
            r = requests.post(url + "/api/v1/enroll", timeout=10, json={
                "kiosk_id": k.id, "code": code, "public_key": public_raw(k.sk.public_key()).hex(),
                "signature": P.b64(k.sk.sign(P.enroll_message(k.id, code, public_raw(k.sk.public_key()).hex())))})
            r.raise_for_status()
        errors: list[str] = []
        threads = [threading.Thread(target=k.upload, args=(url, errors)) for k in kiosks]
        t0, c0 = time.perf_counter(), proc_cpu_s(proc.pid)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dt, cpu = time.perf_counter() - t0, proc_cpu_s(proc.pid) - c0
        if errors:
            raise SystemExit(f"ingest failed: {errors[:3]}")
        total = sum(len(k.entries) for k in kiosks)
        got = requests.get(url + "/api/v1/totals", timeout=30).json()["count"]
        assert got == sum(sum(1 for e in k.entries if e.type == "donation") for k in kiosks)
        return total / dt, cpu / total * 1e6, cpu / sum(len(k.batches) for k in kiosks) * 1e3
    finally:
        proc.terminate()
        proc.wait(20)
        eng.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--catchup-entries", type=int, default=10_000)
    ap.add_argument("--kiosks", type=int, default=50)
    ap.add_argument("--entries-per-kiosk", type=int, default=500)
    ap.add_argument("--batch", type=int, default=P.DEFAULT_BATCH_ENTRIES, help="the uploader's batch size")
    ap.add_argument("--workers", type=int, default=1, help="portal processes (default 1)")
    ap.add_argument("--gift-kiosks", type=int, default=20, help="kiosks uploading one gift a batch (0: none)")
    ap.add_argument("--gifts", type=int, default=15, help="gift uploads per kiosk")
    args = ap.parse_args()
    work = scratch_dir()
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # tmpfs: do not leave ledgers in RAM


def run(args: argparse.Namespace, work: Path) -> None:
    pg = os.environ.get("KIOSK_TEST_PG_URL") or None
    out: dict = {"catchup_entries": args.catchup_entries}
    out["catchup_s"] = round(catchup(f"sqlite:///{work / 'catchup-portal.db'}", args.catchup_entries, work), 2)
    if pg:
        drop = make_engine(pg)
        drop_schema(drop)
        drop.dispose()
        out["catchup_s_pg"] = round(catchup(pg, args.catchup_entries, work), 2)
    pepper = Pepper.create(work / "pepper-sim.json")
    kiosks = [SimKiosk(i, args.entries_per_kiosk, args.batch, work, pepper) for i in range(args.kiosks)]
    out["ingest_kiosks"] = args.kiosks
    out["batch"] = args.batch
    out["portal_workers"] = args.workers
    out["ingest_entries"] = sum(len(k.entries) for k in kiosks)
    backends = [("sqlite", f"sqlite:///{work / 'ingest-portal.db'}", f"sqlite:///{work / 'bare.db'}")]
    if pg:
        backends.append(("postgresql", pg, pg))
    # Gift syncs: the genesis and boot entries ride with the first gift; every later batch is one gift.
    gifts = [SimKiosk(i, 2 + 3 * args.gifts, 3, work, pepper, "gift-kiosk") for i in range(args.gift_kiosks)]
    if gifts:
        out["gift_sync_kiosks"] = args.gift_kiosks
        out["gift_syncs"] = sum(len(k.batches) for k in gifts)
    for name, url, bare_url in backends:
        bare, bare_cpu, _ = bare_insert(bare_url, kiosks)
        eps, cpu, _ = ingest(url, kiosks, args.workers)
        suffix = "" if name == "sqlite" else "_pg"
        if gifts:
            _, _, bare_ms = bare_insert(bare_url, gifts)
            _, _, sync_ms = ingest(url, gifts, args.workers)
            out[f"gift_sync_cpu_ms{suffix}"] = round(sync_ms, 3)
            out[f"bare_gift_cpu_ms{suffix}"] = round(bare_ms, 3)
            out[f"gift_sync_cpu_ratio{suffix}"] = round(bare_ms / sync_ms, 3) if sync_ms else None
        out[f"ingest_eps{suffix}"] = round(eps)
        out[f"bare_insert_eps{suffix}"] = round(bare)
        # From the printed rates, so that the line's own figures give its ratio (tests/test_bench_smoke.py).
        out[f"ingest_ratio{suffix}"] = round(out[f"ingest_eps{suffix}"] / out[f"bare_insert_eps{suffix}"], 3)
        out[f"ingest_cpu_us{suffix}"] = round(cpu, 1)
        out[f"bare_cpu_us{suffix}"] = round(bare_cpu, 1)
        out[f"cpu_ratio{suffix}"] = round(bare_cpu / cpu, 3) if cpu else None
    out["aim"] = {"catchup_s_at_10000": 3, "ingest_ratio": 0.5}  # issue #16
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

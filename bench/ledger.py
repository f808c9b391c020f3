"""Ledger benchmark: prints one JSON line.

- append_ratio: durable ledger appends/s (encode + hash + Ed25519 sign + insert + COMMIT with
  WAL/synchronous=FULL, through the ledger's own sqlite3 connection) over raw sqlite3 insert+commit/s of
  rows of the same size into the same schema with the same pragmas. Every intent carries an idempotency
  key as the kiosk makes them (``uuid4().hex``, kiosk/donation/service.py), and the raw rows carry such
  keys too: a made-up key (``bench-17``) took the ledger's cheaper path for keys a kiosk never writes
  (kiosk/ledger/idemmap.py) and went into the idem index in order, where a kiosk's keys land at random.
  (The raw rows are ``donation`` rows, which that index leaves out, as it leaves out the ledger's own
  donations; a raw loop of exactly the ledger's rows took no time the runs could tell apart from this one:
  docs/performance.md, "Nineteenth round".)
- verify_ratio: `verify_path` entries/s (as shipped: signatures shared with helper threads for
  large ledgers when a second CPU exists) over a bare single-threaded Ed25519 verify loop of as many
  signatures; verify_ratio_single is the same with everything on one thread.

Both baselines are measured in the same run, in interleaved rounds; medians are reported, because
this machine is shared and noisy.

Since the kiosk checkpoints right after each donation (kiosk/donation/service.py, #18), a gift is three
durable appends (intent, donation, checkpoint) and a third of a kiosk's entries are checkpoints, each
carrying a note whose own signature the verifier also checks. The figures above keep their meaning
(a checkpoint every 100 entries, as before), and the same run measures the ledger as a kiosk now
writes it, against the same baselines:

- append_ratio_kiosk: entries/s appended as intent, donation, checkpoint, over the raw commits/s;
- verify_ratio_kiosk: entries/s verifying such a ledger over bare verifies/s (about 4 signatures
  for every 3 entries); verify_sigs_ratio_kiosk counts signatures checked instead of entries.
Usage: python bench/ledger.py [--appends 1000] [--rounds 7] [--verify-entries 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from kiosk.ledger import Ledger, Pepper, verify_path  # noqa: E402
from kiosk.ledger.schema import MIGRATIONS  # noqa: E402
from kiosk.ledger.sigcheck import usable_cpus  # noqa: E402


def kiosk_keys(n: int) -> list[str]:
    """``n`` idempotency keys as the kiosk makes them, made before the clock starts (the kiosk makes one
    outside the ledger too)."""
    return [uuid.uuid4().hex for _ in range(n)]


def raw_round(path: Path, n: int, body: bytes) -> float:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    for migration in MIGRATIONS:  # the same schema: the table and every index the ledger's rows go into
        for stmt in migration:
            con.execute(stmt)
    sig = os.urandom(64)
    keys = kiosk_keys(n)
    t0 = time.perf_counter()
    for seq in range(1, n + 1):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO entries (seq, body, entry_hash, signature, type, wall_ms, donor, idem, project, "
                    "amount_yen, points, ref_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (seq, body, os.urandom(32), sig, "donation", 1, "ab" * 16, keys[seq - 1], "p", 100, 1, seq - 1))
        con.execute("COMMIT")
    dt = time.perf_counter() - t0
    con.close()
    return n / dt


def ledger_round(path: Path, n: int, sk: Ed25519PrivateKey, pepper: Pepper, kiosk: bool = False) -> tuple[float, int]:
    led = Ledger.open(path, sk, "bench-kiosk", checkpoint_every=100)
    # As in `kiosk run`: every append also pays the owning-thread check (absent before 56b41c9; this file
    # is copied into older trees for interleaved before/after runs).
    getattr(led, "claim_writer", lambda: None)()
    tok = pepper.token(b"\x01" * 8)
    per_gift = 3 if kiosk else 2
    keys = kiosk_keys(n // per_gift)
    t0 = time.perf_counter()
    # Real donation traffic: intent then settlement, two durable appends per gift (kiosk: and a checkpoint).
    for i in range(n // per_gift):
        intent = led.record_intent("kodomo-shokudo", 500, "sim", tok, keys[i])
        led.record_donation(intent.seq, f"sim-{i:08d}", 5)
        if kiosk:
            led.checkpoint()
    dt = time.perf_counter() - t0
    body_len = len(led.entry(led.size - kiosk).body)
    led.close(checkpoint=False)
    return (n // per_gift * per_gift) / dt, body_len


def verify_ledger(path: Path, n: int, sk: Ed25519PrivateKey, pepper: Pepper, kiosk: bool = False) -> None:
    led = Ledger.open(path, sk, "bench-kiosk", checkpoint_every=100)
    tok = pepper.token(b"\x02" * 8)
    while led.size < n:
        intent = led.record_intent("midori", 100, "sim", tok, uuid.uuid4().hex)
        led.record_donation(intent.seq, "ref", 1)
        if kiosk:
            led.checkpoint()
    led.close(checkpoint=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--appends", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--verify-entries", type=int, default=10000)
    args = ap.parse_args()
    sk = Ed25519PrivateKey.generate()
    pepper = Pepper({1: os.urandom(32)})
    raw_rates, led_rates, ver_rates, single_rates, ed_rates = [], [], [], [], []
    kiosk_rates, kiosk_ver_rates = [], []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        tmpd = Path(tmp)
        for r in range(args.rounds):
            rate, body_len = ledger_round(tmpd / f"l{r}.db", args.appends, sk, pepper)
            led_rates.append(rate)
            raw_rates.append(raw_round(tmpd / f"r{r}.db", args.appends, b"x" * body_len))
            kiosk_rates.append(ledger_round(tmpd / f"k{r}.db", args.appends, sk, pepper, kiosk=True)[0])
        # Verification: one ledger of N entries, verified whole, against N bare verifies.
        big = tmpd / "verify.db"
        verify_ledger(big, args.verify_entries, sk, pepper)
        kbig = tmpd / "verify-kiosk.db"
        verify_ledger(kbig, args.verify_entries, sk, pepper, kiosk=True)
        con = sqlite3.connect(kbig)
        kiosk_cps = con.execute("SELECT count(*) FROM entries WHERE type = 'checkpoint'").fetchone()[0]
        con.close()
        pub = sk.public_key()
        msgs = [os.urandom(32) for _ in range(args.verify_entries)]
        sigs = [sk.sign(m) for m in msgs]
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            res = verify_path(big, pub)
            ver_rates.append(res.entries / (time.perf_counter() - t0))
            assert res.ok, res.summary()
            t0 = time.perf_counter()
            single = verify_path(big, pub, parallel=False)
            single_rates.append(single.entries / (time.perf_counter() - t0))
            assert single.ok
            t0 = time.perf_counter()
            for m, s in zip(msgs, sigs, strict=True):
                pub.verify(s, m)
            ed_rates.append(len(msgs) / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            kres = verify_path(kbig, pub)
            kiosk_ver_rates.append(kres.entries / (time.perf_counter() - t0))
            assert kres.ok, kres.summary()
    med = statistics.median
    out = {
        "bench": "ledger",
        "append_per_s": round(med(led_rates)),
        "raw_sqlite_commit_per_s": round(med(raw_rates)),
        "append_ratio": round(med(led_rates) / med(raw_rates), 3),
        "verify_entries_per_s": round(med(ver_rates)),
        "bare_ed25519_verify_per_s": round(med(ed_rates)),
        "verify_ratio": round(med(ver_rates) / med(ed_rates), 3),
        "verify_single_process_per_s": round(med(single_rates)),
        "verify_ratio_single": round(med(single_rates) / med(ed_rates), 3),
        "append_kiosk_per_s": round(med(kiosk_rates)),
        "append_ratio_kiosk": round(med(kiosk_rates) / med(raw_rates), 3),
        "verify_kiosk_entries_per_s": round(med(kiosk_ver_rates)),
        "verify_ratio_kiosk": round(med(kiosk_ver_rates) / med(ed_rates), 3),
        # Entry signatures plus the checkpoint notes' own: a checkpoint after each gift of two entries.
        "verify_sigs_ratio_kiosk": round(med(kiosk_ver_rates) * (1 + kiosk_cps / kres.entries) / med(ed_rates), 3),
        "cpus": usable_cpus(),
        "appends_per_round": args.appends,
        "verify_entries": res.entries,
        "rounds": args.rounds,
        "append_rates": [round(x) for x in led_rates],
        "raw_rates": [round(x) for x in raw_rates],
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

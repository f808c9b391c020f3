"""Power-cut stand-in: a writer process is SIGKILLed at random moments, over and over.

After each kill the file must pass PRAGMA integrity_check, every entry the
writer reported as committed must be there byte for byte, the state the next
boot opens (from the state snapshot the writer keeps) must be that of every
entry replayed, and the chain must verify. A forked child is used (not a fresh interpreter) so 50+ kills take
seconds; the child opens the ledger itself, exactly as a restarted kiosk does.
"""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.ledger import Ledger, Pepper, verify_path
from kiosk.ledger.encoding import entry_hash
from tests.conftest import fields, replayed

KILLS = 55


def _writer(path: str, sk: Ed25519PrivateKey, pepper: Pepper, fd: int, round_no: int) -> None:
    led = Ledger.open(path, sk, "crash-kiosk", checkpoint_every=7)
    os.write(fd, b"ready\n")  # this boot's entry is committed
    for e in led.iter_entries(start=max(1, led.size - 2)):  # report what this boot found as committed too
        os.write(fd, f"{e.seq} {e.entry_hash.hex()}\n".encode())
    for intent in led.unresolved_intents():  # a restarted kiosk resolves what a crash left open
        e = led.record_failure(intent["seq"], "interrupted: resolved at restart")
        os.write(fd, f"{e.seq} {e.entry_hash.hex()}\n".encode())
    i = 0
    while True:
        i += 1
        tok = pepper.token(i.to_bytes(8, "big"))
        e = led.record_intent("p", 100, "sim", tok, f"r{round_no}-{i}")
        os.write(fd, f"{e.seq} {e.entry_hash.hex()}\n".encode())
        e = led.record_donation(e.seq, f"ref-{round_no}-{i}", 1)
        os.write(fd, f"{e.seq} {e.entry_hash.hex()}\n".encode())
        if i % 3 == 0:  # as the kiosk does when idle, but often, so that kills land in these writes too
            led.save_snapshot()


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_a_committed_entry(tmp_path):
    path = str(tmp_path / "ledger.db")
    sk = Ed25519PrivateKey.generate()
    pepper = Pepper({1: os.urandom(32)})
    rng = random.Random(20091)
    committed: dict[int, str] = {}
    ready_children = 0
    snapshots = 0  # kills after which the ledger opened from a state snapshot
    for round_no in range(KILLS):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: write until killed
            try:
                os.close(r)
                _writer(path, sk, pepper, w, round_no)
            finally:
                os._exit(1)
        os.close(w)
        head = b""
        if round_no % 2:  # any moment after fork, opening the ledger included
            time.sleep(rng.uniform(0.0, 0.12))
        else:  # mid-stream: wait until the child is writing donations
            readable, _, _ = select.select([r], [], [], 30)
            assert readable, "writer never became ready"
            head = os.read(r, 65536)
            time.sleep(rng.uniform(0.0, 0.06))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(r, "rb") as f:
            reported = (head + f.read()).decode().splitlines()
        ready_children += "ready" in reported
        for line in reported:
            if line.endswith(tuple("0123456789abcdef")) and " " in line and len(line.split()[1]) == 64:
                seq, h = line.split()
                assert committed.setdefault(int(seq), h) == h, f"seq={seq} changed after a crash"
        con = sqlite3.connect(path)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {s: bytes(h).hex() for s, h in con.execute("SELECT seq, entry_hash FROM entries")}
        bodies = dict(con.execute("SELECT seq, body FROM entries"))
        con.close()
        for seq, h in committed.items():
            assert stored.get(seq) == h, f"committed seq={seq} lost after kill {round_no}"
            assert entry_hash(bytes(bodies[seq])) == bytes.fromhex(h)
        assert sorted(stored) == list(range(1, len(stored) + 1))
        # The state the next boot opens (from the snapshot the killed writer left, whole or not at all) is the
        # state of every entry replayed.
        opened = Ledger.open(path, sk, "crash-kiosk", boot=False)
        assert fields(opened.st) == fields(replayed(Path(path))), f"after kill {round_no}"
        snapshots += opened.snapshot_size > 0
        opened.close(checkpoint=False)
        if round_no % 10 == 9:
            result = verify_path(path, sk.public_key())
            assert result.ok, result.summary()
    result = verify_path(path, sk.public_key())
    assert result.ok, result.summary()
    assert len(committed) > 3 * KILLS  # the writer really was killed mid-stream, many times
    assert snapshots > KILLS // 2, snapshots
    final = Ledger.open(path, sk, "crash-kiosk", boot=False)
    # Every child that reported ready had committed its boot entry; one killed earlier may not have.
    assert ready_children >= KILLS // 2
    assert ready_children <= final.boot_count <= KILLS
    final.close(checkpoint=False)

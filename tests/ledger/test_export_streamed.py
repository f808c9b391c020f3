"""A ledger export is streamed from the database a part at a time, and is of one ledger even while the kiosk
appends to it (docs/ledger.md, "Export format")."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import tempfile
import threading
import tracemalloc
import uuid
from contextlib import closing
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.ledger import Ledger, Pepper, verify_path, write_export
from kiosk.ledger.clock import FixedClock


def scratch() -> Path:
    # Gifts cost an fsync an entry: on tmpfs where there is one.
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="export-streamed-", dir=base))


def gifts(led: Ledger, pepper: Pepper, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        intent = led.record_intent("kodomo", 100, "sim", pepper.token(i.to_bytes(8, "big")), uuid.uuid4().hex)
        led.record_donation(intent.seq, f"ref-{i}", 1)
        led.checkpoint()


def lines_of(path: Path) -> tuple[dict, list[dict]]:
    text = path.read_text("utf-8").splitlines()
    return json.loads(text[0]), [json.loads(line) for line in text[1:]]


def test_the_export_holds_one_part_of_the_ledger_at_a_time() -> None:
    work = scratch()
    led = Ledger.open(work / "ledger.db", Ed25519PrivateKey.generate(), "k-export", clock=FixedClock())
    gifts(led, Pepper.create(work / "pepper.json"), 1000)
    path, size = led.path, led.size
    led.close(checkpoint=False)
    with closing(sqlite3.connect(path)) as conn:
        stored = conn.execute("SELECT sum(length(body) + length(signature) + length(entry_hash)) FROM entries")
        stored_bytes = stored.fetchone()[0]
    write_export(path, work / "warm-up.jsonl", part_rows=100)  # the first engine's imports are not the export's
    tracemalloc.start()
    try:
        assert write_export(path, work / "export.jsonl", part_rows=100) == size
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The ledger's rows are about 2 MB; read whole and parsed (as the export once did) they held over 7 MB.
    assert stored_bytes > 1_500_000 and peak < stored_bytes / 5, (peak, stored_bytes)
    header, rows = lines_of(work / "export.jsonl")
    assert header["entries"] == len(rows) == size and [r["seq"] for r in rows] == list(range(1, size + 1))
    with closing(sqlite3.connect(path)) as conn:
        for r, (seq, body, h, sig) in zip(rows, conn.execute(
                "SELECT seq, body, entry_hash, signature FROM entries ORDER BY seq"), strict=True):
            assert (r["seq"], base64.b64decode(r["body"]), bytes.fromhex(r["entry_hash"]),
                    base64.b64decode(r["signature"])) == (seq, body, h, sig)
    assert verify_path(work / "export.jsonl").ok


def test_an_export_taken_while_the_kiosk_appends_is_of_one_ledger() -> None:
    work = scratch()
    pepper = Pepper.create(work / "pepper.json")
    led = Ledger.open(work / "ledger.db", Ed25519PrivateKey.generate(), "k-export", clock=FixedClock())
    gifts(led, pepper, 300)
    stop = threading.Event()
    written = [0]

    def kiosk() -> None:  # the kiosk keeps taking gifts while staff export
        while not stop.is_set():
            gifts(led, pepper, 1, start=10_000 + written[0])
            written[0] += 1

    t = threading.Thread(target=kiosk)
    t.start()
    try:
        exports = [work / f"export-{i}.jsonl" for i in range(3)]
        for out in exports:
            write_export(led.path, out, part_rows=37)
    finally:
        stop.set()
        t.join()
    assert written[0] > 0
    sizes = []
    for out in exports:
        header, rows = lines_of(out)
        assert header["entries"] == len(rows) and [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
        # The header's checkpoint is the newest one among the exported entries, and the export verifies.
        result = verify_path(out)
        assert result.ok, result
        sizes.append(len(rows))
    assert sizes == sorted(sizes)
    led.close(checkpoint=False)

"""The serving portal's collector settings (server_sync/app.py ``settle_collector``): uploads waiting for an
ingest slot hold their parsed batches, and those must not drive the collector through every generation.

A real batch of a real kiosk ledger, parsed by the portal's own ``_parse_batch`` in a fresh interpreter (the
collector's state is per process), thirty times over as thirty waiting uploads would be; the collections are
counted with ``gc.callbacks`` before and after ``settle_collector``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sync_helpers import batch_body, make_rig

_CHILD = r"""
import gc, json, sys
from pathlib import Path
from server_sync.app import GC_YOUNG, settle_collector
from server_sync.ingest import _parse_batch

raw, kid = Path(sys.argv[1]).read_bytes(), sys.argv[2]

def collections_while_waiting():
    seen = []
    def count(phase, info):
        if phase == "stop":
            seen.append(info["generation"])
    gc.callbacks.append(count)
    waiting = [_parse_batch(raw, kid) for _ in range(30)]  # held until each is stored
    gc.callbacks.remove(count)
    return seen, sum(len(rows) for _, rows in waiting)

gc.collect()
before, entries = collections_while_waiting()
settle_collector()
after, _ = collections_while_waiting()
print(json.dumps({"before": before, "after": after, "entries": entries, "threshold": gc.get_threshold(),
                  "young": GC_YOUNG}))
"""


def test_waiting_uploads_do_not_drive_the_collector(tmp_path: Path):
    rig = make_rig(tmp_path, "gc-kiosk")
    rig.donate(60)
    raw = tmp_path / "batch.json"
    raw.write_bytes(batch_body(rig, 1, rig.ledger.size))
    out = subprocess.run([sys.executable, "-c", _CHILD, str(raw), rig.kiosk_id], capture_output=True, text=True,
                         timeout=120, check=True)
    got = json.loads(out.stdout)
    assert got["entries"] == 30 * rig.ledger.size
    assert got["threshold"][0] == got["young"]
    # CPython's default threshold (700) collects the young generation many times while the batches wait, and
    # moves them on to the older generations; the serving portal's does not collect at all for these.
    assert len(got["before"]) >= 5, got["before"]
    assert got["after"] == [], got["after"]

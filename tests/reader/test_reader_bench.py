from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_prints_one_json_line():
    out = subprocess.run([sys.executable, str(ROOT / "bench/reader.py"), "--n", "50"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    lines = out.strip().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    assert r["sim_tap_ms"]["p50"] > 0 and r["sim_tap_ms"]["p99"] >= r["sim_tap_ms"]["p50"]
    assert r["nfcpy_poll_ms"]["empty"]["p50"] > 0
    assert r["baseline_us"]["call_p50"] > 0 and r["ratios"]["sim_tap_p50_over_queue_handoff"] > 0

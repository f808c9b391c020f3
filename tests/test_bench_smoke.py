"""The performance benches of issue #16 run and print one valid JSON line in quick mode.

Benchmarks are not tests: nothing here looks at a figure, only at the shape of the answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _one_json_line(args: list[str], timeout: float = 600) -> dict:
    res = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                         check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1, res.stdout[-2000:]
    return json.loads(lines[0])


def test_cpu_budget_bench_prints_one_json_line():
    out = _one_json_line(["bench/cpu_budget.py", "--quick", "--budgets", "100,25", "--no-full-hd"])
    assert out["bench"] == "cpu_budget"
    if "skipped" in out:  # no writable cgroup cpu controller on this machine: the bench says why
        assert "cgroup" in out["skipped"]
        return
    assert out["errors"] == []
    for b in ("100", "25"):
        assert out["tap_p99_ms"][b] > 0 and out["tap_p50_ms"][b] <= out["tap_p99_ms"][b]
        assert out["play720_dropped_pct"][b] is not None


def test_coldstart_bench_prints_one_json_line():
    out = _one_json_line(["bench/coldstart.py", "--quick", "--budgets", "100"])
    assert out["bench"] == "coldstart" and out["errors"] == []
    assert 0 < out["ready_s"]["100"] and out["baseline_python_s"]["100"] > 0
    assert out["first_frame_s"]["100"] is not None

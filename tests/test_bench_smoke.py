"""The performance benches of issue #16 run and print one valid JSON line in quick mode.

Benchmarks are not tests: nothing here looks at a figure, only at the shape of the answer.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _one_json_line(args: list[str], timeout: float = 600, env: dict[str, str] | None = None) -> dict:
    res = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                         check=False, env={**(os.environ if env is None else env), "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1, res.stdout[-2000:]
    return json.loads(lines[0])


def _bench(name: str) -> ModuleType:
    """``bench/<name>.py`` imported as the bench scripts import each other (bench/ first on ``sys.path``), with
    ``sys.path`` given back as it was: the scripts' plain names (``ledger``, ``sync``, ``report``) stay out of
    every other test's imports."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "bench"))


@pytest.mark.slow
def test_cpu_budget_bench_prints_one_json_line():
    # Two quotas, the smaller half a core: at a quarter of one, with the rest of the suite on both cores, the kiosk's
    # reader could be starved past its taps (a CI run measured no tap at all once). How fast it is at 25 % is the
    # bench's to say (docs/performance.md), not a test's.
    out = _one_json_line(["bench/cpu_budget.py", "--quick", "--budgets", "100,50", "--no-full-hd"])
    assert out["bench"] == "cpu_budget"
    if "skipped" in out:  # no writable cgroup cpu controller on this machine: the bench says why
        assert "cgroup" in out["skipped"]
        return
    assert out["errors"] == []
    for b in ("100", "50"):
        assert out["tap_p99_ms"][b] > 0 and out["tap_p50_ms"][b] <= out["tap_p99_ms"][b]
        # Reads missed over --quick's 20 taps: a tap missed is tapped again, and errs at its third miss.
        assert 0 <= out["tap_missed"][b] < 20
        assert out["play720_dropped_pct"][b] is not None


def test_ledger_bench_prints_one_json_line():
    out = _one_json_line(["bench/ledger.py", "--appends", "60", "--rounds", "1", "--verify-entries", "300"])
    assert out["bench"] == "ledger" and out["appends_per_round"] == 60 and out["verify_entries"] >= 300
    for key in ("append_ratio", "verify_ratio", "verify_ratio_single", "append_ratio_kiosk", "verify_ratio_kiosk"):
        assert out[key] > 0, key


def test_ledger_bench_writes_the_kiosks_own_idempotency_keys(tmp_path):
    """The ledger's rows carry keys as the kiosk makes them (uuid4().hex), all different, and so do the raw rows
    they are compared with: a made-up key takes another path through the ledger's key map and its index."""
    import re
    import sqlite3

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.ledger import Pepper

    bench_ledger = _bench("ledger")
    bench_ledger.ledger_round(tmp_path / "l.db", 20, Ed25519PrivateKey.generate(), Pepper({1: os.urandom(32)}))
    bench_ledger.raw_round(tmp_path / "r.db", 20, b"x" * 300)
    for name, kind, n in (("l.db", "donation_intent", 10), ("r.db", "donation", 20)):  # 10 gifts of 2 appends
        con = sqlite3.connect(tmp_path / name)
        keys = [r[0] for r in con.execute("SELECT idem FROM entries WHERE type = ?", (kind,))]
        con.close()
        assert len(keys) == n and len(set(keys)) == n, name
        assert all(re.fullmatch(r"[0-9a-f]{32}", k) for k in keys), (name, keys[:3])


def test_the_sync_benchs_baselines_run_under_the_serving_portals_collector():
    """bench/sync.py's bare insert (and bench/ingest_ir.py's counts) run with the collector set as `kiosk-portal
    serve` sets it: what is alive frozen (here, every simulated kiosk's ledger), the young threshold raised; the
    process's own settings come back afterwards, also when the baseline fails."""
    import gc

    import pytest

    from server_sync.app import GC_YOUNG

    bench_sync = _bench("sync")
    before = gc.get_threshold(), gc.get_freeze_count()
    held = [[i] for i in range(2000)]  # alive when the baseline starts, as the simulated kiosks are
    with bench_sync.collector_as_served():
        assert gc.get_threshold()[0] == GC_YOUNG
        assert gc.get_freeze_count() >= len(held)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
    with pytest.raises(RuntimeError), bench_sync.collector_as_served():
        raise RuntimeError("the insert failed")
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_coldstart_bench_prints_one_json_line():
    out = _one_json_line(["bench/coldstart.py", "--quick", "--budgets", "100"])
    assert out["bench"] == "coldstart" and out["errors"] == []
    assert 0 < out["ready_s"]["100"] and out["baseline_python_s"]["100"] > 0
    assert out["first_frame_s"]["100"] is not None


@pytest.mark.slow
def test_coldstart_bench_counts_instructions_to_ready():
    """One timed start at full speed of a kiosk whose ledger holds 30 entries, then one under callgrind (CI
    installs valgrind); without valgrind the line says why the count is missing."""
    out = _one_json_line(["bench/coldstart.py", "--rounds", "1", "--budgets", "100", "--ledger-entries", "30",
                          "--snapshot-lag", "10"])
    assert out["bench"] == "coldstart" and out["errors"] == []
    assert 30 <= out["ledger_entries"] <= 33  # filled a gift (three entries) at a time
    assert 0 < out["snapshot_at"] <= out["ledger_entries"] - 8  # the kiosk opened with entries to replay
    if shutil.which("valgrind") is None:
        assert "valgrind" in out["instructions_skipped"]
        return
    # kiosk run to READY=1 imports and starts far more than an empty interpreter does.
    assert out["ready_ir"] > 3 * out["baseline_python_ir"] > 0
    assert out["ratio_ready_ir"] == round(out["ready_ir"] / out["baseline_python_ir"], 2)


def test_sync_bench_prints_one_json_line():
    """A small catch-up, ingest and gift-sync run against a real portal process, on SQLite only (the bench drops
    and recreates the schema of the database it is given, so it is not given the tests' PostgreSQL)."""
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_TEST_PG_URL"}
    out = _one_json_line(["bench/sync.py", "--catchup-entries", "30", "--kiosks", "2", "--entries-per-kiosk", "20",
                          "--gift-kiosks", "2", "--gifts", "3"], env=env)
    assert out["catchup_s"] > 0 and out["ingest_eps"] > 0 and out["bare_insert_eps"] > 0
    assert out["ingest_ratio"] == round(out["ingest_eps"] / out["bare_insert_eps"], 3)
    assert out["gift_sync_kiosks"] == 2 and out["gift_syncs"] == 2 * 4  # the first upload and one a gift
    assert out["gift_sync_cpu_ms"] > 0 and out["bare_gift_cpu_ms"] > 0
    assert "ingest_ratio_pg" not in out


@pytest.mark.slow
def test_fleet_bench_prints_one_json_line():
    """On PostgreSQL ($KIOSK_TEST_PG_URL) a 20-kiosk, 10 s soak on two workers; without it the bench says why."""
    out = _one_json_line(["bench/fleet.py", "--quick"])
    assert out["bench"] == "fleet"
    if "skipped" in out:
        assert "PostgreSQL" in out["skipped"]
        return
    assert out["kiosks"] == 20 and out["workers"] == 2 and out["requests"] > 0
    assert out["batch_ack_p50_ms"] is not None and isinstance(out["exact"], bool)


def test_report_makes_the_table_and_plots_from_json_lines(tmp_path):
    """bench/report.py on lines shaped as the benches print them (the figures here are made up)."""
    lines = [
        {"catchup_s": 2.5, "ingest_eps": 6000, "bare_insert_eps": 40000, "ingest_ratio": 0.15, "batch": 250},
        {"catchup_s": 2.7, "ingest_eps": 5000, "bare_insert_eps": 30000, "ingest_ratio": 0.17, "batch": 250,
         "gift_sync_cpu_ms": 4.0, "bare_gift_cpu_ms": 0.2, "gift_sync_cpu_ratio": 0.05},
        # Another batch size and a short catch-up: for the plot only, not the table.
        {"catchup_s": 0.3, "catchup_entries": 1000, "ingest_eps": 3000, "bare_insert_eps": 30000,
         "ingest_ratio": 0.1, "batch": 100},
        {"bench": "cpu_budget", "size": "1280x720", "tap_p50_ms": {"100": 10, "25": 40},
         "tap_p99_ms": {"100": 20, "25": 90}, "tap_baseline_ledger_p99_ms": {"100": 2, "25": 8},
         "play720_dropped_pct": {"100": 0, "25": 0.5}, "tap_1920x1080_full_p99_ms": 30},
        {"bench": "coldstart", "ready_s": {"100": 1.0, "25": 1.54}, "first_frame_s": {"100": 1.1, "25": 2.9},
         "baseline_python_s": {"100": 0.04, "25": 0.13}, "ready_ir": 1_038_524_128, "baseline_python_ir": 88_625_068},
        # Kiosks whose ledger has history: rows of their own, never mixed into a new kiosk's.
        {"bench": "coldstart", "ready_s": {"100": 0.3, "25": 1.3}, "baseline_python_s": {"100": 0.04, "25": 0.2},
         "ledger_entries": 10_002, "snapshot_at": 9_501, "ready_ir": 1_190_000_000, "baseline_python_ir": 90_000_000},
        {"bench": "coldstart", "ready_s": {"100": 0.3, "25": 1.7}, "baseline_python_s": {"100": 0.04, "25": 0.2},
         "ledger_entries": 10_002, "snapshot_at": 9_504, "ready_ir": 1_200_000_000, "baseline_python_ir": 90_000_000},
        {"bench": "coldstart", "ready_s": {"100": 0.6, "25": 2.5}, "baseline_python_s": {"100": 0.04, "25": 0.2},
         "ledger_entries": 10_002, "ready_ir": 2_683_000_000, "baseline_python_ir": 90_000_000},
        {"bench": "fleet", "kiosks": 200, "workers": 2, "requests": 5000, "errors": 0, "exact": True,
         "batch_ack_p50_ms": 40, "batch_ack_p99_ms": 200, "batch_ack_quantiles_ms": list(range(1, 22))},
        {"bench": "fleet", "skipped": "needs PostgreSQL"},
    ]
    src = tmp_path / "runs.jsonl"
    src.write_text("not json\n" + "\n".join(json.dumps(x) for x in lines) + "\n")
    doc = tmp_path / "perf.md"
    doc.write_text("# Performance\n\n<!-- bench-table -->\nSTALE-TABLE\n<!-- /bench-table -->\n\nafter\n")
    res = subprocess.run([sys.executable, "bench/report.py", str(src), "--plots", str(tmp_path / "plots"),
                          "--update", str(doc)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    text = doc.read_text()
    assert "STALE-TABLE" not in text and text.endswith("<!-- /bench-table -->\n\nafter\n")
    assert "| sync (2) | ingest, entries/s, SQLite | 5,500 | 35,000 bare insert | 0.16 | ratio ≥ 0.5 |" in text
    assert "| sync (2) | 10,000-entry catch-up, SQLite | 2.6 s |" in text
    assert ("| sync (1) | portal CPU per upload of one gift (3 entries), SQLite | 4 ms | 0.2 ms bare insert of its "
            "rows | 0.05 |  |") in text
    assert "one gift (3 entries), PostgreSQL" not in text  # no such figure in the lines
    assert "| start → READY=1 at 25 % | 1.54 s |" in text  # not "1.5 s", which would read as the aim met
    assert "| start → READY=1, instructions | 1,038,524,128 | 88,625,068 `python -c pass` | 11.7 |" in text
    assert ("| coldstart (2) | start → READY=1 at 25 %, 10,000-entry ledger, state snapshot 500 entries behind | "
            "1.5 s | 0.2 s `python -c pass` | 7.5 | ≤ 1.5 s at 25 % |") in text
    assert ("| coldstart (1) | start → READY=1, instructions, 10,000-entry ledger, no state snapshot | 2,683,000,000 | "
            "90,000,000 `python -c pass` | 29.8 |") in text
    assert "| fleet (1: 200 kiosks, 2 workers) | portal totals = sum of ledgers | yes |" in text
    made = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert made == ["coldstart.png", "fleet_batch_ack_cdf.png", "ingest_vs_batch.png", "tap_vs_cpu.png"]
    assert all((tmp_path / "plots" / m).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for m in made)


def test_receipt_bench_prints_one_json_line():
    """A 2,000-entry kiosk (the bench's default is 200,000); PostgreSQL figures too when $KIOSK_TEST_PG_URL is set."""
    out = _one_json_line(["bench/receipt.py", "--entries", "2000", "--lookups", "40"])
    assert out["bench"] == "receipt" and out["entries"] == 2000 and out["checkpoint_size"] >= 1999
    assert 0 < out["pk_select_p50_ms"] and 0 < out["receipt_p50_ms"] <= out["receipt_p99_ms"]
    assert out["ratio_p50"] > 0 and out["http_p50_ms"] > 0 and out["full_tree_p50_ms"] > 0
    if os.environ.get("KIOSK_TEST_PG_URL"):
        assert out["receipt_p50_ms_pg"] > 0 and out["pk_select_p50_ms_pg"] > 0


def test_moviemaker_bench_prints_one_json_line():
    out = _one_json_line(["bench/moviemaker.py", "--quick"])
    assert out["bench"] == "moviemaker" and out["size"] == "320x180" and out["photos"] == 6
    assert out["frames"] == 600 and out["movie_s"] == 20.0 and out["kiosk_format"] is True
    assert out["render_s"] > 0 and out["bare_encode_s"] > 0 and out["ratio"] > 0


@pytest.mark.slow
def test_ingest_ir_bench_prints_one_json_line():
    out = _one_json_line(["bench/ingest_ir.py", "--kiosks", "2"])
    assert out["bench"] == "ingest_ir"
    if "skipped" in out:  # no valgrind on this machine: the bench says so
        assert "valgrind" in out["skipped"]
        return
    assert out["entries"] > 0 and out["ingest_ir_per_entry"] > out["bare_ir_per_entry"] > 0
    assert 0 < out["ir_ratio"] < 1


def test_workers_bench_prints_one_json_line():
    """Gift syncs after a short history, to one worker and to two taking turns, on SQLite only (the bench drops
    and recreates the schema of the database it is given)."""
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_TEST_PG_URL"}
    out = _one_json_line(["bench/workers.py", "--kiosks", "1", "--history", "300", "--gifts", "4"], env=env)
    assert (out["bench"], out["kiosks"], out["history"], out["gifts"]) == ("workers", 1, 300, 4)
    assert out["one_worker_ms"] > 0 and out["two_workers_ms"] > 0 and out["cold_worker_ms"] > 0
    assert out["start_from_state_ms"] > 0 and out["start_from_first_ms"] > 0 and out["save_state_ms"] > 0
    assert out["ratio"] == round(out["one_worker_ms"] / out["two_workers_ms"], 3)
    assert "ratio_pg" not in out
    report = _bench("report")

    table = report.table({"workers": [out]})
    assert "two workers taking turns, SQLite" in table and "PostgreSQL" not in table  # no _pg figures: no rows


def test_reconcile_bench_prints_one_json_line():
    """A month's reconciliation after a short history and after that month alone, on SQLite only (the bench drops
    and recreates the schema of the database it is given); it checks itself that both hold every kiosk-day."""
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_TEST_PG_URL"}
    out = _one_json_line(["bench/reconcile.py", "--kiosks", "2", "--days", "45", "--gifts", "2", "--calls", "2"],
                         env=env)
    assert (out["bench"], out["kiosks"], out["days"], out["gifts_a_day"]) == ("reconcile", 2, 45, 2)
    assert out["entries"] > out["base_entries"] > 0
    assert out["month_ms"] > 0 and out["month_ms_base"] > 0 and out["csv_ms"] > 0 and out["day_ms"] > 0
    assert out["ratio"] == round(out["month_ms_base"] / out["month_ms"], 3) and "ratio_pg" not in out
    report = _bench("report")

    table = report.table({"reconcile": [out]})
    assert "reconciliation month" in table and "PostgreSQL" not in table


def test_exports_bench_prints_one_json_line():
    """The staff donations CSV of a few thousand bare rows, streamed, on SQLite only (the bench drops and
    recreates the schema of the database it is given); it checks itself that every row is read."""
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_TEST_PG_URL"}
    out = _one_json_line(["bench/exports.py", "--donations", "5000", "--runs", "1"], env=env)
    assert (out["bench"], out["donations"], out["streamed"]) == ("exports", 5000, True)
    assert out["stream_s"] > 0 and out["bare_fetch_s"] > 0 and out["text_mb"] > 0 and out["stream_peak_mb"] > 0
    assert out["memory_ratio"] == round(out["stream_peak_mb"] / out["text_mb"], 3) and "time_ratio_pg" not in out
    report = _bench("report")

    assert out["report_s"] > 0 and out["report_months"] == 13 and out["report_peak_mb"] >= 0
    assert out["report_ratio"] == round(out["bare_fetch_s"] / out["report_s"], 3)
    table = report.table({"exports": [out]})
    assert "staff donations CSV, peak memory while streamed, SQLite" in table and "staff points report" in table


def test_closeout_bench_prints_one_json_line():
    """The kiosk's day reports and rare-kind reads on a ledger of a few days and on one of a day."""
    out = _one_json_line(["bench/closeout.py", "--days", "5", "--gifts", "3", "--calls", "2"])
    assert (out["bench"], out["days"], out["gifts_a_day"]) == ("closeout", 5, 3)
    assert out["entries"] > out["entries_base"] > 0
    for key in ("x", "z", "open", "config", "pool", "config_cold", "x_cold", "first_proof", "export"):
        assert out[f"{key}_ms"] > 0 and out[f"{key}_ms_base"] > 0
        assert out[f"{key}_ratio"] == round(out[f"{key}_ms_base"] / out[f"{key}_ms"], 3)
    assert out["state_mb"] > out["state_mb_base"] > 0
    assert 0 <= out["proof_mb"] < 0.01 and 0 <= out["proof_mb_base"] < 0.01  # a compact range, not every hash
    assert out["export_peak_mb"] > 0
    report = _bench("report")

    assert "kiosk: the menu's X report of today" in report.table({"closeout": [out]})


def test_report_takes_the_batch_size_most_lines_have(tmp_path):
    """Lines of the bench's default batch (500 since 2026-12-03d) make the table; a few runs at another batch
    size, for the plot, are not mixed into its medians."""
    lines = [{"catchup_s": 1.0, "ingest_eps": eps, "bare_insert_eps": 40000, "ingest_ratio": eps / 40000,
              "batch": 500} for eps in (10000, 12000, 14000)]
    lines += [{"catchup_s": 1.0, "ingest_eps": 1000, "bare_insert_eps": 40000, "ingest_ratio": 0.025, "batch": 100}
              for _ in range(2)]
    src = tmp_path / "runs.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    doc = tmp_path / "perf.md"
    doc.write_text("<!-- bench-table -->\n<!-- /bench-table -->\n")
    res = subprocess.run([sys.executable, "bench/report.py", str(src), "--update", str(doc)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    row = "| sync (3) | ingest, entries/s, SQLite | 12,000 | 40,000 bare insert | 0.3 | ratio ≥ 0.5 |"
    assert row in doc.read_text()


def test_report_gives_the_ledgers_own_time_an_append_beside_the_ratio(tmp_path):
    """append_ratio follows the disk (the same code gives a lower ratio where the raw commit is faster); the
    time an append takes beyond the raw insert and commit is the ledger's own, and the table gives it too."""
    lines = [{"bench": "ledger", "append_per_s": a, "raw_sqlite_commit_per_s": r, "append_ratio": round(a / r, 3),
              "verify_ratio": 1.0} for a, r in ((2500, 5000), (4000, 10000), (2000, 2500))]
    src = tmp_path / "runs.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    res = subprocess.run([sys.executable, "bench/report.py", str(src)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    # Beyond the raw commit: 400 - 200, 250 - 100 and 500 - 400 µs; the median of each column.
    assert "| ledger (3) | an append beyond the raw insert and commit | 150 µs | 200 µs the raw insert and commit" \
        in res.stdout, res.stdout
    assert "| ledger (3) | append ratio | 0.5 |" in res.stdout, res.stdout

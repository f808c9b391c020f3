"""Tables and plots from the benches' JSON lines, for docs/performance.md.

    python bench/report.py RESULTS.jsonl [MORE.jsonl …] [--plots docs/perf] [--update docs/performance.md]

Input: the lines the benches print (bench/ledger.py, reader.py, player.py, tap.py, sync.py,
cpu_budget.py, coldstart.py, fleet.py, moviemaker.py, workers.py, reconcile.py,
exports.py, closeout.py), any number of runs each, in any order;
lines that are not JSON objects are ignored. Repeated runs of a bench are summarised by their median.

Output: a Markdown table of every figure with its baseline and ratio (printed, or written between
the ``<!-- bench-table -->`` markers of ``--update``), and PNG plots with ``--plots``:

- ``tap_vs_cpu.png``: tap → thank-you p50/p99 against the CPU budget (cpu_budget.py);
- ``ingest_vs_batch.png``: portal ingest entries/s and the bare insert against batch size (sync.py
  runs with different ``--batch``);
- ``fleet_batch_ack_cdf.png``: the distribution of batch acknowledgement latency (fleet.py);
- ``coldstart.png``: time to READY=1 and to the first frame, per CPU budget (coldstart.py).

Needs matplotlib (``pip install -e '.[bench]'``) only for ``--plots``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench-table -->", "<!-- /bench-table -->"


def kind_of(d: dict[str, Any]) -> str | None:
    if "bench" in d:
        return str(d["bench"])
    if "ingest_ratio" in d or "catchup_s" in d:
        return "sync"
    if "append_ratio" in d or "verify_ratio" in d:
        return "ledger"
    return None


def load(paths: list[Path]) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in paths:
        for line in p.read_text("utf-8").splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                d = json.loads(line)
            except ValueError:
                continue
            k = kind_of(d) if isinstance(d, dict) else None
            if k and "skipped" not in d:
                runs[k].append(d)
    return runs


def med(runs: list[dict[str, Any]], *path: str) -> float | None:
    vals = []
    for r in runs:
        v: Any = r
        for key in path:
            v = v.get(key) if isinstance(v, dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            vals.append(float(v))
    return statistics.median(vals) if vals else None


def _by_history(runs: list[dict[str, Any]]) -> dict[tuple[int, int | None], list[dict[str, Any]]]:
    """coldstart lines of kiosks with history, by (entries to the nearest 1,000, how far behind the end the
    state snapshot stood, to the nearest 100; None: no snapshot)."""
    out: dict[tuple[int, int | None], list[dict[str, Any]]] = {}
    for r in runs:
        if entries := r.get("ledger_entries"):
            at = r.get("snapshot_at")
            behind = None if at is None else round((entries - at) / 100) * 100
            out.setdefault((round(entries, -3), behind), []).append(r)
    return out


def fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "–"
    # Three significant digits below 100: a cold start of 1.54 s against an aim of 1.5 s must not read "1.5 s".
    text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return text + unit


def rows(runs: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, str, str, str, str]]:
    """(bench, figure, value, baseline, ratio, aim) for every figure found."""
    out: list[tuple[str, str, str, str, str, str]] = []

    def add(bench: str, figure: str, value: float | None, base: float | None = None, base_label: str = "",
            aim: str = "", unit: str = "", ratio: float | None = None) -> None:
        if value is None:
            return
        if ratio is None and base:
            ratio = value / base
        out.append((bench, figure, fmt(value, unit), (f"{fmt(base, unit)} {base_label}".strip() if base is not None
                                                      else "–"), fmt(ratio) if ratio is not None else "–", aim))

    n = {k: len(v) for k, v in runs.items()}
    if s_all := runs.get("sync"):
        # The table takes the batch size most lines have (a round's runs use the bench's default: 250 until
        # 2026-12-03d, 500 since), and the 10,000-entry catch-up; other sizes feed the plot.
        sizes = Counter(r.get("batch", 250) for r in s_all)
        main = max(sizes, key=lambda b: (sizes[b], b))
        s = [r for r in s_all if r.get("batch", 250) == main]
        c10k = [r for r in s_all if r.get("catchup_entries", 10_000) >= 10_000]
        add(f"sync ({len(s)})", "ingest, entries/s, SQLite", med(s, "ingest_eps"), med(s, "bare_insert_eps"),
            "bare insert", "ratio ≥ 0.5", ratio=med(s, "ingest_ratio"))
        add(f"sync ({len(s)})", "ingest, entries/s, PostgreSQL", med(s, "ingest_eps_pg"),
            med(s, "bare_insert_eps_pg"), "bare insert", "ratio ≥ 0.5", ratio=med(s, "ingest_ratio_pg"))
        add(f"sync ({len(c10k)})", "10,000-entry catch-up, SQLite", med(c10k, "catchup_s"), aim="≤ 3 s", unit=" s")
        add(f"sync ({len(c10k)})", "10,000-entry catch-up, PostgreSQL", med(c10k, "catchup_s_pg"), aim="≤ 3 s",
            unit=" s")
        g = [r for r in s_all if "gift_sync_cpu_ms" in r]
        for backend, suffix in (("SQLite", ""), ("PostgreSQL", "_pg")):
            add(f"sync ({len(g)})", f"portal CPU per upload of one gift (3 entries), {backend}",
                med(g, f"gift_sync_cpu_ms{suffix}"), med(g, f"bare_gift_cpu_ms{suffix}"), "bare insert of its rows",
                unit=" ms", ratio=med(g, f"gift_sync_cpu_ratio{suffix}"))
    if w := runs.get("workers"):
        label = f"workers ({n['workers']}: {int(med(w, 'history') or 0):,}-entry history)"
        for backend, suffix in (("SQLite", ""), ("PostgreSQL", "_pg")):
            add(label, f"portal CPU per gift sync, two workers taking turns, {backend}",
                med(w, f"two_workers_ms{suffix}"), med(w, f"one_worker_ms{suffix}"), "one worker", unit=" ms",
                ratio=med(w, f"ratio{suffix}"))
            add(label, f"a worker's first sync of a kiosk, {backend}", med(w, f"cold_worker_ms{suffix}"), unit=" ms")
            add(label, f"a worker's first verifier of a kiosk, from its saved state, {backend}",
                med(w, f"start_from_state_ms{suffix}"), med(w, f"start_from_first_ms{suffix}"),
                "every entry replayed", unit=" ms")
            add(label, f"one save of a kiosk's verifier state, {backend}", med(w, f"save_state_ms{suffix}"), unit=" ms")
    if r := runs.get("reconcile"):
        label = (f"reconcile ({n['reconcile']}: {int(med(r, 'kiosks') or 0)} kiosks, "
                 f"{int(med(r, 'days') or 0)} days)")
        for backend, suffix in (("SQLite", ""), ("PostgreSQL", "_pg")):
            add(label, f"staff reconciliation month after the history, {backend}", med(r, f"month_ms{suffix}"),
                med(r, f"month_ms_base{suffix}"), "that month alone", unit=" ms", ratio=med(r, f"ratio{suffix}"))
            add(label, f"the month's CSV after the history, {backend}", med(r, f"csv_ms{suffix}"), unit=" ms")
    if e := runs.get("exports"):
        label = f"exports ({n['exports']}: {int(med(e, 'donations') or 0):,} donations)"
        for backend, suffix in (("SQLite", ""), ("PostgreSQL", "_pg")):
            add(label, f"staff donations CSV, peak memory while streamed, {backend}", med(e, f"stream_peak_mb{suffix}"),
                med(e, f"text_mb{suffix}"), "the CSV text", unit=" MB", ratio=med(e, f"memory_ratio{suffix}"))
            add(label, f"staff donations CSV, all of it, {backend}", med(e, f"stream_s{suffix}"),
                med(e, f"bare_fetch_s{suffix}"), "bare fetch of its rows", unit=" s",
                ratio=med(e, f"time_ratio{suffix}"))
            add(label, f"staff points report (a year of donations), {backend}", med(e, f"report_s{suffix}"),
                med(e, f"bare_fetch_s{suffix}"), "bare fetch of the donations", unit=" s",
                ratio=med(e, f"report_ratio{suffix}"))
            add(label, f"staff points report, peak memory, {backend}", med(e, f"report_peak_mb{suffix}"), unit=" MB")
    if k := runs.get("closeout"):
        label = (f"closeout ({n['closeout']}: {int(med(k, 'days') or 0)} days, "
                 f"{int(med(k, 'entries') or 0):,} entries)")
        for key, what in (("x", "the menu's X report of today"), ("z", "the menu's Z report of today"),
                          ("open", "the nightly close's forgotten days (31)"),
                          ("config", "the newest config change, read at a start (file in the page cache)"),
                          ("pool", "a points pool's balance, during an exchange"),
                          ("config_cold", "the newest config change, at a start after a power cut (pages dropped)"),
                          ("x_cold", "the X report, its ledger's pages dropped"),
                          ("first_proof", "a restarted kiosk's first consistency proof"),
                          ("export", "the whole ledger's export (USB stick, `kiosk ledger export`)")):
            add(label, f"kiosk: {what}", med(k, f"{key}_ms"), med(k, f"{key}_ms_base"), "a one-day ledger",
                unit=" ms", ratio=med(k, f"{key}_ratio"))
        add(label, "kiosk: the export's peak memory", med(k, "export_peak_mb"), med(k, "export_peak_mb_base"),
            "a one-day ledger", unit=" MB")
        add(label, "kiosk: memory an open ledger's state holds", med(k, "state_mb"), med(k, "state_mb_base"),
            "a one-day ledger", unit=" MB")
        if med(k, "proof_mb") is not None:
            add(label, "kiosk: memory the uploader keeps for its proofs", med(k, "proof_mb"),
                med(k, "proof_mb_base"), "a one-day ledger", unit=" MB")
        else:  # lines of 2026-12-05 and before: it kept every leaf hash
            add(label, "kiosk: memory the uploader's leaf hashes hold", med(k, "leaves_mb"), med(k, "leaves_mb_base"),
                "a one-day ledger", unit=" MB")
    if c := runs.get("cpu_budget"):
        for b in ("100", "50", "25"):
            add(f"cpu_budget ({n['cpu_budget']})", f"tap p99 at {b} % of a core, 1280×720",
                med(c, "tap_p99_ms", b), med(c, "tap_baseline_ledger_p99_ms", b), "bare ledger append",
                "≤ 100 ms at 25 %" if b == "25" else "", " ms")
            add(f"cpu_budget ({n['cpu_budget']})", f"tap p50 at {b} % of a core, 1280×720",
                med(c, "tap_p50_ms", b), unit=" ms")
            add(f"cpu_budget ({n['cpu_budget']})", f"720p30 playback dropped at {b} %",
                med(c, "play720_dropped_pct", b), aim="≤ 1 % at 25 %" if b == "25" else "", unit=" %")
        add(f"cpu_budget ({n['cpu_budget']})", "tap p99 at full speed, 1920×1080",
            med(c, "tap_1920x1080_full_p99_ms"), aim="≤ 25 ms", unit=" ms")
    if c_all := runs.get("coldstart"):
        # The table's rows are a new kiosk's; a kiosk whose ledger has history (--ledger-entries) gets its own.
        c = [r for r in c_all if not r.get("ledger_entries")]
        n["coldstart"] = len(c)
        for b in ("100", "25"):
            add(f"coldstart ({n['coldstart']})", f"start → READY=1 at {b} %", med(c, "ready_s", b),
                med(c, "baseline_python_s", b), "`python -c pass`", "≤ 1.5 s at 25 %" if b == "25" else "", " s")
            add(f"coldstart ({n['coldstart']})", f"start → first frame at {b} %", med(c, "first_frame_s", b),
                unit=" s")
        # Instructions (callgrind): the same count whatever the load, for comparing trees.
        add(f"coldstart ({n['coldstart']})", "start → READY=1, instructions", med(c, "ready_ir"),
            med(c, "baseline_python_ir"), "`python -c pass`")
        for (entries, behind), g in sorted(_by_history(c_all).items(),
                                           key=lambda kv: (kv[0][0], kv[0][1] is not None, kv[0][1] or 0)):
            what = f"{entries:,}-entry ledger, " + ("no state snapshot" if behind is None else
                                                    f"state snapshot {behind} entries behind")
            add(f"coldstart ({len(g)})", f"start → READY=1 at 25 %, {what}", med(g, "ready_s", "25"),
                med(g, "baseline_python_s", "25"), "`python -c pass`", "≤ 1.5 s at 25 %", " s")
            add(f"coldstart ({len(g)})", f"start → READY=1, instructions, {what}", med(g, "ready_ir"),
                med(g, "baseline_python_ir"), "`python -c pass`")
    if f := runs.get("fleet"):
        label = f"fleet ({n['fleet']}: {int(med(f, 'kiosks') or 0)} kiosks, {int(med(f, 'workers') or 0)} workers)"
        add(label, "batch ack p50", med(f, "batch_ack_p50_ms"), unit=" ms")
        add(label, "batch ack p99", med(f, "batch_ack_p99_ms"), aim="≤ 250 ms", unit=" ms")
        add(label, "requests", med(f, "requests"))
        add(label, "errors", med(f, "errors"), aim="0")
        out.append((label, "portal totals = sum of ledgers", "yes" if all(r.get("exact") for r in f) else "NO",
                    "–", "–", "exact"))
    if r := runs.get("receipt"):
        label = f"receipt ({n['receipt']}: {int(med(r, 'entries') or 0):,} entries)"
        for db, sfx in (("SQLite", ""), ("PostgreSQL", "_pg")):
            add(label, f"receipt lookup p50, {db}", med(r, f"receipt_p50_ms{sfx}"), med(r, f"pk_select_p50_ms{sfx}"),
                "primary-key select", unit=" ms")
            add(label, f"receipt lookup p99, {db}", med(r, f"receipt_p99_ms{sfx}"), med(r, f"pk_select_p99_ms{sfx}"),
                "primary-key select", "≤ 20 ms", " ms")
            add(label, f"receipt lookup before the stored tree, {db}", med(r, f"full_tree_p50_ms{sfx}"), unit=" ms")
    if mv := runs.get("moviemaker"):
        sizes = sorted({str(r.get("size")) for r in mv})
        label = f"moviemaker ({n['moviemaker']}: {', '.join(sizes)})"
        add(label, f"render a {fmt(med(mv, 'movie_s'))} s movie from 6 photos", med(mv, "render_s"),
            med(mv, "bare_encode_s"), "bare PyAV encode of its frames", unit=" s")
        add(label, "of which composing the frames", med(mv, "compose_s"), unit=" s")
        add(label, "movie seconds per second of rendering", med(mv, "realtime_x"))
    if t := runs.get("tap"):
        add(f"tap ({n['tap']})", "tap p99 (full speed)", med(t, "p99_ms"), med(t, "baseline_ledger_p99_ms"),
            "bare ledger append", unit=" ms")
    if p := runs.get("player"):
        add(f"player ({n['player']})", "dropped frames, 720p playlist", med(p, "dropped"), aim="0")
        add(f"player ({n['player']})", "largest switch gap", med(p, "max_switch_gap_ms"),
            med(p, "frame_interval_ms"), "one frame", "< 1 frame", " ms")
        add(f"player ({n['player']})", "peak RSS", med(p, "peak_rss_mb"), aim="≤ 200 MB", unit=" MB")
        add(f"player ({n['player']})", "720p pipeline fps", med(p, "fps_720p"), med(p, "bare_fps_720p"), "bare PyAV")
    if lg := runs.get("ledger"):
        add(f"ledger ({n['ledger']})", "append ratio", med(lg, "append_ratio"), aim="≥ 0.7")
        # The ratio follows the disk as much as the ledger: the same code gives a lower ratio where the raw
        # commit is faster. The time an append takes beyond the raw insert and commit is the ledger's own.
        if both := [r for r in lg if r.get("append_per_s") and r.get("raw_sqlite_commit_per_s")]:
            raw_us = [1e6 / r["raw_sqlite_commit_per_s"] for r in both]
            beyond_us = [1e6 / r["append_per_s"] - u for r, u in zip(both, raw_us, strict=True)]
            add(f"ledger ({n['ledger']})", "an append beyond the raw insert and commit", statistics.median(beyond_us),
                statistics.median(raw_us), "the raw insert and commit", unit=" µs")
        add(f"ledger ({n['ledger']})", "verify ratio", med(lg, "verify_ratio"), aim="≥ 0.8")
    if rd := runs.get("reader"):
        add(f"reader ({n['reader']})", "simulated tap → card event p99", med(rd, "sim_tap_ms", "p99"), aim="< 5 ms",
            unit=" ms")
    return out


def table(runs: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["| bench (runs) | figure | median | baseline | ratio | aim |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows(runs)]
    return "\n".join(lines) + "\n"


def plots(runs: dict[str, list[dict[str, Any]]], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)

    if c := runs.get("cpu_budget"):
        budgets = sorted({int(b) for r in c for b in r.get("tap_p99_ms", {})}, reverse=True)
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for q, style in (("p50", "o-"), ("p99", "s-")):
            ax.plot(budgets, [med(c, f"tap_{q}_ms", str(b)) for b in budgets], style, label=f"tap → thank-you {q}")
        ax.plot(budgets, [med(c, "tap_baseline_ledger_p99_ms", str(b)) for b in budgets], "x--",
                label="bare ledger append p99")
        ax.axhline(100, color="grey", lw=0.8, ls=":", label="aim at 25 %: 100 ms")
        ax.set_xlabel("CPU budget, % of one core (10 ms period)")
        ax.set_ylabel("ms")
        ax.invert_xaxis()
        ax.set_title(f"Tap latency against CPU budget, {c[0].get('size', '')}")
        ax.legend(fontsize=8)
        save(fig, "tap_vs_cpu.png")
    if s := [r for r in runs.get("sync", []) if "batch" in r]:
        batches = sorted({r["batch"] for r in s})
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for key, label in (("ingest_eps", "ingest, SQLite"), ("bare_insert_eps", "bare insert, SQLite"),
                           ("ingest_eps_pg", "ingest, PostgreSQL"), ("bare_insert_eps_pg", "bare insert, PostgreSQL")):
            ys = [med([r for r in s if r["batch"] == b], key) for b in batches]
            if any(y is not None for y in ys):
                ax.plot(batches, ys, "o-" if key.startswith("ingest") else "x--", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("entries per batch")
        ax.set_ylabel("entries/s")
        ax.set_title("Portal ingest against batch size")
        ax.legend(fontsize=8)
        save(fig, "ingest_vs_batch.png")
    if f := [r for r in runs.get("fleet", []) if r.get("batch_ack_quantiles_ms")]:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        qs = [1] + list(range(5, 100, 5)) + [99]
        for r in f:
            ax.plot(r["batch_ack_quantiles_ms"], qs, ".-", label=f"{r['kiosks']} kiosks, {r['workers']} workers")
        ax.axvline(250, color="grey", lw=0.8, ls=":", label="aim: p99 ≤ 250 ms")
        ax.set_xlabel("batch acknowledgement latency, ms")
        ax.set_ylabel("percentile")
        ax.set_title("Fleet soak: batch acknowledgement latency")
        ax.legend(fontsize=8)
        save(fig, "fleet_batch_ack_cdf.png")
    if c := [r for r in runs.get("coldstart", []) if not r.get("ledger_entries")]:
        budgets = sorted({int(b) for r in c for b in r.get("ready_s", {})}, reverse=True)
        fig, ax = plt.subplots(figsize=(6, 3.6))
        xs = range(len(budgets))
        ax.bar([x - 0.2 for x in xs], [med(c, "ready_s", str(b)) or 0 for b in budgets], 0.4, label="READY=1")
        ax.bar([x + 0.2 for x in xs], [med(c, "first_frame_s", str(b)) or 0 for b in budgets], 0.4,
               label="first frame")
        ax.axhline(1.5, color="grey", lw=0.8, ls=":", label="aim at 25 %: 1.5 s")
        ax.set_xticks(list(xs), [f"{b} %" for b in budgets])
        ax.set_ylabel("s from process start")
        ax.set_title("Cold start of `kiosk run`")
        ax.legend(fontsize=8)
        save(fig, "coldstart.png")
    return made


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--plots", type=Path, help="write PNG plots into this directory")
    ap.add_argument("--update", type=Path, help="replace the table between the bench-table markers of this file")
    args = ap.parse_args()
    runs = load(args.results)
    if not runs:
        print("no bench results found in " + ", ".join(map(str, args.results)), file=sys.stderr)
        return 1
    md = table(runs)
    if args.update:
        doc = args.update.read_text("utf-8")
        if BEGIN not in doc or END not in doc:
            print(f"{args.update} has no {BEGIN} … {END} markers", file=sys.stderr)
            return 1
        head, _, rest = doc.partition(BEGIN)
        _, _, tail = rest.partition(END)
        args.update.write_text(f"{head}{BEGIN}\n{md}{END}{tail}", "utf-8")
    else:
        print(md, end="")
    if args.plots:
        for p in plots(runs, args.plots):
            print(f"wrote {p}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

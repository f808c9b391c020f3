"""Cold start of `kiosk run`: process start to READY=1 and to the first presented frame; one JSON line.

    python bench/coldstart.py [--budgets 100,25] [--rounds 5] [--size 1280x720] [--quick]

Each round starts the real ``kiosk run --config FILE`` (demo config: simulated reader and terminal,
generated 720p clips, SDL's dummy display) as a new process, with ``$NOTIFY_SOCKET`` pointing at a
datagram socket of ours, as systemd's would (``Type=notify``). Measured from just before the fork:

- ``ready_s``: to the ``READY=1`` datagram (the ledger is open, the service worker, the player and the
  reader are up: the kiosk takes a tap from here);
- ``first_frame_s``: to the first presented frame of the movie: the first ``STATUS=screen=…`` line with
  ``movie=on``, which the render loop sends right after it presented the first decoded picture (a kiosk
  whose status has no ``movie=`` field waited for that picture before READY=1: its first screen line);
- ``first_screen_s``: to the first ``STATUS=screen=…`` line at all: the first frame on the display (the
  still and the attract screen, the movie perhaps still loading: the lobby is no longer dark).

Then SIGTERM, and the next round. The same ledger and data directory are reused from round to round,
as after a watchdog restart (the first start, which builds the ledger and caches the bytecode, is not
counted). ``--ledger-entries N`` then fills the kiosk's ledger to N entries as ``kiosk run`` writes them
(intent, donation and checkpoint per gift: bench/sync.py's ``add_gifts``), so the starts open the
ledger of a kiosk that has been in use. Opening it replays the entries after its state snapshot
(docs/ledger.md, "Opening a ledger"): before every start the snapshot is put back ``--snapshot-lag``
entries before the end (default 499: the most a kiosk with ``snapshot_every = 500`` leaves behind when
its watchdog kills it; a clean stop writes a fresh one), or removed (``-1``: every entry is replayed,
as before the snapshot); ``snapshot_at`` says where it stood. Baseline, in the same run and quota:
``python -c pass`` (``baseline_python_s``), and the ratio ``ready_s`` / baseline. Budgets are shares
of one core through a cgroup CPU quota (bench/cpu_budget.py), in interleaved rounds, medians reported;
without a writable cgroup only 100 % is measured. Aim (issue #16): ready ≤ 1.5 s at 25 % of one core.

Wall-clock starts follow the load of a shared machine (±20 % minutes apart). So the bench also counts
instructions with valgrind's callgrind, which do not depend on the load (the same tree gives the same
count to about 0.3 %): ``ready_ir``, one start from process start to READY=1 (the kiosk's own
``sd_notify``, received by a thread of the process that then exits), and ``baseline_python_ir``,
``python -c pass``, both from the same cached bytecode; ``ratio_ready_ir`` is their ratio. Instructions
are not time (a cache miss counts as nothing): use them to compare trees. Without valgrind (Debian:
``apt-get install valgrind``), with ``--quick`` or ``--no-instructions`` they are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from cpu_budget import CpuQuota, cgroup_problem  # noqa: E402


def make_config(root: Path, size: tuple[int, int]) -> Path:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    from kiosk.app.demo import demo_config, prepare
    from kiosk.config import to_toml
    from kiosk.ledger.durable import write_atomic

    cfg = demo_config(root)
    cfg.player.display = "headless"
    prepare(cfg, size=size, clip_s=3.0)
    path = root / "kiosk.toml"
    write_atomic(path, to_toml(cfg))
    return path


def child_env(sock_dir: Path) -> dict[str, str]:
    """As an installed kiosk runs: from cached bytecode. ``pip install`` compiles it into site-packages; a
    development checkout may have PYTHONDONTWRITEBYTECODE set, and then every start would compile the
    project from source. The warm-up start writes the bytecode into a private prefix, never the tree."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(sock_dir / "pycache")
    env["PYTHONPATH"] = str(HERE.parent)
    return env


def fill_ledger(config: Path, entries: int, snapshot_lag: int) -> tuple[int, tuple | None]:
    """Append gifts to the ledger of ``config``'s kiosk until it holds at least ``entries``, with a state
    snapshot written ``snapshot_lag`` entries before the end (``-1``: none); its size, and the snapshot's row."""
    from sync import add_gifts

    from kiosk.config import load_config
    from kiosk.ledger import Pepper
    from kiosk.ops.local_files import open_ledger

    cfg = load_config(config)
    led = open_ledger(cfg, boot=False)
    pepper, projects = Pepper.load(cfg.pepper_path), [p.id for p in cfg.projects]
    try:
        if snapshot_lag >= 0:
            add_gifts(led, entries - snapshot_lag, pepper, projects)
            led.save_snapshot()
        add_gifts(led, entries, pepper, projects)
        with closing(sqlite3.connect(cfg.ledger_path)) as conn:
            row = conn.execute("SELECT format, size, state, signature FROM state_snapshot").fetchone()
        return led.size, row if snapshot_lag >= 0 else None
    finally:
        led.close(checkpoint=False)


def pin_snapshot(config: Path, row: tuple | None) -> None:
    """Put the ledger's state snapshot back as ``fill_ledger`` left it (``None``: none), before a start: the
    kiosk's clean stop wrote a fresh one, and a kiosk restarted by its watchdog did not stop cleanly."""
    from kiosk.config import load_config

    with closing(sqlite3.connect(load_config(config).ledger_path)) as conn, conn:
        conn.execute("DELETE FROM state_snapshot")
        if row is not None:
            conn.execute("INSERT INTO state_snapshot (id, format, size, state, signature) VALUES (1, ?, ?, ?, ?)", row)


def one_start(config: Path, quota: CpuQuota | None, sock_dir: Path, timeout: float = 60.0) -> dict:
    path = sock_dir / f"n{time.monotonic_ns()}.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(path))
    env = {**child_env(sock_dir), "NOTIFY_SOCKET": str(path), "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}

    def enter() -> None:
        if quota is not None:
            quota.procs.write_text(str(os.getpid()))

    out: dict = {}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "run", "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=enter)  # noqa: PLW1509
    try:
        deadline = t0 + timeout
        while "first_frame_s" not in out or "ready_s" not in out:
            left = deadline - time.perf_counter()
            if left <= 0 or proc.poll() is not None:
                out["error"] = "timeout" if left <= 0 else f"exited {proc.returncode}"
                break
            srv.settimeout(min(left, 0.5))
            try:
                msg = srv.recv(4096).decode()
            except TimeoutError:
                continue
            at = time.perf_counter() - t0
            for line in msg.splitlines():
                if line == "READY=1":
                    out.setdefault("ready_s", at)
                elif line.startswith("STATUS=screen=") and not line.startswith("STATUS=screen=starting"):
                    out.setdefault("first_screen_s", at)
                    if " movie=" not in line or " movie=on" in line:
                        out.setdefault("first_frame_s", at)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        srv.close()
        path.unlink(missing_ok=True)
    if "error" in out:
        out["error"] += ": " + err.decode(errors="replace")[-300:]
    return out


def bare_python(quota: CpuQuota | None, sock_dir: Path) -> float:
    def enter() -> None:
        if quota is not None:
            quota.procs.write_text(str(os.getpid()))

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, preexec_fn=enter, env=child_env(sock_dir))  # noqa: PLW1509
    return time.perf_counter() - t0


READY_EXIT = r"""
import os, socket, sys, threading
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
os.environ["NOTIFY_SOCKET"] = sys.argv[1]

def watch():
    while True:
        if "READY=1" in sock.recv(4096).decode().splitlines():
            os._exit(0)  # callgrind writes its counts at exit: process start to READY=1

threading.Thread(target=watch, daemon=True).start()
from kiosk.cli import main
sys.exit(main(["run", "--config", sys.argv[2]]))
"""
"""`kiosk run` in a process that exits when the kiosk's own READY=1 datagram reaches it."""


def callgrind_total(args: list[str], env: dict[str, str], out: Path, timeout: float = 900) -> int:
    """Instructions (callgrind's total) of ``python ARGS`` run to its exit."""
    res = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, *args],
                         env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0 or not out.exists():
        raise RuntimeError(f"callgrind run failed ({res.returncode}): {res.stderr[-500:]}")
    for line in out.read_text().splitlines():
        if line.startswith(("totals:", "summary:")) and int(line.split()[1]):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {out}")


def instructions(config: Path, sock_dir: Path) -> dict:
    """``ready_ir``, ``baseline_python_ir``, ``ratio_ready_ir`` (module text); after a warm start."""
    env = {**child_env(sock_dir), "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    env.pop("NOTIFY_SOCKET", None)
    ready = callgrind_total(["-c", READY_EXIT, str(sock_dir / "ir.sock"), str(config)], env, sock_dir / "cg.ready")
    bare = callgrind_total(["-c", "pass"], env, sock_dir / "cg.python")
    return {"ready_ir": ready, "baseline_python_ir": bare, "ratio_ready_ir": round(ready / bare, 2)}


def med(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", default="100,25")
    ap.add_argument("--period-us", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--quick", action="store_true", help="2 rounds (a smoke run), no instruction count")
    ap.add_argument("--ledger-entries", type=int, default=0,
                    help="fill the kiosk's ledger to this many entries before the timed starts (module text)")
    ap.add_argument("--snapshot-lag", type=int, default=499,
                    help="with --ledger-entries: the ledger's state snapshot stands this many entries before its "
                         "end at every start (-1: no snapshot; module text)")
    ap.add_argument("--no-instructions", action="store_true", help="skip the callgrind count (module text)")
    args = ap.parse_args()
    if args.quick:
        args.rounds = min(args.rounds, 2)
    budgets = [int(b) for b in args.budgets.split(",")]
    problem = cgroup_problem()
    if problem:
        budgets = [100]
    w, h = (int(x) for x in args.size.split("x"))
    quotas = {} if problem else {b: CpuQuota(f"kiosk-bench-cold-{os.getpid()}-{b}", b, args.period_us)
                                 for b in budgets if b < 100}
    res: dict[int, dict[str, list[float]]] = {b: {"ready_s": [], "first_frame_s": [], "first_screen_s": [],
                                                  "python": []} for b in budgets}
    errors: list[str] = []
    counted: dict = {}
    ledger_size = None
    pinned: tuple | None = None
    count = not (args.quick or args.no_instructions)
    t_all = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="kiosk-bench-cold-") as tmp:
            root = Path(tmp)
            config = make_config(root / "kiosk", (w, h))
            sock_dir = Path(tempfile.mkdtemp(prefix="kcs", dir="/tmp"))  # AF_UNIX paths are short
            try:
                first = one_start(config, None, sock_dir)  # creates keys and the ledger: not a restart
                if "error" in first:
                    errors.append(first["error"])
                if args.ledger_entries:
                    ledger_size, pinned = fill_ledger(config, args.ledger_entries, args.snapshot_lag)
                for _ in range(args.rounds):
                    for b in budgets:
                        q = quotas.get(b)
                        if args.ledger_entries:
                            pin_snapshot(config, pinned)
                        r = one_start(config, q, sock_dir)
                        if "error" in r:
                            errors.append(f"{b}%: {r['error']}")
                            continue
                        res[b]["ready_s"].append(r["ready_s"])
                        res[b]["first_frame_s"].append(r["first_frame_s"])
                        res[b]["first_screen_s"].append(r["first_screen_s"])
                        res[b]["python"].append(bare_python(q, sock_dir))
                if count and shutil.which("valgrind"):
                    if args.ledger_entries:
                        pin_snapshot(config, pinned)
                    try:
                        counted = instructions(config, sock_dir)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        errors.append(f"instructions: {exc}")
                elif count:
                    counted = {"instructions_skipped": "valgrind is not installed (Debian: apt-get install valgrind)"}
            finally:
                shutil.rmtree(sock_dir, ignore_errors=True)
    finally:
        for q in quotas.values():
            q.close()
    out: dict = {"bench": "coldstart", "rounds": args.rounds, "size": args.size, "period_us": args.period_us,
                 "budgets": budgets}
    for key in ("ready_s", "first_frame_s", "first_screen_s"):
        out[key] = {str(b): med(res[b][key]) for b in budgets}
    out["baseline_python_s"] = {str(b): med(res[b]["python"]) for b in budgets}
    out["ratio_ready"] = {str(b): round(out["ready_s"][str(b)] / out["baseline_python_s"][str(b)], 1)
                          if out["ready_s"][str(b)] and out["baseline_python_s"][str(b)] else None for b in budgets}
    if ledger_size is not None:
        out["ledger_entries"] = ledger_size
        out["snapshot_at"] = pinned[1] if pinned is not None else None
    out.update(counted)
    if problem:
        out["note"] = problem
    out["aim"] = {"ready_s_at_25": 1.5}
    out["errors"] = errors[:5]
    out["wall_s"] = round(time.monotonic() - t_all, 1)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

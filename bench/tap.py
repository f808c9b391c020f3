"""Tap-to-thank-you latency of the whole kiosk, against a bare two-phase ledger append, as one JSON line.

    python bench/tap.py [--taps 200] [--size 1280x720]

The kiosk is the real one (kiosk.app.runtime.App): simulated reader under its supervisor
thread, service worker, SimulatedTerminal (SQLite, synchronous=FULL), signed
ledger (synchronous=FULL), Player with generated clips on SDL's dummy driver,
donation screens. Each tap is a new simulated card put on the reader during the
attract loop (one tap gives the default amount).

- ``p50_ms`` / ``p99_ms``: from the reader's CardPresented event (its ``at``,
  reader clock = time.monotonic) to the flip of the first frame showing the
  thank-you, which the flow draws only after the donation entry is committed.
- ``place_*``: from putting the card on the simulated reader (includes the
  reader's poll interval and the FeliCa reads).
- ``baseline_*``: the same machine, same run, a bare ``record_intent`` +
  ``record_donation`` on a fresh ledger (two durable commits, no terminal, no UI), with an idempotency key
  as the kiosk makes it (``uuid4().hex``).
- ``missed_taps``: taps the reader never saw (no card event within 3 s). Each card stays 50 ms on the
  simulated reader (``--hold-ms``: a quick tap; a real one is nearer 300 ms), and a process starved of CPU
  (a small cgroup quota on a busy host) can poll later than that. The bench then taps again, as a citizen
  would, and counts it; three misses in a row, or a tap that was read but did not end in the thank-you
  screen within 10 s, is an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AIM_P99_MS = 50.0
WARMUP = 5
TAP_TRIES = 3
"""Times a card is put on the reader for one donation before the bench gives up on it (``missed_taps``)."""
SENSE_WAIT_S = 3.0
"""How long after a tap the bench waits for the reader's card event before it counts the tap as missed."""


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))], 2)


def baseline(root: Path, n: int) -> list[float]:
    """A bare two-phase append per donation: intent commit, then donation commit."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.ledger import Ledger, Pepper

    pepper = Pepper({1: hashlib.sha256(b"bench").digest()})
    led = Ledger.open(root / "baseline.db", Ed25519PrivateKey.generate(), "bench-baseline-1", checkpoint_every=100)
    out = []
    try:
        for i in range(n + WARMUP):
            donor = pepper.token(hashlib.sha256(f"card-{i}".encode()).digest()[:8])
            t = time.perf_counter()
            intent = led.record_intent("kodomo", 100, "sim", donor, uuid.uuid4().hex)
            led.record_donation(intent.seq, f"ref-{i}", 1)
            if i >= WARMUP:
                out.append((time.perf_counter() - t) * 1000)
    finally:
        led.close()
    return out


def _sensed_after(app: Any, t: float, wait_s: float) -> bool:
    """Whether the reader made a card event at or after ``t`` (reader clock), waiting up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        at = app.worker.card_at if app.worker is not None else None
        if at is not None and at >= t:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def kiosk_taps(root: Path, n: int, size: tuple[int, int], hold_s: float = 0.05
               ) -> tuple[list[float], list[float], dict]:
    from kiosk.app.demo import card_spec, demo_config, prepare
    from kiosk.app.runtime import App, target_center
    from kiosk.ui.screens import chrome

    cfg = demo_config(root / "kiosk")
    cfg.player.display = "headless"
    cfg.reader.poll_interval_ms = 10
    cfg.reader.cooldown_ms = 0
    cfg.donation.daily_limit_per_card_yen = 10_000_000  # 200 taps by a handful of cards must not hit the limit
    # The Express window (docs/donation.md) is a wait by design, not work: measured with it off, printed apart.
    cfg.flow.express_cancel_ms = 0
    prepare(cfg, size=size, clip_s=2.0)
    app = App(cfg, sound=False)
    place_ms: list[float] = []
    marks: list[tuple[float, float]] = []  # (card event, thanks flipped) per measured tap, for --trace
    errors: list[str] = []
    missed: list[int] = []  # taps the reader did not see (tapped again)
    done = threading.Event()

    def drive() -> None:
        try:
            for i in range(n + WARMUP):
                p = app.wait_presented(lambda p: p.screen.screen == "attract", 10)
                if p is None:
                    raise TimeoutError("no attract screen")
                while app.sim.field:
                    time.sleep(0.002)
                before = p.snapshot.version
                p, sensed = None, False
                for _ in range(TAP_TRIES):
                    t = time.monotonic()
                    app.sim.tap(card_spec(i), hold_s)
                    sensed = _sensed_after(app, t, SENSE_WAIT_S)
                    if sensed:
                        p = app.wait_presented(
                            lambda p, before=before: p.snapshot.version > before
                            and p.screen.screen in ("thanks", "error"), 10)
                        break
                    # The reader never saw the card in its time on the field (a starved process can poll later
                    # than that): a citizen taps again, and so does the bench; counted, not an error.
                    missed.append(i)
                if p is None or p.screen.screen != "thanks":
                    last = app.presented.screen.screen if app.presented is not None else None
                    why = p.screen if p else (f"card read, no thank-you within 10 s (last screen {last})" if sensed
                                              else f"card not sensed in {TAP_TRIES} taps")
                    errors.append(f"tap {i}: {why}")
                elif i >= WARMUP:
                    place_ms.append((p.at - t) * 1000)
                    if p.snapshot.tap_at is not None:
                        marks.append((p.snapshot.tap_at, p.at))
                close = chrome.CANCEL if p and p.screen.screen == "thanks" else chrome.TOUCH  # thanks: its close button
                app.touch_at(target_center(p.targets, close) if p else (5, 5))
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            done.set()
            app.request_stop()

    try:
        app.start()
        threading.Thread(target=drive, daemon=True).start()
        app.run(until=lambda a: done.is_set())
        assert app.player is not None
        info = {"frames_presented": app.player.frames_presented, "errors": errors[:5], "missed_taps": len(missed),
                "display": "{}x{}".format(*app.player.display.size)}
        lat = app.latencies_ms[WARMUP:]
        info["_marks"] = marks
    finally:
        app.close()
    return lat, place_ms, info


def main() -> int:
    from kiosk.config.flow import FlowConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--taps", type=int, default=200)
    ap.add_argument("--size", default="640x360", help="display size, e.g. 1280x720")
    ap.add_argument("--hold-ms", type=float, default=50.0,
                    help="how long each card stays on the reader (a quick tap; a real one is nearer 300 ms)")
    ap.add_argument("--trace", type=Path, help="write per-tap phase times here (bench/tap_trace.py); adds overhead")
    args = ap.parse_args()
    if args.trace:
        import tap_trace

        tap_trace.install()
    w, h = (int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-tap-") as tmp:
        root = Path(tmp)
        base = baseline(root, args.taps)
        lat, place, info = kiosk_taps(root, args.taps, (w, h), args.hold_ms / 1000)
    marks = info.pop("_marks")
    if args.trace:
        info["trace"] = tap_trace.summarize(marks, args.trace)
    if not lat:
        print(json.dumps({"bench": "tap", "error": "no taps measured", **info}))
        return 1
    res = {
        "bench": "tap", "taps": len(lat),
        "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": round(max(lat), 2),
        "mean_ms": round(statistics.fmean(lat), 2),
        "place_p50_ms": pct(place, 50), "place_p99_ms": pct(place, 99),
        "baseline_ledger_p50_ms": pct(base, 50), "baseline_ledger_p99_ms": pct(base, 99),
        "ratio_p50": round(pct(lat, 50) / max(pct(base, 50), 1e-6), 2),
        "ratio_p99": round(pct(lat, 99) / max(pct(base, 99), 1e-6), 2),
        "aim_p99_ms": AIM_P99_MS, "ok": pct(lat, 99) <= AIM_P99_MS,
        "express_window_ms_not_included": FlowConfig().express_cancel_ms,
        **info, "cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
    }
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())

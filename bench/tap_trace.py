"""Optional per-tap phase trace for bench/tap.py (``--trace FILE``): where a slow tap's time went.

Wraps, from outside and only in the bench process, the methods a tap passes through, and records
``(start, end, kind, thread)`` spans on time.monotonic (the reader's clock). Also: garbage collections
(gc.callbacks), the main loop's movie draws, overlays, flips and waits, and a 1 ms probe thread whose
oversleeps show when some thread held the GIL or the CPU was taken. ``summarize`` turns the spans into
one row per tap: card event → worker picked it up → intent committed → charge answered → donation
committed → thanks published → main loop picked the state up → overlay drawn → flip done.
"""

from __future__ import annotations

import functools
import gc
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

SPANS: list[tuple[float, float, str, str]] = []
_mono = time.monotonic


def _span(kind: str, t0: float, t1: float) -> None:
    SPANS.append((t0, t1, kind, threading.current_thread().name))


def _wrap(cls: Any, name: str, kind: str, pred: Any = None) -> None:
    orig = getattr(cls, name)

    @functools.wraps(orig)
    def wrapper(*a: Any, **kw: Any) -> Any:
        t0 = _mono()
        try:
            return orig(*a, **kw)
        finally:
            if pred is None or pred(*a, **kw):
                _span(kind, t0, _mono())

    setattr(cls, name, wrapper)


def install() -> None:
    """Patch the classes (before the App is built, so that bound methods it hands out are the wrapped ones)."""
    from kiosk.app import runtime
    from kiosk.donation.service import DonationService
    from kiosk.ledger.store import Ledger
    from kiosk.payment.sim import SimulatedTerminal
    from kiosk.player.display import Display
    from kiosk.player.player import Player

    _wrap(DonationService, "reader_event", "job")
    _wrap(Ledger, "record_intent", "intent")
    _wrap(Ledger, "record_donation", "donation")
    _wrap(Ledger, "checkpoint", "checkpoint")
    _wrap(SimulatedTerminal, "charge", "charge")
    _wrap(SimulatedTerminal, "card_seen", "card_seen")
    _wrap(DonationService, "given_today", "given_today")
    _wrap(Ledger, "totals", "totals")
    _wrap(runtime.App, "_publish", "publish_thanks",
          pred=lambda self, state=None: self._snapshot is not None and self._snapshot.screen is not None
          and self._snapshot.screen.screen == "thanks")
    _wrap(runtime.App, "_covers_movie", "pickup_thanks",
          pred=lambda self: self._frame_screen is not None and self._frame_screen[1] is not None
          and self._frame_screen[1].screen == "thanks")
    _wrap(runtime.App, "_overlay", "overlay")
    _wrap(runtime.App, "_wait", "wait")
    _wrap(runtime.App, "step", "step")
    _wrap(Player, "_draw_item", "movie_draw")
    _wrap(Display, "flip", "flip")
    from kiosk.player import decoder
    _wrap(decoder.FrameQueue, "put", "decode_put")

    gc_start: dict[int, float] = {}

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_start[info["generation"]] = _mono()
        else:
            t0 = gc_start.pop(info["generation"], None)
            if t0 is not None:
                _span(f"gc{info['generation']}", t0, _mono())

    gc.callbacks.append(on_gc)

    def probe() -> None:
        while True:
            t0 = _mono()
            time.sleep(0.001)
            t1 = _mono()
            if t1 - t0 > 0.004:
                _span("probe_late", t0, t1)

    threading.Thread(target=probe, name="probe", daemon=True).start()


def summarize(lat_taps: list[tuple[float, float]], path: Path) -> dict[str, Any]:
    """``lat_taps``: (card event at, thanks flipped at) per measured tap. Writes one JSON line per tap."""
    spans = sorted(SPANS)
    rows = []
    for tap_at, flip_at in lat_taps:
        inside = [s for s in spans if s[1] >= tap_at and s[0] <= flip_at]

        def first(kind: str, end: bool = True, inside: list = inside, tap_at: float = tap_at) -> float | None:
            for s in inside:
                if s[2] == kind and s[0] >= tap_at - 0.001:
                    return s[1] if end else s[0]
            return None

        row: dict[str, Any] = {"tap_at": tap_at, "total_ms": round((flip_at - tap_at) * 1000, 2)}
        marks = [("job_start", first("job", end=False)), ("intent_done", first("intent")),
                 ("charge_done", first("charge")), ("donation_done", first("donation")),
                 ("published", first("publish_thanks")), ("pickup", first("pickup_thanks")),
                 ("flip_done", flip_at)]
        prev = tap_at
        for name, t in marks:
            row[name] = None if t is None else round((t - prev) * 1000, 2)
            prev = t if t is not None else prev
        pub = first("publish_thanks")
        # What the main thread was doing between the publish and the pickup, and who else ran during the tap.
        for kind in ("movie_draw", "overlay", "flip", "wait", "checkpoint", "decode_put", "gc0", "gc1", "gc2",
                     "probe_late"):
            row[f"{kind}_ms"] = round(sum(min(s[1], flip_at) - max(s[0], tap_at) for s in inside if s[2] == kind)
                                      * 1000, 2)
        if pub is not None:
            row["pub_to_pickup_main"] = [(s[2], round((s[1] - s[0]) * 1000, 2)) for s in inside
                                         if s[3] == "MainThread" and s[1] >= pub and s[2] != "step"][:8]
        rows.append(row)
    with open(path, "w") as f:
        f.write(json.dumps({"spans": spans}) + "\n")
        for r in rows:
            f.write(json.dumps(r) + "\n")
    rows.sort(key=lambda r: r["total_ms"])
    slow = rows[-max(3, len(rows) // 20):]
    keys = ["job_start", "intent_done", "charge_done", "donation_done", "published", "pickup", "flip_done",
            "checkpoint_ms", "movie_draw_ms", "gc2_ms", "probe_late_ms"]

    def med(rs: list[dict], k: str) -> float | None:
        v = [r[k] for r in rs if r.get(k) is not None]
        return round(statistics.median(v), 2) if v else None

    return {"median_all": {k: med(rows, k) for k in keys}, "median_slowest_5pct": {k: med(slow, k) for k in keys}}

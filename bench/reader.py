"""Reader software latency: prints exactly one JSON line.

* ``sim_tap_ms``: from a simulated card arriving on the reader to the
  CardPresented event being taken off the event queue — the poll that finds it,
  the balance/history read, Request Service, token, debounce, event (p50/p99).
  The card's radio time is zero here, so this is our software share of the
  200 ms gate budget.
* ``nfcpy_poll_ms``: one poll cycle through nfcpy's real ContactlessFrontend and
  Type3Tag code with a fake driver at the lowest seam: empty field, and a held
  card (sense + tokenize + debounce).
* ``baseline_us``: a bare function call and a queue put/get, measured in the same
  run, so the numbers can be compared across machines; ``ratios`` divide by them.

Usage: python bench/reader.py [--n 2000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import queue
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nfc.clf  # noqa: E402
import nfc.clf.device  # noqa: E402

from kiosk.config.reader import ReaderConfig  # noqa: E402
from kiosk.ledger.pepper import Pepper  # noqa: E402
from kiosk.reader.events import CardPresented  # noqa: E402
from kiosk.reader.nfcpy_backend import NfcpyReader  # noqa: E402
from kiosk.reader.sim import SimReader, make_card  # noqa: E402

BUDGET_MS = 200.0


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def summary(samples_s: list[float], scale: float) -> dict[str, float]:
    return {"p50": round(pct(samples_s, 50) * scale, 4), "p99": round(pct(samples_s, 99) * scale, 4)}


class BenchDevice(nfc.clf.device.Device):
    """nfcpy driver seam: answers from a simulated card, no USB."""

    def __init__(self, card=None):
        self.card = card
        self._path, self._chipset_name = "bench", "bench"

    def close(self):
        pass

    def mute(self):
        pass

    def sense_ttf(self, target):
        if self.card is None:
            return None
        req = bytes(target.sensf_req)
        rsp = self.card.answer(bytes([len(req) + 1]) + req)
        return None if rsp is None else nfc.clf.RemoteTarget(target.brty, sensf_res=bytearray(rsp[1:]))

    def get_max_send_data_size(self, target):
        return 290

    get_max_recv_data_size = get_max_send_data_size

    def send_cmd_recv_rsp(self, target, data, timeout):
        rsp = self.card.answer(bytes(data)) if self.card else None
        if rsp is None:
            raise nfc.clf.TimeoutError()
        return bytearray(rsp)


def bench_baseline(n: int) -> dict[str, float]:
    def f(x):
        return x

    calls, handoffs = [], []
    q: queue.Queue = queue.Queue()
    for i in range(n):
        t0 = time.perf_counter()
        f(i)
        t1 = time.perf_counter()
        q.put_nowait(i)
        q.get_nowait()
        t2 = time.perf_counter()
        calls.append(t1 - t0)
        handoffs.append(t2 - t1)
    return {"call_p50": round(pct(calls, 50) * 1e6, 3), "queue_handoff_p50": round(pct(handoffs, 50) * 1e6, 3)}


def bench_sim(tokenizer, n: int) -> list[float]:
    cfg = ReaderConfig(cooldown_ms=0, removal_misses=1, history_blocks=3, detect_family=True)
    r = SimReader(cfg, tokenizer)
    r.open()
    card = make_card("suica")
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r.place(card)
        r.poll()
        ev = r.events.get(0)
        t1 = time.perf_counter()
        assert isinstance(ev, CardPresented), ev
        out.append(t1 - t0)
        r.remove()
        r.poll()  # counts the removal
        r.events.drain()
    return out


def bench_nfcpy(tokenizer, n: int) -> tuple[list[float], list[float], list[float]]:
    dev = BenchDevice()
    cfg = ReaderConfig(backend="nfcpy", cooldown_ms=0, removal_misses=1)

    def opener(path):
        clf = nfc.clf.ContactlessFrontend()
        clf.device = dev
        return clf

    r = NfcpyReader(cfg, tokenizer, opener=opener)
    r.open()
    empty, held, taps = [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        r.poll()
        empty.append(time.perf_counter() - t0)
    dev.card = make_card("suica")
    for _ in range(min(n, 500)):
        t0 = time.perf_counter()
        r.poll()  # card arrives: full tap through Type3Tag
        taps.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        r.poll()  # the same card, held
        held.append(time.perf_counter() - t0)
        card, dev.card = dev.card, None
        r.poll()
        dev.card = card
        r.events.drain()
    return empty, held, taps


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    n = ap.parse_args().n
    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as d:
        tokenizer = Pepper.create(Path(d) / "pepper.json").token
        bench_sim(tokenizer, 50)  # warm-up
        base = bench_baseline(max(n, 1000) * 10)
        sim = bench_sim(tokenizer, n)
        empty, held, taps = bench_nfcpy(tokenizer, n)
    sim_ms = summary(sim, 1e3)
    result = {
        "bench": "reader",
        "n": n,
        "sim_tap_ms": sim_ms,
        "nfcpy_poll_ms": {"empty": summary(empty, 1e3), "held": summary(held, 1e3), "tap": summary(taps, 1e3)},
        "baseline_us": base,
        "ratios": {
            "sim_tap_p50_over_queue_handoff": round(sim_ms["p50"] * 1e3 / base["queue_handoff_p50"], 1),
            "nfcpy_empty_poll_p50_over_call": round(pct(empty, 50) * 1e6 / base["call_p50"], 1),
            "sim_tap_p99_share_of_200ms_budget": round(sim_ms["p99"] / BUDGET_MS, 5),
        },
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

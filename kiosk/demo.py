"""``kiosk demo``: the kiosk on embedded defaults, in a data dir of its own.

This is the foundation demo: it creates keys and a pepper, writes the config
it ran with to ``DATA_DIR/kiosk.toml``, and appends scripted donations by
simulated cards across the demo projects, two-phase (intent, then donation),
printing one flushed line per acknowledged donation. Run again on the same
directory, it continues the same ledger.
"""

from __future__ import annotations

import hashlib
import os
import sys
import uuid
from importlib import resources
from pathlib import Path
from typing import TextIO

from kiosk.config import KioskConfig, dump_toml, load_config, validate_config
from kiosk.ledger import Pepper, verify_path
from kiosk.runtime import ensure_secrets, open_ledger

DEFAULT_DATA_DIR = Path("kiosk-data")
DEMO_CARDS = 5


def demo_template() -> dict:
    import tomllib

    return tomllib.loads(resources.files("kiosk.defaults").joinpath("demo.toml").read_text("utf-8"))


def demo_config(data_dir: Path) -> KioskConfig:
    """The config stored in ``data_dir`` (from an earlier run) or the embedded demo defaults."""
    stored = data_dir / "kiosk.toml"
    if stored.exists():
        return load_config(stored)
    data = demo_template()
    data["kiosk"]["data_dir"] = "."  # relative to kiosk.toml, so the folder can be moved
    cfg = validate_config(data, "<embedded demo config>", data_dir.resolve())
    data_dir.mkdir(parents=True, exist_ok=True)
    stored.write_text("# Written by `kiosk demo`: the config this demo ran with.\n" + dump_toml(cfg), "utf-8")
    return cfg


def simulated_idm(card: int) -> bytes:
    """A fixed, fake IDm per demo card. Used only in memory to make a donor token."""
    return hashlib.sha256(f"demo-card-{card}".encode()).digest()[:8]


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_demo(taps: int, data_dir: Path, headless: bool, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if not headless:
        # The on-screen demo needs the donation screens; until then run the same flow headless.
        reason = "no display found" if not has_display() else "the windowed demo is not built yet"
        print(f"kiosk demo: {reason}; running headless", file=out, flush=True)
    cfg = demo_config(data_dir)
    ensure_secrets(cfg)
    pepper = Pepper.load(cfg.pepper_path)
    ledger = open_ledger(cfg)
    try:
        projects = cfg.projects
        presets = cfg.donation.presets_yen
        start = ledger.totals()["count"]
        given = 0
        for i in range(taps):
            n = start + i
            project = projects[n % len(projects)]
            amount = presets[n % len(presets)] if n % 3 else cfg.donation.default_yen
            donor = pepper.token(simulated_idm(n % DEMO_CARDS))
            idem = uuid.uuid4().hex
            intent = ledger.record_intent(project.id, amount, "sim", donor, idem)
            points = amount // 100 * cfg.donation.points_per_100_yen
            entry = ledger.record_donation(intent.seq, f"sim-{idem[:12]}", points)
            given += 1
            print(f"donation seq={entry.seq} project={project.id} amount={amount}", file=out, flush=True)
        totals = ledger.totals()
    finally:
        ledger.close()
    result = verify_path(cfg.ledger_path)
    print(f"summary: {given} donations this run; ledger holds {totals['count']} donations, "
          f"¥{totals['total_yen']:,} in all", file=out)
    for pid, t in totals["projects"].items():
        print(f"  {pid:<16} {t['count']:>5} donations  ¥{t['total_yen']:>9,}", file=out)
    print(("ledger verified: " if result.ok else "LEDGER INVALID: ") + result.summary(), file=out)
    print(f"data dir: {data_dir.resolve()}", file=out, flush=True)
    return 0 if result.ok else 1

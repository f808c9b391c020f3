"""Fixtures for the ops tests: a real config directory with keys, pepper and a ledger spanning two days."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from kiosk.config import KioskConfig, load_config
from kiosk.ledger import Ledger, Pepper
from kiosk.ledger.clock import FixedClock
from kiosk.ledger.writer import InlineWriter
from kiosk.ops.local_files import ensure_secrets, open_ledger

DAY1 = date(2025, 11, 21)  # FixedClock's default wall time is 2025-11-21 13:40 JST
DAY2 = date(2025, 11, 22)

CONFIG = """\
[kiosk]
id = "test-kiosk-1"
data_dir = "data"
timezone = "Asia/Tokyo"
demo = true

[reader]
backend = "sim"

[[projects]]
id = "kodomo"
title = "こども食堂"
area = "children"

[[projects]]
id = "midori"
title = "雑木林を守ろう"
area = "green"
"""


def idm(n: int) -> bytes:
    """A made-up card IDm; tests look for these bytes in everything exported."""
    return hashlib.sha256(f"ops-card-{n}".encode()).digest()[:8]


@dataclass
class Site:
    config_path: Path
    cfg: KioskConfig
    pepper: Pepper
    clock: FixedClock
    ledger: Ledger
    idms: list[bytes]

    @property
    def writer(self) -> InlineWriter:
        """What staff code appends through; inline, as in the single-threaded `kiosk closeout`."""
        return InlineWriter(self.ledger)


def write_config(directory: Path, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "kiosk.toml"
    path.write_text(CONFIG + extra, "utf-8")
    return path


def donate(led: Ledger, pepper: Pepper, card: bytes, project: str, yen: int, method: str, idem: str,
           fail: bool = False) -> int:
    i = led.record_intent(project, yen, method, pepper.token(card), idem)
    if fail:
        return led.record_failure(i.seq, "declined").seq
    return led.record_donation(i.seq, f"ref-{idem}", yen // 100).seq


def fill_two_days(led: Ledger, pepper: Pepper, clock: FixedClock, idms: list[bytes]) -> dict[str, int]:
    """Day 1: three donations (one voided later), one failed. Day 2: two donations."""
    seqs = {}
    seqs["d1a"] = donate(led, pepper, idms[0], "kodomo", 500, "suica-terminal", "i1")
    clock.advance(60_000)
    seqs["d1b"] = donate(led, pepper, idms[1], "midori", 1000, "sim", "i2")
    seqs["d1fail"] = donate(led, pepper, idms[2], "midori", 100, "sim", "i3", fail=True)
    seqs["d1c"] = donate(led, pepper, idms[0], "kodomo", 100, "sim", "i4")
    led.void(seqs["d1c"], "staff correction")
    clock.advance(24 * 3600_000)
    seqs["d2a"] = donate(led, pepper, idms[1], "kodomo", 1000, "sim", "i5")
    seqs["d2b"] = donate(led, pepper, idms[2], "midori", 500, "suica-terminal", "i6")
    return seqs


@pytest.fixture
def site(tmp_path: Path):
    path = write_config(tmp_path / "site")
    cfg = load_config(path)
    ensure_secrets(cfg)
    pepper = Pepper.load(cfg.pepper_path)
    clock = FixedClock()
    led = open_ledger(cfg, clock=clock)
    s = Site(path, cfg, pepper, clock, led, [idm(n) for n in range(3)])
    yield s
    led.close(checkpoint=False)

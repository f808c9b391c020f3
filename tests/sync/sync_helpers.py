"""Helpers for the sync tests: test kiosks (Rig) and hand-built signed requests."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from kiosk.config import KioskConfig, to_toml, validate_config
from kiosk.ledger import Ledger, Pepper
from kiosk.ledger.clock import FixedClock
from kiosk.ledger.writer import InlineWriter
from kiosk.ops.local_files import ensure_secrets, open_ledger
from kiosk.sync.uploader import Uploader
from server_sync.db import make_engine
from server_sync.embedded import PortalHandle
from server_sync.wire import protocol as P

# Debian's Chromium, driven by Playwright (the browser fixture in conftest.py); the flags keep it off the network.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason=f"{CHROMIUM} not installed (apt-get install -y chromium)")

PG_ENV = "KIOSK_TEST_PG_URL"
PROJECTS = [
    {"id": "kodomo", "title": "こども食堂", "title_en": "Kids cafeteria", "area": "children", "goal_yen": 5000},
    {"id": "midori", "title": "雑木林を守ろう", "title_en": "Woodland", "area": "green", "goal_yen": 8000},
    {"id": "ongaku", "title": "音楽祭", "title_en": "Music festival", "area": "culture", "goal_yen": 3000},
]


def fake_idm(n: int) -> bytes:
    return hashlib.sha256(f"sync-test-card-{n}".encode()).digest()[:8]


@dataclass
class Rig:
    """One test kiosk: config, open ledger (the single writer), pepper and clock."""

    cfg: KioskConfig
    ledger: Ledger
    pepper: Pepper
    clock: FixedClock
    config_path: Path

    @property
    def kiosk_id(self) -> str:
        return self.cfg.kiosk.id

    def donate(self, n: int = 1, card: int | None = None, amounts: tuple[int, ...] = (100, 500, 1000)) -> list[Any]:
        out = []
        for i in range(n):
            c = card if card is not None else i % 4
            project = PROJECTS[(self.ledger.size + i) % len(PROJECTS)]["id"]
            amount = amounts[(self.ledger.size + i) % len(amounts)]
            intent = self.ledger.record_intent(project, amount, "sim", self.pepper.token(fake_idm(c)), uuid.uuid4().hex)
            self.clock.advance(700)
            out.append(self.ledger.record_donation(intent.seq, f"sim-{intent.seq}", amount // 100))
        return out

    def uploader(self, url: str = "", **kw: Any) -> Uploader:
        kw.setdefault("backoff_base", 0.01)
        kw.setdefault("backoff_cap", 0.05)
        kw.setdefault("timeout", (2.0, 10.0))
        kw.setdefault("writer", InlineWriter(self.ledger))  # this test process is the kiosk: it records configs
        return Uploader.from_config(self.cfg, portal_url=url, clock=self.clock, **kw)

    def expected_totals(self) -> dict[str, Any]:
        t = self.ledger.totals()
        return {"count": t["count"], "total_yen": t["total_yen"],
                "projects": [{"id": k, "count": v["count"], "total_yen": v["total_yen"]}
                             for k, v in sorted(t["projects"].items()) if v["count"]]}


def make_rig(root: Path, kiosk_id: str = "test-kiosk-1", clock: FixedClock | None = None,
             checkpoint_every: int = 10, portal_url: str = "") -> Rig:
    data_dir = root / kiosk_id
    data_dir.mkdir(parents=True, exist_ok=True)
    cfg = validate_config({
        "kiosk": {"id": kiosk_id, "data_dir": str(data_dir)},
        "ledger": {"checkpoint_every": checkpoint_every},
        "portal": {"url": portal_url},
        "projects": [{k: v for k, v in p.items()} for p in PROJECTS],
    }, "<test>", data_dir)
    config_path = data_dir / "kiosk.toml"
    config_path.write_text(to_toml(cfg), "utf-8")
    ensure_secrets(cfg)
    clock = clock or FixedClock(wall_ms=int(time.time() * 1000) - 3_600_000)
    ledger = open_ledger(cfg, clock=clock)
    return Rig(cfg, ledger, Pepper.load(cfg.pepper_path), clock, config_path)


def enrolled(rig: Rig, portal: PortalHandle, **kw: Any) -> Uploader:
    up = rig.uploader(portal.url, **kw)
    up.enroll(portal.issue_code(rig.kiosk_id))
    return up


def signed_post(url: str, rig: Rig, path: str, body: bytes, key: str = "", sk: Any = None,
                created: int | None = None, kiosk_id: str | None = None) -> requests.Response:
    """A hand-built signed request, for feeding the portal what an honest uploader never would."""
    from kiosk.ledger import keys

    sk = sk or keys.load_private(rig.cfg.private_key_path)
    headers = P.sign_request(sk, kiosk_id or rig.kiosk_id, "POST", path, body,
                             created if created is not None else int(time.time()), key)
    headers["Content-Type"] = "application/json"
    return requests.post(url + path, data=body, headers=headers, timeout=10)


def batch_body(rig: Rig, first: int, last: int, rows: list[tuple[int, bytes, bytes]] | None = None,
               old_size: int = 0) -> bytes:
    """A batch document for ``first..last`` without checkpoint (or given rows), as bytes."""
    if rows is None:
        rows = [(e.seq, e.body, e.signature) for e in rig.ledger.iter_entries(first, last)]
    doc = P.batch_document(rig.kiosk_id, rows, None, old_size, [])
    return json.dumps(doc, separators=(",", ":")).encode()


def portal_entry_count(db_url: str, kiosk_id: str) -> tuple[int, int]:
    """(rows, distinct seqs) the portal stores for a kiosk."""
    from sqlalchemy import func, select

    from server_sync.db import entries

    eng = make_engine(db_url)
    try:
        with eng.connect() as conn:
            return tuple(conn.execute(select(func.count(), func.count(func.distinct(entries.c.seq)))
                                      .where(entries.c.kiosk_id == kiosk_id)).one())  # type: ignore[return-value]
    finally:
        eng.dispose()

"""The kiosk writes its ledger's state snapshot when idle, on the ledger's one writer, and again at shutdown.

A real service worker with the kiosk's real donation service and simulated terminal: citizens give by tapping
cards, and once ``ledger.snapshot_every`` entries have passed, an idle tick writes the snapshot (never in the
middle of a donation); stopping the worker closes the ledger with a last one. The next start opens from it to
the state of a full replay (docs/ledger.md, "Opening a ledger").
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from kiosk.app.runtime import ServiceWorker
from kiosk.donation import flow
from kiosk.donation.service import DonationService
from kiosk.ledger import Ledger
from kiosk.ledger.pepper import Pepper
from kiosk.ops.local_files import ensure_secrets, open_ledger
from kiosk.payment import open_terminal
from kiosk.reader.events import CardPresented, TapRecord
from tests.app.test_app_e2e import _cfg
from tests.conftest import fake_idm, fields, replayed


def start_worker(cfg: Any, ledger: Ledger, terminal: Any) -> tuple[ServiceWorker, threading.Event]:
    """The kiosk's donation service on its own worker thread, and an event set on every thank-you."""
    thanked = threading.Event()
    service = DonationService.for_config(cfg, ledger, terminal,
                                         on_state=lambda s: thanked.set() if s.name == "thanks" else None)
    worker = ServiceWorker(service, lambda _at: None).start()
    assert worker.started.wait(30)
    return worker, thanked


def give(worker: ServiceWorker, pepper: Pepper, thanked: threading.Event, n: int) -> None:
    """A citizen taps card ``n`` on the attract screen (the default gift), is thanked, and the screen is left."""
    thanked.clear()
    rec = TapRecord(reader_id="sim", family="suica", system_code=0x0003, token=pepper.card_token(fake_idm(n)),
                    balance_yen=5_000, last_transaction=None, read_ms=1.0)
    worker.submit(lambda svc: svc.reader_event(CardPresented(reader_id="sim", at=time.monotonic(), record=rec)))
    assert thanked.wait(30)
    worker.call(lambda svc: svc.handle(flow.Cancel(now_ms=svc.now_ms()))).result(30)


def snapshot_size(path: Path) -> int | None:
    with closing(sqlite3.connect(path)) as conn:
        row = conn.execute("SELECT size FROM state_snapshot").fetchone()
    return row[0] if row else None


def test_the_worker_writes_the_snapshot_when_idle_and_at_shutdown(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path / "data")
    cfg.ledger.snapshot_every = 4
    ensure_secrets(cfg)
    pepper = Pepper.load(cfg.pepper_path)
    ledger, terminal = open_ledger(cfg), open_terminal(cfg)
    names_at_snapshot: list[str] = []
    real_save = ledger.save_snapshot

    def save() -> int:  # records the screen each snapshot was written on, then writes it
        names_at_snapshot.append(worker.service.state.name)
        return real_save()

    ledger.save_snapshot = save  # type: ignore[method-assign]
    worker, thanked = start_worker(cfg, ledger, terminal)
    try:
        assert snapshot_size(cfg.ledger_path) is None  # genesis, boot, checkpoint: not yet due
        for n in range(3):
            give(worker, pepper, thanked, n)
        given = ledger.size
        deadline = time.monotonic() + 10
        while (snapshot_size(cfg.ledger_path) or 0) < given - cfg.ledger.snapshot_every and time.monotonic() < deadline:
            time.sleep(0.05)
        written = snapshot_size(cfg.ledger_path)
        assert written is not None and written > given - cfg.ledger.snapshot_every, (written, given)
        assert set(names_at_snapshot) <= {"attract", "thanks"}, names_at_snapshot
    finally:
        assert worker.stop()
        terminal.close()
    assert worker.ledger_closed and snapshot_size(cfg.ledger_path) == ledger.size  # the shutdown one
    reopened = open_ledger(cfg, boot=False)
    assert reopened.snapshot_size == ledger.size
    assert fields(reopened.st) == fields(replayed(cfg.ledger_path))
    reopened.close(checkpoint=False)


def test_a_snapshot_the_disk_refuses_is_logged_and_the_donations_go_on(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    cfg = _cfg(tmp_path / "data")
    cfg.ledger.snapshot_every = 2
    ensure_secrets(cfg)
    pepper = Pepper.load(cfg.pepper_path)
    ledger, terminal = open_ledger(cfg), open_terminal(cfg)

    def refuse_snapshots(conn: sqlite3.Connection) -> None:  # a disk that takes entries but not the snapshot
        conn.set_authorizer(lambda action, table, *_: sqlite3.SQLITE_DENY
                            if action == sqlite3.SQLITE_INSERT and table == "state_snapshot" else sqlite3.SQLITE_OK)

    ledger._engine.on_connect.append(refuse_snapshots)
    ledger._drop_writer()
    ledger._engine.dispose()
    worker, thanked = start_worker(cfg, ledger, terminal)
    try:
        give(worker, pepper, thanked, 1)
        deadline = time.monotonic() + 10
        while "ledger state snapshot not written" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(3 * 0.25)  # three more idle ticks: tried again only after snapshot_every more entries
        assert caplog.text.count("ledger state snapshot not written") == 1, caplog.text
        give(worker, pepper, thanked, 2)  # the donations go on
        assert worker.error is None and worker.alive
    finally:
        assert worker.stop()
        terminal.close()
    assert snapshot_size(cfg.ledger_path) is None
    assert [e.type for e in ledger.iter_entries()].count("donation") == 2

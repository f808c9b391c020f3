"""`kiosk run` beside what runs at the same time: the systemd timers' `kiosk closeout` on the same ledger, and a
config push whose ledger entry waits behind a long charge.

Real parts: a headless App with the simulated reader and terminal, real SQLite files, the real `kiosk` CLI as a
second process (docs/architecture.md, "Other processes"; docs/sync.md, "Config push").
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.app.runtime import App
from kiosk.config import to_toml
from kiosk.ledger.clock import SystemClock
from kiosk.ops.local_files import open_ledger
from tests.app.drive import card_on_reader
from tests.app.test_app_pushed_config_restart import _kiosk, _staff_card

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

ROOT = Path(__file__).resolve().parents[2]


def _kiosk_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The `kiosk` command as its own process (what a systemd timer runs beside `kiosk run`)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120, check=False)


def _site(tmp_path: Path):  # noqa: ANN202 - (config, its file)
    doc, cfg, clips, cache = _kiosk(tmp_path)
    _staff_card(cfg)
    path = tmp_path / "kiosk.toml"
    path.write_text(to_toml(cfg), "utf-8")
    return cfg, path


# --- 1. `kiosk closeout` (timer) beside `kiosk run`: the kiosk's next checkpoint is built on a stale tip -------

def test_closeout_process_beside_kiosk_run_then_a_restart_opens_the_ledger(tmp_path: Path) -> None:
    """Staff opened the menu in the evening (menu entries after the last checkpoint); at 00:05 the closeout
    timer's `kiosk closeout` appends a close_out from its own process; later the kiosk is stopped (an update, the
    menu's reboot). Its shutdown checkpoint must count the close_out, and the next start must open the ledger."""
    cfg, path = _site(tmp_path)
    app = App(cfg, sound=False)
    app.start(movie=False)
    try:
        menu = app.staff.menu
        with card_on_reader(app, "suica"):  # the staff card opens the menu: menu_open is appended
            app.run(until=lambda a: menu.page == "home", seconds=10)
        assert menu.page == "home"
        menu.model.key("esc")  # Esc on the home page closes the menu: menu_close is appended
        assert not menu.is_open
        app.worker.call(lambda svc: None).result(10)  # the menu's entries are on the ledger
        day = app.ledger.business_date().isoformat()
        r = _kiosk_cli("closeout", "--config", str(path), "--date", day)
        assert r.returncode == 0, r.stderr[-2000:]
    finally:
        app.close()  # the kiosk stops: the menu closes (menu_close), the worker writes the shutdown checkpoint
    v = _kiosk_cli("ledger", "verify", str(cfg.ledger_path))
    assert v.returncode == 0, f"the ledger no longer verifies after the stop:\n{v.stdout[-1500:]}{v.stderr[-1500:]}"
    led = open_ledger(cfg)  # the next `kiosk run` start
    led.close()


class _OtherProcessAppendsNow(SystemClock):
    """The system clock, except that its first read once the ledger file ends in a boot entry runs ``then()``
    first: the moment between `kiosk run`'s boot entry and its start-up checkpoint, which a second process can
    take (nothing is locked then: each entry is its own BEGIN IMMEDIATE ... COMMIT)."""

    def __init__(self, ledger_path: Path, then) -> None:  # noqa: ANN001
        super().__init__()
        self.path, self.then, self.fired = ledger_path, then, False

    def _tip_is_boot(self) -> bool:
        import sqlite3

        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT type FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        finally:
            con.close()
        return row is not None and row[0] == "boot"

    def wall_ms(self) -> int:
        if not self.fired and self.path.exists() and self._tip_is_boot():
            self.fired = True
            self.then()
        return super().wall_ms()


def test_kiosk_run_starting_while_the_persistent_closeout_timer_runs(tmp_path: Path) -> None:
    """`kiosk-closeout.timer` is Persistent=true: a kiosk that was off at midnight runs `kiosk closeout` at its next
    boot, beside `kiosk run` starting. If the close_out lands between kiosk run's boot entry and its start-up
    checkpoint (Ledger.open with boot, as App.start opens it), the kiosk must still start, and so must every later
    start."""
    cfg, path = _site(tmp_path)
    led = open_ledger(cfg)  # the kiosk ran before, and stopped (its last entry: the shutdown checkpoint)
    day = led.business_date().isoformat()
    led.close()
    results: list[subprocess.CompletedProcess[str]] = []
    clock = _OtherProcessAppendsNow(cfg.ledger_path, lambda: results.append(
        _kiosk_cli("closeout", "--config", str(path), "--date", day)))
    try:
        started = open_ledger(cfg, clock=clock)  # App.start's open (boot entry, then the start-up checkpoint)
        started.close()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"kiosk run could not start beside kiosk closeout: {type(exc).__name__}: {exc}")
    finally:
        assert clock.fired and results and results[0].returncode == 0, results[0].stderr[-2000:] if results else None
    led = open_ledger(cfg)  # and the start after it
    led.close()


# --- 2. a pushed config whose ledger entry waited behind a long charge is recorded but never adopted ----------

def test_a_config_pushed_during_a_long_charge_is_adopted_once_recorded(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The sync thread records a pushed config through the service worker and waits for it at most
    `kiosk.ledger.writer.WAIT_S` (120 s). A Square checkout holds the worker up to deadline_s + answer_grace_s
    (120 + 30 s by default) while a donor walks away from the terminal, so the wait can run out; the entry is
    still written when the worker is free. The uploader retries next round, finds the config applied and
    recorded, and answers "unchanged" without telling the app: the ledger names the new version while the
    screens keep the old amounts (after 10 minutes the portal sets those gifts aside, server_sync/policy.py
    GRACE_MS). Here the wait is 2 s and the simulated terminal takes 6 s, the same race in test time."""
    import threading
    import time

    from kiosk.ledger import writer as writer_mod
    from kiosk.sync.configapply import ConfigApplier, ConfigApplyError
    from server_sync.wire import configdoc
    from tests.app.drive import run_until

    doc, cfg, clips, cache = _kiosk(tmp_path)
    cfg.payment.sim_slow_ms = 6000  # the charge: the worker is inside terminal.charge() for 6 s
    projects = [{k: p[k] for k in ("id", "title", "title_en", "group", "area", "goal_yen")} for p in doc["projects"]]
    body = {"projects": projects, "presets_yen": [200, 300, 700], "default_yen": 300,
            "playlist": [{"sha256": clips[0].sha256, "name": "c.mp4", "project": clips[0].project_id}]}
    norm = configdoc.normalised(configdoc.validate(body))
    pushed = {"version": 9, "digest": configdoc.digest(norm), "config": norm}
    monkeypatch.setattr(writer_mod.call, "__defaults__", (2.0,))  # WAIT_S, in test time

    app = App(cfg, sound=False)
    app.start(movie=False)
    try:
        applier = ConfigApplier(cfg.data_dir, app.ledger_writer, on_config=app.staff._on_pushed_config)
        fetch = lambda sha: cache.path(sha).read_bytes()  # noqa: E731
        with card_on_reader(app, "suica"):  # an Express tap: the gift is charged once its window is over
            run_until(app, lambda p: p.snapshot.state.name == "charging" and p.snapshot.state.donation is not None
                      and p.snapshot.state.donation.phase == "charge", seconds=30)
        rounds: list[object] = []

        def sync_round() -> None:  # what Uploader._apply_config does in one round (the sync thread)
            try:
                rounds.append(applier.apply(pushed, fetch))
            except (ConfigApplyError, OSError) as exc:  # what the uploader reports as config_error and goes on
                rounds.append(exc)

        t = threading.Thread(target=sync_round)
        t.start()
        app.run(until=lambda a: not t.is_alive(), seconds=30)
        # The first round ran out of time, and says why in words (the uploader's config_error).
        assert rounds and isinstance(rounds[0], ConfigApplyError) and "waits behind" in str(rounds[0]), rounds
        run_until(app, lambda p: p.screen.screen == "thanks", seconds=30)  # the charge is done, the worker free
        app.worker.call(lambda svc: None).result(10)  # ... and the queued config_change is written
        t = threading.Thread(target=sync_round)  # the next round
        t.start()
        app.run(until=lambda a: not t.is_alive(), seconds=30)
        deadline = time.monotonic() + 60  # liveness only: a busy CI host may apply it late, not never
        while time.monotonic() < deadline and app.worker.service.settings.presets_yen != (200, 300, 700):
            app.run(seconds=0.2)
        recorded = app.ledger.last_of_type("config_change")
        assert recorded is not None and recorded.data["version"] == 9, "the ledger names v9"
        assert app.worker.service.settings.presets_yen == (200, 300, 700), (
            f"the ledger names config v9 (rounds: {rounds}) but the kiosk still offers "
            f"{app.worker.service.settings.presets_yen}")
    finally:
        app.close()

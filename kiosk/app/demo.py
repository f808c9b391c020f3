"""``kiosk demo``: the whole kiosk on embedded defaults, in a data dir of its own.

It creates keys and a pepper on first run, writes the config it ran with to
``DATA_DIR/kiosk.toml``, generates a title-card movie per demo project, and
runs the real kiosk (:class:`kiosk.app.runtime.App`): simulated reader and payment
terminal, the donation flow, the screens over the movie, the signed ledger.
Run again on the same directory, it continues the same ledger.

- With a display: a window; keys 1-5 tap simulated cards of different
  families (see :data:`kiosk.reader.sim.KEYS`), L toggles the language, Esc quits.
- ``--headless`` (or no display): ``taps`` scripted donations through the same
  app. A script thread touches the screen where the buttons were drawn and taps
  cards on the simulated reader; for each acknowledged donation (a thank-you
  frame was flipped, which the flow allows only after the ledger commit) it
  prints one flushed line ``donation seq=<seq> project=<id> amount=<yen>``, then the gift's receipt
  (``  receipt: <portal>/r/<code>#k=<key id>``, the link its thank-you QR code holds; ``  receipt code:
  <code>`` without the demo portal) to try the receipt page with. The code lets whoever holds it see that
  gift: it goes to this terminal only (``out``), never to the log.
  With ``screenshots`` it saves one PNG per screen.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import requests

from kiosk.config import KioskConfig, load_config, to_toml, validate_config
from kiosk.ledger import verify_path
from kiosk.ledger.durable import write_atomic
from kiosk.ops.local_files import ensure_secrets

DEFAULT_DATA_DIR = Path("kiosk-data")
DEMO_CARDS = 5
DEMO_PIN = "2580"
"""The demo's maintenance-menu PIN (its hash is [staff] pin_hash in config/defaults/demo.toml). Public by design."""
FAMILIES = ("suica", "pasmo", "icoca")
HEADLESS_SIZE = (640, 360)
HEADLESS_CLIP_S = 1.0
STEP_TIMEOUT_S = 15.0
LIVE_SHOTS = ("attract", "choose_amount", "tap_card", "charging", "thanks", "thanks_en")

log = logging.getLogger("kiosk.app.demo")


def demo_template() -> dict:
    import tomllib

    return tomllib.loads(resources.files("kiosk.config.defaults").joinpath("demo.toml").read_text("utf-8"))


def demo_config(data_dir: Path) -> KioskConfig:
    """The config stored in ``data_dir`` (from an earlier run) or the embedded demo defaults."""
    stored = data_dir / "kiosk.toml"
    if stored.exists():
        return load_config(stored)
    data = demo_template()
    data["kiosk"]["data_dir"] = "."  # relative to kiosk.toml, so the folder can be moved
    cfg = validate_config(data, "<embedded demo config>", data_dir.resolve())
    data_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(stored, "# Written by `kiosk demo`: the config this demo ran with.\n" + to_toml(cfg))
    return cfg


def simulated_idm(card: int) -> bytes:
    """A fixed, fake IDm per demo card. Used only in memory to make a donor token."""
    return hashlib.sha256(f"demo-card-{card}".encode()).digest()[:8]


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def card_spec(n: int) -> str:
    """The simulated card for the ``n``-th demo donation (counted over the ledger's life).

    Five cards take turns, so point balances grow; every ten donations brings new
    cards, so the per-card daily limit is never reached however long the demo runs.
    """
    idm = simulated_idm(n % DEMO_CARDS + DEMO_CARDS * (n // 10))
    return f"{FAMILIES[n % len(FAMILIES)]} idm={idm.hex()} balance=5000"


DWELL_S = 15.0
"""How long the interactive demo stays on one project (its 3 s clips repeat), like a real 15-30 s movie."""


def prepare(cfg: KioskConfig, *, size: tuple[int, int], clip_s: float, dwell_s: float = 0.0) -> None:
    """Generated movies (reused on later runs) and a playlist of them when the config has none.

    ``dwell_s``: each project's clip repeats until it has been on screen about this long, so short demo
    clips do not change the project every few seconds (issue #15 item 15; a real movie is 15-30 s)."""
    from kiosk.player import demo_playlist, ensure_demo_media

    cfg.player.width, cfg.player.height = size
    clips = ensure_demo_media(cfg, size=size, seconds=clip_s)
    if not cfg.player.playlist:
        repeat = max(1, min(100, math.ceil(dwell_s / clip_s))) if dwell_s > 0 else 1
        cfg.player.playlist = [item.model_copy(update={"repeat": repeat}) for item in demo_playlist(clips)]


# --- the scripted (headless) run -------------------------------------------------------------

@dataclass
class Given:
    seq: int
    project: str
    amount_yen: int
    points: int


@dataclass
class ScriptResult:
    given: list[Given] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


class Script(threading.Thread):
    """Scripted citizens: touches where the buttons were drawn, and cards on the simulated reader.

    Three ways to give, in turn: one tap on the loop (the default amount), touch →
    amount → tap, and the same in English (so every screen and the toggle are used).
    """

    def __init__(self, app: Any, taps: int, first_n: int, out: TextIO, *, slow_first_charge_ms: int = 0,
                 portal: bool = False):
        super().__init__(name="demo-script", daemon=True)
        self.app = app
        self.portal = portal
        """The demo portal runs: each receipt's link opens there (without it, only the code is printed)."""
        self.taps = taps
        self.first_n = first_n
        self.out = out
        self.slow_first_charge_ms = slow_first_charge_ms
        self.result = ScriptResult()

    def run(self) -> None:
        try:
            for i in range(self.taps):
                if self.app.failed:
                    self.result.problems.append("the kiosk failed closed")
                    break
                self._one(self.first_n + i, first=i == 0)
        except Exception as exc:  # report, never hang the main loop
            log.exception("demo script failed")
            self.result.problems.append(f"script error: {exc}")
        finally:
            self.result.done.set()
            self.app.request_stop()

    def _reader_clear(self) -> None:
        """The previous citizen's card has left the reader: two cards at once are a collision, not a tap."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while self.app.sim.field and time.monotonic() < deadline:
            time.sleep(0.01)

    def _wait(self, what: str, pred: Any) -> Any:
        p = self.app.wait_presented(pred, STEP_TIMEOUT_S)
        if p is None:
            raise TimeoutError(f"no {what} screen within {STEP_TIMEOUT_S:.0f} s")
        return p

    def _press(self, p: Any, action: str, value: Any = None) -> None:
        from kiosk.app.runtime import target_center

        pos = target_center(p.targets, action, value)
        if pos is None:
            raise RuntimeError(f"no {action} button on the {p.screen.screen} screen")
        self.app.touch_at(pos)

    def _one(self, n: int, *, first: bool) -> None:
        from kiosk.ui.screens import chrome

        app = self.app
        cfg = app.cfg
        presets = cfg.donation.presets_yen
        # Give to the next project in the loop, so the gifts spread across every demo project
        # (the loop shows each one in turn; the gift goes to the project on screen).
        last = self.result.given[-1].project if self.result.given else None
        multi = len({it.project for it in cfg.player.playlist}) > 1
        p = self._wait("attract", lambda p: p.screen.screen == "attract" and p.screen.project is not None
                       and (not multi or p.screen.project != last))
        way = n % 3
        if way:
            self._press(p, chrome.TOUCH)
            p = self._wait("choose amount", lambda p: p.screen.screen == "choose_amount")
            if way == 2:
                self._press(p, chrome.LANG)
                p = self._wait("English", lambda p: p.screen.screen == "choose_amount" and p.screen.lang == "en")
            self._press(p, chrome.AMOUNT, presets[n % len(presets)])
            p = self._wait("tap card", lambda p: p.screen.screen == "tap_card")
        if first and self.slow_first_charge_ms and app.terminal is not None:
            app.terminal.slow_ms = self.slow_first_charge_ms  # long enough for the charging screen to be seen
        before = p.snapshot.version
        self._reader_clear()
        # An Express gift (no amount chosen) is charged after the card was held for [flow] express_cancel_ms:
        # hold it that long, as a donor does when the screen says so (docs/donation.md).
        hold_s = 0.15 + (cfg.flow.express_cancel_ms / 1000 + 0.3 if not way else 0.0)
        app.sim.tap(card_spec(n), hold_s)
        p = self._wait("thanks or error",
                       lambda p: p.snapshot.version > before and p.screen.screen in ("thanks", "error"))
        if app.terminal is not None:
            app.terminal.slow_ms = cfg.payment.sim_slow_ms
        if p.screen.screen == "thanks":
            t = p.screen
            self.result.given.append(Given(t.receipt_seq, t.project, t.amount_yen, t.points_earned))
            print(f"donation seq={t.receipt_seq} project={t.project} amount={t.amount_yen}", file=self.out, flush=True)
            # The receipt as the thank-you QR code gives it. A secret of the donor's: printed to this terminal
            # (the demo's own output), never logged.
            receipt = (f"  receipt: {app.ctx.receipt_url(t.receipt_code)}" if self.portal
                       else f"  receipt code: {t.receipt_code}")
            print(receipt, file=self.out, flush=True)
        else:
            e = p.screen
            self.result.problems.append(f"donation {n}: error screen {e.kind} ({e.hint})")
        # The thank-you ends only with its close button (a touch on the QR code must not end it).
        self._press(p, chrome.CANCEL if p.screen.screen == "thanks" else chrome.TOUCH)
        self._wait("attract", lambda p: p.screen.screen == "attract")


class Screenshots:
    """One PNG per screen, taken from flipped frames (and the error screens drawn over a real movie frame)."""

    def __init__(self, out_dir: Path):
        self.dir = out_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.saved: dict[str, Path] = {}
        self.bare: Any = None

    def attach(self, app: Any) -> None:
        app.frame_hooks.append(self.on_frame)
        app.player.add_overlay(self.keep_bare, z=-1)  # under the screens: the movie frame as it is

    def keep_bare(self, surface: Any, now_ms: int) -> None:
        self.bare = surface.copy()

    def on_frame(self, app: Any, pres: Any, surface: Any) -> None:
        import pygame

        name = pres.screen.screen + ("_en" if pres.screen.lang == "en" else "")
        if name not in self.saved and (name in LIVE_SHOTS or name == "attract_en"):
            path = self.dir / f"{name}.png"
            pygame.image.save(surface, str(path))
            self.saved[name] = path

    def drawn(self, app: Any) -> None:
        """Screens the scripted taps do not reach: every error kind, and any step a short run skipped."""
        import pygame

        from kiosk.donation import flow
        from kiosk.ui.screens import render

        cfg = app.cfg
        project = cfg.projects[0].id
        amount = cfg.donation.default_yen
        samples: dict[str, flow.Screen] = {
            "attract": flow.AttractScreen(project, amount, True, "ja"),
            "choose_amount": flow.ChooseAmountScreen(project, tuple(cfg.donation.presets_yen), amount, "ja"),
            "tap_card": flow.TapCardScreen(project, amount, "ja"),
            "charging": flow.ChargingScreen(project, amount, "ja"),
            "thanks": flow.ThanksScreen(project, amount, amount, 1, 1, "demo0000sample00", 0, "ja"),
            "thanks_en": flow.ThanksScreen(project, amount, amount, 1, 1, "demo0000sample00", 0, "en"),
        }
        kinds: dict[flow.ErrorKind, tuple[flow.Hint, int | None, int | None]] = {
            "card_unreadable": ("card_unreadable", None, None), "not_transit": ("not_transit", None, None),
            "balance_low": ("balance_low", 80, None), "limit_reached": ("limit_reached", None, 0),
            "declined": ("declined", None, None), "reader_offline": ("reader_offline", None, None),
            "unavailable": ("unavailable", None, None)}
        for kind in flow.ERROR_KINDS:
            hint, balance, remaining = kinds[kind]
            samples[f"error_{kind}"] = flow.ErrorScreen(kind, hint, flow.HINTS[hint], project, amount, balance,
                                                        remaining, "ja")
        base = self.bare if self.bare is not None else app.player.screen
        totals = app.ledger.totals()["projects"] if app.ledger is not None else {}
        ctx = app.ctx.with_totals({k: v["total_yen"] for k, v in totals.items()})
        for name, data in samples.items():
            if name in self.saved or base is None:
                continue
            surface = base.copy()
            render(data, surface, 0, ctx=ctx)
            path = self.dir / f"{name}.png"
            pygame.image.save(surface, str(path))
            self.saved[name] = path


# --- entry point ---------------------------------------------------------------------------------

def run_demo(taps: int, data_dir: Path, headless: bool, out: TextIO | None = None, *,
             screenshots: Path | None = None) -> int:
    out = out or sys.stdout
    if not headless and not has_display():
        print("kiosk demo: no display found; running headless", file=out, flush=True)
        headless = True
    cfg = demo_config(data_dir)
    from kiosk.app.runtime import App

    if cfg.staff.pin_hash:  # an older demo folder's kiosk.toml may have none
        print(f"kiosk demo: maintenance menu: tap the top-left corner 5 times within 3 s, PIN {DEMO_PIN}",
              file=out, flush=True)

    # The local portal: receipts' QR codes point at it and the ledger syncs to it (in memory only:
    # the port changes every run, so kiosk.toml keeps an offline kiosk).
    portal = None
    if portal_installed():
        portal = start_demo_portal(cfg, data_dir, out)
    else:
        print("kiosk demo: the portal is not installed here (pip install '.[portal]'); running without it",
              file=out, flush=True)
    if headless:
        cfg.player.display = "headless"
        cfg.reader.poll_interval_ms = 10  # scripted cards need not wait for a human-paced poll
        cfg.reader.cooldown_ms = 0  # the script's cards take turns faster than a person could
        prepare(cfg, size=HEADLESS_SIZE, clip_s=HEADLESS_CLIP_S)
        app = App(cfg, sound=False, receipt_base_url=portal.url if portal else None)
    else:
        cfg.player.display = "window"
        prepare(cfg, size=(cfg.player.width, cfg.player.height), clip_s=3.0, dwell_s=DWELL_S)
        app = App(cfg, allow_quit_key=True, receipt_base_url=portal.url if portal else None)
    shots = Screenshots(screenshots) if screenshots else None
    result: ScriptResult | None = None
    try:
        app.start()
        assert app.ledger is not None
        start_count = app.ledger.totals()["count"]
        if shots is not None:
            shots.attach(app)
        if headless:
            script = Script(app, taps, start_count, out, slow_first_charge_ms=300 if shots else 0,
                            portal=portal is not None)
            result = script.result
            script.start()
            app.run(until=lambda a: result.done.is_set())
            script.join(5)
        else:
            print("kiosk demo: keys 1-5 tap simulated cards (1 Suica, 2 PASMO, 3 ICOCA, 4 iPhone, "
                  "5 a card pulled away too soon); L switches language; Esc quits", file=out, flush=True)
            app.run()
        if shots is not None:
            shots.drawn(app)
        totals = app.ledger.totals()
        failed = app.failed
    finally:
        app.close()
    portal_totals, sync_problem = finish_sync(cfg, portal)
    return _summary(cfg, data_dir, totals, result, shots, failed, out, start_count, portal_totals, sync_problem)


class DemoPortal:
    """The demo's local portal: ``kiosk-portal serve`` as a child process on 127.0.0.1.

    A process of its own, not a thread: the kiosk never imports the portal service (the layering
    in docs/architecture.md), and a kiosk installed without the ``portal`` extra still runs the demo.
    """

    def __init__(self, db_url: str, port: int, proc: subprocess.Popen):
        self.db_url, self.url, self.proc = db_url, f"http://127.0.0.1:{port}", proc

    @classmethod
    def start(cls, db_path: Path, timeout_s: float = 30.0) -> DemoPortal:
        db_url = f"sqlite:///{db_path.resolve()}"
        # The child serves on the socket bound here. A port chosen here, let go and bound by the child a second
        # later could meanwhile be given to another program (another demo, or a test's server), and the demo
        # would then talk to that program.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            proc = subprocess.Popen(
                _portal_cmd("serve", "--db", db_url, "--fd", str(s.fileno()), "--log-level", "warning"),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=[s.fileno()])
        portal = cls(db_url, port, proc)
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace").strip().splitlines() if proc.stderr else []
                raise RuntimeError("the demo portal exited: " + (err[-1] if err else f"code {proc.returncode}"))
            try:
                if requests.get(portal.url + "/api/v1/totals", timeout=2).ok:
                    return portal
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                portal.stop()
                raise RuntimeError(f"the demo portal did not answer on {portal.url} within {timeout_s:.0f} s")
            time.sleep(0.1)

    def issue_code(self, kiosk_id: str) -> str:
        """A one-time enrollment code, exactly as staff would get it (``kiosk-portal enroll-code``)."""
        out = subprocess.run(_portal_cmd("enroll-code", "--db", self.db_url, "--kiosk-id", kiosk_id),
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"kiosk-portal enroll-code failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def import_catalog(self, cfg: KioskConfig, data_dir: Path) -> None:
        """Seed the portal's catalog with the demo's projects (``kiosk-portal catalog-import``), so its pages
        show titles and policy areas. The file stays in ``data_dir`` to show what a catalog looks like."""
        import json

        doc = {"projects": [p.model_dump(include={"id", "title", "title_en", "group", "area", "goal_yen"})
                            for p in cfg.projects]}
        path = data_dir / "catalog.json"
        write_atomic(path, json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
        out = subprocess.run(_portal_cmd("catalog-import", "--db", self.db_url, str(path)),
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"kiosk-portal catalog-import failed: {out.stderr.strip()}")

    def totals(self) -> dict[str, Any]:
        return requests.get(self.url + "/api/v1/totals", timeout=10).json()

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def _portal_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "server_sync.portal_cli", *args]


def portal_installed() -> bool:
    """Whether this environment has the portal's dependencies (the ``portal`` extra)."""
    return all(importlib.util.find_spec(m) is not None for m in ("fastapi", "uvicorn"))


def start_demo_portal(cfg: KioskConfig, data_dir: Path, out: TextIO) -> DemoPortal:
    """Start the demo portal on 127.0.0.1 (database ``DATA_DIR/portal.db``) and enroll this kiosk."""
    from kiosk.sync.uploader import enroll_kiosk

    ensure_secrets(cfg)  # enrollment registers the kiosk's public key
    handle = DemoPortal.start(data_dir / "portal.db")
    try:
        handle.import_catalog(cfg, data_dir)
        enroll_kiosk(cfg, handle.url, handle.issue_code(cfg.kiosk.id))
    except Exception:
        handle.stop()
        raise
    cfg.portal.url = handle.url
    cfg.portal.sync_interval_s = 5
    print(f"kiosk demo: portal at {handle.url} (totals: {handle.url}/ , receipts: {handle.url}/r/<code>)",
          file=out, flush=True)
    print(f"kiosk demo: afterwards, `kiosk-portal serve --db {handle.db_url}` shows the same data",
          file=out, flush=True)
    return handle


def finish_sync(cfg: KioskConfig, portal: DemoPortal | None) -> tuple[dict | None, str | None]:
    """Upload what the background sync has not yet (the closing checkpoint included), then stop the portal."""
    from kiosk.sync.uploader import forget_portal, sync_kiosk

    if portal is None:
        return None, None
    try:
        state = sync_kiosk(cfg, portal.url)
        waiting = "an unknown number of" if state.pending is None else state.pending
        problem = None if state.ok else f"sync incomplete: {waiting} entries pending ({state.last_error})"
        return portal.totals(), problem
    finally:
        portal.stop()
        # Its port dies with it: leave the data dir enrolled nowhere rather than tied to a dead address
        # (the next demo enrolls with its new portal; `kiosk enroll` joins a real one).
        forget_portal(cfg, "the demo portal stopped with the demo")


def _n(count: int, noun: str, width: int = 0) -> str:
    """"1 donation", "2 donations" (issue #15 item 15: the summary said "1 donations")."""
    return f"{count:>{width}} {noun}{'' if count == 1 else 's'}"


def _summary(cfg: KioskConfig, data_dir: Path, totals: dict, result: ScriptResult | None, shots: Screenshots | None,
             failed: bool, out: TextIO, start_count: int, portal_totals: dict | None = None,
             sync_problem: str | None = None) -> int:
    given = totals["count"] - start_count
    print(f"summary: {_n(given, 'donation')} this run; ledger holds {_n(totals['count'], 'donation')}, "
          f"¥{totals['total_yen']:,} in all", file=out)
    portal_by_id = {p["id"]: p for p in (portal_totals or {}).get("projects", [])}
    head = f"  {'project':<16} {'ledger':>22}"
    print(head + (f"  {'portal':>22}" if portal_totals is not None else ""), file=out)
    for pid, t in totals["projects"].items():
        line = f"  {pid:<16} {_n(t['count'], 'donation', 5):>15} ¥{t['total_yen']:>9,}"
        if portal_totals is not None:
            pt = portal_by_id.get(pid, {"count": 0, "total_yen": 0})
            line += f"  {_n(pt['count'], 'donation', 5):>15} ¥{pt['total_yen']:>9,}"
        print(line, file=out)
    mismatch = False
    if portal_totals is not None:
        mismatch = (
            (portal_totals["count"], portal_totals["total_yen"]) != (totals["count"], totals["total_yen"])
            or any((portal_by_id.get(pid, {}).get("count"), portal_by_id.get(pid, {}).get("total_yen"))
                   != (t["count"], t["total_yen"]) for pid, t in totals["projects"].items())
        )
        print(("portal totals match the ledger" if not mismatch else "PORTAL TOTALS DIFFER FROM THE LEDGER")
              + f": {_n(portal_totals['count'], 'donation')}, ¥{portal_totals['total_yen']:,}", file=out)
    if sync_problem:
        print(f"problem: {sync_problem}", file=out)
    if result is not None and result.given and portal_totals is not None:
        print(f"receipts: the links above open on the demo portal, which stopped with the demo; "
              f"`kiosk-portal serve --db sqlite:///{(data_dir / 'portal.db').resolve()}` serves them again "
              "(its address + /r/<code>)", file=out)
    if result is not None:
        points = sum(g.points for g in result.given)
        print(f"points: {points} earned this run ({cfg.donation.points_per_100_yen} per ¥100)", file=out)
        for problem in result.problems:
            print(f"problem: {problem}", file=out)
    if shots is not None:
        print(f"screenshots: {len(shots.saved)} PNGs in {shots.dir}", file=out)
    check = verify_path(cfg.ledger_path)
    print(("ledger verified: " if check.ok else "LEDGER INVALID: ") + check.summary(), file=out)
    print(f"data dir: {data_dir.resolve()}", file=out, flush=True)
    bad = failed or not check.ok or (result is not None and bool(result.problems)) or mismatch or bool(sync_problem)
    return 1 if bad else 0

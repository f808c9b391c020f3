"""Helpers for the sync tests: test kiosks (Rig) and hand-built signed requests."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
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
from tests.loopback import free_port  # noqa: F401  (the end-to-end tests import it from here)

# Debian's Chromium, driven by Playwright (the browser fixture in conftest.py); the flags keep it off the network.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason=f"{CHROMIUM} not installed (apt-get install -y chromium)")

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

    def rekey(self) -> None:
        """``kiosk rekey`` (the old key vouches for the new one), and the ledger opened again as `kiosk run` would
        after it: its next entries are signed by the new key."""
        from kiosk.cli import main as kiosk_main

        assert kiosk_main(["rekey", "--config", str(self.config_path)]) == 0
        self.ledger.close(checkpoint=False)
        self.ledger = open_ledger(self.cfg, clock=self.clock)

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


def lose_key(rig: Rig, portal: PortalHandle, capsys: Any) -> re.Match[str]:
    """The kiosk's key in force is lost: ``kiosk rekey --old-key-lost`` makes a new one, an administrator vouches
    for it with the ``kiosk-portal kiosk rekey`` line the kiosk printed, and the ledger is opened again with it.
    Returns the printed line's match (kiosk id, public key, from-seq)."""
    from kiosk.cli import main as kiosk_main
    from server_sync.portal_cli import main as portal_main

    rig.cfg.private_key_path.unlink()
    rig.ledger.close(checkpoint=False)
    capsys.readouterr()
    assert kiosk_main(["rekey", "--config", str(rig.config_path), "--old-key-lost"]) == 0
    m = re.search(r"kiosk-portal kiosk rekey (\S+) --public-key ([0-9a-f]{64}) --from-seq (\d+)",
                  capsys.readouterr().out)
    assert m
    assert portal_main(["kiosk", "rekey", "--db", portal.db_url, rig.kiosk_id, "--public-key", m.group(2),
                        "--from-seq", m.group(3)]) == 0
    rig.ledger = open_ledger(rig.cfg, clock=rig.clock)
    return m


def replace_lost_key(rig: Rig, portal: PortalHandle, capsys: Any, gifts: int) -> tuple[list[Any], re.Match[str]]:
    """:func:`lose_key`, then the kiosk gives ``gifts`` more, checkpoints and uploads them. Returns the new
    gifts and the printed line's match (kiosk id, public key, from-seq)."""
    m = lose_key(rig, portal, capsys)
    after = rig.donate(gifts)
    rig.ledger.checkpoint()
    up = rig.uploader(portal.url)
    assert up.sync_once().ok and up.sync_once().ok
    return after, m


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


# --- staff pages in Chromium ----------------------------------------------------------------------------------
PASSWORD = "correct horse battery"
"""The password the sync tests give the staff users they add (server_sync.staff.add_user)."""


ONE_PROJECT_CATALOG = {
    "groups": [{"id": "group-a", "name": "Aの会", "contact": "a@example.jp"}],
    "projects": [{"id": "proj-a", "group_id": "group-a", "title": "Aのプロジェクト", "area": "green",
                  "goal_yen": 1000}]}
"""One group and its project, for the playlist and kiosk-page tests (:func:`seed_playlist_center`)."""


def seed_playlist_center(engine: Any, users: tuple[str, ...] = ("yamada", "suzuki")) -> str:
    """:data:`ONE_PROJECT_CATALOG` imported, ``users`` added as staff, and one stored video of proj-a (a playlist
    can name it); returns the video's sha256."""
    from server_sync import catalog, configstore
    from server_sync.db import media_info, writing
    from server_sync.staff import add_user

    catalog.import_catalog(engine, ONE_PROJECT_CATALOG)
    for user in users:
        add_user(engine, user, PASSWORD, "staff")
    sha = configstore.add_media(engine, b"clip" * 100, "video/mp4")
    with writing(engine) as conn:
        conn.execute(media_info.insert().values(sha256=sha, name="a.mp4", group_id="group-a", project_id="proj-a",
                                                created_ms=int(time.time() * 1000)))
    return sha


def staff_session(url: str, user: str, *, password: str = PASSWORD, lang: str = "ja") -> tuple[requests.Session, str]:
    """An HTTP session signed in as ``user`` on the staff side (``lang`` chosen first), and its CSRF token."""
    s = requests.Session()
    if lang == "en":
        s.get(url + "/staff/lang?to=en", timeout=10)
    r = s.post(url + "/staff/login", data={"username": user, "password": password}, timeout=10)
    assert r.status_code == 200, r.text
    token = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert token is not None, "no CSRF token on the page after signing in"
    return s, token.group(1)


def staff_page(browser: Any, url: str, user: str, password: str = PASSWORD, size: tuple[int, int] = (390, 844)) -> Any:
    """A Chromium page of its own (its own cookies: one user per page) signed in as ``user`` on the staff side,
    in Japanese, at ``size`` (a phone by default), on the dashboard."""
    page = browser.new_page(viewport={"width": size[0], "height": size[1]}, locale="ja-JP")
    page.goto(url + "/staff/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/staff")
    return page


# --- a real `kiosk run` process beside the portal (the end-to-end tests) --------------------------------------
E2E_KIOSK = "e2e-kiosk-1"


def wait_for(pred: Callable[[], Any], timeout_s: float, what: str, proc: subprocess.Popen | None = None) -> Any:
    """Poll ``pred`` until it answers something true (returned); fail naming ``what``, or at once if ``proc``
    (the kiosk) exits meanwhile."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the kiosk exited ({proc.returncode}) while waiting for {what}")
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def sim_line(port: int, line: str) -> str:
    """One command to the kiosk's simulated reader on its socket (``tap suica idm=… hold=…``); its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(line.encode() + b"\n")
        return s.makefile().readline().strip()


def e2e_kiosk_config(tmp_path: Path, portal_url: str, sim_port: int, size: tuple[int, int]) -> Path:
    """A headless kiosk's config file (simulated reader on ``sim_port``, one old project and demo clips to play
    before the portal says otherwise) and its key, in ``tmp_path``."""
    from kiosk.config import load_config
    from kiosk.player import ensure_demo_media

    data = tmp_path / "kiosk-data"
    path = tmp_path / "kiosk.toml"
    path.write_text(f'''[kiosk]
id = "{E2E_KIOSK}"
data_dir = "{data}"

[player]
display = "headless"
width = {size[0]}
height = {size[1]}

[reader]
backend = "sim"
sim_socket = "tcp:127.0.0.1:{sim_port}"
poll_interval_ms = 10
cooldown_ms = 0

[portal]
url = "{portal_url}"
sync_interval_s = 5

[[projects]]
id = "old-project"
title = "古いプロジェクト"
area = "town"

[[player.playlist]]
project = "old-project"
''', "utf-8")
    cfg = load_config(path)
    ensure_secrets(cfg)  # the kiosk's key, which enrollment registers
    ensure_demo_media(cfg, size=size, seconds=0.5)
    return path


def start_kiosk(config: Path, portal_url: str, code: str, log_path: Path) -> subprocess.Popen:
    """``kiosk enroll`` with ``code``, then ``kiosk run`` as a process of its own (output in ``log_path``)."""
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "SDL_AUDIODRIVER": "dummy"}
    r = subprocess.run([sys.executable, "-m", "kiosk", "enroll", "--config", str(config), "--portal", portal_url,
                        "--code", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(log_path, "w") as log:  # the child holds its own descriptor
        return subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(config)], env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def wait_adopted(engine: Any, version: int, kiosk: subprocess.Popen) -> None:
    """Until the portal has heard from the kiosk that it runs config ``version``."""
    from server_sync import queries

    def applied() -> bool:
        k = next((k for k in queries.fleet(engine) if k["id"] == E2E_KIOSK), None)
        return k is not None and k["config_applied"] == version
    wait_for(applied, 90, f"the kiosk to adopt config v{version}", kiosk)


def screen_capture(kiosk: subprocess.Popen, tmp_path: Path) -> Path:
    """A fresh capture of the kiosk's screen (SIGUSR1 → DATA_DIR/screen.png)."""
    screen = tmp_path / "kiosk-data" / "screen.png"
    screen.unlink(missing_ok=True)
    kiosk.send_signal(signal.SIGUSR1)
    wait_for(screen.exists, 10, "a screen capture", kiosk)
    return screen


def stop_kiosk(kiosk: subprocess.Popen | None, log_path: Path) -> None:
    """A clean stop (SIGTERM, exit 0 within 30 s, else its log's tail in the failure); killed if it hangs."""
    if kiosk is None:
        return
    kiosk.terminate()
    try:
        assert kiosk.wait(30) == 0, log_path.read_text()[-3000:]
    finally:
        if kiosk.poll() is None:
            kiosk.kill()


# --- several portal workers on one database (test_ingest_workers.py, test_verifier_states.py) ----------
def sync_to(rig: Rig, portal: PortalHandle) -> None:
    """One sync of the kiosk, to ``portal``'s worker: portals on one database stand for one address behind a
    proxy, each sync landing on whichever worker accepts it."""
    up = rig.uploader()
    up.state.portal_url = portal.url
    try:
        assert up.sync_once().ok
    finally:
        up.close()


def chain_figures(st: Any) -> dict[str, Any]:
    """Everything a verifier's state (a ``LedgerState``) carries into the next batch, to compare two."""
    keep = ("size", "tip", "boot", "sigs", "project_totals", "kiosk_total", "intents", "idem", "resolution",
            "donations", "voided", "cp_size", "cp_note", "cp_root", "cp_mono", "genesis", "kiosk_id", "key_id",
            "public_key", "key_changes")
    return {k: getattr(st, k) for k in keep} | {"tree": (st.tree.size, st.tree.root())}


# --- a portal with one group and its editor (the movie maker's walkthrough tests) ---------------------------------
EDITOR_CATALOG = {"groups": [{"id": "kodomo-club", "name": "子ども応援団"}],
                  "projects": [{"id": "kodomo-shokudo", "group_id": "kodomo-club", "title": "みんなのこども食堂",
                                "summary": "毎週土曜の食堂です", "area": "children", "goal_yen": 50000}]}
"""One group, its project, and (in :func:`editor_portal`) ``editor1``, the group's editor."""
EDITOR_MOVIE_SIZE = (320, 180)
"""The size the walkthrough tests make movies at (conftest's ``editor_site``): small, so one is made in seconds."""


def editor_portal(tmp_path: Path, size: tuple[int, int]) -> PortalHandle:
    """A real portal (SQLite under ``tmp_path``, movies made at ``size``) with :data:`EDITOR_CATALOG` and the
    group's editor ``editor1`` (password :data:`PASSWORD`); the caller stops it."""
    from server_sync import catalog
    from server_sync.embedded import start_portal
    from server_sync.staff import add_user

    p = start_portal(f"sqlite:///{tmp_path / 'portal.db'}", media_size=size, movie_size=size,
                     spool_dir=str(tmp_path / "spool"))
    catalog.import_catalog(p.app.state.engine, EDITOR_CATALOG)
    add_user(p.app.state.engine, "editor1", PASSWORD, "editor", "kodomo-club")
    return p


def staff_link(page: Any, href: str) -> None:
    """Follow the staff menu's link to ``href`` as a person would: on a phone the menu is folded under 「メニュー」
    (base.html), so they open it first; on a wide screen the links are in sight."""
    summary = page.locator("header details.menu > summary")
    if summary.is_visible() and not page.locator("header details.menu").evaluate("d => d.open"):
        summary.click()
    page.click(f"nav.staffnav a[href='{href}']")


def movie_maker_page(browser: Any, url: str, size: tuple[int, int] = (390, 844)) -> Any:
    """``editor1`` signed in (:func:`staff_page`, a phone by default) and on the movie maker's page, as an editor gets
    there: from the dashboard's link."""
    page = staff_page(browser, url, "editor1", size=size)
    staff_link(page, "/staff/movies")
    page.wait_for_url("**/staff/movies")
    return page


def points_service(rig: Rig, terminal: Any, desk: Any) -> Any:
    """The donation service as `kiosk run` builds it, with points desk ``desk`` and the "use your points" offer
    decided as the app decides it (kiosk/app/points.py ``PointsOffer``), started."""
    from kiosk.app.points import PointsOffer
    from kiosk.donation.service import DonationService
    from kiosk.sync.configapply import load_applied

    svc = DonationService.for_config(rig.cfg, rig.ledger, terminal, points=desk)
    svc.settings = PointsOffer(rig.cfg, load_applied(rig.cfg.data_dir)).apply(svc.settings, rig.ledger,
                                                                             rig.ledger.business_date_at_least())
    assert svc.settings.points_exchange
    svc.start()
    return svc


def points_screen(svc: Any, token: Any) -> Any:
    """The citizen's points screen after tapping card ``token`` at the kiosk's "use your points" button (what it says
    the card may spend here: ``.spendable``)."""
    from kiosk.donation import flow

    now = svc.now_ms()
    svc.handle(flow.Cancel(now_ms=now))
    svc.handle(flow.OpenPoints(now_ms=now))
    svc.handle(flow.Tap(now_ms=now, donor=token, family="suica", balance_yen=5000))
    screen = svc.screen
    assert isinstance(screen, flow.PointsScreen) and screen.phase == "choose", screen
    return screen

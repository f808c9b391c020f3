"""Cold start (#16): what `kiosk run` imports before it is ready for a tap.

Every start of the kiosk (a watchdog restart, a power cut) leaves the lobby screen dark until READY=1; at a
quarter of a Pi-class core each 0.1 s of imports costs about 0.4 s of that (docs/performance.md, "Cold start").
These tests pin what must stay off that path, in a fresh interpreter that does what `kiosk run` does: the
CLI parses ``run``, the config loads (``load_run_config``: from the validated-config cache when the file is
unchanged since the last start), ``App.start()`` (after which run_kiosk sends READY=1), one main-loop step
(the first frame). Not a timed test: it checks module names, which do not depend on the machine's load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kiosk.app.demo import demo_template
from kiosk.config import to_toml, validate_config

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys
from kiosk import cli

argv = ["run", "--config", sys.argv[1]]
args = cli.build_parser(argv).parse_args(argv)
after_cli = set(sys.modules)
from kiosk.config.cache import load_run_config
from kiosk.app.runtime import App

cfg, config_cached = load_run_config(args.config)
app = App(cfg, config_path=args.config, sound=False)
app.start(movie=False)  # as run_kiosk does
at_ready = set(sys.modules)  # run_kiosk sends READY=1 right here
tree = sys.modules.get("kiosk.config.tree")
validator_built_at_ready = bool(tree and tree.KioskConfig.__pydantic_complete__)
movie_on_at_ready = app.movie_on
signing_at_ready = app.ledger._signer.backend
snapshots_at_ready = app.worker.idle_snapshots
app.after_ready()  # run_kiosk, right after READY=1
signing_after = app.ledger._signer.backend
snapshots_after = app.worker.idle_snapshots
app.step()
at_first_frame = set(sys.modules)
try:
    import time
    deadline = time.monotonic() + 30
    while not app.movie_on and time.monotonic() < deadline:
        app.step()
    movie_on = app.movie_on
    # Jobs run in order on the worker: this one sees what the first step queued for after the first frame.
    warmed_before_a_tap = app.worker.call(lambda _svc: "segno" in sys.modules).result(timeout=60)
    assert app.staff is not None and app.staff.sync is not None, "the config names a portal: sync must exist"
    # A donor's card and a touch outside the hidden corner are answered without building the menu. The card (key 1's
    # Suica) stays on the simulated reader until it is read: a key's tap lasts 0.3 s, which a reader thread starved
    # on a loaded host can miss, and then no tap was answered at all.
    detected = app.detected_at
    app.sim.place("suica")
    app.touch_at((cfg.player.width // 2, cfg.player.height // 2))
    deadline = time.monotonic() + 30
    while app.detected_at == detected and time.monotonic() < deadline:
        app.step()
    tap_read = app.detected_at != detected
    app.sim.remove("all")
    for _ in range(10):
        app.step()
    before_menu = set(sys.modules)
    menu_page = app.staff.menu.page  # built on first use
finally:
    app.close()
print(json.dumps({"after_cli": sorted(after_cli), "at_ready": sorted(at_ready),
                  "at_first_frame": sorted(at_first_frame), "before_menu": sorted(before_menu),
                  "menu_page": menu_page, "tap_read": tap_read, "warmed_before_a_tap": warmed_before_a_tap,
                  "config_cached": config_cached, "validator_built_at_ready": validator_built_at_ready,
                  "movie_on_at_ready": movie_on_at_ready, "movie_on": movie_on,
                  "signing_at_ready": signing_at_ready, "signing_after": signing_after,
                  "snapshots_at_ready": snapshots_at_ready, "snapshots_after": snapshots_after}))
"""

MOVIE = ("av", "nacl")
"""PyAV: imported on the decode thread, which `kiosk run` starts right after READY=1 (a tap needs the display, the
ledger and the reader; the movie's first frame follows, over the still and the attract screen). PyNaCl: the
ledger signs with libsodium from then on (kiosk/ledger/signing.py), with ``cryptography`` before."""

HEAVY = ("sqlalchemy", "requests", "urllib3", "kiosk.ledger.export", "kiosk.ledger.verify", "multiprocessing",
         "segno", "xml.sax", "urllib.request", "http.client", "ssl", "server_sync.wire.configdoc")
"""What the running kiosk needs only off the start path: the off-line ledger readers and verification, the
uploader's HTTP, the receipt's QR code (segno, whose writers pull in urllib, http, email and ssl: loaded on the
worker after the first frame), the pushed config's pydantic models (used when the sync thread applies one)."""

CONFIG_MODELS = ("pydantic", "pydantic_core", "kiosk.config.tree", "kiosk.config.base", "kiosk.config.kiosk",
                 "kiosk.config.player", "kiosk.config.staff", "kiosk.config.reader", "kiosk.config.payment",
                 "kiosk.config.donation", "kiosk.sync.adopt")
"""The config's pydantic models: a restart with an unchanged file runs on the cache's plain copy."""

MENU = ("kiosk.staff.menu.controller", "kiosk.staff.menu.model", "kiosk.staff.menu.pages", "kiosk.ui.menu.render",
        "kiosk.staff.refund", "kiosk.staff.closeout", "kiosk.staff.volunteer", "kiosk.staff.usb_export")
"""The maintenance menu: built when staff first open it."""

OTHER_COMMANDS = ("kiosk.reader.cli", "kiosk.player.cli", "kiosk.sync.cli", "kiosk.sync.receipt_cli",
                  "kiosk.staff.cli", "kiosk.payment.cli")


def _loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


def test_kiosk_run_reaches_ready_without_sqlalchemy_requests_the_menu_or_other_commands_or_pydantic(tmp_path):
    data = demo_template()
    data["kiosk"]["data_dir"] = str(tmp_path / "data")
    data["player"] = {"display": "headless", "width": 320, "height": 180}
    data["reader"] = {"backend": "sim", "poll_interval_ms": 10, "cooldown_ms": 0}
    data["portal"] = {"url": "http://127.0.0.1:9"}  # a production kiosk syncs: the uploader is built at start
    cfg = validate_config(data, "<test>", tmp_path / "data")
    path = tmp_path / "kiosk.toml"
    path.write_text(to_toml(cfg), "utf-8")
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1",
           "PYTHONPATH": str(ROOT)}
    (tmp_path / "data").mkdir()  # where the first start leaves the validated-config cache

    def start() -> dict:
        res = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=120, check=False)
        assert res.returncode == 0, res.stderr[-3000:]
        return json.loads(res.stdout.strip().splitlines()[-1])

    first = start()
    assert not first["config_cached"] and first["validator_built_at_ready"]  # validated in full, then kept
    got = start()  # a restart (the watchdog, a power cut) with the same file

    assert got["config_cached"]
    assert not got["validator_built_at_ready"]  # pydantic built no validator: the config came validated
    # Nor imported pydantic or the config's models: the kiosk runs on the plain copy the cache kept
    # (kiosk/config/plain.py), ≈ 30 % of the instructions to READY=1.
    assert _loaded(got["at_ready"], CONFIG_MODELS) == []
    assert "pydantic" in first["at_ready"]  # the first start validated the file: the check can fail
    assert _loaded(got["after_cli"], OTHER_COMMANDS) == []  # `kiosk run` imports no other command's module
    assert _loaded(got["at_ready"], HEAVY) == []
    assert _loaded(got["at_ready"], MENU) == []
    assert _loaded(got["at_first_frame"], MENU) == []
    assert got["tap_read"]  # the donor's card was read...
    assert _loaded(got["before_menu"], MENU) == []  # ...and the tap and the touch did not build it either
    assert got["menu_page"] is None  # built on first use, closed
    assert got["warmed_before_a_tap"]  # the thank-you's QR code does not import segno on the tap's path
    for run in (first, got):
        assert _loaded(run["at_ready"], HEAVY) == [] and _loaded(run["at_ready"], MENU) == []
        assert _loaded(run["at_ready"], MOVIE) == [] and not run["movie_on_at_ready"]
        assert (run["signing_at_ready"], run["signing_after"]) == ("cryptography", "libsodium")
        # The ledger's state snapshot is not written while the kiosk starts, only once it is up.
        assert (run["snapshots_at_ready"], run["snapshots_after"]) == (False, True)
        assert "nacl.bindings" in run["at_first_frame"]
        assert run["movie_on"]  # and the movie does come, once its decoding started

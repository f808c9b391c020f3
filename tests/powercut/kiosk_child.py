"""One life of a real kiosk for the power-cut campaign: started, worked, and killed with the power.

    python tests/powercut/kiosk_child.py --data DIR --outside DIR --portal URL --code CODE --seed N

``DIR`` is on the power-cut filesystem; ``--outside`` holds what is not the kiosk's disk (the simulated
terminal's own durable state, the demo clips a technician would import from). What the process does,
in the order a real kiosk does it:

1. first boot: the signing key and the pepper (``ensure_secrets``);
2. enrollment with the portal when ``sync-state.json`` says it is not enrolled (the same one-time code
   again after a cut: enrollment must be idempotent);
3. media import: a clip per project into the media cache (a no-op once they are there);
4. the kiosk itself (:class:`kiosk.app.runtime.App`, headless): donations by scripted citizens
   (touch, amount, tap on the simulated reader; the demo's script), background sync to the portal
   (sync-state updates, config pushes adopted with their clips), and a staff thread doing close-outs
   (Z reports) and volunteer point grants through the ledger's one writer.

Every acknowledgement goes to stdout, flushed, one line each, *after* the durable commit it reports —
the harness holds the kiosk to each of them after a cut::

    start                         the code is loaded; the disk is next
    secrets                       key and pepper exist
    enrolled                      the portal accepted the key and sync-state.json says so
    ready seq=N                   the kiosk is up (ledger open, intents resolved)
    donation seq=N project=P amount=A   a thank-you screen was flipped
    closeout seq=N                a Z report was appended
    grant seq=N points=P          volunteer points were granted
    adopted version=V             a pushed config was recorded and adopted
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import sys
import threading
from pathlib import Path
from typing import Any

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

SIZE = (160, 90)
PRESETS = [100, 500, 1000]


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def build_config(data: Path, outside: Path, portal: str) -> Any:
    from kiosk.app.demo import demo_template
    from kiosk.config import validate_config

    demo = demo_template()
    doc: dict[str, Any] = {
        "kiosk": {"id": data.name, "name": "power-cut campaign", "data_dir": str(data), "timezone": "Asia/Tokyo",
                  "language": "ja", "log_level": "WARNING"},
        # Checkpoints and state snapshots often, so cuts land in them too.
        "ledger": {"checkpoint_every": 7, "snapshot_every": 3},
        "player": {"display": "headless", "width": SIZE[0], "height": SIZE[1]},
        "reader": {"backend": "sim", "poll_interval_ms": 10, "cooldown_ms": 0},
        "donation": dict(demo["donation"]),
        "projects": demo["projects"],
        # The terminal is another device: its record of charges is not on the kiosk's disk.
        "payment": {"terminal": "sim", "sim_state": str(outside / "payment-sim.db")},
        "portal": {"url": portal, "sync_interval_s": 5},
        "volunteer": {"activities": [{"id": "park-cleanup", "title": "公園清掃", "points": 10}],
                      "daily_limit_per_card": 100000},
    }
    return validate_config(doc, "<power-cut campaign>", data)


def enrolled(cfg: Any, portal: str) -> bool:
    from kiosk.sync.uploader import SyncState

    st = SyncState.load(cfg.data_dir / "sync-state.json")
    return st.enrolled_ms is not None and st.portal_url == portal.rstrip("/")


def import_media(cfg: Any, clips: Path) -> None:
    """A technician's `kiosk media import`, of clips already in the cache format: one per project."""
    import shutil

    from kiosk.player import demo_playlist
    from kiosk.player.media import MediaCache

    cache = MediaCache(cfg.data_dir / "media")
    have = {e.project for e in cache.entries()}
    for src in sorted(clips.glob("*.mp4")):
        project = src.stem
        if project in have:
            continue
        tmp = cache.tmp_dir() / src.name
        shutil.copyfile(src, tmp)
        cache.add(tmp, project=project, title=project, source=src.name)
    cache.clean_tmp()
    entries = cache.entries()
    cfg.player.playlist = demo_playlist([type("C", (), {"project_id": e.project, "sha256": e.sha256})()
                                         for e in entries])


class StaffThread(threading.Thread):
    """Close-outs and volunteer grants, through the ledger's one writer, as the menu would."""

    def __init__(self, app: Any, rng: random.Random, stop: threading.Event):
        super().__init__(name="campaign-staff", daemon=True)
        self.app, self.rng, self.stop_ev = app, rng, stop

    def run(self) -> None:
        from kiosk.app.demo import simulated_idm
        from kiosk.config.staff import ops_settings
        from kiosk.ledger import Pepper
        from kiosk.staff import closeout, volunteer

        settings = ops_settings(self.app.cfg).volunteer
        pepper = Pepper.load(self.app.cfg.pepper_path)
        writer = self.app.ledger_writer
        while not self.stop_ev.wait(self.rng.uniform(0.2, 0.8)):
            try:
                if self.rng.random() < 0.4:
                    e = closeout.z_report(writer, force=True, trigger="staff")
                    say(f"closeout seq={e.seq}")
                else:
                    donor = pepper.token(simulated_idm(self.rng.randrange(5)))
                    pts = self.rng.choice([5, 10, 20])
                    e = volunteer.grant(writer, settings, "park-cleanup", pts, donor)
                    say(f"grant seq={e.seq} points={pts}")
            except Exception as exc:  # noqa: BLE001 - the kiosk shutting down; report and stop
                logging.getLogger("campaign").warning("staff action: %s", exc)
                return


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--outside", type=Path, required=True)
    ap.add_argument("--portal", required=True)
    ap.add_argument("--code", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--taps", type=int, default=1000)
    ap.add_argument("--no-staff", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="kiosk %(levelname)s %(name)s: %(message)s")
    rng = random.Random(args.seed)

    from kiosk.app.demo import Script
    from kiosk.app.runtime import App
    from kiosk.ops.local_files import ensure_secrets
    from kiosk.sync.uploader import enroll_kiosk

    cfg = build_config(args.data, args.outside, args.portal)
    say("start")  # imports done: from here on the kiosk touches its disk
    ensure_secrets(cfg)
    say("secrets")
    if not enrolled(cfg, args.portal):
        enroll_kiosk(cfg, args.portal, args.code)
    say("enrolled")
    import_media(cfg, args.outside / "clips")

    app = App(cfg, sound=False)
    staff_stop = threading.Event()

    def on_adopted(record: dict) -> None:
        say(f"adopted version={record['version']}")

    app.start()
    try:
        assert app.ledger is not None and app.staff is not None
        if app.staff.sync is not None:
            applier = app.staff.sync.uploader.applier
            inner = applier.on_config
            applier.on_config = lambda rec: (inner(rec) if inner else None, on_adopted(rec))
        say(f"ready seq={app.ledger.size}")
        start_count = app.ledger.totals()["count"]
        script = Script(app, args.taps, start_count + rng.randrange(1000), sys.stdout)
        script.start()
        if not args.no_staff:
            StaffThread(app, rng, staff_stop).start()
        rc = app.run(until=lambda a: script.result.done.is_set())
    finally:
        staff_stop.set()
        app.close()
    digest = hashlib.sha256(cfg.ledger_path.read_bytes()).hexdigest()[:12]
    say(f"closed rc={rc} ledger={digest}")
    return rc


def zygote(address: str) -> int:
    """Load the kiosk's code once, then fork one kiosk per request (the campaign's lives start in
    milliseconds instead of a second of imports). A request: JSON argv, with the child's stdout and
    stderr as two file descriptors; the answer: the child's pid. Children are reaped automatically."""
    import json
    import signal
    import socket

    import kiosk.app.demo  # noqa: F401 - the imports are the point: pygame, PyAV, SQLAlchemy, the app
    import kiosk.app.runtime  # noqa: F401
    import kiosk.staff.closeout  # noqa: F401
    import kiosk.staff.volunteer  # noqa: F401
    import kiosk.sync.uploader  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    if os.path.exists(address):
        os.unlink(address)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(address)
    srv.listen(8)
    say("zygote ready")
    while True:
        conn, _ = srv.accept()
        with conn:
            msg, fds, _flags, _addr = socket.recv_fds(conn, 65536, 2)
            if not msg:
                return 0
            argv = json.loads(msg)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the kiosk
                rc = 1
                try:
                    srv.close()
                    conn.close()
                    os.setsid()
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    os.dup2(fds[0], 1)
                    os.dup2(fds[1], 2)
                    for fd in fds:
                        os.close(fd)
                    rc = main(argv)
                except BaseException:  # noqa: BLE001 - report like a crashed process would, then exit
                    import traceback

                    traceback.print_exc()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(rc)
            for fd in fds:
                os.close(fd)
            conn.sendall(str(pid).encode())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--zygote":
        sys.exit(zygote(sys.argv[2]))
    sys.exit(main())

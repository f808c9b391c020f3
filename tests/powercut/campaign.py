"""The power-cut campaign: a real kiosk process on the power-cut filesystem, cut at random moments.

    python tests/powercut/campaign.py [--cuts N] [--seed S] [--root DIR]      (N default $POWERCUT_CUTS or 200)

Each *episode* is a new kiosk on a fresh disk (so first boot — key, pepper, enrollment, media import —
is cut too), enrolled with one portal that lives for the whole campaign (in this process, on SQLite,
never cut). Each *life* of an episode starts ``kiosk_child.py`` on the mounted disk, lets it work for a
random time (from a few milliseconds to a few seconds: start-up, donations, close-outs, grants, sync,
config pushes), then cuts the power: unsynced writes are dropped, the process is killed with SIGKILL,
the disk is unmounted and mounted again. After every cut, before the next boot, the harness checks:

- the ledger passes ``PRAGMA integrity_check`` and verifies (signatures, chain, checkpoints, and its
  state snapshot against its entries), and opening it from the snapshot gives the state of a full replay;
- every donation whose thank-you was flipped is in the ledger at the sequence number shown, exactly
  once (one settlement per intent), and so is every acknowledged close-out and points grant;
- every charge the simulated terminal holds (its durable record, off the kiosk's disk) has its intent
  in the ledger;
- once enrolled, ``sync-state.json`` still says enrolled, with this portal; once created, the key and
  pepper are still there.

And the next boot must come up ("ready"). At the end of each episode one more life runs to a clean
stop, a sync uploads everything, and the portal's totals must equal the ledgers' totals exactly.

It prints one JSON line: cuts, acknowledged donations checked, losses (must be 0), and what was seen.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
ROOT = HERE.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from powercutfs import PowerCutMount, fuse_unavailable  # noqa: E402

DEFAULT_CUTS = 200
CUTS_PER_EPISODE = 25
READY_TIMEOUT_S = 60.0


@dataclass
class Acks:
    """What the kiosk acknowledged in this episode, across lives."""

    secrets: bool = False
    enrolled: bool = False
    ready: bool = False
    donations: dict[int, tuple[str, int]] = field(default_factory=dict)
    closeouts: set[int] = field(default_factory=set)
    grants: dict[int, int] = field(default_factory=dict)
    adopted: int = 0


@dataclass
class Report:
    cuts: int = 0
    episodes: int = 0
    lives: int = 0
    acknowledged_donations: int = 0
    acknowledged_donations_checked: int = 0
    acknowledged_closeouts_checked: int = 0
    acknowledged_grants_checked: int = 0
    configs_adopted: int = 0
    empty_ledgers: int = 0
    snapshots_opened: int = 0
    """Checks after a cut where the ledger opened from a state snapshot (and matched the full replay)."""
    charges_checked: int = 0
    losses: int = 0
    problems: list[str] = field(default_factory=list)
    cut_phases: Counter = field(default_factory=Counter)
    unsynced_dropped: Counter = field(default_factory=Counter)
    portal_totals_match: bool = True
    seconds: float = 0.0
    timeline: dict[str, list[float]] = field(default_factory=dict)

    def problem(self, text: str, loss: bool = True) -> None:
        if loss:
            self.losses += 1
        if len(self.problems) < 50:
            self.problems.append(text)

    def line(self) -> str:
        d = {"cuts": self.cuts, "acknowledged_donations": self.acknowledged_donations,
             "acknowledged_donations_checked": self.acknowledged_donations_checked,
             "losses": self.losses, "episodes": self.episodes, "lives": self.lives,
             "acknowledged_closeouts_checked": self.acknowledged_closeouts_checked,
             "acknowledged_grants_checked": self.acknowledged_grants_checked,
             "configs_adopted": self.configs_adopted, "empty_ledgers_at_first_boot": self.empty_ledgers,
             "charges_checked": self.charges_checked, "snapshots_opened": self.snapshots_opened,
             "portal_totals_match": self.portal_totals_match, "cut_phases": dict(self.cut_phases),
             "unsynced_dropped": dict(self.unsynced_dropped), "seconds": round(self.seconds, 1),
             "median_s_to": {k: sorted(v)[len(v) // 2] for k, v in self.timeline.items()
                             if k in ("start", "secrets", "enrolled", "ready")},
             "problems": self.problems}
        return json.dumps(d, ensure_ascii=False, sort_keys=False)


class Zygote:
    """kiosk_child.py --zygote: the kiosk's code loaded once; each life is a fork of it (see there)."""

    def __init__(self, root: Path):
        self.address = str(root / "zygote.sock")
        self.log = open(root / "zygote.log", "ab")
        self.proc = subprocess.Popen([sys.executable, str(HERE / "kiosk_child.py"), "--zygote", self.address],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log,
                                     cwd=str(ROOT))
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if line != "zygote ready":
            raise RuntimeError(f"the kiosk zygote did not start ({line!r}; see {root / 'zygote.log'})")

    def spawn(self, argv: list[str], stdout_fd: int, stderr_fd: int) -> int:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(self.address)
            socket.send_fds(s, [json.dumps(argv).encode()], [stdout_fd, stderr_fd])
            return int(s.recv(64))

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()


class Life:
    """One run of kiosk_child.py (a fork of the zygote); its acknowledgements are read from its stdout."""

    def __init__(self, argv: list[str], log_path: Path, zygote: Zygote):
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.started = threading.Event()
        self.t0 = time.monotonic()
        self.at: dict[str, float] = {}
        r, w = os.pipe()
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self.pid = zygote.spawn(argv, w, log_fd)
        finally:
            os.close(w)
            os.close(log_fd)
        self.stdout = os.fdopen(r, "rb")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for raw in self.stdout:
            line = raw.decode(errors="replace").strip()
            self.lines.append(line)
            kind = line.split(" ", 1)[0]
            self.at.setdefault(kind, time.monotonic() - self.t0)
            if kind == "start":
                self.started.set()
            if kind == "ready":
                self.ready.set()

    def _gone(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.005)
        raise RuntimeError(f"kiosk pid {self.pid} would not die")

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._reader.join(30)
        self._gone()
        self.stdout.close()

    def wait(self, timeout: float) -> int | None:
        """The exit code the kiosk reported on its last line (None: it did not get there in time)."""
        self._reader.join(timeout)
        if self._reader.is_alive():
            self.kill()
            return None
        self._gone()
        self.stdout.close()
        last = [ln for ln in self.lines if ln.startswith("closed rc=")]
        return int(last[-1].split()[1].split("=")[1]) if last else None

    def phase(self) -> str:
        last = [ln.split()[0] for ln in self.lines if ln]
        if not last or last == ["start"]:
            return "start-up" if last else "process start"
        if "ready" not in last:
            return {"secrets": "after secrets", "enrolled": "media import / ledger open"}.get(last[-1], last[-1])
        return "running"


def absorb(acks: Acks, lines: list[str]) -> None:
    for line in lines:
        words = line.split()
        if not words:
            continue
        kv = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        kind = words[0]
        if kind == "secrets":
            acks.secrets = True
        elif kind == "enrolled":
            acks.enrolled = True
        elif kind == "ready":
            acks.ready = True
        elif kind == "donation":
            acks.donations[int(kv["seq"])] = (kv["project"], int(kv["amount"]))
        elif kind == "closeout":
            acks.closeouts.add(int(kv["seq"]))
        elif kind == "grant":
            acks.grants[int(kv["seq"])] = int(kv["points"])
        elif kind == "adopted":
            acks.adopted = max(acks.adopted, int(kv["version"]))


def check_disk(data: Path, outside: Path, portal_url: str, acks: Acks, report: Report, where: str) -> None:
    """Everything the kiosk acknowledged is still there; the ledger is intact."""
    from kiosk_child import build_config

    from kiosk.ledger import keys
    from kiosk.ledger.audit import verify_path
    from kiosk.ledger.pepper import Pepper
    from kiosk.ledger.store import iter_entries, read_only_engine
    from kiosk.sync.uploader import SyncState

    cfg = build_config(data, outside, portal_url)
    if acks.secrets:
        try:
            keys.load_private(cfg.private_key_path)
            Pepper.load(cfg.pepper_path)
        except Exception as exc:  # noqa: BLE001
            report.problem(f"{where}: key or pepper lost after it was created: {exc}")
    if acks.enrolled:
        st = SyncState.load(cfg.data_dir / "sync-state.json")
        if st.enrolled_ms is None or st.portal_url != portal_url:
            report.problem(f"{where}: the kiosk is no longer enrolled (sync-state: {st.to_json()})")
    ledger = cfg.ledger_path
    if not ledger.exists():
        if acks.ready:
            report.problem(f"{where}: the ledger is gone")
        return
    db = sqlite3.connect(ledger)
    try:
        ok = db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()
    if ok != "ok":
        report.problem(f"{where}: integrity_check: {ok}")
        return
    check = verify_path(ledger)
    if not check.ok and not acks.ready and _entry_count(ledger) == 0:
        # Cut between creating the database and committing its genesis entry, before the kiosk ever said
        # it was up: nothing was acknowledged, and the next start writes the genesis (it must come up).
        report.empty_ledgers += 1
        return
    if not check.ok:
        report.problem(f"{where}: ledger does not verify: {check.summary()}")
        return
    # The state the next boot opens, from the state snapshot the cut left (whole or not at all), is the
    # state of every entry replayed.
    from kiosk.ledger.store import Ledger
    from tests.conftest import fields, replayed

    opened = Ledger.open(ledger, keys.load_private(cfg.private_key_path), cfg.kiosk.id, boot=False)
    try:
        if fields(opened.st) != fields(replayed(ledger)):
            report.problem(f"{where}: the ledger opened from its state snapshot (seq={opened.snapshot_size}) "
                           "differs from a replay of its entries")
        report.snapshots_opened += opened.snapshot_size > 0
    finally:
        opened.close(checkpoint=False)
    eng = read_only_engine(ledger)
    try:
        entries = {e.seq: e for e in iter_entries(eng)}
    finally:
        eng.dispose()
    settled = Counter(e.data.get("intent_seq") for e in entries.values() if e.type in ("donation", "donation_failed"))
    intents = {e.data["idem"] for e in entries.values() if e.type == "donation_intent"}
    for seq, (project, amount) in acks.donations.items():
        e = entries.get(seq)
        report.acknowledged_donations_checked += 1
        if e is None or e.type != "donation" or e.data.get("project") != project or e.data.get("amount_yen") != amount:
            report.problem(f"{where}: acknowledged donation seq={seq} {project} ¥{amount} is "
                           f"{'missing' if e is None else e.type + ' ' + json.dumps(e.data)[:120]}")
        elif settled[e.data["intent_seq"]] != 1:
            report.problem(f"{where}: intent {e.data['intent_seq']} settled {settled[e.data['intent_seq']]} times")
    for seq in acks.closeouts:
        report.acknowledged_closeouts_checked += 1
        if seq not in entries or entries[seq].type != "close_out":
            report.problem(f"{where}: acknowledged close-out seq={seq} lost")
    for seq, pts in acks.grants.items():
        report.acknowledged_grants_checked += 1
        e = entries.get(seq)
        if e is None or e.type != "points_grant" or e.data.get("points") != pts:
            report.problem(f"{where}: acknowledged grant seq={seq} lost")
    dup = [s for s, n in settled.items() if n > 1]
    if dup:
        report.problem(f"{where}: intents settled twice: {dup[:5]}")
    term = outside / "payment-sim.db"
    if term.exists():
        tdb = sqlite3.connect(term)
        try:
            charges = [r[0] for r in tdb.execute("SELECT idem FROM charges WHERE status = 'approved'")]
        except sqlite3.OperationalError:
            charges = []
        finally:
            tdb.close()
        for idem in charges:
            report.charges_checked += 1
            if idem not in intents:
                report.problem(f"{where}: the terminal charged {idem} but the ledger has no intent for it")


def _entry_count(ledger: Path) -> int:
    db = sqlite3.connect(ledger)
    try:
        return int(db.execute("SELECT count(*) FROM entries").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def ledger_totals(data: Path) -> dict[str, Any]:
    from kiosk.ledger.store import iter_entries, read_only_engine

    eng = read_only_engine(data / "ledger.db")
    try:
        out: dict[str, Any] = {"count": 0, "total_yen": 0, "projects": Counter(), "counts": Counter()}
        voided = set()
        rows = list(iter_entries(eng))
        for e in rows:
            if e.type == "void":
                voided.add(e.data.get("voids_seq"))
        for e in rows:
            if e.type == "donation" and e.seq not in voided:
                out["count"] += 1
                out["total_yen"] += e.data["amount_yen"]
                out["projects"][e.data["project"]] += e.data["amount_yen"]
                out["counts"][e.data["project"]] += 1
        return out
    finally:
        eng.dispose()


def make_clips(dst: Path) -> None:
    """One short clip per demo project, in the cache format, named <project>.mp4 (what a technician imports)."""
    from kiosk.app.demo import demo_template
    from kiosk.config import validate_config
    from kiosk.player import ensure_demo_media

    dst.mkdir(parents=True, exist_ok=True)
    if any(dst.glob("*.mp4")):
        return
    work = Path(tempfile.mkdtemp(prefix="clips-", dir=dst.parent))
    doc = demo_template()
    doc["kiosk"]["data_dir"] = str(work)
    cfg = validate_config(doc, "<clips>", work)
    for clip in ensure_demo_media(cfg, size=(160, 90), seconds=0.5):
        shutil.copyfile(clip.path, dst / f"{clip.project_id}.mp4")
    shutil.rmtree(work, ignore_errors=True)


def publish_config(engine: Any, clips: Path, rng: random.Random) -> int:
    """A new config version on the portal: the demo projects, other amounts, a playlist of pushed clips."""
    from kiosk.app.demo import demo_template
    from server_sync.configstore import add_media, publish

    projects = [{k: p[k] for k in ("id", "title", "title_en", "group", "area", "goal_yen")}
                for p in demo_template()["projects"]]
    playlist = []
    for src in sorted(clips.glob("*.mp4")):
        sha = add_media(engine, src.read_bytes(), "video/mp4")
        playlist.append({"sha256": sha, "name": src.name, "project": src.stem})
    presets = sorted(rng.sample([100, 200, 300, 500, 1000], 3))
    out = publish(engine, {"projects": projects, "presets_yen": presets, "default_yen": presets[0],
                           "playlist": playlist})
    return int(out["version"])


def run_campaign(root: Path, cuts: int, seed: int = 1, *, per_episode: int = CUTS_PER_EPISODE,
                 out: Any = None) -> Report:
    from server_sync.embedded import start_portal

    t0 = time.monotonic()
    rng = random.Random(seed)
    report = Report()
    root.mkdir(parents=True, exist_ok=True)
    clips = root / "clips"
    make_clips(clips)
    # critical: a kiosk killed mid-request is the point here, not an error worth a traceback per cut.
    portal = start_portal(f"sqlite:///{root / 'portal.db'}", log_level="critical")
    zygote = Zygote(root)
    ledgers: list[Path] = []
    mounts: list[PowerCutMount] = []
    try:
        episode = 0
        while report.cuts < cuts:
            episode += 1
            report.episodes += 1
            kiosk_id = f"power-{seed}-{episode}"
            ep = root / f"episode-{episode}"
            outside = ep / "outside"
            outside.mkdir(parents=True, exist_ok=True)
            (outside / "clips").symlink_to(clips)
            m = PowerCutMount(ep / "disk", ep / "mnt").mount()
            mounts.append(m)
            data = m.mountpoint / kiosk_id
            code = portal.issue_code(kiosk_id)
            acks = Acks()
            n_here = min(per_episode, cuts - report.cuts)
            for i in range(n_here):
                if rng.random() < 0.15:
                    publish_config(portal.app.state.engine, clips, rng)
                argv = ["--data", str(data), "--outside", str(outside), "--portal", portal.url, "--code", code,
                        "--seed", str(rng.randrange(1 << 30))]
                life = Life(argv, ep / "kiosk.log", zygote)
                report.lives += 1
                if not life.started.wait(READY_TIMEOUT_S):
                    report.problem(f"episode {episode} cut {i}: the kiosk process did not start", loss=False)
                r = rng.random()
                if not acks.enrolled and r < 0.6:
                    # First boot: key and pepper, then enrollment, take a few milliseconds; aim there.
                    delay = rng.uniform(0, 0.06)
                elif r < 0.3:
                    # Start-up: media import, opening the ledger, resolving the intents a cut left open.
                    delay = rng.uniform(0, 0.3)
                else:
                    # The kiosk must come up after a cut: wait for it, then cut while it works.
                    if not life.ready.wait(READY_TIMEOUT_S):
                        report.problem(f"episode {episode} cut {i}: the kiosk did not start after a cut "
                                       f"(see {ep / 'kiosk.log'})")
                    delay = rng.choice([rng.uniform(0, 0.3), rng.uniform(0, 1.5)])
                time.sleep(delay)
                phase = life.phase()
                for k, v in life.at.items():
                    report.timeline.setdefault(k, []).append(round(v, 2))
                dropped = m.cut()
                life.kill()
                report.cuts += 1
                report.cut_phases[phase] += 1
                report.unsynced_dropped["names"] += dropped["names_undone"]
                report.unsynced_dropped["files"] += dropped["files_restored"]
                absorb(acks, life.lines)
                m.unmount()
                m.mount()
                check_disk(data, outside, portal.url, acks, report, f"episode {episode} cut {i} ({phase})")
            # The end of the episode: one clean life, then everything is uploaded.
            life = Life(["--data", str(data), "--outside", str(outside), "--portal", portal.url, "--code", code,
                         "--taps", "2", "--no-staff"], ep / "kiosk.log", zygote)
            rc = life.wait(180)
            absorb(acks, life.lines)
            report.lives += 1
            if rc != 0:
                report.problem(f"episode {episode}: the clean run ended with {rc} (see {ep / 'kiosk.log'})")
            check_disk(data, outside, portal.url, acks, report, f"episode {episode} clean run")
            report.configs_adopted += acks.adopted
            report.acknowledged_donations += len(acks.donations)
            from kiosk_child import build_config

            from kiosk.sync.uploader import sync_kiosk

            state = sync_kiosk(build_config(data, outside, portal.url), portal.url)
            if not state.ok:
                report.problem(f"episode {episode}: final sync incomplete: {state.last_error}")
            ledgers.append(data)
            m.unmount()
            # The portal's public totals are over every kiosk so far: they must equal the ledgers' sums.
            m.mount()
            want = {"count": 0, "total_yen": 0, "projects": Counter()}
            for d in ledgers:
                if not (d / "ledger.db").exists():
                    continue  # reported above: the clean run did not come up
                t = ledger_totals(d)
                want["count"] += t["count"]
                want["total_yen"] += t["total_yen"]
                want["projects"].update(t["projects"])
            got = portal.totals()
            got_projects = {p["id"]: p["total_yen"] for p in got.get("projects", []) if p["total_yen"]}
            if (got["count"], got["total_yen"]) != (want["count"], want["total_yen"]) or \
                    got_projects != {k: v for k, v in want["projects"].items() if v}:
                report.portal_totals_match = False
                report.problem(f"episode {episode}: portal totals {got['count']}/¥{got['total_yen']} "
                               f"!= ledgers {want['count']}/¥{want['total_yen']}")
    finally:
        for m in mounts:
            m.unmount()
        zygote.stop()
        portal.stop()
        report.seconds = time.monotonic() - t0
    if out is not None:
        print(report.line(), file=out, flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cuts", type=int, default=int(os.environ.get("POWERCUT_CUTS", DEFAULT_CUTS)))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("POWERCUT_SEED", "1")))
    ap.add_argument("--root", type=Path, help="work directory (default: a new temp dir, removed after)")
    ap.add_argument("--per-episode", type=int, default=CUTS_PER_EPISODE)
    args = ap.parse_args(argv)
    why = fuse_unavailable()
    if why:
        print(f"campaign: {why}", file=sys.stderr)
        return 2
    root = args.root or Path(tempfile.mkdtemp(prefix="powercut-"))
    report = run_campaign(root, args.cuts, args.seed, per_episode=args.per_episode, out=sys.stdout)
    if args.root is None and report.losses == 0:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if report.losses == 0 and report.portal_totals_match else 1


if __name__ == "__main__":
    sys.exit(main())

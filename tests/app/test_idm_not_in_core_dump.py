"""A kiosk that is killed the way systemd's watchdog kills it leaves no memory image behind (docs/privacy.md).

`kiosk run` runs under ``WatchdogSec=30`` (systemd/kiosk.service): a frozen picture gets SIGABRT, whose default
action is a core dump, written where the kernel's ``core_pattern`` says: ``core`` in the working directory
(``/var/lib/kiosk``, the data partition) or systemd-coredump's store under ``/var/lib/systemd/coredump``, both on
the SD card. A memory image of the kiosk holds the cards it read (their IDm stays in freed memory long after the
poll) and the pepper that turns an IDm into its token. A real `kiosk run` process here reads a card on its
simulated reader, gives, and is sent SIGABRT; nothing it leaves may hold the card's IDm in any encoding.
"""

from __future__ import annotations

import base64
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.app.demo import demo_template
from kiosk.config import validate_config
from kiosk.config.tree import to_toml
from kiosk.ledger.store import iter_entries, read_only_engine

ROOT = Path(__file__).resolve().parents[2]
IDM = bytes.fromhex("012E4CD8A1B2C3D4")  # system 0 in the top nibble: the simulated card's transit IDm as it is


def idm_forms(idm: bytes) -> dict[str, bytes]:
    """The IDm as bytes, hex (either case, with separators, byte-reversed), base64, base32, decimal, bytes repr."""
    out: dict[str, bytes] = {}
    for name, b in (("", idm), ("reversed ", idm[::-1])):
        out[name + "raw"] = b
        for sep in ("", " ", ":", "-"):
            out[f"{name}hex{sep!r}"] = b.hex(sep).encode() if sep else b.hex().encode()
            out[f"{name}HEX{sep!r}"] = out[f"{name}hex{sep!r}"].upper()
        out[name + "base64"] = base64.b64encode(b).rstrip(b"=")
        out[name + "base64url"] = base64.urlsafe_b64encode(b).rstrip(b"=")
        out[name + "base32"] = base64.b32encode(b).rstrip(b"=")
        out[name + "decimal"] = str(int.from_bytes(b, "big")).encode()
        out[name + "repr"] = repr(b)[2:-1].encode()
    return out


def found_in(root: Path, idm: bytes) -> list[str]:
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits += [f"{path.relative_to(root)}: {kind}" for kind, form in idm_forms(idm).items() if form in data]
    return hits


def _allow_cores() -> None:  # in the child: the limit systemd gives a service (PID 1 raises it to infinity)
    _, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def _cores(where: Path) -> list[Path]:
    return [p for p in where.iterdir() if p.name == "core" or p.name.startswith("core.")]


@pytest.fixture
def cores_land_in_cwd(tmp_path: Path) -> None:
    """Skip (not pass) where this host writes no core file a test can find: then nothing here could fail."""
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"core_pattern {pattern!r}: core files do not land in the working directory")
    probe = tmp_path / "probe"
    probe.mkdir()
    subprocess.run([sys.executable, "-c", "import os; os.abort()"], cwd=probe, preexec_fn=_allow_cores,
                   capture_output=True, timeout=60)
    if not _cores(probe):
        pytest.skip("an aborted process leaves no core file on this host")


def _wait_for_donation(ledger: Path, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "kiosk run exited early"
        if ledger.exists():
            eng = read_only_engine(ledger)
            try:
                if any(e.type == "donation" for e in iter_entries(eng)):
                    return
            except Exception:  # noqa: BLE001 - the schema is still being made
                pass
            finally:
                eng.dispose()
        time.sleep(0.2)
    raise AssertionError("no donation within 90 s")


def test_a_kiosk_aborted_by_its_watchdog_leaves_no_memory_image_with_the_idm(tmp_path: Path, cores_land_in_cwd):
    work = tmp_path / "work"  # systemd's WorkingDirectory=/var/lib/kiosk
    data = work / "data"
    data.mkdir(parents=True)
    (work / "cards.txt").write_text(f"1.0 tap suica idm={IDM.hex()} hold=0.5\n")
    doc = demo_template()
    doc["kiosk"]["data_dir"] = str(data)
    doc["player"] = {"display": "headless", "width": 320, "height": 180}
    doc["reader"] = {"backend": "sim", "poll_interval_ms": 10, "cooldown_ms": 0,
                     "sim_script": str(work / "cards.txt")}
    doc["flow"] = {"express_cancel_ms": 0}
    cfg = validate_config(doc, "<test>", data)
    (work / "kiosk.toml").write_text(to_toml(cfg))
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYTHONPATH=str(ROOT))
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(work / "kiosk.toml")], cwd=work,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_allow_cores)
    try:
        _wait_for_donation(data / "ledger.db", proc)
        os.kill(proc.pid, signal.SIGABRT)  # what systemd sends when the watchdog is not fed
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGABRT, out.decode(errors="replace")[-2000:]
    (work / "cards.txt").unlink()  # the test's own script names the card; what the kiosk left is checked
    cores = _cores(work)
    leaks = found_in(work, IDM)
    assert not cores, f"the aborted kiosk wrote a memory image: {[c.name for c in cores]}; IDm in {leaks}"
    assert not leaks

"""An exception nobody catches in `kiosk run` reaches the journal through the log's IDm redaction (docs/privacy.md).

Python prints an uncaught exception's traceback to stderr with its own hooks (``sys.excepthook`` for the main
thread, ``threading.excepthook`` for the others), and under systemd stderr goes to the journal as it is: the
redaction of kiosk/ops/logsetup.py (``RedactIdm``) never saw it. A traceback's message is whatever the code put
in it, a card's IDm included (``f"... {idm.hex()}"``, ``repr`` of the bytes). A real `kiosk run` process
(headless, simulated reader), with a thread of its process that dies of such an exception once the kiosk is up,
and the same in the main thread after the kiosk stopped: both tracebacks are in its output, the IDm in no form.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kiosk.app.demo import demo_template
from kiosk.config import validate_config
from kiosk.config.tree import to_toml
from tests.app.test_idm_not_in_core_dump import idm_forms

ROOT = Path(__file__).resolve().parents[2]
IDM = bytes.fromhex("012E4CD8A1B2C3D4")

# `kiosk run` as its console script runs it, plus a thread of the same process that fails with the IDm in its
# message once the kiosk has opened its ledger, and an exception in the main thread after `kiosk run` returned.
CHILD = r"""
import sys, threading, time
from pathlib import Path

idm = bytes.fromhex(sys.argv[1])
ledger = Path(sys.argv[2])


def card_worker():
    deadline = time.monotonic() + 90
    while not ledger.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    raise RuntimeError(f"card {idm.hex()} could not be read ({idm!r})")


threading.Thread(target=card_worker, name="card-worker", daemon=True).start()
from kiosk.cli import main

code = main(sys.argv[3:])
try:
    raise ValueError(f"IDm {idm.hex(':')}")
except ValueError as exc:
    raise RuntimeError(f"kiosk run returned {code} holding card {idm.hex().upper()}") from exc
"""


def test_uncaught_tracebacks_of_kiosk_run_reach_the_journal_without_the_idm(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    doc = demo_template()
    doc["kiosk"]["data_dir"] = str(data)
    doc["player"] = {"display": "headless", "width": 320, "height": 180}
    cfg = validate_config(doc, "<test>", data)
    (tmp_path / "kiosk.toml").write_text(to_toml(cfg))
    # JOURNAL_STREAM: as under systemd, so each line carries its syslog priority for journald.
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYTHONPATH=str(ROOT),
               JOURNAL_STREAM="8:12345")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    r = subprocess.run([sys.executable, "-c", CHILD, IDM.hex(), str(data / "ledger.db"),
                        "run", "--config", str(tmp_path / "kiosk.toml"), "--seconds", "4"],
                       cwd=tmp_path, env=env, capture_output=True, timeout=180)
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    assert r.returncode == 1, out[-3000:] + err[-3000:]  # the main thread's exception ends the process
    leaks = [kind for kind, form in idm_forms(IDM).items() if form in r.stdout + r.stderr]
    assert not leaks, f"the IDm reached the journal as {leaks}:\n{out[-3000:]}\n{err[-3000:]}"
    everything = out + err
    # The thread's traceback, whole (where it was raised, and the message with the IDm blanked), one line at ERROR.
    thread_lines = [ln for ln in everything.splitlines() if "uncaught exception in thread card-worker" in ln]
    assert len(thread_lines) == 1, everything[-3000:]
    line = thread_lines[0]
    assert line.startswith("<3>ERROR kiosk.uncaught: "), line
    assert "Traceback (most recent call last)" in line and "in card_worker" in line, line
    assert "RuntimeError: card [IDm] could not be read ([IDm])" in line, line
    # The main thread's, after `kiosk run` removed its log handler: on stderr, at CRITICAL, with its cause.
    main_lines = [ln for ln in err.splitlines() if "uncaught exception, the process stops" in ln]
    assert len(main_lines) == 1, err[-3000:]
    line = main_lines[0]
    assert line.startswith("<2>CRITICAL kiosk.uncaught: "), line
    assert "ValueError: IDm [IDm]" in line and "RuntimeError: kiosk run returned 0 holding card [IDm]" in line, line

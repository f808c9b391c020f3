"""A real ``kiosk run`` paying through Square, SIGKILLed at each step of a donation, then restarted.

The kiosk is the real program (``python -m kiosk run``, headless display, the
simulated card reader playing one tap from a script) talking to the fake Square
API of :mod:`tests.payment.fake_square` through the real SDK. The fake decides
where the kill lands:

- ``create_in_flight``: the create request is held at Square's door and the
  kiosk is killed with it in flight; Square never carries it out;
- ``after_create``: Square stored the checkout, the answer is held, the kiosk dies;
- ``in_progress``: the donor is tapping on the terminal (IN_PROGRESS) when the
  kiosk dies, and finishes paying while it is down;
- ``completed_unanswered``: Square completed the payment and the answer saying
  so is in flight when the kiosk dies (nothing of it reached the ledger).

The restart (a second ``kiosk run`` on the same files, no tap) must leave
exactly one checkout per intent at Square and one ``donation`` or
``donation_failed`` per intent in the ledger, with a charged gift never lost.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.payment.fake_square import DEVICE, LOCATION, TOKEN, FakeSquare, Fault

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp: Path, url: str, script: bool) -> Path:
    data = tmp / "data"
    data.mkdir(exist_ok=True)
    tok = data / "square-token"
    tok.write_text(TOKEN + "\n")
    tok.chmod(0o600)
    (tmp / "script.txt").write_text("1.5 tap suica\n")
    cfg = tmp / ("kiosk.toml" if script else "kiosk-restart.toml")
    cfg.write_text(f'''[kiosk]
id = "square-crash-1"
data_dir = "{data}"

[player]
display = "headless"
width = 320
height = 180

[reader]
backend = "sim"
{'sim_script = "script.txt"' if script else ''}

[payment]
terminal = "square"

[payment.square]
base_url = "{url}"
location_id = "{LOCATION}"
device_id = "{DEVICE}"
deadline_s = 60
answer_grace_s = 5
poll_interval_ms = 100
request_timeout_s = 30

[[projects]]
id = "kodomo"
title = "こども食堂"
area = "children"
''', "utf-8")
    return cfg


def _spawn(cfg: Path, seconds: float) -> subprocess.Popen:
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYGAME_HIDE_SUPPORT_PROMPT="1")
    return subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(cfg), "--seconds", str(seconds)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait(cond, what: str, timeout: float = 60) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def _ledger(tmp: Path) -> list[tuple[str, str | None]]:
    con = sqlite3.connect(f"file:{tmp / 'data' / 'ledger.db'}?mode=ro", uri=True)
    try:
        return con.execute("SELECT type, idem FROM entries ORDER BY seq").fetchall()
    finally:
        con.close()


def _gets(fake: FakeSquare) -> int:
    with fake.lock:
        return sum(1 for m, p in fake.requests if m == "GET" and p.startswith("/v2/terminals/checkouts/"))


# case -> (what to arrange at the fake, how to know the kill lands at the step, what the restart must record)
CASES = ["create_in_flight", "after_create", "in_progress", "completed_unanswered"]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_kiosk_run_killed_at_each_step_of_a_square_donation(tmp_path: Path, case: str):
    with FakeSquare() as fake:
        if case == "create_in_flight":
            fake.fault("create", Fault("hold"))
        elif case == "after_create":
            fake.fault("create", Fault("hold_after"))
        elif case == "in_progress":
            fake.plan = ["tap"] + ["wait"] * 10_000
        else:
            fake.plan = ["tap", "complete"]
            fake.fault("get", Fault("pass"), Fault("hold_after"))

        proc = _spawn(_config(tmp_path, fake.url, script=True), 120)
        try:
            if case == "in_progress":
                _wait(lambda: _gets(fake) >= 3, "the kiosk following an IN_PROGRESS checkout")
            else:
                _wait(fake.held.is_set, "the request held at Square")
            if case == "completed_unanswered":
                assert fake.only().status == "COMPLETED"
            proc.send_signal(signal.SIGKILL)
            out = proc.communicate(timeout=30)[0]
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL, out
        fake.release()
        if case == "in_progress":
            fake.buyer(fake.only().id, "complete")  # the donor finished on the terminal while the kiosk was down
        before = _ledger(tmp_path)
        assert [t for t, _ in before].count("donation_intent") == 1
        assert not any(t in ("donation", "donation_failed") for t, _ in before)

        restart = _spawn(_config(tmp_path, fake.url, script=False), 2)
        out = restart.communicate(timeout=120)[0]
        assert restart.returncode == 0, out

        entries = _ledger(tmp_path)
        intents = [i for t, i in entries if t == "donation_intent"]
        settled = [(t, i) for t, i in entries if t in ("donation", "donation_failed")]
        assert len(intents) == 1 and [i for _, i in settled] == intents
        assert fake.count_by_idem() == {intents[0]: 1}  # exactly one checkout for the intent, ever
        co = fake.only()
        if case in ("in_progress", "completed_unanswered"):
            assert settled[0][0] == "donation" and co.status == "COMPLETED"
        else:  # never paid: the orphan checkout was canceled at start-up, the intent failed
            assert settled[0][0] == "donation_failed" and co.status == "CANCELED"
        v = subprocess.run([sys.executable, "-m", "kiosk", "ledger", "verify", str(tmp_path / "data" / "ledger.db")],
                           cwd=ROOT, capture_output=True, text=True)
        assert v.returncode == 0, v.stdout + v.stderr

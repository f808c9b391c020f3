"""Logs: one line per event on stdout, level from config, IDm-shaped strings redacted."""

from __future__ import annotations

import io
import logging

import pytest

from kiosk.ops.logsetup import redact, setup_logging


@pytest.fixture
def capture():
    buf = io.StringIO()
    root = logging.getLogger()
    old_level, old_handlers = root.level, list(root.handlers)
    handler = setup_logging("INFO", stream=buf, env={"JOURNAL_STREAM": "8:1234"})
    yield buf
    root.removeHandler(handler)
    root.setLevel(old_level)
    assert root.handlers == old_handlers


def test_idm_in_args_and_tracebacks_is_redacted(capture):
    log = logging.getLogger("kiosk.test")
    token = "0123456789abcdef0123456789abcdef"  # a 32-hex donor token stays readable
    log.info("tap idm=%s token=%s", "012E4CD8A1B2C3D4", token)
    log.warning("frame from 01:2e:4c:d8:a1:b2:c3:d4")
    try:
        raise ValueError("card 012e4cd8a1b2c3d4 unreadable")
    except ValueError:
        log.exception("read failed\nsecond line")
    log.debug("not shown at INFO")
    lines = capture.getvalue().splitlines()
    assert len(lines) == 3  # one event, one line, traceback included
    assert lines[0] == f"<6>INFO kiosk.test: tap idm=[IDm] token={token}"
    assert lines[1] == "<4>WARNING kiosk.test: frame from [IDm]"
    assert lines[2].startswith("<3>ERROR kiosk.test: read failed ⏎ second line ⏎ Traceback")
    assert "012e4cd8a1b2c3d4" not in capture.getvalue().lower()


def test_setup_is_idempotent_and_sets_the_level():
    buf = io.StringIO()
    root = logging.getLogger()
    old_level, old_handlers = root.level, list(root.handlers)
    try:
        setup_logging("INFO", stream=io.StringIO(), env={})
        h = setup_logging("WARNING", stream=buf, env={})
        assert [x for x in root.handlers if x.get_name() == "kiosk-stdout"] == [h]
        logging.getLogger("x").info("hidden")
        logging.getLogger("x").warning("shown")
        out = buf.getvalue()
        assert "hidden" not in out and out.rstrip().endswith("WARNING x: shown") and not out.startswith("<")
    finally:
        for x in list(root.handlers):
            if x not in old_handlers:
                root.removeHandler(x)
        root.setLevel(old_level)


def test_redact_leaves_longer_hex_alone():
    assert redact("h=" + "ab" * 32) == "h=" + "ab" * 32
    assert redact("idm 0011223344556677.") == "idm [IDm]."


# A process set up as `kiosk run` sets itself up (kiosk/cli.py: the hooks, then the log); then exceptions nobody
# catches, each with a card's IDm in its text: a thread's, one Python can only ignore (in ``__del__``), and the
# main thread's after the log handler was taken away again (as run_kiosk does on its way out).
UNCAUGHT_CHILD = r"""
import logging, sys, threading
from kiosk.ops.logsetup import install_exception_hooks, setup_logging

idm = bytes.fromhex("012E4CD8A1B2C3D4")
install_exception_hooks()
handler = setup_logging("INFO")


def worker():
    raise OSError(f"reader answered for {idm.hex(' ')}")


t = threading.Thread(target=worker, name="reader-poll")
t.start()
t.join()


class Card:
    def __del__(self):
        raise ValueError(f"card {bytearray(idm)!r} left open")


Card()
threading.Thread(target=sys.exit, name="quiet").start()  # SystemExit in a thread: nothing to say, as Python
logging.getLogger().removeHandler(handler)
raise KeyError(idm.hex())
"""


def test_uncaught_exceptions_go_through_the_redaction_in_every_thread(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), JOURNAL_STREAM="8:1234")
    r = subprocess.run([sys.executable, "-c", UNCAUGHT_CHILD], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    both = r.stdout + r.stderr
    for form in ("012e4cd8a1b2c3d4", "01 2e 4c d8 a1 b2 c3 d4", r"\x01.L\xd8\xa1\xb2\xc3\xd4"):
        assert form not in both.lower(), both
    out = r.stdout.splitlines()
    assert len(out) == 2, r.stdout  # one line per exception, through the kiosk's handler on stdout
    assert out[0].startswith("<3>ERROR kiosk.uncaught: uncaught exception in thread reader-poll, the thread "
                             "stopped: Traceback (most recent call last):"), out[0]
    assert "in worker ⏎ " in out[0] and out[0].endswith("OSError: reader answered for [IDm]"), out[0]
    assert out[1].startswith("<3>ERROR kiosk.uncaught: Exception ignored in: <function Card.__del__"), out[1]
    assert out[1].endswith("ValueError: card [IDm] left open"), out[1]
    err = r.stderr.splitlines()  # no handler left: the hook's own, on stderr, still one redacted line
    assert len(err) == 1, r.stderr
    assert err[0].startswith("<2>CRITICAL kiosk.uncaught: uncaught exception, the process stops: Traceback"), err[0]
    assert err[0].endswith("KeyError: '[IDm]'"), err[0]

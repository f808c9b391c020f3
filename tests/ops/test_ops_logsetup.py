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

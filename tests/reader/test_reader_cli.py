from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from kiosk.config import ConfigError
from kiosk.config.reader import ReaderConfig
from kiosk.ledger.pepper import Pepper
from kiosk.reader.cli import register
from kiosk.reader.sim import send

ROOT = Path(__file__).resolve().parents[2]


def parse(*argv):
    p = argparse.ArgumentParser(prog="kiosk")
    register(p.add_subparsers(dest="command"))
    return p.parse_args(list(argv))


def test_probe_arguments():
    a = parse("reader", "probe", "--backend", "pcsc", "--show-idm", "--count", "3", "--timeout", "1.5")
    assert (a.backend, a.show_idm, a.count, a.timeout) == ("pcsc", True, 3, 1.5)
    assert a.func.__name__ == "probe_command"
    with pytest.raises(SystemExit):
        parse("reader", "probe", "--backend", "usb")


def test_probe_with_config_uses_its_pepper(tmp_path, capsys):
    data = tmp_path / "data"
    pepper = Pepper.create(data / "keys/pepper.json")
    (tmp_path / "script.txt").write_text("0.05 tap sugoca balance=640\n0.8 tap nimoca\n")
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(
        '[kiosk]\nid = "test-kiosk"\ndata_dir = "data"\n'
        '[reader]\nbackend = "sim"\ncooldown_ms = 0\nsim_script = "script.txt"\nsim_socket = "tcp:127.0.0.1:0"\n'
    )
    args = parse("reader", "probe", "--config", str(cfg), "--count", "2", "--timeout", "10")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "tap 1: sugoca  ¥640" in out and "tap 2: nimoca" in out
    from kiosk.reader.sim import make_card

    assert pepper.token(make_card("sugoca").idm).hex[:8] in out


def test_probe_times_out_with_exit_1(capsys):
    args = parse("reader", "probe", "--count", "1", "--timeout", "0.3")
    assert args.func(args) == 1
    assert "simulator listening on tcp:127.0.0.1:" in capsys.readouterr().out


def test_real_backend_without_config_is_exit_2(capsys):
    args = parse("reader", "probe", "--backend", "nfcpy", "--timeout", "0.1")
    assert args.func(args) == 2
    assert "needs --config" in capsys.readouterr().err


def test_bad_config_raises_config_error(tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text('[kiosk]\nid = "x-1"\n[reader]\nbackend = "sim"\nextra_system_codes = [65535]\n')
    args = parse("reader", "probe", "--config", str(cfg), "--timeout", "0.1")
    with pytest.raises(ConfigError) as ei:
        args.func(args)
    assert "wildcard" in str(ei.value)


def test_missing_pepper_is_exit_2(tmp_path, capsys):
    cfg = tmp_path / "k.toml"
    cfg.write_text('[kiosk]\nid = "x-1"\ndata_dir = "nowhere"\n')
    args = parse("reader", "probe", "--config", str(cfg), "--timeout", "0.1")
    assert args.func(args) == 2
    assert "pepper" in capsys.readouterr().err


def test_end_to_end_tap_from_another_process(tmp_path):
    """Start the probe as a process, tap through the simulator socket, read what it prints."""
    sock = tmp_path / "sim.sock"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.reader", "reader", "probe", "--count", "2", "--timeout", "20",
         "--sim-socket", f"unix:{sock}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )
    try:
        # Until the probe answers on its socket: the file appears at bind(), a moment before listen() (a connect
        # in between is refused), and a loaded CI host may take many seconds to start the process at all (the
        # deadline is a liveness bound only).
        deadline = time.monotonic() + 60
        while True:
            try:
                assert send(f"unix:{sock}", "status")[0].startswith("ok")
                break
            except (FileNotFoundError, ConnectionRefusedError):
                assert proc.poll() is None and time.monotonic() < deadline, "the probe never opened its socket"
                time.sleep(0.05)
        assert send(f"unix:{sock}", "tap kitaca balance=4321") == ["ok tapped"]
        time.sleep(0.7)
        assert send(f"unix:{sock}", "press 2") == ["ok tapped"]
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0, err
    assert "tap 1: kitaca  ¥4,321" in out and "tap 2: pasmo" in out


def test_every_config_field_has_a_docstring():
    from kiosk.config.base import field_docs

    docs = field_docs(ReaderConfig)
    for name in ReaderConfig.model_fields:
        assert docs.get(name), name


@pytest.mark.parametrize("bad", [
    {"extra_system_codes": [0xFFFF]}, {"extra_system_codes": [0x12FF]}, {"extra_system_codes": [3]},
    {"extra_system_codes": [0xFE00, 0xFE00]}, {"sim_socket": "tcp:0.0.0.0:9"}, {"sim_socket": "/tmp/x"},
    {"poll_interval_ms": 1}, {"removal_misses": 0}, {"history_blocks": 21}, {"nope": 1},
])
def test_config_rejects(bad):
    with pytest.raises(ValidationError):
        ReaderConfig.model_validate(bad)

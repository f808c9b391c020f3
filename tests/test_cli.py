"""The `kiosk` command line, run in-process (main) and, where exit codes matter, as a real process."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from kiosk.cli import main


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:  # noqa: ANN001
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_keygen(tmp_path, capsys):
    assert main(["keygen", "--out", str(tmp_path / "k")]) == 0
    assert stat.S_IMODE(os.stat(tmp_path / "k" / "kiosk.key").st_mode) == 0o600
    assert (tmp_path / "k" / "kiosk.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert main(["keygen", "--out", str(tmp_path / "k")]) == 1
    assert "refusing" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_prints_one_line_per_donation_and_continues(tmp_path):
    d = tmp_path / "demo"
    r = run("demo", "--headless", "--taps", "7", "--data-dir", str(d))
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("donation ")]
    assert len(lines) == 7
    for ln in lines:
        assert re.fullmatch(r"donation seq=\d+ project=[a-z0-9-]+ amount=\d+", ln)
    assert "ledger verified" in r.stdout
    assert "portal totals match the ledger: 7 donations" in r.stdout  # synced to the embedded portal
    assert len({re.search(r"project=(\S+)", ln).group(1) for ln in lines}) >= 3  # spread across projects
    assert (d / "kiosk.toml").exists() and (d / "ledger.db").exists()
    first_seqs = [int(re.search(r"seq=(\d+)", ln).group(1)) for ln in lines]
    r2 = run("demo", "--headless", "--taps", "3", "--data-dir", str(d))
    assert r2.returncode == 0, r2.stderr
    seqs2 = [int(m) for m in re.findall(r"^donation seq=(\d+)", r2.stdout, re.M)]
    assert len(seqs2) == 3 and min(seqs2) > max(first_seqs)
    assert "portal totals match the ledger: 10 donations" in r2.stdout  # the second run re-enrolls and catches up
    rep = json.loads(run("ledger", "report", str(d / "ledger.db"), "--json").stdout)
    assert rep["count"] == 10
    # the stored config is a valid config that points at this data dir
    r3 = run("doctor", "--config", str(d / "kiosk.toml"))
    assert "[OK  ] ledger" in r3.stdout, r3.stdout + r3.stderr


def test_verify_report_and_export(tmp_path, capsys):
    d = tmp_path / "demo"
    assert main(["demo", "--headless", "--taps", "6", "--data-dir", str(d)]) == 0
    capsys.readouterr()
    db = d / "ledger.db"
    assert main(["ledger", "verify", str(db), "--pubkey", str(d / "keys" / "kiosk.pub"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["ok"] and res["totals"]["count"] == 6
    assert main(["ledger", "export", str(db), "--out", str(tmp_path / "x.jsonl")]) == 0
    capsys.readouterr()
    assert main(["ledger", "verify", str(tmp_path / "x.jsonl")]) == 0
    said, english = capsys.readouterr().out.splitlines()  # the Japanese verdict first, then the line scripts read
    assert said.startswith("判定：正しい台帳です。") and english.startswith("OK: ")
    assert main(["ledger", "report", str(db), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep) >= {"count", "total_yen", "first_seq", "last_seq", "projects"}
    assert rep["count"] == 6 and rep["total_yen"] == sum(p["total_yen"] for p in rep["projects"])
    assert all(set(p) == {"id", "count", "total_yen"} for p in rep["projects"])
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date().isoformat()
    assert main(["ledger", "report", str(tmp_path / "x.jsonl"), "--date", today, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 6
    assert main(["ledger", "report", str(db), "--date", "2001-01-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 0
    assert main(["ledger", "report", str(db), "--date", "yesterday"]) == 2


def test_verify_names_the_first_bad_seq_and_exits_1(tmp_path):
    d = tmp_path / "demo"
    assert main(["demo", "--headless", "--taps", "3", "--data-dir", str(d)]) == 0
    db = d / "ledger.db"
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER entries_no_update")
    con.execute("UPDATE entries SET signature = zeroblob(64) WHERE seq = 5")
    con.commit()
    con.close()
    r = run("ledger", "verify", str(db))
    assert r.returncode == 1 and "seq=5" in r.stdout and "signature" in r.stdout
    r = run("ledger", "verify", str(db), "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["bad_seq"] == 5


def test_verify_against_a_checkpoint_file(tmp_path, capsys):
    from kiosk.ledger import read_export

    d = tmp_path / "demo"
    assert main(["demo", "--headless", "--taps", "3", "--data-dir", str(d)]) == 0
    assert main(["ledger", "export", str(d / "ledger.db"), "--out", str(tmp_path / "x.jsonl")]) == 0
    header, _ = read_export(tmp_path / "x.jsonl")
    (tmp_path / "cp.txt").write_text(header["checkpoint"])
    assert main(["ledger", "verify", str(d / "ledger.db"), "--checkpoint", str(tmp_path / "cp.txt")]) == 0
    assert "consistent with checkpoint" in capsys.readouterr().out


def test_errors_are_messages_not_tracebacks(tmp_path):
    r = run("ledger", "verify", str(tmp_path / "nothing.db"))
    assert r.returncode == 1 and "does not exist" in r.stdout
    (tmp_path / "junk.db").write_text("hello")
    r = run("ledger", "verify", str(tmp_path / "junk.db"))
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout
    r = run("ledger", "export", str(tmp_path / "nothing.db"), "--out", str(tmp_path / "o"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    r = run("ledger", "verify", str(tmp_path / "junk.db"), "--pubkey", str(tmp_path / "none.pub"))
    assert r.returncode == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("argv", [["--version"], ["ledger", "--help"], ["demo", "--help"]])
def test_help_and_version(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0


def test_each_plugin_module_adds_exactly_the_commands_the_cli_names_for_it():
    """`kiosk X` imports only the module that adds X (cold start, #16): the map must be the truth."""
    import argparse
    import importlib

    from kiosk.cli import BUILTIN, PLUGINS, build_parser

    for name, commands in PLUGINS.items():
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(name).register(sub)
        assert tuple(sub.choices) == commands, name
    full = build_parser()
    every = [c for cs in PLUGINS.values() for c in cs]
    assert sorted(full._subparsers._group_actions[0].choices) == sorted([*BUILTIN, *every])  # noqa: SLF001
    for command in every:  # each parses with only its own module registered
        only = build_parser([command, "--help"])
        assert command in only._subparsers._group_actions[0].choices  # noqa: SLF001


def test_help_lists_every_command(capsys):
    from kiosk.cli import BUILTIN, PLUGINS

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in [*BUILTIN, *(c for cs in PLUGINS.values() for c in cs)]:
        assert command in out


# --- exit codes: a command that did not do its job never exits 0 -----------------------------------
def _offline_kiosk(tmp_path, reader: str = "") -> str:  # noqa: ANN001
    """A config with real keys and pepper (made as on first run) and no portal."""
    from kiosk.config import load_config
    from kiosk.ops.local_files import ensure_secrets

    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('[kiosk]\nid = "exit-kiosk-1"\ndata_dir = "data"\n' + reader, "utf-8")
    ensure_secrets(load_config(cfg))
    return str(cfg)


def test_enroll_against_an_unreachable_portal_exits_1_with_the_error(tmp_path):
    from tests.loopback import refused_port

    cfg = _offline_kiosk(tmp_path)
    with refused_port() as port:
        r = run("enroll", "--config", cfg, "--portal", f"http://127.0.0.1:{port}", "--code", "ABCD-EFGH-JKLM")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "kiosk enroll: network:" in r.stderr and "Traceback" not in r.stderr
    assert "enrolled" not in r.stdout
    assert not (tmp_path / "data" / "sync-state.json").exists()  # nothing recorded as enrolled


def test_enroll_against_a_server_that_is_not_a_portal_exits_1(tmp_path):
    from tests.loopback import Handler, LoopbackServer

    class NotAPortal(Handler):
        def do_POST(self) -> None:  # noqa: N802
            self.answer(200, b'{"hello": "world"}')

    with LoopbackServer(NotAPortal) as server:
        cfg = _offline_kiosk(tmp_path)
        r = run("enroll", "--config", cfg, "--portal", server.url, "--code", "ABCD-EFGH-JKLM")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "not a kiosk portal" in r.stderr and "Traceback" not in r.stderr


def test_reader_probe_with_no_reader_exits_1(tmp_path):
    # nfcpy with a USB id no device has: the reader never connects, so the probe probed nothing. Its own process:
    # a probe on a real reader's backend switches core dumps off for good (kiosk/reader/nodump.py), which would
    # leave this pytest worker unable to start a child with them on (tests/reader/test_reader_privacy.py).
    cfg = _offline_kiosk(tmp_path, '[reader]\nbackend = "nfcpy"\ndevice = "usb:ffff:fffe"\n')
    r = run("reader", "probe", "--config", cfg, "--timeout", "0.5")
    assert r.returncode == 1, r.stderr
    assert "no reader connected" in r.stderr
    assert "not found" in r.stdout  # the supervisor's explanation is still shown

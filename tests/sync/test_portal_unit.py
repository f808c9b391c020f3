"""The shipped portal unit starts: its exact ExecStart line, paths substituted, with the environment file
docs/portal.md tells the operator to write, answers HTTP 200 (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import configparser
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.loopback import free_port

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "kiosk-portal.service"
VENV_BIN = Path(sys.executable).parent


def _unit() -> configparser.SectionProxy:
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(UNIT.read_text("utf-8"))
    return cp["Service"]


def _exec_start(port: int) -> list[str]:
    argv = shlex.split(_unit()["ExecStart"])
    assert argv[0] == "/opt/kiosk/venv/bin/uvicorn", argv
    argv[0] = str(VENV_BIN / "uvicorn")  # the installed venv's uvicorn, as install puts it at /opt/kiosk/venv
    i = argv.index("--port")
    argv[i + 1] = str(port)
    return argv


def _env_file(text: str) -> dict[str, str]:
    """What systemd's EnvironmentFile= reads: KEY=VALUE lines, # comments."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip().strip('"')
    return out


def test_the_unit_reads_its_database_from_the_documented_environment_file():
    svc = _unit()
    assert svc["EnvironmentFile"] == "/etc/kiosk/portal.env"
    assert "app_from_env" in svc["ExecStart"]
    doc = (ROOT / "docs" / "portal.md").read_text("utf-8")
    assert "/etc/kiosk/portal.env" in doc and "KIOSK_PORTAL_DB=" in doc


def _first_answer(proc: subprocess.Popen, url: str, timeout_s: float = 60) -> requests.Response:
    """The portal's first answer at ``url``; fail at once if its process exits (with what it printed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, f"the portal exited: {proc.stderr.read() if proc.stderr else ''}"
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            assert time.monotonic() < deadline, f"the portal did not answer within {timeout_s:.0f} s"
            time.sleep(0.1)


def test_the_exact_exec_start_line_serves_the_portal(db_url, tmp_path):
    port = free_port()
    env_file = tmp_path / "portal.env"
    env_file.write_text(f"# as docs/portal.md shows\nKIOSK_PORTAL_DB={db_url}\n", "utf-8")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **_env_file(env_file.read_text())}
    # cwd is an empty directory: the unit has no WorkingDirectory, so nothing may depend on the checkout.
    run_dir = tmp_path / "cwd"
    run_dir.mkdir()
    proc = subprocess.Popen(_exec_start(port), cwd=run_dir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        r = _first_answer(proc, url + "/")
        assert r.status_code == 200 and "市民活動 寄付ポータル" in r.text
        assert "server" not in {k.lower() for k in r.headers}  # --no-server-header
        assert requests.get(url + "/staff/login", timeout=5).status_code == 200
        assert requests.get(url + "/healthz", timeout=5).json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stderr:
            proc.stderr.close()


def test_without_the_database_setting_the_unit_fails_saying_what_to_set(tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    r = subprocess.run(_exec_start(free_port()), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "KIOSK_PORTAL_DB is not set" in r.stderr and "/etc/kiosk/portal.env" in r.stderr


def test_serve_on_an_inherited_socket_holds_the_port_from_the_start(tmp_path):
    """`kiosk-portal serve --fd N` (how `kiosk demo` starts its portal): the parent binds, the child serves on
    that socket, so no other program can take the port between the choice and the portal's first answer."""
    import socket

    db = f"sqlite:///{tmp_path / 'p.db'}"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "server_sync.portal_cli", "serve", "--db", db, "--fd",
                                 str(s.fileno()), "--log-level", "warning"], pass_fds=[s.fileno()],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with socket.socket() as other, pytest.raises(OSError):  # held by the child before it has even started
            other.bind(("127.0.0.1", port))
        r = _first_answer(proc, f"http://127.0.0.1:{port}/healthz")
        assert r.json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.parametrize(("extra", "said"), [(["--fd", "97"], "--fd 97 is not an open socket"),
                                             (["--fd", "0", "--workers", "2"], "--fd serves one process")])
def test_serve_with_a_wrong_fd_stops_in_one_line(tmp_path, extra, said):
    r = subprocess.run([sys.executable, "-m", "server_sync.portal_cli", "serve", "--db",
                        f"sqlite:///{tmp_path / 'p.db'}", *extra], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, r.stderr

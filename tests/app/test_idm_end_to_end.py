"""The raw card IDm never leaves the reader: a whole kiosk session, searched the way an attacker would search it.

A real `kiosk run` process (headless, simulated reader on its socket, ``log_level = "DEBUG"``, so every logger
of the process logs at DEBUG: the kiosk's, SQLAlchemy's engine, urllib3's), enrolled with a real portal on
loopback (SQLite file) through a recording proxy. Cards with known IDms are tapped, among them the failures of
the card path: a card pulled away mid-read, a card answering with an error status, an unknown IC, a non-transit
card, two cards at once, the reader unplugged and put back. Once the gifts reached the portal and the kiosk has
stopped, every byte it left is searched for each card's IDm in every encoding (hex in both cases, with
separators, byte-reversed, base64, base32, decimal, Python's bytes repr, raw bytes): the data folder (ledger
with its WAL and free pages, snapshots, metrics, caches, keys), the kiosk's output (the journal), the portal's
database file and its log records, and every HTTP request and answer between them, headers included
(docs/privacy.md, docs/readers.md "Privacy rule").
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from kiosk.config import load_config
from kiosk.ledger.store import iter_entries, read_only_engine
from kiosk.ops.local_files import ensure_secrets
from server_sync.db import entries, make_engine
from server_sync.embedded import start_portal
from tests.app.test_idm_not_in_core_dump import found_in, idm_forms
from tests.loopback import free_port

ROOT = Path(__file__).resolve().parents[2]
KIOSK_ID = "idm-audit-1"
# Top nibble 0: the simulated card answers its first system with the IDm as given.
GIVER, PULLED, ERROR, UNKNOWN_IC, EDY, SECOND, PHONE = (bytes.fromhex(h) for h in (
    "012E4CD8A1B2C3D4", "0114A5A5C3C3E1E1", "01015A5A3C3C1E1E", "0A0B0C0D0E0F1011", "0301E7E6E5E4E3E2",
    "0F0E0D0C0B0A0908", "0139F00DBEEF4242"))
# `kiosk run`, with the libraries' loggers at DEBUG too ([kiosk] log_level sets the root's level only; SQLAlchemy
# logs statements and their parameters only when its own logger asks for them).
CHILD = """
import logging, sys
for name in ("nfc", "smartcard", "urllib3", "requests", "httpx", "httpcore", "sqlalchemy.engine", "sqlalchemy.pool"):
    logging.getLogger(name).setLevel(logging.DEBUG)
from kiosk.cli import main
sys.exit(main(sys.argv[1:]))
"""
CARDS = {"giver": GIVER, "pulled": PULLED, "error": ERROR, "unknown-ic": UNKNOWN_IC, "edy": EDY, "second": SECOND,
         "phone": PHONE}


class RecordingProxy:
    """Loopback HTTP proxy to ``upstream``, keeping every request and answer (line, headers, body) as sent."""

    def __init__(self, upstream: str):
        u = urlsplit(upstream)
        self.traffic: list[bytes] = []
        self.lock = threading.Lock()
        proxy = self

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body,
                                 headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
                    rsp = conn.getresponse()
                    answer = rsp.read()
                    headers = rsp.getheaders()
                finally:
                    conn.close()
                with proxy.lock:
                    proxy.traffic.append(self.requestline.encode() + b"\n" + bytes(self.headers) + body)
                    proxy.traffic.append(str(headers).encode() + b"\n" + answer)
                self.send_response(rsp.status)
                for k, v in headers:
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = _any  # noqa: N815 - http.server's names

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _sim(port: int, line: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(line.encode() + b"\n")
        return s.makefile().readline().strip()


def _wait(pred, seconds: float, what: str, proc: subprocess.Popen, log: Path):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"kiosk run exited while waiting for {what}: {log.read_text()[-3000:]}"
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {log.read_text()[-3000:]}")


def _donations(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    eng = read_only_engine(ledger)
    try:
        return sum(1 for e in iter_entries(eng) if e.type == "donation")
    except Exception:  # noqa: BLE001 - the ledger's schema is still being made
        return 0
    finally:
        eng.dispose()


@pytest.mark.slow
def test_no_idm_anywhere_after_a_kiosk_session_with_every_card_failure(tmp_path: Path, caplog):
    caplog.set_level(logging.DEBUG)  # the portal runs in this process: its records, SQLAlchemy's included
    for name in ("sqlalchemy.engine", "uvicorn", "server_sync"):
        caplog.set_level(logging.DEBUG, logger=name)
    db = tmp_path / "portal" / "portal.db"
    db.parent.mkdir()
    db_url = f"sqlite:///{db}"
    portal = start_portal(db_url, next_sync_s=2)
    proxy = RecordingProxy(portal.url)
    work, data, sim_port = tmp_path / "kiosk", tmp_path / "kiosk" / "data", free_port()
    work.mkdir()
    config = work / "kiosk.toml"
    config.write_text(f'''[kiosk]
id = "{KIOSK_ID}"
data_dir = "{data}"
log_level = "DEBUG"

[player]
display = "headless"
width = 320
height = 180

[reader]
backend = "sim"
sim_socket = "tcp:127.0.0.1:{sim_port}"
poll_interval_ms = 10
cooldown_ms = 0

[flow]
express_cancel_ms = 0

[portal]
url = "{proxy.url}"
sync_interval_s = 5

[[projects]]
id = "kodomo"
title = "こども食堂"
area = "children"
''', "utf-8")
    ensure_secrets(load_config(config))  # the kiosk's key, which enrollment registers
    env = dict(os.environ, PYTHONPATH=str(ROOT), SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    log = work / "journal.txt"  # stdout and stderr of `kiosk run`: what journald keeps
    proc: subprocess.Popen | None = None
    try:
        code = subprocess.run([sys.executable, "-m", "server_sync.portal_cli", "enroll-code", "--db", db_url,
                               "--kiosk-id", KIOSK_ID], capture_output=True, text=True, env=env, check=True,
                              timeout=60).stdout.strip()
        r = subprocess.run([sys.executable, "-m", "kiosk", "enroll", "--config", str(config), "--portal", proxy.url,
                            "--code", code], capture_output=True, text=True, env=env, timeout=60, cwd=work)
        assert r.returncode == 0, r.stdout + r.stderr
        enroll_output = (r.stdout + r.stderr).encode()
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-c", CHILD, "run", "--config", str(config)], env=env,
                                    cwd=work, stdout=out, stderr=subprocess.STDOUT)
        ledger = data / "ledger.db"

        def card(line: str) -> None:
            _wait(lambda: _sim(sim_port, "status").endswith("cards=-"), 30, "an empty reader", proc, log)
            assert _sim(sim_port, line).startswith("ok"), line

        _wait(lambda: _sim_ready(sim_port), 60, "the simulated reader", proc, log)
        card(f"tap suica idm={GIVER.hex()} hold=0.5")
        _wait(lambda: _donations(ledger) >= 1, 60, "the first gift", proc, log)
        time.sleep(1.5)  # the thank-you: the next card is a new tap, not a change of amount
        card(f"tap pulled idm={PULLED.hex()} hold=0.3")
        card(f"tap pasmo idm={ERROR.hex()} error=01A6 hold=0.3")
        card(f"tap unknown-ic idm={UNKNOWN_IC.hex()} hold=0.3")
        card(f"tap edy idm={EDY.hex()} hold=0.3")
        card(f"place suica idm={GIVER.hex()} name=a")
        assert _sim(sim_port, f"place pasmo idm={SECOND.hex()} name=b").startswith("ok")  # two cards at once
        time.sleep(0.5)
        assert _sim(sim_port, "remove all").startswith("ok")
        assert _sim(sim_port, "unplug").startswith("ok")
        time.sleep(1.0)
        assert _sim(sim_port, "replug").startswith("ok")
        time.sleep(1.5)
        card(f"tap iphone idm={PHONE.hex()} hold=0.5")
        _wait(lambda: _donations(ledger) >= 2, 60, "the phone's gift", proc, log)

        def synced() -> bool:
            eng = make_engine(db_url)
            try:
                with eng.connect() as conn:
                    n = conn.execute(select(func.count()).where(entries.c.kiosk_id == KIOSK_ID)
                                     .where(entries.c.type == "donation")).scalar_one()
            finally:
                eng.dispose()
            return n >= 2
        _wait(synced, 90, "both gifts at the portal", proc, log)
        proc.terminate()
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        proxy.close()
        portal.stop()

    journal = log.read_bytes()
    assert b"read error (card-lost)" in journal and b"read error (status)" in journal, journal[-3000:]
    assert b"retrying" in journal  # the unplugged reader
    assert b"sqlalchemy.engine" in journal and b"DEBUG" in journal  # every logger did log at DEBUG
    assert len(proxy.traffic) > 4 and any(b"/batches" in t or b"/entries" in t for t in proxy.traffic)
    portal_records = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records).encode()

    leaks = []
    for name, idm in CARDS.items():
        for where, blob in [("kiosk output", journal), ("kiosk enroll output", enroll_output),
                            ("portal log", portal_records)] + [(f"http #{i}", t) for i, t in enumerate(proxy.traffic)]:
            leaks += [f"{name} in {where}: {kind}" for kind, form in idm_forms(idm).items() if form in blob]
        leaks += [f"{name} in {hit}" for hit in found_in(work, idm) + found_in(db.parent, idm)]
    assert leaks == []


def _sim_ready(port: int) -> bool:
    try:
        return _sim(port, "status").startswith("ok plugged=1 open=1")
    except OSError:
        return False

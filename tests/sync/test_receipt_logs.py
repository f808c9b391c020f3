"""No receipt code in any log output of a real portal process (`kiosk-portal serve`, uvicorn's access log
on, debug level), on SQLite and PostgreSQL. A receipt code is a bearer token (docs/receipts.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from server_sync.wire.receipt import receipt_code
from tests.loopback import free_port

PORTAL = [sys.executable, "-m", "server_sync.portal_cli"]


def test_no_receipt_code_reaches_the_logs_of_a_real_portal(db_url, rig, tmp_path: Path):
    env = {**os.environ, "KIOSK_PORTAL_DB": db_url}
    enroll = subprocess.run(PORTAL + ["enroll-code", "--kiosk-id", rig.kiosk_id], env=env, capture_output=True,
                            text=True, timeout=60, check=True).stdout.strip()
    port = free_port()
    out = (tmp_path / "portal.log").open("w")
    proc = subprocess.Popen(PORTAL + ["serve", "--port", str(port), "--log-level", "debug"], env=env,
                            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "portal did not start"
            time.sleep(0.1)
        gifts = rig.donate(3)
        rig.ledger.checkpoint()
        up = rig.uploader(url)
        up.enroll(enroll)
        assert up.sync_once().ok
        codes = [receipt_code(e) for e in gifts]
        unknown, mistyped = "A" * 25 + "B", codes[1][:-1] + "!"
        for c in codes[:2]:
            for path in (f"/r/{c}", f"/r/{c.lower()}?lang=en", f"/api/v1/receipts/{c}",
                         f"/api/v1/receipts/{c.lower()}"):
                assert requests.get(url + path, timeout=10).status_code == 200
        assert requests.get(f"{url}/r/{unknown}", timeout=10).status_code == 404
        assert requests.get(f"{url}/api/v1/receipts/{mistyped}", timeout=10).status_code == 404
        assert requests.get(f"{url}/static/receipt.js", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()
    log = (tmp_path / "portal.log").read_text("utf-8", "replace")
    # The access log is really on (the test could fail): receipt requests are logged, without their codes.
    assert "GET /r/… HTTP/1.1" in log and "GET /api/v1/receipts/… HTTP/1.1" in log and "/static/receipt.js" in log
    for c in codes + [unknown, mistyped[:-1]]:
        assert c not in log and c.lower() not in log, "a receipt code reached the log"

"""`kiosk demo` leaves a portal database that `kiosk-portal serve` shows afterwards, with the demo's
project titles and policy areas (real processes: the demo, then the portal as an operator starts it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from kiosk.app.demo import demo_template
from tests.loopback import free_port


def _wait(url: str, proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "portal exited"
        try:
            if requests.get(url + "/healthz", timeout=1).ok:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


@pytest.mark.slow
def test_demo_leaves_a_portal_database_with_titles_and_areas(tmp_path: Path):
    d = tmp_path / "demo"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    r = subprocess.run([sys.executable, "-m", "kiosk", "demo", "--headless", "--taps", "5", "--data-dir", str(d)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "portal totals match the ledger: 5 donations" in r.stdout
    db = f"sqlite:///{(d / 'portal.db').resolve()}"
    assert f"kiosk-portal serve --db {db}" in r.stdout
    assert json.loads((d / "catalog.json").read_text("utf-8"))["projects"][0]["id"] == "kodomo-shokudo"

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "server_sync.portal_cli", "serve", "--db", db, "--port", str(port),
                             "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait(url, proc)
        demo = {p["id"]: p for p in demo_template()["projects"]}
        projects = requests.get(url + "/api/v1/projects", timeout=10).json()
        assert {p["id"] for p in projects} == set(demo)
        for p in projects:
            assert (p["title"], p["title_en"], p["area"], p["group"]) == (
                demo[p["id"]]["title"], demo[p["id"]]["title_en"], demo[p["id"]]["area"], demo[p["id"]]["group"])
        given = [p for p in projects if p["count"]]
        assert sum(p["count"] for p in projects) == 5 and given
        # Every area's total is the sum of its projects' totals: nothing is stranded at ¥0.
        areas = {a["area"]: a for a in requests.get(url + "/api/v1/areas", timeout=10).json()}
        for area, a in areas.items():
            assert a["total_yen"] == sum(p["total_yen"] for p in projects if p["area"] == area)
        assert sum(a["total_yen"] for a in areas.values()) == sum(p["total_yen"] for p in projects) > 0
        home = requests.get(url + "/", timeout=10).text
        for p in projects:
            assert p["title"] in home
        page = requests.get(url + f"/p/{given[0]['id']}", timeout=10).text
        assert given[0]["title"] in page and "分野: <span id=\"area\"></span>" not in page
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()

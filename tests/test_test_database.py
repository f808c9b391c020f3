"""The test run's own PostgreSQL set-up (tests/conftest.py): with $KIOSK_TEST_PG_URL set, a server that does not
answer stops the run before any test starts, in one line naming the setting and the fix, as README says. Under
pytest-xdist each worker would otherwise crash on it, and pytest would report that no tests ran."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.loopback import refused_port

ROOT = Path(__file__).resolve().parents[1]


def test_a_postgresql_that_does_not_answer_stops_the_run_in_one_line():
    # README's test command (its xdist options come from pyproject.toml), on one small module, as a run of its
    # own: without this worker's PYTEST_XDIST_WORKER, which would make the new run's controller act as a worker.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    with refused_port() as port:
        url = f"postgresql+psycopg://kiosk:kiosk@127.0.0.1:{port}/kiosk_nowhere"
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_readme.py"],
                           cwd=ROOT, env={**env, "KIOSK_TEST_PG_URL": url}, capture_output=True, text=True,
                           timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 4, out  # pytest's usage error, not 5 ("no tests collected")
    lines = [ln for ln in out.splitlines() if "KIOSK_TEST_PG_URL is set" in ln]
    assert len(lines) == 1, out
    assert "'kiosk_nowhere'" in lines[0] and "Connection refused" in lines[0]
    assert "Start PostgreSQL" in lines[0] and "unset KIOSK_TEST_PG_URL" in lines[0]
    assert "passed" not in out and "Traceback" not in out

"""The portal database a test runs on: a new SQLite file of its own, or the run's PostgreSQL database emptied.

One definition for every directory whose tests start a portal (tests/conftest.py's ``db_url`` fixture, the
sync tests' ``pg_db_url``, and the property tests that need a fresh portal for each schedule they draw).
"""

from __future__ import annotations

import os
from pathlib import Path

PG_ENV = "KIOSK_TEST_PG_URL"
"""Where the PostgreSQL variants run (.ci/run sets it); without it they are skipped and say so."""


def pg_url() -> str | None:
    """The run's PostgreSQL URL (per xdist worker: tests/conftest.py rewrites it), or None."""
    return os.environ.get(PG_ENV) or None


def fresh_db(db_url: str, root: Path) -> str:
    """An empty portal database: a new SQLite file under ``root``, or the PostgreSQL database of ``db_url``
    emptied. Every test with a ``db_url`` starts from one, and so does each schedule a property test draws
    (hypothesis runs many in one test)."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{root / 'portal.db'}"
    from server_sync.db import drop_schema, make_engine  # only the PostgreSQL variants pay for the import

    eng = make_engine(db_url)
    drop_schema(eng)
    eng.dispose()
    return db_url

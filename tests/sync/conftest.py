"""Fixtures for the sync tests: a real portal over HTTP on loopback, on SQLite and on PostgreSQL (tests/conftest.py's
``db_url``), and kiosks with real keys, peppers and ledgers in tmp_path (helpers: sync_helpers.py).

PostgreSQL comes from $KIOSK_TEST_PG_URL (e.g. postgresql+psycopg://kiosk:kiosk@127.0.0.1:5432/kiosk_test);
without it the PostgreSQL variants are skipped, saying so.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for sync_helpers and fault_proxy

from sync_helpers import PASSWORD, PROJECTS, make_rig  # noqa: E402

from server_sync import catalog, totals  # noqa: E402
from server_sync.db import make_engine  # noqa: E402
from server_sync.embedded import start_portal  # noqa: E402
from server_sync.staff import add_user  # noqa: E402
from tests.portal_db import PG_ENV, fresh_db, pg_url  # noqa: E402


@pytest.fixture
def server_zone() -> Iterator[Callable[[str], None]]:
    """A function that sets this process's time zone (TZ and tzset: what ``date.today()`` and ``time.localtime``
    read, the server's own zone); the zone the process had is put back afterwards. For the portal's days and
    months, which are Japan's whatever the server's zone."""
    before = os.environ.get("TZ")

    def use(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    yield use
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture
def pg_db_url(tmp_path: Path) -> str:
    """PostgreSQL only: for what SQLite cannot do by design (several portal worker processes)."""
    url = pg_url()
    if url is None:
        pytest.skip(f"PostgreSQL only: set {PG_ENV} (CI does)")
    return fresh_db(url, tmp_path)


@pytest.fixture
def portal(db_url: str):
    """A portal on loopback. After the test, whatever it did, the kept public totals must still be the count
    of the entries (server_sync/totals.py): every sync test checks that invariant."""
    handle = start_portal(db_url)
    yield handle
    handle.stop()
    eng = make_engine(db_url)
    try:
        assert totals.check(eng) == [], "the kept totals differ from a count of the entries"
    finally:
        eng.dispose()


@pytest.fixture
def staff_site(tmp_path: Path):
    """A portal on SQLite with one staff login, ``staff1`` (password ``sync_helpers.PASSWORD``), and nothing else."""
    from sync_helpers import PASSWORD

    from server_sync.staff import add_user

    handle = start_portal(f"sqlite:///{tmp_path}/portal.db")
    add_user(handle.app.state.engine, "staff1", PASSWORD, "staff")
    yield handle
    handle.stop()


@pytest.fixture
def editor_site(tmp_path: Path):
    """The movie maker's walkthrough portal (sync_helpers.editor_portal: one group, its editor ``editor1``), movies
    made small (320×180) so that a test makes one in seconds."""
    from sync_helpers import EDITOR_MOVIE_SIZE, editor_portal

    p = editor_portal(tmp_path, EDITOR_MOVIE_SIZE)
    yield p
    p.stop()


@pytest.fixture
def rig(tmp_path: Path):
    r = make_rig(tmp_path)
    yield r
    r.ledger.close(checkpoint=False)


@pytest.fixture
def browser():
    """Headless Chromium through Playwright, one per test (modules mark themselves ``needs_chromium``)."""
    from playwright.sync_api import sync_playwright
    from sync_helpers import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The seqs the portals' LedgerState.apply replays or verifies, in order (their requests run in worker
    threads; the kiosk's own ledger, in this thread, is left out). Watched, not replaced."""
    import threading

    from kiosk.ledger import state as state_mod

    seen: list[int] = []
    real = state_mod.LedgerState.apply

    def apply(self: state_mod.LedgerState, seq: int, *a: Any, **kw: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            seen.append(seq)
        real(self, seq, *a, **kw)

    monkeypatch.setattr(state_mod.LedgerState, "apply", apply)
    return seen


@pytest.fixture
def two(portal, tmp_path: Path):  # noqa: ANN001, ANN201
    """Two kiosks of one city on ``portal`` (center-1f, city-hall) sharing the city's pepper, so one card has one
    token at both (docs/privacy.md); the catalog's projects, and a staff login ``staff1``."""
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    add_user(eng, "staff1", PASSWORD, "staff")
    a, b = make_rig(tmp_path, "center-1f"), make_rig(tmp_path, "city-hall")
    b.pepper = a.pepper
    yield a, b
    for r in (a, b):
        r.ledger.close(checkpoint=False)

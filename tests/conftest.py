"""Shared fixtures: real files in tmp_path, a settable clock, and a small sample ledger."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import settings

from kiosk.ledger import Ledger, Pepper
from kiosk.ledger.clock import FixedClock
from kiosk.ledger.encoding import parse_body
from kiosk.ledger.state import LedgerState
from tests.portal_db import PG_ENV, fresh_db, pg_url

# In CI (.ci/run sets CI) the property tests draw the same examples on every run: a submission's result must not
# depend on the draw. Runs elsewhere draw new examples each time, which is where new failures are found; a failure
# prints the blob that replays it (@reproduce_failure).
# No per-example deadline (Hypothesis's default is 200 ms) in either: it is a wall-clock bound, and on a loaded
# 2-core CI host an example of a plain dict-like map took 515 ms and failed the run with DeadlineExceeded. Speed
# is measured in bench/, not asserted by the property tests.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def pytest_configure(config: pytest.Config) -> None:
    """With $KIOSK_TEST_PG_URL set, the run checks once that PostgreSQL answers before any test starts, and under
    pytest-xdist (pyproject's ``-n``) each worker gets a database of its own: the PostgreSQL tests empty the
    portal's tables at their start (tests/portal_db.py), so two workers on one database would wipe each other's
    portal. The worker's
    database is ``<the given one>_<worker id>``, made here when missing (the test role has CREATEDB: .ci/run).
    Subprocesses a test starts (portal workers, benches) inherit the rewritten URL."""
    url = os.environ.get(PG_ENV)
    if url:
        os.environ[PG_ENV] = pg_database_for(url, os.environ.get("PYTEST_XDIST_WORKER"))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject's addopts): one worker more than the machine has cores, at most three. About a third
    of the suite's time is waiting (on child kiosks and portals, loopback HTTP, Chromium, PostgreSQL), which a
    third worker fills. Measured on a 2-core machine: the ledger, donation and app tests took 89 s with two
    workers, 69 s with three and 69 s with four; the whole CI run, on one tree in one hour, 1,388 s with two
    and 1,224 s with three."""
    return min(3, (os.cpu_count() or 1) + 1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked ``slow`` (each a minute or more of one core in CI: the power-cut campaign, the schedule
    property tests, the benches' smoke runs) run first, in their collected order. pytest-xdist's worksteal
    hands each worker a stretch of the list and lets an idle one take from the other's, so long tests at the start
    are shared out; one drawn last would keep CI waiting on one core for minutes while the other sat idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the rest keep their order


def pg_database_for(url: str, worker: str | None) -> str:
    """``url`` itself once PostgreSQL has answered there (no worker: the run's controller, or a run without
    xdist), else the URL of ``worker``'s own database beside it, created if it does not exist yet. A server that
    does not answer stops the run with one line naming the setting and the fix, rather than the same connection
    error in every PostgreSQL test."""
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import SQLAlchemyError

    base = make_url(url)
    name = f"{base.database}_{worker}" if worker else base.database
    admin = create_engine(base, isolation_level="AUTOCOMMIT")  # CREATE DATABASE cannot run in a transaction
    try:
        with admin.connect() as conn:
            if worker and conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                       {"n": name}).first() is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise pytest.UsageError(
            f"{PG_ENV} is set, but the tests cannot use database {name!r} there: {first}. Start PostgreSQL and give "
            f"the role CREATEDB (as .ci/run does), or unset {PG_ENV} to run the SQLite variants only") from None
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty portal database for a test that runs once on SQLite and once on PostgreSQL (skipped, saying
    why, without $KIOSK_TEST_PG_URL)."""
    url = request.param if request.param == "sqlite" else pg_url()
    if url is None:
        pytest.skip(f"PostgreSQL variant: set {PG_ENV} (e.g. postgresql+psycopg://kiosk:kiosk@127.0.0.1:5432/kiosk_test)")
    return fresh_db(url, tmp_path)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def pepper(tmp_path: Path) -> Pepper:
    return Pepper.create(tmp_path / "pepper.json")


def fake_idm(n: int) -> bytes:
    return hashlib.sha256(f"test-card-{n}".encode()).digest()[:8]


def build_sample(path: Path, sk: Ed25519PrivateKey, pepper: Pepper, clock: FixedClock,
                 kiosk_id: str = "test-kiosk-1") -> Ledger:
    """A ledger holding every entry type at least once."""
    led = Ledger.open(path, sk, kiosk_id, clock=clock, checkpoint_every=1000)
    donor = pepper.token(fake_idm(1))
    i1 = led.record_intent("kodomo", 500, "sim", donor, "idem-1")
    clock.advance(1500)
    d1 = led.record_donation(i1.seq, "sim-ref-1", 5)
    i2 = led.record_intent("midori", 100, "sim", pepper.token(fake_idm(2)), "idem-2")
    led.record_failure(i2.seq, "declined: insufficient balance")
    i3 = led.record_intent("midori", 1000, "sim", donor, "idem-3")
    led.record_donation(i3.seq, "sim-ref-3", 10)
    led.void(d1.seq, "staff correction: test tap")
    led.grant_points(pepper.token(fake_idm(3)), 20, "park cleanup")
    led.append("config_change", {"version": 2, "digest": "ab" * 32})
    led.append("admin_action", {"action": "menu_open", "detail": "staff card"})
    led.append("close_out", {"business_date": "2025-11-21", "first_seq": 1, "last_seq": 12, "count": 1,
                             "total_yen": 1000, "projects": [{"id": "midori", "count": 1, "total_yen": 1000}],
                             "methods": [{"method": "sim", "count": 1, "total_yen": 1000}]})
    led.checkpoint()
    return led


@pytest.fixture
def sample_ledger(tmp_path: Path, signing_key, pepper, clock):  # noqa: ANN001
    led = build_sample(tmp_path / "ledger.db", signing_key, pepper, clock)
    yield led
    led.close(checkpoint=False)


def replayed(path: Path) -> LedgerState:
    """Every entry of the file applied in order, straight off the SQLite file: what opening a ledger without
    its state snapshot gives (tests/ledger/test_snapshot.py holds the two to each other)."""
    st = LedgerState()
    with closing(sqlite3.connect(path)) as conn:
        for seq, body, h, sig in conn.execute("SELECT seq, body, entry_hash, signature FROM entries ORDER BY seq"):
            st.apply(seq, parse_body(body), h, sig)
    return st


def fields(st: LedgerState) -> dict[str, object]:
    """Every field of a state, the Merkle range as its size and subtree roots."""
    out = dict(vars(st))
    tree = out.pop("tree")
    out["tree"] = (tree.size, tree.stack)
    return out

"""A portal whose PostgreSQL database cannot be written to: a hot standby after a failover, a database set
``default_transaction_read_only``, or data files on a disk the kernel remounted read-only. PostgreSQL says so with
SQLSTATE 25006 (read_only_sql_transaction) or 42501 with the system's "Read-only file system", which SQLAlchemy
raises as InternalError / ProgrammingError, not OperationalError. Either way the answer is the portal's
"cannot write now" (503, Retry-After), in plain words for staff, never a 500; the kiosk keeps its batch and
sends it once the database takes writes again; a media job says it is the portal's disk.

Real parts: the run's PostgreSQL database ($KIOSK_TEST_PG_URL, per xdist worker; skipped without it, as the
other PostgreSQL-only tests), real sessions made read-only with ``SET default_transaction_read_only = on``, the
real portal over HTTP on loopback and a real kiosk uploader with its signed ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import event, func, select
from sync_helpers import PASSWORD, enrolled, make_rig, staff_session

from server_sync import mediajobs, pages
from server_sync.db import entries, make_engine
from server_sync.embedded import start_portal
from server_sync.staff import add_user


@pytest.fixture
def pg_portal(pg_db_url: str):
    handle = start_portal(pg_db_url)
    add_user(handle.app.state.engine, "staff1", PASSWORD, "staff")
    yield handle
    handle.stop()


_HOOKS: dict[int, Any] = {}


def read_only(engine: Any, on: bool) -> None:
    """From now on every session of the portal's engine is (or is no longer) read-only, as on a hot standby."""
    def _set(dbapi_conn: Any, _rec: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("SET default_transaction_read_only = on")
        cur.close()
        dbapi_conn.commit()

    if on:
        event.listen(engine, "connect", _set)
        _HOOKS[id(engine)] = _set
    else:
        event.remove(engine, "connect", _HOOKS.pop(id(engine)))
    engine.dispose()  # the pooled sessions are replaced by new ones


def test_a_read_only_postgresql_answers_503_to_the_kiosk_which_keeps_its_batch(pg_portal, tmp_path: Path) -> None:
    engine = pg_portal.app.state.engine
    rig = make_rig(tmp_path)
    try:
        up = enrolled(rig, pg_portal)
        rig.donate(3)
        read_only(engine, True)
        state = up.sync_once(max_attempts=1)
        assert not state.ok and "503" in str(state.last_error), state
        assert state.accepted_through_seq == 0 or state.accepted_through_seq < rig.ledger.size  # nothing claimed
        with make_engine(pg_portal.db_url).connect() as conn:
            assert conn.execute(select(func.count()).select_from(entries)).scalar_one() == 0
        read_only(engine, False)
        assert up.sync_once().ok  # writable again: the same entries go up, none lost
        with make_engine(pg_portal.db_url).connect() as conn:
            assert conn.execute(select(func.count()).select_from(entries)).scalar_one() == rig.ledger.size
    finally:
        rig.ledger.close(checkpoint=False)


def test_a_staff_member_on_a_read_only_postgresql_reads_plain_words_not_a_500(pg_portal) -> None:
    engine = pg_portal.app.state.engine
    read_only(engine, True)
    # Signing in writes a session row: the database refuses it.
    r = requests.post(pg_portal.url + "/staff/login", data={"username": "staff1", "password": PASSWORD},
                      headers={"Accept": "text/html"}, timeout=10)
    assert r.status_code == 503, (r.status_code, r.text[:300])
    assert r.headers.get("Retry-After") and pages.staff_text(mediajobs.NO_ROOM_PAGE, "ja") in r.text
    read_only(engine, False)
    s, _token = staff_session(pg_portal.url, "staff1")  # and once writable, all is as before
    assert s.get(pg_portal.url + "/staff", timeout=10).status_code == 200


def test_postgresql_read_only_errors_are_the_read_only_storage_fault(pg_db_url: str) -> None:
    """The one classification (mediajobs.storage_fault) that the app's answers and a media job's message share,
    on the errors a real PostgreSQL raises: a read-only transaction (25006), and a data file on a read-only disk
    (42501 with the system's words, as PostgreSQL's errcode_for_file_access maps EROFS)."""
    eng = make_engine(pg_db_url)
    read_only(eng, True)
    try:
        with eng.begin() as conn:
            conn.exec_driver_sql("CREATE TEMP TABLE t (x int)")
        raise AssertionError("a read-only session took a write")
    except Exception as exc:  # noqa: BLE001 - what SQLAlchemy raises: InternalError, not OperationalError
        assert getattr(getattr(exc, "orig", None), "sqlstate", None) == "25006", exc
        assert mediajobs.storage_fault(exc) == mediajobs.READ_ONLY
    finally:
        read_only(eng, False)
    try:
        with eng.begin() as conn:  # PostgreSQL's own words for a data file on a read-only disk (SQLSTATE 42501)
            conn.exec_driver_sql("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = "
                                 "'could not extend file \"base/16384/2619\": Read-only file system'; END $$")
        raise AssertionError("no error")
    except Exception as exc:  # noqa: BLE001
        assert getattr(getattr(exc, "orig", None), "sqlstate", None) == "42501", exc
        assert mediajobs.storage_fault(exc) == mediajobs.READ_ONLY
    try:
        with eng.begin() as conn:  # a missing GRANT is a setup mistake (a 500, in the log), not a read-only disk
            conn.exec_driver_sql("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = "
                                 "'permission denied for table portal_entries'; END $$")
        raise AssertionError("no error")
    except Exception as exc:  # noqa: BLE001
        assert mediajobs.storage_fault(exc) is None
    eng.dispose()

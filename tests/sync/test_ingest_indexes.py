"""What a batch's statements and the staff fleet page read grows with what they show, not with the history
(server_sync/db.py), on SQLite and PostgreSQL: the statements that read a kiosk's stored entries on most
uploads, and those of the fleet page, go through partial indexes, as each database's own plan says on
20,000 stored entries; and a portal made before the indexes gets them at its next start."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine

from server_sync import queries
from server_sync.db import (
    BOOT_ENTRIES,
    CONFIG_CHANGES,
    QUARANTINED_ENTRIES,
    UNSYNCED_ENTRIES,
    UNTIMED_ENTRIES,
    create_schema,
    entries,
    make_engine,
)
from server_sync.ingest import _CONFIG_CHANGES, _RETIME

ROW = {"kiosk_id": "k", "body": b"{}", "entry_hash": bytes(32), "signature": bytes(64), "type": "donation",
       "boot": 1, "mono_ms": 5, "wall_ms": 1_796_000_000_000, "clock_synced": True, "time_ms": 1_796_000_000_000,
       "time_fixed": True, "voided": False, "received_ms": 1_796_000_000_000, "quarantine": None}


def _history(eng: Engine, n: int = 20_000) -> None:
    """``n`` stored entries of kiosk k, nearly all synced gifts: the first 3 unsynced (2 of them without a fixed
    time), one held, two config changes; a kiosk "other" with 100 gifts; and 300 more kiosks with five config
    changes each (a city's fleet)."""
    create_schema(eng)
    rows = [{**ROW, "seq": s, "clock_synced": s > 3, "time_fixed": s > 2, "quarantine": "held" if s == 7 else None,
             "type": "config_change" if s in (2, 40) else "donation"}
            for s in range(1, n + 1)]
    rows += [{**ROW, "kiosk_id": "other", "seq": s} for s in range(1, 101)]
    rows += [{**ROW, "kiosk_id": f"fleet-{i}", "seq": s, "type": "config_change"} for i in range(300)
             for s in range(1, 6)]
    with eng.begin() as conn:
        conn.execute(entries.insert(), rows)
        conn.exec_driver_sql("ANALYZE")


def _plan_of(eng: Engine, stmt: Any, params: dict[str, Any]) -> tuple[str, Any]:
    """Runs ``stmt`` (rolled back) and returns the database's plan for it, as the driver got it, and its result."""
    sent: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(eng, "before_cursor_execute", grab)
    try:
        with eng.connect() as conn:
            res = conn.execute(stmt, params)
            got = res.rowcount if res.returns_rows is False else res.all()
            conn.rollback()
    finally:
        event.remove(eng, "before_cursor_execute", grab)
    sql, args = sent[-1]
    explain = "EXPLAIN QUERY PLAN" if eng.dialect.name == "sqlite" else "EXPLAIN"
    with eng.connect() as conn:
        return " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"{explain} {sql}", args)), got


def test_retiming_reads_only_the_kiosks_unsynced_rows(db_url: str) -> None:
    """The re-time UPDATE runs on every upload that moves a boot's epoch (an NTP-synced clock's wall − mono
    moves by a millisecond between entries)."""
    eng = make_engine(db_url)
    try:
        _history(eng)
        plan, touched = _plan_of(eng, _RETIME, {"kid": "k", "boots": [0, 1], "epoch": 1_795_999_000_000})
        assert UNSYNCED_ENTRIES.name in plan, plan
        assert touched == 3
    finally:
        eng.dispose()


def test_the_policy_context_reads_only_the_kiosks_config_changes(db_url: str) -> None:
    """Every batch reads the kiosk's newest config_change entries (server_sync/ingest.py _policy_context)."""
    eng = make_engine(db_url)
    try:
        _history(eng)
        plan, rows = _plan_of(eng, _CONFIG_CHANGES, {"kid": "k"})
        assert CONFIG_CHANGES.name in plan, plan
        assert len(rows) == 2
        plan, rows = _plan_of(eng, _CONFIG_CHANGES, {"kid": "other"})  # a kiosk with none: nothing walked
        assert CONFIG_CHANGES.name in plan and rows == [], plan
    finally:
        eng.dispose()


def test_the_staff_fleet_page_reads_only_what_it_counts(db_url: str) -> None:
    """Its counts of entries without a fixed time and of held ones, and each kiosk's newest boot entry: every
    statement it runs on the entries goes through one of the partial indexes."""
    eng = make_engine(db_url)
    mine = {UNTIMED_ENTRIES.name, QUARANTINED_ENTRIES.name, BOOT_ENTRIES.name}
    sent: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    try:
        _history(eng)
        event.listen(eng, "before_cursor_execute", grab)
        try:
            queries.fleet(eng)
        finally:
            event.remove(eng, "before_cursor_execute", grab)
        on_entries = [(q, a) for q, a in sent if "FROM portal_entries" in q]
        assert len(on_entries) == 3, on_entries
        explain = "EXPLAIN QUERY PLAN" if eng.dialect.name == "sqlite" else "EXPLAIN"
        with eng.connect() as conn:
            for sql, args in on_entries:
                plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"{explain} {sql}", args))
                assert any(name in plan for name in mine), (sql, plan)
    finally:
        eng.dispose()


def test_a_portal_made_before_the_indexes_gets_them(db_url: str) -> None:
    eng = make_engine(db_url)
    names = {UNSYNCED_ENTRIES.name, CONFIG_CHANGES.name, UNTIMED_ENTRIES.name, QUARANTINED_ENTRIES.name,
             BOOT_ENTRIES.name}
    try:
        create_schema(eng)
        with eng.begin() as conn:
            for name in names:
                conn.exec_driver_sql(f"DROP INDEX {name}")
        assert not names & {i["name"] for i in inspect(eng).get_indexes("portal_entries")}
        create_schema(eng)  # what every portal start runs
        create_schema(eng)  # and again: nothing to do
        assert names <= {i["name"] for i in inspect(eng).get_indexes("portal_entries")}
    finally:
        eng.dispose()

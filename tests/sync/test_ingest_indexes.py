"""What a batch's statements and the staff fleet page read grows with what they show, not with the history
(server_sync/db.py), on SQLite and PostgreSQL: the statements that read a kiosk's stored entries on most
uploads, and those of the fleet page and of the staff reconciliation of a month, go through partial indexes,
as each database's own plan says on 20,000 stored entries; and a portal made before the indexes gets them (and
the close-outs' business date column) at its next start."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, inspect, select
from sqlalchemy.engine import Engine

from kiosk.ledger.encoding import Envelope, build_body
from server_sync import queries, reconcile
from server_sync.db import (
    BOOT_ENTRIES,
    CLOSE_OUTS,
    CONFIG_CHANGES,
    DONATIONS_BY_WALL,
    QUARANTINED_ENTRIES,
    UNSYNCED_ENTRIES,
    UNTIMED_ENTRIES,
    VOIDS,
    closed_date,
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


def _statements_of(eng: Engine, fn: Any) -> list[tuple[str, Any]]:
    """Runs ``fn()`` and returns the statements it sent that read the entries, with their parameters."""
    sent: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(eng, "before_cursor_execute", grab)
    try:
        fn()
    finally:
        event.remove(eng, "before_cursor_execute", grab)
    return [(q, a) for q, a in sent if "FROM portal_entries" in q]


def _body(seq: int, kind: str, wall_ms: int, data: dict[str, Any]) -> bytes:
    return build_body(Envelope("k", "key", seq, bytes(32), 1, seq, wall_ms, True), kind, data)


TOKYO = ZoneInfo("Asia/Tokyo")
WIDE = {**ROW, "project": None, "amount_yen": None, "ref_seq": None, "business_date": None}  # one insert, one shape


def _ms(y: int, m: int, d: int, h: int = 12) -> int:
    return int(datetime(y, m, d, h, tzinfo=TOKYO).timestamp() * 1000)


def _closed(seq: int, day: str, wall_ms: int) -> dict[str, Any]:
    data = {"business_date": day, "first_seq": 1, "last_seq": 1, "count": 0, "total_yen": 0, "projects": [],
            "methods": []}
    return {**WIDE, "seq": seq, "type": "close_out", "wall_ms": wall_ms, "time_ms": wall_ms,
            "body": _body(seq, "close_out", wall_ms, data), "business_date": closed_date(day)}


def test_the_reconciliation_month_reads_only_its_days(db_url: str) -> None:
    """The staff reconciliation of a month (``reconcile.kiosk_days``, behind its page and its CSV) after a year:
    every statement it runs on the entries goes through the partial index of its kind of entry, or the
    primary key (the kiosk's first entry, for its time zone); and the month holds what the entries say: its
    gifts, the void of one of them, and the close-outs that name its days, however late they were written and
    however their date is spelled."""
    eng = make_engine(db_url)
    try:
        _history(eng)  # 20,000 entries of kiosk k dated 2026-11-30, bodies that are not read
        gift = {"intent_seq": 1, "project": "kodomo", "amount_yen": 500, "points": 5, "method": "sim",
                "provider_ref": "r", "idem": "i", "donor": "d", "pepper_epoch": 1, "totals": {}}
        rows = [{**WIDE, "seq": 20_000 + i, "wall_ms": _ms(2027, 3, 1 + i), "time_ms": _ms(2027, 3, 1 + i),
                 "amount_yen": 500, "project": "kodomo",
                 "body": _body(20_000 + i, "donation", _ms(2027, 3, 1 + i), gift)} for i in range(1, 4)]
        void = {"voids_seq": 20_002, "reason": "refund"}
        rows.append({**WIDE, "seq": 20_010, "type": "void", "ref_seq": 20_002, "wall_ms": _ms(2027, 3, 3),
                     "body": _body(20_010, "void", _ms(2027, 3, 3), void)})
        # A close-out a day of 2026 (a year of them), two of March 2027: one written a month late, one whose
        # date is spelled without dashes (date.fromisoformat reads both); one of 28 February, written in March.
        rows += [_closed(30_000 + d, date.fromordinal(date(2026, 1, 1).toordinal() + d).isoformat(),
                         _ms(2026, 1, 1)) for d in range(365)]
        rows += [_closed(31_000, "2027-03-02", _ms(2027, 4, 2)), _closed(31_001, "20270304", _ms(2027, 3, 4, 21)),
                 _closed(31_002, "2027-02-28", _ms(2027, 3, 1, 9)), _closed(31_003, "not a date", _ms(2027, 3, 5))]
        with eng.begin() as conn:
            conn.execute(entries.insert(), rows)
            conn.exec_driver_sql("ANALYZE")
        got: list[dict[str, Any]] = []
        sent = _statements_of(eng, lambda: got.extend(reconcile.kiosk_days(eng, date(2027, 3, 1),
                                                                           date(2027, 3, 31), "k")))
        assert {(r["business_date"], tuple(c["seq"] for c in r["closeouts"]), tuple(x["seq"] for x in r["rows"]))
                for r in got} == {("2027-03-04", (31_001,), (20_003,)), ("2027-03-03", (), (20_002,)),
                                  ("2027-03-02", (31_000,), (20_001,))}
        [voided] = [x for r in got for x in r["rows"] if x["seq"] == 20_002]
        assert voided["void_seq"] == 20_010
        mine = {DONATIONS_BY_WALL.name, VOIDS.name, CLOSE_OUTS.name, "portal_entries_pkey",
                "sqlite_autoindex_portal_entries_1 (kiosk_id=? AND seq=?)"}
        explain = "EXPLAIN QUERY PLAN" if eng.dialect.name == "sqlite" else "EXPLAIN"
        with eng.connect() as conn:
            plans = [" ".join(str(r[-1]) for r in conn.exec_driver_sql(f"{explain} {sql}", args))
                     for sql, args in sent]
        assert len(plans) == 4 and all(any(name in p for name in mine) for p in plans), "\n".join(plans)
        for index in (DONATIONS_BY_WALL, VOIDS, CLOSE_OUTS):
            assert any(index.name in p for p in plans), (index.name, plans)
    finally:
        eng.dispose()


def test_a_portal_made_before_the_business_date_column_gets_it_filled(db_url: str) -> None:
    """An older portal's close-outs (stored without the column) get their date at the next start; a close-out
    whose date is no date stays without one, as the reconciliation has always left it out."""
    eng = make_engine(db_url)
    try:
        create_schema(eng)
        with eng.begin() as conn:
            conn.exec_driver_sql(f"DROP INDEX {CLOSE_OUTS.name}")
            conn.exec_driver_sql("ALTER TABLE portal_entries DROP COLUMN business_date")
            old = [{k: v for k, v in _closed(s, day, _ms(2027, 3, 1)).items() if k != "business_date"}
                   for s, day in ((1, "2027-03-01"), (2, "20270302"), (3, "soon"))]
            void = {k: v for k, v in WIDE.items() if k != "business_date"}
            conn.execute(entries.insert(), old + [{**void, "seq": 4, "type": "void", "ref_seq": 1,
                                                   "body": _body(4, "void", 1, {"voids_seq": 1, "reason": "x"})}])
        assert "business_date" not in {c["name"] for c in inspect(eng).get_columns("portal_entries")}
        create_schema(eng)  # what every portal start runs
        create_schema(eng)  # and again: nothing to do
        assert CLOSE_OUTS.name in {i["name"] for i in inspect(eng).get_indexes("portal_entries")}
        with eng.connect() as conn:
            got = dict(conn.execute(select(entries.c.seq, entries.c.business_date)).all())
        assert got == {1: "2027-03-01", 2: "2027-03-02", 3: None, 4: None}
    finally:
        eng.dispose()


def test_a_portal_made_before_the_indexes_gets_them(db_url: str) -> None:
    eng = make_engine(db_url)
    names = {UNSYNCED_ENTRIES.name, CONFIG_CHANGES.name, UNTIMED_ENTRIES.name, QUARANTINED_ENTRIES.name,
             BOOT_ENTRIES.name, DONATIONS_BY_WALL.name, VOIDS.name, CLOSE_OUTS.name}
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

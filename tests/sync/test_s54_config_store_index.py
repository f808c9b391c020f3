"""Finding a target's newest config version reads one step of an index, not every stored version
(server_sync/db.py ``CONFIG_TARGETS``, server_sync/configstore.py), on SQLite and PostgreSQL.

Every publish adds a version and none is ever removed. Before, ``portal_configs.target`` had no index: a kiosk's
config poll (``GET /api/v1/kiosks/{id}/config``), the version in every sync answer, and each playlist page's
target read the versions back from the newest, row by row with their documents, until they met one of that
target; all of them for a target with none (about 100 ms a poll at 5,000 versions on SQLite, when the kiosk's
own versions were old). A kiosk's poll was also two statements (its kiosk group, then the versions)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine

from server_sync import configstore
from server_sync.db import CONFIG_TARGETS, configs, create_schema, kiosk_info, make_engine

GROUPS = {"lobby-1": "lobby", "lobby-2": "lobby", "hall-1": None, "odd-1": ""}
"""Kiosks and their kiosk groups (None: none; "": an empty name, which names no group); "stray-1" has no row."""


def _versions(n: int = 3000) -> list[tuple[int, str]]:
    """``(version, target)`` of ``n`` versions: all kiosks' and kiosk group lobby's first, a few of hall-1's and
    of the empty group, then the city's other kiosks' own playlists, published again and again."""
    targets = ["all", "group:lobby", "kiosk:hall-1", "group:", "kiosk:lobby-2"]
    targets += [f"kiosk:other-{v % 60}" for v in range(len(targets) + 1, n + 1)]
    return list(enumerate(targets, start=1))


def _fill(eng: Engine, versions: list[tuple[int, str]]) -> None:
    create_schema(eng)
    now = int(time.time() * 1000)
    with eng.begin() as conn:
        conn.execute(configs.insert(), [{"version": v, "digest": f"{v:064x}", "document": f'{{"v": {v}}}',
                                         "created_ms": now, "target": t} for v, t in versions])
        conn.execute(kiosk_info.insert(), [{"kiosk_id": k, "kiosk_group": g} for k, g in GROUPS.items()])
        conn.exec_driver_sql("ANALYZE")


def _expected(versions: list[tuple[int, str]], kid: str) -> int:
    """What a kiosk runs, as docs/sync.md says: the newest version for all kiosks, its kiosk group or itself."""
    grp = GROUPS.get(kid)
    mine = {"all", f"kiosk:{kid}"} | ({f"group:{grp}"} if grp else set())
    return max((v for v, t in versions if t in mine), default=0)


def _sent(eng: Engine, fn: Any) -> tuple[Any, list[tuple[str, Any]]]:
    """``fn(conn)``'s result and the statements it sent, with their parameters."""
    sent: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    with eng.connect() as conn:
        event.listen(eng, "before_cursor_execute", grab)
        try:
            got = fn(conn)
        finally:
            event.remove(eng, "before_cursor_execute", grab)
    return got, [(sql, args) for sql, args in sent if sql != "BEGIN"]  # SQLite's BEGIN (server_sync.db)


def _plan(eng: Engine, sql: str, args: Any) -> str:
    explain = "EXPLAIN QUERY PLAN" if eng.dialect.name == "sqlite" else "EXPLAIN"
    with eng.connect() as conn:
        return " | ".join(str(r[-1]) for r in conn.exec_driver_sql(f"{explain} {sql}", args))


def test_a_kiosks_config_poll_is_one_statement_through_the_index(db_url: str) -> None:
    """What each kiosk is told (its poll, and the version of its sync answers) is unchanged: for a kiosk in a
    kiosk group, one in none, one in the empty group and one the portal has no row for; and each is one statement,
    whose every look-up of a target's newest version goes down the index."""
    eng = make_engine(db_url)
    try:
        versions = _versions()
        _fill(eng, versions)
        for kid in (*GROUPS, "stray-1"):
            want = _expected(versions, kid)
            cur, sent = _sent(eng, lambda conn: configstore.current(conn, kid))  # noqa: B023
            assert (cur["version"] if cur else 0) == want, kid
            assert cur is None or (cur["config"] == {"v": want} and cur["target"] == dict(versions)[want])
            assert len(sent) == 1, sent  # the kiosk's group is looked up inside it
            plan = _plan(eng, *sent[0])
            assert CONFIG_TARGETS.name in plan, plan
            if eng.dialect.name == "sqlite":  # each target's newest: a SEARCH of the index, never a SCAN of the rows
                assert "SCAN portal_configs" not in plan and plan.count(CONFIG_TARGETS.name) == 3, plan
            version, sent = _sent(eng, lambda conn: configstore.current_version(conn, kid))  # noqa: B023
            assert version == want and len(sent) == 1, (kid, version, sent)
        assert _expected(versions, "lobby-2") == 5 and _expected(versions, "odd-1") == 1  # the cases are there
    finally:
        eng.dispose()


def test_a_targets_newest_version_reads_the_index(db_url: str) -> None:
    """A target's newest version (each playlist page's target, what replaced it, a publish for it): one step down
    the index, for a target with old versions only and for one with none."""
    eng = make_engine(db_url)
    try:
        versions = _versions()
        _fill(eng, versions)
        for target, want in (("kiosk:hall-1", 3), ("group:lobby", 2), ("kiosk:nobody", None)):
            cur, sent = _sent(eng, lambda conn: configstore.current(conn, target=target))  # noqa: B023
            assert (cur["version"] if cur else None) == want, target
            [(sql, args)] = sent
            plan = _plan(eng, sql, args)
            assert CONFIG_TARGETS.name in plan, plan
        with eng.connect() as conn:
            assert configstore.current_version(conn) == 1
            assert configstore.published_targets(conn)[:3] == ["all", "group:", "group:lobby"]
        if eng.dialect.name == "sqlite":  # the playlist pages' list of targets: the index's entries, not the rows
            _, sent = _sent(eng, configstore.published_targets)
            assert "COVERING INDEX " + CONFIG_TARGETS.name in _plan(eng, *sent[0])
    finally:
        eng.dispose()


def test_a_portal_made_before_the_index_gets_it(db_url: str) -> None:
    """An older portal's table (the index is made by ``create_all`` only with a new table) gets it at the next
    start, and so does one from before targets existed, after its ``target`` column is added."""
    eng = make_engine(db_url)
    try:
        create_schema(eng)
        with eng.begin() as conn:
            conn.exec_driver_sql(f"DROP INDEX {CONFIG_TARGETS.name}")
        assert CONFIG_TARGETS.name not in {i["name"] for i in inspect(eng).get_indexes("portal_configs")}
        create_schema(eng)  # what every portal start runs
        assert CONFIG_TARGETS.name in {i["name"] for i in inspect(eng).get_indexes("portal_configs")}

        with eng.begin() as conn:  # a portal from before targets: neither the column nor the index
            conn.exec_driver_sql(f"DROP INDEX {CONFIG_TARGETS.name}")
            conn.exec_driver_sql("ALTER TABLE portal_configs DROP COLUMN target")
            conn.exec_driver_sql("INSERT INTO portal_configs (version, digest, document, created_ms) "
                                 "VALUES (1, 'd', '{}', 0)")
        create_schema(eng)
        assert CONFIG_TARGETS.name in {i["name"] for i in inspect(eng).get_indexes("portal_configs")}
        with eng.connect() as conn:
            assert configstore.current_version(conn, "hall-1") == 1  # its versions were for all kiosks
    finally:
        eng.dispose()

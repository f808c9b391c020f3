"""The public totals, kept as they change: settled donations (not voided, not quarantined) per kiosk and
project, in ``portal_project_totals``.

Counting them on every page view read every donation the city ever made (half a second at a million
entries on SQLite, three times a page). Every transaction that changes what counts changes the kept
rows in the same transaction, so they are always the count of the entries:

- ingest (server_sync/ingest.py ``_store``) adds the settled donations it stores and takes away the
  counted donations its voids void: :func:`add`, under the kiosk's row lock;
- ``kiosk resume`` and a key revocation (server_sync/kiosk_keys.py), which release or quarantine stored
  entries and voids: :func:`recount` the kiosk from its entries;
- a portal made before this table counts every kiosk once at its first start (:func:`ensure`).

Which entries the kept rows count is kept too: ``portal_kiosks.totals_seq``, the kiosk's highest seq they
counted. A process of an older release (a rolling upgrade's hosts or workers on one PostgreSQL, or the
service not yet restarted after a new ``kiosk-portal`` command ran) stores entries without counting them and
without moving ``totals_seq``. So ingest adds a batch only when ``totals_seq`` is the seq just before it, and
otherwise counts the kiosk again from its entries in the same transaction (:func:`recount`); and every start
counts again each kiosk whose ``totals_seq`` is not its highest stored seq (:func:`ensure`), for the kiosks
that do not sync again soon. Both under the kiosk's row lock, which every writer of its entries takes.

``kiosk-portal totals --check`` (and :func:`check`) counts the entries again and compares; ``--recount``
(:func:`recount_all`) replaces the kept rows with that count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from server_sync.db import entries, is_sqlite, kiosks, lock_kiosk, project_totals, settings, writing

SETTLED = and_(entries.c.type == "donation", entries.c.voided.is_(False), entries.c.quarantine.is_(None))
"""What the totals count: a settled donation that broke no policy on ingest and was not voided."""

_MARK = "project_totals_v1"  # in portal_settings once every kiosk was counted into the table
_t = project_totals.c


def _upsert(ins: Any) -> Any:
    return ins.on_conflict_do_update(index_elements=["kiosk_id", "project"], set_={
        "count": _t.count + ins.excluded.count, "total_yen": _t.total_yen + ins.excluded.total_yen})


# Built once: ingest runs one on every batch that stores a gift (building a statement costs more than running it).
_ADD = {"sqlite": _upsert(sqlite.insert(project_totals)), "postgresql": _upsert(postgresql.insert(project_totals))}


def add(conn: Connection, kid: str, deltas: dict[str, list[int]]) -> None:
    """Add ``deltas`` (project -> [count, yen], negative to take away) to kiosk ``kid``'s kept totals."""
    rows = [{"kiosk_id": kid, "project": p, "count": c, "total_yen": y} for p, (c, y) in deltas.items() if c or y]
    if rows:
        conn.execute(_ADD[conn.dialect.name], rows)


def counted(objs: Iterable[dict[str, Any]]) -> dict[str, list[int]]:
    """project -> [count, yen] of the settled donations among ``objs`` (the rows ingest stores)."""
    out: dict[str, list[int]] = {}
    for r in objs:
        if r["type"] == "donation" and r["quarantine"] is None and not r["voided"]:
            c = out.setdefault(r["project"], [0, 0])
            c[0] += 1
            c[1] += r["amount_yen"]
    return out


_VOIDED_NOW = select(entries.c.project, entries.c.amount_yen).where(
    entries.c.kiosk_id == bindparam("kid"), entries.c.seq.in_(bindparam("seqs", expanding=True)), SETTLED)


def take_voided(conn: Connection, kid: str, seqs: list[int], deltas: dict[str, list[int]]) -> None:
    """Take the counted donations among ``seqs`` (about to be voided) away from ``deltas``."""
    for project, yen in conn.execute(_VOIDED_NOW, {"kid": kid, "seqs": seqs}):
        c = deltas.setdefault(project, [0, 0])
        c[0] -= 1
        c[1] -= yen


_ONE_KIOSK_SETTLED = and_((entries.c.type + "") == "donation", entries.c.voided.is_(False),
                          entries.c.quarantine.is_(None))
"""SETTLED for one kiosk's count: the same rows, its type term written so that no index can serve it (``type || ''``),
so both databases read the kiosk's own range of the primary key. With the plain term SQLite took the index on
(type, project) and read every donation of every kiosk to count one (at 1,000,000 entries, 330 ms a kiosk against
40 ms; a start that counts every kiosk of a fleet of 200 again would have read them all 200 times)."""


def _count_sql(kid: str | None) -> Any:
    q = select(entries.c.kiosk_id, entries.c.project, func.count(), func.sum(entries.c.amount_yen))
    if kid is None:
        q = q.where(SETTLED)
    else:
        q = q.where(_ONE_KIOSK_SETTLED, entries.c.kiosk_id == kid)
    return q.group_by(entries.c.kiosk_id, entries.c.project)


def _held_sql(kid: Any) -> Any:
    """The highest seq stored of kiosk ``kid`` (a value or a column), 0 if none: a bare max() inside, which both
    databases read from the end of the primary key's range of the kiosk, not by walking its entries."""
    top = select(func.max(entries.c.seq)).where(entries.c.kiosk_id == kid).scalar_subquery()
    return func.coalesce(top, 0)


_BEHIND = select(kiosks.c.id).where(or_(kiosks.c.totals_seq.is_(None),
                                        kiosks.c.totals_seq != _held_sql(kiosks.c.id))).order_by(kiosks.c.id)
"""The kiosks whose kept totals do not count every entry stored of them (an older process stored some since)."""


def recount(conn: Connection, kid: str) -> None:
    """Kiosk ``kid``'s kept totals counted again from its entries, and ``totals_seq`` set to its highest stored
    seq. The caller holds the kiosk's row lock (``db.lock_kiosk``) from before its own changes, as ingest does,
    so the two cannot interleave."""
    conn.execute(delete(project_totals).where(_t.kiosk_id == kid))
    conn.execute(insert(project_totals).from_select(["kiosk_id", "project", "count", "total_yen"], _count_sql(kid)))
    conn.execute(update(kiosks).where(kiosks.c.id == kid).values(totals_seq=_held_sql(kid)))


def ensure(engine: Engine) -> None:
    """At every start: count every kiosk into the table once, at the first start of a portal that did not
    keep it (one transaction with the mark, under a table lock on PostgreSQL: workers starting at once count
    once); then count again, each under its row lock, every kiosk whose kept totals are behind its entries
    (an older process of a rolling upgrade stored some since; a cheap look-up of each kiosk's highest seq)."""
    with engine.connect() as conn:
        marked = conn.execute(select(settings.c.value).where(settings.c.name == _MARK)).first() is not None
    if not marked:
        recount_all(engine, only_if_unmarked=True)
    with engine.connect() as conn:
        behind = [r[0] for r in conn.execute(_BEHIND)]
    for kid in behind:
        with writing(engine) as conn:
            if lock_kiosk(conn, kid) is None:
                continue
            if conn.execute(_BEHIND.where(kiosks.c.id == kid)).first() is not None:  # else counted meanwhile
                recount(conn, kid)


def recount_all(engine: Engine, only_if_unmarked: bool = False) -> None:
    """Every kiosk's kept totals counted again from the entries, in one transaction (``kiosk-portal totals
    --recount``, after a hand edit of the database that ``--check`` found). On PostgreSQL every kiosk's row
    lock is taken first, in one order (ingest holds one kiosk's, then writes the kept rows; taken the other way
    round the two would deadlock), then a table lock, so that no ingest adds to rows being replaced."""
    with writing(engine) as conn:
        ids = select(kiosks.c.id).order_by(kiosks.c.id)
        if not is_sqlite(engine):
            ids = ids.with_for_update()
        locked = [r[0] for r in conn.execute(ids)]
        if not is_sqlite(engine):
            conn.exec_driver_sql("LOCK TABLE portal_project_totals IN EXCLUSIVE MODE")
        marked = conn.execute(select(settings.c.value).where(settings.c.name == _MARK)).first() is not None
        if marked and only_if_unmarked:
            return
        conn.execute(delete(project_totals))
        conn.execute(insert(project_totals).from_select(["kiosk_id", "project", "count", "total_yen"],
                                                        _count_sql(None)))
        if locked:  # a kiosk enrolled since is not locked here: its first batch counts its entries
            conn.execute(update(kiosks).where(kiosks.c.id.in_(locked)).values(totals_seq=_held_sql(kiosks.c.id)))
        if not marked:
            conn.execute(settings.insert().values(name=_MARK, value="1"))


def by_project(conn: Connection) -> list[tuple[str, int, int]]:
    """(project, count, yen) of every project with a counted donation, in project order."""
    rows = conn.execute(select(_t.project, func.sum(_t.count), func.sum(_t.total_yen)).group_by(_t.project)
                        .having(func.sum(_t.count) > 0).order_by(_t.project)).all()
    return [(p, int(c), int(y or 0)) for p, c, y in rows]


def check(engine: Engine) -> list[str]:
    """Every difference between the kept totals and a count of the entries (empty: they agree)."""
    with engine.connect() as conn:
        kept = {(k, p): (int(c), int(y)) for k, p, c, y in conn.execute(
            select(_t.kiosk_id, _t.project, _t.count, _t.total_yen)) if c or y}
        real = {(k, p): (int(c), int(y or 0)) for k, p, c, y in conn.execute(_count_sql(None))}
    return [f"kiosk {k} project {p}: kept {kept.get((k, p), (0, 0))}, entries say {real.get((k, p), (0, 0))}"
            for k, p in sorted(set(kept) | set(real)) if kept.get((k, p), (0, 0)) != real.get((k, p), (0, 0))]


__all__ = ["SETTLED", "add", "by_project", "check", "counted", "ensure", "recount", "recount_all", "take_voided"]

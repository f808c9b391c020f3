"""Read models for the public API, the receipt page and the staff pages.

"Settled" is the ledger's definition (kiosk/ledger/report.py): a ``donation`` entry that no ``void``
cancels. Public answers carry totals, and of each recent gift its day in Japan, amount and project
(:func:`public_recent`): never a donor token, and never a gift's kiosk or time of day (docs/privacy.md).
A receipt shows its own donation only, to whoever holds its code, with its signed body and signature so
anyone can check it.
"""

from __future__ import annotations

import base64
import functools
import threading
import weakref
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.engine import Connection, Engine

from kiosk.ledger import checkpoint as cpmod
from kiosk.ledger import merkle
from kiosk.ledger.encoding import parse_body
from kiosk.ledger.keys import key_id, public_from_raw
from server_sync import catalog, configstore, kiosk_keys, tree
from server_sync import totals as kept_totals
from server_sync.catalog import AREAS
from server_sync.charts import percent_of
from server_sync.db import (
    IS_BOOT,
    QUARANTINED,
    UNTIMED,
    alarms,
    configs,
    entries,
    is_sqlite,
    key_events,
    kiosk_info,
    kiosks,
)
from server_sync.policy import TZ  # the day a public page or answer gives a gift (server_sync/pages.py ``when``)
from server_sync.wire import csvsafe

RECENT = 20

# Counted: a settled donation that broke no policy on ingest (quarantined entries are never counted).
_clean = entries.c.quarantine.is_(None)
_settled = kept_totals.SETTLED  # one definition: the kept totals count exactly what these pages list


def totals(engine: Engine) -> dict[str, Any]:
    """Settled donations per project and in all: the kept totals (server_sync/totals.py), which are the count
    of ``_settled`` entries, read from a few rows a kiosk."""
    with engine.connect() as conn:
        rows = kept_totals.by_project(conn)
    projects = [{"id": p, "count": c, "total_yen": y} for p, c, y in rows]
    return {"count": sum(p["count"] for p in projects), "total_yen": sum(p["total_yen"] for p in projects),
            "projects": projects}


def projects(engine: Engine) -> list[dict[str, Any]]:
    """The catalog's active projects, and any other project that holds donations, with their progress.

    A project id the catalog does not know (a kiosk's own TOML project never imported) is shown by
    its id, with no area, rather than hidden: its money is real.
    """
    with engine.connect() as conn:
        meta = {p["id"]: p for p in catalog.list_projects(conn)}
    got = {p["id"]: p for p in totals(engine)["projects"]}
    ids = [pid for pid, m in meta.items() if m["active"] or pid in got] + sorted(set(got) - set(meta))
    out = []
    for pid in ids:
        m = meta.get(pid, {})
        t = got.get(pid, {"count": 0, "total_yen": 0})
        goal = m.get("goal_yen")
        title = m.get("title", pid)
        out.append({"id": pid, "title": title, "title_en": m.get("title_en") or title,
                    "summary": m.get("summary", ""), "summary_en": m.get("summary_en") or m.get("summary", ""),
                    "group": m.get("group", ""), "area": m.get("area"), "goal_yen": goal,
                    "start": m.get("start"), "end": m.get("end"), "active": m.get("active", False),
                    "count": t["count"], "total_yen": t["total_yen"],
                    "progress": min(1.0, t["total_yen"] / goal) if goal else None,
                    "percent": percent_of(t["total_yen"], goal)})
    return out


def areas(engine: Engine) -> list[dict[str, Any]]:
    by: dict[str, dict[str, Any]] = {a: {"area": a, "title": ja, "title_en": en, "count": 0, "total_yen": 0,
                                         "goal_yen": 0, "projects": []} for a, (ja, en) in AREAS.items()}
    for p in projects(engine):
        a = by.get(p["area"] or "")
        if a is None:
            continue
        a["count"] += p["count"]
        a["total_yen"] += p["total_yen"]
        a["goal_yen"] += p["goal_yen"] or 0
        a["projects"].append(p["id"])
    for a in by.values():
        a["progress"] = min(1.0, a["total_yen"] / a["goal_yen"]) if a["goal_yen"] else None  # a bar's width
        a["percent"] = percent_of(a["total_yen"], a["goal_yen"])  # the figure printed
    return list(by.values())


def recent(engine: Engine, project_ids: list[str] | None = None, limit: int = RECENT) -> list[dict[str, Any]]:
    """The newest settled donations with their millisecond and kiosk, for the public pages to render (they
    print the day only). Never answered as they are: the public API gives :func:`public_recent`."""
    q = select(entries.c.time_ms, entries.c.amount_yen, entries.c.project, entries.c.kiosk_id).where(_settled)
    if project_ids is not None:
        q = q.where(entries.c.project.in_(project_ids))
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(entries.c.time_ms.desc()).limit(limit)).all()
    return [{"time_ms": t, "amount_yen": a, "project": p, "kiosk_id": k} for t, a, p, k in rows]


def public_recent(engine: Engine, project_ids: list[str] | None = None, limit: int = RECENT) -> list[dict[str, Any]]:
    """Recent settled donations as the public API gives them: exactly what the public pages show of each
    (templates/_macros.html ``recent``): its day in Japan (``YYYY-MM-DD``, Asia/Tokyo), amount and project.

    Never the kiosk and never the time of day: together they would tie a gift to whoever stood at that
    kiosk at that moment (docs/privacy.md, "What the public pages and the public API show"). The rows of
    :func:`recent` carry both, for the pages' own rendering only.
    """
    return [{"date": datetime.fromtimestamp(r["time_ms"] / 1000, TZ).date().isoformat(),
             "amount_yen": r["amount_yen"], "project": r["project"]}
            for r in recent(engine, project_ids, limit)]


# --- receipts ------------------------------------------------------------------------------------
RECEIPT_DAYS = 90
"""How long a receipt code shows its donation to whoever holds it (``create_app(receipt_days=...)``)."""


_ev = key_events.c
_genesis = entries.alias("genesis")
# One query, one round trip: the donation, its kiosk, and what says whether the kiosk's key chain changed
# since it was cached (see _KeyChains). Core rows, the columns a receipt shows or checks.
_RECEIPT_ROW = (
    select(entries.c.kiosk_id, entries.c.seq, entries.c.project, entries.c.amount_yen, entries.c.points,
           entries.c.time_ms, entries.c.time_fixed, entries.c.voided, entries.c.received_ms, entries.c.entry_hash,
           entries.c.body, entries.c.signature,
           kiosks.c.public_key.label("k_public_key"), kiosks.c.cp_size, kiosks.c.cp_note, kiosks.c.tree_size,
           select(func.count()).where(_ev.kiosk_id == entries.c.kiosk_id).scalar_subquery().label("ev_count"),
           select(func.coalesce(func.max(_ev.id), 0)).where(_ev.kiosk_id == entries.c.kiosk_id)
           .scalar_subquery().label("ev_max"),
           select(_genesis.c.entry_hash).where(_genesis.c.kiosk_id == entries.c.kiosk_id, _genesis.c.seq == 1)
           .scalar_subquery().label("genesis_hash"))
    .join_from(entries, kiosks, kiosks.c.id == entries.c.kiosk_id)
    .where(entries.c.receipt == bindparam("code"), entries.c.type == "donation", _clean)
)


def receipt(engine: Engine, code: str, now_ms: int | None = None, days: int = RECEIPT_DAYS) -> dict[str, Any] | None:
    """One donation and what proves it: its exact signed body and signature, the kiosk's key, the kiosk's
    newest signed checkpoint and the inclusion proof up to it. Nothing of the card's other gifts (a
    receipt code is a bearer token that may be photographed; history is on the donor's own page).

    ``None`` for an unknown code, a quarantined entry, and a code older than ``days`` (counted from the
    portal's own receive time, which no kiosk clock can move).

    Two round trips in the common case (docs/receipts.md, "Cost of a lookup"): the row with its kiosk, then
    every proof node in one query; the key chain comes from a cache checked against the database on every
    lookup, and a checkpoint's signature is checked once per (note, key).
    """
    with _reading(engine) as conn:
        row = conn.execute(_RECEIPT_ROW, {"code": code}).mappings().first()
        if row is None:
            return None
        if now_ms is not None and days and row["received_ms"] < now_ms - days * 86_400_000:
            return None
        kid, cp_size = row["kiosk_id"], row["cp_size"]
        keys, change_seqs = _KEY_CHAINS.get(engine, conn, row)
        covered = cp_size >= row["seq"] and bool(row["cp_note"])
        ready = covered and tree.covers(row, cp_size)
        proof: list[bytes] | None = None
        chain: list[dict[str, Any]] = []
        if ready:
            proof, chain = _proofs(conn, row, change_seqs)
    if covered and not ready:
        tree.ensure(engine, kid, cp_size)  # a kiosk last ingested by an older portal: once
        with _reading(engine) as conn:
            proof, chain = _proofs(conn, row, change_seqs)
    return {
        "receipt": code,
        "donation": {"kiosk_id": kid, "seq": row["seq"], "project": row["project"],
                     "amount_yen": row["amount_yen"], "points": row["points"], "time_ms": row["time_ms"],
                     "time_fixed": bool(row["time_fixed"]), "voided": bool(row["voided"])},
        "verification": _inclusion(row, proof, _key_at(keys, row["seq"]), _key_at(keys, cp_size + 1), chain),
    }


def _reading(engine: Engine) -> Connection:
    """A connection for a receipt's reads. On PostgreSQL without a transaction (autocommit): psycopg would
    spend a round trip on BEGIN and another on the ROLLBACK when the connection goes back to the pool,
    as many as the lookup's own two statements. The two need no common snapshot: the first reads the
    kiosk's checkpoint and ``tree_size``, which ingest commits together with the nodes they cover, and
    the nodes and entries the second reads are never changed once committed (a rebuild replaces them
    in one transaction). SQLite reads in-process and keeps its own BEGIN (server_sync/db.py)."""
    conn = engine.connect()
    if not is_sqlite(engine):
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
    return conn


def _proofs(conn: Any, row: Any, change_seqs: list[int]) -> tuple[list[bytes], list[dict[str, Any]]]:
    """The donation's inclusion proof up to the kiosk's checkpoint, and the key chain from the key that
    signed the donation (the one the QR names) to the key that signed the checkpoint: each key_change
    entry between the two with its own proof. All proofs' nodes in one query."""
    kid, seq, cp_size = row["kiosk_id"], row["seq"], row["cp_size"]
    wanted = [s for s in change_seqs if seq < s <= cp_size]
    changes = conn.execute(select(entries.c.seq, entries.c.body, entries.c.signature).where(
        entries.c.kiosk_id == kid, entries.c.seq.in_(wanted)).order_by(entries.c.seq)).all() if wanted else []
    paths = tree.inclusion_proofs(conn, kid, [seq - 1] + [s - 1 for s, _, _ in changes], cp_size)
    chain = [{"seq": s, "entry_body": base64.b64encode(bytes(body)).decode("ascii"),
              "entry_signature": bytes(sig).hex(), "proof": [p.hex() for p in path]}
             for (s, body, sig), path in zip(changes, paths[1:], strict=True)]
    return paths[0], chain


KeyChain = tuple[list[tuple[int, bytes]], list[int]]


class _KeyChains:
    """Each kiosk's key chain (:func:`_keys`), kept per engine (one database) and per kiosk.

    An entry is used only while the stamp it was read under still holds, and the stamp comes from the
    database in the same query as the receipt's row, so every worker process sees a change at once:
    ``portal_key_events`` only ever gains rows (a re-key, an announcement, a revocation: count and
    largest id change), the enrolled key is ``portal_kiosks.public_key`` (a re-enrolment or re-key
    changes it), and the genesis entry's hash names the first key (a database rebuilt under the same
    engine, as tests do, changes it)."""

    MAX_KIOSKS = 10_000

    def __init__(self) -> None:
        self._by_engine: weakref.WeakKeyDictionary[Engine, dict[str, tuple[tuple[Any, ...], KeyChain]]] = \
            weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, engine: Engine, conn: Any, row: Any) -> KeyChain:
        stamp = (bytes(row["k_public_key"]), int(row["ev_count"]), int(row["ev_max"]),
                 bytes(row["genesis_hash"]) if row["genesis_hash"] is not None else None)
        kid = row["kiosk_id"]
        with self._lock:
            cache = self._by_engine.setdefault(engine, {})
            hit = cache.get(kid)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        chain = _keys(conn, kid, stamp[0])
        with self._lock:
            if len(cache) >= self.MAX_KIOSKS:
                cache.clear()
            cache[kid] = (stamp, chain)
        return chain


_KEY_CHAINS = _KeyChains()


def _keys(conn: Any, kid: str, enrolled: bytes) -> KeyChain:
    """``([(first seq it signs, raw key)], [seqs of the key_change entries])`` from the portal's key events
    (server_sync/kiosk_keys.py: ``ledger`` from the seq after a key_change the previous key signed,
    ``admin`` from an announced key's own key_change); just the enrolled key for a kiosk that never
    re-keyed. Only primary-key and indexed reads: a lookup must not scan the kiosk's entries."""
    events = conn.execute(select(_ev.kind, _ev.seq, _ev.public_key).where(
        _ev.kiosk_id == kid, _ev.kind.in_(("ledger", "admin")), _ev.public_key.is_not(None))
        .order_by(_ev.seq)).all()
    if not events:
        return [(1, enrolled)], []
    genesis = conn.execute(select(entries.c.body).where(entries.c.kiosk_id == kid, entries.c.seq == 1)).scalar()
    first = bytes.fromhex(parse_body(bytes(genesis))["data"]["public_key"]) if genesis else enrolled
    keys = [(1, first)] + [(int(s), bytes(raw)) for _, s, raw in events]
    return keys, sorted({int(s) - 1 if kind == "ledger" else int(s) for kind, s, _ in events})


def _key_at(keys: list[tuple[int, bytes]], seq: int) -> bytes:
    found = keys[0][1]
    for start, raw in keys:
        if start <= seq:
            found = raw
    return found


@functools.lru_cache(maxsize=4096)
def _open_checkpoint(note: str, signer: bytes) -> cpmod.Checkpoint:
    """A checkpoint note opened with ``signer``'s key: the signature is checked once per (note, key), not at
    every receipt of the thousands it covers. A pure function of its arguments; a note that fails raises
    and is not cached."""
    return cpmod.open_note(note, public_from_raw(signer))


def _inclusion(row: Any, proof: list[bytes] | None, signer: bytes, cp_signer: bytes,
               key_changes: list[dict[str, Any]]) -> dict[str, Any]:
    """The evidence, and the portal's own check of it (a browser or ``kiosk receipt verify`` repeats it).

    ``public_key`` is the key that signed the donation (the one the QR names); when the kiosk re-keyed
    since, ``key_changes`` carries each key_change entry up to the checkpoint, with its inclusion proof,
    and the checkpoint is signed by the last key they hand over to."""
    h = bytes(row["entry_hash"])
    pub = public_from_raw(signer)
    out: dict[str, Any] = {"kiosk_id": row["kiosk_id"], "key_id": key_id(signer), "public_key": signer.hex(),
                           "seq": row["seq"], "entry_hash": h.hex(),
                           "entry_body": base64.b64encode(bytes(row["body"])).decode("ascii"),
                           "entry_signature": bytes(row["signature"]).hex(), "verified": False}
    try:
        pub.verify(bytes(row["signature"]), h)
    except Exception:  # noqa: BLE001 - InvalidSignature: cannot happen for stored entries, but say so if it does
        out["status"] = "bad_signature"
        return out
    if proof is None:
        out["status"] = "awaiting_checkpoint"
        return out
    out["key_changes"] = key_changes
    try:
        cp = _open_checkpoint(row["cp_note"], cp_signer)
    except cpmod.CheckpointError:
        out["status"] = "bad_checkpoint"
        return out
    ok = cp.size == row["cp_size"] and merkle.verify_inclusion(h, row["seq"] - 1, cp.size, proof, cp.root)
    out.update(status="verified" if ok else "not_included", verified=ok, checkpoint_size=cp.size,
               checkpoint_root=cp.root.hex(), checkpoint=row["cp_note"], proof=[p.hex() for p in proof])
    return out


# --- staff -----------------------------------------------------------------------------------------
def _software(conn: Any) -> dict[str, str]:
    """Each kiosk's software version, from its newest ``boot`` entry (``{"software": "kiosk 0.1.0"}``)."""
    newest = (select(entries.c.kiosk_id, func.max(entries.c.seq).label("seq")).where(IS_BOOT)  # db.BOOT_ENTRIES
              .group_by(entries.c.kiosk_id).subquery())
    rows = conn.execute(select(entries.c.kiosk_id, entries.c.body).join(
        newest, and_(entries.c.kiosk_id == newest.c.kiosk_id, entries.c.seq == newest.c.seq))).all()
    return {k: str(parse_body(bytes(b))["data"].get("software", "")) for k, b in rows}


def fleet(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        ks = conn.execute(select(kiosks).order_by(kiosks.c.id)).mappings().all()
        versions = {k["id"]: configstore.current_version(conn, k["id"]) for k in ks}
        groups_of = dict(conn.execute(select(kiosk_info.c.kiosk_id, kiosk_info.c.kiosk_group)).all())
        software = _software(conn)
        al = conn.execute(select(alarms).order_by(alarms.c.id.desc()).limit(500)).mappings().all()
        # Through the partial indexes of these terms (server_sync/db.py): few rows, not every entry.
        unfixed: dict[str, int] = dict(conn.execute(select(entries.c.kiosk_id, func.count()).where(UNTIMED)
                                                    .group_by(entries.c.kiosk_id)).all())
        held: dict[str, int] = dict(conn.execute(select(entries.c.kiosk_id, func.count()).where(QUARANTINED)
                                                 .group_by(entries.c.kiosk_id)).all())
        key_events = kiosk_keys.history(conn)
        # When each refused version was published: the kiosks page names the playlist by it (operator.py).
        refused = {k["config_refused_version"] for k in ks if k["config_refused_version"] is not None}
        published = dict(conn.execute(select(configs.c.version, configs.c.created_ms).where(
            configs.c.version.in_(sorted(refused)))).all()) if refused else {}
    out = []
    for k in ks:
        out.append({
            "id": k["id"], "key_id": k["key_id"], "enrolled_ms": k["enrolled_ms"], "last_seen_ms": k["last_seen_ms"],
            "last_seq": k["size"], "reported_size": k["reported_size"],
            "pending": max(0, k["reported_size"] - k["size"]), "checkpoint_size": k["cp_size"],
            "clock_synced": k["clock_synced"], "clock_skew_ms": k["clock_skew_ms"],
            "untimed_entries": int(unfixed.get(k["id"], 0)),
            "quarantined_entries": int(held.get(k["id"], 0)),
            "suspended_ms": k["suspended_ms"], "suspended_reason": k["suspended_reason"] or "",
            "key_events": key_events.get(k["id"], []),
            "config_applied": k["config_applied"], "config_current": versions[k["id"]], "alarm": bool(k["alarm"]),
            "kiosk_group": groups_of.get(k["id"]) or "", "software": software.get(k["id"], ""),
            "payment": None if k["payment_state"] is None else {
                "terminal": k["payment_terminal"], "state": k["payment_state"], "detail": k["payment_detail"] or "",
                "seen_ms": k["payment_seen_ms"]},
            "config_refused": None if k["config_refused_version"] is None else {
                "version": k["config_refused_version"], "reason": k["config_refused_reason"] or "other",
                "detail": k["config_refused_detail"] or "",
                "published_ms": published.get(k["config_refused_version"])},
            "alarms": [{"kind": a["kind"], "seq": a["seq"], "detail": a["detail"], "created_ms": a["created_ms"]}
                       for a in al if a["kiosk_id"] == k["id"]][:10],
        })
    return out


def reconciliation(engine: Engine) -> list[dict[str, Any]]:
    """Each close-out entry against the portal's own recomputation (server_sync/reconcile.py)."""
    from server_sync.reconcile import closeout_checks

    return closeout_checks(engine)


def points_grants(engine: Engine, limit: int = 200) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(entries.c.kiosk_id, entries.c.seq, entries.c.time_ms, entries.c.points,
                                   entries.c.donor, entries.c.body).where(entries.c.type == "points_grant", _clean)
                            .order_by(entries.c.time_ms.desc()).limit(limit)).all()
    return [{"kiosk_id": k, "seq": s, "time_ms": t, "points": p, "donor": (d or "")[:8],
             "activity": parse_body(bytes(b))["data"].get("activity", "")} for k, s, t, p, d, b in rows]


def catalog_view(engine: Engine) -> dict[str, Any]:
    """The staff catalog page: every group with its contact, every project (inactive too) with its totals."""
    with engine.connect() as conn:
        gs = catalog.list_groups(conn)
        ps = catalog.list_projects(conn)
    got = {p["id"]: p for p in totals(engine)["projects"]}
    for p in ps:
        t = got.get(p["id"], {"count": 0, "total_yen": 0})
        p.update(count=t["count"], total_yen=t["total_yen"])
    return {"groups": gs, "projects": ps}


CSV_HEADER = ("time", "kiosk_id", "seq", "project_id", "project_title", "group", "area", "area_title",
              "amount_yen", "points", "voided")


def donations_csv(engine: Engine) -> str:
    """Every donation the portal holds, with the project's title, group and policy area, as CSV (the whole text;
    the staff download streams :func:`donations_csv_parts` instead)."""
    return "".join(donations_csv_parts(engine))


CSV_PART_ROWS = 2_000
"""Donations read and written per part of the streamed CSV."""


def _project_columns(m: dict[str, Any], pid: str | None) -> tuple[Any, ...]:
    """``project_id`` to ``area_title`` of a donations CSV row; the text people typed (a title, a group's name,
    a kiosk's project field) through :func:`csvsafe.cell`, so a spreadsheet never takes it for a formula."""
    area = m.get("area") or ""
    safe_pid = csvsafe.cell(pid) if pid else pid
    title = m.get("title")
    return (safe_pid, safe_pid if title is None else csvsafe.cell(title), csvsafe.cell(m.get("group") or ""),
            csvsafe.cell(area), AREAS.get(area, ("", ""))[0])


def donations_csv_parts(engine: Engine) -> Iterator[str]:
    """:func:`donations_csv` in parts of :data:`CSV_PART_ROWS` rows, read from the database as they are sent:
    a city's years of donations (millions of rows, hundreds of MB of text) never sit in a worker's memory
    at once (docs/performance.md, "Twelfth round").

    UTF-8 with a BOM, so Excel on a Japanese PC opens the titles correctly (as the kiosk's close-out CSV).
    No donor token, receipt code or body: a row says what was given to what, when and where.
    """
    import csv
    import io

    tz = TZ
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    buf.write("\ufeff")
    w.writerow(CSV_HEADER)
    with engine.connect() as conn:
        meta = {p["id"]: p for p in catalog.list_projects(conn)}
        rows = conn.execution_options(stream_results=True, yield_per=CSV_PART_ROWS).execute(
            select(entries.c.time_ms, entries.c.kiosk_id, entries.c.seq, entries.c.project, entries.c.amount_yen,
                   entries.c.points, entries.c.voided)
            .where(entries.c.type == "donation", _clean)
            .order_by(entries.c.time_ms, entries.c.kiosk_id, entries.c.seq))
        cols: dict[str | None, tuple[Any, ...]] = {}  # a project's five columns, made once per project
        for part in rows.partitions():
            for t, kid, seq, pid, yen, pts, voided in part:
                c = cols.get(pid)
                if c is None:
                    c = cols[pid] = _project_columns(meta.get(pid or "", {}), pid)
                w.writerow((datetime.fromtimestamp(t / 1000, tz).strftime("%Y-%m-%d %H:%M:%S"), kid, seq, *c, yen,
                            pts or 0, int(bool(voided))))
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    if buf.tell():  # no donation at all: the header alone
        yield buf.getvalue()


ONLINE_MS = 15 * 60 * 1000
"""A kiosk seen within this long counts as online (it says hello every sync interval, 60 s by default)."""


def dashboard(engine: Engine, now_ms: int, group_id: str | None = None) -> dict[str, Any]:
    """Today's and this month's settled donations (Japan time), kiosks online, open alarms.

    With ``group_id`` (a group editor's view) the money is that group's projects' only.
    """
    tz = TZ
    now = datetime.fromtimestamp(now_ms / 1000, tz)
    day0 = int(now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
    month0 = int(now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
    with engine.connect() as conn:
        cond = _settled
        if group_id is not None:
            ids = [p["id"] for p in catalog.list_projects(conn) if p["group_id"] == group_id]
            cond = and_(_settled, entries.c.project.in_(ids))

        def since(t0: int) -> dict[str, int]:
            c, y = conn.execute(select(func.count(), func.coalesce(func.sum(entries.c.amount_yen), 0))
                                .where(cond, entries.c.time_ms >= t0)).one()
            return {"count": int(c), "total_yen": int(y)}

        today, month = since(day0), since(month0)
        ks = conn.execute(select(kiosks.c.id, kiosks.c.last_seen_ms, kiosks.c.alarm)).all()
        al = conn.execute(select(alarms).order_by(alarms.c.id.desc()).limit(10)).mappings().all()
    return {
        "today": today, "month": month,
        "kiosks_total": len(ks),
        "kiosks_online": sum(1 for _, seen, _ in ks if seen and now_ms - seen <= ONLINE_MS),
        "kiosks_alarm": sorted(k for k, _, a in ks if a),
        "alarms": [{"kiosk_id": a["kiosk_id"], "kind": a["kind"], "seq": a["seq"], "detail": a["detail"],
                    "created_ms": a["created_ms"]} for a in al],
    }


# --- charts ----------------------------------------------------------------------------------------
DAY_MS = 86_400_000
JST_MS = 9 * 3600 * 1000
"""Japan keeps no daylight saving time: a Japanese day is the UTC day shifted by a fixed 9 hours, which
lets SQLite and PostgreSQL both bucket by integer division."""


def donation_series(engine: Engine, now_ms: int, *, step: str = "day", buckets: int = 14, by: str = "area",
                    project_ids: list[str] | None = None) -> dict[str, Any]:
    """Settled donations per day, or per week from Monday (Japan time), over the last ``buckets`` of them up
    to ``now_ms``, split by policy area (all five, always in the same order) or by project.

    ``{"step", "starts": [first date of each bucket], "series": [{"key", "title", "title_en", "yen": [...],
    "count": [...]}], "total_yen", "count"}``; ``project_ids`` limits it to those projects (a group editor's,
    an area's, one project's) and, by project, gives the series and their order.
    """
    from datetime import date as _date
    from datetime import timedelta

    if step not in ("day", "week") or by not in ("area", "project"):
        raise ValueError(f"step {step!r} / by {by!r}")
    today = (now_ms + JST_MS) // DAY_MS
    width = 1 if step == "day" else 7
    last_start = today if step == "day" else today - (today + 3) % 7  # 1970-01-01 was a Thursday
    first = last_start - width * (buckets - 1)
    day = ((entries.c.time_ms + JST_MS) // DAY_MS).label("day")
    q = (select(day, entries.c.project, func.count(), func.sum(entries.c.amount_yen))
         .where(_settled, entries.c.time_ms >= first * DAY_MS - JST_MS, entries.c.time_ms < (today + 1) * DAY_MS
                - JST_MS).group_by(day, entries.c.project))
    if project_ids is not None:
        q = q.where(entries.c.project.in_(project_ids))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
        meta = {p["id"]: p for p in catalog.list_projects(conn)}
    series: dict[str, dict[str, Any]] = {}
    if by == "area":
        for a, (ja, en) in AREAS.items():
            series[a] = {"key": a, "title": ja, "title_en": en}
    else:
        for pid in project_ids if project_ids is not None else list(meta):
            m = meta.get(pid, {})
            title = m.get("title", pid)
            series[pid] = {"key": pid, "title": title, "title_en": m.get("title_en") or title}
    for s in series.values():
        s.update(yen=[0] * buckets, count=[0] * buckets)
    for d, project, c, y in rows:
        i = (int(d) - first) // width
        if not 0 <= i < buckets:
            continue
        key = (meta.get(project or "", {}).get("area") or "") if by == "area" else (project or "")
        if key not in series:
            title = meta.get(key, {}).get("title", key) if by == "project" else "その他"
            series[key] = {"key": key, "title": title, "title_en": title if by == "project" else "Other",
                           "yen": [0] * buckets, "count": [0] * buckets}
        series[key]["yen"][i] += int(y or 0)
        series[key]["count"][i] += int(c)
    out = [s for s in series.values() if by == "area" or any(s["yen"])]
    epoch = _date(1970, 1, 1)
    return {"step": step, "starts": [(epoch + timedelta(days=first + width * i)).isoformat() for i in range(buckets)],
            "series": out, "total_yen": sum(sum(s["yen"]) for s in out), "count": sum(sum(s["count"]) for s in out)}

"""Portal side of config push: published versions and content-addressed media."""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

from sqlalchemy import bindparam, func, literal, select, text, union_all
from sqlalchemy.engine import Connection, Engine

from server_sync import catalog
from server_sync.db import configs, kiosk_info, media, writing
from server_sync.wire import configdoc

TARGET_RE = re.compile(r"^(all|group:[a-z0-9][a-z0-9-]{0,39}|kiosk:[a-z0-9][a-z0-9-]{1,39})$")


def kiosk_targets(conn: Connection, kiosk_id: str) -> list[str]:
    """The targets a kiosk listens to: all kiosks, its kiosk group (if staff gave it one), itself."""
    grp = conn.execute(select(kiosk_info.c.kiosk_group).where(kiosk_info.c.kiosk_id == kiosk_id)).scalar()
    return ["all", f"kiosk:{kiosk_id}"] + ([f"group:{grp}"] if grp else [])


def _newest_of(target: Any) -> Any:
    """The newest version of one target (NULL: none): one step down db.CONFIG_TARGETS."""
    return select(func.max(configs.c.version).label("v")).where(configs.c.target == target)


_GROUP_TARGET = (select(literal("group:") + kiosk_info.c.kiosk_group)
                 .where(kiosk_info.c.kiosk_id == bindparam("kid"), kiosk_info.c.kiosk_group != "")
                 .scalar_subquery())
"""The target of kiosk ``:kid``'s kiosk group, NULL when it has none (as :func:`kiosk_targets` says)."""
_EACH_NEWEST = union_all(_newest_of(literal("all")), _newest_of(bindparam("kiosk_target")),
                         _newest_of(_GROUP_TARGET)).subquery()
_KIOSK_VERSION = select(func.max(_EACH_NEWEST.c.v)).scalar_subquery()
"""The newest version among those of all kiosks, kiosk ``:kid`` (``:kiosk_target`` = "kiosk:<id>") and its kiosk
group (NULL: none), built once: the newest of each of the three targets apart, each one step down
db.CONFIG_TARGETS. Not ``target IN (...) ORDER BY version DESC``: PostgreSQL reads that back from the newest version
until it meets one of the kiosk's targets, and the group would be one more statement before it."""
_VERSION_FOR_KIOSK = select(func.coalesce(_KIOSK_VERSION, 0))
_VERSION_FOR_ALL = select(func.coalesce(_newest_of(literal("all")).scalar_subquery(), 0))
_COLUMNS = (configs.c.version, configs.c.digest, configs.c.document, configs.c.target, configs.c.created_ms,
            configs.c.published_by)
_CURRENT_FOR_KIOSK = select(*_COLUMNS).where(configs.c.version == _KIOSK_VERSION)
_CURRENT_OF_TARGET = (select(*_COLUMNS).where(configs.c.target == bindparam("target"))
                      .order_by(configs.c.version.desc()).limit(1))
_CURRENT_OF_ANY = select(*_COLUMNS).order_by(configs.c.version.desc()).limit(1)


def newest_version(conn: Connection) -> int:
    """The highest version number of any target (versions are numbered across all targets)."""
    return conn.execute(select(func.coalesce(func.max(configs.c.version), 0))).scalar_one()


def current_version(conn: Connection, kiosk_id: str | None = None) -> int:
    """The version ``kiosk_id`` should run: the newest published for it, its group or all kiosks
    (without a kiosk: the newest for all kiosks)."""
    if not kiosk_id:
        return conn.execute(_VERSION_FOR_ALL).scalar_one()
    return conn.execute(_VERSION_FOR_KIOSK, {"kid": kiosk_id, "kiosk_target": f"kiosk:{kiosk_id}"}).scalar_one()


def current(conn: Connection, kiosk_id: str | None = None, target: str | None = None) -> dict[str, Any] | None:
    """``{version, digest, config, target, created_ms}`` a kiosk should run (or the newest of one target),
    or None before the first. One statement (a kiosk's config poll: its group's target included)."""
    if target is not None:
        row = conn.execute(_CURRENT_OF_TARGET, {"target": target}).first()
    elif kiosk_id is not None:
        row = conn.execute(_CURRENT_FOR_KIOSK, {"kid": kiosk_id, "kiosk_target": f"kiosk:{kiosk_id}"}).first()
    else:
        row = conn.execute(_CURRENT_OF_ANY).first()
    if row is None:
        return None
    return {"version": row[0], "digest": row[1], "config": json.loads(row[2]), "target": row[3],
            "created_ms": row[4], "published_by": row[5]}


def in_force(conn: Connection, target: str) -> dict[str, Any] | None:
    """What the kiosks of ``target`` run now (as :func:`current_version` says): for one kiosk, the newest version
    for all kiosks, its kiosk group or itself; for a kiosk group, the newest for all kiosks or the group; for all
    kiosks, theirs. Its ``target`` says whose it is: a target's own playlist that a later one for all kiosks (or,
    for a kiosk, for its group) replaced is no longer in force."""
    if target.startswith("kiosk:"):
        return current(conn, kiosk_id=target[len("kiosk:"):])
    mine = current(conn, target=target)
    everyone = current(conn, target="all") if target != "all" else None
    return max((c for c in (mine, everyone) if c is not None), key=lambda c: c["version"], default=None)


def replaced(conn: Connection, target: str) -> dict[str, Any] | None:
    """The later version (for all kiosks, or a kiosk's group) that the kiosks of ``target`` run instead of its own
    newest (:func:`in_force`); None when its own is in force, or it has none."""
    own = current(conn, target=target)
    now = in_force(conn, target) if own is not None else None
    return now if own is not None and now is not None and now["version"] != own["version"] else None


TARGET_PARTS = ("playlist", "slides")
"""The parts of a version that are a target's own (the playlist page's); the others (activities, point rules, pools,
amounts) every target shares, published again for all of them (:func:`republish_everywhere`)."""


def for_target(conn: Connection, target: str) -> dict[str, Any] | None:
    """What a target's playlist page starts from and a publish for it builds on: its own newest version (in force
    or not), else what its kiosks run now (:func:`in_force`: all kiosks', or a kiosk's group's)."""
    return current(conn, target=target) or in_force(conn, target)


PUBLISH_LOCK = (0x6B696F73, 0x636F6E66)
"""PostgreSQL advisory lock keys (two int4: a keyspace apart from the one-key locks of server_sync/pools.py) that
every config publisher holds until its transaction ends."""


class Changed(Exception):
    """What the caller's page edits changed since the page showed ``base_version``: nothing was published.
    ``current`` is what the target runs now."""

    def __init__(self, current: dict[str, Any] | None):
        super().__init__("the configuration changed since the page was opened")
        self.current = current


def lock(conn: Connection) -> None:
    """Serialise config publishers until ``conn``'s transaction ends (it must come from
    :func:`server_sync.db.writing`).

    A new version is built from the one before it (:func:`republish`): two publishers that both read version
    N and each wrote N+1 with their own part changed would undo each other. On SQLite ``writing`` already holds
    the database's one write lock (BEGIN IMMEDIATE) from the start of the transaction; on PostgreSQL this takes
    an advisory transaction lock. Take it before the transaction writes anything that another publisher's
    transaction writes too (pool allocations): a publisher waits for it holding nothing another one needs.
    Taking it again in the same transaction is free."""
    if conn.dialect.name == "sqlite":
        if not conn.get_execution_options().get("write"):
            raise RuntimeError("config publishing needs a write transaction (server_sync.db.writing)")
        return
    conn.execute(text("SELECT pg_advisory_xact_lock(CAST(:a AS integer), CAST(:b AS integer))"),
                 {"a": PUBLISH_LOCK[0], "b": PUBLISH_LOCK[1]})


def publish_in(conn: Connection, doc: Any, target: str = "all", by: str | None = None) -> dict[str, Any]:
    """:func:`publish` inside the caller's write transaction (the version is stored when it commits).

    A refusal is :class:`configdoc.ConfigDocError`: English for the log and ``kiosk-portal``, and a ``code`` the
    staff pages say in the staff member's words (server_sync/pages.py ``REFUSALS``)."""
    if not isinstance(doc, dict):
        raise configdoc.ConfigDocError("document: a config document is a JSON object", code="not_a_document")
    if not TARGET_RE.match(target):
        raise configdoc.ConfigDocError(f"target {target!r}: use all, group:<name> or kiosk:<id>", code="bad_target")
    lock(conn)
    body = dict(doc)
    # The portal judges each gift against the amounts of the version the kiosk ran
    # (server_sync/policy.py), so every document it publishes states them.
    body.setdefault("max_per_transaction_yen", configdoc.DEFAULT_MAX_PER_TRANSACTION_YEN)
    body.setdefault("points_per_100_yen", configdoc.DEFAULT_POINTS_PER_100_YEN)
    from_catalog = "projects" not in body
    if from_catalog:
        body["projects"] = catalog.pushed_projects(conn)
        if not body["projects"]:
            raise configdoc.ConfigDocError("projects: the catalog has no running project "
                                           "(add one, or make one active)", code="no_running_project")
    cfg = configdoc.validate(body)
    norm = configdoc.normalised(cfg)
    dig = configdoc.digest(norm)
    have = {r[0] for r in conn.execute(select(media.c.sha256).where(
        media.c.sha256.in_([i.sha256 for i in cfg.playlist])))}
    missing = [i.sha256 for i in cfg.playlist if i.sha256 not in have]
    if missing:
        raise configdoc.ConfigDocError(f"playlist media not stored on the portal: {missing[:3]} "
                                       "(add them with `kiosk-portal media-add`)", code="media_missing")
    if not from_catalog:
        catalog.import_pushed(conn, [p.model_dump(exclude_unset=True) for p in cfg.projects])
    version = newest_version(conn) + 1  # under the lock: no other publisher can take the same number
    conn.execute(configs.insert().values(version=version, digest=dig, document=json.dumps(norm),
                                         created_ms=time.time_ns() // 1_000_000, target=target, published_by=by))
    return {"version": version, "digest": dig, "config": norm, "target": target}


def publish(engine: Engine, doc: Any, target: str = "all", by: str | None = None) -> dict[str, Any]:
    """Validate and store ``doc`` as the next version. Media it names must already be stored.

    Without ``"projects"`` the document carries the catalog's running projects (the usual way: the
    portal owns the catalog). A hand-written document that lists projects (``kiosk-portal
    config-set``) is sent as written, and its projects are saved into the catalog in the same
    transaction, so the public pages always say what the kiosks were told.
    """
    with writing(engine) as conn:
        return publish_in(conn, doc, target, by)


def _document(conn: Connection, version: int) -> dict[str, Any]:
    row = conn.execute(select(configs.c.document).where(configs.c.version == version)).first()
    return json.loads(row[0]) if row else {}


def republish_in(conn: Connection, target: str = "all", by: str | None = None, base_version: int | None = None,
                 **changes: Any) -> dict[str, Any]:
    """:func:`republish` inside the caller's write transaction: the version it builds on is read under the
    publishers' lock (:func:`lock`), so no publish made meanwhile is undone.

    ``base_version``: the version the caller's page showed for ``target`` (0: none yet). If the parts named in
    ``changes`` differ now from that version's, raises :class:`Changed` and publishes nothing: a page opened
    before a colleague's publish would otherwise silently put back what the colleague replaced. Other parts
    changed meanwhile (activities, pools, point rules) are no clash: they are kept as they are now."""
    return _republish(conn, target, by, base_version, changes, refresh=True)


def _republish(conn: Connection, target: str, by: str | None, base_version: int | None, changes: dict[str, Any],
               refresh: bool) -> dict[str, Any]:
    """``refresh``: a target whose own version a later one for all kiosks (or its kiosk group) replaced takes the
    parts every target shares from that later one, which its kiosks run, and keeps only its own playlist and
    slides: publishing its playlist again never puts back the activities, point rules or pools it had then."""
    lock(conn)
    cur = for_target(conn, target)
    if base_version is not None and base_version != (cur["version"] if cur else 0):
        shown = _document(conn, base_version) if base_version else {}
        now = cur["config"] if cur else {}
        if any(shown.get(k) != now.get(k) for k in changes):
            raise Changed(cur)
    running = {p["id"] for p in catalog.pushed_projects(conn)}
    doc = {k: v for k, v in (cur["config"] if cur else {}).items() if k != "projects"}
    newer = replaced(conn, target) if refresh else None
    if newer is not None:
        doc = {**{k: v for k, v in newer["config"].items() if k not in ("projects", *TARGET_PARTS)},
               **{k: v for k, v in doc.items() if k in TARGET_PARTS}}
    doc.update(changes)
    # A target whose playlist staff never published gets "playlist": [] and no slides (null): kiosks read that as no
    # playlist set and keep their own (kiosk/sync/adopt.py sets_playlist; docs/sync.md, "Configs that set no
    # playlist"). Never give such a version slides of its own: the kiosks would take it as "play nothing".
    doc["playlist"] = [i for i in doc.get("playlist", []) if i.get("project") is None or i["project"] in running]
    return publish_in(conn, doc, target, by)


def republish(engine: Engine, target: str = "all", by: str | None = None, base_version: int | None = None,
              **changes: Any) -> dict[str, Any]:
    """A new version for ``target``: what it runs now, with the catalog's running projects and ``changes``.

    Playlist items of projects that no longer run are left out (their clips stay stored). Built and stored in
    one transaction under the publishers' lock; ``base_version``: see :func:`republish_in`.
    """
    with writing(engine) as conn:
        return republish_in(conn, target, by, base_version, **changes)


def published_targets(conn: Connection) -> list[str]:
    """Every target with a published version, most general first: all, kiosk groups, single kiosks."""
    have = {r[0] for r in conn.execute(select(configs.c.target).distinct())}
    order = {"all": 0, "group": 1, "kiosk": 2}
    return sorted(have | {"all"}, key=lambda t: (order[t.split(":")[0]], t))


def republish_everywhere_in(conn: Connection, by: str | None = None, base_version: int | None = None,
                            **changes: Any) -> list[dict[str, Any]]:
    """:func:`republish_everywhere` inside the caller's write transaction."""
    lock(conn)
    # A kiosk group's or kiosk's own playlist that a later one for all kiosks (or the kiosk's group) replaced is
    # left as it is: published again it would be the newest, and its kiosks would go back to it. Which ones are
    # replaced is settled before anything is published.
    targets = [t for t in published_targets(conn) if t == "all" or replaced(conn, t) is None]
    # "all" comes first: its check (raising Changed) is made before anything is published.
    return [_republish(conn, t, by, base_version if t == "all" else None, changes, refresh=False) for t in targets]


def republish_everywhere(engine: Engine, by: str | None = None, base_version: int | None = None,
                         **changes: Any) -> list[dict[str, Any]]:
    """``changes`` (e.g. volunteer activities) for every target, each keeping its own playlist (a target whose
    own playlist a later one replaced is left out: its kiosks get ``changes`` with the one they run).

    Most general first, so each kiosk's newest version is still its most specific one. One transaction under
    the publishers' lock: every target gets the change, or none. ``base_version``: the version of all kiosks
    the caller's page showed; if the parts in ``changes`` differ now from that version's, raises
    :class:`Changed` and publishes nothing (:func:`republish_in`).
    """
    with writing(engine) as conn:
        return republish_everywhere_in(conn, by, base_version, **changes)


def store_media(conn: Connection, data: bytes, content_type: str = "application/octet-stream") -> str:
    """Store ``data`` under its SHA-256 inside the caller's transaction (a no-op if already stored)."""
    sha = hashlib.sha256(data).hexdigest()
    if conn.execute(select(media.c.sha256).where(media.c.sha256 == sha)).first() is None:
        conn.execute(media.insert().values(sha256=sha, content_type=content_type, data=data,
                                           created_ms=time.time_ns() // 1_000_000))
    return sha


def add_media(engine: Engine, data: bytes, content_type: str = "application/octet-stream") -> str:
    with writing(engine) as conn:
        return store_media(conn, data, content_type)


def get_media(engine: Engine, sha: str) -> tuple[bytes, str] | None:
    with engine.connect() as conn:
        row = conn.execute(select(media.c.data, media.c.content_type).where(media.c.sha256 == sha)).first()
    return (bytes(row[0]), row[1]) if row else None

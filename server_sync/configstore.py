"""Portal side of config push: published versions and content-addressed media."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from server_sync import catalog
from server_sync.db import configs, media, writing
from server_sync.wire import configdoc


def current_version(conn: Connection) -> int:
    return conn.execute(select(func.coalesce(func.max(configs.c.version), 0))).scalar_one()


def current(conn: Connection) -> dict[str, Any] | None:
    """``{version, digest, config}`` of the newest published config, or None before the first."""
    row = conn.execute(select(configs.c.version, configs.c.digest, configs.c.document)
                       .order_by(configs.c.version.desc()).limit(1)).first()
    if row is None:
        return None
    return {"version": row[0], "digest": row[1], "config": json.loads(row[2])}


def publish(engine: Engine, doc: Any) -> dict[str, Any]:
    """Validate and store ``doc`` as the next version. Media it names must already be stored.

    Without ``"projects"`` the document carries the catalog's running projects (the usual way: the
    portal owns the catalog). A hand-written document that lists projects (``kiosk-portal
    config-set``) is sent as written, and its projects are saved into the catalog in the same
    transaction, so the public pages always say what the kiosks were told.
    """
    if not isinstance(doc, dict):
        raise configdoc.ConfigDocError("document: a config document is a JSON object")
    for _ in range(3):
        try:
            with writing(engine) as conn:
                body = dict(doc)
                from_catalog = "projects" not in body
                if from_catalog:
                    body["projects"] = catalog.pushed_projects(conn)
                    if not body["projects"]:
                        raise configdoc.ConfigDocError("projects: the catalog has no running project "
                                                       "(add one, or make one active)")
                cfg = configdoc.validate(body)
                norm = configdoc.normalised(cfg)
                dig = configdoc.digest(norm)
                have = {r[0] for r in conn.execute(select(media.c.sha256).where(
                    media.c.sha256.in_([i.sha256 for i in cfg.playlist])))}
                missing = [i.sha256 for i in cfg.playlist if i.sha256 not in have]
                if missing:
                    raise configdoc.ConfigDocError(f"playlist media not stored on the portal: {missing[:3]} "
                                                   "(add them with `kiosk-portal media-add`)")
                if not from_catalog:
                    catalog.import_pushed(conn, [p.model_dump(exclude_unset=True) for p in cfg.projects])
                version = current_version(conn) + 1
                conn.execute(configs.insert().values(version=version, digest=dig, document=json.dumps(norm),
                                                     created_ms=time.time_ns() // 1_000_000))
            return {"version": version, "digest": dig, "config": norm}
        except IntegrityError:
            continue  # two publishers raced for the same version number
    raise configdoc.ConfigDocError("could not allocate a config version (concurrent publishers)")


def republish(engine: Engine, **changes: Any) -> dict[str, Any]:
    """A new version: the current document with the catalog's running projects and ``changes``.

    Playlist items of projects that no longer run are left out (their clips stay stored).
    """
    with engine.connect() as conn:
        cur = current(conn)
        running = {p["id"] for p in catalog.pushed_projects(conn)}
    doc = {k: v for k, v in (cur["config"] if cur else {}).items() if k != "projects"}
    doc.update(changes)
    doc["playlist"] = [i for i in doc.get("playlist", []) if i.get("project") is None or i["project"] in running]
    return publish(engine, doc)


def add_media(engine: Engine, data: bytes, content_type: str = "application/octet-stream") -> str:
    sha = hashlib.sha256(data).hexdigest()
    with writing(engine) as conn:
        if conn.execute(select(media.c.sha256).where(media.c.sha256 == sha)).first() is None:
            conn.execute(media.insert().values(sha256=sha, content_type=content_type, data=data,
                                               created_ms=time.time_ns() // 1_000_000))
    return sha


def get_media(engine: Engine, sha: str) -> tuple[bytes, str] | None:
    with engine.connect() as conn:
        row = conn.execute(select(media.c.data, media.c.content_type).where(media.c.sha256 == sha)).first()
    return (bytes(row[0]), row[1]) if row else None

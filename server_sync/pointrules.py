"""The written point rules (issue #17): points per ¥100 given, and volunteer activity types with fixed
points and a description citizens can read. Versioned: every version is kept, the newest is in force.

Saving a version publishes it to every kiosk in the signed pushed config (``points_rules``, with the
activities and the points rate derived from it, server_sync/wire/configdoc.py). A kiosk grants only what
the rules it runs say and records the version in each ``points_grant``; the ingest policy
(server_sync/policy.py) quarantines a grant that matches no rule of the version the kiosk ran.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from server_sync import configstore
from server_sync.db import point_rules, writing
from server_sync.wire import configdoc


def current(conn: Connection) -> dict[str, Any] | None:
    """The rules in force (a PointRules document with ``created_ms`` and ``created_by``), or None."""
    row = conn.execute(select(point_rules.c.document, point_rules.c.created_ms, point_rules.c.created_by)
                       .order_by(point_rules.c.version.desc()).limit(1)).first()
    if row is None:
        return None
    return {**json.loads(row[0]), "created_ms": row[1], "created_by": row[2]}


def history(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(select(point_rules.c.document, point_rules.c.created_ms, point_rules.c.created_by)
                        .order_by(point_rules.c.version.desc()).limit(limit)).all()
    return [{**json.loads(d), "created_ms": t, "created_by": b} for d, t, b in rows]


def save(engine: Engine, points_per_100_yen: int, activities: list[dict[str, Any]],
         by: str | None = None) -> dict[str, Any]:
    """Store the next version and publish it to every kiosk target; returns the rules document.

    Raises :class:`configdoc.ConfigDocError` on a document that must not be published.
    """
    with engine.connect() as conn:
        version = conn.execute(select(func.coalesce(func.max(point_rules.c.version), 0))).scalar_one() + 1
    try:
        rules = configdoc.PointRules.model_validate(
            {"version": version, "points_per_100_yen": points_per_100_yen, "activities": activities})
    except ValueError as exc:
        raise configdoc.ConfigDocError(str(exc)) from None
    # Published first: a version is stored (and shown as in force) only once kiosks can receive it.
    publish(engine, rules, by)
    doc = rules.model_dump(mode="json")
    try:
        with writing(engine) as conn:
            conn.execute(point_rules.insert().values(version=version, document=json.dumps(doc),
                                                     created_ms=time.time_ns() // 1_000_000, created_by=by))
    except IntegrityError:
        raise configdoc.ConfigDocError("another administrator saved the point rules at the same moment; "
                                       "reload the page and save again") from None
    return doc


def publish(engine: Engine, rules: configdoc.PointRules, by: str | None = None) -> list[dict[str, Any]]:
    """Put ``rules`` into every target's config (a new config version each), the activities and the
    points rate derived from them, so a kiosk runs exactly the rules it is told."""
    return configstore.republish_everywhere(engine, by=by, points_rules=rules.model_dump(mode="json"),
                                            activities=configdoc.rule_activities(rules),
                                            points_per_100_yen=rules.points_per_100_yen)

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


def _newest(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(point_rules.c.version), 0))).scalar_one())


def history(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(select(point_rules.c.document, point_rules.c.created_ms, point_rules.c.created_by)
                        .order_by(point_rules.c.version.desc()).limit(limit)).all()
    return [{**json.loads(d), "created_ms": t, "created_by": b} for d, t, b in rows]


class Changed(Exception):
    """Another administrator saved the rules after the caller's page showed ``base_version``: nothing was saved."""


def save(engine: Engine, points_per_100_yen: int, activities: list[dict[str, Any]],
         by: str | None = None, base_version: int | None = None) -> dict[str, Any]:
    """Store the next version and publish it to every kiosk target; returns the rules document.

    The version is the next after the newest the administrator's save found. It is claimed (its row stored)
    and published in one transaction under the config publishers' lock: if another administrator saved that
    version first, nothing is stored or published and the save is refused, so the rules kiosks run are
    always the rules the portal shows as in force.

    ``base_version``: the version the administrator's page showed (0: none yet). If another version was saved
    since, raises :class:`Changed` and saves nothing: the page was opened before a colleague's save and would
    otherwise silently replace their rules. None (a form without the field): saved as before.

    Raises :class:`configdoc.ConfigDocError` on a document that must not be published.
    """
    with engine.connect() as conn:
        version = _newest(conn) + 1
    rules = configdoc.check(configdoc.PointRules,
                            {"version": version, "points_per_100_yen": points_per_100_yen, "activities": activities})
    doc = rules.model_dump(mode="json")
    try:
        with writing(engine) as conn:
            configstore.lock(conn)  # first: the rules row and the configs are written in publishers' order
            if base_version is not None and base_version != _newest(conn):
                raise Changed()
            conn.execute(point_rules.insert().values(version=version, document=json.dumps(doc),
                                                     created_ms=time.time_ns() // 1_000_000, created_by=by))
            publish_in(conn, rules, by)  # refused (ConfigDocError): the row goes with it
    except IntegrityError:
        raise configdoc.ConfigDocError("another administrator saved the point rules at the same moment; "
                                       "reload the page and save again", code="rules_saved_meanwhile") from None
    return doc


def publish_in(conn: Connection, rules: configdoc.PointRules, by: str | None = None) -> list[dict[str, Any]]:
    """:func:`publish` inside the caller's write transaction."""
    return configstore.republish_everywhere_in(conn, by=by, points_rules=rules.model_dump(mode="json"),
                                               activities=configdoc.rule_activities(rules),
                                               points_per_100_yen=rules.points_per_100_yen)


def publish(engine: Engine, rules: configdoc.PointRules, by: str | None = None) -> list[dict[str, Any]]:
    """Put ``rules`` into every target's config (a new config version each), the activities and the
    points rate derived from them, so a kiosk runs exactly the rules it is told."""
    return configstore.republish_everywhere(engine, by=by, points_rules=rules.model_dump(mode="json"),
                                            activities=configdoc.rule_activities(rules),
                                            points_per_100_yen=rules.points_per_100_yen)


def activity_titles(conn: Connection) -> dict[str, tuple[str, str]]:
    """Every volunteer activity any saved version of the rules names: its id to its (Japanese, English) title,
    newest version first, so an activity retired since keeps the name it had. The English title is the newest
    non-empty one (empty when no version gave one). Read-only: for pages that show a grant in words (my page)."""
    titles: dict[str, tuple[str, str]] = {}
    for (document,) in conn.execute(select(point_rules.c.document).order_by(point_rules.c.version.desc())):
        try:
            activities = json.loads(document).get("activities") or []
        except (ValueError, AttributeError):
            continue
        for a in activities:
            if not isinstance(a, dict) or not isinstance(a.get("id"), str) or not a.get("title"):
                continue
            ja, en = titles.get(a["id"], (str(a["title"]), ""))
            titles[a["id"]] = (ja, en or str(a.get("title_en") or ""))
    return titles

"""The catalog: citizen groups (団体) and their projects, owned by the portal.

Kiosks name a project only by its ``id`` in their ledgers; its titles, group, policy area, goal and
dates live here, and reach the kiosks in the pushed config (:func:`pushed_projects`, published by
:func:`server_sync.configstore.publish`). A group's contact is for staff only: it is never in a
public answer or the pushed config.

Input is checked with the pydantic models below before anything is written, and an import is one
transaction: a bad file changes nothing. Error messages name the item and the field.

Every change of a group or project gives it a newer ``updated_ms`` (strictly newer, even within one
millisecond). A staff form carries the ``updated_ms`` it was opened at, and its save passes it as ``seen_ms``:
the row is then updated only if nobody changed it since (one conditional UPDATE), else :class:`StaleEdit`
and nothing is written, so a page opened before a colleague's save never silently undoes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from server_sync.db import groups, media_info, media_jobs, projects, writing
from server_sync.glyphs import undrawable
from server_sync.policy import TZ  # project dates are the city's calendar days

# The five policy areas (政策分野) of the city's plan: (Japanese, English).
AREAS: dict[str, tuple[str, str]] = {
    "children": ("子ども・未来", "Children and the future"),
    "welfare": ("健康・福祉", "Health and welfare"),
    "green": ("みどり・環境", "Greenery and climate"),
    "culture": ("文化・芸術", "Culture and the arts"),
    "town": ("にぎわい・まちづくり", "A lively town"),
}
Area = Literal["children", "welfare", "green", "culture", "town"]
SLUG = r"^[a-z0-9][a-z0-9-]{0,39}$"


class CatalogError(ValueError):
    """Catalog input that must not be stored; the message (English, for the log and ``kiosk-portal catalog-import``)
    names the item and field. ``code`` names the refusal for the staff pages, which say it in the staff member's
    words beside the field (server_sync/operator.py): ``group_name_taken``, ``group_id_taken``, ``project_id_taken``,
    ``no_group``, ``stale``; ``undrawable`` (an import's names or titles with characters the kiosks' font lacks: the
forms check those themselves); ``invalid`` for anything else (a file's bad field)."""

    def __init__(self, message: str, code: str = "invalid", **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class StaleEdit(CatalogError):
    """The group or project changed since the form that sends this was opened (its ``updated_ms`` is not the one
    the form saw): nothing was stored. The staff page shows the stored item again, with what was typed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "stale")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class GroupIn(_In):
    id: str = Field(pattern=SLUG)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    contact: str = Field("", max_length=500)


class ProjectIn(_In):
    id: str = Field(pattern=SLUG)
    group_id: str | None = Field(None, pattern=SLUG)
    title: str = Field(min_length=1, max_length=200)
    title_en: str = Field("", max_length=200)
    summary: str = Field("", max_length=2000)
    summary_en: str = Field("", max_length=2000)
    area: Area
    goal_yen: int = Field(100_000, ge=1, le=10**12)
    start: dt.date | None = None
    end: dt.date | None = None
    active: bool = True

    @model_validator(mode="after")
    def _dates(self) -> ProjectIn:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check(model: type[_In], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise CatalogError(f"{where}{'.' + field if field else ''}: {first['msg']}") from None


def group_id_for(name: str) -> str:
    """A stable id for a group known only by its name (a name like ``実行委員会`` is no slug)."""
    slug = name.strip().lower()
    if slug and len(slug) <= 40 and all(c.isascii() and (c.isalnum() or c == "-") for c in slug) \
            and slug[0] != "-":
        return slug
    return "g-" + hashlib.sha256(name.strip().encode()).hexdigest()[:12]


# --- writing ----------------------------------------------------------------------------------------
def _newer(col: Any, now: int) -> ColumnElement[Any]:
    """``updated_ms`` for a change made at ``now``: ``now``, or one more than the stored value if that is not older
    (two saves in one millisecond, or a clock stepped back), so that every change is a new version."""
    return case((col >= now, col + 1), else_=now)


def _name_taken(conn: Connection, g: GroupIn) -> CatalogError | None:
    clash = conn.execute(select(groups.c.id).where(groups.c.name == g.name, groups.c.id != g.id)).first()
    if clash is None:
        return None
    return CatalogError(f"group {g.id}: the name {g.name!r} is already used by group {clash[0]}", "group_name_taken")


def _unique(conn: Connection, write: Any, taken: Callable[[], CatalogError]) -> Any:
    """Run ``write`` in a savepoint; a unique index it hits (a colleague's row stored at the same moment: on
    PostgreSQL the index waited for their commit) is ``taken()``, read after it, and the transaction goes on."""
    try:
        with conn.begin_nested():
            return write()
    except IntegrityError:
        raise taken() from None


def save_group(conn: Connection, g: GroupIn, now_ms: int | None = None, *, seen_ms: int | None = None,
               new: bool = False) -> None:
    """Add or update ``g``. With ``seen_ms`` (the ``updated_ms`` the edit form was opened at) an existing group is
    updated only if it is still at that version; else :class:`StaleEdit` and nothing is written. ``new``: only
    add (a colleague may have added this id a moment ago: ``group_id_taken``, their group kept as it is)."""
    now = now_ms or _now_ms()
    values = g.model_dump()
    if (clash := _name_taken(conn, g)) is not None:
        raise clash

    def taken() -> CatalogError:
        return _name_taken(conn, g) or CatalogError(f"group {g.id}: the id is already used", "group_id_taken")
    if conn.execute(select(groups.c.id).where(groups.c.id == g.id)).first() is None:
        if seen_ms is not None:
            raise StaleEdit(f"group {g.id}: it is no longer there")
        _unique(conn, lambda: conn.execute(groups.insert().values(**values, created_ms=now, updated_ms=now)), taken)
        return
    if new:
        raise taken()
    q = groups.update().where(groups.c.id == g.id)
    if seen_ms is not None:
        q = q.where(groups.c.updated_ms == seen_ms)
    if _unique(conn, lambda: conn.execute(q.values(**values, updated_ms=_newer(groups.c.updated_ms, now))),
               taken).rowcount == 0:
        raise StaleEdit(f"group {g.id}: changed by someone else since {seen_ms}")


def save_project(conn: Connection, p: ProjectIn, now_ms: int | None = None, *, seen_ms: int | None = None,
                 new: bool = False) -> None:
    """Add or update ``p`` (its media follow its group). With ``seen_ms`` (the ``updated_ms`` the edit form was
    opened at) an existing project is updated only if it is still at that version; else :class:`StaleEdit` and
    nothing is written. ``new``: only add (a colleague may have added this id a moment ago: ``project_id_taken``,
    their project kept as it is)."""
    now = now_ms or _now_ms()
    if p.group_id is not None and conn.execute(select(groups.c.id).where(groups.c.id == p.group_id)).first() is None:
        raise CatalogError(f"project {p.id}: no group {p.group_id!r} (add the group first)", "no_group")
    values = p.model_dump(exclude={"start", "end"})
    values.update(start_date=p.start, end_date=p.end)

    def taken() -> CatalogError:
        return CatalogError(f"project {p.id}: the id is already used", "project_id_taken")
    if conn.execute(select(projects.c.id).where(projects.c.id == p.id)).first() is None:
        if seen_ms is not None:
            raise StaleEdit(f"project {p.id}: it is no longer there")
        _unique(conn, lambda: conn.execute(projects.insert().values(**values, created_ms=now, updated_ms=now)), taken)
    elif new:
        raise taken()
    else:
        q = projects.update().where(projects.c.id == p.id)
        if seen_ms is not None:
            q = q.where(projects.c.updated_ms == seen_ms)
        if conn.execute(q.values(**values, updated_ms=_newer(projects.c.updated_ms, now))).rowcount == 0:
            raise StaleEdit(f"project {p.id}: changed by someone else since {seen_ms}")
    _media_follow(conn, p.id, p.group_id)


def _media_follow(conn: Connection, project_id: str, group_id: str | None) -> None:
    """A project's movie jobs (drafts) and videos belong to the project's group: moved with it, in the same
    transaction, so whoever may edit the project now (and only they) may publish, rename or detach them. Every
    access check compares the stored ``group_id`` (server_sync/operator.py, server_sync/moviemaker_ui.py)."""
    for t in (media_jobs, media_info):
        conn.execute(t.update().where((t.c.project_id == project_id) & t.c.group_id.is_distinct_from(group_id))
                     .values(group_id=group_id))


def current_group(conn: Connection, project_id: str | None, group_id: str | None) -> str | None:
    """The group of ``project_id`` now (``group_id`` if it has none or is unknown): what a job or video of the
    project is stored with, read in the transaction that stores it (staff may have moved the project since the
    form was shown or the upload began)."""
    if project_id is None:
        return group_id
    row = conn.execute(select(projects.c.group_id).where(projects.c.id == project_id)).first()
    return group_id if row is None else row[0]


def _ensure_group(conn: Connection, name: str, now: int) -> str | None:
    if not name.strip():
        return None
    row = conn.execute(select(groups.c.id).where(groups.c.name == name.strip())).first()
    if row is not None:
        return str(row[0])
    gid = group_id_for(name)
    save_group(conn, _check(GroupIn, {"id": gid, "name": name}, f"group {name!r}"), now)
    return gid


DRAWN = {"groups": ("name",), "projects": ("title", "title_en", "group")}
"""The catalog's texts a kiosk draws with its own font: on its donation screens (a project's titles, its group's
name) and on a movie's title cards (the group's name, the Japanese title)."""


def _undrawable_entries(gs: list[Any], ps: list[Any]) -> list[str]:
    """Each entry's drawn text (:data:`DRAWN`) with characters the kiosks' font has no letter for, as
    ``projects[2] (id kodomo) title '…': 髙 ①``: the staff forms refuse these (server_sync/operator.py), and so does
    an import, naming every entry at once so one round of fixing the file does."""

    found = []
    for key, items in (("groups", gs), ("projects", ps)):
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue  # said by the item's own check
            for field in DRAWN[key]:
                text = item.get(field)
                if isinstance(text, str) and (missing := undrawable(text.strip())):
                    found.append(f"{key}[{i}] (id {item.get('id')}) {field} {text.strip()!r}: {' '.join(missing)}")
    return found


def import_catalog(engine: Engine, doc: Any) -> tuple[int, int]:
    """Store ``{"groups": [...], "projects": [...]}`` in one transaction; returns (groups, projects) saved.

    A project names its group by ``group_id``, or by ``group`` (the group's name, as a kiosk's
    ``[[projects]]`` does): a group known only by name is created. Ids already present are updated.
    A name or title with characters the kiosks' font has no letter for is refused as the staff forms refuse it
    (``undrawable``, naming every such entry): nothing is imported.
    """
    if not isinstance(doc, dict) or set(doc) - {"groups", "projects"}:
        raise CatalogError('a catalog is a JSON object with "groups" and "projects" lists')
    gs, ps = doc.get("groups", []), doc.get("projects", [])
    if not isinstance(gs, list) or not isinstance(ps, list):
        raise CatalogError('"groups" and "projects" must be lists')
    checked_groups = [_check(GroupIn, g, f"groups[{i}]") for i, g in enumerate(gs)]
    if tofu := _undrawable_entries(gs, ps):
        raise CatalogError(f"{len(tofu)} names or titles have characters the kiosks' font has no letter for (their "
                           f"screens and movies would show each as an empty box): {'; '.join(tofu)}. Write them "
                           "another way (高 for 髙, 崎 for 﨑, 1 for ①, ア for ｱ, e for é; the exact spelling can go "
                           "in a group's description or a project's summary) and import again.", "undrawable")
    now = _now_ms()
    with writing(engine) as conn:
        for g in checked_groups:
            save_group(conn, g, now)
        for i, raw in enumerate(ps):
            if not isinstance(raw, dict):
                raise CatalogError(f"projects[{i}]: not an object")
            p = dict(raw)
            # A kiosk's [[projects]] may carry the group's English name; the portal's groups have one name
            # (Japanese) and pushed configs carry no group_en, so the English screens leave the group out.
            p.pop("group_en", None)
            name = p.pop("group", None)
            if name is not None and "group_id" not in p:
                if not isinstance(name, str):
                    raise CatalogError(f"projects[{i}].group: a group name is text")
                p["group_id"] = _ensure_group(conn, name, now)
            save_project(conn, _check(ProjectIn, p, f"projects[{i}]"), now)
    return len(checked_groups), len(ps)


def import_pushed(conn: Connection, pushed: list[dict[str, Any]]) -> None:
    """Put a published document's projects (already validated by the wire model) into the catalog.

    For documents written by hand (``kiosk-portal config-set``): what a kiosk is told about a
    project is then also what the public pages say. Fields the document does not carry are kept.
    """
    from server_sync.wire.configdoc import ConfigDocError

    now = _now_ms()
    for i, p in enumerate(pushed):
        values: dict[str, Any] = {k: p[k] for k in ("title", "title_en", "area", "goal_yen", "summary", "summary_en")
                                  if k in p}
        for key, col in (("start", "start_date"), ("end", "end_date")):
            if p.get(key):
                try:
                    values[col] = dt.date.fromisoformat(p[key])
                except (TypeError, ValueError):  # an invalid document, not an unreadable file
                    raise ConfigDocError(f"projects[{i}].{key}: {p[key]!r} is not a calendar date "
                                         "(YYYY-MM-DD)", code="not_a_date") from None
        values["group_id"] = _ensure_group(conn, p.get("group") or "", now)
        values["active"] = True
        if conn.execute(select(projects.c.id).where(projects.c.id == p["id"])).first() is None:
            fresh = {"title_en": "", "summary": "", "summary_en": "", "goal_yen": 100_000, **values}
            conn.execute(projects.insert().values(id=p["id"], **fresh, created_ms=now, updated_ms=now))
        else:
            conn.execute(projects.update().where(projects.c.id == p["id"])
                         .values(**values, updated_ms=_newer(projects.c.updated_ms, now)))
        _media_follow(conn, p["id"], values["group_id"])


def set_active(engine: Engine, project_id: str, active: bool) -> bool:
    with writing(engine) as conn:
        n = conn.execute(projects.update().where(projects.c.id == project_id)
                         .values(active=active, updated_ms=_newer(projects.c.updated_ms, _now_ms()))).rowcount
    return bool(n)


def backfill_from_config(engine: Engine, current: dict[str, Any] | None) -> None:
    """A portal upgraded from before the catalog: its last published projects become the catalog."""
    if current is None:
        return
    try:
        with writing(engine) as conn:
            if conn.execute(select(func.count()).select_from(projects)).scalar_one() == 0:
                import_pushed(conn, current["config"]["projects"])
    except IntegrityError:
        pass  # another portal process did it at the same moment


# --- reading ----------------------------------------------------------------------------------------
def list_groups(conn: Connection) -> list[dict[str, Any]]:
    """Every group with its contact (staff pages only) and how many projects it has."""
    counts: dict[str | None, int] = dict(conn.execute(select(projects.c.group_id, func.count())
                                                      .group_by(projects.c.group_id)).all())
    rows = conn.execute(select(groups).order_by(groups.c.name)).mappings().all()
    return [{"id": r["id"], "name": r["name"], "description": r["description"], "contact": r["contact"],
             "projects": int(counts.get(r["id"], 0))} for r in rows]


def group(conn: Connection, group_id: str) -> dict[str, Any] | None:
    """One group as its edit form shows it, with the ``updated_ms`` the form carries (read together: one row)."""
    r = conn.execute(select(groups).where(groups.c.id == group_id)).mappings().first()
    return None if r is None else {"id": r["id"], "name": r["name"], "description": r["description"],
                                   "contact": r["contact"], "updated_ms": int(r["updated_ms"])}


def list_projects(conn: Connection) -> list[dict[str, Any]]:
    """Every project, active or not, with its group's name (never its contact), in catalog order."""
    q = (select(projects, groups.c.name.label("group_name"))
         .select_from(projects.outerjoin(groups, projects.c.group_id == groups.c.id))
         .order_by(projects.c.created_ms, projects.c.id))
    return [_project(r) for r in conn.execute(q).mappings()]


def project(conn: Connection, project_id: str) -> dict[str, Any] | None:
    """One project as :func:`list_projects` gives it, plus the ``updated_ms`` its edit form carries (read in the
    same statement as the values, so the form never pairs older values with a newer version)."""
    q = (select(projects, groups.c.name.label("group_name"))
         .select_from(projects.outerjoin(groups, projects.c.group_id == groups.c.id))
         .where(projects.c.id == project_id))
    r = conn.execute(q).mappings().first()
    return None if r is None else {**_project(r), "updated_ms": int(r["updated_ms"])}


def _project(r: Any) -> dict[str, Any]:
    return {"id": r["id"], "title": r["title"], "title_en": r["title_en"], "summary": r["summary"],
            "summary_en": r["summary_en"], "group_id": r["group_id"], "group": r["group_name"] or "",
            "area": r["area"], "goal_yen": int(r["goal_yen"]),
            "start": r["start_date"].isoformat() if r["start_date"] else None,
            "end": r["end_date"].isoformat() if r["end_date"] else None, "active": bool(r["active"])}


def running(p: dict[str, Any], today: dt.date) -> bool:
    """Active, and today is within its dates (a project with no dates runs while it is active)."""
    return bool(p["active"]) and (p["start"] is None or p["start"] <= today.isoformat()) \
        and (p["end"] is None or today.isoformat() <= p["end"])


def pushed_projects(conn: Connection, today: dt.date | None = None) -> list[dict[str, Any]]:
    """The projects a kiosk is told about: the running ones, in the wire document's shape."""
    today = today or dt.datetime.now(TZ).date()
    return [{"id": p["id"], "title": p["title"], "title_en": p["title_en"], "group": p["group"], "area": p["area"],
             "goal_yen": p["goal_yen"], "summary": p["summary"], "summary_en": p["summary_en"],
             "start": p["start"], "end": p["end"]}
            for p in list_projects(conn) if running(p, today)]

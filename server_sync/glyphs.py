"""The letters the kiosks' font can draw: a text with others is refused where staff or editors type it.

The kiosks draw project titles, group names and movie captions in a vendored Noto Sans JP subset (ASCII, kana,
JIS X 0208's symbols and level-1 and level-2 kanji). A character it has no glyph for (an emoji, a circled number ①,
half-width kana, ©, an old-style kanji such as 髙) comes out as an empty box in the lobby, so the movie maker's
captions (server_sync/movies.py) and the catalog's names and titles (server_sync/operator.py, server_sync/catalog.py)
are checked against the font's own table of letters. The portal draws nothing itself (docs/architecture.md,
contract 5): fontTools only reads the file. Texts stored before those checks (or by a script) are listed on the
staff dashboard with the form that fixes each (:func:`stored_undrawable`).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import unicodedata
import weakref
from importlib import resources
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

FONT = ("ui", "assets", "fonts", "NotoSansJP-Bold-subset.otf")
"""The kiosks' font (``kiosk/player/moviemaker.py`` draws captions and cards in bold; the screens' regular subset
has the same letters: tests/sync/test_review51_catalog_glyphs.py)."""


@functools.cache
def font_letters() -> frozenset[int] | None:
    """The code points the kiosks' font has a glyph for (fontTools reads its best Unicode ``cmap``), or None when
    the font cannot be read (logged; texts are then not checked for them)."""
    from fontTools.ttLib import TTFont, TTLibError  # here, not at import: only the forms that check a text need it

    try:
        with resources.as_file(resources.files("kiosk").joinpath(*FONT)) as path:
            cmap = TTFont(str(path), lazy=True).getBestCmap() or {}
        return frozenset(c for c, glyph in cmap.items() if glyph != ".notdef")
    except (OSError, TTLibError, KeyError, ValueError) as exc:
        log.error("the kiosks' font could not be read, texts are not checked for its letters: %s", exc)
        return None


def _invisible(ch: str) -> bool:
    """A character the renderer's text layout never draws as a box: a space of any width (drawn as a space), or
    a default-ignorable format mark (a zero-width joiner, an emoji's variation selector U+FE0F)."""
    cat = unicodedata.category(ch)
    return cat in ("Zs", "Cf") or 0xFE00 <= ord(ch) <= 0xFE0F or 0xE0100 <= ord(ch) <= 0xE01EF or ch == "\u034f"


def undrawable(text: str) -> list[str]:
    """The characters of ``text`` a kiosk would show as empty boxes, each once, in order."""
    letters = font_letters()
    if letters is None:
        return []
    return list(dict.fromkeys(ch for ch in text if ord(ch) not in letters and not _invisible(ch)))


# --- stored texts the kiosks draw ------------------------------------------------------------------------------

STORED_KINDS = ("project", "group", "slide", "pool", "activity")
"""What :func:`stored_undrawable` lists, in this order: a project's title (``title``, ``title_en``: the donation
screens, the staff menu's playlist, a movie's title card), a group's name (under each of its projects' titles, and
on a movie's title card), an event slide's ``title``/``time``/``place``/``note`` (the player's slide), a sponsor
pool's ``sponsor``/``sponsor_en`` (the points exchange screen), a volunteer activity's ``title``/``title_en`` (the
kiosk's staff menu, where staff grant points). Not listed, as no kiosk draws them with its font: a video's name
(only the portal's pages and the kiosk's command line show it), a project's summary, a group's description, the
center's contact (the citizens' web pages); nor a movie's captions, which its form checks and which are part of
the movie's pictures once it is made."""


def stored_undrawable(conn: Any, group_id: str | None = None, today: dt.date | None = None) -> list[dict[str, Any]]:
    """The stored texts the kiosks draw (:data:`STORED_KINDS`) that have characters their font has no letter for:
    texts saved before the forms checked them, imported by a script, or checked against an older font. Each as
    ``{kind, id, field, text, chars, link, level, target}``: ``link`` is the staff page whose form fixes it, ``level``
    who may open that page (``server_sync.staff.PAGE_ROLES``: a pool's and the point rules' pages are the
    administrators'), ``target`` the playlist target of a slide (else "").

    ``group_id``: a group editor's view (their group's name and projects only); None: the whole center's. Only
    what the kiosks show now or will show without another save: projects that are active and not yet ended, every
    group, and the slides (not yet past), pools and activities of the versions the kiosks run
    (:func:`server_sync.configstore.in_force`). One read of the groups and projects and of each target's newest
    version; a few hundred projects take a few milliseconds (docs/portal.md, "Letters the kiosks cannot show")."""
    from sqlalchemy import select

    from server_sync.db import groups, projects
    from server_sync.policy import TZ

    if font_letters() is None:
        return []
    day = (today or dt.datetime.now(TZ).date()).isoformat()
    found: list[dict[str, Any]] = []

    def check(kind: str, key: str, field: str, text: Any, link: str, level: str) -> None:
        if isinstance(text, str) and (missing := undrawable(text.strip())):
            found.append({"kind": kind, "id": key, "field": field, "text": text.strip(), "chars": missing[:10],
                          "link": link, "level": level, "target": ""})

    q = select(projects.c.id, projects.c.title, projects.c.title_en, projects.c.end_date).where(
        projects.c.active.is_(True)).order_by(projects.c.created_ms, projects.c.id)
    gq = select(groups.c.id, groups.c.name).order_by(groups.c.name)
    if group_id is not None:
        q, gq = q.where(projects.c.group_id == group_id), gq.where(groups.c.id == group_id)
    for pid, title, title_en, end in conn.execute(q):
        if end is None or end.isoformat() >= day:
            link = f"/staff/projects/{quote(pid, safe='')}"
            check("project", pid, "title", title, link, "any")
            check("project", pid, "title_en", title_en, link, "any")
    for gid, name in conn.execute(gq):
        check("group", gid, "name", name, f"/staff/groups?edit={quote(gid, safe='')}", "staff")
    if group_id is not None:
        return found
    # Slides, pools and activities live in the published versions the kiosks run now (:func:`_in_force`). A version
    # never changes once published, so what each one holds is read and checked once (:func:`_in_version`, by its
    # digest), not on every view of the dashboard: a version with 200 projects is about 150 kB of JSON.
    seen: set[tuple[str, str, str]] = set()
    for target, version, digest in _in_force(conn):
        for kind, key, field, text, missing, slide_day in _in_version(conn, version, digest):
            if kind == "slide":
                if slide_day >= day:
                    found.append({"kind": kind, "id": key, "field": field, "text": text, "chars": list(missing),
                                  "link": f"/staff/playlists?target={quote(target, safe='')}", "level": "staff",
                                  "target": target})
            elif (kind, key, field) not in seen:  # a pool or activity every target carries: listed once
                seen.add((kind, key, field))
                if kind == "pool":
                    link, level = f"/staff/pools?edit={quote(key, safe='')}#pool-edit", "admin"
                else:  # an activity: the written point rules' (administrators), or the volunteer page's
                    link, level = ("/staff/point-rules", "admin") if slide_day == "rules" else ("/staff/volunteer",
                                                                                                 "staff")
                found.append({"kind": kind, "id": key, "field": field, "text": text, "chars": list(missing),
                              "link": link, "level": level, "target": ""})
    order = {k: i for i, k in enumerate(STORED_KINDS)}
    return sorted(found, key=lambda f: order[f["kind"]])


_newest: weakref.WeakKeyDictionary[Any, tuple[int, dict[str, tuple[int, str]]]] = weakref.WeakKeyDictionary()
"""Each portal database's (engine's) newest version, and the newest version and digest of each target then."""


def _in_force(conn: Any) -> list[tuple[str, int, str]]:
    """``(target, version, digest)`` of each published version kiosks run now, as
    :func:`server_sync.configstore.in_force` decides (a kiosk runs the newest version for all kiosks, its kiosk group
    or itself; a kiosk group no kiosk is in now: none), from two small reads (the newest version of each target and
    the kiosks' groups) without opening any document."""
    from sqlalchemy import func, select

    from server_sync.db import configs, kiosk_info

    # Which version is each target's newest changes only when one is published (versions only grow, and none is
    # ever changed or removed), so it is looked up again only then: on SQLite, finding each target's newest reads
    # every version's whole row (a target is stored after the document), a few MB once a year's versions are kept.
    top = int(conn.execute(select(func.max(configs.c.version))).scalar() or 0)
    kept = _newest.get(conn.engine)
    if kept is None or kept[0] != top:
        newest = select(configs.c.target, func.max(configs.c.version).label("v")).group_by(configs.c.target).subquery()
        rows = conn.execute(select(configs.c.target, configs.c.version, configs.c.digest).join(
            newest, (configs.c.target == newest.c.target) & (configs.c.version == newest.c.v)))
        kept = (top, {t: (int(v), d) for t, v, d in rows})
        _newest[conn.engine] = kept
    by_target = kept[1]
    kiosk_group = {k: g for k, g in conn.execute(select(kiosk_info.c.kiosk_id, kiosk_info.c.kiosk_group))}
    everyone = by_target.get("all", (0, ""))[0]
    out = []
    for target, (version, digest) in sorted(by_target.items()):
        if target.startswith("group:") and target[len("group:"):] not in kiosk_group.values():
            continue
        above = everyone if target != "all" else 0
        if target.startswith("kiosk:") and (g := kiosk_group.get(target[len("kiosk:"):])):
            above = max(above, by_target.get(f"group:{g}", (0, ""))[0])
        if version > above:
            out.append((target, version, digest))
    return out


def _checked(document: str) -> tuple[tuple[str, str, str, str, list[str], str], ...]:
    """The drawn texts of one version's document with letters the font lacks: ``(kind, id, field, text, letters,
    extra)``; ``extra`` is a slide's day, "rules" for an activity of the written point rules."""
    doc = json.loads(document)
    out: list[tuple[str, str, str, str, list[str], str]] = []

    def check(kind: str, key: Any, field: str, text: Any, extra: str) -> None:
        if isinstance(text, str) and (missing := undrawable(text.strip())):
            out.append((kind, str(key), field, text.strip(), missing[:10], extra))

    for s in doc.get("slides") or []:
        for field in ("title", "time", "place", "note"):
            check("slide", s.get("title", ""), field, s.get(field), str(s.get("date", "")))
    rules = doc.get("points_rules") or {}
    for a in rules.get("activities") or doc.get("activities") or []:
        for field in ("title", "title_en"):
            check("activity", a.get("id"), field, a.get(field), "rules" if rules else "")
    for p in doc.get("pools") or []:
        for field in ("sponsor", "sponsor_en"):
            check("pool", p.get("id"), field, p.get(field), "")
    return tuple(out)


_by_digest: dict[str, tuple[tuple[str, str, str, str, list[str], str], ...]] = {}


def _in_version(conn: Any, version: int, digest: str) -> tuple[tuple[str, str, str, str, list[str], str], ...]:
    """:func:`_checked` of the published ``version``, kept by its ``digest`` (the same digest: the same document, on
    any portal of this process), so its document is read the first time only (a few hundred are kept at most)."""
    from sqlalchemy import select

    from server_sync.db import configs

    if digest not in _by_digest:
        document = conn.execute(select(configs.c.document).where(configs.c.version == version)).scalar()
        if len(_by_digest) >= 256:
            _by_digest.clear()
        _by_digest[digest] = _checked(document or "{}")
    return _by_digest[digest]

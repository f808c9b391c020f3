"""Portal policy on ingest (docs/sync.md, "Policy on ingest"): what a correctly signed entry may claim.

A kiosk's signature proves only that its key signed an entry, not that the entry is sane: a stolen
key (or a doctored kiosk) can sign ¥9,007,199,254,729,791 or 2^53-1 points. The portal keeps every
verified entry (its mirror of the ledger stays exact and provable) but an entry that breaks this
policy is *quarantined*: stored with the reason, never counted, shown to staff, and alarmed.

Pure: the caller gathers the context (catalog, the config the kiosk runs) from the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

# Without a pushed config the portal does not know the kiosk's own limits; these ceilings stop the
# absurd while never touching an honest kiosk (its own default maximum is ¥1,000, 100 points a grant).
PORTAL_MAX_YEN = 1_000_000
PORTAL_MAX_GRANT_POINTS = 1_000
DEFAULT_POINTS_PER_100_YEN = 1
# A synced kiosk clock may lag the portal by a long offline spell, never lead it by much.
MAX_PAST_MS = 400 * 86_400_000
MAX_FUTURE_MS = 86_400_000

# The quarantine reason of an entry that broke no rule but arrived while its kiosk was suspended:
# `kiosk resume` releases exactly these (a policy reason never starts with it).
HELD = "held: kiosk suspended"

# A gift chosen on the screen of the old version may be recorded just after a config_change entry
# (the sync thread records the change, then the screens switch): within this many milliseconds of the
# change, in the same boot, an entry that fits the previous version passes.
GRACE_MS = 10 * 60_000

# The portal's one time zone, Japan's, whatever the server's own: every day and time the portal reckons or shows is
# in it (a pool's period, ``start``/``end`` with both days included; a project's dates; the reconciliation's business
# days; the public days and the pages' times). Set here only, and imported from here, so that they cannot drift apart:
# this module imports nothing else of the project, so every portal module may import it (docs/architecture.md).
TZ = ZoneInfo("Asia/Tokyo")

# Entry types the policy looks at: the ones that count (money, points) or name a project.
CHECKED = frozenset({"donation_intent", "donation", "points_grant", "points_spent"})


@dataclass
class Context:
    """What the portal knows when an entry arrives."""

    kiosk_id: str
    received_ms: int
    catalog: frozenset[str] = frozenset()
    config: dict[str, Any] | None = None  # the pushed config document the kiosk runs, if any
    config_projects: frozenset[str] = field(default_factory=frozenset)
    version: int = 0  # the pushed config version the kiosk runs (0: only its own file)
    # The version before it, for entries made in the moments after the change (see GRACE_MS).
    previous: Context | None = None
    changed_at: tuple[int, int] | None = None  # (boot, mono_ms) of the config_change entry

    def after_change(self, previous: Context, boot: int, mono_ms: int) -> Context:
        """This context, reached by a config_change entry at (boot, mono_ms) from ``previous``."""
        self.previous, self.changed_at = previous, (boot, mono_ms)
        previous.previous = None  # one step back is all the grace allows
        return self

    @classmethod
    def build(cls, kiosk_id: str, received_ms: int, catalog: set[str], config: dict[str, Any] | None,
              version: int = 0) -> Context:
        # A stored document passed configdoc.validate (every project has a text id): the check only narrows the type.
        cfg_projects = frozenset(p["id"] for p in (config or {}).get("projects") or []
                                 if isinstance(p, dict) and isinstance(p.get("id"), str))
        return cls(kiosk_id, received_ms, frozenset(catalog), config, cfg_projects, version if config else 0)

    # The pushed config (server_sync/wire/configdoc.py) states the kiosk's presets, its
    # max_per_transaction_yen and points_per_100_yen (the kiosk adopts them: kiosk/sync/adopt.py). A
    # document of an older portal lacks the last two: then the portal-wide ceiling and the default
    # formula apply. Version 0 (the kiosk runs only its own file) has no presets to check against.
    def presets(self) -> list[int] | None:
        v = (self.config or {}).get("presets_yen")
        return [int(x) for x in v if isinstance(x, int)] if isinstance(v, list) else None

    def max_yen(self) -> int:
        v = (self.config or {}).get("max_per_transaction_yen")
        return v if isinstance(v, int) and 0 < v <= PORTAL_MAX_YEN else PORTAL_MAX_YEN

    def points_per_100_yen(self) -> int:
        v = (self.config or {}).get("points_per_100_yen")
        return v if isinstance(v, int) and v >= 0 else DEFAULT_POINTS_PER_100_YEN

    def max_grant_points(self, activity: str) -> int:
        acts = (self.config or {}).get("activities")
        if not isinstance(acts, list):  # None: the kiosk runs its own [[volunteer.activities]]
            return PORTAL_MAX_GRANT_POINTS
        for a in acts:
            if isinstance(a, dict) and a.get("id") == activity and isinstance(a.get("max_points"), int):
                return int(a["max_points"])
        return 0  # the config the kiosk runs offers no such activity

    def known_project(self, pid: Any) -> bool | None:
        """True/False; None when the portal has no list to check against (empty catalog, no pushed config)."""
        if not self.catalog and not self.config_projects:
            return None
        return pid in self.catalog or pid in self.config_projects


def violation(obj: dict[str, Any], ctx: Context) -> str | None:
    """The first policy rule ``obj`` (a parsed, verified entry) breaks, as a short reason; None if none."""
    why = _violation(obj, ctx)
    if why is not None and ctx.previous is not None and ctx.changed_at is not None:
        boot, mono = ctx.changed_at
        m = obj.get("mono_ms")
        if obj.get("boot") == boot and isinstance(m, int) and mono <= m <= mono + GRACE_MS \
                and _violation(obj, ctx.previous) is None:
            return None
    return why


def _violation(obj: dict[str, Any], ctx: Context) -> str | None:
    if obj.get("kiosk") != ctx.kiosk_id:
        return f"kiosk: body claims {obj.get('kiosk')!r}, enrolled as {ctx.kiosk_id!r}"
    if obj.get("clock_synced"):
        w = obj.get("wall_ms")
        if not isinstance(w, int) or w < ctx.received_ms - MAX_PAST_MS or w > ctx.received_ms + MAX_FUTURE_MS:
            return f"time: synced wall_ms={w} is outside the bounds of the portal's receive time {ctx.received_ms}"
    kind = obj.get("type")
    if kind not in CHECKED:
        return None
    data = obj.get("data") or {}
    if kind in ("donation_intent", "donation"):
        yen = data.get("amount_yen")
        if not isinstance(yen, int) or yen < 1 or yen > ctx.max_yen():
            return f"amount: ¥{yen} is over the kiosk's maximum ¥{ctx.max_yen()}{_at(ctx)}"
        presets = ctx.presets()
        if presets is not None and yen not in presets:
            return f"amount: ¥{yen} is not one of the presets {presets}{_at(ctx)}"
        if ctx.known_project(data.get("project")) is False:
            return f"project: {data.get('project')!r} is not in the catalog"
        if kind == "donation":
            # No card on the reader (donor null): no points (kiosk/ledger/store.py record_intent).
            want = 0 if data.get("donor") is None else yen // 100 * ctx.points_per_100_yen()
            if data.get("points") != want:
                return f"points: {data.get('points')} for ¥{yen}, the formula gives {want}{_at(ctx)}"
    elif kind == "points_spent":
        return _spent_violation(obj, data, ctx)
    else:  # points_grant
        rules = (ctx.config or {}).get("points_rules")
        if isinstance(rules, dict):  # written rules in force (issue #17): the grant must match one exactly
            return _rule_violation(data, rules, ctx)
        pts, most = data.get("points"), ctx.max_grant_points(str(data.get("activity", "")))
        if not isinstance(pts, int) or pts < 1 or pts > most:
            return f"points: grant of {pts} for {data.get('activity')!r} is over the maximum {most}"
    return None


def _spent_violation(obj: dict[str, Any], data: dict[str, Any], ctx: Context) -> str | None:
    """Points exchanged for a sponsor's gift (docs/points.md): a pool of the config the kiosk ran, within its
    period, at its rate, to a project in one of its areas. (That the kiosk stayed within its allocation is
    shown on the pools page.)"""
    pools = (ctx.config or {}).get("pools") or []
    pool = next((p for p in pools if isinstance(p, dict) and p.get("id") == data.get("pool")), None)
    if pool is None:
        return f"pool: {data.get('pool')!r} is not a sponsor pool of the config the kiosk ran{_at(ctx)}"
    why = _period_violation(obj, pool, ctx)
    if why is not None:
        return why
    pts, yen = data.get("points"), data.get("amount_yen")
    if not isinstance(pts, int) or pts < 1 or yen != pts * int(pool.get("yen_per_point") or 1):
        return f"amount: {pts} points as ¥{yen}, pool {pool['id']!r} gives ¥{pool.get('yen_per_point')} a point"
    if ctx.known_project(data.get("project")) is False:
        return f"project: {data.get('project')!r} is not in the catalog"
    areas = pool.get("areas") or []
    area = next((p.get("area") for p in (ctx.config or {}).get("projects") or []
                 if isinstance(p, dict) and p.get("id") == data.get("project")), None)
    if areas and area not in areas:
        return f"pool: {pool['id']!r} gives only to {areas}, not to {data.get('project')!r} ({area})"
    return None


def _period_violation(obj: dict[str, Any], pool: dict[str, Any], ctx: Context) -> str | None:
    """The kiosk checks a pool's period before it spends (``PoolTerms.open_on``); so does the portal here.

    A synced clock dates the entry (its day in the kiosks' time zone). An unsynced one does not, but the entry
    was made before the portal received it: received before the pool opened is outside it all the same. (An
    unsynced entry received after the end may have been spent offline in time: it passes.)"""
    start, end = pool.get("start"), pool.get("end")
    if obj.get("clock_synced") and isinstance(obj.get("wall_ms"), int):
        day, how = _day(obj["wall_ms"]), "spent"
    elif start:
        day, how = _day(ctx.received_ms), "received unsynced"
        end = None
    else:
        return None
    if (start and day < str(start)) or (end and day > str(end)):
        return (f"period: {how} on {day}, pool {pool['id']!r} runs {start or '…'} to {pool.get('end') or '…'}"
                f"{_at(ctx)}")
    return None


def _day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, TZ).date().isoformat()


def _rule_violation(data: dict[str, Any], rules: dict[str, Any], ctx: Context) -> str | None:
    """A grant under written rules names their version, an activity of it, and exactly its points."""
    v = rules.get("version")
    if data.get("rules") != v:
        return f"rules: grant under rules {data.get('rules')!r}, the kiosk ran point rules v{v}{_at(ctx)}"
    act = next((a for a in rules.get("activities") or [] if isinstance(a, dict) and a.get("id") == data.get(
        "activity")), None)
    if act is None:
        return f"rules: no activity {data.get('activity')!r} in point rules v{v}{_at(ctx)}"
    if data.get("points") != act.get("points"):
        return f"rules: {data.get('points')} points for {act.get('id')!r}, point rules v{v} give {act.get('points')}"
    return None


def _at(ctx: Context) -> str:
    return f" (config v{ctx.version})" if ctx.version else ""

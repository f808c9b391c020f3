"""The pushed configuration document: projects, goals, amounts and playlist, versioned on the portal.

The projects are the portal's catalog (``server_sync/catalog.py``): the active projects with their
titles, group, policy area and goal, as the portal last published them. Ledger entries name a
project by its ``id``; everything shown about it comes from here.

Both sides validate with the same model, and the digest is SHA-256 of the document's canonical JSON
(the ledger's encoder), so the ``config_change`` entry a kiosk records names exactly what it applied.
Media are referred to by SHA-256 and fetched from ``/api/v1/media/{sha256}``. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from kiosk.ledger.encoding import canonical


class ConfigDocError(ValueError):
    """A configuration document that must not be published or applied.

    ``str()`` is English, for the log and the command line. ``code`` names the refusal, stable, and ``params``
    are its variables: the portal's staff pages say it in the staff member's language from these
    (server_sync/pages.py ``REFUSALS``), never from the English. ``invalid``: any other mistake in the document
    (one written by hand). Raised inside a model's validator, it reaches :func:`check`'s caller with its code."""

    def __init__(self, message: str, code: str = "invalid", **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


def schema_bound(model: type[BaseModel], field: str, bound: str) -> int:
    """A bound (``max_length``, ``ge``, ``le``) of a field of this document, read from the model itself: a form or
    a check elsewhere refuses just what publishing would, with no second copy of the number."""
    for m in model.model_fields[field].metadata:
        if isinstance(value := getattr(m, bound, None), int):
            return value
    raise LookupError(f"{model.__name__}.{field} has no {bound}")


def _calendar_day(value: str) -> str:
    # The kiosk reads these as real dates (kiosk/config/player.py): 2026-02-30 must stop at publish.
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a calendar date (YYYY-MM-DD)") from None
    return value


IsoDate = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$"), AfterValidator(_calendar_day)]
"""A calendar day, kept as its ISO string in the document (so the digest is of what was written)."""


class PushedProject(_Doc):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    title: str = Field(min_length=1, max_length=200)
    title_en: str = Field("", max_length=200)
    group: str = Field("", max_length=200)
    area: Literal["children", "welfare", "green", "culture", "town"]
    goal_yen: int = Field(100_000, ge=1, le=10**12)
    summary: str = Field("", max_length=2000)
    summary_en: str = Field("", max_length=2000)
    start: IsoDate | None = None
    """First day of the fundraising (ISO date), or None."""
    end: IsoDate | None = None
    """Last day of the fundraising (ISO date), or None."""


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"


class Window(_Doc):
    """When a clip or slide may show: weekdays and a local time span (the kiosk's ``TimeWindow``)."""

    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1, max_length=7)
    start: str = Field("00:00", pattern=_HHMM)
    end: str = Field("24:00", pattern=_HHMM)

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.start == self.end or self.start == "24:00":
            raise ValueError(f"window {self.start}-{self.end} is empty")
        return self


class PlaylistItem(_Doc):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    name: str = Field(min_length=1, max_length=200)
    project: str | None = None
    seconds: int | None = Field(None, ge=1, le=3600)
    windows: list[Window] = Field(default_factory=list, max_length=20)
    """Empty: always."""
    repeat: int = Field(1, ge=1, le=100)


class Slide(_Doc):
    """An upcoming event at the center, drawn by the kiosk as a still slide (the kiosk's ``EventSlide``)."""

    title: str = Field(min_length=1, max_length=200)
    date: IsoDate
    time: str = Field("", max_length=100)
    place: str = Field("", max_length=200)
    note: str = Field("", max_length=200)
    show_days_before: int = Field(30, ge=0, le=366)
    windows: list[Window] = Field(default_factory=list, max_length=20)


class Activity(_Doc):
    """A volunteer activity staff grant points for at the kiosk (the kiosk's ``[[volunteer.activities]]``)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    title: str = Field(min_length=1, max_length=200)
    title_en: str = Field("", max_length=200)
    points: int = Field(10, ge=1, le=10_000)
    max_points: int = Field(100, ge=1, le=10_000)

    @model_validator(mode="after")
    def _within(self) -> Activity:
        if self.points > self.max_points:
            raise ValueError(f"points {self.points} exceeds max_points {self.max_points}")
        return self


class RuleActivity(_Doc):
    """One volunteer activity type of the written point rules: fixed points and what it means, in words
    a citizen can read (shown on the portal's public rules page)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    title: str = Field(min_length=1, max_length=200)
    title_en: str = Field("", max_length=200)
    points: int = Field(ge=1, le=10_000)
    """The points one grant gives: fixed, staff do not type a number."""
    description: str = Field("", max_length=1000)
    description_en: str = Field("", max_length=1000)


class PointRules(_Doc):
    """The written issuing rules (issue #17), versioned on the portal (``server_sync/pointrules.py``).

    A kiosk grants only what a rule in force says; its ``points_grant`` entries name the version
    (``rules``), and the portal's ingest policy checks each grant against that version.
    """

    version: int = Field(ge=1, le=10**9)
    points_per_100_yen: int = Field(ge=0, le=1000)
    activities: list[RuleActivity] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _unique(self) -> PointRules:
        ids = [a.id for a in self.activities]
        if len(set(ids)) != len(ids):
            raise ConfigDocError("duplicate activity ids in the point rules", code="duplicate_activities")
        return self

    def activity(self, activity_id: str) -> RuleActivity | None:
        return next((a for a in self.activities if a.id == activity_id), None)


class Pool(_Doc):
    """A sponsor's pool as a kiosk needs it (docs/points.md): points become the sponsor's yen for a project.

    ``allocations`` maps kiosk ids to the yen the portal has handed that kiosk so far (cumulative, never
    lowered); a kiosk spends at most its own allocation, and the portal hands out at most what the
    sponsor funded, so the pool cannot go below zero even when kiosks spend offline.
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    sponsor: str = Field(min_length=1, max_length=200)
    sponsor_en: str = Field("", max_length=200)
    yen_per_point: int = Field(1, ge=1, le=1000)
    areas: list[Literal["children", "welfare", "green", "culture", "town"]] = Field(default_factory=list)
    """Policy areas whose projects may receive from this pool; empty: every area."""
    start: IsoDate | None = None
    end: IsoDate | None = None
    allocations: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sane(self) -> Pool:
        if any(not isinstance(v, int) or v < 0 or v > 10**12 for v in self.allocations.values()):
            raise ValueError("allocations are whole yen from 0")
        return self


class PushedConfig(_Doc):
    projects: list[PushedProject] = Field(min_length=1, max_length=200)
    presets_yen: list[int] = Field(default_factory=lambda: [100, 500, 1000], min_length=1, max_length=10)
    """The amount buttons: the only amounts the kiosk takes (it has no free amount entry)."""
    default_yen: int = 100
    max_per_transaction_yen: int | None = Field(None, ge=1, le=1_000_000)
    """The kiosk's largest single gift (its ``[donation] max_per_transaction_yen``, replaced on adoption).
    The portal always sets it (``server_sync.configstore.publish``); None only in documents of older portals."""
    points_per_100_yen: int | None = Field(None, ge=0, le=1000)
    """Points per ¥100 given (the kiosk's ``[donation] points_per_100_yen``, replaced on adoption); None as above."""
    playlist: list[PlaylistItem] = Field(default_factory=list, max_length=500)
    slides: list[Slide] | None = Field(None, max_length=100)
    """Event slides; None leaves the kiosk's own ``[[player.slides]]``."""
    activities: list[Activity] | None = Field(None, max_length=100)
    """Volunteer activities; None leaves the kiosk's own ``[[volunteer.activities]]``."""
    points_rules: PointRules | None = None
    """The written point rules in force (issue #17); when set, the activities and the points rate above
    are the rules' own (checked here), and each activity's points are fixed."""

    pools: list[Pool] | None = Field(None, max_length=50)
    """Sponsor pools points may be exchanged into (docs/points.md); None: no exchange on the kiosks."""

    @model_validator(mode="after")
    def _consistent(self) -> PushedConfig:
        ids = [p.id for p in self.projects]
        if len(set(ids)) != len(ids):
            raise ConfigDocError("duplicate project ids", code="duplicate_projects")
        if any(a < 1 for a in self.presets_yen):
            raise ConfigDocError("preset amounts must be positive yen", code="preset_not_positive")
        if self.default_yen not in self.presets_yen:
            raise ConfigDocError(f"default_yen {self.default_yen} is not one of presets_yen", code="default_not_preset",
                                  yen=self.default_yen)
        if self.max_per_transaction_yen is not None and max(self.presets_yen) > self.max_per_transaction_yen:
            raise ConfigDocError(f"preset {max(self.presets_yen)} exceeds max_per_transaction_yen "
                                 f"{self.max_per_transaction_yen}", code="preset_over_max", yen=max(self.presets_yen),
                                 max=self.max_per_transaction_yen)
        unknown = [i.project for i in self.playlist if i.project is not None and i.project not in ids]
        if unknown:
            raise ConfigDocError(f"playlist refers to unknown projects {sorted(set(unknown))}",
                                 code="playlist_unknown_project")
        acts = [a.id for a in self.activities or []]
        if len(set(acts)) != len(acts):
            raise ConfigDocError("duplicate activity ids", code="duplicate_activities")
        r = self.points_rules
        if r is not None:
            if self.points_per_100_yen is not None and self.points_per_100_yen != r.points_per_100_yen:
                raise ConfigDocError(f"points_per_100_yen {self.points_per_100_yen} differs from the point rules "
                                     f"v{r.version} ({r.points_per_100_yen}); edit the point rules instead",
                                     code="points_rate_differs_from_rules")
            if self.activities is not None and [(a.id, a.points, a.max_points) for a in self.activities] != [
                    (a.id, a.points, a.points) for a in r.activities]:
                raise ConfigDocError(f"activities differ from the point rules v{r.version}; edit the point rules "
                                     "instead", code="activities_differ_from_rules")
        return self


M = TypeVar("M", bound=BaseModel)


def check(model: type[M], doc: Any) -> M:
    """``doc`` as ``model`` (:class:`PushedConfig`, :class:`PointRules`), or :class:`ConfigDocError` for its first
    mistake: the English names where (``playlist: List should have at most 500 items…``); the code is the
    refusal's own (a check of this module), ``too_many`` (a list over its bound: ``what``, the list's key, and
    ``max``) or ``invalid``."""
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        message = f"{where}: {first['msg']}"
        own = (first.get("ctx") or {}).get("error")
        if isinstance(own, ConfigDocError):
            raise ConfigDocError(message, own.code, **own.params) from None
        if first["type"] == "too_long" and first["loc"] and isinstance(first["input"], list):
            raise ConfigDocError(message, "too_many", what=str(first["loc"][-1]),
                                 max=first["ctx"]["max_length"]) from None
        raise ConfigDocError(message) from None


def validate(doc: Any) -> PushedConfig:
    return check(PushedConfig, doc)


# Keys added after documents were first published: left out when unset, so an older document keeps
# its digest (a kiosk recomputes the digest from the document as it validates it).
_ADDED_KEYS = ("max_per_transaction_yen", "points_per_100_yen", "points_rules", "pools")
DEFAULT_MAX_PER_TRANSACTION_YEN = 1000
DEFAULT_POINTS_PER_100_YEN = 1


def rule_activities(rules: PointRules) -> list[dict[str, Any]]:
    """The ``activities`` a document with these rules carries: each rule's points, fixed (points = max)."""
    return [{"id": a.id, "title": a.title, "title_en": a.title_en, "points": a.points, "max_points": a.points}
            for a in rules.activities]


def normalised(cfg: PushedConfig) -> dict[str, Any]:
    doc = cfg.model_dump(mode="json")
    for key in _ADDED_KEYS:
        if doc.get(key) is None:
            del doc[key]
    return doc


def digest(doc: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(doc)).hexdigest()

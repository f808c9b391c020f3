"""The config as plain objects: what ``kiosk run`` runs on, read back from the validated-config cache.

Importing pydantic and making the config's model classes was about 40 % of the instructions from process
start to ``READY=1`` (≈ 400 M of ≈ 1,024 M; docs/performance.md), and a kiosk restarted by its watchdog
with an unchanged file needs neither: the file was validated at an earlier start. So after a full
validation the tree is turned into :class:`Plain` objects (:func:`plain_of`) and the cache keeps those;
the next start reads them back (kiosk/config/cache.py) with only this module and the standard library.

A :class:`Plain` has a validated section's fields as attributes and its methods and properties: those
are written once, in the mixins below, which the pydantic models derive from too, so the model and its
plain copy cannot drift apart. It does no validation. What builds a new config from it (a config pushed by
the portal, ``to_toml``) turns it back into a model first (:func:`kiosk.config.tree.as_model`, which
validates :func:`data_of` the plain tree); the menu's playlist edit takes a plain deep copy
(:func:`plain_of`); and code that takes a config reads attributes only, so it takes either.

Standard library only: this module must never import pydantic or a section module
(tests/app/test_cold_start.py checks that a restart reaches ``READY=1`` without pydantic).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from kiosk.config.donation import Project
    from kiosk.config.kiosk import KeysSection, KioskSection, LedgerSection
    from kiosk.config.player import TimeWindow
    from kiosk.config.staff import (
        Activity,
        CloseoutSection,
        ExportSection,
        StaffSection,
        StatusSection,
        VolunteerSection,
    )

DEFAULT_DATA_DIR = Path("kiosk-data")
"""``[kiosk] data_dir`` when the file leaves it out (the cache is looked for there before validating)."""

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def minutes(hhmm: str) -> int:
    """Minutes since midnight of a validated ``HH:MM`` (``24:00`` is 1440)."""
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class TimeWindowRules:
    """What a ``[[player.playlist.windows]]`` window answers (its fields: ``days``, ``start``, ``end``)."""

    __slots__ = ()  # no fields of its own: the model's or the plain copy's
    if TYPE_CHECKING:  # the fields the model declares (kiosk/config/player.py), for the type checker only
        days: list[Weekday]
        start: str
        end: str

    def contains(self, when: dt.datetime) -> bool:
        """Whether the local wall-clock time ``when`` falls inside this window."""
        minute = when.hour * 60 + when.minute
        day = WEEKDAYS[when.weekday()]
        yesterday = WEEKDAYS[(when.weekday() - 1) % 7]
        start, end = minutes(self.start), minutes(self.end)
        if start < end:
            return day in self.days and start <= minute < end
        # Overnight window: the part after midnight belongs to the day it opened on.
        return (day in self.days and minute >= start) or (yesterday in self.days and minute < end)


def in_windows(windows: list[Any], when: dt.datetime) -> bool:
    """No windows means always; otherwise any one window is enough."""
    return not windows or any(w.contains(when) for w in windows)


class EventSlideRules:
    """When an event slide shows (its fields: ``date``, ``show_days_before``, ``windows``)."""

    __slots__ = ()  # no fields of its own: the model's or the plain copy's
    if TYPE_CHECKING:  # the fields the model declares (kiosk/config/player.py), for the type checker only
        date: dt.date
        show_days_before: int
        windows: list[TimeWindow]

    def active_on(self, when: dt.datetime) -> bool:
        """Upcoming (within ``show_days_before``), not past, and inside its windows."""
        today = when.date()
        if today > self.date or (self.date - today).days > self.show_days_before:
            return False
        return in_windows(self.windows, when)


class VolunteerRules:
    """Looking up a volunteer activity by id (its field: ``activities``)."""

    __slots__ = ()  # no fields of its own: the model's or the plain copy's
    if TYPE_CHECKING:  # the field the model declares (kiosk/config/staff.py), for the type checker only
        activities: list[Activity]

    def activity(self, activity_id: str) -> Activity | None:
        return next((a for a in self.activities if a.id == activity_id), None)


class KioskConfigPaths:
    """Where the root config's files are: paths in the file are relative, resolved against the data
    directory, which is resolved against the config file's directory (``base_dir``)."""

    __slots__ = ()  # no fields of its own: the model's or the plain copy's
    if TYPE_CHECKING:  # the fields the model declares (kiosk/config/tree.py), for the type checker only
        kiosk: KioskSection
        keys: KeysSection
        ledger: LedgerSection
        projects: list[Project]
        base_dir: Path

    def resolve(self, p: Path) -> Path:
        return p if p.is_absolute() else (self.data_dir / p)

    @property
    def data_dir(self) -> Path:
        d = self.kiosk.data_dir
        return d if d.is_absolute() else (self.base_dir / d)

    @property
    def ledger_path(self) -> Path:
        return self.resolve(self.ledger.path)

    @property
    def private_key_path(self) -> Path:
        return self.resolve(self.keys.private_key)

    @property
    def public_key_path(self) -> Path:
        return self.resolve(self.keys.public_key)

    @property
    def pepper_path(self) -> Path:
        return self.resolve(self.keys.pepper)

    def project(self, project_id: str) -> Project | None:
        return next((p for p in self.projects if p.id == project_id), None)


@dataclass(frozen=True)
class OpsSettings:
    """The ops sections of one config (or of its plain copy)."""

    staff: StaffSection
    closeout: CloseoutSection
    volunteer: VolunteerSection
    export: ExportSection
    status: StatusSection


def ops_settings(cfg: Any) -> OpsSettings:
    """The ops sections of a :class:`~kiosk.config.KioskConfig` (or its plain copy)."""
    return OpsSettings(cfg.staff, cfg.closeout, cfg.volunteer, cfg.export, cfg.status)


# --- plain objects ----------------------------------------------------------------------------------------

_RULES: dict[str, tuple[type, ...]] = {
    "TimeWindow": (TimeWindowRules,),
    "EventSlide": (EventSlideRules,),
    "VolunteerSection": (VolunteerRules,),
    "KioskConfig": (KioskConfigPaths,),
}
"""The model classes with behaviour, by name, and the mixins they share with their plain copies."""

_CLASSES: dict[str, type[Plain]] = {}


class Plain:
    """A validated config section as plain attributes (one per field, nested sections as Plain too).

    Attributes may be set, as on the models (``frozen=False``): the running kiosk swaps in the projects,
    amounts and playlist of a config the portal pushed. Two are equal when they are copies of the same
    model class with equal fields; a copy equals the model it was made from.
    """

    model_name = "Plain"
    """The name of the pydantic model class this is a copy of."""

    def __init__(self, **fields: Any):
        self.__dict__.update(fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Plain):
            return other.model_name == self.model_name and other.__dict__ == self.__dict__
        section = _section(other)  # the model it copies (or a copy of it)
        if section is None:
            return NotImplemented
        return section[0] == self.model_name and data_of(other) == data_of(self)

    __hash__ = None  # type: ignore[assignment]  # mutable, as the models are

    def __repr__(self) -> str:
        return f"{self.model_name}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    def __reduce__(self) -> tuple[Any, ...]:
        # By name, through rebuild(): the cache's unpickler then needs to name one function of this module.
        return (rebuild, (self.model_name, dict(self.__dict__)))


def plain_class(name: str) -> type[Plain]:
    """The plain class standing for the model class ``name`` (made on first use: a few microseconds)."""
    cls = _CLASSES.get(name)
    if cls is None:
        if not (name.isidentifier() and name[0] != "_"):
            raise ValueError(f"not a config class name: {name!r}")
        cls = _CLASSES[name] = type(name, (*_RULES.get(name, ()), Plain),
                                    {"model_name": name, "__module__": __name__, "__qualname__": f"plain.{name}"})
    return cls


def rebuild(name: str, fields: dict[str, Any]) -> Plain:
    """A plain copy of model class ``name`` with ``fields`` (how the cache is read back)."""
    # Field names as pydantic allows them: identifiers not starting with "_" (no dunder can be planted).
    if not isinstance(fields, dict) or not all(isinstance(k, str) and k.isidentifier() and k[0] != "_"
                                               for k in fields):
        raise ValueError(f"{name}: fields must be a mapping of names")
    cls = plain_class(name)
    obj = cls.__new__(cls)
    obj.__dict__.update(fields)
    return obj


def _section(value: Any) -> tuple[str, dict[str, Any]] | None:
    """A config section's model-class name and fields, for a plain copy and a model alike (anything with
    pydantic's ``model_fields``, without importing pydantic); None for anything else."""
    if isinstance(value, Plain):
        return value.model_name, value.__dict__
    fields = getattr(type(value), "model_fields", None)
    if fields is None:
        return None
    return type(value).__name__, {name: getattr(value, name) for name in fields}


def _each(value: Any, fn: Callable[[Any], Any]) -> Any:
    """A list, tuple or dict with ``fn`` applied to each item (a dict's values); anything else as it is."""
    if isinstance(value, list):
        return [fn(v) for v in value]
    if isinstance(value, tuple):
        return tuple(fn(v) for v in value)
    if isinstance(value, dict):
        return {k: fn(v) for k, v in value.items()}
    return value


def plain_of(value: Any) -> Any:
    """A plain copy of a validated model tree, or a deep copy of a plain one (lists, dicts and tuples walked;
    other values shared, being immutable: str, int, float, bool, None, Path, dates)."""
    section = _section(value)
    if section is None:
        return _each(value, plain_of)
    name, fields = section
    return rebuild(name, {k: plain_of(v) for k, v in fields.items()})


def data_of(value: Any, *, skip: frozenset[str] = frozenset()) -> Any:
    """The plain data of a config tree (plain copies and models alike, as they may be mixed after the
    running kiosk adopted a pushed config): what the models validate back into the same tree. ``skip``:
    field names left out at the top level (``base_dir``, which is not read from a file)."""
    section = _section(value)
    if section is None:
        return _each(value, data_of)
    return {k: data_of(v) for k, v in section[1].items() if k not in skip}


def holds_plain(value: Any) -> bool:
    """Whether a config tree (a model, a plain copy, or lists and dicts of them) holds a plain copy anywhere."""
    if isinstance(value, Plain):
        return True
    section = _section(value)
    if section is not None:
        return any(holds_plain(v) for v in section[1].values())
    if isinstance(value, (list, tuple)):
        return any(holds_plain(v) for v in value)
    if isinstance(value, dict):
        return any(holds_plain(v) for v in value.values())
    return False

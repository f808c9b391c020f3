"""Kiosk configuration: TOML loaded with tomllib, validated with pydantic v2.

A bad file gives one :class:`ConfigError` listing every problem with its
dotted path and, for unknown keys, the closest valid name. The CLI turns that
into exit code 2 and never a traceback.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, ValidatorFunctionWrapHandler, field_validator
from pydantic_core import ErrorDetails

from kiosk.config import problems as pk
from kiosk.config.base import Section, check_items
from kiosk.config.donation import DonationSection, Project
from kiosk.config.files import ENV_VAR, ConfigError, parse_toml, read_config_bytes
from kiosk.config.flow import FlowConfig
from kiosk.config.kiosk import KeysSection, KioskSection, LedgerSection
from kiosk.config.payment import PaymentConfig
from kiosk.config.plain import KioskConfigPaths, data_of, holds_plain
from kiosk.config.player import PlayerConfig
from kiosk.config.portal import PortalSection
from kiosk.config.reader import ReaderConfig
from kiosk.config.staff import CloseoutSection, ExportSection, StaffSection, StatusSection, VolunteerSection

__all__ = ["ENV_VAR", "ConfigError", "KioskConfig", "as_model", "load_config", "parse_toml", "read_config_bytes",
           "to_toml", "validate_config"]

class KioskConfig(KioskConfigPaths, Section):
    kiosk: KioskSection
    """This kiosk's identity and local settings."""

    keys: KeysSection = Field(default_factory=KeysSection)
    """Key and pepper file locations."""

    ledger: LedgerSection = Field(default_factory=LedgerSection)
    """Ledger file and checkpoint cadence."""

    reader: ReaderConfig = Field(default_factory=ReaderConfig)
    """Card reader backend and debounce."""

    player: PlayerConfig = Field(default_factory=PlayerConfig)
    """Display and movie loop."""

    donation: DonationSection = Field(default_factory=DonationSection)
    """Amounts, limits and points."""

    portal: PortalSection = Field(default_factory=PortalSection)
    """Central portal sync."""

    payment: PaymentConfig = Field(default_factory=PaymentConfig)
    """Payment terminal (simulated by default), its simulator knobs and lookup pacing."""

    flow: FlowConfig = Field(default_factory=FlowConfig)
    """Idle timeouts of the donation screens."""

    staff: StaffSection = Field(default_factory=StaffSection)
    """Maintenance menu access: PIN hash, staff cards, lockout."""

    closeout: CloseoutSection = Field(default_factory=CloseoutSection)
    """Daily close-out (日計) run by the nightly timer."""

    volunteer: VolunteerSection = Field(default_factory=VolunteerSection)
    """Volunteer activities and point limits."""

    export: ExportSection = Field(default_factory=ExportSection)
    """USB export for the city."""

    status: StatusSection = Field(default_factory=StatusSection)
    """Status page thresholds."""

    projects: list[Project] = Field(default_factory=list)
    """Projects citizens can give to ([[projects]] tables)."""

    @field_validator("projects", mode="wrap")
    @classmethod
    def _unique_projects(cls, v: Any, handler: ValidatorFunctionWrapHandler) -> list[Project]:
        # A field validator, not one of the whole model: pydantic runs those only when every field is valid, so
        # duplicates went unreported beside any other mistake in the file (every error at once). Wrapped
        # (kiosk/config/base.py): and beside a mistake in another project too.
        return check_items(v, handler, Project, ("id",), _unique_project_ids)

    # Paths in the file are relative; these resolve them once the file's location is known.
    base_dir: Path = Field(default=Path("."), exclude=True)
    """(internal) directory of the config file; not read from TOML."""


def _unique_project_ids(projects: list[Any]) -> None:
    repeats = pk.repeats(projects)  # None in the list: an entry whose id is itself wrong (check_items)
    if repeats:
        raise pk.CheckFailed(pk.DUPLICATE_IDS, f"duplicate project ids: {sorted({r[2] for r in repeats})}",
                             repeats=repeats)


# --- error reporting ---------------------------------------------------------

_ID = "lowercase letters a-z, digits and dashes, starting with a letter or digit"
_PATTERNS = {
    r"^[a-z0-9][a-z0-9-]{1,39}$": f"must be 2-40 characters: {_ID} (e.g. 'tsurugashima-center-1')",
    r"^[a-z0-9][a-z0-9-]{0,39}$": f"must be 1-40 characters: {_ID} (e.g. 'kodomo-shokudo')",
    r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$": "must be a time as HH:MM with two digits each, from 00:00 to 24:00 "
                                                 "(e.g. '09:00')",
    r"^([0-9a-f]{8,64})?$": "must be a clip's SHA-256 or its first 8 or more hex digits (`kiosk media list`), "
                            "or empty",
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$": "must be 1-40 characters: letters, digits, '_', '.' and '-' "
                                          "(e.g. 'reader-1')",
}
"""Plain words for the patterns of the config's keys: staff read these, not regular expressions."""

_SECRET_KEYS = frozenset({"pin_hash"})
"""Keys whose wrong value is never repeated in the report: staff write the PIN itself in ``pin_hash``."""

_ARRAYS_OF_TABLES = pk.ARRAYS_OF_TABLES
"""Keys written as ``[[name]]`` tables: a single ``[name]`` is the commonest way to get them wrong."""

_EXPECTED = {
    "string_type": "text", "int_type": "integer", "int_parsing": "integer", "int_from_float": "integer",
    "float_type": "number", "float_parsing": "number", "bool_type": "bool", "bool_parsing": "bool",
    "list_type": "list", "tuple_type": "list", "set_type": "list", "frozen_set_type": "list", "path_type": "path",
    "model_type": "table", "dict_type": "table",
}
"""pydantic's error types for a value of the wrong kind, and the kind the key takes (``wrong_type``)."""

_RANGES = {
    "greater_than_equal": ("min", "value", "ge"), "greater_than": ("above", "value", "gt"),
    "less_than_equal": ("max", "value", "le"), "less_than": ("below", "value", "lt"),
    "string_too_short": ("min", "chars", "min_length"), "string_too_long": ("max", "chars", "max_length"),
    "too_short": ("min", "items", "min_length"), "too_long": ("max", "items", "max_length"),
}
"""pydantic's error types for a value out of its range (``out_of_range``): bound, what is measured, ctx key."""


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Follow ``loc`` through nested models (and list items) to the model that owns its last key."""
    import typing

    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        while typing.get_origin(ann) in (list, typing.Union, getattr(__import__("types"), "UnionType", None)):
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            ann = args[0] if args else None
        current = ann
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _describe(err: ErrorDetails, root: type[BaseModel]) -> pk.Problem:
    """One of pydantic's errors as a problem: its English line, and its kind, place and figures."""
    loc = tuple(err["loc"])
    path = _dotted(loc)
    kind = err["type"]
    secret = bool(loc) and loc[-1] in _SECRET_KEYS
    value = err.get("input")
    got = None if secret or kind == "missing" else pk.toml_value(value)

    def problem(k: str, text: str, **figures: Any) -> pk.Problem:
        return pk.Problem(k, text, loc, figures)

    if kind == "extra_forbidden":
        owner = _model_at(root, loc[:-1])
        key = str(loc[-1])
        names = [n for n in (owner.model_fields if owner else {}) if n != "base_dir"]
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else (f" (valid keys: {', '.join(names)})" if names else "")
        return problem(pk.UNKNOWN_KEY, f"{path}: unknown key{hint}", suggest=close[0] if close else None,
                       top_key=len(loc) == 1 and not isinstance(value, dict))
    if kind == "missing":
        return problem(pk.MISSING_KEY, f"{path}: required key is missing")
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    check = err.get("ctx", {}).get("error")
    if isinstance(check, pk.CheckFailed):  # a check of keys against each other: its kind and figures, as it saw them
        return problem(check.kind, f"{path}: {msg}", **check.figures)
    suggest = _suggestion(err)
    figures: dict[str, Any] = {"got": got, "suggest": suggest}
    k = pk.OTHER
    if kind in _EXPECTED:
        k, figures["expected"] = pk.WRONG_TYPE, _EXPECTED[kind]
    elif kind in _RANGES:
        bound, measure, key = _RANGES[kind]
        k = pk.OUT_OF_RANGE
        figures.update(bound=bound, measure=measure, limit=err.get("ctx", {}).get(key))
    elif kind in ("literal_error", "enum"):
        k, figures["choices"] = pk.NOT_A_CHOICE, _choices(err)
    if kind == "string_pattern_mismatch":
        msg = _PATTERNS.get(str(err.get("ctx", {}).get("pattern", "")), msg)
    elif kind == "list_type" and loc and loc[-1] in _ARRAYS_OF_TABLES:
        header = ".".join(str(p) for p in loc if isinstance(p, str))
        return problem(pk.WRONG_TYPE, f"{path}: write [[{header}]] with double brackets, once above each entry "
                       f"(a single [{header}] is one table, not a list)", expected="tables", table=header, got=None)
    elif kind in ("model_type", "dict_type") and loc and isinstance(loc[-1], str):
        return problem(pk.WRONG_TYPE, f"{path}: must be a [{path}] section (a table of keys), not a single value",
                       expected="table", table=path, got=got)
    elif kind == "path_type":
        msg = "must be a file or folder path in quotes, e.g. \"/var/lib/kiosk\""
    if secret:
        # never echoed: a PIN written where its hash goes would go to the journal (and the USB log export)
        return problem(k, f"{path}: {msg}", **figures)
    if "input" in err and kind not in ("model_type",) and not isinstance(value, (dict, list)):
        hint = f"; did you mean {suggest!r}?" if suggest else ""
        return problem(k, f"{path}: {msg} (got {value!r}{hint})", **figures)
    return problem(k, f"{path}: {msg}", **figures)


def _choices(err: ErrorDetails) -> list[str]:
    """The values a key of fixed choices takes (``'sim', 'nfcpy' or 'pcsc'``, as pydantic lists them)."""
    return re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))


def _suggestion(err: ErrorDetails) -> str | None:
    """The value meant by a misspelt choice (``backend = "pcs"``, ``language = "jp"``, ``log_level = "info"``):
    the closest of the values the key takes, as for an unknown key's name; or by an id or time a slip away."""
    if err["type"] == "string_pattern_mismatch" and isinstance(err["input"], str):
        given = err["input"]
        pattern = str(err.get("ctx", {}).get("pattern", ""))
        # the usual slips: capitals or spaces in an id, "9:00" for "09:00"
        for guess in (given.strip().lower().replace(" ", "-").replace("_", "-"),
                      re.sub(r"^(\d):", r"0\1:", given.strip())):
            if guess != given and pattern and re.match(pattern, guess):
                return guess
        return None
    if err["type"] != "literal_error" or not isinstance(err["input"], str):
        return None

    choices = _choices(err)
    given = err["input"].strip()
    same_but_case = [c for c in choices if c.lower() == given.lower()]
    if same_but_case:
        return same_but_case[0]
    by_lower = {c.lower(): c for c in choices}
    # 0.5: two-letter codes one letter off ("jp" for "ja") count as close; a longer word needs more in common.
    close = difflib.get_close_matches(given.lower(), list(by_lower), n=1, cutoff=0.5)
    return by_lower[close[0]] if close else None


def validate_config(data: dict[str, Any], source: str = "<config>", base_dir: Path | None = None) -> KioskConfig:
    """Validate an already-parsed TOML mapping; raises :class:`ConfigError` listing every problem."""
    if "base_dir" in data:
        raise ConfigError(source, [pk.Problem(pk.UNKNOWN_KEY, "base_dir: unknown key", ("base_dir",))])
    try:
        cfg = KioskConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(e, KioskConfig) for e in exc.errors(include_url=False)]
        raise ConfigError(source, problems) from None
    cfg.base_dir = base_dir if base_dir is not None else Path(".")
    return cfg


def load_config(path: str | os.PathLike | None = None) -> KioskConfig:
    """Load ``path`` (or ``$KIOSK_CONFIG``). Raises :class:`ConfigError` for every kind of bad file."""
    p, raw = read_config_bytes(path)
    return validate_config(parse_toml(p, raw), str(p), p.resolve().parent)


def as_model(cfg: Any) -> KioskConfig:
    """``cfg`` as a :class:`KioskConfig` model: itself if it is one; a plain copy (the running kiosk's, from
    the validated-config cache: kiosk/config/plain.py) validated back into one, for what builds a new config
    from it (a pushed config, ``to_toml``), as is a model holding plain parts (a model's ``model_copy`` would
    stop at them). Raises :class:`ConfigError` if it does not validate."""
    if isinstance(cfg, KioskConfig) and not holds_plain(cfg):
        return cfg
    return validate_config(data_of(cfg, skip=frozenset({"base_dir"})), "<running config>", cfg.base_dir)


def to_toml(cfg: KioskConfig) -> str:
    """Serialise a config back to TOML (``kiosk demo`` records what it ran with); ``load_config`` reads it back.

    Written by tomli-w, the writer that pairs with tomllib: quoting, escapes and table layout are its
    job, not ours. ``None`` has no TOML form, so unset optional keys are left out (they load as unset).
    """
    import tomli_w  # only writing needs it (the kiosk extra); every load_config would pay for it at the top

    return tomli_w.dumps(as_model(cfg).model_dump(mode="json", exclude={"base_dir"}, exclude_none=True))

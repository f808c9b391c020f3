"""Shared pieces for config sections: strict models whose field docstrings are the docs.

Every section derives from :class:`Section`, so unknown keys are errors
(``extra="forbid"``). Each attribute's docstring (the string right under it)
is its documentation, which ``config/kiosk.example.toml`` mirrors; read it
with :func:`field_docs`.

The docstrings are read from the source when asked for, not when the classes
are made: pydantic's ``use_attribute_docstrings`` parses every section's
source at class creation, which cost every start of ``kiosk run`` (a watchdog
restart keeps the lobby screen dark that long) about 40 % of building the
config schema, for text the running kiosk never shows (cold start, #16).

Every error at once, cross-field checks included. pydantic runs a model's ``mode="after"`` validators only
when every field of the model is valid, so a check of two fields against each other (``default_yen`` among
``presets_yen``) went unreported beside a mistake in any other field of the section: the staff member fixed
that one, reloaded, and only then learned of the next. So a section's cross-field checks are methods marked
with :func:`cross_check`, naming the fields they read, and :class:`Section` runs them itself (a
``mode="wrap"`` model validator): on the validated section when its fields are valid, and otherwise on the
fields they name when each of those is valid on its own (checked with the section's own validators), the
check's error then reported beside the others in one :class:`~pydantic.ValidationError`. A check one of
whose fields is itself invalid does not run (that field's own error is the one to fix).
:func:`check_items` does the same for a check across the items of a list (duplicate ids).
"""

from __future__ import annotations

import ast
import contextvars
import functools
import inspect
import textwrap
import typing
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidatorFunctionWrapHandler, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


class Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        validate_default=True,
        frozen=False,
        # Validators are built on a model's first validation, not when the class is made: a start from the
        # validated-config cache (kiosk/config/cache.py) never validates, and skips building them (cold start).
        defer_build=True,
    )

    @model_validator(mode="wrap")
    @classmethod
    def _every_error(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Run the section's :func:`cross_check` methods, beside its fields' errors when some field is invalid."""
        checks = _checks(cls)
        if not checks or data is _ONE_FIELD.get():  # nothing to check, or one field validated on its own
            return handler(data)
        try:
            section = handler(data)
        except ValidationError as exc:
            errors = exc.errors()
            if not isinstance(data, dict):  # not a table at all: that is the one error
                raise
            failed = [tuple(e["loc"]) for e in errors if e["loc"]]
            problems = []
            for check, paths in checks:
                values = _valid_values(cls, data, paths, failed)
                if values is not None:
                    problems += _run(check, _view(values), data)
            if not problems:
                raise
            raise _combined(cls.__name__, errors, problems) from None
        problems = [p for check, _ in checks for p in _run(check, section, data)]
        if problems:
            raise _combined(cls.__name__, [], problems)
        return section


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """Each field of ``model`` and its docstring (inherited fields: from the class that declares them; a field
    without one: its ``Field(description=...)``, or it is left out)."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls is not BaseModel:
            docs.update(_declared_docs(cls))
    out: dict[str, str] = {}
    for name, field in model.model_fields.items():
        doc = docs.get(name) or field.description
        if doc:
            out[name] = doc
    return out


@functools.cache
def _declared_docs(cls: type) -> dict[str, str]:
    """``name: type`` lines of the class body followed by a string literal, as ``inspect.cleandoc`` cleans it."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (a class made at run time)
        return {}
    node = ast.parse(source).body[0]
    if not isinstance(node, ast.ClassDef):
        return {}
    out: dict[str, str] = {}
    for stmt, after in zip(node.body, node.body[1:], strict=False):
        if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            out[stmt.target.id] = inspect.cleandoc(after.value.value)
    return out


# --- every error at once: cross-field checks ----------------------------------------------------------------

_CROSS = "__cross_check_fields__"

_ONE_FIELD: contextvars.ContextVar[Any] = contextvars.ContextVar("kiosk_config_one_field", default=None)
"""The stand-in section one field is being validated on alone (:func:`_validated`): its checks are not run."""

_MISSING = object()

_ERROR_TYPES = frozenset(typing.get_args(core_schema.ErrorType))


def cross_check(*fields: str) -> Callable[[F], F]:
    """Mark a :class:`Section` method as a check of ``fields`` against each other (a field of a nested section
    dotted: ``"square.location_id"``). It raises :class:`kiosk.config.problems.CheckFailed` (a ``ValueError``:
    its English line, at the section's path, and its own kind and figures, which the lobby's fault screen says
    in plain Japanese; a plain ``ValueError`` would be said only as "the value is not right") or returns None.
    :class:`Section` runs it on the validated section; and, when some other field of the section is invalid,
    on a stand-in holding only ``fields``, validated each on its own, so it must read only those. It does not
    run when one of ``fields`` is itself invalid."""
    paths = tuple(tuple(f.split(".")) for f in fields)

    def mark(method: F) -> F:
        setattr(method, _CROSS, paths)
        return method

    return mark


FieldPath = tuple[str, ...]


@functools.cache
def _checks(cls: type[BaseModel]) -> tuple[tuple[Callable[[Any], None], tuple[FieldPath, ...]], ...]:
    """The :func:`cross_check` methods of ``cls`` (inherited ones first), with the fields each reads."""
    found: dict[str, tuple[Callable[[Any], None], tuple[FieldPath, ...]]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in list(vars(klass).items()):
            # functions only: a getattr on pydantic's deferred validator (a mock) would build it
            paths = getattr(value, _CROSS, None) if inspect.isfunction(value) else None
            if paths is not None:
                found[name] = (value, paths)
    return tuple(found.values())


def _touches(path: Sequence[Any], failed: list[tuple[Any, ...]]) -> bool:
    """Whether an error at one of the ``failed`` locations is at ``path``, inside it, or at a table holding it."""
    return any(loc[:len(path)] == tuple(path) or tuple(path[:len(loc)]) == loc for loc in failed)


class _Invalid(Exception):
    """A field that is not valid on its own."""


def _validated(model: type[BaseModel], name: str, raw: Any) -> Any:
    """Field ``name`` of ``model`` validated alone from ``raw`` (its default when ``_MISSING``), by the model's
    own validator (its constraints and field validators); :class:`_Invalid` if it is not valid."""
    field = model.model_fields[name]
    if raw is _MISSING:
        if field.is_required():
            raise _Invalid(name)
        raw = field.get_default(call_default_factory=True, validated_data={})  # validated: validate_default
    stand_in = model.model_construct()
    token = _ONE_FIELD.set(stand_in)
    try:
        model.__pydantic_validator__.validate_assignment(stand_in, name, raw)
    except ValidationError:
        raise _Invalid(name) from None
    finally:
        _ONE_FIELD.reset(token)
    return getattr(stand_in, name)


def _value_at(model: type[BaseModel], raw: dict[str, Any], path: FieldPath) -> Any:
    """The value at ``path`` of a section read from ``raw``, its fields validated one at a time."""
    name, rest = path[0], path[1:]
    value = raw.get(name, _MISSING)
    sub = model.model_fields[name].annotation
    if rest and isinstance(value, dict) and isinstance(sub, type) and issubclass(sub, BaseModel):
        return _value_at(sub, value, rest)
    value = _validated(model, name, value)
    for part in rest:
        value = getattr(value, part)
    return value


def _valid_values(model: type[BaseModel], raw: dict[str, Any], paths: tuple[FieldPath, ...],
                  failed: list[tuple[Any, ...]]) -> dict[FieldPath, Any] | None:
    """The values at ``paths`` when each is valid on its own; None when one of them is not."""
    if any(_touches(p, failed) for p in paths):
        return None
    try:
        return {p: _value_at(model, raw, p) for p in paths}
    except _Invalid:
        return None


def _view(values: dict[FieldPath, Any]) -> SimpleNamespace:
    """A stand-in for a section holding only ``values`` (nested sections as stand-ins too)."""
    root = SimpleNamespace()
    for path, value in values.items():
        node = root
        for part in path[:-1]:
            node = node.__dict__.setdefault(part, SimpleNamespace())
        setattr(node, path[-1], value)
    return root


def _run(check: Callable[[Any], None], section: Any, data: Any) -> list[InitErrorDetails]:
    """``check`` on ``section``: its error as pydantic reports a validator's, at the section, or nothing."""
    try:
        check(section)
    except PydanticCustomError as exc:
        return [{"type": exc, "loc": (), "input": data}]
    except ValueError as exc:
        return [{"type": "value_error", "loc": (), "input": data, "ctx": {"error": exc}}]
    return []


def _combined(title: str, errors: list[Any], problems: list[InitErrorDetails]) -> ValidationError:
    """One :class:`ValidationError` holding ``errors`` (as ``ValidationError.errors()`` gave them: same types,
    locations, inputs and messages) and then ``problems``."""
    details: list[InitErrorDetails] = []
    for e in errors:
        if e["type"] in _ERROR_TYPES:
            detail: InitErrorDetails = {"type": e["type"], "loc": e["loc"], "input": e["input"]}
            if "ctx" in e:
                detail["ctx"] = e["ctx"]
        else:  # a PydanticCustomError: its message as it was rendered
            detail = {"type": PydanticCustomError(e["type"], e["msg"]), "loc": e["loc"], "input": e["input"]}
        details.append(detail)
    return ValidationError.from_exception_data(title, details + problems)


def check_items(value: Any, handler: ValidatorFunctionWrapHandler, item: type[M], fields: tuple[str, ...],
                check: Callable[[list[Any]], None]) -> list[M]:
    """The body of a ``mode="wrap"`` field validator of a list of ``item`` sections: ``check`` (which raises
    ``ValueError``) runs on the validated list, and, when some item is invalid, on stand-ins of the items
    whose ``fields`` are each valid on their own (None in place of the others, so that the items keep their
    numbers), its error then reported beside the items' errors (pydantic runs a ``mode="after"`` field
    validator only when every item is valid)."""
    try:
        items: list[M] = handler(value)
    except ValidationError as exc:
        errors = exc.errors()
        if not isinstance(value, list):
            raise
        failed = [tuple(e["loc"]) for e in errors if e["loc"]]
        paths = tuple(tuple(f.split(".")) for f in fields)
        views: list[Any] = []  # one per item, in place (None: not checked), so a check can number them
        for i, raw in enumerate(value):
            if isinstance(raw, item):  # a model already (taken as it is, as pydantic takes it)
                views.append(raw)
                continue
            if not isinstance(raw, dict):
                views.append(None)
                continue
            # the item's own errors (not one at the item itself: a cross-field check of the item)
            values = _valid_values(item, raw, paths, [loc[1:] for loc in failed if len(loc) > 1 and loc[0] == i])
            views.append(_view(values) if values is not None else None)
        problems = _run(check, views, value)
        if not problems:
            raise
        raise _combined(item.__name__, errors, problems) from None
    check(items)
    return items

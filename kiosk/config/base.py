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
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        validate_default=True,
        frozen=False,
        # Validators are built on a model's first validation, not when the class is made: a start from the
        # validated-config cache (kiosk/config/cache.py) never validates, and skips building them (cold start).
        defer_build=True,
    )


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

"""Request-body schemas for hand-written OpenAPI entries whose references resolve.

A route that reads its raw body (signatures cover exact bytes) describes the body with
``openapi_extra``; pydantic's ``model_json_schema()`` puts nested models under a local ``$defs`` and
refers to them as ``#/$defs/...``, which means nothing at the root of the OpenAPI document, so a
client or a fuzzer (schemathesis) cannot follow them and never builds a valid batch. :func:`body_schema`
points those references at ``#/components/schemas/...`` and :func:`install` adds the models there.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

_DEFS: dict[str, Any] = {}


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with nested models as OpenAPI components (added by :func:`install`)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    _DEFS.update(schema.pop("$defs", {}))
    return schema


def install(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document with every model :func:`body_schema` met among its components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = generate()
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in _DEFS.items():
                schemas.setdefault(name, schema)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

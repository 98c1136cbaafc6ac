"""The OpenAPI document with the served model's own request body, and /docs that work offline.

FastAPI documents the application endpoints with a generic object (the body is validated
against whichever model is being served, so it cannot be typed at import time). Here the
document is rebuilt whenever the served model changes: ``components.schemas.Application`` is the
JSON Schema of that model's request (every attribute with its type, categories and range; no
other field), ``POST /v1/applications`` takes one, ``POST /v1/score`` one or a list, and the
example is the model's first golden input, so "Try it out" in /docs sends a valid application.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from loanrisk.api.decide import MAX_BATCH
from loanrisk.serving import ModelHolder, Served

APPLICATION = "Application"


def with_model(doc: dict[str, Any], served: Served) -> dict[str, Any]:
    """``doc`` with the request bodies of the application endpoints typed by ``served``."""
    doc = copy.deepcopy(doc)
    body = served.validator.json_schema()
    defs = body.pop("$defs", {})
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    # the model's own definitions, prefixed so that none replaces a schema of the API's
    text = json.dumps({**{f"{APPLICATION}_{k}": v for k, v in defs.items()},
                       APPLICATION: body}).replace('"#/$defs/',
                                                   f'"#/components/schemas/{APPLICATION}_')
    schemas.update(json.loads(text))
    s = served.scorer
    schemas[APPLICATION]["description"] = (
        f"One application for {s.name} v{s.version} ({s.model_kind}): its attributes and the "
        "channel metadata; nothing else is accepted.")
    ref = {"$ref": f"#/components/schemas/{APPLICATION}"}
    golden = (s.manifest.get("golden") or {}).get("inputs") or []
    example = {**golden[0], "channel": "web"} if golden else None
    bodies = {"/v1/applications": ref,
              "/v1/score": {"anyOf": [ref, {"type": "array", "items": ref, "minItems": 1,
                                            "maxItems": MAX_BATCH}]}}
    for path, schema in bodies.items():
        content = (doc.get("paths", {}).get(path, {}).get("post", {})
                   .get("requestBody", {}).get("content", {}))
        if "application/json" in content:
            content["application/json"] = {"schema": schema,
                                           **({"example": example} if example else {})}
    return doc


def install(app: FastAPI, holder: ModelHolder) -> None:
    """Serve ``app.openapi()`` typed by the model in ``holder``, rebuilt when it changes."""
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if "base" not in cache:
            cache["base"] = get_openapi(title=app.title, version=app.version,
                                        description=app.description, routes=app.routes)
        served = holder.current
        key = served.scorer.sha256 if served is not None else None
        if cache.get("key", "") != key:
            cache["doc"] = with_model(cache["base"], served) if served else cache["base"]
            cache["key"] = key
        return dict(cache["doc"])

    app.openapi = openapi  # type: ignore[method-assign]

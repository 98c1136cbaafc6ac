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
import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from loanrisk.api.decide import MAX_BATCH
from loanrisk.api.models import ErrorResponse, InternalError, Message
from loanrisk.serving import ModelHolder, Served
from loanrisk.store.outcomes import outcome_lookup

APPLICATION = "Application"
REQUEST_ID_HEADER = {"description": "The request's id: the caller's X-Request-ID when it is a "
                     "plain token of at most 128 characters, else a new one; service log lines "
                     "name it.", "required": True,
                     "schema": {"type": "string", "minLength": 1, "maxLength": 128}}
RETRY_AFTER = {"description": "Seconds to wait before retrying.", "required": True,
               "schema": {"type": "string", "pattern": "^[0-9]+$"}}
# answers any operation can give, whatever its route says (middleware, handlers)
COMMON: dict[str, tuple[str, str]] = {
    "413": ("Message", "Body larger than the configured limit (LOANRISK_BODY_LIMIT_BYTES)."),
    "500": ("InternalError", "An unexpected error: a generic body with the request id; the "
            "service's log names the request id and the error's type, nothing of the request."),
}
KEYED: dict[str, tuple[str, str]] = {
    "401": ("Message", "Missing, unknown, revoked or expired API key."),
    "429": ("Message", "Rate limit for this API key; see the Retry-After header."),
    "503": ("Message", "No model loaded yet, or the application store is unavailable."),
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    """Every answer the service gives, in the document: the errors every operation can answer
    (413, 500; with an API key 401, 429 and 503; with parameters or a body 422), the headers
    (X-Request-ID on every answer, Retry-After on 429), and the schemas they use."""
    doc = copy.deepcopy(doc)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in (Message, ErrorResponse, InternalError):
        js = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in js.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas.setdefault(model.__name__, js)
    for path, path_item in doc.get("paths", {}).items():
        for method, op in path_item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = op.setdefault("responses", {})
            extra = dict(COMMON)
            if op.get("security"):
                extra.update(KEYED)
            elif path.startswith("/v1/"):  # the served schema: 503 until a model is loaded
                extra["503"] = KEYED["503"]
            if op.get("parameters") or op.get("requestBody"):
                extra["422"] = ("ErrorResponse", "Invalid parameters or body: each field and "
                                "why, never the value.")
            for code, (model_name, text) in extra.items():
                responses.setdefault(code, {"description": text, "content": {
                    "application/json": {"schema": _ref(model_name)}}})
            for code, answer in responses.items():
                headers = answer.setdefault("headers", {})
                headers.setdefault("X-Request-ID", REQUEST_ID_HEADER)
                if code == "429":
                    headers.setdefault("Retry-After", RETRY_AFTER)
    return doc


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
    _outcome_words(schemas, served)
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


_SPACE = "[^\\S\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*"  # what outcome words are stripped of


def _any_case(word: str) -> str:
    """``word`` as a regular expression matching it in any letter case (no inline flags in
    JSON Schema's dialect)."""
    out = []
    for ch in word:
        lo, up = ch.lower(), ch.upper()
        if lo != up and len(lo) == len(up) == 1:
            out.append(f"[{lo}{up}]")
        else:
            out.append(re.escape(ch) if not ch.isalnum() and ch != " " else ch)
    return "".join(out)


def outcome_pattern(classes: list[str]) -> str:
    """The words an outcome of the served model may be (store.outcomes), as a pattern."""
    words = sorted(outcome_lookup(classes), key=lambda w: (-len(w), w))
    return f"^{_SPACE}(?:{'|'.join(_any_case(w) for w in words)}){_SPACE}$"


def _outcome_words(schemas: dict[str, Any], served: Served) -> None:
    pattern = outcome_pattern([str(c) for c in served.scorer.classes])
    for name in ("OutcomeCreate",):  # a batch row's word is checked row by row (skip_invalid)
        prop = schemas.get(name, {}).get("properties", {}).get("outcome")
        if prop is not None:
            prop["pattern"] = pattern


def install(app: FastAPI, holder: ModelHolder) -> None:
    """Serve ``app.openapi()`` typed by the model in ``holder``, rebuilt when it changes."""
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if "base" not in cache:
            cache["base"] = complete(get_openapi(title=app.title, version=app.version,
                                                 description=app.description,
                                                 routes=app.routes))
        served = holder.current
        key = served.scorer.sha256 if served is not None else None
        if cache.get("key", "") != key:
            cache["doc"] = with_model(cache["base"], served) if served else cache["base"]
            cache["key"] = key
        return dict(cache["doc"])

    app.openapi = openapi  # type: ignore[method-assign]

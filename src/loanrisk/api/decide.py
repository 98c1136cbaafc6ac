"""Validate raw bodies against the served model and score them (shared by score/applications)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from loanrisk.scoring.scorer import Decision
from loanrisk.scoring.validation import METADATA
from loanrisk.serving import Served

MAX_BATCH = 1000


class InvalidRequest(Exception):  # noqa: N818 - turned into a 422 by the app
    """The body does not fit the served schema; ``errors`` name each bad field and why."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


def parse_json(body: bytes) -> Any:
    """The JSON body, or InvalidRequest naming the problem (without echoing the body)."""
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        msg = f"invalid JSON at position {exc.pos}"
    except UnicodeDecodeError as exc:
        msg = f"not UTF-8 text at byte {exc.start}"
    except RecursionError:
        msg = "JSON nested too deeply"
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        msg = f"invalid JSON ({str(exc).split(':')[0][:80]})"
    raise InvalidRequest([{"loc": ["body"], "field": "body", "type": "json_invalid",
                           "msg": msg}])


def _surrogate_at(data: Any) -> list[str] | None:
    """Where in ``data`` a string (or a key) holds a lone surrogate: the path of names."""
    items = (data.items() if isinstance(data, dict) else
             enumerate(data) if isinstance(data, list) else ())
    for k, v in items:
        if isinstance(k, str) and not _encodes(k):
            return [k]
        if isinstance(v, str) and not _encodes(v):
            return [str(k)]
        below = _surrogate_at(v)
        if below is not None:
            return [str(k), *below]
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def request_hash(data: Any) -> str:
    """SHA-256 of the canonical JSON of a body (key order and spacing do not matter)."""
    canon = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        raw = canon.encode()
    except UnicodeEncodeError:  # "\ud800" alone: valid JSON, not text any store can keep
        loc = _surrogate_at(data) or []
        raise InvalidRequest([{"loc": ["body", *loc], "field": loc[-1] if loc else "body",
                               "type": "string_unicode",
                               "msg": "a string holds an unpaired UTF-16 surrogate (\\ud800-"
                                      "\\udfff alone): send valid Unicode"}]) from None
    return hashlib.sha256(raw).hexdigest()


def validate_all(served: Served, items: list[Any], *, batch: bool) -> list[dict[str, Any]]:
    """Every item validated against the served schema, as dicts in input order.

    Raises InvalidRequest listing the errors of ALL items (for an empty or oversized batch too).
    """
    if batch and not items:
        raise InvalidRequest([{"loc": ["body"], "field": "body", "type": "too_short",
                               "msg": "an empty list: send at least one application"}])
    if len(items) > MAX_BATCH:
        raise InvalidRequest([{"loc": ["body"], "field": "body", "type": "too_long",
                               "msg": f"at most {MAX_BATCH} applications per request"}])
    errors: list[dict[str, Any]] = []
    valid: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        obj, errs = served.validator.validate(item, index=i if batch else None)
        if errs:
            errors.extend(errs)
        elif obj is not None:
            valid.append(obj.model_dump())
    if errors:
        raise InvalidRequest(errors)
    return valid


def decide(served: Served, items: list[Any], *, batch: bool
           ) -> list[tuple[dict[str, Any], Decision]]:
    """Validate every item (see ``validate_all``) and score them in one onnxruntime call.

    Returns (validated body as a dict, decision) pairs in input order.
    """
    valid = validate_all(served, items, batch=batch)
    return list(zip(valid, served.scorer.score(valid), strict=True))


def model_ref(served: Served) -> dict[str, Any]:
    """The ModelRef of a served model."""
    s = served.scorer
    return {"name": s.name, "version": s.version, "sha256": s.sha256}


def decision_public(served: Served, d: Decision) -> dict[str, Any]:
    """A DecisionPublic as a dict."""
    return {"decision": d.decision, "probabilities": d.probabilities, "risk_score": d.risk_score,
            "risk_tier": d.risk_tier, "reasons": d.reasons, "model": model_ref(served)}


def split_metadata(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(applicant attributes, channel metadata) of a validated body."""
    meta = {k: data.get(k) for k in METADATA}
    attrs = {k: v for k, v in data.items() if k not in METADATA}
    return attrs, meta


def body_doc(*, batch: bool) -> dict[str, Any]:
    """The request body in OpenAPI before a model is loaded (then loanrisk.api.openapi types it
    with the served model's own schema)."""
    one = {"type": "object", "description": "One application (GET /v1/schema: its fields)."}
    schema = ({"anyOf": [one, {"type": "array", "items": one, "minItems": 1,
                               "maxItems": MAX_BATCH}]} if batch else one)
    return {"requestBody": {
        "required": True,
        "description": "The applicant attributes of the served model's schema (GET /v1/schema "
                       "gives the exact fields, types, categories and ranges) plus channel "
                       "metadata: channel, applicant_id, external_ref. Unknown fields are "
                       "rejected." + (f" One application, or a list of 1 to {MAX_BATCH}."
                                      if batch else ""),
        "content": {"application/json": {"schema": schema}},
    }}

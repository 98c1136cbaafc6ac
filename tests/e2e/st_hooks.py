"""Schemathesis hooks for the adversarial suite (SCHEMATHESIS_HOOKS=st_hooks).

The one rule a schema cannot say: an Idempotency-Key names one body (the same key with another
body is a 422, by design). A schema-valid request is sent with a key derived from its body, so
valid data never collides with another body's key; invalid requests keep whatever was generated.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import schemathesis


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    headers = case.headers or {}
    meta = case.meta
    positive = meta is not None and meta.generation.mode.is_positive
    if positive and "Idempotency-Key" in headers:
        try:
            body = json.dumps(case.body, sort_keys=True, default=str)
        except (TypeError, ValueError):
            body = repr(case.body)
        headers["Idempotency-Key"] = hashlib.sha256(body.encode()).hexdigest()

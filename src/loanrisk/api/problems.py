"""Error answers: bounded in size, naming fields and never echoing a submitted value.

Every list of field errors the service answers (422s of the application bodies, of FastAPI's own
body, header, query and path validation, of outcome batches) goes through :func:`error_body`:

* at most ``MAX_ERRORS`` entries are listed; ``errors_total`` says how many there were;
* each ``loc`` part and ``field`` is a string of at most ``MAX_NAME`` characters (longer names
  end in "…"), control characters shown as "?"; ``msg`` at most ``MAX_MSG`` characters;
* the whole body stays under ``MAX_BODY`` bytes whatever the input (entries are dropped from
  the end until it does).

So a 4 KB body of a thousand empty applications, or 65 KB of unknown keys, answers a few KB.
The messages themselves come from the service's code or from pydantic's rule descriptions
(:func:`loanrisk.scoring.validation.error_message` strips the parts that quote input).
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.responses import JSONResponse

MAX_ERRORS = 50
MAX_NAME = 64
MAX_MSG = 300
MAX_LOC = 8
MAX_BODY = 32 * 1024  # bytes; the guarantee is 64 KiB
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def short(name: Any, limit: int = MAX_NAME) -> str:
    """A field name (or loc part) as a bounded, printable string."""
    text = _CONTROL.sub("?", str(name))
    return text if len(text) <= limit else text[:limit] + "…"


def _entry(err: dict[str, Any]) -> dict[str, Any]:
    loc = [short(x) for x in err.get("loc", ())]
    if len(loc) > MAX_LOC:
        loc = [*loc[:MAX_LOC - 1], "…"]
    out: dict[str, Any] = {"loc": loc, "field": short(err.get("field") or ".".join(loc)),
                           "msg": short(err.get("msg") or "invalid", MAX_MSG)}
    if err.get("type") is not None:
        out["type"] = short(err["type"])
    return out


def error_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"detail": [...], "errors_total": N}`` bounded as the module says."""
    listed = [_entry(e) for e in errors[:MAX_ERRORS]]
    body = {"detail": listed, "errors_total": len(errors)}
    while listed and len(json.dumps(body, ensure_ascii=False).encode()) > MAX_BODY:
        listed.pop()
    return body


def error_response(errors: list[dict[str, Any]], status_code: int = 422,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error answer of :func:`error_body`."""
    return JSONResponse(error_body(errors), status_code=status_code, headers=headers)


def message_response(detail: str, status_code: int,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error answer with a plain message (bounded too)."""
    return JSONResponse({"detail": short(detail, 1000)}, status_code=status_code,
                        headers=headers)

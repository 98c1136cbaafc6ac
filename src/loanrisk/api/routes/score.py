"""POST /v1/score: the same decision as an application, not stored (what-if tools)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from loanrisk.api.decide import body_doc, decision_public, parse_json, validate_all
from loanrisk.api.deps import CallDep, channel_of
from loanrisk.api.models import DecisionPublic, Message, ValidationErrorResponse
from loanrisk.serving.decide import decide

router = APIRouter(prefix="/v1", tags=["score"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "Missing, unknown, revoked or expired API key."},
    403: {"model": ValidationErrorResponse, "description": "A channel this API key may not "
          "submit for (the `channel` field is named, never its value)."},
    413: {"model": Message, "description": "Body larger than the configured limit."},
    422: {"model": ValidationErrorResponse, "description": "Each bad field and why."},
    429: {"model": Message, "description": "Rate limit; see the Retry-After header."},
    503: {"model": Message, "description": "No model loaded yet."},
}


@router.post(
    "/score",
    summary="Score one application or a batch, without storing",
    description="Validates the body against the served model's schema and returns the decision, "
                "class probabilities, risk tier and reasons. Send one application (an object) or "
                "a list of them (a batch, up to 1000): the answer has the same shape. A `channel` "
                "must be one the API key is allowed (else 403), as for applications.",
    response_model=DecisionPublic | list[DecisionPublic],
    responses=ERRORS,
    openapi_extra=body_doc(batch=True),
)
async def score(request: Request, call: CallDep) -> Any:
    served, metrics = call.served, call.service.metrics
    data = parse_json(await request.body())
    batch = isinstance(data, list)
    valid = validate_all(served, data if batch else [data], batch=batch)
    channel_of(call.key, valid, batch=batch)  # the same channel rule as applications (403)
    out = []
    for routed in decide(served, valid):  # the champion's decision (never a challenger's)
        d = routed.served
        metrics.decided("score", d.decision, d.risk_tier)
        out.append(decision_public(served, d))
    # a plain JSONResponse: the dicts are already DecisionPublic-shaped (skips re-validation)
    return JSONResponse(out if batch else out[0])

"""POST /v1/score: the same decision as an application, not stored (what-if tools)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from loanrisk.api.decide import body_doc, decide, decision_public, parse_json
from loanrisk.api.deps import CallDep
from loanrisk.api.models import DecisionPublic, Message, ValidationErrorResponse

router = APIRouter(prefix="/v1", tags=["score"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "Missing, unknown, revoked or expired API key."},
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
                "a list of them (a batch, up to 1000): the answer has the same shape.",
    response_model=DecisionPublic | list[DecisionPublic],
    responses=ERRORS,
    openapi_extra=body_doc(batch=True),
)
async def score(request: Request, call: CallDep) -> Any:
    served, metrics = call.served, call.service.metrics
    data = parse_json(await request.body())
    batch = isinstance(data, list)
    results = decide(served, data if batch else [data], batch=batch)
    out = []
    for _attrs, d in results:
        metrics.decided("score", d.decision, d.risk_tier)
        out.append(decision_public(served, d))
    # a plain JSONResponse: the dicts are already DecisionPublic-shaped (skips re-validation)
    return JSONResponse(out if batch else out[0])

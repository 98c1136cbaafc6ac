"""Liveness, readiness, Prometheus metrics and the served schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from loanrisk.api.deps import ServedDep, ServiceDep
from loanrisk.api.models import Message, ReadyPublic

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness", response_model=Message,
            description="200 while the process runs (whether or not a model is loaded).")
async def health() -> Any:
    return {"detail": "ok"}


@router.get("/ready", summary="Readiness", response_model=ReadyPublic,
            responses={503: {"model": ReadyPublic, "description": "No model loaded and warmed."}},
            description="200 once a model is loaded, verified (SHA-256, golden inputs) and "
                        "warmed; 503 until then, with the reason.")
async def ready(service: ServiceDep) -> Any:
    served = service.holder.current
    if served is None or not service.holder.ready:
        error = service.holder.last_error if served is None else "loading the challenger"
        return JSONResponse({"ready": False, "model": None, "error": error}, status_code=503)
    holder = service.holder
    challenger = holder.challenger_status() if holder.policy.mode != "off" or \
        holder.policy.rollback_reason else None
    return {"ready": True, "model": served.scorer.describe(), "error": holder.last_error,
            "challenger": challenger}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            description="Requests and latency histograms by route and status, decisions by "
                        "class and tier, the model version in use (loanrisk_model_info), "
                        "challenger scorings and canary rollbacks, and drift (PSI per "
                        "attribute, level) from the newest drift report of the served model.")
async def metrics(service: ServiceDep) -> Response:
    return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/schema", summary="The application schema of the served model",
            tags=["score"],
            description="JSON Schema of an application body: fields, types, allowed categories, "
                        "numeric ranges, which are required. Changes when the model changes.")
async def application_schema(served: ServedDep) -> Any:
    return served.validator.json_schema()

"""The FastAPI app factory: thin wiring of routers, middleware, state and error handlers."""

from __future__ import annotations

import functools
import gc
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path, get_route_path

from loanrisk import __version__
from loanrisk.api import openapi
from loanrisk.api.audit import RefusalAuditMiddleware
from loanrisk.api.decide import InvalidRequest
from loanrisk.api.deps import Service
from loanrisk.api.drift import DriftGauges
from loanrisk.api.metrics import Metrics, MetricsMiddleware
from loanrisk.api.middleware import (
    BodyLimitMiddleware,
    LastResortMiddleware,
    RequestIdMiddleware,
    install_log_request_ids,
)
from loanrisk.api.problems import error_response, message_response
from loanrisk.api.ratelimit import make_limiter
from loanrisk.api.routes import admin, applications, health, score
from loanrisk.config import Settings, get_settings
from loanrisk.errors import LoanriskError
from loanrisk.scoring.validation import error_message
from loanrisk.serving import ModelHolder
from loanrisk.store import Store, StoreError

log = logging.getLogger(__name__)

DESCRIPTION = """\
Every channel (web, mobile, chatbot, call center, mail) posts applications here. Each one is
validated against the schema the champion model was trained with, decided at once (grade or
approve/decline, probabilities, risk tier, plain-language reasons) and stored with its decision
in one transaction. Authenticate with `Authorization: Bearer <key>` (`loanrisk keys create`).
"""


def create_app(settings: Settings | None = None, *, model_name: str | None = None,
               model_dir: Path | None = None, store: Store | None = None,
               start_model: bool = True) -> FastAPI:
    """Build the decision service.

    ``model_dir`` serves a local model version directory (no registry); ``model_name`` serves
    the registry's champion of that model and follows it (polling every
    ``settings.poll_seconds``). The model loads in the background: /ready answers 503 until it
    is verified and warmed. Raises StoreError when the database cannot be opened.
    """
    settings = settings or get_settings()
    if model_dir is None and model_name is None:
        raise LoanriskError("give a registered model name (--model NAME) or a model version "
                            "directory (--model-dir PATH)")
    store = store or Store(settings.resolved_database_url)
    if not any(k.active() for k in store.list_keys()):
        log.warning("the store has no active API key: every /v1 request will get 401; create one "
                    "with `loanrisk keys create --channel web` (same --database)")
    metrics = Metrics()
    holder = ModelHolder(settings, model_name=model_name,
                         model_dir=Path(model_dir) if model_dir else None, records=store)
    holder.listeners.append(metrics.on_swap)
    holder.rollback_listeners.append(metrics.rolled_back)
    drift = DriftGauges(holder, settings.model_copy(update={"database_url": store.url}))
    metrics.add_collector(drift)
    limiter = make_limiter(settings.rate_limit_url, settings.rate_limit_per_minute,
                           on_fallback=metrics.rate_limit_fallbacks.inc)
    service = Service(settings=settings, store=store, holder=holder, metrics=metrics,
                      limiter=limiter)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if start_model:
            holder.start()
            drift.start()
        store.start_checkpointer()
        await limiter.ping()  # an unreachable Redis is a warning, never a failed start
        # start-up objects (modules, routes, models) leave the collector's scans; `serve` turns
        # the collector off while it imports (a fifth of the start-up time) and back on here
        gc.freeze()
        gc.enable()
        yield
        gc.unfreeze()
        await limiter.close()
        store.stop_checkpointer()
        drift.stop()
        holder.stop()
        metrics.worker_exited()

    # /docs and /redoc from files inside the package: they work on a network without internet
    app = FastAPIOffline(title="loanrisk decision service", version=__version__,
                         description=DESCRIPTION, lifespan=lifespan)
    openapi.install(app, holder)
    app.state.service = service
    app.state.drift = drift
    for router in (applications.router, score.router, admin.router, health.router):
        app.include_router(router)
    app.add_exception_handler(InvalidRequest, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_fields)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(StoreError, _store_down)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, _store_down)  # type: ignore[arg-type]
    # added innermost first: metrics see every answer (413s too), each carrying its request id
    install_log_request_ids()
    app.add_middleware(LastResortMiddleware)  # an unexpected error: 500, logged by type only
    app.add_middleware(BodyLimitMiddleware, limit=settings.body_limit_bytes)
    app.add_middleware(RefusalAuditMiddleware, store=store)  # refused submissions, 413s too
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """The app each `serve --workers N` worker builds (uvicorn imports this by name).

    Settings come from the LOANRISK_* environment the parent set; the model from
    ``LOANRISK_SERVE_MODEL`` (registered name) or ``LOANRISK_SERVE_MODEL_DIR``.
    """
    import os

    from loanrisk.api.middleware import configure_service_logging

    configure_service_logging()  # a spawned worker has none of the parent's logging set-up
    model = os.environ.get("LOANRISK_SERVE_MODEL") or None
    model_dir = os.environ.get("LOANRISK_SERVE_MODEL_DIR") or None
    return create_app(get_settings(), model_name=model,
                      model_dir=Path(model_dir) if model_dir else None)


async def _invalid(_request: Request, exc: InvalidRequest) -> JSONResponse:
    return error_response(exc.errors)


def _where(part: str) -> bool:
    return part not in ("body", "query", "path", "header")


async def _invalid_fields(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422s (outcome, admin bodies, headers, query and path parameters) in the
    service's format: bounded, naming fields, never echoing input."""
    errors = []
    is_json = "json" in request.headers.get("content-type", "")
    for e in exc.errors():
        loc = [str(x) for x in e.get("loc", ())]
        field = ".".join(x for x in loc if _where(x)) or "body"
        kind, msg = e.get("type"), error_message(e)
        if kind == "json_invalid":  # FastAPI puts the error's position where a field would be
            loc, field = ["body"], "body"
            msg = f"invalid JSON at position {e.get('loc', ('', '?'))[-1]}"
        elif loc == ["body"] and not is_json:
            msg = f"{msg}; send the body as JSON with the header Content-Type: application/json"
        errors.append({"loc": loc, "field": field, "type": kind, "msg": msg})
    return error_response(errors)


_METHODS = ("get", "put", "post", "delete", "patch")


@functools.lru_cache(maxsize=256)
def _path_regex(template: str) -> re.Pattern[str]:
    return compile_path(template)[0]


def _allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI document gives this path (Starlette's 405 names only the first
    route's), HEAD with GET; empty for a path the document does not list."""
    path = get_route_path(request.scope)
    for template, item in request.app.openapi().get("paths", {}).items():
        if _path_regex(template).match(path):
            methods = {m.upper() for m in item if m in _METHODS}
            return sorted(methods | ({"HEAD"} if "GET" in methods else set()))
    return []


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """The service's error bodies for every HTTP error: a body FastAPI cannot decode (bad UTF-8,
    JSON nested too deeply) is the 422 of the application endpoints, a 405 lists every method
    of the path in Allow, and a list detail is bounded like every field error."""
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        return error_response([{"loc": ["body"], "field": "body", "type": "json_invalid",
                                "msg": "the body is not valid JSON (or not UTF-8 text, "
                                       "or nested too deeply)"}])
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request)) or headers.get("Allow", "")
    if exc.status_code in (204, 304):
        return await http_exception_handler(request, exc)
    if isinstance(exc.detail, list):
        return error_response(exc.detail, exc.status_code, headers)
    return message_response(str(exc.detail), exc.status_code, headers)


async def _store_down(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("store error: %s", type(exc).__name__)
    return JSONResponse({"detail": "the application store is unavailable; retry with the same "
                                   "Idempotency-Key"}, status_code=503)

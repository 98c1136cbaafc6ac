"""Admin (admin API key only): registered versions, promote / roll back through the gate, reload."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from loanrisk.api.audit import audit
from loanrisk.api.decide import InvalidRequest, model_ref
from loanrisk.api.deps import AdminDep, ServiceDep
from loanrisk.api.models import (
    AuditPage,
    ChallengerRequest,
    ChallengerStatus,
    ErrorResponse,
    Message,
    OutcomeBatch,
    OutcomeBatchResult,
    PromoteRequest,
    PromotionPublic,
    ReadyPublic,
    ValidationErrorResponse,
    VersionPublic,
)
from loanrisk.api.query import SinceQuery, parse_since
from loanrisk.api.routes.score import ERRORS as SCORE_ERRORS
from loanrisk.errors import (
    LoanriskError,
    RegistryError,
    RegistryUnavailable,
)
from loanrisk.scoring.validation import IDENTIFIER
from loanrisk.serving import ModelHolder, public_text
from loanrisk.serving.challenger import ChallengerPolicy
from loanrisk.store import KeyInfo

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/admin", tags=["admin"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "Missing or unknown API key."},
    403: {"model": Message, "description": "Not an admin key."},
    409: {"model": Message, "description": "The service serves a local model directory."},
    422: {"model": ErrorResponse, "description": "The registry or the gate refused (detail: "
          "why, in words), or the body is invalid (detail: each field and why)."},
    503: {"model": Message, "description": "The tracking server cannot be reached."},
}


def _registry_name(holder: ModelHolder) -> str:
    if not holder.registry_mode or holder.model_name is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "this service serves a local model "
                            "directory (--model-dir), not a registered model")
    return holder.model_name


def _refused(exc: LoanriskError | str) -> HTTPException:
    """422 for a refusal (gate, unknown version); 503 when the registry cannot be reached."""
    if isinstance(exc, RegistryUnavailable):
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                             f"{public_text(str(exc))}; the service keeps serving its current "
                             "champion; retry when the tracking server is back")
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, public_text(str(exc)))


def _registry_call(fn: Any) -> Any:
    """Run a registry call; MLflow's own failures become RegistryUnavailable."""
    from mlflow.exceptions import MlflowException

    from loanrisk.registry import unavailable

    try:
        return fn()
    except MlflowException as exc:
        raise unavailable("the tracking server", exc) from exc


def _audit(service: ServiceDep, action: str, admin: KeyInfo, status_code: int = 200,
           **what: Any) -> None:
    """Each admin action (who, what, why): one row in the store's access audit (committed
    before the answer) and one WARNING log line."""
    details = " ".join(f"{k}={v}" for k, v in what.items())
    log.warning("admin %s by key %s (%s): %s", action, admin.id, admin.channel, details)
    audit(service.store, f"admin {action}", admin, status=status_code, **what)


@router.get("/versions", summary="Registered versions of the served model",
            description="Every registered version of the served model: version, model family, "
                        "metrics, SHA-256, creation time and aliases (champion).",
            response_model=list[VersionPublic], responses=ERRORS)
def versions(_admin: AdminDep, service: ServiceDep) -> Any:
    from loanrisk.registry import Registry

    name = _registry_name(service.holder)
    try:
        return [v.to_dict() for v in
                _registry_call(lambda: Registry(service.settings).list_versions(name))]
    except RegistryError as exc:
        raise _refused(exc) from exc


def _result(service: ServiceDep, res: Any) -> dict[str, Any]:
    served = service.holder.reload()  # load the new champion now (verified, then swapped)
    return {"name": res.name, "version": res.version, "promoted": res.promoted,
            "previous": res.previous, "reason": res.reason,
            "serving": model_ref(served) if served else None}


@router.post("/promote", summary="Promote a version through the gate, then reload",
             description="Same gate as `loanrisk promote`: the candidate must beat the champion "
                         "on the same evaluation data unless force is set. The new champion is "
                         "loaded, verified and swapped in before this answers. A refusal is a "
                         "422 whose detail is the gate's reason.",
             response_model=PromotionPublic, responses=ERRORS)
def promote(body: PromoteRequest, admin: AdminDep, service: ServiceDep) -> Any:
    from loanrisk.registry import Registry

    name = _registry_name(service.holder)
    try:
        res = _registry_call(lambda: Registry(service.settings).promote(
            name, body.version, force=body.force))
    except RegistryUnavailable as exc:
        raise _refused(exc) from exc
    except LoanriskError as exc:  # the gate, an unknown version, files that fail verification
        _audit(service, "promote refused", admin, 422, model=name, version=body.version,
               reason=type(exc).__name__)
        raise _refused(exc) from exc
    if not res.promoted:  # the gate said no: the champion (and what is served) is unchanged
        _audit(service, "promote refused", admin, 422, model=name, version=body.version,
               reason=res.reason)
        raise _refused(res.reason)
    _audit(service, "promote", admin, model=name, version=res.version, previous=res.previous,
           forced=body.force, reason=res.reason)
    return _result(service, res)


@router.post("/rollback", summary="Move the champion back to the previous version, then reload",
             description="The champion alias returns to the version that held it before (no "
                         "gate: it was the champion). The service loads, verifies and swaps it "
                         "before answering.",
             response_model=PromotionPublic, responses=ERRORS)
def rollback(admin: AdminDep, service: ServiceDep) -> Any:
    from loanrisk.registry import Registry

    name = _registry_name(service.holder)
    try:
        res = _registry_call(lambda: Registry(service.settings).rollback(name))
    except RegistryUnavailable as exc:
        raise _refused(exc) from exc
    except LoanriskError as exc:  # nothing to roll back to, or its files fail verification
        _audit(service, "rollback refused", admin, 422, model=name, reason=type(exc).__name__)
        raise _refused(exc) from exc
    _audit(service, "rollback", admin, model=name, version=res.version, previous=res.previous)
    return _result(service, res)


@router.post("/reload", summary="Check the registry (or the local directory) and swap now",
             description="Instead of waiting for the next poll: reads where the champion alias "
                         "points, and loads, verifies and swaps in a new version. A version that "
                         "fails its hash or golden-input check is refused (see `error`); the "
                         "old one keeps serving.",
             response_model=ReadyPublic, responses=ERRORS)
def reload(admin: AdminDep, service: ServiceDep) -> Any:
    try:
        served = _registry_call(service.holder.reload)
    except LoanriskError as exc:
        raise _refused(exc) from exc
    _audit(service, "reload", admin, serving=served.scorer.version if served else None,
           error=service.holder.last_error)
    return {"ready": served is not None, "model": served.scorer.describe() if served else None,
            "error": service.holder.last_error}


@router.get("/challenger", summary="The shadow/canary challenger's status",
            description="Mode, share, champion and challenger versions, how many applications "
                        "each role scored, and why a canary was rolled back (if it was).",
            response_model=ChallengerStatus, responses=ERRORS)
def challenger_status(_admin: AdminDep, service: ServiceDep) -> Any:
    return service.holder.challenger_status()


@router.put("/challenger", summary="Set the challenger: off, shadow or canary",
            description="Loads the version (verified like a champion) and routes applications "
                        "at once; clears a previous canary rollback. A challenger that cannot "
                        "be loaded is reported in `error` and the champion serves alone. With "
                        "--model-dir serving, set the challenger at start (--challenger-dir).",
            response_model=ChallengerStatus, responses=ERRORS)
def set_challenger(body: ChallengerRequest, admin: AdminDep, service: ServiceDep) -> Any:
    holder = service.holder
    if body.mode != "off":
        _registry_name(holder)
        if body.version is None:
            raise _refused(f'challenger mode {body.mode}: send "version", the registered '
                           "version to run beside the champion")
        champion = holder.current.scorer.version if holder.current else None
        if body.version == champion:
            raise _refused(f"v{body.version} is the champion: a challenger must be another "
                           "version (see GET /v1/admin/versions)")
    try:
        policy = ChallengerPolicy(mode=body.mode, share=body.share, version=body.version)
    except LoanriskError as exc:
        raise _refused(exc) from exc
    _audit(service, "challenger", admin, mode=body.mode, version=body.version, share=body.share)
    return holder.set_challenger(policy)


@router.post("/outcomes", summary="Record outcomes in bulk (servicing, audit)",
             description="What `loanrisk outcomes load` does with a file, for a servicing system "
                         "that pushes over HTTP: each row names a stored application "
                         "(application_id, or its external_ref when exactly one application "
                         "carries it) and an outcome that the deciding model accepts. Every row "
                         "is checked first; one bad row and nothing is recorded (422 naming each "
                         "row, column and why) unless skip_invalid. The good rows go in one "
                         "transaction; rows already recorded are skipped, so a resent batch "
                         "records nothing twice. Larger loads: several requests (the body limit "
                         "applies) or the command.",
             response_model=OutcomeBatchResult,
             responses={401: ERRORS[401], 403: ERRORS[403], 413: SCORE_ERRORS[413],
                        422: {"model": ValidationErrorResponse,
                              "description": "Each row that cannot be recorded: its row, column "
                                             "and why (nothing was recorded)."}})
def outcomes(body: OutcomeBatch, admin: AdminDep, service: ServiceDep) -> Any:
    import pandas as pd

    from loanrisk.store.outcome_import import OutcomeRowsError, load_outcomes

    rows = [{"application_id": str(r.application_id or ""), "external_ref": r.external_ref,
             "outcome": r.outcome, "source": r.source,
             "recorded_at": r.recorded_at.isoformat() if r.recorded_at else None}
            for r in body.outcomes]
    try:
        res = load_outcomes(service.store, pd.DataFrame(rows), where="body",
                            source=admin.channel, skip_invalid=body.skip_invalid,
                            dry_run=body.dry_run)
    except OutcomeRowsError as exc:
        raise InvalidRequest([{"loc": ["body", "outcomes", p["row"], p["column"]],
                               "field": p["column"], "type": "outcome_row", "msg": p["error"]}
                              for p in exc.problems]) from None
    if res.recorded and not res.dry_run:
        _audit(service, "outcome batch", admin, recorded=res.recorded,
               applications=res.applications)
    return {"rows": res.rows, "recorded": res.recorded, "unchanged": res.unchanged,
            "applications": res.applications, "rejected": res.rejected, "dry_run": res.dry_run}


@router.get("/audit", summary="The access audit, newest first",
            description="Every read of an application (one or a list page), outcome recorded, "
                        "admin action, key created or revoked and refused submission: time, "
                        "key id, channel, request id, endpoint, status, application and details "
                        "(names and counts, never applicant values), each row chained to the "
                        "previous one's hash (`loanrisk audit verify`). A page at a time: pass "
                        "the answer's `next` as `before`. Reading it is audited too.",
            response_model=AuditPage, responses={401: ERRORS[401], 403: ERRORS[403],
                                                 422: ERRORS[422]})
def audit_log(
    admin: AdminDep, service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Rows per page.")] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="The `next` of the "
                                        "previous page: "
                                        "only rows with a smaller id.")] = None,
    since: SinceQuery = None,
    key: Annotated[str | None, Query(max_length=36, pattern="^[0-9a-f-]{1,36}$",
                                     description="Only this key's rows (its id or a start "
                                                 "of it).")] = None,
    application: Annotated[uuid.UUID | None, Query(description="Only rows about this "
                                                   "application.")] = None,
    action: Annotated[str | None, Query(max_length=64, description="Only this action, e.g. "
                                        "`read application`."), IDENTIFIER] = None,
) -> Any:
    from loanrisk.store.audit import as_dict, entries

    start = parse_since(since) if since is not None else None
    rows = entries(service.store.engine, since=start, key=key, action=action,
                   application=str(application) if application else None, before=before,
                   limit=limit + 1)
    page = rows[:limit]
    audit(service.store, "audit read", admin, status=200, count=len(page))
    return {"items": [as_dict(r) for r in page],
            "next": page[-1].id if len(rows) > limit else None}

"""Admin (admin API key only): registered versions, promote / roll back through the gate, reload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status

from loanrisk.api.decide import model_ref
from loanrisk.api.deps import AdminDep, ServiceDep
from loanrisk.api.models import (
    ChallengerRequest,
    ChallengerStatus,
    Message,
    PromoteRequest,
    PromotionPublic,
    ReadyPublic,
    VersionPublic,
)
from loanrisk.challenger import ChallengerPolicy
from loanrisk.errors import GateError, LoanriskError, RegistryError
from loanrisk.serving import ModelHolder

router = APIRouter(prefix="/v1/admin", tags=["admin"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "Missing or unknown API key."},
    403: {"model": Message, "description": "Not an admin key."},
    409: {"model": Message, "description": "The service serves a local model directory."},
    422: {"model": Message, "description": "The registry or the gate refused."},
}


def _registry_name(holder: ModelHolder) -> str:
    if not holder.registry_mode or holder.model_name is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "this service serves a local model "
                            "directory (--model-dir), not a registered model")
    return holder.model_name


def _refused(exc: LoanriskError) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


@router.get("/versions", summary="Registered versions of the served model",
            response_model=list[VersionPublic], responses=ERRORS)
def versions(_admin: AdminDep, service: ServiceDep) -> Any:
    from loanrisk.registry import Registry

    name = _registry_name(service.holder)
    try:
        return [v.to_dict() for v in Registry(service.settings).list_versions(name)]
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
def promote(body: PromoteRequest, _admin: AdminDep, service: ServiceDep) -> Any:
    from loanrisk.registry import Registry

    name = _registry_name(service.holder)
    try:
        res = Registry(service.settings).promote(name, body.version, force=body.force)
    except (GateError, RegistryError) as exc:
        raise _refused(exc) from exc
    if not res.promoted:  # the gate said no: the champion (and what is served) is unchanged
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, res.reason)
    return _result(service, res)


@router.post("/rollback", summary="Move the champion back to the previous version, then reload",
             response_model=PromotionPublic, responses=ERRORS)
def rollback(_admin: AdminDep, service: ServiceDep) -> Any:
    from loanrisk.registry import Registry

    name = _registry_name(service.holder)
    try:
        res = Registry(service.settings).rollback(name)
    except RegistryError as exc:
        raise _refused(exc) from exc
    return _result(service, res)


@router.post("/reload", summary="Check the registry (or the local directory) and swap now",
             response_model=ReadyPublic, responses=ERRORS)
def reload(_admin: AdminDep, service: ServiceDep) -> Any:
    try:
        served = service.holder.reload()
    except LoanriskError as exc:
        raise _refused(exc) from exc
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
def set_challenger(body: ChallengerRequest, _admin: AdminDep, service: ServiceDep) -> Any:
    holder = service.holder
    if body.mode != "off":
        _registry_name(holder)
    try:
        policy = ChallengerPolicy(mode=body.mode, share=body.share, version=body.version)
    except LoanriskError as exc:
        raise _refused(exc) from exc
    return holder.set_challenger(policy)

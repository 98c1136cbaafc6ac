"""Applications: submit (scored, then stored in one transaction), read, record the outcome."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from loanrisk.api.audit import audit
from loanrisk.api.decide import (
    InvalidRequest,
    body_doc,
    parse_json,
    request_hash,
    split_metadata,
    validate_all,
)
from loanrisk.api.deps import CallDep, KeyDep, ServiceDep, channel_of
from loanrisk.api.models import (
    ApplicationDetail,
    ApplicationPage,
    ApplicationPublic,
    Message,
    OutcomeCreate,
    OutcomePublic,
)
from loanrisk.api.query import SinceQuery, aware_utc, parse_since
from loanrisk.api.routes.score import ERRORS
from loanrisk.scoring.validation import HEADER_TOKEN, IDENTIFIER
from loanrisk.serving.challenger import assignment_key
from loanrisk.serving.decide import decide
from loanrisk.store import DuplicateApplication, KeyInfo, Store
from loanrisk.store.challenger import challenger_objects
from loanrisk.store.outcomes import outcome_error, stored_classes
from loanrisk.store.tables import Application

router = APIRouter(prefix="/v1/applications", tags=["applications"])
IdemDep = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=200,
    description="Retry-safe key, scoped to your API key: the same key and body replay the "
                "original answer (200, Idempotent-Replayed: true); a different body is a 422. "
                "1 to 200 visible ASCII characters (a UUID is ideal); spaces are allowed but a "
                "key of only spaces is refused (422): leave the header out instead."),
    HEADER_TOKEN]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Message, "description": "No such application for this key."}}


def _iso(ts: datetime) -> str:
    """UTC, ISO 8601 with a Z, as pydantic writes datetimes in the other answers."""
    aware = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)  # SQLite drops it
    return aware.isoformat().replace("+00:00", "Z")


def public(row: Application, classes: list[str] | None = None) -> dict[str, Any]:
    """An ApplicationPublic (JSON-able) from a stored row; probabilities in ``classes`` order
    (PostgreSQL's JSONB keeps keys in its own order: a replay must read as the original)."""
    probabilities = row.probabilities
    if classes and probabilities and set(probabilities) == set(classes):
        probabilities = {c: probabilities[c] for c in classes}
    return {
        "id": str(row.id), "created_at": _iso(row.created_at), "channel": row.channel,
        "applicant_id": row.applicant_id, "external_ref": row.external_ref,
        "decision": row.decision, "probabilities": probabilities,
        "risk_score": row.risk_score, "risk_tier": row.risk_tier, "reasons": row.reasons,
        "model": {"name": row.model_name, "version": row.model_version,
                  "sha256": row.model_sha256},
        "served_by": row.served_by,
    }


def _classes(service: Any, row: Application) -> list[str]:
    """The classes of the model that decided ``row``: the served model's (in order) when it is
    that model, else those the row's own probabilities name."""
    served = service.holder.current
    if served is not None and served.scorer.name == row.model_name:
        return list(served.scorer.classes)
    return stored_classes(row.probabilities, row.risk_score)


def _replay(row: Application, digest: str, classes: list[str]) -> JSONResponse:
    if row.request_hash != digest:
        raise InvalidRequest([{"loc": ["header", "Idempotency-Key"], "field": "Idempotency-Key",
                               "type": "idempotency_conflict",
                               "msg": "this Idempotency-Key was used with a different body; "
                                      "use a new key for a new application"}])
    return JSONResponse(public(row, classes), status_code=200,
                        headers={"Idempotent-Replayed": "true"})


def _visible(store: Store, app_id: uuid.UUID, key: KeyInfo, refusal: str) -> Application:
    """The application if this key may see it; else 404, audited as ``refusal``."""
    row = store.get_application(app_id)
    if row is None or not (key.admin or row.api_key_id == key.id):
        audit(store, refusal, key, status=404, application_id=app_id)
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such application")
    return row


@router.post(
    "",
    status_code=201,
    summary="Submit an application: decided now, stored durably",
    description="Validates the applicant attributes against the champion's schema, scores them "
                "(decision, probabilities, risk tier, reasons) and stores everything in one "
                "transaction before answering 201. Retry safely with an Idempotency-Key. The "
                "channel is the API key's: leave it out for the key's default, or name another "
                "channel the key was created for (any other is a 403). With a "
                "challenger in shadow mode its result is stored beside the champion's, never "
                "returned; in canary mode a sticky share of applicants (by applicant_id) gets "
                "the challenger's decision (served_by: canary).",
    response_model=ApplicationPublic,
    responses={**ERRORS, 200: {"model": ApplicationPublic,
                               "description": "Idempotent replay of the original answer."}},
    openapi_extra=body_doc(batch=False),
)
async def create_application(request: Request, call: CallDep,
                             idempotency_key: IdemDep = None) -> Any:
    key, served, service = call.key, call.served, call.service
    if idempotency_key is not None and not idempotency_key.strip():
        raise InvalidRequest([{"loc": ["header", "Idempotency-Key"], "field": "Idempotency-Key",
                               "type": "string_too_short",
                               "msg": "empty Idempotency-Key: send a unique value (a UUID) or "
                                      "leave the header out"}])
    data = parse_json(await request.body())
    digest = request_hash(data)
    store = service.store
    # Idempotency is optimistic: the unique (API key, Idempotency-Key) constraint catches a
    # retry at INSERT time and the stored answer is replayed; no read on the common path.
    router = service.holder.router_for(served)
    app_id = uuid.uuid4()
    try:
        if isinstance(data, list):
            raise InvalidRequest([{"loc": ["body"], "field": "body", "type": "dict_type",
                                   "msg": "one application per request (POST /v1/score takes "
                                          "batches)"}])
        [valid] = validate_all(served, [data], batch=False)
    except InvalidRequest:  # a retry of a stored application replays it whatever the schema now
        prior = await run_in_threadpool(store.find_idempotent, key.id, idempotency_key) \
            if idempotency_key else None
        if prior is None:
            raise
        return _replay(prior, digest, served.scorer.classes)
    [channel] = channel_of(key, [valid], batch=False)  # 403 for a channel the key may not use
    attrs, meta = split_metadata(valid)
    # the champion decides, or in shadow/canary mode the router decides what the client gets
    [routed] = decide(served, [attrs], router=router, keys=[assignment_key(
        applicant_id=meta["applicant_id"], application_id=str(app_id))])
    d, served_by = routed.served, routed.served_by
    ref = {"name": served.scorer.name, "version": routed.served_version,
           "sha256": routed.served_sha256}
    extras = challenger_objects(app_id, routed.extra)
    if router is not None:
        service.metrics.challenged(routed.extra)
    row = Application(
        id=app_id, channel=channel, api_key_id=key.id,
        idempotency_key=idempotency_key or None, request_hash=digest,
        applicant_id=meta["applicant_id"], external_ref=meta["external_ref"], attributes=attrs,
        decision=d.decision, probabilities=d.probabilities, risk_score=d.risk_score,
        risk_tier=d.risk_tier, reasons=d.reasons, model_name=ref["name"],
        model_version=ref["version"], model_sha256=ref["sha256"], served_by=served_by,
    )
    try:
        await run_in_threadpool(store.insert_application, row, extras)
    except DuplicateApplication:  # a retry, or a concurrent twin that won: answer as it did
        assert idempotency_key
        prior = await run_in_threadpool(store.find_idempotent, key.id, idempotency_key)
        assert prior is not None
        return _replay(prior, digest, served.scorer.classes)
    service.metrics.decided("applications", d.decision, d.risk_tier)
    return JSONResponse(public(row), status_code=201)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR_PATTERN = "^[0-9]{1,16}-[0-9a-f]{32}$"
CURSOR_DOC = ("The `next` cursor of the previous page: the position of its last application, "
              "`<microseconds since 1970-01-01 UTC>-<application id as 32 hex digits>`. Any "
              "cursor of that form is a position (rows strictly older are listed).")


def _cursor(row: Application) -> str:
    return f"{(aware_utc(row.created_at) - EPOCH) // timedelta(microseconds=1)}-{row.id.hex}"


def _position(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) a cursor stands for; InvalidRequest when it is not one of ours."""
    try:
        micros, last = cursor.split("-")
        if not (micros.isdigit() and micros.isascii() and len(micros) <= 16):
            raise ValueError("not a count of microseconds")
        if len(last) != 32 or last.lower() != last:
            raise ValueError("not 32 lower-case hex digits")
        return EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=last)
    except ValueError:
        raise InvalidRequest([{"loc": ["query", "before"], "field": "before", "type": "cursor",
                               "msg": "not a cursor from a previous page: pass the `next` of "
                                      "the last answer, or leave `before` out"}]) from None




Filter = Annotated[str | None, Query(max_length=128, description="Only applications with "
                                    "exactly this value (no control characters)."), IDENTIFIER]


@router.get(
    "",
    summary="List stored applications, newest first",
    description="Your API key's applications (an admin key: everyone's), newest first, a page "
                "at a time: pass the answer's `next` as `before` for the next page. Filters: "
                "`since` (ISO 8601 time), `applicant_id`, `external_ref`, `decision`, "
                "`channel`. Attribute values are not listed: read one application for them.",
    response_model=ApplicationPage,
    responses={401: ERRORS[401], 422: ERRORS[422]},
)
def list_applications(
    key: KeyDep, service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Applications per page.")] = 50,
    before: Annotated[str | None, Query(max_length=200, pattern=CURSOR_PATTERN,
                                        description=CURSOR_DOC)] = None,
    since: SinceQuery = None,
    applicant_id: Filter = None, external_ref: Filter = None, decision: Filter = None,
    channel: Filter = None,
) -> Any:
    where = {k: v for k, v in (("applicant_id", applicant_id), ("external_ref", external_ref),
                               ("decision", decision), ("channel", channel)) if v is not None}
    rows = service.store.list_applications(
        api_key_id=None if key.admin else key.id, limit=limit + 1,
        before=_position(before) if before else None,
        since=parse_since(since) if since is not None else None, where=where)
    page = rows[:limit]
    audit(service.store, "list applications", key, status=200, count=len(page),
          filters=sorted([*where, *(["since"] if since else []), *(["before"] if before else [])]))
    return {"items": [public(r, _classes(service, r)) for r in page],
            "next": _cursor(page[-1]) if len(rows) > limit else None}


@router.get(
    "/{application_id}",
    summary="Read a stored application",
    description="Only the API key that submitted it, or an admin key, can read it; anyone else "
                "gets 404 (so ids cannot be probed).",
    response_model=ApplicationDetail,
    responses={**NOT_FOUND, 401: ERRORS[401]},
)
def read_application(application_id: uuid.UUID, key: KeyDep, service: ServiceDep) -> Any:
    row = _visible(service.store, application_id, key, "read refused")
    audit(service.store, "read application", key, status=200, application_id=row.id)
    out = public(row, _classes(service, row))
    out["attributes"] = row.attributes
    out["outcomes"] = [
        {"application_id": str(o.application_id), "outcome": o.outcome, "source": o.source,
         "recorded_at": _iso(o.recorded_at)}
        for o in service.store.outcomes_of(row.id)]
    return out


@router.post(
    "/{application_id}/outcome",
    status_code=201,
    summary="Record what happened later",
    description="The later truth: repaid/defaulted, the auditor's decision, the assigned grade. "
                "Kept for retraining and monitoring (the latest outcome of an application "
                "wins). The outcome must be one of the model's class labels or, for a binary "
                "target, a word such as repaid, charged_off, approve or decline; anything else "
                "is a 422 listing what is accepted. Same visibility rule as reading.",
    response_model=OutcomePublic,
    responses={**NOT_FOUND, 401: ERRORS[401], 422: ERRORS[422]},
)
def record_outcome(application_id: uuid.UUID, body: OutcomeCreate, key: KeyDep,
                   service: ServiceDep) -> Any:
    row = _visible(service.store, application_id, key, "outcome refused")
    classes = _classes(service, row)
    if classes:
        problem = outcome_error(body.outcome, classes)
        if problem:
            raise InvalidRequest([{"loc": ["body", "outcome"], "field": "outcome",
                                   "type": "outcome_unknown", "msg": problem}])
    out = service.store.add_outcome(row.id, outcome=body.outcome.strip(),
                                    source=body.source or key.channel, api_key_id=key.id)
    audit(service.store, "outcome recorded", key, status=201, application_id=row.id,
          outcome=out.outcome)
    return {"application_id": out.application_id, "outcome": out.outcome, "source": out.source,
            "recorded_at": out.recorded_at}

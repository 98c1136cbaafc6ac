"""Request and response models by role (``...Create`` from clients, ``...Public`` to them)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from loanrisk.scoring.validation import Ref128, Word64
from loanrisk.store.outcomes import ADVERSE_WORDS, GOOD_WORDS

PROBS_EXAMPLE = {"good": 0.91, "bad": 0.09}


def _integral(value: Any) -> Any:
    """JSON's 2.0 is the integer 2 (JSON Schema says so); 2.5, true and "2" stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# a registry version in strict models: 1 and 1.0, not true or "1"
Version = Annotated[int, Field(ge=1), BeforeValidator(_integral)]
OUTCOME_WORDS = (
    "A class label of the model that decided the application (case-insensitive: e.g. good/bad, "
    "a grade) or, for a binary model, a servicing or auditor word: for the better class "
    + ", ".join(sorted(GOOD_WORDS)) + "; for the adverse class " + ", ".join(sorted(ADVERSE_WORDS))
    + ". Any other word is a 422 (naming the field, never the word).")


class ModelRef(BaseModel):
    """The model version that made a decision."""

    name: str = Field(examples=["lending-club-default"])
    version: int | None = Field(description="Registry version; null for a local model directory.",
                                examples=[3])
    sha256: str = Field(description="SHA-256 of the ONNX graph that was run.")


class DecisionPublic(BaseModel):
    """A decision with its probabilities, risk tier and principal reasons."""

    decision: str = Field(description="A grade (multiclass) or approve/decline (binary).",
                          examples=["approve"])
    probabilities: dict[str, float] = Field(description="One per class, best to worst.",
                                            examples=[PROBS_EXAMPLE])
    risk_score: float = Field(description="P(adverse class), or the probability mass on the "
                              "worse half of the grades.", examples=[0.09])
    risk_tier: str = Field(description="low | medium | high, from configured thresholds.",
                           examples=["low"])
    reasons: list[str] = Field(description="Up to 4 attributes that pushed toward the worse "
                               "outcome, in plain words; a decline always has one.",
                               examples=[["Debt-to-income ratio is high"]])
    model: ModelRef


class ApplicationPublic(DecisionPublic):
    """A stored application's decision (what POST /v1/applications returns)."""

    id: uuid.UUID
    created_at: datetime
    channel: str = Field(examples=["web"])
    applicant_id: str | None = None
    external_ref: str | None = None
    served_by: str = Field(default="champion", description="champion, or canary when a canary "
                           "challenger decided (the model field names that version).")


class ApplicationPage(BaseModel):
    """One page of stored applications, newest first (GET /v1/applications)."""

    items: list[ApplicationPublic]
    next: str | None = Field(default=None, description="Pass as `before` for the next (older) "
                             "page; null on the last page.")


class AuditEntryPublic(BaseModel):
    """One access-audit row (GET /v1/admin/audit)."""

    id: int
    at: str = Field(description="UTC time, microseconds.")
    action: str
    key_id: str | None = None
    channel: str | None = None
    request_id: str | None = None
    endpoint: str | None = None
    status: int | None = None
    application_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict, description="Names, counts and "
                                    "versions; never applicant values.")
    hash: str = Field(description="SHA-256 over the previous row's hash and this row.")


class AuditPage(BaseModel):
    """One page of the access audit, newest first."""

    items: list[AuditEntryPublic]
    next: int | None = Field(default=None, description="Pass as `before` for the next (older) "
                             "page; null on the last page.")


class ApplicationDetail(ApplicationPublic):
    """A stored application with its attributes and outcomes (GET /v1/applications/{id})."""

    attributes: dict[str, object]
    outcomes: list[OutcomePublic] = []


class OutcomeCreate(BaseModel):
    """The later truth about an application."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 1 is a version; true is not

    outcome: Word64 = Field(min_length=1, description="What happened. " + OUTCOME_WORDS,
                            examples=["bad"])
    source: Word64 | None = Field(default=None,
                                  description="Who recorded it (servicing, auditor...).",
                                  examples=["servicing"])


class OutcomeRow(BaseModel):
    """One outcome of a batch: the application (by id, or by the external_ref its channel sent)
    and what happened."""

    model_config = ConfigDict(extra="forbid")

    application_id: uuid.UUID | None = Field(default=None, description="The stored "
                                             "application (or give external_ref).")
    external_ref: Ref128 | None = Field(default=None, description="The channel's own "
                                        "reference, when exactly one application carries it.")
    outcome: Word64 = Field(min_length=1, examples=["charged_off"],
                            description=OUTCOME_WORDS + " With skip_invalid, a row with another "
                            "word is reported in `rejected`.")
    source: Word64 | None = Field(default=None, examples=["servicing"],
                                  description="Who recorded it (default: import).")
    recorded_at: datetime | None = Field(default=None, description="When it became known "
                                         "(default: now); with it, a resent row is recognised.")


class OutcomeBatch(BaseModel):
    """Outcomes in bulk, all or nothing unless skip_invalid."""

    model_config = ConfigDict(extra="forbid")

    outcomes: list[OutcomeRow] = Field(min_length=1, max_length=10000)
    skip_invalid: bool = Field(default=False, description="Record the good rows and report the "
                               "others (default: one bad row and nothing is recorded, 422).")
    dry_run: bool = Field(default=False, description="Check every row; record nothing.")


class RowProblem(BaseModel):
    """Why one row of a batch was not recorded."""

    row: int
    column: str
    error: str


class OutcomeBatchResult(BaseModel):
    """What a batch did (with dry_run: would do)."""

    rows: int
    recorded: int
    unchanged: int = Field(description="Rows already recorded (a resent batch records nothing).")
    applications: int
    rejected: list[RowProblem]
    dry_run: bool


class OutcomePublic(BaseModel):
    """A recorded outcome."""

    application_id: uuid.UUID
    outcome: str
    source: str | None
    recorded_at: datetime


class ValidationErrorItem(BaseModel):
    """One bad field: where, its name and what is wrong (never the submitted value)."""

    loc: list[str] = Field(description="Where: body, query, path or header, then the field "
                           "(a batch item's index as a string). Names over 64 characters end "
                           "in an ellipsis.")
    field: str
    msg: str
    type: str | None = None


class ValidationErrorResponse(BaseModel):
    """Every bad field and why: at most 50 listed, errors_total counts them all."""

    detail: list[ValidationErrorItem]
    errors_total: int | None = Field(default=None, description="How many errors there were "
                                     "(only the first 50 are listed).")


class ErrorResponse(BaseModel):
    """A refusal in words (detail: a string) or invalid fields (detail: a list, as in
    ValidationErrorResponse)."""

    detail: str | list[ValidationErrorItem]
    errors_total: int | None = None


class InternalError(BaseModel):
    """An unexpected error: nothing about the request is told; the request id ties it to the
    service's log line."""

    detail: str
    request_id: str


class Message(BaseModel):
    """A plain error or status message."""

    detail: str


class ReadyPublic(BaseModel):
    """Readiness: the model in use, or why there is none."""

    ready: bool
    model: dict[str, object] | None = None
    error: str | None = None
    challenger: dict[str, object] | None = Field(
        default=None, description="The shadow/canary challenger's status, when one is set.")


class ChallengerRequest(BaseModel):
    """Which challenger to run beside the champion, and how."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 1 is a version; true is not

    mode: Literal["off", "shadow", "canary"] = Field(
        description="off; shadow (scores every application, stored, never returned); canary "
                    "(a sticky share of applicants gets its decision).", examples=["shadow"])
    version: Version | None = Field(default=None, description="The registered version.",
                                examples=[4])
    share: float = Field(default=0.1, ge=0.0, le=1.0,
                         description="Canary: share of applicants (sticky by applicant_id).")


class ChallengerStatus(BaseModel):
    """The challenger's mode, versions, counts and, after a rollback, why."""

    mode: str
    share: float
    active: bool
    champion_version: int | None = None
    challenger_version: int | None = None
    counts: dict[str, int] = {}
    rollback_reason: str | None = None
    error: str | None = None


class PromoteRequest(BaseModel):
    """Which version to promote."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 1 is a version; true is not

    version: Version = Field(examples=[2])
    force: bool = Field(default=False, description="Skip the gate (promote even if not better).")


class PromotionPublic(BaseModel):
    """What the gate decided, and the model now serving."""

    name: str
    version: int
    promoted: bool
    previous: int | None
    reason: str
    serving: ModelRef | None = None


class VersionPublic(BaseModel):
    """A registered version."""

    name: str
    version: int
    model: str
    metrics: dict[str, float]
    sha256: str
    created_at: str
    aliases: list[str]


ApplicationDetail.model_rebuild()

"""The Decide form: fields from a version's manifest and schema, examples, scoring (no Streamlit).

Scoring is in-process with :class:`~loanrisk.scoring.scorer.Scorer`, or through the decision
service's
``POST /v1/score`` when ``LOANRISK_API_URL`` is set (with ``LOANRISK_API_KEY`` as the bearer
key). Both give the same dict: decision, probabilities, risk_score, risk_tier, reasons, model.
Through the service, staff keying in a paper or phone application can also submit it
(``POST /v1/applications``): decided, stored and answered with its id.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loanrisk.errors import LoanriskError
from loanrisk.scoring.scorer import Scorer
from loanrisk.scoring.validation import RequestValidator, numeric_bounds
from loanrisk.scoring.words import without_side

MISSING = "(missing)"  # how an empty optional category is shown in a selectbox


@dataclass(frozen=True)
class FieldSpec:
    """One input of the form."""

    name: str
    kind: str  # "number" | "category"
    label: str
    help: str
    optional: bool
    default: Any
    low: float | None = None
    high: float | None = None
    options: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # plain words per category (schema)

    def shown(self, option: str) -> str:
        """How a category is shown: its plain words (schema "labels") with the code beside."""
        words = self.labels.get(option)
        return f"{words} ({option})" if words else option


def _attrs(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in schema.get("attributes", [])}


def field_specs(manifest: dict[str, Any], schema: dict[str, Any]) -> list[FieldSpec]:
    """The form's fields, in the graph's input order.

    Numbers are bounded like the service's validation (training range with a margin, schema
    limits); categories offer the schema's or the training's seen values; attributes missing in
    training may be left empty.
    """
    attrs = _attrs(schema)
    nullable = set(manifest.get("nullable") or [])
    reference = manifest.get("reference") or {}
    specs = []
    for name in manifest["features"]:
        attr = attrs.get(name, {})
        optional = name in nullable
        desc = str(attr.get("description") or name)
        # the schema's plain words name the field, the column beside them ("Loan term (term)")
        topic = without_side(str(attr.get("reason") or "")).rstrip(". ")
        label = f"{topic} ({name})" if topic and topic != name else name
        ref = reference.get(name)
        if manifest["inputs"][name] == "string":
            options = [str(c) for c in (attr.get("categories")
                                        or (manifest.get("categories") or {}).get(name) or [])]
            if optional:
                options = [MISSING, *options]
            default = str(ref) if ref is not None and str(ref) in options else (
                options[0] if options else "")
            specs.append(FieldSpec(name, "category", label, desc, optional, default,
                                   options=options, labels=dict(attr.get("labels") or {})))
            continue
        low, high = numeric_bounds(name, manifest, attr)
        rng = (manifest.get("ranges") or {}).get(name)
        hint = f"{desc} Training range: {rng[0]:g} to {rng[1]:g}." if rng else desc
        value = None if ref is None else float(ref)
        if value is not None:
            value = min(max(value, low if low is not None else value),
                        high if high is not None else value)
        specs.append(FieldSpec(name, "number", label, hint + (" Optional." if optional else ""),
                               optional, value, low, high))
    return specs


def form_value(spec: FieldSpec, value: Any) -> Any:
    """A record's value as the widget shows it (categories outside the options are kept)."""
    if spec.kind == "category":
        return MISSING if value in (None, "") and spec.optional else str(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None if spec.optional else spec.default
    return float(value)


def to_record(specs: list[FieldSpec], values: dict[str, Any]) -> dict[str, Any]:
    """Widget values as an application body: empty optional fields are left out."""
    record: dict[str, Any] = {}
    for spec in specs:
        v = values.get(spec.name)
        if v is None or v == MISSING or v == "":
            continue
        record[spec.name] = float(v) if spec.kind == "number" else str(v)
    return record


def examples(model_dir: Path, manifest: dict[str, Any], *, n: int = 50) -> list[dict[str, Any]]:
    """Example applicants: the version's golden inputs, then rows of its evaluation split."""
    out = [dict(r) for r in (manifest.get("golden") or {}).get("inputs") or []]
    path = model_dir / "eval.parquet"
    if path.exists() and len(out) < n:
        import pandas as pd

        frame = pd.read_parquet(path, columns=list(manifest["features"]))
        frame = frame.astype(object).where(frame.notna(), None)
        out += frame.head(n - len(out)).to_dict("records")
    return out


def validate(manifest: dict[str, Any], schema: dict[str, Any],
             record: dict[str, Any]) -> list[str]:
    """The service's own validation of a record: one message per bad field, [] when valid."""
    _, errors = RequestValidator(manifest, schema).validate(record)
    return [f"{e['field']}: {e['msg']}" for e in errors]


def score_local(scorer: Scorer, record: dict[str, Any]) -> dict[str, Any]:
    """Score one record in-process; same shape as the API's answer."""
    d = scorer.score([record])[0]
    return {"decision": d.decision, "probabilities": d.probabilities,
            "risk_score": d.risk_score, "risk_tier": d.risk_tier, "reasons": d.reasons,
            "model": {"name": scorer.name, "version": scorer.version, "sha256": scorer.sha256,
                      "model": scorer.model_kind}}


def api_url() -> str | None:
    """The decision service to score through (``LOANRISK_API_URL``), or None for in-process."""
    url = os.environ.get("LOANRISK_API_URL", "").strip()
    return url.rstrip("/") or None


def served_model(url: str, *, timeout: float = 3.0) -> dict[str, Any] | None:
    """What the decision service at ``url`` serves (its /ready ``model``), None if unknown."""
    import httpx

    try:
        model = httpx.get(f"{url}/ready", timeout=timeout).json().get("model")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return dict(model) if isinstance(model, dict) else None


def score_http(url: str, record: dict[str, Any], *, timeout: float = 10.0) -> dict[str, Any]:
    """Score one record with the service's ``POST /v1/score`` (the champion it serves).

    Raises LoanriskError with the service's message on a refusal or when it cannot be reached.
    """
    return _post(url, "/v1/score", record, {}, timeout=timeout, ok=(200,))


def submit_http(url: str, record: dict[str, Any], *, channel: str, idempotency_key: str,
                timeout: float = 10.0) -> dict[str, Any]:
    """Submit one record as an application (``POST /v1/applications``): decided and stored by
    the service, as for any channel. A resubmission with the same ``idempotency_key`` (a second
    click) gets the stored application back instead of a second one."""
    return _post(url, "/v1/applications", {**record, "channel": channel},
                 {"Idempotency-Key": idempotency_key}, timeout=timeout, ok=(200, 201))


def _post(url: str, path: str, body: dict[str, Any], headers: dict[str, str], *,
          timeout: float, ok: tuple[int, ...]) -> dict[str, Any]:
    """POST ``body`` to the service with LOANRISK_API_KEY; its JSON answer, or LoanriskError with
    the service's message."""
    import httpx

    key = os.environ.get("LOANRISK_API_KEY")
    if key:
        headers = {**headers, "Authorization": f"Bearer {key}"}
    try:
        resp = httpx.post(f"{url}{path}", json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise LoanriskError(f"cannot reach the decision service at {url}: {exc}") from exc
    if resp.status_code not in ok:
        try:
            answer: Any = resp.json()
        except ValueError:
            answer = resp.text[:300]
        hint = " (set LOANRISK_API_KEY)" if resp.status_code == 401 else ""
        raise LoanriskError(f"the decision service at {url} answered {resp.status_code}{hint}: "
                            f"{answer}")
    return dict(resp.json())

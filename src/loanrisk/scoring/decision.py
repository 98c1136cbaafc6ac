"""The approve/decline threshold and the risk tiers, set on calibrated probabilities by a rule.

Risk score (as the scorer defines it): P(adverse class) for a binary target; for grades, the
probability mass on the worse half of the classes (index >= ceil(C / 2); A..G: E, F, G).

Rules (``LOANRISK_DECISION_RULE``):
* ``max_bad_rate`` (default): the highest threshold t such that the expected adverse rate among
  the approved applications (score < t), i.e. the mean calibrated score, is at most
  ``LOANRISK_MAX_BAD_RATE``.
* ``approval_rate``: t is the ``LOANRISK_TARGET_APPROVAL_RATE`` quantile of the scores.
Tiers: ``high`` = declined (score >= t); ``medium`` = approved with a score at or above the median
score of the approved; ``low`` below it. The scores are those of the evaluation rows (labels are
not used to choose; the observed adverse rate among approvals is reported beside the expected).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from loanrisk.errors import LoanriskError

if TYPE_CHECKING:
    from loanrisk.config import Settings


RULES = ("max_bad_rate", "approval_rate")


class RuleSettings(Protocol):
    """What ``decision_rule`` reads: a Settings, or a rule stored in a manifest."""

    decision_rule: str
    max_bad_rate: float
    target_approval_rate: float


def risk_score(proba: np.ndarray, *, task: str) -> np.ndarray:
    """P(adverse) for binary; mass on the worse half of the grades for multiclass."""
    proba = np.asarray(proba, dtype=np.float64)
    if task == "binary":
        return proba[:, -1]
    return proba[:, math.ceil(proba.shape[1] / 2):].sum(axis=1)


def decision_rule(proba: np.ndarray, *, task: str, settings: Settings | RuleSettings,
                  y: np.ndarray | None = None) -> dict[str, Any]:
    """``manifest["decision"]``: the rule, ``decline_threshold`` and ``tiers`` thresholds.

    Raises LoanriskError for an unknown rule or a rate outside (0, 1].
    """
    rule = getattr(settings, "decision_rule", "max_bad_rate")
    if rule not in RULES:
        raise LoanriskError(f"LOANRISK_DECISION_RULE must be one of {RULES}, not {rule!r}")
    s = np.sort(risk_score(proba, task=task))
    n = len(s)
    if rule == "max_bad_rate":
        target = float(getattr(settings, "max_bad_rate", 0.04))
        if not 0 < target <= 1:
            raise LoanriskError(f"LOANRISK_MAX_BAD_RATE must lie in (0, 1], not {target}")
        cum = np.cumsum(s) / np.arange(1, n + 1)  # expected adverse rate of the k safest
        ok = np.nonzero(cum <= target)[0]
        k = int(ok[-1]) + 1 if ok.size else 0
        param = {"max_bad_rate": target}
    else:
        target = float(getattr(settings, "target_approval_rate", 0.8))
        if not 0 < target <= 1:
            raise LoanriskError(f"LOANRISK_TARGET_APPROVAL_RATE must lie in (0, 1], not {target}")
        k = int(round(target * n))
        param = {"target_approval_rate": target}
    threshold = 1.0 if k >= n else float(s[k]) if k > 0 else float(s[0])
    approved = s[s < threshold] if k < n else s
    medium = float(np.median(approved)) if approved.size else threshold
    out: dict[str, Any] = {
        "rule": rule, **param,
        "score": "P(adverse)" if task == "binary" else "mass on the worse half of the classes",
        "decline_threshold": round(threshold, 6),
        "tiers": {"medium": round(medium, 6), "high": round(threshold, 6)},
        "approval_rate": round(approved.size / n, 4) if n else 0.0,
        "expected_bad_rate_approved": round(float(approved.mean()), 4) if approved.size else 0.0,
        "set_on": "evaluation split, calibrated probabilities (labels not used)",
    }
    if y is not None and task == "binary":
        score = risk_score(proba, task=task)
        mask = score < threshold if k < n else np.ones(n, bool)
        out["observed_bad_rate_approved"] = round(float(np.mean(y[mask] == 1)), 4) \
            if mask.any() else 0.0
    return out


def decision_thresholds(manifest: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The decline threshold and tier cut-offs a version is served with, and their source.

    Precedence: a value set explicitly in the configuration, then the version's
    ``manifest["decision"]`` (its stated rule), then the configuration's default.
    """
    rule = manifest.get("decision") or {}
    tiers = rule.get("tiers") or {}
    from_manifest = {"decline_threshold": rule.get("decline_threshold"),
                     "tier_medium": tiers.get("medium"), "tier_high": tiers.get("high")}
    explicit = settings.model_fields_set
    out: dict[str, Any] = {}
    sources = set()
    for key, value in from_manifest.items():
        if key in explicit or value is None:
            out[key] = float(getattr(settings, key))
            sources.add("configuration")
        else:
            out[key] = float(value)
            sources.add(f"model version ({rule.get('rule', 'rule')})")
    out["source"] = " + ".join(sorted(sources))
    return out

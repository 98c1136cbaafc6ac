"""Fairness: approval rates per group of a protected attribute and the adverse-impact ratio.

A schema may mark attributes ``protected`` (never features; kept in the data for testing). A
version's evaluation split (``eval.parquet``) then carries them, and the promotion gate calls
:func:`gate_refusal`: a challenger is refused when, on any protected attribute, its adverse-impact
ratio (lowest group approval rate / highest; the "four-fifths rule") is below
``settings.fairness_min_ratio`` (0.8), or below the champion's on the same data by more than
``settings.fairness_tolerance`` (when ``settings.fairness_vs_champion``).

Approval is the version's own decision rule: risk score (P(adverse), or for grades the mass on
the worse half of the classes) below the manifest's ``decision.decline_threshold`` (else
``settings.decline_threshold``). Groups with fewer than ``MIN_GROUP`` rows and missing values are
reported but left out of the ratio (their rates are too noisy to judge).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loanrisk.config import Settings, get_settings

MIN_GROUP = 20


@dataclass
class GroupFairness:
    """Approval rates per group of one protected attribute, and the adverse-impact ratio."""

    attribute: str
    approval_rates: dict[str, float]
    counts: dict[str, int]
    ratio: float  # min / max approval rate over groups with at least MIN_GROUP rows
    lowest: str | None = None
    highest: str | None = None
    ignored: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        rates = ", ".join(f"{g} {r:.0%}" for g, r in self.approval_rates.items())
        return f"adverse-impact ratio on {self.attribute!r} is {self.ratio:.2f} (approval: {rates})"


def group_fairness(groups: pd.Series | np.ndarray, approved: np.ndarray, *, attribute: str,
                   min_group: int = MIN_GROUP) -> GroupFairness:
    """Approval rate per group and min/max ratio (1.0 when fewer than two groups qualify)."""
    g = pd.Series(groups, dtype=object).reset_index(drop=True)
    ok = pd.Series(np.asarray(approved, dtype=bool))
    known = g.notna() & (g.astype(str) != "")
    labels = g[known].astype(str)
    rates = ok[known].groupby(labels).mean().sort_index()
    counts = labels.value_counts().reindex(rates.index)
    big = rates[counts >= min_group]
    ratio, lowest, highest = 1.0, None, None
    if len(big) >= 2 and big.max() > 0:
        ratio = float(big.min() / big.max())
        lowest, highest = str(big.idxmin()), str(big.idxmax())
    return GroupFairness(attribute, {str(k): round(float(v), 6) for k, v in rates.items()},
                         {str(k): int(v) for k, v in counts.items()}, round(ratio, 6), lowest,
                         highest, [str(k) for k in rates.index if counts[k] < min_group])


def protected_attributes(schema: dict[str, Any]) -> list[str]:
    """Names of the attributes a schema (JSON dict) marks protected."""
    return [a["name"] for a in schema.get("attributes", []) if a.get("protected")]


def approved(proba: np.ndarray, manifest: dict[str, Any], settings: Settings) -> np.ndarray:
    """Which rows a version approves (its decision rule on its probabilities)."""
    from loanrisk.scoring.decision import risk_score

    task = manifest.get("task") or ("binary" if proba.shape[1] == 2 else "multiclass")
    rule = manifest.get("decision") or {}
    threshold = float(rule.get("decline_threshold", settings.decline_threshold))
    return risk_score(proba, task=task) < threshold


def version_fairness(model_dir: Path, df: pd.DataFrame, proba: np.ndarray | None = None, *,
                     settings: Settings | None = None) -> list[GroupFairness]:
    """Fairness of a version on a frame holding its inputs and the protected attributes."""
    from loanrisk.registry.evaluation import onnx_proba

    settings = settings or get_settings()
    schema = json.loads((model_dir / "schema.json").read_text())
    manifest = json.loads((model_dir / "manifest.json").read_text())
    names = [n for n in protected_attributes(schema) if n in df.columns]
    if not names:
        return []
    proba = onnx_proba(model_dir, df) if proba is None else proba
    ok = approved(proba, manifest, settings)
    return [group_fairness(df[n], ok, attribute=n) for n in names]


def gate_refusal(*, cand_dir: Path, champ_dir: Path | None, eval_df: pd.DataFrame | None = None,
                 cand_proba: np.ndarray | None = None, champ_proba: np.ndarray | None = None,
                 settings: Settings | None = None) -> str | None:
    """Why the gate must refuse the candidate on fairness grounds, or None.

    Runs only when the candidate's schema declares protected attributes and the evaluation
    data (``eval_df``, default: the candidate's eval.parquet) contains them.
    """
    settings = settings or get_settings()
    schema = json.loads((cand_dir / "schema.json").read_text())
    if not protected_attributes(schema):
        return None
    if eval_df is None and not (cand_dir / "eval.parquet").exists():
        return None
    df = eval_df if eval_df is not None else pd.read_parquet(cand_dir / "eval.parquet")
    cand = version_fairness(cand_dir, df, cand_proba, settings=settings)
    champ = {f.attribute: f for f in (version_fairness(champ_dir, df, champ_proba,
                                                       settings=settings)
                                       if champ_dir is not None else [])}
    for f in cand:
        if f.ratio < settings.fairness_min_ratio:
            return f"{f.describe()}, below {settings.fairness_min_ratio:.2f}"
        other = champ.get(f.attribute)
        if (settings.fairness_vs_champion and other is not None
                and f.ratio < other.ratio - settings.fairness_tolerance):
            return (f"{f.describe()}, below the champion's {other.ratio:.2f} on the same "
                    "evaluation data")
    return None

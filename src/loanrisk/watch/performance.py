"""Live performance: once outcomes arrive, metrics per model version and week, against the
metrics the version had on its evaluation split when it was registered.

An alert is raised for a (version, week) with at least ``min_rows`` labelled applications whose
ROC-AUC is more than ``settings.perf_margin`` (0.05) below the version's evaluation-time ROC-AUC.
Mind the selection: outcomes usually exist only for approved applications, so live figures
describe the approved population, which is narrower (and usually harder to rank) than the
evaluation split.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loanrisk.config import Settings, get_settings
from loanrisk.errors import LoanriskError


@dataclass
class PeriodPerformance:
    """One model version over one ISO week (Monday date)."""

    version: int | None
    week: str
    labelled: int
    roc_auc: float | None
    accuracy: float
    adverse_rate: float  # share of outcomes in the worst class
    eval_roc_auc: float | None  # the version's evaluation-time ROC-AUC (registry)
    drop: float | None
    alert: bool


@dataclass
class PerformanceReport:
    """Every (version, week) with outcomes, and the alerts among them."""

    model: str
    since: str | None
    margin: float
    periods: list[PeriodPerformance] = field(default_factory=list)
    unlabelled_outcomes: int = 0
    alerts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _version_facts(settings: Settings, model: str, version: int
                   ) -> tuple[list[str], float | None]:
    """(classes, evaluation-time ROC-AUC) of a registered version."""
    from loanrisk.registry import Registry

    reg = Registry(settings)
    manifest = json.loads((reg.download(model, version) / "manifest.json").read_text())
    info = next((v for v in reg.list_versions(model) if v.version == version), None)
    metrics = info.metrics if info is not None else manifest.get("metrics", {})
    auc = metrics.get("roc_auc")
    return [str(c) for c in manifest["classes"]], None if auc is None else float(auc)


def period_metrics(y: np.ndarray, proba: np.ndarray) -> tuple[float | None, float, float]:
    """(ROC-AUC or None when only one class occurs, accuracy, adverse rate)."""
    from loanrisk.registry import roc_auc

    auc = roc_auc(y, proba) if len(np.unique(y)) > 1 else None
    if auc is not None and np.isnan(auc):
        auc = None
    acc = float(np.mean(np.argmax(proba, axis=1) == y))
    return auc, acc, float(np.mean(y == proba.shape[1] - 1))


def performance(*, model: str, since: str | None = None, min_rows: int = 30,
                settings: Settings | None = None) -> PerformanceReport:
    """Live metrics of ``model`` per version and week from stored outcomes.

    Raises LoanriskError when no stored application of ``model`` has an outcome yet.
    """
    from loanrisk.store.frames import (
        outcome_index,
        parse_since,
        read_labelled,
        store_engine,
        week_start,
    )

    settings = settings or get_settings()
    engine = store_engine(settings.resolved_database_url)
    try:
        frame = read_labelled(engine, model=model, since=parse_since(since))
    finally:
        engine.dispose()
    if frame.empty:
        raise LoanriskError(f"no outcomes yet for {model!r} (since {since or 'the start'}): "
                            "record them with POST /v1/applications/{id}/outcome or "
                            "`loanrisk outcomes load FILE`")
    report = PerformanceReport(model=model, since=since, margin=settings.perf_margin)
    frame["week"] = week_start(frame["created_at"])
    for version, part in frame.groupby(frame["model_version"].fillna(-1), sort=True):
        v = int(version)
        if v < 0:
            continue  # served from a directory: no registered evaluation metrics
        classes, eval_auc = _version_facts(settings, model, v)
        y_all = outcome_index(part["outcome"], classes)
        report.unlabelled_outcomes += int((y_all < 0).sum())
        part = part.assign(__y=y_all)[y_all >= 0]
        cols = ["p:" + c for c in classes]
        for week, rows in part.groupby("week", sort=True):
            proba = rows.reindex(columns=cols).to_numpy(dtype=np.float64)
            auc, acc, adverse = period_metrics(rows["__y"].to_numpy(), proba)
            drop = None if auc is None or eval_auc is None else round(eval_auc - auc, 6)
            alert = bool(len(rows) >= min_rows and drop is not None
                         and drop > settings.perf_margin)
            report.periods.append(PeriodPerformance(
                v, str(week), len(rows), None if auc is None else round(auc, 6), round(acc, 6),
                round(adverse, 6), eval_auc, drop, alert))
            if alert:
                report.alerts.append(
                    f"{model} v{v}, week of {week}: ROC-AUC {auc:.3f} on {len(rows)} outcomes is "
                    f"{drop:.3f} below its evaluation-time {eval_auc:.3f} (margin "
                    f"{settings.perf_margin:.2f}); check `loanrisk monitor` for drift and "
                    "consider `loanrisk learn --from-store`")
    return report


def as_frame(report: PerformanceReport) -> pd.DataFrame:
    """The report's periods as a table (for printing or export)."""
    return pd.DataFrame([asdict(p) for p in report.periods])

"""Decision replay: re-score stored applications with the exact version that decided them.

"Why was this applicant declined in March?" is answered by the stored decision and reasons;
replay proves they are reproducible: each stored application is scored again by the registered
version named in its row (downloaded, SHA-256 and golden-checked) with the current decision
settings, and its decision, reasons and probabilities are compared with what was stored.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loanrisk.config import Settings, get_settings
from loanrisk.errors import LoanriskError

PROBA_TOLERANCE = 1e-6


@dataclass
class Mismatch:
    """One stored application that replays differently."""

    application_id: str
    model_version: int | None
    field: str  # decision | reasons | probabilities | model
    stored: Any
    replayed: Any


@dataclass
class ReplayReport:
    """How many stored decisions were re-scored and which differ."""

    model: str
    since: str | None
    checked: int = 0
    identical: int = 0
    skipped: int = 0  # rows without a registered version (served from a directory)
    versions: dict[int, int] = field(default_factory=dict)  # version -> rows checked
    max_probability_diff: float = 0.0
    mismatches: list[Mismatch] = field(default_factory=list)
    mismatch_count: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.mismatch_count == 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def stored_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The ``a:`` columns of a read frame as attribute dicts (missing values as None)."""
    cols = [c for c in frame.columns if c.startswith("a:")]
    values = frame[cols].astype(object)
    values = values.where(values.notna(), None)
    return [{c[2:]: v for c, v in zip(cols, row, strict=True)}
            for row in values.itertuples(index=False, name=None)]


def _compare(report: ReplayReport, part: pd.DataFrame, decisions: list[Any], classes: list[str],
             *, sha256: str, max_listed: int) -> None:
    stored_p = part[["p:" + c for c in classes]].to_numpy(dtype=np.float64)
    new_p = np.array([[d.probabilities[c] for c in classes] for d in decisions])
    diff = np.abs(stored_p - new_p).max(axis=1) if len(new_p) else np.zeros(0)
    report.max_probability_diff = max(report.max_probability_diff,
                                      float(diff.max()) if len(diff) else 0.0)
    for i, (row, d) in enumerate(zip(part.itertuples(index=False), decisions, strict=True)):
        found: list[tuple[str, Any, Any]] = []
        if row.model_sha256 != sha256:
            found.append(("model", row.model_sha256, sha256))
        if row.decision != d.decision:
            found.append(("decision", row.decision, d.decision))
        if list(row.reasons) != list(d.reasons):
            found.append(("reasons", list(row.reasons), list(d.reasons)))
        if not diff[i] <= PROBA_TOLERANCE:
            found.append(("probabilities", stored_p[i].tolist(), new_p[i].tolist()))
        if not found:
            report.identical += 1
            continue
        report.mismatch_count += 1
        for name, old, new in found:
            if len(report.mismatches) < max_listed:
                report.mismatches.append(Mismatch(str(row.id), int(row.model_version), name,
                                                  old, new))


def replay(*, model: str, since: str | None = None, until: str | None = None,
           settings: Settings | None = None, batch: int = 1000, max_listed: int = 100
           ) -> ReplayReport:
    """Re-score every stored application of ``model`` in the window with its own version.

    Returns a ReplayReport (``ok`` when every decision, reason list and probability matches).
    Raises LoanriskError when nothing is stored in the window or a version cannot be loaded.
    """
    from loanrisk.registry import Registry
    from loanrisk.store.frames import parse_since, read_applications, store_engine

    settings = settings or get_settings()
    t0 = time.perf_counter()
    engine = store_engine(settings.resolved_database_url)
    try:
        window = read_applications(engine, model=model, since=parse_since(since),
                                   until=parse_since(until),
                                   columns=("attributes", "probabilities", "reasons"))
    finally:
        engine.dispose()
    frame = window.frame
    if frame.empty:
        raise LoanriskError(f"no stored applications of {model!r} in the window "
                            f"(since {since or 'the start'}); check --model and --since")
    report = ReplayReport(model=model, since=since)
    versioned = frame["model_version"].notna()
    report.skipped = int((~versioned).sum())
    registry = Registry(settings)
    for version, part in frame[versioned].groupby("model_version", sort=True):
        v = int(version)
        try:
            scorer = registry.load_scorer(model, v)
        except LoanriskError as exc:
            raise LoanriskError(f"cannot replay {model} v{v}: {exc}") from exc
        part = part.reset_index(drop=True)
        recs = stored_records(part)
        for lo in range(0, len(part), batch):
            chunk = part.iloc[lo:lo + batch]
            decisions = scorer.score(recs[lo:lo + batch])
            _compare(report, chunk, decisions, scorer.classes, sha256=scorer.sha256,
                     max_listed=max_listed)
        report.versions[v] = len(part)
        report.checked += len(part)
    report.seconds = round(time.perf_counter() - t0, 3)
    return report

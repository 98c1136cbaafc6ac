"""Drift: population stability of recent applications against the served version's training data.

PSI = sum over bins of (actual - expected) * ln(actual / expected), with empty bins given a
small ``EPS`` share. Bins come from the version's manifest (``drift_reference``): numeric
attributes on training decile edges (+ a missing bin), categorical attributes by category (top
categories, the rest as ``__other__``, + missing), and ``__score__``, the predicted probability
of the worst class. ``settings.psi_watch`` (0.1) and ``settings.psi_alert`` (0.25) set the levels.

Entry points: :func:`drift` (pure, on frames), :func:`monitor` (store + registry -> report files)
and :func:`drift_gauges` (report -> {attribute: psi} for Prometheus gauges in the service).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loanrisk.config import Settings, get_settings
from loanrisk.errors import LoanriskError

EPS = 1e-4
SCORE = "__score__"


@dataclass
class AttributeDrift:
    """One attribute's PSI and the shares behind it (bin labels in the same order)."""

    psi: float
    level: str
    labels: list[str]
    expected: list[float]
    actual: list[float]


@dataclass
class DriftReport:
    """What `loanrisk monitor` found; ``to_dict`` is the JSON report."""

    name: str
    version: int | None
    since: str | None
    rows: int  # rows compared (after sampling)
    window_rows: int  # rows in the window
    sampled: bool
    level: str  # the worst level: ok | watch | alert
    attributes: dict[str, AttributeDrift] = field(default_factory=dict)
    seconds: float = 0.0
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def psi(expected: np.ndarray, actual: np.ndarray, *, eps: float = EPS) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.clip(np.asarray(expected, dtype=np.float64), eps, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def level_of(value: float, settings: Settings) -> str:
    """ok, watch or alert for a PSI value."""
    if value >= settings.psi_alert:
        return "alert"
    return "watch" if value >= settings.psi_watch else "ok"


def numeric_shares(values: pd.Series | np.ndarray, ref: dict[str, Any]
                   ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(labels, expected, actual) for a numeric attribute over the reference's edges + missing."""
    x = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    edges = np.asarray(ref.get("edges") or [], dtype=np.float64)
    finite = ~np.isnan(x)
    n = max(len(x), 1)
    counts = np.bincount(np.searchsorted(edges, x[finite], side="right"),
                         minlength=len(edges) + 1)
    actual = np.append(counts / n, (~finite).sum() / n)
    expected = np.append(np.asarray(ref.get("shares") or [0.0] * (len(edges) + 1)),
                         float(ref.get("missing", 0.0)))
    bounds = ["-inf", *(f"{e:.4g}" for e in edges), "inf"]
    labels = [f"[{lo}, {hi})" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    return [*labels, "missing"], expected, actual


def categorical_shares(values: pd.Series | np.ndarray, ref: dict[str, Any]
                       ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(labels, expected, actual) over the reference categories, ``__other__`` and missing."""
    s = pd.Series(values, dtype=object)
    missing = s.isna().to_numpy() | (s.astype(str) == "").to_numpy()
    cats = list((ref.get("shares") or {}).keys())
    codes = pd.Categorical(s.where(~missing).astype(str), categories=cats).codes
    codes = np.where(missing, len(cats) + 1, np.where(codes < 0, len(cats), codes))
    n = max(len(s), 1)
    actual = np.bincount(codes, minlength=len(cats) + 2) / n
    expected = np.array([*(float(v) for v in ref["shares"].values()),
                         float(ref.get("other", 0.0)), float(ref.get("missing", 0.0))])
    return [*cats, "__other__", "missing"], expected, actual


def attribute_drift(values: pd.Series | np.ndarray, ref: dict[str, Any], settings: Settings
                    ) -> AttributeDrift:
    """PSI of one attribute's recent values against its reference bins."""
    share = categorical_shares if ref.get("kind") == "categorical" else numeric_shares
    labels, expected, actual = share(values, ref)
    value = psi(expected, actual)
    return AttributeDrift(round(value, 6), level_of(value, settings), labels,
                          [round(float(v), 6) for v in expected],
                          [round(float(v), 6) for v in actual])


def drift(attributes: pd.DataFrame, scores: np.ndarray | None, manifest: dict[str, Any], *,
          settings: Settings | None = None) -> dict[str, AttributeDrift]:
    """PSI of every attribute in the manifest's ``drift_reference`` (and of the score).

    ``attributes``: recent raw attribute values, one column per attribute (missing ones count
    as missing). ``scores``: recent predicted probabilities of the worst class, or None.
    Raises LoanriskError when the manifest has no drift reference.
    """
    settings = settings or get_settings()
    reference = manifest.get("drift_reference")
    if not reference:
        raise LoanriskError(f"model {manifest.get('name')} v{manifest.get('version')}: its "
                            "manifest has no drift_reference; retrain it with this loanrisk")
    out: dict[str, AttributeDrift] = {}
    for name, ref in reference.items():
        if name == SCORE:
            if scores is not None and len(scores):
                out[SCORE] = attribute_drift(np.asarray(scores, dtype=np.float64), ref, settings)
            continue
        col = attributes[name] if name in attributes.columns else pd.Series(
            [None] * len(attributes), dtype=object)
        out[name] = attribute_drift(col, ref, settings)
    return out


def drift_gauges(report: DriftReport | dict[str, Any]) -> dict[str, float]:
    """{attribute: psi} of a report (object or its JSON dict), for Prometheus gauges.

    The service exports each as ``loanrisk_drift_psi{attribute="..."}`` ("__score__" is the
    predicted probability).
    """
    attrs = report.attributes if isinstance(report, DriftReport) else report["attributes"]
    return {name: float(a.psi if isinstance(a, AttributeDrift) else a["psi"])
            for name, a in attrs.items()}


def served_manifest(settings: Settings, *, model: str, version: int | None
                    ) -> tuple[dict[str, Any], int]:
    """The manifest of ``version`` (default: the champion) from the registry."""
    from loanrisk.registry import Registry

    path, version = Registry(settings).version_dir(model, version)
    return json.loads((path / "manifest.json").read_text()), version


def monitor(*, model: str, since: str | None = "7d", version: int | None = None,
            max_rows: int | None = None, out_dir: Path | None = None,
            settings: Settings | None = None, manifest: dict[str, Any] | None = None
            ) -> DriftReport:
    """Compare stored applications of ``model`` since ``since`` with the served version's
    training reference; write report.json and psi.png under ``out_dir`` (default: the home's
    reports/monitor/<model>/<stamp>). The score is compared on rows decided by that version."""
    from loanrisk.store.frames import attribute_frame, parse_since, read_applications, store_engine

    settings = settings or get_settings()
    t0 = time.perf_counter()
    if manifest is None:
        manifest, version = served_manifest(settings, model=model, version=version)
    names = [n for n in manifest.get("drift_reference", {}) if n != SCORE]
    worst = manifest["classes"][-1]
    engine = store_engine(settings.resolved_database_url)
    try:
        window = read_applications(engine, model=model, since=parse_since(since),
                                   max_rows=max_rows or settings.monitor_max_rows,
                                   fields={"attributes": names, "probabilities": [worst]})
    finally:
        engine.dispose()
    frame = window.frame
    if frame.empty:
        raise LoanriskError(f"no stored applications of {model!r} since {since}; widen --since")
    scores = None
    if "p:" + worst in frame.columns:
        mine = frame["model_version"] == version if version is not None else slice(None)
        scores = pd.to_numeric(frame.loc[mine, "p:" + worst], errors="coerce").dropna()
    attrs = drift(attribute_frame(frame, names), None if scores is None else scores.to_numpy(),
                  manifest, settings=settings)
    levels = [a.level for a in attrs.values()]
    level = "alert" if "alert" in levels else "watch" if "watch" in levels else "ok"
    report = DriftReport(model, version, since, len(frame), window.total, window.sampled, level,
                         attrs)
    report.seconds = round(time.perf_counter() - t0, 3)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = out_dir or settings.reports_dir / "monitor" / model / stamp
    write_report(report, out_dir=out_dir, settings=settings)
    return report


def write_report(report: DriftReport, *, out_dir: Path, settings: Settings) -> None:
    """report.json and psi.png (one bar per attribute, watch and alert lines).

    The plot needs matplotlib (the ``train`` extra); a serving-only install writes the JSON alone.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    report.files = {"json": str(out_dir / "report.json")}
    try:
        import matplotlib  # noqa: F401  (the train extra; a serving-only install has none)

        from loanrisk.plots import figure
    except ImportError:
        (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=1))
        return
    report.files["plot"] = str(out_dir / "psi.png")
    items = sorted(report.attributes.items(), key=lambda kv: -kv[1].psi)
    colours = {"ok": "#4c9a2a", "watch": "#e0a100", "alert": "#c62828"}
    fig, ax = figure(figsize=(8, 0.28 * len(items) + 1.5))
    ax.barh([k for k, _ in items][::-1], [v.psi for _, v in items][::-1],
            color=[colours[v.level] for _, v in items][::-1])
    ax.axvline(settings.psi_watch, color=colours["watch"], ls="--", lw=1, label="watch")
    ax.axvline(settings.psi_alert, color=colours["alert"], ls="--", lw=1, label="alert")
    ax.set_xlabel("population stability index")
    ax.set_title(f"{report.name} v{report.version}: drift since {report.since} "
                 f"({report.rows:,} of {report.window_rows:,} applications)", fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "psi.png", dpi=110)
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=1))

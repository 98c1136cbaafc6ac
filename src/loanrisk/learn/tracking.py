"""Logging a `learn` run to MLflow: parameters, metrics, plots, profile and the version's files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loanrisk.integrity import digest_files
from loanrisk.registry import ARTIFACT_DIR, PromotionResult, Registry, VersionInfo
from loanrisk.registry.pyfunc import write_pyfunc

if TYPE_CHECKING:
    from loanrisk.learn.types import LearnOptions, LearnResult


def _flat_params(opts: LearnOptions, result: LearnResult) -> dict[str, str]:
    params: dict[str, Any] = {
        "dataset": opts.dataset or str(opts.data),
        "target": result.schema.target,
        "task": result.schema.task,
        "seed": opts.seed,
        "allow_leaky": opts.allow_leaky,
        "models": ",".join(opts.models),
        "best_model": result.best,
        "sample": opts.sample,
    }
    for t in result.trained:
        model_params: dict[str, Any] = getattr(t.model, "params", lambda: {})()
        for k, v in model_params.items():
            params[f"{t.name}.{k}"] = v
    return {k: str(v)[:500] for k, v in params.items()}


def _metrics(result: LearnResult) -> list[tuple[str, float, int]]:
    """(key, value, step) of every model's metrics, parity and training curve."""
    out: list[tuple[str, float, int]] = []
    for t in result.trained:
        out += [(f"{t.name}.{metric}", float(value), 0)
                for metric, value in t.evaluation.metrics.items() if value == value]  # no NaN
        out.append((f"{t.name}.onnx_parity", float(t.parity), 0))
        hist = getattr(t.model, "history_", None) or {}
        out += [(f"{t.name}.{key}", float(value), step)
                for key, values in hist.items() for step, value in enumerate(values)]
    return out


def _log_batches(client: Any, run_id: str, params: dict[str, str],
                 metrics: list[tuple[str, float, int]]) -> None:
    """Params and metrics in MLflow's batches (at most 100 params / 1000 metrics a call): a
    training curve of thousands of points is a few calls, not thousands of transactions."""
    import time

    from mlflow.entities import Metric, Param

    stamp = int(time.time() * 1000)
    items = list(params.items())
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=[Param(k, v) for k, v in items[i:i + 100]])
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=[Metric(k, v, stamp, step)
                                          for k, v, step in metrics[i:i + 1000]])


def log_run(*, name: str, opts: LearnOptions, result: LearnResult, version_dir: Path,
            registry: Registry) -> tuple[VersionInfo, PromotionResult | None, str]:
    """Log one run, register its best model as a new immutable version, and try the gate."""
    client = registry.client
    run = client.create_run(registry.experiment_id(name), run_name=f"learn-{result.best}",
                            tags={"loanrisk.kind": "learn", "loanrisk.best": result.best})
    run_id = run.info.run_id
    try:
        _log_batches(client, run_id, _flat_params(opts, result), _metrics(result))
        # MLflow's python_function flavour beside the graph: `models:/NAME@champion` loads and
        # serves with MLflow's own tools (the version's source is this directory)
        write_pyfunc(version_dir)
        files = digest_files(version_dir)  # the integrity record, taken from what is logged
        client.log_artifacts(run_id, str(version_dir), ARTIFACT_DIR)
        best = next(t for t in result.trained if t.name == result.best)
        manifest = json.loads((version_dir / "manifest.json").read_text())
        version = registry.register(name=name, run_id=run_id, model=best.name,
                                    sha256=manifest["sha256"], metrics=best.evaluation.metrics,
                                    files=files)
        promotion = None
        if opts.promote:
            promotion = registry.promote(name, version.version, force=opts.force)
        client.set_tag(run_id, "loanrisk.version", str(version.version))
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    return version, promotion, run_id


def attach_report(registry: Registry, run_id: str, report_dir: Path) -> None:
    """Log the finished report (Markdown, plots, profile, summary) and close the run."""
    client = registry.client
    for path in sorted(report_dir.iterdir()):
        if path.is_file():
            client.log_artifact(run_id, str(path), "report")
    client.set_terminated(run_id)

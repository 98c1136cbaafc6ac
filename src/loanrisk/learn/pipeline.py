"""``learn()``: from a loan table to a registered, servable model version.

A short list of calls, one per pipeline stage.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from loanrisk.config import Settings, get_settings
from loanrisk.errors import LoanriskError
from loanrisk.learn.report import finish_report, write_report
from loanrisk.learn.stagelog import StageLog
from loanrisk.learn.stages import (
    fit_models,
    guard_leakage,
    load_inputs,
    monotone_checks,
    monotone_pool,
    pick_best,
    prepare,
    quality_checks,
    time_models,
    write_version_dir,
)
from loanrisk.learn.types import (
    ALL_MODELS,
    LearnOptions,
    LearnResult,
    TrainedModel,
    check_options,
    scorecard_scaling,
)
from loanrisk.profile import leakage_rows, profile
from loanrisk.registry import Registry
from loanrisk.scoring.latency import within_budget
from loanrisk.split import split

if TYPE_CHECKING:
    import pandas as pd

    from loanrisk.schema import Schema

__all__ = ["ALL_MODELS", "LearnOptions", "LearnResult", "TrainedModel", "learn"]

log = logging.getLogger(__name__)


def learn(opts: LearnOptions, settings: Settings | None = None, *,
          table: pd.DataFrame | None = None, schema: Schema | None = None) -> LearnResult:
    """Extract, validate, profile, guard, split, fit, export, evaluate, register and promote.

    The rows come from ``opts`` (a bundled dataset, or a file with its schema file), or from
    ``table`` with its ``schema`` in memory (learning from the store passes them so)."""
    settings = settings or get_settings()
    check_options(opts)
    opts = scorecard_scaling(opts, settings)
    settings.ensure_home()
    log_ = StageLog(total=_expected_stages(opts), progress=opts.progress)
    try:
        result = _run(opts, settings, log_, table=table, schema=schema)
    finally:
        log_.close()
    return result


def _expected_stages(opts: LearnOptions) -> int:
    """Stages a run goes through, for the progress bar: read, profile, leakage, split,
    preprocess, 2-3 per model, serving cost, monotone, (repeats), quality, export, (registry),
    report."""
    per_model = sum(3 if opts.calibrate and m not in ("majority", "scorecard") else 2
                    for m in opts.models)
    return 9 + per_model + (opts.repeats > 1) + opts.register


def _run(opts: LearnOptions, settings: Settings, stages: StageLog, *,
         table: pd.DataFrame | None, schema: Schema | None) -> LearnResult:
    with stages.stage("read and validate"):
        df, schema = load_inputs(opts, table=table, schema=schema)
        df = prepare(df, schema, sample=opts.sample, seed=opts.seed)
    name = opts.name or opts.dataset or schema.name
    y = schema.encode_target(df[schema.target])
    attrs = schema.feature_attributes(allow_leaky=opts.allow_leaky)
    with stages.stage("profile"):
        prof = profile(df, schema)
    with stages.stage("leakage check"):
        leaks = guard_leakage(df, schema, allow_leaky=opts.allow_leaky, seed=opts.seed,
                              threshold=settings.leakage_threshold)
    if opts.use_tuned:
        from loanrisk.learn.tuned import apply_tuned

        opts = apply_tuned(opts, settings, key=opts.dataset or schema.name)
    with stages.stage("split"):
        parts = split(y, seed=opts.seed, names=schema.classes)
    pre, trained = fit_models(opts, schema, df, y, parts, attrs, stages=stages)
    with stages.stage("serving cost"):
        time_models(trained, schema=schema, attrs=attrs, pre=pre, df=df, parts=parts,
                    settings=settings)
    budget = opts.max_latency_us if opts.max_latency_us is not None else settings.max_latency_us
    among = within_budget({t.name: t.latency for t in trained if t.latency is not None}, budget)
    with stages.stage("monotone check"):
        mono = monotone_checks(trained, schema=schema, attrs=attrs, df=df, parts=parts)
    monotone_rule = None
    if opts.require_monotone or settings.require_monotone:
        among, monotone_rule = monotone_pool(trained, mono, among=among,
                                             metric=schema.primary_metric)
    if opts.family is not None:  # retraining the champion's own family: compare like with like
        among = {opts.family} & (among if among is not None else {opts.family})
        if not among:
            raise LoanriskError(f"{opts.family}, the champion's family, is over the latency "
                                "budget: raise --max-latency-us or LOANRISK_MAX_LATENCY_US")
    stats = None
    if opts.repeats > 1:
        from loanrisk.learn.repeats import run_repeats

        with stages.stage("repeated splits"):
            stats = run_repeats(opts, schema, df, y, attrs, first=trained, among=among)
        best = next(t for t in trained if t.name == stats.best)
    else:
        best = pick_best(trained, metric=schema.primary_metric, among=among)
    with stages.stage("decision rule"):
        extras = quality_checks(trained, best=best, schema=schema, attrs=attrs, df=df,
                                parts=parts, y_eval=y[parts.eval], settings=settings, mono=mono)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report_dir = settings.reports_dir / name / stamp
    with stages.stage("version files"):
        version_dir = write_version_dir(report_dir / "model", best=best, schema=schema,
                                        attrs=attrs, df=df, y=y, parts=parts, opts=opts,
                                        leaks=leaks, name=name, input_types=pre.input_types_,
                                        decision=extras["decision"])
    result = LearnResult(name, schema, trained, leaks, best.name, report_dir, {},
                         y_eval=y[parts.eval], repeats=stats, seed=opts.seed,
                         extras={**extras, "tuned_from": dict(opts.tuned_from),
                                 "latency_budget_us": budget,
                                 "monotone_rule": monotone_rule,
                                 "sources": dict(opts.sources),
                                 "checked_rows": {"profile": prof.rows,
                                                  "leakage": leakage_rows(len(df)),
                                                  "table": len(df)}})
    run_id = None
    if opts.register:
        from loanrisk.learn.tracking import log_run

        registry = Registry(settings)
        with stages.stage("registry"):
            result.version, result.promotion, run_id = log_run(
                name=name, opts=opts, result=result, version_dir=version_dir,
                registry=registry)
    with stages.stage("report"):
        result.summary = write_report(result, prof=prof, allow_leaky=opts.allow_leaky,
                                      used=[a.name for a in attrs], stages=stages)
        if run_id is not None:
            from loanrisk.learn.tracking import attach_report

            attach_report(registry, run_id, report_dir)
    finish_report(result, stages)
    return result

"""``learn()``: from a loan table to a registered, servable model version.

A short list of calls, one per pipeline stage.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loanrisk import __version__, manifest
from loanrisk.config import Settings, get_settings
from loanrisk.datasets import load_bundled, load_table
from loanrisk.errors import LeakageError, LoanriskError
from loanrisk.evaluate import Evaluation, evaluate, is_better
from loanrisk.latency import Latency, ServingContext, measure, within_budget
from loanrisk.profile import Leak, leakage_check, profile
from loanrisk.registry import PromotionResult, Registry, VersionInfo, sha256_file
from loanrisk.report import write_report
from loanrisk.schema import Schema
from loanrisk.split import split

log = logging.getLogger(__name__)

ALL_MODELS = ("majority", "linear", "mlp", "gbdt", "ensemble")
ENSEMBLE_MEMBERS = ("mlp", "gbdt")  # what the "ensemble" family averages, fitted before it
Y_COLUMN = manifest.Y_COLUMN


@dataclass
class LearnOptions:
    """What `loanrisk learn` was asked to do."""

    dataset: str | None = None
    data: Path | None = None
    schema: Path | None = None
    name: str | None = None  # registered model name; default: dataset / schema name
    models: tuple[str, ...] = ALL_MODELS
    seed: int = 42
    allow_leaky: bool = False
    promote: bool = True
    force: bool = False
    sample: int | None = None  # stratified subsample of rows (quick runs, tests)
    mlp: dict[str, Any] = field(default_factory=dict)  # MLPConfig overrides
    gbdt: dict[str, Any] = field(default_factory=dict)
    linear: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    register: bool = True
    repeats: int = 1  # seeded splits seed .. seed + repeats - 1; the champion on the mean
    mlp_config: str = "tabular"  # "reference" (the article's network) or "tabular"
    calibrate: bool = True  # fit calibration on validation rows, inside each graph
    use_tuned: bool = True  # read <home>/tuned/<dataset>/<model>.json when present
    tuned_from: dict[str, str] = field(default_factory=dict)  # filled: model -> params file
    max_latency_us: float | None = None  # champion only among models scoring within this p50
    backend: str = "local"  # local | ray: where the repeated splits (seeds after the first) run
    ray_address: str | None = None  # backend ray: the cluster (default RAY_ADDRESS, else local)


@dataclass
class TrainedModel:
    """One fitted model, its single ONNX graph and how that graph scored on the evaluation split."""

    name: str
    model: Any
    graph: bytes
    evaluation: Evaluation
    parity: float
    eval_proba: np.ndarray
    seconds: float
    latency: Latency | None = None  # one application with reasons, as served (learn fills it)


@dataclass
class LearnResult:
    """Everything `learn` produced."""

    name: str
    schema: Schema
    trained: list[TrainedModel]
    leakage: list[Leak]
    best: str
    report_dir: Path
    summary: dict[str, Any]
    version: VersionInfo | None = None
    promotion: PromotionResult | None = None
    y_eval: np.ndarray | None = None
    repeats: Any = None  # repeats.RepeatStats when opts.repeats > 1
    seed: int = 42  # the split seed of the trained models (the registered version's split)
    extras: dict[str, Any] = field(default_factory=dict)  # monotone, decision, tuned, ...


def check_options(opts: LearnOptions) -> None:
    """LoanriskError for unknown model names, mlp designs or a repeat count below 1."""
    from loanrisk.models import MLP_DESIGNS, MODEL_NAMES

    unknown = [m for m in opts.models if m not in MODEL_NAMES]
    if unknown or not opts.models:
        raise LoanriskError(f"unknown model(s) {unknown}: --models takes a comma-separated list "
                            f"of {', '.join(MODEL_NAMES)}")
    if opts.mlp_config not in MLP_DESIGNS:
        raise LoanriskError(f"--mlp-config must be one of {', '.join(MLP_DESIGNS)}, "
                            f"not {opts.mlp_config!r}")
    if opts.repeats < 1:
        raise LoanriskError(f"--repeats must be at least 1, not {opts.repeats}")
    if opts.backend not in ("local", "ray"):
        raise LoanriskError(f"--backend must be local or ray, not {opts.backend!r}")
    if opts.backend == "ray" and opts.repeats < 2:
        raise LoanriskError("--backend ray spreads the repeated splits over Ray tasks: give "
                            "--repeats 2 or more (one split runs here)")
    if opts.max_latency_us is not None and not opts.max_latency_us > 0:
        raise LoanriskError(f"--max-latency-us must be positive, not {opts.max_latency_us:g}")


def load_inputs(opts: LearnOptions) -> tuple[pd.DataFrame, Schema]:
    """The raw table and its schema, from a bundled dataset or a user's files."""
    if opts.dataset:
        if opts.data is not None or opts.schema is not None:
            raise LoanriskError(f"--dataset {opts.dataset} and --data/--schema both say what to "
                                "learn from: give one (a bundled dataset, or your file with its "
                                "schema)")
        return load_bundled(opts.dataset)
    if opts.data is None or opts.schema is None:
        raise LoanriskError(
            "say what to learn from: --dataset NAME (see `loanrisk datasets`), or --data FILE "
            "with --schema FILE (draft one with `loanrisk schema infer FILE --target COLUMN`)"
        )
    schema = Schema.load(opts.schema)
    df = load_table(opts.data, schema)
    if not schema.classes:
        schema = schema.with_classes_from(df[schema.target])
    return df, schema


def prepare(df: pd.DataFrame, schema: Schema, *, sample: int | None, seed: int) -> pd.DataFrame:
    """Validated rows with a known target, optionally a stratified sample."""
    if sample is not None and sample < 1:
        raise LoanriskError(f"--sample {sample}: give a number of rows, at least 1 (leave it out "
                            "to use every row)")
    schema.validate_frame(df)
    df = df[df[schema.target].notna()].reset_index(drop=True)
    if sample and sample < len(df):
        from sklearn.model_selection import train_test_split

        df, _ = train_test_split(df, train_size=sample, random_state=seed,
                                 stratify=df[schema.target])
        df = df.reset_index(drop=True)
    return df


def guard_leakage(df: pd.DataFrame, schema: Schema, *, allow_leaky: bool, seed: int,
                  threshold: float) -> list[Leak]:
    """Leaks among every candidate attribute; refuse when a used feature leaks (unless allowed)."""
    candidates = schema.feature_attributes(allow_leaky=True)
    leaks = leakage_check(df, schema, attributes=candidates, threshold=threshold, seed=seed)
    used = {a.name for a in schema.feature_attributes(allow_leaky=allow_leaky)}
    bad = [lk for lk in leaks if lk.attribute in used]
    if bad and not allow_leaky:
        names = ", ".join(f"{lk.attribute} (score {lk.score:.4f})" for lk in bad)
        raise LeakageError(
            f"these attributes alone predict {schema.target!r} almost perfectly: {names}. "
            "They are probably set from the target or known only after the decision. Mark them "
            "post_decision or excluded in the schema, or pass --allow-leaky to train anyway "
            "(every report will then carry a warning)."
        )
    return leaks


def fit_models(opts: LearnOptions, schema: Schema, df: pd.DataFrame, y: np.ndarray,
               parts: Any, attrs: list[Any]) -> tuple[Any, list[TrainedModel]]:
    """Fit preprocessing on train, then every model; score each model's ONNX graph on eval."""
    from loanrisk.export import OnnxModel, build_graph, parity
    from loanrisk.features import Preprocessor
    from loanrisk.models import make_model

    train, val, ev = (df.iloc[parts.train], df.iloc[parts.val], df.iloc[parts.eval])
    pre = Preprocessor(attrs).fit(train)
    X_tr, X_val = pre.transform(train), pre.transform(val)
    n_classes = len(schema.classes)
    trained: list[TrainedModel] = []
    fitted: dict[str, Any] = {}
    for name in opts.models:
        t0 = time.perf_counter()
        model = make_model(name, seed=opts.seed, task=schema.task,
                           **model_overrides(name, opts, pre, attrs, fitted))
        model.fit(X_tr, y[parts.train], X_val=X_val, y_val=y[parts.val], n_classes=n_classes)
        if opts.calibrate and name != "majority":
            from loanrisk.calibration import calibrate

            model = calibrate(model, X_val=X_val, y_val=y[parts.val])
        fitted[name] = model
        graph = build_graph(pre, model, classes=schema.classes).SerializeToString()
        onnx_model = OnnxModel(graph)
        proba = onnx_model.predict_proba(ev)
        diff = parity(onnx_model, pre, model, ev)
        evaluation = evaluate(name, y[parts.eval], proba, classes=schema.classes)
        evaluation.extra["fit_seconds"] = time.perf_counter() - t0
        trained.append(TrainedModel(name, model, graph, evaluation, diff, proba,
                                    time.perf_counter() - t0))
        log.info("%s: %s", name, {k: round(v, 4) for k, v in evaluation.metrics.items()})
    return pre, trained


def model_overrides(name: str, opts: LearnOptions, pre: Any, attrs: list[Any],
                    fitted: dict[str, Any]) -> dict[str, Any]:
    """Constructor keywords for model ``name``: options, tuned params, members of an ensemble."""
    if name == "mlp":
        return {"design": opts.mlp_config, "progress": opts.progress, **opts.mlp}
    if name == "gbdt":
        return {"monotone": monotone_vector(pre, attrs), **opts.gbdt}
    if name == "linear":
        return dict(opts.linear)
    if name == "ensemble":
        missing = [m for m in ENSEMBLE_MEMBERS if m not in fitted]
        if missing:
            raise LoanriskError(f"the ensemble averages {', '.join(ENSEMBLE_MEMBERS)}: list "
                                f"{', '.join(missing)} before ensemble in --models")
        return {"members": [fitted[m] for m in ENSEMBLE_MEMBERS]}
    return {}


def monotone_vector(pre: Any, attrs: list[Any]) -> list[int]:
    """LightGBM monotone constraints over the preprocessor's output columns."""
    signs = {a.name: a.monotone for a in attrs}
    # only value columns carry the direction; missing indicators and one-hot columns stay free
    return [int(signs.get(src, 0)) if name == src else 0
            for name, src in zip(pre.feature_names_, pre.feature_sources_, strict=True)]


def time_models(trained: list[TrainedModel], *, schema: Schema, attrs: list[Any], pre: Any,
                df: pd.DataFrame, parts: Any, settings: Settings) -> None:
    """Fill each model's ``latency``: its graph scoring evaluation rows one at a time, with
    reasons, as the decision service would serve it."""
    names = [a.name for a in attrs]
    ctx = ServingContext(
        features=names, inputs=dict(pre.input_types_), classes=list(schema.classes),
        task=schema.task, schema=schema.to_dict(),
        reference=manifest.reference_values(df.iloc[parts.train], pre.input_types_))
    records = manifest.records(df.iloc[parts.eval[:50]], names)
    if not records:  # nothing to time on (a tiny table): the models keep latency None
        return
    timed = measure({t.name: t.graph for t in trained}, ctx, records, settings=settings)
    for t in trained:
        t.latency = timed[t.name]


def pick_best(trained: list[TrainedModel], *, metric: str,
              among: set[str] | None = None) -> TrainedModel:
    """The model with the best primary metric (the majority baseline is never chosen), only
    among the names in ``among`` when given."""
    pool = [t for t in trained if among is None or t.name in among] or trained
    contenders = [t for t in pool if t.name != "majority"] or pool
    best = contenders[0]
    for t in contenders[1:]:
        if is_better(t.evaluation.metrics[metric], best.evaluation.metrics[metric], metric=metric):
            best = t
    return best


def write_version_dir(out: Path, *, best: TrainedModel, schema: Schema, attrs: list[Any],
                      df: pd.DataFrame, y: np.ndarray, parts: Any, opts: LearnOptions,
                      leaks: list[Leak], name: str, input_types: dict[str, str],
                      decision: dict[str, Any] | None = None) -> Path:
    """The files of a model version: one graph, the schema, the manifest, the eval split."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(best.graph)
    schema.save(out / "schema.json")
    train, ev = df.iloc[parts.train], df.iloc[parts.eval]
    names = [a.name for a in attrs]
    # protected attributes (never features) ride along for the gate's fairness check
    protected = [a.name for a in schema.attributes
                 if a.protected and a.name in ev.columns and a.name not in names]
    eval_frame = ev[names + protected].copy()
    eval_frame[Y_COLUMN] = y[parts.eval]
    eval_frame.to_parquet(out / "eval.parquet", index=False)
    # the rows this version learned from (train + validation), hashed: the promotion gate leaves
    # them out when it compares a later candidate with this version
    seen_idx = np.concatenate([parts.train, parts.val])
    seen = df.iloc[seen_idx][names].copy()
    seen[Y_COLUMN] = y[seen_idx]
    pd.DataFrame({"hash": manifest.row_hashes(seen, [*names, Y_COLUMN])}).to_parquet(
        out / manifest.TRAIN_ROWS_FILE, index=False)
    golden = ev.head(5)
    adverse = best.eval_proba[:, -1]
    doc = {
        "name": name, "version": None, "model": best.name, "task": schema.task,
        "classes": schema.classes, "positive_class": schema.positive_class,
        "target": schema.target, "features": names,
        "inputs": dict(input_types),
        "sha256": sha256_file(out / "model.onnx"),
        "metrics": best.evaluation.metrics, "primary_metric": schema.primary_metric,
        "reference": manifest.reference_values(train, input_types),
        "typical": manifest.typical_values(train, input_types),
        "ranges": manifest.ranges(train, input_types),
        "categories": manifest.categories(train, input_types),
        "nullable": manifest.missing_seen(df, input_types),
        "drift_reference": manifest.drift_reference(train, input_types, adverse),
        "golden": {"inputs": manifest.records(golden, names),
                   "probabilities": best.eval_proba[:5].tolist()},
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "loanrisk_version": __version__, "seed": opts.seed, "allow_leaky": opts.allow_leaky,
        "leakage": [{"attribute": lk.attribute, "score": lk.score} for lk in leaks],
        "rows": {"train": len(parts.train), "val": len(parts.val), "eval": len(parts.eval)},
        "train_rows": {"file": manifest.TRAIN_ROWS_FILE, "columns": [*names, Y_COLUMN]},
        "decision": decision,
        "calibration": getattr(best.model, "calibration_", None),
    }
    (out / "manifest.json").write_text(json.dumps(doc, indent=1))
    return out


def quality_checks(trained: list[TrainedModel], *, best: TrainedModel, schema: Schema,
                   attrs: list[Any], df: pd.DataFrame, parts: Any, y_eval: np.ndarray,
                   settings: Settings) -> dict[str, Any]:
    """Monotonicity violations of every model, and the decision rule on the best one."""
    from loanrisk.decision import decision_rule
    from loanrisk.monotone import violations

    mono = {t.name: violations(t.graph, train=df.iloc[parts.train], ev=df.iloc[parts.eval],
                               attrs=attrs, task=schema.task) for t in trained}
    return {"monotone": mono,
            "decision": decision_rule(best.eval_proba, task=schema.task, settings=settings,
                                      y=y_eval)}


def learn(opts: LearnOptions, settings: Settings | None = None) -> LearnResult:
    """Extract, validate, profile, guard, split, fit, export, evaluate, register and promote."""
    settings = settings or get_settings()
    check_options(opts)
    settings.ensure_home()
    df, schema = load_inputs(opts)
    name = opts.name or opts.dataset or schema.name
    df = prepare(df, schema, sample=opts.sample, seed=opts.seed)
    y = schema.encode_target(df[schema.target])
    attrs = schema.feature_attributes(allow_leaky=opts.allow_leaky)
    prof = profile(df, schema)
    leaks = guard_leakage(df, schema, allow_leaky=opts.allow_leaky, seed=opts.seed,
                          threshold=settings.leakage_threshold)
    if opts.use_tuned:
        from loanrisk.tune import apply_tuned

        opts = apply_tuned(opts, settings, key=opts.dataset or schema.name)
    parts = split(y, seed=opts.seed, names=schema.classes)
    pre, trained = fit_models(opts, schema, df, y, parts, attrs)
    time_models(trained, schema=schema, attrs=attrs, pre=pre, df=df, parts=parts,
                settings=settings)
    budget = opts.max_latency_us if opts.max_latency_us is not None else settings.max_latency_us
    among = within_budget({t.name: t.latency for t in trained if t.latency is not None}, budget)
    stats = None
    if opts.repeats > 1:
        from loanrisk.repeats import run_repeats

        stats = run_repeats(opts, schema, df, y, attrs, first=trained, among=among)
        best = next(t for t in trained if t.name == stats.best)
    else:
        best = pick_best(trained, metric=schema.primary_metric, among=among)
    extras = quality_checks(trained, best=best, schema=schema, attrs=attrs, df=df, parts=parts,
                            y_eval=y[parts.eval], settings=settings)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report_dir = settings.reports_dir / name / stamp
    version_dir = write_version_dir(report_dir / "model", best=best, schema=schema, attrs=attrs,
                                    df=df, y=y, parts=parts, opts=opts, leaks=leaks, name=name,
                                    input_types=pre.input_types_, decision=extras["decision"])
    result = LearnResult(name, schema, trained, leaks, best.name, report_dir, {},
                         y_eval=y[parts.eval], repeats=stats, seed=opts.seed,
                         extras={**extras, "tuned_from": dict(opts.tuned_from),
                                 "latency_budget_us": budget})
    run_id = None
    if opts.register:
        from loanrisk.tracking import log_run

        registry = Registry(settings)
        result.version, result.promotion, run_id = log_run(
            name=name, opts=opts, result=result, version_dir=version_dir, registry=registry,
        )
    result.summary = write_report(result, prof=prof, allow_leaky=opts.allow_leaky,
                                  used=[a.name for a in attrs])
    if run_id is not None:
        from loanrisk.tracking import attach_report

        attach_report(registry, run_id, report_dir)
    return result

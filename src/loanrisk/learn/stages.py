"""The stages of `learn`, one function each: load and prepare the table, guard against leaks, fit
and export every model, time each graph as served, pick the champion, write the version's files
and check its quality. The sequence that calls them is loanrisk.learn.pipeline."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loanrisk import __version__, manifest
from loanrisk.config import Settings
from loanrisk.datasets import fit_to_schema, load_bundled, load_table
from loanrisk.errors import LeakageError, LoanriskError
from loanrisk.integrity import sha256_file
from loanrisk.learn.evaluate import evaluate, is_better
from loanrisk.learn.stagelog import StageLog
from loanrisk.learn.types import (
    ENSEMBLE_MEMBERS,
    Y_COLUMN,
    LearnOptions,
    TrainedModel,
)
from loanrisk.profile import Leak, leakage_check
from loanrisk.schema import Schema
from loanrisk.scoring.latency import ServingContext, measure

if TYPE_CHECKING:
    from loanrisk.features import Preprocessor
    from loanrisk.schema import Attribute
    from loanrisk.split import Split

log = logging.getLogger(__name__)


def load_inputs(opts: LearnOptions, *, table: pd.DataFrame | None = None,
                schema: Schema | None = None) -> tuple[pd.DataFrame, Schema]:
    """The raw table and its schema: a table in memory with its schema, a bundled dataset, or a
    user's files."""
    if table is not None or schema is not None:
        if table is None or schema is None:
            raise LoanriskError("learn() from a table in memory needs both the table and its "
                                "schema")
        if opts.dataset or opts.data is not None or opts.schema is not None:
            raise LoanriskError("learn() was given a table and also --dataset/--data/--schema: "
                                "give one source")
        df = fit_to_schema(table, schema, where="the table given to learn()")
        if not schema.classes:
            schema = schema.with_classes_from(df[schema.target])
        return df, schema
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
               parts: Split, attrs: list[Attribute], *, stages: StageLog | None = None,
               ) -> tuple[Preprocessor, list[TrainedModel]]:
    """Fit preprocessing on train, then every model; score each model's ONNX graph on eval.
    Each step is a stage of ``stages`` when given (its time and peak memory in the report)."""
    from loanrisk.features import Preprocessor
    from loanrisk.learn.export import OnnxModel, build_graph, parity
    from loanrisk.models import make_model

    stage = (stages or StageLog(total=0, progress=False)).stage
    train, val, ev = (df.iloc[parts.train], df.iloc[parts.val], df.iloc[parts.eval])
    with stage("preprocess"):
        pre = Preprocessor(attrs).fit(train)
        X_tr, X_val = pre.transform(train), pre.transform(val)
    n_classes = len(schema.classes)
    trained: list[TrainedModel] = []
    fitted: dict[str, Any] = {}
    for name in opts.models:
        t0 = time.perf_counter()
        with stage(f"fit {name}"):
            model = make_model(name, seed=opts.seed, task=schema.task,
                               **model_overrides(name, opts, pre, attrs, fitted))
            model.fit(X_tr, y[parts.train], X_val=X_val, y_val=y[parts.val],
                      n_classes=n_classes)
        # the scorecard's probabilities are its points' odds (maximum likelihood, uncalibrated)
        if opts.calibrate and name not in ("majority", "scorecard"):
            from loanrisk.learn.calibration import calibrate

            with stage(f"calibrate {name}"):
                model = calibrate(model, X_val=X_val, y_val=y[parts.val])
        fitted[name] = model
        with stage(f"graph and evaluation {name}"):
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


def model_overrides(name: str, opts: LearnOptions, pre: Preprocessor, attrs: list[Attribute],
                    fitted: dict[str, Any]) -> dict[str, Any]:
    """Constructor keywords for model ``name``: options, tuned params, members of an ensemble."""
    if name == "mlp":
        return {"design": opts.mlp_config, "progress": opts.progress, **opts.mlp}
    if name == "gbdt":
        return {"monotone": monotone_vector(pre, attrs), **opts.gbdt}
    if name == "linear":
        return dict(opts.linear)
    if name == "scorecard":
        return {"columns": scorecard_columns(pre), "monotone": monotone_vector(pre, attrs),
                **opts.scorecard}
    if name == "ensemble":
        missing = [m for m in ENSEMBLE_MEMBERS if m not in fitted]
        if missing:
            raise LoanriskError(f"the ensemble averages {', '.join(ENSEMBLE_MEMBERS)}: list "
                                f"{', '.join(missing)} before ensemble in --models")
        return {"members": [fitted[m] for m in ENSEMBLE_MEMBERS]}
    return {}


def monotone_vector(pre: Preprocessor, attrs: list[Attribute]) -> list[int]:
    """LightGBM monotone constraints over the preprocessor's output columns."""
    signs = {a.name: a.monotone for a in attrs}
    # only value columns carry the direction; missing indicators and one-hot columns stay free
    return [int(signs.get(src, 0)) if name == src else 0
            for name, src in zip(pre.feature_names_, pre.feature_sources_, strict=True)]


def scorecard_columns(pre: Preprocessor) -> list[dict[str, Any]]:
    """Each preprocessed column's name, attribute and (value columns) the scaling to undo."""
    stats = {st["name"]: st for st in pre.numeric_}
    return [{"name": name, "source": src,
             "center": stats[src]["center"] if name == src and src in stats else 0.0,
             "scale": stats[src]["scale"] if name == src and src in stats else 1.0}
            for name, src in zip(pre.feature_names_, pre.feature_sources_, strict=True)]


def time_models(trained: list[TrainedModel], *, schema: Schema, attrs: list[Attribute],
                pre: Preprocessor, df: pd.DataFrame, parts: Split, settings: Settings) -> None:
    """Fill each model's ``latency``: its graph scoring evaluation rows one at a time, with
    reasons, as the decision service would serve it; and a scorecard's ``reasons_agreement``
    (loanrisk.learn.reasons_check) on the evaluation rows."""
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
        if hasattr(t.model, "points_table"):  # a scorecard: points vs substitution reasons
            from loanrisk.learn.reasons_check import AGREEMENT_ROWS, reasons_agreement
            from loanrisk.scoring.decision import decision_rule

            rows = manifest.records(df.iloc[parts.eval[:AGREEMENT_ROWS]], names)
            rule = decision_rule(t.eval_proba, task=schema.task, settings=settings,
                                 y=schema.encode_target(df.iloc[parts.eval][schema.target]))
            t.reasons_agreement = reasons_agreement(t.graph, ctx, rows, settings=settings,
                                                    decision=rule)


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


def write_version_dir(out: Path, *, best: TrainedModel, schema: Schema, attrs: list[Attribute],
                      df: pd.DataFrame, y: np.ndarray, parts: Split, opts: LearnOptions,
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
        # a scorecard: its points table and scaling; its reasons are points below maximum
        "scorecard": ({**best.model.points_table(), "reasons": "points below maximum"}
                      if hasattr(best.model, "points_table") else None),
        # how it was trained: what retraining the same family reuses (see watch.retrain)
        "training": {"family": best.name, "mlp_config": opts.mlp_config,
                     "calibrate": opts.calibrate,
                     "overrides": {m: dict(getattr(opts, m))
                                   for m in ("mlp", "gbdt", "linear", "scorecard")},
                     "tuned_from": dict(opts.tuned_from)},
    }
    (out / "manifest.json").write_text(json.dumps(doc, indent=1))
    return out


def monotone_checks(trained: list[TrainedModel], *, schema: Schema, attrs: list[Attribute],
                    df: pd.DataFrame, parts: Split) -> dict[str, Any]:
    """Each model's monotone violations on the evaluation split (loanrisk.learn.monotone)."""
    from loanrisk.learn.monotone import violations

    return {t.name: violations(t.graph, train=df.iloc[parts.train], ev=df.iloc[parts.eval],
                               attrs=attrs, task=schema.task) for t in trained}


def monotone_pool(trained: list[TrainedModel], mono: dict[str, Any], *,
                  among: set[str] | None, metric: str) -> tuple[set[str], dict[str, Any]]:
    """``learn --require-monotone``: the models (within ``among``) with no violation, and what the
    constraint did: the models it excluded and the primary metric it costs on this split.

    Raises LoanriskError when no model with skill keeps every declared direction.
    """
    pool = {t.name for t in trained if among is None or t.name in among}
    kept = {n for n in pool if mono.get(n, {}).get("violation_rate", 0.0) == 0.0}
    excluded = sorted(pool - kept - {"majority"})
    if not kept - {"majority"}:
        raise LoanriskError(
            "--require-monotone: every model moves risk against a monotone attribute on the "
            f"evaluation split ({', '.join(excluded)}); add gbdt or scorecard to --models (both "
            "keep the schema's directions) or drop --require-monotone")
    free = pick_best(trained, metric=metric, among=among)
    chosen = pick_best(trained, metric=metric, among=kept)
    return kept, {"required": True, "excluded": excluded, "unconstrained_best": free.name,
                  "chosen": chosen.name, "metric": metric,
                  "cost": round(free.evaluation.metrics[metric]
                                - chosen.evaluation.metrics[metric], 6)}


def quality_checks(trained: list[TrainedModel], *, best: TrainedModel, schema: Schema,
                   attrs: list[Attribute], df: pd.DataFrame, parts: Split, y_eval: np.ndarray,
                   settings: Settings, mono: dict[str, Any] | None = None) -> dict[str, Any]:
    """Monotonicity violations of every model, and the decision rule on the best one."""
    from loanrisk.scoring.decision import decision_rule

    if mono is None:
        mono = monotone_checks(trained, schema=schema, attrs=attrs, df=df, parts=parts)
    return {"monotone": mono,
            "decision": decision_rule(best.eval_proba, task=schema.task, settings=settings,
                                      y=y_eval)}

"""Learning from the store: stored applications with outcomes -> a challenger -> the gate.

`loanrisk learn --from-store` takes every stored application of a model that has an outcome
(the latest one wins), turns the outcome into the target class of the champion's schema,
optionally adds the original training table, and calls :func:`loanrisk.learn.pipeline.learn`
with the
champion's schema. The new version's evaluation split is drawn from that new data, and the
registry's gate runs challenger and champion on it: the champion moves only if it is beaten.

Runs are safe to repeat: each carries a run key (by default the model and the schedule period)
as the MLflow tag ``loanrisk.run_key``; a run whose key is already logged is skipped.
`loanrisk schedule --every 7d` runs it once per period in a sleep loop.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from loanrisk.config import Settings, get_settings
from loanrisk.errors import LoanriskError

log = logging.getLogger(__name__)
RUN_KEY_TAG = "loanrisk.run_key"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass
class RetrainOptions:
    """What `loanrisk learn --from-store` was asked to do."""

    model: str
    since: str | None = None
    with_dataset: str | None = None
    with_data: Path | None = None  # the lender's own table (CSV/Parquet), learnt with the store's
    models: tuple[str, ...] | None = None  # None: the champion's family (champion_family)
    seed: int = 42
    min_rows: int = 200
    run_key: str | None = None  # default: one key per call (never skipped)
    progress: bool = False
    gbdt: dict[str, Any] = field(default_factory=dict)  # LGBM overrides, e.g. n_jobs
    promote: bool = True  # try the gate after registering
    force: bool = False  # promote even if the gate says no


@dataclass
class RetrainResult:
    """A retraining run: skipped (key already done) or trained, registered and gated."""

    run_key: str
    skipped: bool
    rows_from_store: int = 0
    rows_from_dataset: int = 0
    unlabelled_outcomes: int = 0
    rows_from_data: int = 0
    family: str | None = None  # the champion's family retrained (None: --models chose)
    version: int | None = None
    promoted: bool = False
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def parse_duration(text: str) -> float:
    """``30s`` / ``15m`` / ``6h`` / ``7d`` / ``2w`` -> seconds; LoanriskError otherwise."""
    m = _DURATION.match(text or "")
    if not m or int(m.group(1)) == 0:
        raise LoanriskError(f"--every {text!r}: use a positive duration such as 7d, 12h or 30m")
    return float(int(m.group(1)) * _SECONDS[m.group(2)])


def period_key(model: str, every_seconds: float, *, now: datetime | None = None) -> str:
    """The run key of the period containing ``now``: ``<model>@<period start, UTC ISO>``."""
    now = now or datetime.now(UTC)
    start = int(now.timestamp() // every_seconds * every_seconds)
    return f"{model}@{datetime.fromtimestamp(start, UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def champion_family(manifest: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """(models to train, LearnOptions fields) that retrain a champion's own family with its
    design and the parameters it was trained with: an ensemble retrains its members and
    re-weights them; the majority and linear baselines are trained beside it for the report."""
    from loanrisk.learn.types import ENSEMBLE_MEMBERS

    training = manifest.get("training") or {}
    family = str(training.get("family") or manifest.get("model") or "gbdt")
    members = ENSEMBLE_MEMBERS if family == "ensemble" else ()
    models = tuple(dict.fromkeys(("majority", "linear", *members, family)))
    fields: dict[str, Any] = {"family": family}
    if training.get("mlp_config"):
        fields["mlp_config"] = str(training["mlp_config"])
    if "calibrate" in training:
        fields["calibrate"] = bool(training["calibrate"])
    for m, params in (training.get("overrides") or {}).items():
        if m in ("mlp", "gbdt", "linear", "scorecard") and isinstance(params, dict):
            fields[m] = dict(params)
    return models, fields


def extract(settings: Settings, *, model: str, since: str | None,
            with_dataset: str | None, with_data: Path | None = None
            ) -> tuple[pd.DataFrame, Any, dict[str, int]]:
    """(training table, champion's Schema, counts) from stored applications with outcomes."""
    from loanrisk.datasets import fit_to_schema, load_bundled
    from loanrisk.registry import Registry
    from loanrisk.schema import Schema
    from loanrisk.store.frames import (
        attribute_frame,
        outcome_index,
        parse_since,
        read_labelled,
        store_engine,
    )

    registry = Registry(settings)
    champ = registry.champion(model)
    if champ is None:
        raise LoanriskError(f"model {model!r} has no champion: learn one first "
                            "(`loanrisk learn --dataset ...`), then learn from the store")
    schema = Schema.load(registry.download(model, champ.version) / "schema.json")
    engine = store_engine(settings.resolved_database_url)
    try:
        labelled = read_labelled(engine, model=model, since=parse_since(since))
    finally:
        engine.dispose()
    idx = outcome_index(labelled["outcome"], schema.classes)
    known = idx >= 0
    features = {a.name for a in schema.feature_attributes()}
    names = [a.name for a in schema.attributes
             if a.name in features or "a:" + a.name in labelled.columns]
    table = attribute_frame(labelled[known].reset_index(drop=True), names)
    table[schema.target] = [schema.classes[i] for i in idx[known]]
    table = table.astype(object).where(table.notna(), None)
    counts = {"store": len(table), "unlabelled": int((~known).sum()), "dataset": 0, "data": 0}
    if with_data is not None:  # the lender's own history, checked against the champion's schema
        from loanrisk.datasets import load_table

        own = load_table(with_data, schema)
        if schema.target not in own.columns:
            raise LoanriskError(f"--with-data {with_data}: no {schema.target!r} column, the "
                                f"target of {model}'s schema")
        cols = [c for c in [*names, schema.target] if c in own.columns]
        counts["data"] = len(own)
        table = pd.concat([table, own[cols]], ignore_index=True)
    if with_dataset:
        original, original_schema = load_bundled(with_dataset)
        if (original_schema.target != schema.target
                or list(original_schema.classes) != list(schema.classes)):
            raise LoanriskError(f"--with-dataset {with_dataset}: its target "
                                f"{original_schema.target} {original_schema.classes} differs "
                                f"from {model}'s "
                                f"{schema.target} {schema.classes}")
        cols = [c for c in [*names, schema.target] if c in original.columns]
        counts["dataset"] = len(original)
        table = pd.concat([table, original[cols]], ignore_index=True)
    table = fit_to_schema(table, schema, where=f"stored applications of {model}")
    return table, schema, counts


def _already_ran(settings: Settings, *, model: str, key: str) -> int | None:
    """The version registered by an earlier run with this key, or None."""
    from loanrisk.registry import Registry

    reg = Registry(settings)
    exp = reg.client.get_experiment_by_name(model)
    if exp is None:
        return None
    runs = reg.client.search_runs([exp.experiment_id],
                                  filter_string=f"tags.`{RUN_KEY_TAG}` = '{key}'", max_results=1)
    if not runs:
        return None
    return int(runs[0].data.tags.get("loanrisk.version", 0)) or None


def learn_from_store(opts: RetrainOptions, settings: Settings | None = None) -> RetrainResult:
    """Extract the stored applications with outcomes, learn from them in memory with the
    champion's schema, gate.

    Raises LoanriskError when there is no champion, too few labelled applications, or the
    data does not fit the champion's schema.
    """
    from loanrisk.learn.pipeline import LearnOptions, learn
    from loanrisk.registry import Registry

    settings = settings or get_settings()
    settings.ensure_home()
    key = opts.run_key or f"{opts.model}@{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}"
    done = _already_ran(settings, model=opts.model, key=key)
    if done is not None:
        log.info("run %s already done (v%s): skipped", key, done)
        return RetrainResult(key, True, version=done, reason=f"run {key} already made v{done}")
    table, schema, counts = extract(settings, model=opts.model, since=opts.since,
                                    with_dataset=opts.with_dataset, with_data=opts.with_data)
    if counts["store"] < opts.min_rows:
        raise LoanriskError(
            f"only {counts['store']} stored applications of {opts.model} have a known outcome "
            f"(since {opts.since or 'the start'}); at least {opts.min_rows} are needed. Record "
            "outcomes with POST /v1/applications/{id}/outcome or widen --since"
            + (f" ({counts['unlabelled']} outcomes are not classes of the schema: "
               f"{schema.classes})" if counts["unlabelled"] else ""))
    fields: dict[str, Any] = {}
    models = opts.models
    if models is None:  # the champion's own family, design and parameters
        registry = Registry(settings)
        champ = registry.champion(opts.model)
        assert champ is not None  # extract refused a model without one
        manifest = json.loads((registry.download(opts.model, champ.version)
                               / "manifest.json").read_text())
        models, fields = champion_family(manifest)
    gbdt = {**fields.pop("gbdt", {}), **opts.gbdt}
    sources = {"the store": counts["store"]}
    if opts.with_dataset:
        sources[opts.with_dataset] = counts["dataset"]
    if opts.with_data is not None:
        sources[Path(opts.with_data).name] = counts["data"]
    log.info("learning %s (%s) from %s (key %s)", opts.model, ", ".join(models),
             ", ".join(f"{n} rows from {k}" for k, n in sources.items()), key)
    res = learn(LearnOptions(name=opts.model, models=models, seed=opts.seed,
                             progress=opts.progress, promote=opts.promote, force=opts.force,
                             gbdt=gbdt, sources=sources, **fields),
                settings, table=table, schema=schema)
    out = RetrainResult(key, False, counts["store"], counts["dataset"], counts["unlabelled"],
                        rows_from_data=counts["data"], family=fields.get("family"))
    if res.version is not None:
        out.version = res.version.version
        client = Registry(settings).client
        for tag, value in ((RUN_KEY_TAG, key), ("loanrisk.source", "store"),
                           ("loanrisk.rows_from_store", str(counts["store"])),
                           ("loanrisk.rows_from_dataset", str(counts["dataset"])),
                           ("loanrisk.rows_from_data", str(counts["data"]))):
            client.set_tag(res.version.run_id, tag, value)
    if res.promotion is not None:
        out.promoted, out.reason = res.promotion.promoted, res.promotion.reason
    return out


def schedule(opts: RetrainOptions, *, every: str, max_runs: int | None = None,
             settings: Settings | None = None,
             sleep: Callable[[float], None] = time.sleep,
             on_result: Callable[[RetrainResult | LoanriskError], None] | None = None) -> int:
    """Run :func:`learn_from_store` once per period of ``every``, forever or ``max_runs`` times.

    Each run's key is the period (see :func:`period_key`), so a restart within a period skips
    the work already done. A LoanriskError (too few outcomes...) is logged and the loop goes on.
    Returns the number of runs attempted.
    """
    seconds = parse_duration(every)
    runs = 0
    while max_runs is None or runs < max_runs:
        key = period_key(opts.model, seconds)
        log.info("scheduled run %d: key %s", runs + 1, key)
        result: RetrainResult | LoanriskError
        try:
            result = learn_from_store(
                RetrainOptions(**{**opts.__dict__, "run_key": key}), settings)
            log.info("run %s: %s", key, "skipped (already done)" if result.skipped else
                     f"v{result.version}, {'promoted' if result.promoted else 'not promoted'}"
                     f" ({result.reason})")
        except LoanriskError as exc:
            log.warning("run %s failed: %s", key, exc)
            result = exc
        if on_result is not None:
            on_result(result)
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        now = time.time()
        wait = (now // seconds + 1) * seconds - now
        log.info("next run in %.0f s", wait)
        sleep(wait)
    return runs

"""Repeated evaluation: the seeded stratified split N times, every model refitted on each.

On ~10,000 rows one 70/30 split moves ROC-AUC by about ±0.01, so one split cannot tell two models
apart. ``run_repeats`` refits preprocessing and every model on the splits of seeds
``seed .. seed + N - 1`` (through ``pipeline.fit_models``), and ``RepeatStats`` holds the mean and
the standard deviation of every metric per model. The champion family is the best on the mean
primary metric; ``explain`` says by how much, relative to the split-to-split spread.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from loanrisk.errors import LoanriskError
from loanrisk.learn.evaluate import LOWER_IS_BETTER, is_better

if TYPE_CHECKING:
    import pandas as pd

    from loanrisk.learn.types import LearnOptions, TrainedModel
    from loanrisk.schema import Attribute, Schema

log = logging.getLogger(__name__)


@dataclass
class RepeatStats:
    """Metrics of every model on every repeated split, and their mean and spread."""

    seeds: list[int]
    per_seed: dict[str, list[dict[str, float]]]  # model -> one metrics dict per seed, seed order
    mean: dict[str, dict[str, float]] = field(default_factory=dict)
    std: dict[str, dict[str, float]] = field(default_factory=dict)
    best: str = ""
    why: str = ""

    def merged(self, model: str) -> dict[str, float]:
        """``{metric: mean, metric_std: std}`` for one model (the summary JSON's layout)."""
        out: dict[str, float] = {}
        for k, v in self.mean[model].items():
            out[k] = v
            out[f"{k}_std"] = self.std[model][k]
        return out


def seeds_for(seed: int, repeats: int) -> list[int]:
    """The split seeds of ``repeats`` repetitions: seed, seed + 1, ...; LoanriskError if < 1."""
    if repeats < 1:
        raise LoanriskError(f"--repeats must be at least 1, not {repeats}")
    return [seed + i for i in range(repeats)]


def aggregate(per_seed: dict[str, list[dict[str, float]]]) -> tuple[dict[str, dict[str, float]],
                                                                     dict[str, dict[str, float]]]:
    """Mean and sample standard deviation (ddof 1; 0 for one repeat) of each metric, NaN-aware."""
    mean: dict[str, dict[str, float]] = {}
    std: dict[str, dict[str, float]] = {}
    for model, rows in per_seed.items():
        mean[model], std[model] = {}, {}
        for key in rows[0]:
            vals = np.array([r[key] for r in rows], dtype=np.float64)
            vals = vals[~np.isnan(vals)]
            mean[model][key] = float(vals.mean()) if vals.size else math.nan
            std[model][key] = float(vals.std(ddof=1)) if vals.size > 1 else 0.0
    return mean, std


def pick_best_mean(stats: RepeatStats, *, metric: str, among: set[str] | None = None) -> str:
    """The model with the best mean ``metric``; the majority baseline only if it is alone.

    With ``among``, only those models compete (e.g. the ones within a latency budget).
    """
    pool = [m for m in stats.mean if among is None or m in among] or list(stats.mean)
    names = [m for m in pool if m != "majority"] or pool
    best = names[0]
    for m in names[1:]:
        if is_better(stats.mean[m][metric], stats.mean[best][metric], metric=metric):
            best = m
    return best


def explain(stats: RepeatStats, *, metric: str, among: set[str] | None = None) -> str:
    """Why the best model won, and by how much relative to the spread over the splits.

    The margin over the runner-up is compared with the standard error of the paired difference
    (both models saw the same splits): above 2 standard errors it is called clear, else within
    the noise of the splits.
    """
    best = stats.best
    n = len(stats.seeds)
    m, s = stats.mean[best][metric], stats.std[best][metric]
    head = f"{best} has the best mean {metric}: {m:.4f} ± {s:.4f} (std over {n} splits)"
    others = [x for x in stats.mean if x not in (best, "majority")
              and (among is None or x in among)]
    if among is not None:
        left_out = sorted(set(stats.mean) - among - {"majority"})
        if left_out:
            head += (f" (among the models within the latency budget; {', '.join(left_out)} "
                     "left out)")
    if not others:
        return head + "; no other model competed."
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    runner = max(others, key=lambda x: sign * np.nan_to_num(stats.mean[x][metric], nan=-np.inf))
    a = np.array([r[metric] for r in stats.per_seed[best]])
    b = np.array([r[metric] for r in stats.per_seed[runner]])
    diff = sign * (a - b)
    margin = float(np.nanmean(diff))
    wins = int(np.sum(diff > 0))
    se = float(np.nanstd(diff, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    spread = max(s, stats.std[runner][metric])
    text = (f"{head}; runner-up {runner} {stats.mean[runner][metric]:.4f} ± "
            f"{stats.std[runner][metric]:.4f}. Margin {margin:+.4f} = "
            f"{margin / spread if spread > 0 else math.inf:.1f}× the split-to-split std; "
            f"{best} won on {wins} of {n} splits")
    if n > 1 and np.isfinite(se):
        verdict = "a clear win" if margin > 2 * se else "within the noise of the splits"
        text += f"; paired difference {margin:+.4f} ± {se:.4f} (standard error): {verdict}."
    else:
        text += "."
    return text


def run_repeats(opts: LearnOptions, schema: Schema, df: pd.DataFrame, y: np.ndarray,
                attrs: list[Attribute], *, first: list[TrainedModel],
                among: set[str] | None = None) -> RepeatStats:
    """Refit preprocessing and every model on the splits of seeds seed .. seed + repeats - 1.

    ``first`` are the models already fitted on the default seed's split (reused, not refitted).
    Returns the per-seed metrics with mean, std, the best model on the mean primary metric
    (only among ``among`` when given) and the explanation. With ``opts.backend == "ray"`` the
    splits after the first run as Ray tasks.
    """
    seeds = seeds_for(opts.seed, opts.repeats)
    per_seed: dict[str, list[dict[str, float]]] = {
        t.name: [dict(t.evaluation.metrics)] for t in first}
    if opts.backend == "ray":
        results = _on_ray(opts, schema, df, y, attrs, seeds[1:])
    else:
        results = []
        with _bar(len(seeds) - 1, opts.progress, "repeated splits") as bar:
            for seed in seeds[1:]:
                results.append(split_metrics(opts, schema, df, y, attrs, seed))
                bar.update(1)
    for metrics in results:
        for name, values in metrics.items():
            per_seed[name].append(values)
    stats = RepeatStats(seeds=seeds, per_seed=per_seed)
    stats.mean, stats.std = aggregate(per_seed)
    stats.best = pick_best_mean(stats, metric=schema.primary_metric, among=among)
    stats.why = explain(stats, metric=schema.primary_metric, among=among)
    return stats


def split_metrics(opts: LearnOptions, schema: Schema, df: pd.DataFrame, y: np.ndarray,
                  attrs: list[Attribute], seed: int) -> dict[str, dict[str, float]]:
    """Fit preprocessing and every model on the split of ``seed``; each model's metrics."""
    from loanrisk.learn.stages import fit_models
    from loanrisk.split import split

    log.info("repeat: split seed %d", seed)
    sub = dataclasses.replace(opts, seed=seed, repeats=1, backend="local")
    parts = split(y, seed=seed, names=schema.classes)
    _, trained = fit_models(sub, schema, df, y, parts, attrs)
    return {t.name: dict(t.evaluation.metrics) for t in trained}


def _on_ray(opts: LearnOptions, schema: Schema, df: pd.DataFrame, y: np.ndarray,
            attrs: list[Attribute], seeds: list[int]) -> list[dict[str, dict[str, float]]]:
    """``split_metrics`` of every seed as one Ray task each (the table is put once); results
    in seed order. A failed task raises here, with the task's error.

    Each task refits from the same seeds with as many torch threads as this process uses (and
    asks Ray for that many CPUs, at most a node's), because a network trained on another number
    of threads rounds differently: on the same kind of CPU the figures equal a local run's.
    """
    from loanrisk.cluster import start_ray

    started = start_ray(opts.ray_address)
    import ray

    try:
        largest = max((n.get("Resources", {}).get("CPU", 1) for n in ray.nodes()
                       if n.get("Alive")), default=1)
        threads = max(1, min(_torch_threads(), int(largest)))
        task = ray.remote(num_cpus=threads)(split_metrics)
        mlp = {**opts.mlp, "threads": opts.mlp.get("threads") or threads}
        quiet = dataclasses.replace(opts, progress=False, mlp=mlp)
        shared = (ray.put(quiet), ray.put(schema), ray.put(df), ray.put(y), ray.put(attrs))
        pending = [task.remote(*shared, seed) for seed in seeds]
        order = {ref: i for i, ref in enumerate(pending)}
        out: list[dict[str, dict[str, float]]] = [{} for _ in seeds]
        bar = _bar(len(seeds), opts.progress, "repeated splits on Ray")
        try:
            while pending:
                done, pending = ray.wait(pending, timeout=1.0)
                for ref in done:
                    out[order[ref]] = ray.get(ref)
                    bar.update(1)
        finally:
            bar.close()
        return out
    finally:
        if started:
            ray.shutdown()


def _torch_threads() -> int:
    """The CPU threads torch uses in this process (its default when torch is not loaded)."""
    import sys

    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else max(1, os.cpu_count() or 1)


def _bar(total: int, show: bool, desc: str) -> Any:
    """A tqdm bar over the repeated splits (only on a terminal, and only when ``show``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="split", disable=None if show else True)


def repeat_table(stats: RepeatStats, *, primary: str, metrics: tuple[str, ...] | None = None,
                 ) -> str:
    """Markdown: one row per model, ``mean ± std`` per metric, the primary metric first."""
    names = list(next(iter(stats.mean.values())))
    cols = [primary, *[c for c in (metrics or names) if c != primary and c in names]]
    rows = ["| model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for model in stats.mean:
        cells = [f"{stats.mean[model][c]:.4f} ± {stats.std[model][c]:.4f}" for c in cols]
        mark = f"**{model}**" if model == stats.best else model
        rows.append(f"| {mark} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def summary_block(stats: RepeatStats) -> dict[str, Any]:
    """The summary JSON's ``repeats`` entry: seeds, the winner and why, per-seed values."""
    return {"n": len(stats.seeds), "seeds": stats.seeds, "best": stats.best, "why": stats.why,
            "per_seed": stats.per_seed}

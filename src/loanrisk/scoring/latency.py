"""What serving each model would cost: one application scored with its reasons, as the service does.

``learn`` runs every candidate's exported graph the way the decision service runs the champion
(:class:`~loanrisk.scoring.scorer.Scorer` on onnxruntime, one thread, the application and one
reference variant per attribute in one call; a scorecard's reasons come from its points, in the
application's own run) on rows of the evaluation split. The report then shows cost
next to quality, and ``learn --max-latency-us`` keeps the champion within a service-level budget.

The figures are wall-clock times on the machine and load of that run: they compare models within
one run; bench/bench_service.py measures the whole service (validation included).
"""

from __future__ import annotations

import gc
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loanrisk.errors import LoanriskError

if TYPE_CHECKING:
    from loanrisk.config import Settings

ROUNDS = 200
WARM_UP = 20
BLOCK = 25  # calls in a row per model: its caches warm, as in a service serving one model


@dataclass(frozen=True)
class Latency:
    """In-process scoring of one application with its reasons: p50 and p99 (µs), graph size."""

    p50_us: float
    p99_us: float
    graph_kib: float

    def as_dict(self) -> dict[str, float]:
        """Rounded figures for the summary JSON."""
        return {"score_p50_us": round(self.p50_us, 1), "score_p99_us": round(self.p99_us, 1),
                "graph_kib": round(self.graph_kib, 1)}


@dataclass(frozen=True)
class ServingContext:
    """What a graph needs besides itself to be scored like a model version (see manifest.json)."""

    features: list[str]
    inputs: dict[str, str]
    classes: list[str]
    task: str
    reference: dict[str, Any]
    schema: dict[str, Any]


def measure(graphs: dict[str, bytes], ctx: ServingContext, records: list[dict[str, Any]], *,
            settings: Settings, rounds: int = ROUNDS) -> dict[str, Latency]:
    """Time ``rounds`` single-application calls of every graph after a warm-up.

    The models take turns in blocks of ``BLOCK`` calls (records taken in turn), so a slower
    moment of a busy machine falls on all of them alike while each runs with warm caches, as a
    service serving one model does; the garbage collector is paused while timing, as
    ``timeit`` does. Raises LoanriskError when there is no record to score.
    """
    if not records:
        raise LoanriskError("no evaluation rows to time the models on")
    scorers = {}
    for name, graph in graphs.items():
        scorers[name] = context_scorer(name, graph, ctx, settings=settings)
        _time_calls(scorers[name], records, range(WARM_UP))
    times = {name: np.empty(rounds) for name in scorers}
    with _collector_paused():
        for block in range(0, rounds, BLOCK):
            for name, scorer in scorers.items():
                span = range(block, min(block + BLOCK, rounds))
                times[name][span.start:span.stop] = _time_calls(scorer, records, span)
    return {name: Latency(p50_us=float(np.percentile(t, 50)) / 1e3,
                          p99_us=float(np.percentile(t, 99)) / 1e3,
                          graph_kib=len(graphs[name]) / 1024) for name, t in times.items()}


def context_scorer(name: str, graph: bytes, ctx: ServingContext, *, settings: Settings,
                   decision: dict[str, Any] | None = None) -> Any:
    """A :class:`~loanrisk.scoring.scorer.Scorer` of ``graph`` as a version with ``ctx`` (and
    the decision rule ``decision``, manifest["decision"]) would be served (no files, no golden
    check)."""
    from loanrisk.scoring.scorer import Scorer
    from loanrisk.scoring.session import serving_session

    manifest = {"name": name, "sha256": hashlib.sha256(graph).hexdigest(),
                "classes": ctx.classes, "task": ctx.task, "features": ctx.features,
                "inputs": ctx.inputs, "reference": ctx.reference, "decision": decision}
    return Scorer(model_dir=Path("."), manifest=manifest, schema=ctx.schema,
                  session=serving_session(graph), settings=settings)


def within_budget(latency: dict[str, Latency], budget_us: float | None) -> set[str] | None:
    """The models whose p50 is within ``budget_us``; None when there is no budget.

    Raises LoanriskError naming the fastest candidate when none fits (the majority baseline,
    which has no skill, never counts).
    """
    if budget_us is None:
        return None
    if budget_us <= 0:
        raise LoanriskError(f"--max-latency-us (LOANRISK_MAX_LATENCY_US) must be positive, not "
                            f"{budget_us:g}")
    if not latency:
        raise LoanriskError("the latency budget needs timed models, and none could be timed "
                            "(no evaluation rows): drop --max-latency-us for this table")
    fits = {m for m, lat in latency.items() if lat.p50_us <= budget_us and m != "majority"}
    if not fits:
        timed = {m: lat for m, lat in latency.items() if m != "majority"} or latency
        fastest = min(timed, key=lambda m: timed[m].p50_us)
        raise LoanriskError(
            f"no model scores one application within the latency budget of {budget_us:g} µs "
            "(--max-latency-us or LOANRISK_MAX_LATENCY_US) on this "
            f"machine: the fastest is {fastest} at {timed[fastest].p50_us:.0f} µs (p50). Raise "
            "the budget, or train a smaller model (e.g. --models linear,gbdt).")
    return fits


def scorer_p50_us(scorer: Any, records: list[dict[str, Any]], *, rounds: int = ROUNDS) -> float:
    """p50 (µs) of ``scorer.score([record])`` over ``rounds`` calls after a warm-up, the
    collector paused: what one application with its reasons costs on this machine now."""
    if not records:
        raise LoanriskError("no record to time the model on")
    _time_calls(scorer, records, range(WARM_UP))
    with _collector_paused():
        times = _time_calls(scorer, records, range(rounds))
    return float(np.percentile(times, 50)) / 1e3


def _time_calls(scorer: Any, records: list[dict[str, Any]], calls: range) -> list[int]:
    """Nanoseconds of ``scorer.score([record])`` for each call (records taken in turn)."""
    out = []
    for i in calls:
        record = [records[i % len(records)]]
        t = time.perf_counter_ns()
        scorer.score(record)
        out.append(time.perf_counter_ns() - t)
    return out


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The garbage collector off while timing (as ``timeit`` does), as it was afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

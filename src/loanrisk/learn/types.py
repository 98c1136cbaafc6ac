"""What a `learn` run is asked to do and what it produces: the options and the shared result
types every learning module speaks (stages, repeats, tuning, tracking, the report)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loanrisk import manifest
from loanrisk.errors import LoanriskError

if TYPE_CHECKING:
    from loanrisk.config import Settings
    from loanrisk.learn.evaluate import Evaluation
    from loanrisk.learn.repeats import RepeatStats
    from loanrisk.models.base import LoanModel
    from loanrisk.profile import Leak
    from loanrisk.registry import PromotionResult, VersionInfo
    from loanrisk.schema import Schema
    from loanrisk.scoring.latency import Latency

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
    scorecard: dict[str, Any] = field(default_factory=dict)  # pdo, base_points, base_odds, ...
    progress: bool = True
    register: bool = True
    repeats: int = 1  # seeded splits seed .. seed + repeats - 1; the champion on the mean
    mlp_config: str = "tabular"  # "reference" (the article's network) or "tabular"
    calibrate: bool = True  # fit calibration on validation rows, inside each graph
    use_tuned: bool = True  # read <home>/tuned/<dataset>/<model>.json when present
    tuned_from: dict[str, str] = field(default_factory=dict)  # filled: model -> params file
    max_latency_us: float | None = None  # champion only among models scoring within this p50
    require_monotone: bool = False  # champion only among models with no monotone violation
    family: str | None = None  # the champion only from this family (retraining the champion's)
    sources: dict[str, int] = field(default_factory=dict)  # rows from each source, for the report
    backend: str = "local"  # local | ray: where the repeated splits (seeds after the first) run
    ray_address: str | None = None  # backend ray: the cluster (default RAY_ADDRESS, else local)


@dataclass
class TrainedModel:
    """One fitted model, its single ONNX graph and how that graph scored on the evaluation split."""

    name: str
    model: LoanModel
    graph: bytes
    evaluation: Evaluation
    parity: float
    eval_proba: np.ndarray
    seconds: float
    latency: Latency | None = None  # one application with reasons, as served (learn fills it)
    # a scorecard: how often its points reasons agree with substitution reasons (learn fills it)
    reasons_agreement: dict[str, Any] | None = None


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
    repeats: RepeatStats | None = None  # when opts.repeats > 1
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
    if opts.family is not None and opts.family not in opts.models:
        raise LoanriskError(f"the champion's family {opts.family!r} is not among the models to "
                            f"train ({', '.join(opts.models)})")
    if opts.max_latency_us is not None and not opts.max_latency_us > 0:
        raise LoanriskError(f"--max-latency-us must be positive, not {opts.max_latency_us:g}")
    method = opts.scorecard.get("method")
    if method is not None and method not in ("penalised", "woe"):
        raise LoanriskError(f"--scorecard-method must be 'penalised' or 'woe', not {method!r}")
    for key, flag, kind in (("pdo", "--pdo", "positive"), ("base_odds", "--base-odds",
                                                            "positive"),
                            ("base_points", "--base-points", "finite")):
        value = opts.scorecard.get(key)
        if value is not None and not (math.isfinite(value)
                                      and (value > 0 or kind == "finite")):
            raise LoanriskError(f"{flag} must be a {kind} number, not {value:g}")


def scorecard_scaling(opts: LearnOptions, settings: Settings) -> LearnOptions:
    """``opts`` with the scorecard's points scaling (pdo, base_points, base_odds) and its fit
    (method) taken from the configuration (LOANRISK_SCORECARD_*) wherever the options do not
    set them."""
    scaling = {"pdo": settings.scorecard_pdo, "base_points": settings.scorecard_base_points,
               "base_odds": settings.scorecard_base_odds, "method": settings.scorecard_method}
    return replace(opts, scorecard={**scaling, **opts.scorecard})

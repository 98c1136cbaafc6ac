"""`loanrisk tune`: Optuna TPE search with median pruning, on the validation split only.

The data are split exactly as `learn` splits them (seeded stratified 70/30, validation carved
from the 70%); preprocessing is fitted on the training rows and every trial is scored on the
validation rows by the schema's primary metric. The evaluation rows are never touched. Trials
report an intermediate validation score per boosting round (gbdt: minus the log loss every 10
rounds) or per epoch (mlp: minus the validation loss of the first member) so the MedianPruner
stops poor ones early. A tabular mlp trial trains the same number of members as `learn` does: with
one member per trial the winner on validation did worse on evaluation than the defaults. For the
same reason the bin method is not searched: tree bins (PLE-T) beat quantile bins over 5 splits
(bench/RESULTS.md), yet quantile bins could win on the one validation split and lose on evaluation.

The study lives in ``sqlite:///<home>/optuna.db`` under the name ``<dataset>-<model>`` (running
again resumes it); the best parameters go to ``<home>/tuned/<dataset>/<model>.json``, which
`learn` reads (``apply_tuned``), and the optimisation history to ``tuning_<model>.png`` beside it.

``--backend ray --workers N`` runs the trials as N Ray tasks on a cluster (``--ray-address`` or
``RAY_ADDRESS``; a local Ray otherwise), all writing to the same study: each task prepares the
same split itself and draws its own TPE seed; pruning compares across all of them. The storage
must be reachable from every worker: the SQLite default works on one machine (a 60 s lock wait
absorbs concurrent writes); for several machines set ``LOANRISK_OPTUNA_STORAGE`` to a database
URL (e.g. ``postgresql+psycopg://host/db``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loanrisk.errors import LoanriskError
from loanrisk.learn.tuned import TUNABLE, tuned_path

if TYPE_CHECKING:
    import optuna

    from loanrisk.config import Settings

log = logging.getLogger(__name__)
# The first trial of a new study is the shipped default, so tuning never starts below it
DEFAULTS: dict[str, dict[str, Any]] = {
    "gbdt": {"learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 20, "subsample": 0.8,
             "colsample_bytree": 0.8, "reg_lambda": 1e-3},
    "linear": {"alpha": 1e-4, "penalty": "l2", "max_iter": 20},
    "mlp": {"width": 128, "depth": 4, "dropout": 0.3, "lr": 0.012, "weight_decay": 1e-4,
            "batch_size": 1536, "n_bins": 8},
    # the penalised fit's shape and C (a trial is one fit; learn without a tuned C runs a 5-fold CV)
    "scorecard": {"max_bins": 20, "min_bin_share": 0.02, "smoothness": 0.3,
                  "category_penalty": 3.0, "C": 0.02},
}


@dataclass
class TuneOptions:
    """What `loanrisk tune` was asked to do."""

    model: str
    dataset: str | None = None
    data: Path | None = None
    schema: Path | None = None
    trials: int = 20
    timeout: float | None = None  # seconds for this call (Optuna stops starting new trials)
    seed: int = 42
    sample: int | None = None
    mlp_config: str = "tabular"
    max_epochs: int | None = None  # cap per mlp trial (tests)
    progress: bool = True
    backend: str = "local"  # local | ray
    workers: int = 1  # Ray tasks (backend ray)
    ray_address: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TuneResult:
    """The finished study: best value and parameters, where they were written."""

    study_name: str
    storage: str
    best_value: float
    best_params: dict[str, Any]
    n_trials: int
    n_pruned: int
    seconds: float
    params_path: Path
    plot_path: Path


def storage_url(settings: Settings) -> str:
    """The Optuna RDB storage: LOANRISK_OPTUNA_STORAGE, else ``sqlite:///<home>/optuna.db``."""
    return settings.optuna_storage or f"sqlite:///{(settings.home / 'optuna.db').resolve()}"


def _storage(url: str) -> Any:
    """An RDBStorage for ``url``; SQLite waits up to 60 s for a lock (parallel Ray trials)."""
    import optuna

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def _sampler_pruner(seed: int) -> tuple[Any, Any]:
    import optuna

    return (optuna.samplers.TPESampler(seed=seed),
            optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5))


def run_trials(opts: TuneOptions, study_name: str, storage: str, n_trials: int,
               seed: int) -> int:
    """Run ``n_trials`` of an existing study (one Ray task); the number this task ran."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _, data = _prepare(opts)
    sampler, pruner = _sampler_pruner(seed)
    study = optuna.load_study(study_name=study_name, storage=_storage(storage), sampler=sampler,
                              pruner=pruner)
    study.optimize(_objective(opts, data), n_trials=n_trials, timeout=opts.timeout,
                   gc_after_trial=True)
    return n_trials


def _optimize_on_ray(opts: TuneOptions, study: Any, storage: str, seed: int,
                     data: dict[str, Any]) -> None:
    """Spread ``opts.trials`` over ``opts.workers`` Ray tasks; a progress bar over the study.

    A queued trial (the defaults, on a new study) is taken by this process before any task
    starts and run here beside them: SQLite cannot lock the row, so two tasks could otherwise
    both take it and run it twice.
    """
    import optuna

    from loanrisk.cluster import start_ray

    started = start_ray(opts.ray_address)
    import ray

    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    queued = study.ask() if waiting else None
    try:
        remote = opts.trials - (queued is not None)
        share = [remote // opts.workers + (i < remote % opts.workers)
                 for i in range(opts.workers)]
        task = ray.remote(run_trials)
        worker_opts = dataclasses.replace(opts, progress=False)
        pending = [task.remote(worker_opts, study.study_name, storage, n, seed + 1000 * (i + 1))
                   for i, n in enumerate(share) if n]
        before = len(study.trials) - (queued is not None)
        bar = _bar(opts.trials, opts.progress)
        try:
            if queued is not None:
                _run_one(study, queued, _objective(opts, data))
            while pending:
                _done_refs, pending = ray.wait(pending, timeout=1.0)
                ray.get(_done_refs)  # a failed task raises here
                bar.n = min(opts.trials, len(study.get_trials(deepcopy=False)) - before)
                bar.refresh()
        finally:
            bar.close()
    finally:
        if started:
            ray.shutdown()


def _run_one(study: Any, trial: Any, objective: Any) -> None:
    """Evaluate one asked trial and tell the study how it ended (as ``study.optimize`` would)."""
    import optuna

    try:
        value = objective(trial)
    except optuna.TrialPruned:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    except BaseException:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    else:
        study.tell(trial, value)


def _bar(total: int, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="trial", desc="tuning", disable=None if progress else True,
                leave=False)


def suggest(trial: optuna.Trial, model: str, *, design: str) -> dict[str, Any]:
    """One trial's hyperparameters for ``model`` (the search spaces)."""
    if model == "gbdt":
        return {"learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
                "num_leaves": trial.suggest_int("num_leaves", 4, 96, log=True),
                "min_child_samples": trial.suggest_int("min_child_samples", 5, 200, log=True),
                "subsample": trial.suggest_float("subsample", 0.5, 1.0),
                "colsample_bytree": trial.suggest_float("colsample_bytree", 0.2, 1.0),
                "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True)}
    if model == "scorecard":
        logs = {"min_bin_share": (0.005, 0.05), "smoothness": (0.03, 10.0),
                "category_penalty": (0.3, 30.0), "C": (1e-3, 1.0)}
        return {"max_bins": trial.suggest_int("max_bins", 5, 40, log=True),
                **{k: trial.suggest_float(k, lo, hi, log=True) for k, (lo, hi) in logs.items()}}
    if model == "linear":
        return {"alpha": trial.suggest_float("alpha", 1e-6, 1e-1, log=True),
                "penalty": trial.suggest_categorical("penalty", ["l2", "l1", "elasticnet"]),
                "max_iter": trial.suggest_int("max_iter", 5, 60, log=True)}
    width = trial.suggest_categorical("width", [64, 128, 256])
    depth = trial.suggest_int("depth", 1, 4)
    drop = trial.suggest_float("dropout", 0.0, 0.5)
    params: dict[str, Any] = {
        "hidden": [max(8, width >> i) for i in range(depth)], "dropout": [drop] * depth,
        "lr": trial.suggest_float("lr", 1e-3, 3e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [256, 512, 1536])}
    if design == "tabular":
        params["n_bins"] = trial.suggest_categorical("n_bins", [4, 8, 16, 32])
        params["bins"] = "tree"  # not searched: see the module's docstring
    return params


def _objective(opts: TuneOptions, data: dict[str, Any]) -> Any:
    """The Optuna objective: fit on train, score the primary metric on validation."""
    import numpy as np

    from loanrisk.learn.evaluate import compute_metrics
    from loanrisk.models import make_model

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, opts.model, design=opts.mlp_config)
        over: dict[str, Any] = dict(params)
        if opts.model == "gbdt":
            over["monotone"] = data["monotone"]
            over["callbacks"] = [_lgb_pruning(trial)]
        elif opts.model == "scorecard":
            over.update(columns=data["columns"], monotone=data["monotone"])
        elif opts.model == "mlp":
            over.update(design=opts.mlp_config, progress=False, on_epoch=_mlp_pruning(trial))
            if opts.max_epochs:
                over["max_epochs"] = opts.max_epochs
        model = make_model(opts.model, seed=opts.seed, task=data["task"], **over)
        model.fit(data["X_tr"], data["y_tr"], X_val=data["X_val"], y_val=data["y_val"],
                  n_classes=data["n_classes"])
        proba = model.predict_proba(data["X_val"])
        score = compute_metrics(data["y_val"], proba, n_classes=data["n_classes"])[data["metric"]]
        trial.set_user_attr("params", params)
        return float(score) if np.isfinite(score) else 0.0

    return objective


def _lgb_pruning(trial: optuna.Trial, every: int = 10) -> Any:
    """LightGBM callback: report minus the validation loss every ``every`` rounds; prune."""
    import optuna

    def callback(env: Any) -> None:
        if env.iteration % every or not env.evaluation_result_list:
            return
        value = float(env.evaluation_result_list[0][2])
        trial.report(-value, env.iteration)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at boosting round {env.iteration}")

    return callback


def _mlp_pruning(trial: optuna.Trial) -> Any:
    """mlp epoch hook: report minus the validation loss per epoch; prune."""
    import optuna

    def on_epoch(epoch: int, row: dict[str, float]) -> None:
        trial.report(-float(row["val_loss"]), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    return on_epoch


FIRST_SEED = 42  # studies without a -seed suffix hold trials of this split


def _prepare(opts: TuneOptions) -> tuple[str, dict[str, Any]]:
    """(dataset key, the train/validation matrices) exactly as `learn` splits them."""
    from loanrisk.features import Preprocessor
    from loanrisk.learn.stages import load_inputs, monotone_vector, prepare, scorecard_columns
    from loanrisk.learn.types import LearnOptions
    from loanrisk.split import split

    lo = LearnOptions(dataset=opts.dataset, data=opts.data, schema=opts.schema)
    df, schema = load_inputs(lo)
    df = prepare(df, schema, sample=opts.sample, seed=opts.seed)
    y = schema.encode_target(df[schema.target])
    attrs = schema.feature_attributes()
    # the evaluation rows are never read below
    parts = split(y, seed=opts.seed, names=schema.classes)
    pre = Preprocessor(attrs).fit(df.iloc[parts.train])
    data = {"X_tr": pre.transform(df.iloc[parts.train]), "y_tr": y[parts.train],
            "X_val": pre.transform(df.iloc[parts.val]), "y_val": y[parts.val],
            "n_classes": len(schema.classes), "task": schema.task,
            "metric": schema.primary_metric, "monotone": monotone_vector(pre, attrs),
            "columns": scorecard_columns(pre)}
    return opts.dataset or schema.name, data


def tune(opts: TuneOptions, settings: Settings | None = None) -> TuneResult:
    """Run (or resume) the study, save the best parameters and the history plot.

    Raises LoanriskError for a model that cannot be tuned or a non-positive trial count.
    """
    import optuna

    from loanrisk.config import get_settings

    if opts.model not in TUNABLE:
        raise LoanriskError(f"--model must be one of {', '.join(TUNABLE)}, not {opts.model!r}")
    if opts.trials < 1:
        raise LoanriskError(f"--trials must be at least 1, not {opts.trials}")
    if opts.timeout is not None and not opts.timeout > 0:
        raise LoanriskError(f"--timeout must be a number of seconds above 0, not {opts.timeout}")
    if opts.backend not in ("local", "ray") or opts.workers < 1:
        raise LoanriskError(f"--backend {opts.backend!r} --workers {opts.workers}: use local or "
                            "ray, and at least one worker")
    settings = settings or get_settings()
    settings.ensure_home()
    key, data = _prepare(opts)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # trials are only comparable on one split: another --seed or --sample is another study
    study_name = (f"{key}-{opts.model}" + (f"-{opts.mlp_config}" if opts.model == "mlp" else "")
                  + (f"-seed{opts.seed}" if opts.seed != FIRST_SEED else "")
                  + (f"-n{opts.sample}" if opts.sample else ""))
    storage = storage_url(settings)
    seed = opts.seed + len(_done(storage, study_name))
    sampler, pruner = _sampler_pruner(seed)
    study = optuna.create_study(
        study_name=study_name, storage=_storage(storage), direction="maximize",
        load_if_exists=True, sampler=sampler, pruner=pruner)
    if not study.trials:
        defaults = dict(DEFAULTS[opts.model])
        if opts.model == "mlp" and opts.mlp_config != "tabular":
            defaults = {k: v for k, v in defaults.items() if k != "n_bins"}
        study.enqueue_trial(defaults)
    t0 = time.perf_counter()
    if opts.backend == "ray":
        _optimize_on_ray(opts, study, storage, seed, data)
    else:
        study.optimize(_objective(opts, data), n_trials=opts.trials, timeout=opts.timeout,
                       show_progress_bar=opts.progress, gc_after_trial=True)
    seconds = time.perf_counter() - t0
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise LoanriskError(f"no trial of study {study_name!r} finished; raise --timeout")
    best = study.best_trial
    path = tuned_path(settings, key, opts.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"model": opts.model, "params": best.user_attrs["params"], "value": best.value,
           "metric": data["metric"], "split": "validation", "study": study_name,
           "storage": storage.split("@")[-1], "trials": len(study.trials), "seed": opts.seed,
           "backend": opts.backend}
    if opts.model == "mlp":
        doc["design"] = opts.mlp_config
    path.write_text(json.dumps(doc, indent=1))
    plot = history_plot(study, path.with_name(f"tuning_{opts.model}.png"), metric=data["metric"])
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return TuneResult(study_name, storage, float(study.best_value), doc["params"],
                      len(study.trials), pruned, seconds, path, plot)


def _done(storage: str, name: str) -> list[Any]:
    """Trials already stored for ``name`` (a resumed study draws fresh TPE seeds)."""
    import optuna

    try:
        return list(optuna.load_study(study_name=name, storage=storage).trials)
    except KeyError:
        return []


def history_plot(study: optuna.Study, path: Path, *, metric: str) -> Path:
    """Validation score of every finished trial and the best so far, as a PNG."""
    import optuna

    from loanrisk.plots import figure

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    xs = [t.number for t in done]
    ys = [float(t.value) for t in done]  # type: ignore[arg-type]
    best = [max(ys[: i + 1]) for i in range(len(ys))]
    fig, ax = figure(figsize=(6, 4))
    ax.scatter(xs, ys, s=14, label="trial (validation)")
    ax.step(xs, best, where="post", color="C1", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(f"{study.study_name}: optimisation history")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path

"""Model-quality commands: `loanrisk evaluate` (repeated splits) and `loanrisk tune` (Optuna)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

Opt = typer.Option  # short alias: keeps the many option lines readable


def register(app: typer.Typer) -> None:
    """Add `evaluate` and `tune` to the loanrisk app."""
    from loanrisk.cli.common import console, friendly, print_means

    @app.command()
    @friendly
    def evaluate(
        dataset: Annotated[str | None, Opt(
            help="A bundled dataset (see `loanrisk datasets`).")] = None,
        data: Annotated[Path | None, Opt(help="Your loan table: CSV, CSV.gz or Parquet.")] = None,
        schema: Annotated[Path | None, Opt(help="The table's schema JSON.")] = None,
        models: Annotated[str, Opt(
            help="Comma-separated models to compare.")] = "majority,linear,mlp,gbdt,ensemble",
        repeats: Annotated[int, Opt(
            help="Number of seeded 70/30 splits (seeds seed..seed+N-1).")] = 5,
        seed: Annotated[int | None, Opt(
            help="First split seed (default: LOANRISK_SEED, 42).")] = None,
        mlp_config: Annotated[str, Opt(help="mlp design: 'tabular' or 'reference'.")] = "tabular",
        allow_leaky: Annotated[bool, Opt(
            "--allow-leaky",
            help="Use post-decision and leaky attributes (reports carry a warning).")] = False,
        sample: Annotated[int | None, Opt(help="Stratified sample of this many rows.")] = None,
        mlp_epochs: Annotated[int | None, Opt(help="Cap the network's training epochs.")] = None,
        summary_json: Annotated[Path | None, Opt(help="Also write the summary JSON here.")] = None,
        backend: Annotated[str, Opt(
            help="local, or ray: the splits after the first as Ray tasks (pip install "
                 "'loanrisk\\[scale]').")] = "local",
        ray_address: Annotated[str | None, Opt(
            help="Ray cluster address (default: RAY_ADDRESS, else a local Ray).")] = None,
        quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress bars.")] = False,
    ) -> None:
        """Compare models over repeated splits (mean ± std); writes a report, registers nothing."""
        from loanrisk.learn.pipeline import LearnOptions, learn

        opts = LearnOptions(
            dataset=dataset, data=data, schema=schema, seed=_seed(seed), allow_leaky=allow_leaky,
            sample=sample, progress=not quiet, register=False, promote=False, repeats=repeats,
            models=tuple(m.strip() for m in models.split(",") if m.strip()),
            mlp={"max_epochs": mlp_epochs} if mlp_epochs else {}, mlp_config=mlp_config,
            backend=backend, ray_address=ray_address)
        result = learn(opts)
        summary = result.summary
        if summary.get("warning"):
            console.print(f"[bold yellow]{summary['warning']}[/]", highlight=False)
        print_means(console, summary)
        if summary.get("repeats"):
            console.print(summary["repeats"]["why"], highlight=False)
        console.print(f"report: {result.report_dir / 'report.md'}")
        if summary_json:
            summary_json.parent.mkdir(parents=True, exist_ok=True)
            summary_json.write_text(json.dumps(summary, indent=1))

    @app.command()
    @friendly
    def tune(
        model: Annotated[str, Opt(help="Model to tune: mlp, gbdt, linear or scorecard.")],
        trials: Annotated[int, Opt(help="Trials to run in this call (the study resumes).")] = 20,
        timeout: Annotated[float | None, Opt(
            help="Stop starting trials after this many seconds.")] = None,
        dataset: Annotated[str | None, Opt(
            help="A bundled dataset (see `loanrisk datasets`).")] = None,
        data: Annotated[Path | None, Opt(help="Your loan table: CSV, CSV.gz or Parquet.")] = None,
        schema: Annotated[Path | None, Opt(help="The table's schema JSON.")] = None,
        seed: Annotated[int | None, Opt(
            help="Split seed, the same split as `learn` (default: LOANRISK_SEED, 42).")] = None,
        sample: Annotated[int | None, Opt(help="Stratified sample of this many rows.")] = None,
        mlp_config: Annotated[str, Opt(
            help="mlp design to tune: 'tabular' or 'reference'.")] = "tabular",
        mlp_epochs: Annotated[int | None, Opt(help="Cap each mlp trial's epochs.")] = None,
        backend: Annotated[str, Opt(
            help="local (this process) or ray (trials as Ray tasks; pip install "
                 "'loanrisk\\[scale]').")] = "local",
        workers: Annotated[int, Opt(help="Ray tasks sharing the trials (backend ray).")] = 2,
        ray_address: Annotated[str | None, Opt(
            help="Ray cluster address (default: RAY_ADDRESS, else a local Ray).")] = None,
        quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress bar.")] = False,
    ) -> None:
        """Search hyperparameters with Optuna (TPE, median pruning) on the validation split only."""
        from loanrisk.learn.tune import TuneOptions
        from loanrisk.learn.tune import tune as run_tune

        res = run_tune(TuneOptions(model=model, dataset=dataset, data=data, schema=schema,
                                   trials=trials, timeout=timeout, seed=_seed(seed), sample=sample,
                                   mlp_config=mlp_config, max_epochs=mlp_epochs,
                                   progress=not quiet, backend=backend,
                                   workers=workers if backend == "ray" else 1,
                                   ray_address=ray_address))
        console.print(f"study [bold]{res.study_name}[/] ({res.storage}): {res.n_trials} trials, "
                      f"{res.n_pruned} pruned, {res.seconds:.0f}s; best validation score "
                      f"{res.best_value:.4f}", highlight=False)
        console.print(f"best params: {json.dumps(res.best_params)}", highlight=False)
        console.print(f"saved: {res.params_path} (used by `loanrisk learn`); plot: {res.plot_path}")


def _seed(seed: int | None) -> int:
    """The split seed: the option, else the configuration's (as `learn` does)."""
    from loanrisk.config import get_settings

    return seed if seed is not None else get_settings().seed



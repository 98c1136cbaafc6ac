"""The `loanrisk` command line: every command is a thin wrapper over a pipeline function."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from loanrisk.cli.common import LEARN_DEFAULT_MODELS, console, err_console, friendly, print_means

app = typer.Typer(
    name="loanrisk",
    help="Learn loan grades and risk tiers from your own data, and serve them safely.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
schema_app = typer.Typer(help="Draft and check data schemas.", no_args_is_help=True)
models_app = typer.Typer(help="Registered model versions and the champion.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
app.add_typer(models_app, name="models")


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # a tracking server that is down should be reported in seconds, not after MLflow's
    # default backoff (7 retries, minutes); the service polls, so it gives up sooner still
    # (1 retry, 5 s). Set these variables to choose otherwise.
    serve = ctx.invoked_subcommand == "serve"
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1" if serve else "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5" if serve else "30")
    if not verbose:  # each retry would print a WARNING before the one-line error
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    # OpenMP threads (LightGBM, torch) that spin while they wait turn a busy machine's second
    # core into a loss: 30 LightGBM rounds on 60,000 rows took 30 s with 2 spinning threads and
    # 5.5 s with passive ones on a loaded 2-core machine (bench/RESULTS.md, Scaling). Set before
    # either library loads; set OMP_WAIT_POLICY yourself to choose otherwise.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@app.command()
@friendly
def learn(
    dataset: Annotated[str | None, typer.Option(
        help="A bundled dataset (see `loanrisk datasets`).")] = None,
    data: Annotated[Path | None, typer.Option(
        help="Your loan table: CSV, CSV.gz or Parquet.")] = None,
    schema: Annotated[Path | None, typer.Option(
        help="The table's schema JSON (ours or AWS ML).")] = None,
    name: Annotated[str | None, typer.Option(
        help="Registered model name (default: dataset/schema name).")] = None,
    models: Annotated[str, typer.Option(
        help="Comma-separated models to train (ensemble averages mlp and gbdt; also: "
             "scorecard, a points scorecard on WoE bins).")
    ] = LEARN_DEFAULT_MODELS,
    seed: Annotated[int | None, typer.Option(
        help="Seed for the split and every model (default: LOANRISK_SEED, 42).")] = None,
    allow_leaky: Annotated[bool, typer.Option(
        "--allow-leaky", help="Train with post-decision and leaky attributes (reports carry a "
                              "warning).")] = False,
    promote: Annotated[bool, typer.Option(help="Try the promotion gate after registering.")] = True,
    force: Annotated[bool, typer.Option(
        "--force", help="Promote even if it does not beat the champion.")] = False,
    sample: Annotated[int | None, typer.Option(
        help="Use a stratified sample of this many rows.")] = None,
    mlp_epochs: Annotated[int | None, typer.Option(
        help="Cap the network's training epochs.")] = None,
    repeats: Annotated[int, typer.Option(
        help="Repeat the seeded 70/30 split N times (seeds seed..seed+N-1); report mean ± "
             "std and pick the champion on the mean.")] = 1,
    mlp_config: Annotated[str, typer.Option(
        help="mlp design: 'tabular' (piecewise-linear encoding + seed ensemble) or "
             "'reference' (the article's network).")] = "tabular",
    calibrate: Annotated[bool, typer.Option(
        help="Calibrate probabilities on the validation rows (temperature / Platt, inside "
             "the graph).")] = True,
    tuned: Annotated[bool, typer.Option(
        help="Use parameters saved by `loanrisk tune` when present.")] = True,
    max_latency_us: Annotated[float | None, typer.Option(
        help="Latency budget: choose the champion only among models whose p50 for scoring one "
             "application with its reasons (measured in this run) is within this many µs.")
    ] = None,
    require_monotone: Annotated[bool, typer.Option(
        "--require-monotone", help="Choose the champion only among models with no monotone "
        "violation on the evaluation split (LOANRISK_REQUIRE_MONOTONE).")] = False,
    pdo: Annotated[float | None, typer.Option(
        help="Scorecard: points to double the odds (default: LOANRISK_SCORECARD_PDO, 20).")
    ] = None,
    base_points: Annotated[float | None, typer.Option(
        help="Scorecard: the score at the base odds (default: LOANRISK_SCORECARD_BASE_POINTS, "
             "600).")] = None,
    base_odds: Annotated[float | None, typer.Option(
        help="Scorecard: the good:bad odds that score the base points (default: "
             "LOANRISK_SCORECARD_BASE_ODDS, 50 for 50:1).")] = None,
    scorecard_method: Annotated[str | None, typer.Option(
        help="Scorecard fit: 'penalised' (fine bins, a smoothness penalty) or 'woe' (classic "
             "coarse WoE bins) (default: LOANRISK_SCORECARD_METHOD, penalised).")] = None,
    summary_json: Annotated[Path | None, typer.Option(
        help="Also write the summary JSON here.")] = None,
    backend: Annotated[str, typer.Option(
        help="local, or ray: the repeated splits after the first as Ray tasks (pip install "
             "'loanrisk\\[scale]').")] = "local",
    ray_address: Annotated[str | None, typer.Option(
        help="Ray cluster address (default: RAY_ADDRESS, else a local Ray).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train majority, linear, mlp, gbdt and their ensemble as ONNX graphs; register the best."""
    from loanrisk.config import get_settings
    from loanrisk.learn.pipeline import LearnOptions
    from loanrisk.learn.pipeline import learn as run_learn

    opts = LearnOptions(
        dataset=dataset, data=data, schema=schema, name=name,
        seed=seed if seed is not None else get_settings().seed, allow_leaky=allow_leaky,
        promote=promote, force=force, sample=sample, progress=not quiet,
        models=tuple(m.strip() for m in models.split(",") if m.strip()),
        mlp={"max_epochs": mlp_epochs} if mlp_epochs else {},
        repeats=repeats, mlp_config=mlp_config, calibrate=calibrate, use_tuned=tuned,
        max_latency_us=max_latency_us, backend=backend, ray_address=ray_address,
        require_monotone=require_monotone,
        scorecard={k: v for k, v in (("pdo", pdo), ("base_points", base_points),
                                     ("base_odds", base_odds), ("method", scorecard_method))
                   if v is not None},
    )
    with console.status("learning…", spinner="dots") if quiet else _nullcontext():
        result = run_learn(opts)
    summary = result.summary
    if summary.get("warning"):
        err_console.print(f"[bold yellow]{summary['warning']}[/]", highlight=False)
    if summary.get("repeats"):  # means ± std over the splits, and why the champion won
        print_means(console, summary)
        console.print(summary["repeats"]["why"], highlight=False)
    else:
        _print_models(summary)
    champ = summary["champion"]
    console.print(
        f"best: [bold]{champ['model']}[/] → {result.name} v{champ['version']} · champion: "
        f"{'[green]promoted[/]' if champ['promoted'] else '[yellow]not promoted[/]'}"
        + (f" ({champ.get('reason')})" if champ.get("reason") else "")
    )
    console.print(f"report: {result.report_dir / 'report.md'}")
    if summary_json:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(json.dumps(summary, indent=1))
        console.print(f"summary: {summary_json}")


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _print_models(summary: dict[str, Any]) -> None:
    cols = ["accuracy", "f1_macro", "f1_weighted", "roc_auc", "log_loss", "brier"]
    table = Table(title=f"{summary['dataset']}: {summary['target']} (evaluation split, ONNX)")
    table.add_column("model")
    for c in cols:
        table.add_column(c, justify="right")
    timed = any("score_p50_us" in m for m in summary["models"].values())
    if timed:
        table.add_column("µs/app", justify="right")
    for name, m in summary["models"].items():
        cells = ["n/a" if m[c] is None else f"{m[c]:.4f}" for c in cols]
        if timed:
            cells.append(f"{m['score_p50_us']:.0f}" if "score_p50_us" in m else "")
        table.add_row(name, *cells)
    console.print(table)
    if timed:
        console.print("µs/app: p50 of scoring one application with its reasons, as the service "
                      "does, on this machine now" + (
                          f"; champion chosen among models within {summary['latency_budget_us']:g}"
                          " µs" if summary.get("latency_budget_us") else ""), highlight=False)


@app.command()
def datasets() -> None:
    """List the bundled datasets."""
    from loanrisk.datasets import BUNDLED

    table = Table(title="bundled datasets")
    for col in ("name", "file", "target"):
        table.add_column(col)
    for key, ds in BUNDLED.items():
        table.add_row(key, getattr(ds, "data_file", "?"), getattr(ds, "target", ""))
    console.print(table)


@schema_app.command("infer")
@friendly
def schema_infer(
    data: Annotated[Path, typer.Argument(help="CSV/Parquet table to read.")],
    target: Annotated[str, typer.Option(help="The column to predict.")],
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write the schema here (default: print).")] = None,
    name: Annotated[str | None, typer.Option(
        help="Schema name (default: the file's stem).")] = None,
) -> None:
    """Draft a schema from a table: review the types, reasons and post-decision attributes."""
    from loanrisk.datasets import read_any
    from loanrisk.schema import Schema

    df = read_any(data)
    schema = Schema.infer(df, target=target, name=name or data.name.split(".")[0])
    text = json.dumps(schema.to_dict(), indent=2)
    if output:
        output.write_text(text + "\n")
        console.print(f"wrote {output}: {len(schema.attributes)} attributes, target {target!r} "
                      f"({schema.task}, classes {schema.classes}). Review it before `learn`.")
    else:
        print(text)


@schema_app.command("check")
@friendly
def schema_check(
    schema: Annotated[Path, typer.Argument(help="Schema JSON (ours or AWS ML).")],
    data: Annotated[Path | None, typer.Option(help="Also check this table against it.")] = None,
) -> None:
    """Validate a schema (and optionally a table against it)."""
    from loanrisk.datasets import load_table
    from loanrisk.schema import Schema

    s = Schema.load(schema)
    if data is not None:
        df = load_table(data, s)
        s.validate_frame(df)
        console.print(f"{data}: {len(df)} rows fit {schema}")
    console.print(f"{schema}: ok — target {s.target!r}, {len(s.feature_attributes())} features")


@models_app.command("list")
@friendly
def models_list(
    name: Annotated[str | None, typer.Argument(help="One registered model (default: all).")] = None,
) -> None:
    """Show registered versions, their metrics and the champion."""
    from loanrisk.registry import Registry

    reg = Registry()
    names = [name] if name else reg.list_models()
    if not names:
        console.print("no registered models yet: run "
                      "`loanrisk learn --dataset lending-club-grades`")
        return
    for n in names:
        table = Table(title=n)
        for col in ("version", "model", "roc_auc", "f1_macro", "accuracy", "sha256", "alias"):
            table.add_column(col)
        for v in reg.list_versions(n):
            m = v.metrics
            table.add_row(str(v.version), v.model, _fmt(m.get("roc_auc")), _fmt(m.get("f1_macro")),
                          _fmt(m.get("accuracy")), v.sha256[:12],
                          "[green]champion[/]" if "champion" in v.aliases else "")
        console.print(table)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


@app.command()
@friendly
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="Version to make champion.")],
    force: Annotated[bool, typer.Option("--force", help="Skip the gate.")] = False,
) -> None:
    """Flip the switch: make VERSION the champion if it beats the current one on the same data."""
    from loanrisk.registry import Registry

    res = Registry().promote(name, version, force=force)
    colour = "green" if res.promoted else "yellow"
    console.print(f"[{colour}]{name} v{version}: {'promoted' if res.promoted else 'refused'}[/] — "
                  f"{res.reason}", highlight=False)
    if not res.promoted:
        raise typer.Exit(1)


@app.command()
@friendly
def rollback(name: Annotated[str, typer.Argument(help="Registered model name.")]) -> None:
    """Move the champion back to the previous version."""
    from loanrisk.registry import Registry

    res = Registry().rollback(name)
    console.print(f"[green]{name}: champion is v{res.version}[/] — {res.reason}", highlight=False)


def main() -> None:
    """Console-script entry point."""
    app()

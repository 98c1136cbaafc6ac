"""Watch-and-retrain commands: monitor, performance, replay, compare, fairness, schedule, and
``learn --from-store`` (added to the existing `learn` command)."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from loanrisk.api.middleware import log_formatter
from loanrisk.cli.common import (
    LEARN_DEFAULT_MODELS,
    JsonOpt,
    ModelOpt,
    console,
    friendly,
    model_or_default,
    print_json,
    read_settings,
)
from loanrisk.cli.common import ReadDatabaseOpt as DatabaseOpt
from loanrisk.errors import LoanriskError


def _report(run: Any, database: str | None, model: str | None, as_json: bool,
            **options: Any) -> Any:
    """A watch report of the model (the only one with a champion by default): printed as JSON
    (and None returned) with --json, else returned for the command to show."""
    settings = read_settings(database)
    report = run(model=model_or_default(settings, model), settings=settings, **options)
    if as_json:
        print_json(report.to_dict())
        return None
    return report


def monitor(
    model: ModelOpt = None,
    since: Annotated[str, typer.Option(help="Window: 7d, 12h, 2w or an ISO date.")] = "7d",
    version: Annotated[int | None, typer.Option(help="Compare with this version's training "
                                                "data (default: the champion).")] = None,
    max_rows: Annotated[int | None, typer.Option(help="Sample windows larger than this "
                                                 "(default: LOANRISK_MONITOR_MAX_ROWS).")] = None,
    fail_on_alert: Annotated[bool, typer.Option("--fail-on-alert", help="Exit 1 when an "
                                                "attribute reaches the alert level.")] = False,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drift: PSI of recent applications per attribute and on the score (report + plot)."""
    from loanrisk.watch.monitor import monitor as run

    report = _report(run, database, model, as_json, since=since, version=version,
                     max_rows=max_rows)
    if report is not None:
        table = Table(title=f"{report.name} v{report.version}: {report.rows:,} of "
                            f"{report.window_rows:,} applications since {since}"
                            f"{' (sampled)' if report.sampled else ''} · {report.seconds:.2f}s")
        for col in ("attribute", "PSI", "level"):
            table.add_column(col)
        colour = {"ok": "green", "watch": "yellow", "alert": "red"}
        for name, a in sorted(report.attributes.items(), key=lambda kv: -kv[1].psi):
            table.add_row(name, f"{a.psi:.4f}", f"[{colour[a.level]}]{a.level}[/]")
        console.print(table)
        console.print(f"report: {report.files['json']} · plot: {report.files['plot']}")
    if fail_on_alert and report.level == "alert":
        raise typer.Exit(1)


def performance(
    model: ModelOpt = None,
    since: Annotated[str | None, typer.Option(help="Window: 30d, 12w or an ISO date "
                                              "(default: everything).")] = None,
    min_rows: Annotated[int, typer.Option(help="Fewest outcomes in a week to raise an "
                                          "alert.")] = 30,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Live metrics per model version and week from recorded outcomes; alerts on a drop."""
    from loanrisk.watch.performance import performance as run

    report = _report(run, database, model, as_json, since=since, min_rows=min_rows)
    if report is None:
        return
    table = Table(title=f"{report.model}: live performance (margin {report.margin:.2f})")
    for col in ("version", "week", "outcomes", "ROC-AUC", "eval ROC-AUC", "drop", "accuracy",
                "adverse rate", ""):
        table.add_column(col)
    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for p in report.periods:
        table.add_row(str(p.version), p.week, str(p.labelled), f(p.roc_auc), f(p.eval_roc_auc),
                      f(p.drop), f(p.accuracy), f(p.adverse_rate),
                      "[red]alert[/]" if p.alert else "")
    console.print(table)
    for a in report.alerts:
        console.print(f"[red]alert:[/] {a}", highlight=False)


def replay(
    model: ModelOpt = None,
    since: Annotated[str | None, typer.Option(help="From: 30d, 2w or an ISO date such as "
                                              "2026-03-01 (default: everything).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to (exclusive): a duration ago or an "
                                              "ISO date.")] = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-score stored applications with the version that decided them; exit 1 on a mismatch."""
    from loanrisk.watch.replay import replay as run

    settings = read_settings(database)
    report = run(model=model_or_default(settings, model), since=since, until=until,
                 settings=settings)
    if as_json:
        print_json(report.to_dict())
    else:
        colour = "green" if report.ok else "red"
        console.print(f"[{colour}]{report.identical:,} of {report.checked:,} decisions "
                      f"replayed identically[/] (versions {report.versions}, max probability "
                      f"difference {report.max_probability_diff:.1e}, {report.seconds:.1f}s)",
                      highlight=False)
        for m in report.mismatches[:20]:
            console.print(f"  {m.application_id} v{m.model_version} {m.field}: stored "
                          f"{m.stored!r}, replayed {m.replayed!r}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


def compare(
    model: ModelOpt = None,
    since: Annotated[str, typer.Option(help="Window: 30d, 2w or an ISO date.")] = "30d",
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Champion vs challenger on the same applications: agreement, decline rates, ROC-AUC."""
    from loanrisk.watch.compare import compare as run
    from loanrisk.watch.monitor import served_manifest

    settings = read_settings(database)
    name = model_or_default(settings, model)
    manifest, _ = served_manifest(settings, model=name, version=None)
    rows = run(model=name, classes=list(manifest["classes"]), since=since, settings=settings)
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    table = Table(title=f"{name}: champion vs challenger since {since}")
    for col in ("challenger", "applications", "agreement", "declines (champ/chall)",
                "mean |Δp|", "errors", "outcomes", "ROC-AUC (champ/chall)"):
        table.add_column(col)
    for r in rows:
        table.add_row(f"v{r.challenger_version}", str(r.applications), f"{r.agreement:.1%}",
                      f"{f(r.champion_decline_rate)} / {f(r.challenger_decline_rate)}",
                      f"{r.mean_abs_adverse_diff:.4f}", str(r.errors), str(r.labelled),
                      f"{f(r.champion_roc_auc)} / {f(r.challenger_roc_auc)}")
    console.print(table)


def fairness(
    model: ModelOpt = None,
    version: Annotated[int | None, typer.Option(help="Version (default: the champion).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Approval rates per protected group and adverse-impact ratio on a version's eval split."""
    import pandas as pd

    from loanrisk.registry import Registry
    from loanrisk.registry.fairness import version_fairness

    settings = read_settings()
    name = model_or_default(settings, model)
    reg = Registry(settings)
    if version is None:
        champ = reg.champion(name)
        if champ is None:
            raise LoanriskError(f"model {name!r} has no champion; pass --version")
        version = champ.version
    d = reg.download(name, version)
    found = version_fairness(d, pd.read_parquet(d / "eval.parquet"), settings=settings)
    if as_json:
        print_json([f.to_dict() for f in found])
        return
    if not found:
        console.print(f"{name} v{version}: the schema declares no protected attribute present "
                      "in the evaluation data (mark one `\"protected\": true`)")
    for f in found:
        ok = f.ratio >= settings.fairness_min_ratio
        console.print(f"[{'green' if ok else 'red'}]{name} v{version}: {f.describe()}[/]",
                      highlight=False)


def schedule(
    every: Annotated[str, typer.Option(help="Period: 7d, 1d, 12h...")] = "7d",
    max_runs: Annotated[int | None, typer.Option(help="Stop after this many runs "
                                                 "(default: run forever).")] = None,
    model: ModelOpt = None,
    since: Annotated[str | None, typer.Option(help="Learn from applications since (e.g. "
                                              "90d; default: all with outcomes).")] = None,
    with_dataset: Annotated[str | None, typer.Option(help="Add this bundled dataset's rows "
                                                     "to the stored ones.")] = None,
    with_data: Annotated[Path | None, typer.Option(help="Add the rows of your own table "
                                                   "(CSV/Parquet; the champion's schema).")] = None,
    models: Annotated[str | None, typer.Option(help="Comma-separated models to train "
                                               "(default: the champion's own family, with its "
                                               "design and parameters).")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Learn from the store once per period (idempotent per period; see docs/deploy.md)."""
    from loanrisk.watch.retrain import RetrainOptions
    from loanrisk.watch.retrain import schedule as run

    settings = read_settings(database)
    logging.getLogger("loanrisk").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig()
    for handler in logging.getLogger().handlers:  # text with times, or JSON lines
        handler.setFormatter(log_formatter(settings.log_format,
                                           "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    opts = RetrainOptions(model=model_or_default(settings, model), since=since,
                          with_dataset=with_dataset, with_data=with_data,
                          models=_model_list(models))
    n = run(opts, every=every, max_runs=max_runs, settings=settings)
    console.print(f"{n} scheduled run(s) done")


def _model_list(models: str | None) -> tuple[str, ...] | None:
    """--models as a tuple; None (the champion's own family) when not given."""
    if models is None:
        return None
    return tuple(m.strip() for m in models.split(",") if m.strip()) or None


def _learn_from_store(kw: dict[str, Any]) -> None:
    from loanrisk.watch.retrain import RetrainOptions, learn_from_store

    settings = read_settings()
    # the data and its schema come from the store and the champion: refuse what would be ignored
    defaults = {"repeats": 1, "mlp_config": "tabular", "calibrate": True, "tuned": True}
    ignored = [flag for flag, key in (("--dataset", "dataset"), ("--data", "data"),
                                      ("--schema", "schema"), ("--sample", "sample"),
                                      ("--allow-leaky", "allow_leaky"),
                                      ("--max-latency-us", "max_latency_us"),
                                      ("--mlp-epochs", "mlp_epochs"),
                                      ("--summary-json", "summary_json"),
                                      ("--repeats", "repeats"), ("--mlp-config", "mlp_config"),
                                      ("--no-calibrate", "calibrate"), ("--no-tuned", "tuned"))
               if key in kw and kw[key] not in (None, False, defaults.get(key, False))]
    if ignored:
        raise LoanriskError(f"{', '.join(ignored)} cannot go with --from-store: it learns from "
                            "the stored applications with the champion's schema (add bundled "
                            "rows with --with-dataset)")
    seed = kw.get("seed")
    try:
        model = model_or_default(settings, kw.get("name"))
    except LoanriskError as exc:  # `learn` names the model with --name
        raise LoanriskError(str(exc).replace("--model NAME", "--name NAME")) from None
    # learn's own default list means "not given": retrain the champion's family
    given = kw["models"] if kw["models"] != LEARN_DEFAULT_MODELS else None
    opts = RetrainOptions(model=model, since=kw.get("since"),
                          with_dataset=kw.get("with_dataset"), with_data=kw.get("with_data"),
                          seed=seed if seed is not None else settings.seed,
                          models=_model_list(given),
                          promote=bool(kw.get("promote", True)), force=bool(kw.get("force")),
                          progress=not kw.get("quiet", False))
    res = learn_from_store(opts, settings)
    family = f" ({res.family}, the champion's family)" if res.family else ""
    console.print(f"{opts.model}: {res.rows_from_store} stored applications with outcomes + "
                  f"{res.rows_from_dataset + res.rows_from_data} original rows → "
                  f"v{res.version}{family} · "
                  f"{'[green]promoted[/]' if res.promoted else '[yellow]not promoted[/]'}"
                  + (f" ({res.reason})" if res.reason else " (--no-promote: the gate was not "
                     "tried)"), highlight=False)


def _extend_learn(app: typer.Typer, friendly: Any) -> None:
    """Give the existing `learn` command --from-store, --since and --with-dataset."""
    cmd = next((c for c in app.registered_commands
                if (c.name or getattr(c.callback, "__name__", "")) == "learn"), None)
    if cmd is None or cmd.callback is None:
        return
    orig = cmd.callback
    base = inspect.signature(orig, eval_str=True)
    opt = typer.Option
    extra = {
        "from_store": (Annotated[bool, opt("--from-store", help="Learn from stored applications "
                       "with outcomes; the champion's schema; promoted only through the gate.")],
                       False),
        "since": (Annotated[str | None, opt(help="With --from-store: applications since "
                  "(90d, 12w or an ISO date).")], None),
        "with_dataset": (Annotated[str | None, opt(help="With --from-store: add this bundled "
                         "dataset's rows.")], None),
        "with_data": (Annotated[Path | None, opt(help="With --from-store: add the rows of your "
                      "own table (CSV/Parquet, checked against the champion's schema).")], None),
    }
    params = [*base.parameters.values(), *(
        inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
        for k, (a, d) in extra.items())]

    def learn(**kw: Any) -> None:
        flags = {k: kw.pop(k) for k in extra}
        if not flags["from_store"]:
            if flags["since"] or flags["with_dataset"] or flags["with_data"]:
                raise LoanriskError("--since, --with-dataset and --with-data go with "
                                    "--from-store")
            return orig(**kw)
        return _learn_from_store({**kw, **flags})

    learn.__doc__ = orig.__doc__
    learn.__signature__ = base.replace(parameters=params)  # type: ignore[attr-defined]
    learn.__annotations__ = {p.name: p.annotation for p in params}
    cmd.callback = friendly(learn)


def register(app: typer.Typer) -> None:
    """Add the watch commands to the `loanrisk` app (errors print without traceback)."""
    if getattr(app, "_loanrisk_watch", False):
        return
    app._loanrisk_watch = True  # type: ignore[attr-defined]
    for fn in (monitor, performance, replay, compare, fairness, schedule):
        app.command(fn.__name__)(friendly(fn))
    _extend_learn(app, friendly)

"""Service commands for the `loanrisk` CLI: serve, keys, export, sql."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from loanrisk.cli.common import DatabaseOpt, console, default_model, friendly, settings_for
from loanrisk.errors import LoanriskError


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    database: DatabaseOpt = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Registered model whose champion is served (followed when it moves).")
    ] = None,
    model_dir: Annotated[Path | None, typer.Option(
        "--model-dir", help="Serve this local model version directory, without the registry.")
    ] = None,
    poll_seconds: Annotated[float | None, typer.Option(
        help="How often to ask the registry whether the champion moved.")] = None,
    challenger_mode: Annotated[str | None, typer.Option(
        help="Run a challenger beside the champion: off, shadow (stored, never returned) or "
             "canary (a sticky share of applicants gets its decision).")] = None,
    challenger_version: Annotated[int | None, typer.Option(
        help="The challenger's registered version (with --model).")] = None,
    challenger_dir: Annotated[Path | None, typer.Option(
        help="The challenger as a local model version directory (with --model-dir).")] = None,
    challenger_share: Annotated[float | None, typer.Option(
        help="Canary share of applicants, 0 to 1 (default 0.1).")] = None,
    drift_every: Annotated[str | None, typer.Option(
        help="Recompute the drift gauges over the last 7 days this often (e.g. 1h, 30m); "
             "default: only read the newest `loanrisk monitor` report.")] = None,
    rate_limit_url: Annotated[str | None, typer.Option(
        help="redis://HOST:PORT/DB: share each API key's rate limit among every service process "
             "using it (default: LOANRISK_RATE_LIMIT_URL, else per process).")] = None,
    workers: Annotated[int, typer.Option(
        min=1, help="Worker processes sharing the port (one per core); more than one needs a "
                    "PostgreSQL store, and --rate-limit-url to share the rate limit.")] = 1,
    grace_period: Annotated[float | None, typer.Option(
        min=0, help="On SIGTERM: stop accepting connections, finish the accepted requests "
                    "within this many seconds, then exit (default 30, or "
                    "LOANRISK_GRACE_SECONDS).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    ssl_certfile: Annotated[Path | None, typer.Option(
        help="Serve HTTPS with this PEM certificate (chain); needs --ssl-keyfile.")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(
        help="The certificate's PEM private key (unencrypted).")] = None,
) -> None:
    """Run the decision service (FastAPI on uvicorn); OpenAPI docs at /docs. SIGTERM drains it:
    no new connections, the accepted requests finish (within --grace-period), then it exits."""
    import gc

    gc.disable()  # no collections while ~900 modules load; the app's start-up re-enables it
    import uvicorn

    from loanrisk.api.app import create_app
    from loanrisk.api.drain import run_server

    settings = settings_for(database)  # MLflow's retries and timeout: set in cli._root
    update: dict[str, object] = {}
    for field, value in (("poll_seconds", poll_seconds), ("challenger_mode", challenger_mode),
                         ("challenger_version", challenger_version),
                         ("challenger_dir", challenger_dir),
                         ("challenger_share", challenger_share),
                         ("rate_limit_url", rate_limit_url), ("grace_seconds", grace_period)):
        if value is not None:
            update[field] = value
    if drift_every is not None:
        from loanrisk.watch.retrain import parse_duration

        try:
            update["drift_seconds"] = parse_duration(drift_every)
        except LoanriskError:
            raise LoanriskError(f"--drift-every {drift_every!r}: use a positive duration such "
                                "as 1h, 30m or 1d") from None
    if update:
        settings = settings.model_copy(update=update)
    if model_dir is None and model is None:
        model = default_model(settings)
    tls = _tls(ssl_certfile, ssl_keyfile)
    scheme = "https" if tls else "http"
    from loanrisk.api.ratelimit import masked

    shared = f", shared via {masked(settings.rate_limit_url)}" if settings.rate_limit_url else ""
    per = " per worker" if workers > 1 and not shared else ""
    if workers > 1:
        _serve_workers(settings, update, model=model, model_dir=model_dir, host=host, port=port,
                       workers=workers, log_level=log_level, tls=tls, scheme=scheme,
                       banner=f"rate limit {settings.rate_limit_per_minute}/min per API key"
                              f"{shared}{per}")
        return
    from loanrisk.api.middleware import configure_service_logging

    configure_service_logging()
    app = create_app(settings, model_name=model, model_dir=model_dir)
    console.print(f"serving {model_dir or model} on {scheme}://{host}:{port} (docs: /docs); rate "
                  f"limit {settings.rate_limit_per_minute}/min per API key{shared}",
                  highlight=False)
    run_server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                              # JSON lines: uvicorn's loggers go through the root's JSON handler
                              log_config=None if settings.log_format == "json" else
                              uvicorn.config.LOGGING_CONFIG,
                              ws="none",  # no WebSocket routes: skip loading a WebSocket stack
                              timeout_graceful_shutdown=settings.grace_seconds,
                              ssl_certfile=tls.get("ssl_certfile"),
                              ssl_keyfile=tls.get("ssl_keyfile")))


def _tls(certfile: Path | None, keyfile: Path | None) -> dict[str, str]:
    """uvicorn's TLS arguments, after loading the pair once here: a wrong path, a key that does
    not match or an unreadable file is one clear error before anything starts."""
    if certfile is None and keyfile is None:
        return {}
    if certfile is None or keyfile is None:
        raise LoanriskError("HTTPS needs both --ssl-certfile (PEM certificate) and "
                            "--ssl-keyfile (its PEM private key)")
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise LoanriskError(f"--ssl-certfile {certfile} / --ssl-keyfile {keyfile}: cannot load "
                            f"them ({getattr(exc, 'strerror', None) or exc}); give a PEM "
                            "certificate and its unencrypted PEM key (`loanrisk doctor "
                            "--ssl-certfile` checks them)") from None
    return {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}


def _serve_workers(settings: Any, update: dict[str, object], *, model: str | None,
                   model_dir: Path | None, host: str, port: int, workers: int, log_level: str,
                   banner: str, tls: dict[str, str], scheme: str) -> None:
    """uvicorn with ``workers`` processes, each building the app from the environment set here
    (loanrisk.api.app.app_from_env) and sharing its metrics through files."""
    import os
    import shutil
    import tempfile

    import uvicorn

    from loanrisk.api.drain import run_server
    from loanrisk.api.metrics import MULTIPROC_ENV

    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        raise LoanriskError("--workers needs a store that several processes write at once: "
                            "--database postgresql://HOST/DB (or LOANRISK_DATABASE_URL); the "
                            "embedded SQLite store takes one writer process")
    env = {f"LOANRISK_{k.upper()}": str(v) for k, v in update.items() if v is not None}
    env["LOANRISK_DATABASE_URL"] = url
    env["LOANRISK_SERVE_MODEL"] = model or ""
    env["LOANRISK_SERVE_MODEL_DIR"] = str(model_dir) if model_dir else ""
    metrics_dir = tempfile.mkdtemp(prefix="loanrisk-metrics-")
    env[MULTIPROC_ENV] = metrics_dir
    os.environ.update(env)  # the workers are new processes: they inherit it
    console.print(f"serving {model_dir or model} on {scheme}://{host}:{port} with {workers} "
                  f"workers (docs: /docs); {banner}", highlight=False)
    try:
        run_server(uvicorn.Config("loanrisk.api.app:app_from_env", factory=True,
                                  workers=workers, host=host, port=port, log_level=log_level,
                                  access_log=False, ws="none",
                                  log_config=None if settings.log_format == "json" else
                                  uvicorn.config.LOGGING_CONFIG,
                                  timeout_graceful_shutdown=settings.grace_seconds,
                              ssl_certfile=tls.get("ssl_certfile"),
                              ssl_keyfile=tls.get("ssl_keyfile")))
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def export(database: DatabaseOpt = None, clear: Annotated[bool, typer.Option(
        "--clear", help="Write applicant data in clear although the store encrypts it.")
        ] = False) -> None:
    """Write stored applications, decisions and outcomes to the Parquet lake, by day."""
    from loanrisk.cli.common import existing_sqlite
    from loanrisk.store.lake import export as run_export

    if database:  # exporting reads the store: a missing SQLite file is a typo, not empty
        existing_sqlite(database)
    res = run_export(settings_for(database), clear=clear)
    console.print(f"{res.applications} applications and {res.outcomes} outcomes in "
                  f"{res.days} day partitions under {res.lake_dir}"
                  + (" (encrypted with the active data key)" if res.encrypted else ""),
                  highlight=False)


def sql(
    query: Annotated[str, typer.Argument(help="DuckDB SQL over the views applications, "
                                              "outcomes.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows instead of a "
                                          "table.")] = False,
    limit: Annotated[int, typer.Option(help="Show at most this many rows.")] = 200,
) -> None:
    """Query the lake with DuckDB (export first): e.g. SELECT decision, count(*) ..."""
    from loanrisk.store.lake import sql as run_sql

    table = run_sql(query, settings=settings_for())
    rows = table.slice(0, limit).to_pylist()
    if as_json:
        print(json.dumps(rows, default=str, indent=1))
        return
    out = Table(title=f"{table.num_rows} row(s)")
    for name in table.column_names:
        out.add_column(name)
    for r in rows:
        out.add_row(*("" if v is None else str(v) for v in r.values()))
    console.print(out)


def score(
    data: Annotated[Path, typer.Argument(help="Applications to score: CSV, CSV.gz or Parquet.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the decisions "
                                      "(.parquet or .csv).")],
    model: Annotated[str | None, typer.Option(
        "--model", help="Registered model (its champion unless --version).")] = None,
    version: Annotated[int | None, typer.Option(help="Score with this registered version.")
                       ] = None,
    model_dir: Annotated[Path | None, typer.Option(
        "--model-dir", help="Score with this local model version directory.")] = None,
    id_column: Annotated[str | None, typer.Option(
        help="A column of the input carried into the output (e.g. an application id).")
    ] = None,
    chunk_rows: Annotated[int, typer.Option(help="Rows per scoring task.")] = 5000,
    workers: Annotated[int, typer.Option(help="Processes on this machine (local backend).")
                       ] = 1,
    backend: Annotated[str, typer.Option(
        help="local (this machine) or ray (a Ray cluster; pip install 'loanrisk\\[scale]').")
    ] = "local",
    ray_address: Annotated[str | None, typer.Option(
        help="Ray cluster address (default: RAY_ADDRESS, else a local Ray).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Score a table in batch as the service would; misfit rows go to <OUT>.rejected.csv."""
    from loanrisk.serving.batch import score_table

    settings = settings_for()
    if model is None and model_dir is None:
        model = default_model(settings)
    rep = score_table(data=data, out=out, model=model, version=version, model_dir=model_dir,
                      id_column=id_column, chunk_rows=chunk_rows, workers=workers,
                      backend=backend, ray_address=ray_address, progress=not quiet,
                      settings=settings)
    console.print(f"{rep.model} v{rep.version}: {rep.scored:,} of {rep.rows:,} rows scored in "
                  f"{rep.seconds:.1f} s ({rep.rows_per_second:,.0f} rows/s, {rep.backend}); "
                  f"decisions {rep.decisions}; tiers {rep.tiers}", highlight=False)
    console.print(f"output: {rep.output}", highlight=False)
    if rep.rejected_file:
        console.print(f"[yellow]{rep.rejected:,} rows rejected[/]: {rep.rejected_file}",
                      highlight=False)


def register(app: typer.Typer) -> None:
    """Add serve, export, sql and score to the `loanrisk` app (errors print without traceback)."""
    if getattr(app, "_loanrisk_service", False):  # main() may run more than once in tests
        return
    app._loanrisk_service = True  # type: ignore[attr-defined]
    app.command("serve")(friendly(serve))
    app.command("export")(friendly(export))
    app.command("sql")(friendly(sql))
    app.command("score")(friendly(score))

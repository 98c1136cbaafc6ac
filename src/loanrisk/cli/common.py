"""What every command module of the CLI shares: the consoles, user mistakes printed as one line
(``friendly``), sub-command groups, the store and model options and how they are resolved."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from loanrisk.errors import LoanriskError, missing_extra
from loanrisk.terminal import make_console

console = make_console()
err_console = make_console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

# --database of the commands that write or serve (a new SQLite file is created there) ...
DatabaseOpt = Annotated[str | None, typer.Option(
    "--database", help="Store URL: sqlite:///PATH or postgresql://HOST/DB (default: SQLite in "
                       "the loanrisk home, or LOANRISK_DATABASE_URL).")]
# ... and of the commands that read a store (a SQLite file must exist: see read_settings)
ReadDatabaseOpt = Annotated[str | None, typer.Option(
    "--database", help="Store URL: sqlite:///PATH or postgresql://HOST/DB (default: "
                       "LOANRISK_DATABASE_URL or SQLite in the loanrisk home).")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="Registered model name (default: the only one with a champion).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
LEARN_DEFAULT_MODELS = "majority,linear,mlp,gbdt,ensemble"  # `learn --models` when not given


def config_problem(exc: ValidationError) -> str:
    """A settings ValidationError as one line per bad LOANRISK_* variable."""
    parts = []
    for e in exc.errors(include_url=False):
        field = str(e.get("loc", ("?",))[0])
        parts.append(f"LOANRISK_{field.upper()}: {e.get('msg')}")
    return "configuration: " + "; ".join(parts) + " (README: Configuration)"


def friendly(fn: F) -> F:
    """Print a user mistake as one clear message (exit code 2) instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LoanriskError as exc:
            message = str(exc)
        except ValidationError as exc:  # the configuration (LOANRISK_* variables, .env)
            message = config_problem(exc)
        except ModuleNotFoundError as exc:  # an optional extra this command needs is missing
            extra = missing_extra(exc.name)
            if extra is None:
                raise
            message = extra
        except BrokenPipeError:  # `loanrisk ... | head`: the reader left; nothing to report
            raise typer.Exit(0) from None
        except OSError as exc:  # the loanrisk home or a file cannot be read or written
            if exc.filename is None:  # a connection (Ray, a database...), not a path
                message = str(exc) or type(exc).__name__
            else:
                message = (f"{exc.filename}: {exc.strerror or exc}; check the path and its "
                           "permissions (LOANRISK_HOME is "
                           f"{os.environ.get('LOANRISK_HOME', '~/.loanrisk')})")
        except Exception as exc:  # MLflow's own errors: the tracking server, not our code
            mlflow_errors = sys.modules.get("mlflow.exceptions")
            if mlflow_errors is None or not isinstance(exc, mlflow_errors.MlflowException):
                raise
            from loanrisk.config import get_settings
            from loanrisk.registry import unavailable

            message = str(unavailable(get_settings().resolved_registry_uri, exc))
        # markup off: messages quote user input and pip extras such as 'loanrisk[scale]'
        err_console.print("[bold red]error:[/] ", end="", highlight=False)
        err_console.print(message, markup=False, highlight=False)
        raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def add_group(app: typer.Typer, group: typer.Typer, name: str) -> None:
    """Add the sub-command group ``name`` (its commands print errors without traceback), once:
    main() may run more than once in tests."""
    if any(g.name == name for g in app.registered_groups):
        return
    for cmd in group.registered_commands:
        if cmd.callback is not None and not hasattr(cmd.callback, "__wrapped__"):
            cmd.callback = friendly(cmd.callback)
    app.add_typer(group, name=name)


def settings_for(database: str | None = None):  # type: ignore[no-untyped-def]
    from loanrisk.config import get_settings

    settings = get_settings()
    if database:
        settings = settings.model_copy(update={"database_url": database})
    settings.ensure_home()
    return settings


def store_for(database: str | None):  # type: ignore[no-untyped-def]
    from loanrisk.store import Store

    return Store(settings_for(database).resolved_database_url)


def default_model(settings, *, model_dir: bool = True) -> str:  # type: ignore[no-untyped-def]
    """The only model with a known champion in the serving cache, else LoanriskError (whose
    advice names --model-dir only for commands that have it)."""
    names = sorted(p.parent.name for p in settings.serving_cache.glob("*/champion.json"))
    if len(names) == 1:
        return names[0]
    raise LoanriskError("which model? pass --model NAME (see `loanrisk models list`)"
                        + (" or --model-dir PATH" if model_dir else "")
                        + (f"; known: {', '.join(names)}" if names else ""))


def read_settings(database: str | None = None) -> Any:
    from loanrisk.config import get_settings

    settings = get_settings()
    if database:
        existing_sqlite(database)
        settings = settings.model_copy(update={"database_url": database})
    settings.ensure_home()
    return settings


def existing_sqlite(url: str) -> None:
    """These commands read a store: a SQLite file named by --database must exist (opening it
    would create an empty one and then report that it has no applications)."""
    from pathlib import Path

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise LoanriskError(f"--database {url!r}: not a database URL (sqlite:///PATH or "
                            "postgresql://HOST/DB)") from exc
    path = parsed.database
    if parsed.get_backend_name() == "sqlite" and path and path != ":memory:" and \
            not Path(path).exists():
        raise LoanriskError(f"--database {url}: no such SQLite file {path}; check the path (the "
                            "service's store is $LOANRISK_HOME/loanrisk.db by default)")


def model_or_default(settings: Any, model: str | None) -> str:
    if model:
        return model
    return str(default_model(settings, model_dir=False))  # these commands read the registry


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=1, default=str))


def print_means(console: object, summary: dict) -> None:
    """The mean ± std table of the repeated evaluation."""
    from rich.table import Table

    cols = ["roc_auc", "f1_macro", "f1_weighted", "log_loss", "ece"]
    table = Table(title=f"{summary['dataset']}: mean ± std over repeated splits (ONNX graphs)")
    table.add_column("model")
    for c in cols:
        table.add_column(c, justify="right")
    for name, m in summary["models"].items():
        table.add_row(name, *(f"{m[c]:.4f} ± {m.get(c + '_std') or 0:.4f}"
                              if m.get(c) is not None else "n/a" for c in cols))
    console.print(table)  # type: ignore[attr-defined]

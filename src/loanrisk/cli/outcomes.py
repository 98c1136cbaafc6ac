"""`loanrisk outcomes load`: record many outcomes from a servicing or audit file at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loanrisk.cli.common import DatabaseOpt, add_group, console, existing_sqlite, store_for

outcomes_app = typer.Typer(help="Outcomes: the later truth about stored applications.",
                           no_args_is_help=True)


@outcomes_app.command("load")
def outcomes_load(
    file: Annotated[Path, typer.Argument(
        help="CSV, CSV.gz or Parquet with the columns application_id (or external_ref) and "
             "outcome; optional source and recorded_at.")],
    source: Annotated[str | None, typer.Option(
        help="Source of rows without a source column (default: import).")] = None,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Record the good rows; the others go to <FILE>.rejected.csv "
                               "(default: one bad row and nothing is recorded).")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check every row and say what would be recorded; write nothing.")
    ] = False,
    database: DatabaseOpt = None,
) -> None:
    """Record outcomes (repaid, charged_off, a grade...) from a file, checked row by row.

    The same rules as POST /v1/applications/{id}/outcome; retraining and monitoring read them.
    """
    from loanrisk.datasets import read_any
    from loanrisk.store.outcome_import import load_outcomes

    if database:  # a missing SQLite file is a typo, not an empty store
        existing_sqlite(database)
    df = read_any(file)
    stem = file.name.split(".")[0] or "outcomes"
    store = store_for(database)
    res = load_outcomes(store, df, where=str(file), source=source,
                        skip_invalid=skip_invalid, dry_run=dry_run,
                        rejected_path=file.with_name(stem + ".rejected.csv"))
    if res.recorded and not res.dry_run:
        store.audit("outcome batch", endpoint="cli outcomes load",
                    details={"recorded": res.recorded, "applications": res.applications})
    verb = "would record" if res.dry_run else "recorded"
    console.print(f"{verb} {res.recorded:,} outcome(s) for {res.applications:,} application(s) "
                  f"from {res.rows:,} row(s); {res.unchanged:,} already recorded (unchanged)",
                  highlight=False)
    if res.rejected:
        rows = len({p["row"] for p in res.rejected})
        where = f": {res.rejected_file}" if res.rejected_file else " (not written: --dry-run)"
        console.print(f"[yellow]{rows:,} row(s) rejected[/]{where}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `outcomes` to the `loanrisk` app."""

    add_group(app, outcomes_app, "outcomes")

"""`loanrisk audit`: read the store's access audit, verify its hash chain, purge old rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from loanrisk.cli.common import (
    JsonOpt,
    ReadDatabaseOpt,
    add_group,
    console,
    friendly,
    print_json,
    read_settings,
)
from loanrisk.errors import LoanriskError

audit_app = typer.Typer(help="The access audit: who read or changed what, hash-chained.",
                        invoke_without_command=True)


def _date(text: str, option: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise LoanriskError(f"{option} {text!r}: use a date or time such as 2026-11-01 or "
                            "2026-11-01T09:30:00+00:00") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _store(database: str | None):  # type: ignore[no-untyped-def]
    from loanrisk.store import Store

    return Store(read_settings(database).resolved_database_url)


@audit_app.callback()
@friendly
def audit_list(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="Only rows at or after this date/time.")
                     ] = None,
    key: Annotated[str | None, typer.Option(help="Only this API key's rows (id or its start).")
                   ] = None,
    application: Annotated[str | None, typer.Option(help="Only rows about this application id.")
                           ] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. 'read application', "
                                               "'submission refused', 'admin promote'.")
                      ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows (newest).")] = 100,
    as_json: JsonOpt = False,
    database: ReadDatabaseOpt = None,
) -> None:
    """List audit rows, newest first (filters combine); `verify` and `purge` below."""
    if ctx.invoked_subcommand is not None:
        return
    from loanrisk.store.audit import as_dict, entries

    rows = [as_dict(r) for r in entries(
        _store(database).engine, since=_date(since, "--since") if since else None, key=key,
        application=application, action=action, limit=limit)]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"audit ({len(rows)} rows, newest first)")
    for col in ("id", "at", "action", "key", "channel", "endpoint", "status", "application",
                "details"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r["id"]), r["at"], r["action"], (r["key_id"] or "")[:8],
                      r["channel"] or "", r["endpoint"] or "", str(r["status"] or ""),
                      r["application_id"] or "", str(r["details"] or ""))
    console.print(table)


@audit_app.command("verify")
def audit_verify(database: ReadDatabaseOpt = None) -> None:
    """Recompute the hash chain: exit 1 naming the first row edited or deleted."""
    from loanrisk.store.audit import verify

    verdict = verify(_store(database).engine)
    if verdict.ok:
        console.print(f"audit chain intact: {verdict.rows} rows verified", highlight=False)
        return
    console.print(f"[bold red]audit chain broken[/] at row {verdict.bad_id}: {verdict.why} "
                  f"({verdict.rows} rows before it verified)", highlight=False)
    raise typer.Exit(1)


@audit_app.command("purge")
def audit_purge(
    before: Annotated[str | None, typer.Option(help="Delete rows stored before this date "
                                               "(default: LOANRISK_AUDIT_RETENTION_DAYS ago).")
                      ] = None,
    database: ReadDatabaseOpt = None,
) -> None:
    """Delete old audit rows; the purge is itself audited and the chain still verifies."""
    from loanrisk.store.audit import purge

    settings = read_settings(database)
    if before is not None:
        at = _date(before, "--before")
    elif settings.audit_retention_days:
        at = datetime.now(UTC) - timedelta(days=settings.audit_retention_days)
    else:
        raise LoanriskError("give --before DATE, or set LOANRISK_AUDIT_RETENTION_DAYS")
    from loanrisk.store import Store

    store = Store(settings.resolved_database_url)
    n = purge(store.engine, at, endpoint="cli audit purge")
    console.print(f"purged {n} audit rows stored before {at:%Y-%m-%d %H:%M} UTC (the purge is "
                  "recorded; `loanrisk audit verify` still holds)", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `audit` to the `loanrisk` app."""
    add_group(app, audit_app, "audit")

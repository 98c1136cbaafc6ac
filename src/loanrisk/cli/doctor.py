"""`loanrisk doctor`: the checks of loanrisk.cli.checks as a table (or JSON) and an exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loanrisk.cli.common import DatabaseOpt, console, friendly, settings_for


def doctor(
    database: DatabaseOpt = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Check only this registered model's champion (default: every model).")
    ] = None,
    rate_limit_url: Annotated[str | None, typer.Option(
        help="Check this Redis for shared rate limits (default: LOANRISK_RATE_LIMIT_URL).")
    ] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(
        help="Check this TLS certificate (as given to `serve`): valid now, not expiring soon.")
    ] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(
        help="With --ssl-certfile: check that this key matches it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check the home, store, API keys, registry, champions and Redis; say how to fix each."""
    import json

    from rich.markup import escape
    from rich.table import Table

    from loanrisk.cli import checks as doc

    settings = settings_for(database)
    if rate_limit_url is not None:
        settings = settings.model_copy(update={"rate_limit_url": rate_limit_url})
    checks = doc.run(settings, model=model)
    from loanrisk.cli.security_checks import check_encryption

    checks += check_encryption()
    if ssl_certfile is not None:
        from loanrisk.cli.security_checks import check_certificate

        checks += check_certificate(ssl_certfile, ssl_keyfile)
    failed = [c for c in checks if not c.ok and c.required]
    if as_json:
        print(json.dumps({"ok": not failed, "checks": [c.to_dict() for c in checks]}, indent=1))
    else:
        table = Table(show_lines=False)
        for col in ("", "check", "found", "fix"):
            table.add_column(col, overflow="fold")
        for c in checks:
            mark = "[green]ok[/]" if c.ok else "[red]FAIL[/]" if c.required else "[yellow]warn[/]"
            table.add_row(mark, escape(c.name), escape(c.detail), escape(c.fix))
        console.print(table)
        console.print("[green]ready to serve[/]" if not failed else
                      f"[red]{len(failed)} problem(s)[/]: fix them in the order shown")
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `doctor` to the `loanrisk` app (errors print without traceback)."""

    if getattr(app, "_loanrisk_doctor", False):  # main() may run more than once in tests
        return
    app._loanrisk_doctor = True  # type: ignore[attr-defined]
    app.command("doctor")(friendly(doctor))

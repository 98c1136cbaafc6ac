"""`loanrisk ui`: run the Streamlit app (Decide, Models, Applications, Watch)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from loanrisk.errors import LoanriskError

APP = Path(__file__).parent / "ui" / "app.py"


def streamlit_command(*, port: int, address: str, headless: bool) -> list[str]:
    """The `streamlit run` command line for the app."""
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.port", str(port), "--server.address", address,
            "--server.headless", "true" if headless else "false",
            "--browser.gatherUsageStats", "false", "--theme.base", "light",
           "--client.toolbarMode", "viewer"]


def ui(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
    address: Annotated[str, typer.Option(
        help="Address to bind (0.0.0.0 to share it).")] = "localhost",
    headless: Annotated[bool, typer.Option("--headless/--open",
                                           help="Do not open a browser tab.")] = False,
    api_url: Annotated[str | None, typer.Option(
        help="Score through this decision service (else in-process); or LOANRISK_API_URL.")] = None,
) -> None:
    """Open the app for underwriters and data scientists (needs the `ui` extra: streamlit)."""
    if importlib.util.find_spec("streamlit") is None:
        raise LoanriskError("the UI needs Streamlit: pip install 'loanrisk[ui]'")
    env = dict(os.environ)
    if api_url:
        env["LOANRISK_API_URL"] = api_url
    typer.echo(f"loanrisk ui on http://{address}:{port} (Ctrl-C to stop)")
    cmd = streamlit_command(port=port, address=address, headless=headless)
    if hasattr(os, "execve"):  # become Streamlit: a SIGTERM to `loanrisk ui` then stops it
        sys.stdout.flush()
        os.execve(cmd[0], cmd, env)
    try:  # pragma: no cover - platforms without exec
        code = subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add `ui` to the `loanrisk` app."""
    from loanrisk.cli.common import friendly

    if getattr(app, "_loanrisk_ui", False):
        return
    app._loanrisk_ui = True  # type: ignore[attr-defined]
    app.command("ui")(friendly(ui))

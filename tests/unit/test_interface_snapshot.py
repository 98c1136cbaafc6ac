"""The public interface does not move by accident: every command's help (each command and option)
and the service's OpenAPI document are compared with snapshots committed in tests/snapshots.

A change made on purpose: rerun with ``LOANRISK_UPDATE_SNAPSHOTS=1`` and commit the new files
(their diff is the interface change a reviewer reads).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"
UPDATE = os.environ.get("LOANRISK_UPDATE_SNAPSHOTS") == "1"
ENV = {"COLUMNS": "110", "LINES": "200", "NO_COLOR": "1", "TERM": "dumb",
       "_TYPER_FORCE_DISABLE_TERMINAL": "1"}


def _paths(cmd: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    if getattr(cmd, "commands", None):  # a group (typer vendors its own click classes)
        for name in sorted(cmd.commands):
            out += _paths(cmd.commands[name], (*prefix, name))
    return out


def cli_help() -> str:
    """``loanrisk [GROUP] [COMMAND] --help`` for every command, one after the other."""
    from loanrisk.cli import app

    runner = CliRunner()
    root = typer.main.get_command(app)
    parts = []
    for path in _paths(root):
        res = runner.invoke(app, [*path, "--help"], env=ENV, terminal_width=110)
        assert res.exit_code == 0, (path, res.output)
        lines = [line.rstrip() for line in res.output.splitlines()]
        parts.append(f"=== loanrisk {' '.join(path)} --help\n" + "\n".join(lines).strip() + "\n")
    return "\n".join(parts)


def openapi_document(model_dir: Path) -> dict[str, Any]:
    """/openapi.json of a service on the binary fixture model (schema of the served model)."""
    from contextlib import contextmanager

    from helpers import make_api

    url = f"sqlite:///{model_dir.parent / 'snapshot.db'}"
    with contextmanager(make_api)(url, model_dir) as api:
        r = api.client.get("/openapi.json")  # type: ignore[attr-defined]
        assert r.status_code == 200
        doc: dict[str, Any] = r.json()
    doc.get("info", {}).pop("version", None)  # the package version moves with every release
    return doc


def _check(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE or not path.exists():
        if not UPDATE and os.environ.get("CI"):
            pytest.fail(f"{path} is missing: run the tests with LOANRISK_UPDATE_SNAPSHOTS=1")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    want = path.read_text()
    if text != want:
        import difflib

        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                            f"{name} (committed)", f"{name} (now)", n=1))
        pytest.fail(f"the interface changed ({name}); if on purpose, rerun with "
                    f"LOANRISK_UPDATE_SNAPSHOTS=1 and commit it:\n{diff[:6000]}")


def test_cli_help_matches_the_snapshot() -> None:
    _check("cli_help.txt", cli_help())


def test_openapi_matches_the_snapshot(tmp_path: Path) -> None:
    from model_factory import build_model_dir

    model_dir = build_model_dir(tmp_path / "v", name="snapshot")
    _check("openapi.json", json.dumps(openapi_document(model_dir), indent=1, sort_keys=True)
           + "\n")

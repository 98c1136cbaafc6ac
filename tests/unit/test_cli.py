"""The CLI: help on every command, clear errors, schema infer/check, registry commands."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from loanrisk.cli import app

runner = CliRunner()


def _commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    import typer.main

    cmd = typer.main.get_command(group)  # type: ignore[arg-type]
    out = []
    for name, sub in getattr(cmd, "commands", {}).items():
        out.append((*prefix, name))
        out += [(*prefix, name, n) for n in getattr(sub, "commands", {})]
    return out


def test_every_command_has_help() -> None:
    for path in _commands(app):
        res = runner.invoke(app, [*path, "--help"])
        assert res.exit_code == 0, (path, res.output)
        assert "Usage" in res.output


def test_keys_create_with_expiry_and_list(fresh_home: Path) -> None:
    res = runner.invoke(app, ["keys", "create", "--channel", "mobile", "--expires", "30d"])
    assert res.exit_code == 0 and "expires 20" in res.output, res.output
    token = res.stdout.strip().splitlines()[-1]
    assert token.startswith("lr_")
    res = runner.invoke(app, ["keys", "list"])
    assert res.exit_code == 0 and "active" in res.output and "never" not in res.output
    res = runner.invoke(app, ["keys", "create", "--expires", "soon"])
    assert res.exit_code == 2 and "--expires 'soon': use a positive duration" in res.output


def test_python_dash_m_runs_the_same_cli() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "loanrisk", "doctor", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "Usage: python -m loanrisk doctor" in " ".join(out.split())


def test_schema_infer_then_check(tmp_path: Path) -> None:
    csv = tmp_path / "loans.csv"
    pd.DataFrame({
        "income": [50_000, 62_000, None, 41_000] * 10,
        "purpose": ["car", "house", "car", "debt"] * 10,
        "status": ["paid", "paid", "default", "paid"] * 10,
    }).to_csv(csv, index=False)
    out = tmp_path / "loans.schema.json"
    res = runner.invoke(app, ["schema", "infer", str(csv), "--target", "status", "-o", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["target"] == "status"
    types = {a["name"]: a["type"] for a in doc["attributes"]}
    assert types["income"] == "numeric" and types["purpose"] == "categorical"
    res = runner.invoke(app, ["schema", "check", str(out), "--data", str(csv)])
    assert res.exit_code == 0, res.output


def test_schema_errors_name_the_attribute(tmp_path: Path) -> None:
    bad = tmp_path / "bad.schema.json"
    bad.write_text(json.dumps({"name": "x", "target": "y", "classes": ["a", "b"],
                               "attributes": [{"name": "age", "type": "numbr"}]}))
    res = runner.invoke(app, ["schema", "check", str(bad)])
    assert res.exit_code == 2
    assert "age" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["schema", "infer", str(tmp_path / "missing.csv"), "--target", "y"])
    assert res.exit_code == 2 and "missing.csv" in res.output


def test_data_that_does_not_fit_names_attribute_and_row(tmp_path: Path) -> None:
    csv = tmp_path / "loans.csv"
    pd.DataFrame({"income": ["1", "2", "lots", "4"], "status": ["a", "b", "a", "b"]}).to_csv(
        csv, index=False)
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"name": "x", "target": "status", "classes": ["a", "b"],
                                  "positive_class": "b",
                                  "attributes": [{"name": "income", "type": "numeric"}]}))
    res = runner.invoke(app, ["learn", "--data", str(csv), "--schema", str(schema)])
    assert res.exit_code == 2, res.output
    assert "income" in res.output and "row 3" in res.output


def test_models_list_empty_and_unknown(fresh_home: Path) -> None:
    res = runner.invoke(app, ["models", "list"])
    assert res.exit_code == 0 and "no registered models" in res.output
    res = runner.invoke(app, ["rollback", "nope"])
    assert res.exit_code == 2 and "nope" in res.output


@pytest.mark.slow
def test_promote_and_rollback_commands(fresh_home: Path) -> None:
    args = ["learn", "--dataset", "lending-club-default", "--sample", "1500", "--quiet",
            "--models", "majority,gbdt", "--name", "cli-test"]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, [*args[:-4], "--models", "majority"] + args[-2:]).exit_code == 0
    res = runner.invoke(app, ["promote", "cli-test", "2"])
    assert res.exit_code == 1 and "refused" in res.output
    res = runner.invoke(app, ["promote", "cli-test", "2", "--force"])
    assert res.exit_code == 0 and "promoted" in res.output
    res = runner.invoke(app, ["models", "list", "cli-test"])
    assert res.exit_code == 0 and "champion" in res.output
    res = runner.invoke(app, ["rollback", "cli-test"])
    assert res.exit_code == 0 and "v1" in res.output


@pytest.mark.parametrize("args,env,says", [
    (["models", "list"], {"LOANRISK_MAX_BAD_RATE": "abc"},
     "configuration: LOANRISK_MAX_BAD_RATE: Input should be a valid number"),
    (["models", "list"], {"LOANRISK_HOME": "/proc/nope"}, "/proc/nope: No such file"),
    (["models", "list"], {"LOANRISK_POLL_SECONDS": "-5"},
     "LOANRISK_POLL_SECONDS: Input should be greater than or equal to 0.1"),
    (["learn", "--dataset", "lending-club-default", "--sample", "-5"], {}, "--sample -5"),
    (["learn", "--dataset", "lending-club-default", "--data", "x.csv"], {},
     "--dataset lending-club-default and --data/--schema"),
    (["monitor", "--database", "sqlite:////nonexistent/dir/x.db"], {}, "no such SQLite file"),
    (["models", "list"], {"LOANRISK_TRACKING_URI": "http://127.0.0.1:9",
                          "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
     "the registry at http://127.0.0.1:9 is unreachable or failing"),
])
def test_user_mistakes_are_one_clear_line(fresh_home: Path, monkeypatch: pytest.MonkeyPatch,
                                          args: list[str], env: dict[str, str],
                                          says: str) -> None:
    from loanrisk.config import get_settings

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    try:
        res = runner.invoke(app, args)
    finally:
        get_settings.cache_clear()
    assert res.exit_code == 2, res.output
    assert says in " ".join(res.output.split()) and "Traceback" not in res.output


def test_empty_settings_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """`export LOANRISK_HOME=` must not put the home in the current directory."""
    from loanrisk.config import Settings

    for name in ("LOANRISK_HOME", "LOANRISK_DATABASE_URL", "LOANRISK_TRACKING_URI",
                 "LOANRISK_POLL_SECONDS"):
        monkeypatch.setenv(name, "")
    s = Settings()
    assert s.home == Path.home() / ".loanrisk" and s.poll_seconds == 10.0
    assert s.database_url is None and s.tracking_uri is None


def test_messages_keep_square_brackets() -> None:
    """Rich markup must not eat pip extras such as 'loanrisk[scale]' in help or errors."""
    res = runner.invoke(app, ["score", "--help"])
    assert "loanrisk[scale]" in " ".join(res.output.split()).replace("│", "").replace(" ", "")

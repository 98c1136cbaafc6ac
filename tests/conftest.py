"""Shared fixtures: every test session gets its own loanrisk home (never the user's)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "api"))
from helpers import home  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """Wide, fixed console for the CLI's Rich output: messages that name a long temporary path
    must not wrap differently from one machine (or pytest run number) to the next."""
    os.environ["COLUMNS"] = "200"
    # a developer's (or CI's) MLflow server must not receive the tests' registrations: loanrisk
    # honours MLflow's own variables when LOANRISK_TRACKING_URI is unset
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(name, None)
    # Encryption at rest is on by default, with keys made in each loanrisk home at first use. A
    # test and the `loanrisk serve` it starts have different homes, so the session shares one
    # keyring by variable, as a service and its tools share keys in production; the default key
    # file itself is tested in tests/unit/test_encryption_default.py.
    import base64

    os.environ["LOANRISK_ENCRYPTION_KEYS"] = ",".join(
        f"{kid}:{base64.b64encode(bytes([seed]) * 32).decode()}"
        for kid, seed in (("t1", 7), ("index", 9)))
    os.environ.pop("LOANRISK_ENCRYPTION_KEY_FILE", None)
    os.environ.pop("LOANRISK_ENCRYPTION", None)


@pytest.fixture(scope="session", autouse=True)
def loanrisk_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point LOANRISK_HOME at a fresh directory for the whole session."""
    with home(tmp_path_factory.mktemp("loanrisk-home")) as path:
        yield path


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A loanrisk home of this test's own (registry and store start empty)."""
    from loanrisk.config import get_settings

    monkeypatch.setenv("LOANRISK_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()

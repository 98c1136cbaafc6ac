"""MLflow's own variables are honoured when loanrisk's are unset, and the source is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from loanrisk.config import Settings


def _settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> Settings:
    for name in ("LOANRISK_TRACKING_URI", "LOANRISK_REGISTRY_URI", "MLFLOW_TRACKING_URI",
                 "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(home=tmp_path)


def test_default_is_sqlite_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    s = _settings(monkeypatch, tmp_path)
    assert s.resolved_tracking_uri.startswith("sqlite:///") and s.tracking_uri_is_default
    assert s.tracking_uri_source.startswith("default")


def test_mlflow_tracking_uri_used_when_loanrisk_unset(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    s = _settings(monkeypatch, tmp_path, MLFLOW_TRACKING_URI="http://mlflow:5000")
    assert s.resolved_tracking_uri == s.resolved_registry_uri == "http://mlflow:5000"
    assert s.tracking_uri_source == s.registry_uri_source == "MLFLOW_TRACKING_URI"
    assert not s.tracking_uri_is_default


def test_loanrisk_variables_win(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    s = _settings(monkeypatch, tmp_path, MLFLOW_TRACKING_URI="http://mlflow:5000",
                  MLFLOW_REGISTRY_URI="http://reg:5000",
                  LOANRISK_TRACKING_URI="http://ours:5000")
    assert s.resolved_tracking_uri == "http://ours:5000"
    assert s.tracking_uri_source == "LOANRISK_TRACKING_URI"
    assert s.resolved_registry_uri == "http://reg:5000"
    assert s.registry_uri_source == "MLFLOW_REGISTRY_URI"
    s = _settings(monkeypatch, tmp_path, MLFLOW_REGISTRY_URI="http://reg:5000",
                  LOANRISK_REGISTRY_URI="http://ourreg:5000")
    assert s.resolved_registry_uri == "http://ourreg:5000"
    assert s.registry_uri_source == "LOANRISK_REGISTRY_URI"


def test_empty_mlflow_variable_means_unset(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    s = _settings(monkeypatch, tmp_path, MLFLOW_TRACKING_URI="")
    assert s.tracking_uri_is_default

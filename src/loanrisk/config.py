"""One settings object for the whole system, read from LOANRISK_* environment variables.

Nothing is created or connected at import: call :func:`get_settings` and then
:meth:`Settings.ensure_home` where a command actually needs the directories.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """loanrisk configuration. Every field can be set as LOANRISK_<FIELD> (e.g. LOANRISK_HOME)."""

    # an empty LOANRISK_* variable (``export LOANRISK_HOME=``) means "not set", not "the
    # current directory" or an empty URL
    model_config = SettingsConfigDict(env_prefix="LOANRISK_", extra="ignore",
                                      env_ignore_empty=True)

    home: Path = Field(default=Path.home() / ".loanrisk", description="Where embedded state lives.")
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; default: SQLite under home."
    )
    registry_uri: str | None = Field(default=None,
                                     description="MLflow registry URI; default: tracking.")
    database_url: str | None = Field(
        default=None, description="Application store (SQLAlchemy URL); default: SQLite under home."
    )
    seed: int = 42
    leakage_threshold: float = Field(
        default=0.98,
        description="A single attribute scoring at least this (accuracy for multiclass, ROC-AUC "
        "for "
        "binary) is called leaky.",
    )
    # Risk tiers from the adverse-class probability (binary) or expected adverse mass (multiclass).
    tier_medium: float = 0.10
    tier_high: float = 0.25
    decline_threshold: float = 0.25
    # How `learn` sets a version's decision threshold and tiers on calibrated probabilities
    # (manifest["decision"]); see loanrisk.scoring.decision.
    decision_rule: str = Field(default="max_bad_rate",
                               description="'max_bad_rate' or 'approval_rate'.")
    max_bad_rate: float = Field(default=0.04, description="Highest expected adverse rate among "
                                "approved applications (rule max_bad_rate).")
    target_approval_rate: float = Field(default=0.8, description="Share of applications to "
                                        "approve (rule approval_rate).")
    max_reasons: int = Field(default=4, ge=0, le=20, description="Reasons per decision.")
    max_latency_us: float | None = Field(
        default=None, description="`learn` (and `learn --from-store`) chooses the champion only "
        "among models scoring one application with reasons within this p50, in µs.")
    require_monotone: bool = Field(
        default=False, description="`learn` chooses the champion only among models with no "
        "monotone violation on the evaluation split (learn --require-monotone).")
    # The scorecard's points (learn --pdo / --base-points / --base-odds override them).
    scorecard_pdo: float = Field(default=20.0, gt=0, description="Scorecard: points to double "
                                 "the odds (good:bad).")
    scorecard_base_points: float = Field(default=600.0, description="Scorecard: the score at "
                                         "the base odds.")
    scorecard_base_odds: float = Field(default=50.0, gt=0, description="Scorecard: the odds "
                                       "(good:bad) that score the base points, e.g. 50 for 50:1.")
    scorecard_method: Literal["penalised", "woe"] = Field(
        default="penalised", description="Scorecard fit: 'penalised' (fine bins, each with its "
        "own points, a smoothness penalty) or 'woe' (the classic coarse WoE bins times one "
        "coefficient per attribute); learn --scorecard-method overrides.")
    body_limit_bytes: int = Field(default=64 * 1024, ge=1024,
                                  description="Largest request body, in bytes.")
    rate_limit_per_minute: int = Field(default=600, ge=1,
                                       description="Requests per API key per minute.")
    rate_limit_url: str = Field(
        default="", description="redis://HOST:PORT/DB: one rate-limit bucket per API key shared "
        "by every service process; empty: each process keeps its own.")
    poll_seconds: float = Field(default=10.0, ge=0.1,
                                description="How often the service checks the registry.")
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines of serve, schedule and ui: text, or one JSON "
        "object a line (time, level, logger, request_id, message) for a log shipper.")
    grace_seconds: float = Field(default=30.0, ge=0, description="On SIGTERM the service stops "
                                 "accepting connections and finishes the requests it accepted "
                                 "within this many seconds (then cancels the rest and exits).")
    # Watching (monitor, performance, fairness, challenger): see docs/architecture.md.
    psi_watch: float = Field(default=0.1, description="PSI at or above this: watch.")
    psi_alert: float = Field(default=0.25, description="PSI at or above this: alert.")
    monitor_max_rows: int = Field(default=200_000,
                                  description="Drift windows larger than this are sampled.")
    perf_margin: float = Field(default=0.05, description="Alert when live ROC-AUC is this much "
                               "below the version's evaluation-time ROC-AUC.")
    fairness_min_ratio: float = Field(default=0.8, description="Lowest adverse-impact ratio "
                                      "(min group approval rate / max) the gate accepts.")
    fairness_vs_champion: bool = Field(default=True, description="The gate also refuses a "
                                       "challenger whose ratio is below the champion's.")
    fairness_tolerance: float = Field(default=0.0, description="How far below the champion's "
                                      "ratio a challenger may fall.")
    challenger_mode: str = Field(default="off", description="off | shadow | canary.")
    challenger_share: float = Field(default=0.1, description="Canary: share of applicants "
                                    "(sticky) given the challenger's decision.")
    challenger_version: int | None = Field(default=None, description="The challenger version "
                                           "(registered model).")
    challenger_dir: Path | None = Field(default=None, description="The challenger as a local "
                                        "model version directory (with --model-dir serving).")
    optuna_storage: str | None = Field(default=None, description="Optuna study storage URL for "
                                       "`loanrisk tune` (default: SQLite under home); a shared "
                                       "database for Ray workers on several machines.")
    drift_seconds: float = Field(default=0.0, description="The service recomputes drift over "
                                 "the last `drift_window` every this many seconds (0: only "
                                 "reads the newest `loanrisk monitor` report).")
    drift_window: str = Field(default="7d", description="The window the service's drift "
                              "gauges cover.")
    audit_retention_days: int | None = Field(default=None, ge=1, description="`loanrisk audit "
                                             "purge` without --before deletes audit rows older "
                                             "than this many days (default: keep them all).")

    @property
    def tracking_uri_source(self) -> str:
        """Which variable chose the tracking URI: LOANRISK_TRACKING_URI, then MLflow's own
        MLFLOW_TRACKING_URI (a team's MLflow convention), else the SQLite default under home."""
        if self.tracking_uri:
            return "LOANRISK_TRACKING_URI"
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return "MLFLOW_TRACKING_URI"
        return "default (SQLite under LOANRISK_HOME)"

    @property
    def tracking_uri_is_default(self) -> bool:
        """Neither LOANRISK_TRACKING_URI nor MLFLOW_TRACKING_URI: the embedded SQLite registry."""
        return not (self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))

    @property
    def resolved_tracking_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        mlflow_uri = os.environ.get("MLFLOW_TRACKING_URI")
        return mlflow_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def registry_uri_source(self) -> str:
        """Which variable chose the registry URI: LOANRISK_REGISTRY_URI, MLFLOW_REGISTRY_URI,
        else the tracking URI's own source."""
        if self.registry_uri:
            return "LOANRISK_REGISTRY_URI"
        if os.environ.get("MLFLOW_REGISTRY_URI"):
            return "MLFLOW_REGISTRY_URI"
        return self.tracking_uri_source

    @property
    def resolved_registry_uri(self) -> str:
        return (self.registry_uri or os.environ.get("MLFLOW_REGISTRY_URI")
                or self.resolved_tracking_uri)

    @property
    def artifact_root(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def serving_cache(self) -> Path:
        return self.home / "serving"

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'loanrisk.db').resolve()}"

    def ensure_home(self) -> Path:
        """Create the home directory tree (idempotent) and return it."""
        for d in (self.home, self.artifact_root, self.reports_dir, self.serving_cache):
            d.mkdir(parents=True, exist_ok=True)
        return self.home


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests call ``get_settings.cache_clear()`` after changing env)."""
    return Settings()

"""Tuned parameters on disk: where `loanrisk tune` saves the best of each model
(``<home>/tuned/<dataset>/<model>.json``) and how `learn` merges them under the user's own
overrides (no Optuna needed to read them)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loanrisk.config import Settings
    from loanrisk.learn.types import LearnOptions

TUNABLE = ("mlp", "gbdt", "linear", "scorecard")


def tuned_path(settings: Settings, key: str, model: str) -> Path:
    """``<home>/tuned/<key>/<model>.json``."""
    return settings.home / "tuned" / key / f"{model}.json"


def apply_tuned(opts: LearnOptions, settings: Settings, *, key: str) -> LearnOptions:
    """``opts`` with the saved tuned parameters of each model merged under the user's overrides.

    mlp parameters apply only when they were tuned for the same ``mlp_config``. The files used
    are listed in ``opts.tuned_from``.
    """
    updates: dict[str, Any] = {"tuned_from": dict(opts.tuned_from)}
    for model in TUNABLE:
        path = tuned_path(settings, key, model)
        if model not in opts.models or not path.exists():
            continue
        doc = json.loads(path.read_text())
        if model == "mlp" and doc.get("design", "reference") != opts.mlp_config:
            continue
        updates[model] = {**doc["params"], **getattr(opts, model)}
        updates["tuned_from"][model] = str(path)
    return dataclasses.replace(opts, **updates)

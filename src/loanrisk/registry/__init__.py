"""The model registry (MLflow): immutable versions and their integrity records
(:mod:`~loanrisk.registry.client`), what the gate measures (:mod:`~loanrisk.registry.evaluation`),
the fairness gate (:mod:`~loanrisk.registry.fairness`) and the promotion gate
(:mod:`~loanrisk.registry.gate`)."""

from loanrisk.registry.client import (
    ARTIFACT_DIR,
    CHAMPION,
    RegistryClient,
    VersionInfo,
    redact,
    unavailable,
)
from loanrisk.registry.evaluation import onnx_proba, roc_auc, unseen_by
from loanrisk.registry.gate import PromotionResult, Registry

__all__ = ["ARTIFACT_DIR", "CHAMPION", "PromotionResult", "Registry", "RegistryClient",
           "VersionInfo", "onnx_proba", "redact", "roc_auc", "unavailable", "unseen_by"]

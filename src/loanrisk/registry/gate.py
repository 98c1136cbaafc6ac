"""The promotion gate: ``champion`` moves to a candidate only when it beats the champion on the
same evaluation data (rows the champion trained on left out), is not trained on leaky attributes,
passes the fairness gate, and loads as a service would load it; rollback returns it to its
predecessor. Runs ONNX graphs only, never training code."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loanrisk.errors import GateError, ModelLoadError, RegistryError
from loanrisk.registry.client import CHAMPION, HISTORY_TAG, RegistryClient
from loanrisk.registry.evaluation import onnx_proba, roc_auc, unseen_by


def _score(value: float | None) -> str:
    """A gate score for a message: four decimals, or "unknown" where none could be measured."""
    return "unknown" if value is None else f"{value:.4f}"


@dataclass
class PromotionResult:
    """What the gate decided, and why."""

    name: str
    version: int
    promoted: bool
    previous: int | None
    reason: str
    candidate_score: float | None = None
    champion_score: float | None = None
    metric: str = "roc_auc"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Registry(RegistryClient):
    """The registry with its promotion gate (see the module's docstring)."""

    def servable(self, name: str, version: int) -> Path:
        """The verified files of a version that a service would accept: every file matches the
        registry's record and the graph passes its golden-input check. ModelLoadError (saying
        the champion is unchanged) otherwise: promote and rollback check before moving it."""
        try:
            return self.load_scorer(name, version, warm=False).model_dir
        except ModelLoadError as exc:
            raise ModelLoadError(f"{exc}; the champion is unchanged") from exc

    def promote(self, name: str, version: int, *, force: bool = False) -> PromotionResult:
        """Move ``champion`` to ``version`` if it beats the champion on the same evaluation data."""
        import pandas as pd

        from loanrisk.manifest import Y_COLUMN as y_col

        candidate = self._info(self._version(name, version))
        current = self.champion(name)
        history = self._history(name)
        metric = "roc_auc"
        if current is not None and current.version == candidate.version:
            return PromotionResult(name, version, False, current.version,
                                   f"v{version} is already the champion", metric=metric)
        cand_dir = self.servable(name, version)
        manifest = json.loads((cand_dir / "manifest.json").read_text())
        metric = manifest.get("primary_metric", metric)
        leaky = [lk["attribute"] for lk in manifest.get("leakage", [])
                 if lk["attribute"] in manifest.get("features", [])]
        if leaky and not force:
            return PromotionResult(
                name, version, False, current.version if current else None,
                f"v{version} was trained on leaky attributes ({', '.join(leaky)}): its figures are "
                "not honest and those values are not known when an application arrives; "
                "not promoted (use --force if you really mean it)",
                candidate.metrics.get(metric), current.metrics.get(metric) if current else None,
                metric,
            )
        if current is None:
            unfair = None if force else self._unfair(cand_dir, None)
            if unfair:
                return PromotionResult(name, version, False, None, f"v{version}: {unfair}; not "
                                       "promoted (use --force to override)", metric=metric)
            self._set_champion(name, version, [*history, version])
            return PromotionResult(name, version, True, None,
                                   "no champion yet: the first version becomes champion",
                                   candidate_score=candidate.metrics.get(metric), metric=metric)
        eval_path = cand_dir / "eval.parquet"
        unfair = None
        overlap_note = ""
        try:
            df = pd.read_parquet(eval_path)
            champ_dir = self.download(name, current.version)
            df, overlap_note = unseen_by(champ_dir, df)
            y = df[y_col].to_numpy()
            cand_proba, champ_proba = onnx_proba(cand_dir, df), onnx_proba(champ_dir, df)
            cand_score: float | None = roc_auc(y, cand_proba)
            champ_score: float | None = roc_auc(y, champ_proba)
            unfair = None if force else self._unfair(cand_dir, champ_dir, df, cand_proba,
                                                     champ_proba)
        except (GateError, OSError, KeyError) as exc:
            if not force:
                raise GateError(
                    f"cannot compare v{version} with champion v{current.version} on the same "
                    f"evaluation data ({exc}); use --force to promote anyway"
                ) from exc
            cand_score, champ_score = candidate.metrics.get(metric), current.metrics.get(metric)
        if not force and unfair:
            return PromotionResult(name, version, False, current.version,
                                   f"v{version}: {unfair}; champion unchanged (use --force to "
                                   "override)", cand_score, champ_score, metric)
        better = cand_score is not None and champ_score is not None and cand_score > champ_score
        if better or force:
            self._set_champion(name, version, [*history, version])
            why = (
                f"{metric} {cand_score:.4f} beats champion v{current.version}'s {champ_score:.4f} "
                f"on the same evaluation data{overlap_note}"
                if better
                else f"forced: {metric} {_score(cand_score)} vs champion v{current.version}'s "
                f"{_score(champ_score)}"
            )
            return PromotionResult(name, version, True, current.version, why,
                                   cand_score, champ_score, metric)
        return PromotionResult(
            name, version, False, current.version,
            f"{metric} {cand_score:.4f} does not beat champion v{current.version}'s "
            f"{champ_score:.4f} on the same evaluation data{overlap_note}; champion unchanged "
            "(use --force to override)",
            cand_score, champ_score, metric,
        )

    def _unfair(self, cand_dir: Path, champ_dir: Path | None, df: Any = None,
                cand_proba: Any = None, champ_proba: Any = None) -> str | None:
        """The fairness gate (only when the schema declares protected attributes)."""
        from loanrisk.registry.fairness import gate_refusal

        return gate_refusal(cand_dir=cand_dir, champ_dir=champ_dir, eval_df=df,
                            cand_proba=cand_proba, champ_proba=champ_proba,
                            settings=self.settings)

    def rollback(self, name: str) -> PromotionResult:
        """Move ``champion`` back to the version that held it before the current one."""
        current = self.champion(name)
        if current is None:
            raise RegistryError(f"model {name!r} has no champion to roll back")
        history = self._history(name)
        while history and history[-1] == current.version:
            history.pop()
        if not history:
            raise RegistryError(
                f"model {name!r}: champion v{current.version} has no predecessor to roll back to"
            )
        previous = history[-1]
        self.servable(name, previous)  # never point the champion at what cannot be served
        self.client.set_registered_model_alias(name, CHAMPION, str(previous))
        self.client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
        self._remember(name, previous)
        return PromotionResult(name, previous, True, current.version,
                               f"rolled back from v{current.version} to v{previous}")

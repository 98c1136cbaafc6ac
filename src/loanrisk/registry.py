"""The model registry: MLflow runs, immutable model versions, and the ``champion`` alias.

Serving-safe: this module imports only MLflow's tracking client (in ``mlflow-skinny``), numpy,
pandas and onnxruntime. The promotion gate runs ONNX graphs, never training code.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loanrisk.config import Settings, get_settings
from loanrisk.errors import GateError, ModelLoadError, RegistryError, RegistryUnavailable
from loanrisk.integrity import FILES_TAG, ArtifactRecord
from loanrisk.integrity import sha256_file as sha256_file  # re-exported: older imports

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from loanrisk.scorer import Scorer

log = logging.getLogger(__name__)

CHAMPION = "champion"
HISTORY_TAG = "loanrisk.champion_history"
ARTIFACT_DIR = "loanrisk"  # where a version's files live inside its MLflow run


@dataclass
class VersionInfo:
    """One immutable registered model version."""

    name: str
    version: int
    model: str
    metrics: dict[str, float]
    sha256: str
    run_id: str
    created_at: str
    aliases: list[str] = field(default_factory=list)
    source: str = ""
    files: dict[str, str] = field(default_factory=dict)  # every file's SHA-256 (integrity)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def record(self) -> ArtifactRecord:
        """What this version's files must be (kept in the registry, never in the cache)."""
        return ArtifactRecord(sha256=self.sha256, files=dict(self.files))


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


def roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """ROC-AUC without scikit-learn (serving path): binary, or one-vs-rest macro."""
    import pandas as pd

    def _binary(t: np.ndarray, s: np.ndarray) -> float:
        pos = t.sum()
        neg = len(t) - pos
        if pos == 0 or neg == 0:
            return float("nan")
        ranks = pd.Series(s).rank().to_numpy()  # ties averaged
        return float((ranks[t == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))

    if proba.shape[1] == 2:
        return _binary((y == 1).astype(int), proba[:, 1])
    aucs = [_binary((y == k).astype(int), proba[:, k]) for k in range(proba.shape[1])]
    aucs = [a for a in aucs if not np.isnan(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def onnx_proba(model_dir: Path, df: pd.DataFrame) -> np.ndarray:
    """Run a version's ONNX graph on a frame of raw attributes (float64 probabilities)."""
    import onnxruntime as ort

    manifest = json.loads((model_dir / "manifest.json").read_text())
    sess = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    from loanrisk.features import frame_to_onnx_feed

    missing = [n for n in manifest["inputs"] if n not in df.columns]
    if missing:
        raise GateError(
            f"attributes {missing}, inputs of {manifest['name']}, are missing from the "
            "evaluation data"
        )
    feed = frame_to_onnx_feed(df, manifest["inputs"])
    return np.asarray(sess.run(["probabilities"], feed)[0], dtype=np.float64)


MIN_GATE_ROWS = 100
# MLflow error codes that mean "not there" (any other failure is an outage, not an answer)
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


def _iso_ms(ms: Any) -> str:
    """MLflow's creation timestamp (epoch milliseconds) as ISO 8601 UTC."""
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).isoformat(timespec="seconds")
    except (TypeError, ValueError):
        return str(ms)


_USERINFO = re.compile(r"(\w[\w+.-]*://)[^/@\s]+@")


def redact(text: str) -> str:
    """``text`` with the user:password part of every URL in it replaced by ``***``."""
    return _USERINFO.sub(r"\1***@", text)


def unavailable(uri: str, exc: BaseException) -> RegistryUnavailable:
    """RegistryUnavailable naming the tracking server and the first line of what failed
    (credentials in URLs redacted: the message reaches /ready and the logs)."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if len(first) > 200:
        first = first[:200].rsplit(" ", 1)[0] + " …"
    return RegistryUnavailable(redact(f"the registry at {uri} is unreachable or failing: "
                                      f"{first}"))


def unseen_by(champ_dir: Path, df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The candidate's evaluation rows the champion did not learn from, and a note for the reason.

    A version keeps the hashes of its training and validation rows (``train_rows.parquet``);
    rows among them would flatter the champion. When too few rows remain (or the champion
    predates the file), the whole split is used and the note says so.
    """
    import pandas as pd

    from loanrisk import manifest as mf

    info = json.loads((champ_dir / "manifest.json").read_text()).get("train_rows") or {}
    path = champ_dir / str(info.get("file", mf.TRAIN_ROWS_FILE))
    cols = list(info.get("columns") or [])
    if not path.exists() or not cols or not set(cols) <= set(df.columns):
        return df, " (the champion's training rows are unknown: overlap not excluded)"
    seen = pd.read_parquet(path)["hash"].to_numpy(np.uint64)
    mask = ~np.isin(mf.row_hashes(df, cols), seen)
    if mask.all():
        return df, ""
    kept = df[mask]
    y = kept[mf.Y_COLUMN].to_numpy()
    if len(kept) < MIN_GATE_ROWS or len(np.unique(y)) < 2:
        return df, (f" ({int((~mask).sum())} of {len(df)} rows were in the champion's training "
                    "data, too many to leave out)")
    return kept, (f" ({len(kept)} of {len(df)} evaluation rows: the {int((~mask).sum())} the "
                  "champion trained on are left out)")


class Registry:
    """MLflow-backed registry: local SQLite + files by default, a team server by URL."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._client: MlflowClient | None = None

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            # quiet by default: no per-file download bars or schema-migration chatter
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
            logging.getLogger("mlflow").setLevel(logging.WARNING)
            from mlflow import MlflowClient

            self.settings.ensure_home()
            self._client = MlflowClient(
                tracking_uri=self.settings.resolved_tracking_uri,
                registry_uri=self.settings.resolved_registry_uri,
            )
        return self._client

    def experiment_id(self, name: str) -> str:
        """The MLflow experiment for a model name (created with a local artifact root)."""
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        location = None
        if self.settings.tracking_uri is None:  # embedded: artifacts under the loanrisk home
            location = (self.settings.artifact_root / name).resolve().as_uri()
        return str(self.client.create_experiment(name, artifact_location=location))

    def _version(self, name: str, version: int | str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            if name not in self.list_models():
                raise RegistryError(f"no registered model named {name!r}; known: "
                                    f"{', '.join(self.list_models()) or 'none'}") from exc
            raise RegistryError(
                f"model {name!r} has no version {version}; see `loanrisk models list`"
            ) from exc

    def _info(self, mv: Any) -> VersionInfo:
        tags = dict(mv.tags or {})
        metrics = json.loads(tags.get("loanrisk.metrics", "{}"))
        record = ArtifactRecord.from_tags(tags)
        return VersionInfo(
            name=mv.name,
            version=int(mv.version),
            model=tags.get("loanrisk.model", "?"),
            metrics=metrics,
            sha256=tags.get("loanrisk.sha256", ""),
            run_id=mv.run_id or "",
            created_at=_iso_ms(mv.creation_timestamp),
            aliases=list(getattr(mv, "aliases", []) or []),
            source=mv.source,
            files=record.files,
        )

    # -- reading --------------------------------------------------------------------------------
    def list_models(self) -> list[str]:
        return sorted(m.name for m in self.client.search_registered_models())

    def list_versions(self, name: str) -> list[VersionInfo]:
        versions = self.client.search_model_versions(f"name='{name}'")
        if not versions and name not in self.list_models():
            raise RegistryError(
                f"no registered model named {name!r}; known: "
                f"{', '.join(self.list_models()) or 'none'}"
            )
        infos = sorted((self._info(v) for v in versions), key=lambda v: v.version)
        champ = self.champion(name)  # search results do not carry aliases
        for info in infos:
            if champ is not None and info.version == champ.version and CHAMPION not in info.aliases:
                info.aliases.append(CHAMPION)
        return infos

    def champion(self, name: str) -> VersionInfo | None:
        from mlflow.exceptions import MlflowException

        try:
            return self._info(self.client.get_model_version_by_alias(name, CHAMPION))
        except MlflowException as exc:
            if exc.error_code in _MISSING:
                return None  # no such model, or no champion yet
            raise unavailable(self.settings.resolved_registry_uri, exc) from exc

    def version_dir(self, name: str, version: int | None = None) -> tuple[Path, int]:
        """(verified local files, version) of ``version``, or of the champion when None.

        RegistryError when the model has no champion and no version is given.
        """
        if version is None:
            champ = self.champion(name)
            if champ is None:
                raise RegistryError(f"model {name!r} has no champion; pass --version N or "
                                    "promote one (`loanrisk models list`)")
            version = champ.version
        return self.download(name, version), int(version)

    def download(self, name: str, version: int) -> Path:
        """A verified local copy of a version's files (the serving cache).

        Every file is checked against the version's record in the registry (SHA-256 of each
        file); a cached copy that fails is replaced by a fresh copy from the registry. Raises
        ModelLoadError when the registry's own copy fails too, or cannot be read: nothing
        unverified is left in the cache.
        """
        info = self._info(self._version(name, version))
        record = info.record
        dest = self.settings.serving_cache / name / str(version)
        if dest.exists():
            problems = record.problems(dest)
            if not problems:
                return dest
            log.warning("%s v%s: the cached copy fails verification (%s); repairing it from "
                        "the registry", name, version, "; ".join(problems[:3]))
        self._fetch(info, dest)
        problems = record.problems(dest)
        if problems:
            shutil.rmtree(dest, ignore_errors=True)
            raise ModelLoadError(
                f"{name} v{version}: the registry's copy fails verification "
                f"({'; '.join(problems[:3])}); refusing to serve a modified artifact")
        return dest

    def _fetch(self, info: VersionInfo, dest: Path) -> None:
        """Replace ``dest`` with the registry's copy of a version's files (atomic rename)."""
        import uuid

        tmp = dest.with_name(f".{info.version}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.mkdir(parents=True)
        try:
            from mlflow.exceptions import MlflowException

            try:
                local = Path(self.client.download_artifacts(info.run_id, ARTIFACT_DIR, str(tmp)))
            except (OSError, MlflowException) as exc:  # the artifact store holds no copy
                if isinstance(exc, MlflowException) and exc.error_code not in _MISSING:
                    raise
                raise ModelLoadError(
                    f"{info.name} v{info.version}: the registry's files cannot be read "
                    f"({type(exc).__name__}); no verified copy of this version can be served"
                ) from exc
            old = dest.with_name(f".{info.version}.{uuid.uuid4().hex[:8]}.old")
            try:
                dest.rename(old)
            except FileNotFoundError:
                pass
            try:
                local.rename(dest)
            except OSError:  # another process put its copy there first: checked by the caller
                pass
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def info(self, name: str, version: int) -> VersionInfo:
        """One registered version (RegistryError naming what exists when unknown)."""
        return self._info(self._version(name, version))

    def load_scorer(self, name: str, version: int, *, warm: bool = True) -> Scorer:
        """A version's scorer as the service loads it: every file checked against the
        registry's record (a damaged cache repaired), the bytes parsed checked again, golden
        inputs re-scored. ModelLoadError when no verified copy can be had."""
        from loanrisk.scorer import Scorer

        info = self.info(name, version)
        path = self.download(name, version)
        return Scorer.load(path, settings=self.settings, record=info.record,
                           expected_sha256=info.sha256 or None, version=version, warm=warm)

    def servable(self, name: str, version: int) -> Path:
        """The verified files of a version that a service would accept: every file matches the
        registry's record and the graph passes its golden-input check. ModelLoadError (saying
        the champion is unchanged) otherwise: promote and rollback check before moving it."""
        try:
            return self.load_scorer(name, version, warm=False).model_dir
        except ModelLoadError as exc:
            raise ModelLoadError(f"{exc}; the champion is unchanged") from exc

    # -- writing --------------------------------------------------------------------------------
    def register(
        self, *, name: str, run_id: str, model: str, sha256: str, metrics: dict[str, float],
        files: dict[str, str] | None = None,
    ) -> VersionInfo:
        """Register the artifacts logged under ``loanrisk/`` in ``run_id`` as a new version.

        ``files`` ({name: SHA-256} of every file logged, see
        :func:`loanrisk.integrity.digest_files`) becomes the version's integrity record.
        """
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name, description=f"loanrisk model for {name}")
        except MlflowException:
            pass  # exists already
        run = self.client.get_run(run_id)
        tags = {
            "loanrisk.model": model,
            "loanrisk.sha256": sha256,
            "loanrisk.metrics": json.dumps({k: round(float(v), 6) for k, v in metrics.items()}),
        }
        if files:
            if files.get("model.onnx", sha256) != sha256:
                raise RegistryError(f"{name}: model.onnx's SHA-256 differs from the one given")
            tags[FILES_TAG] = json.dumps(files, sort_keys=True)
        mv = self.client.create_model_version(
            name, f"{run.info.artifact_uri}/{ARTIFACT_DIR}", run_id=run_id, tags=tags
        )
        return self._info(mv)

    def _history(self, name: str) -> list[int]:
        rm = self.client.get_registered_model(name)
        return [int(v) for v in json.loads((rm.tags or {}).get(HISTORY_TAG, "[]"))]

    def _set_champion(self, name: str, version: int, history: list[int]) -> None:
        self.client.set_registered_model_alias(name, CHAMPION, str(version))
        self.client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-50:]))
        self._remember(name, version)

    def _remember(self, name: str, version: int) -> None:
        """Record the champion locally so a service can start while the tracking server is down."""
        path = self.settings.serving_cache / name / "champion.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"name": name, "version": version}))

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
        from loanrisk.fairness import gate_refusal

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

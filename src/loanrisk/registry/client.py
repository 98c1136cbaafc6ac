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

from loanrisk.config import Settings, get_settings
from loanrisk.errors import ModelLoadError, RegistryError, RegistryUnavailable
from loanrisk.integrity import FILES_TAG, ArtifactRecord

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from loanrisk.scoring.scorer import Scorer

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


class RegistryClient:
    """MLflow access: versions, their verified files, the champion alias and its history (local
    SQLite + files by default, a team server by URL). :class:`~loanrisk.registry.gate.Registry`
    adds the promotion gate."""

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
        if self.settings.tracking_uri_is_default:  # embedded: artifacts under the loanrisk home
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
        from loanrisk.scoring.scorer import Scorer

        info = self.info(name, version)
        path = self.download(name, version)
        return Scorer.load(path, settings=self.settings, record=info.record,
                           expected_sha256=info.sha256 or None, version=version, warm=warm)

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

"""The model being served and how it is replaced: atomic swaps, background loads, polling.

A :class:`Served` bundles a verified :class:`~loanrisk.scoring.scorer.Scorer` with the request
validator
built from the same schema. :class:`ModelHolder` keeps one reference to it; a request reads the
reference once and finishes on that object, so a swap never disturbs requests in flight.

Sources: a local model directory (``--model-dir``, no registry), or a registered model name
whose ``champion`` alias is polled. Every registered version is loaded through the registry's
record of its files (see loanrisk.integrity): the bytes served are the bytes registered, and a
damaged cache is repaired from the registry. Each version the service swaps in is remembered,
with that record, in the application store (:class:`TrustedRecords`); at start the last one is
served from the cache only if it matches the store's record, so the service starts and keeps
serving when the tracking server is down, and never serves what nobody verified. Logs carry
versions and reasons, never attribute values or keys; reasons shown over HTTP carry no paths.

A challenger (shadow or canary, see serving.challenger) is loaded beside the champion from the
registry (``challenger_version``) or a directory (``challenger_dir``); a
:class:`~.challenger.ChallengerRouter` pairs it with the champion in use and is rebuilt at
every swap. A canary rolled back by its guardrails stays off across restarts (the reason is kept
in ``serving_cache/<name>/canary_rollback.json``) until the challenger is set again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loanrisk.config import Settings
from loanrisk.errors import LoanriskError, ModelLoadError
from loanrisk.integrity import ArtifactRecord
from loanrisk.scoring.scorer import Scorer
from loanrisk.scoring.validation import RequestValidator
from loanrisk.serving.challenger import ChallengerPolicy, ChallengerRouter
from loanrisk.serving.trust import TrustedRecords, public_text, said

if TYPE_CHECKING:
    from loanrisk.registry import Registry

log = logging.getLogger(__name__)
REFUSAL_RETRY_SECONDS = 60.0  # a refused champion is tried again after this (or on reload)


@dataclass(frozen=True)
class Served:
    """One loaded model version and its validator (immutable; swapped as a whole)."""

    scorer: Scorer
    validator: RequestValidator
    role: str = "champion"

    @classmethod
    def load(cls, model_dir: Path, *, settings: Settings, expected_sha256: str | None = None,
             version: int | None = None, role: str = "champion",
             record: ArtifactRecord | None = None) -> Served:
        """Load + verify + warm; ModelLoadError when the artifact is refused."""
        scorer = Scorer.load(model_dir, settings=settings, expected_sha256=expected_sha256,
                             version=version, record=record)
        return cls(scorer=scorer, validator=RequestValidator(scorer.manifest, scorer.schema),
                   role=role)


class ModelHolder:
    """The served model, swapped atomically; loads run in a background thread."""

    def __init__(self, settings: Settings, *, model_name: str | None = None,
                 model_dir: Path | None = None, records: TrustedRecords | None = None) -> None:
        self.settings = settings
        self.model_name = model_name
        self.model_dir = model_dir
        self.records = records
        self.current: Served | None = None
        self.last_error: str | None = None
        self.refused: dict[tuple[int | None, str], float] = {}  # -> when (monotonic)
        self._lock = threading.Lock()  # one load at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listeners: list[Any] = []  # callables(Served) told after each swap (metrics)
        self.policy = ChallengerPolicy.from_settings(settings)  # LoanriskError if inconsistent
        self.challenger: Served | None = None
        self.challenger_error: str | None = None
        self.router: ChallengerRouter | None = None
        self.rollback_listeners: list[Any] = []  # callables(str) told when a canary rolls back
        self.challenger_tried = threading.Event()  # set once the first challenger load ended

    @property
    def registry_mode(self) -> bool:
        """Whether the model comes from the registry (else a local directory)."""
        return self.model_dir is None and self.model_name is not None

    def swap(self, served: Served) -> None:
        """Make ``served`` the model for new requests (one reference assignment)."""
        old = self.current
        self.current = served
        s = served.scorer
        log.info("serving %s v%s (%s, sha256 %s…)%s", s.name, s.version, s.model_kind,
                 s.sha256[:12], "" if old is None else f", replacing v{old.scorer.version}")
        self._rebuild_router()
        for fn in self.listeners:
            fn(served)

    # -- challenger -----
    def router_for(self, served: Served) -> ChallengerRouter | None:
        """The router pairing ``served`` (read once by a request) with the challenger, if any."""
        router = self.router
        return router if router is not None and router.champion is served.scorer else None

    def _rebuild_router(self) -> None:
        cur, chall = self.current, self.challenger
        if cur is None or chall is None or (cur.scorer.sha256 == chall.scorer.sha256):
            self.router = None  # no challenger, or it has become the champion
            return
        self.router = ChallengerRouter(self.policy, champion=cur.scorer,
                                       challenger=chall.scorer, on_rollback=self._rolled_back)

    def _rollback_file(self) -> Path:
        name = self.model_name or (self.current.scorer.name if self.current else "model")
        return self.settings.serving_cache / name / "canary_rollback.json"

    def _rolled_back(self, reason: str) -> None:
        chall = self.challenger
        log.warning("canary v%s rolled back: %s",
                    chall.scorer.version if chall else self.policy.version, reason)
        try:
            path = self._rollback_file()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"version": self.policy.version,
                                        "directory": str(self.policy.directory or ""),
                                        "reason": reason}))
        except OSError as exc:
            log.warning("cannot record the canary rollback: %s", exc)
        for fn in self.rollback_listeners:
            fn(reason)

    def _honour_rollback(self) -> None:
        """A canary rolled back earlier stays off (same version or directory)."""
        try:
            prior = json.loads(self._rollback_file().read_text())
        except (OSError, ValueError):
            return
        same = (prior.get("version") == self.policy.version
                and prior.get("directory", "") == str(self.policy.directory or ""))
        if self.policy.mode == "canary" and same:
            self.policy.mode = "off"
            self.policy.rollback_reason = f"rolled back earlier: {prior.get('reason')}"

    def load_challenger(self) -> Served | None:
        """Load the policy's challenger (registry version or directory). Never raises: an
        unloadable challenger is reported in :meth:`challenger_status`; the champion serves."""
        try:
            return self._load_challenger()
        finally:
            self.challenger_tried.set()

    def _load_challenger(self) -> Served | None:
        self._honour_rollback()
        policy = self.policy
        self.challenger, self.challenger_error = None, None
        if policy.mode == "off":
            self._rebuild_router()
            return None
        try:
            if policy.directory is not None:
                served = Served.load(policy.directory, settings=self.settings,
                                     version=policy.version, role="challenger")
            elif self.registry_mode and policy.version is not None:
                from loanrisk.registry import Registry

                assert self.model_name is not None
                served = self._load_registered(Registry(self.settings), policy.version,
                                               role="challenger")
            else:
                raise LoanriskError("a challenger version needs a registered model (--model); "
                                    "with --model-dir give --challenger-dir")
        except Exception as exc:  # keep serving the champion; say why
            self.challenger_error = said(exc)
            log.warning("challenger not loaded: %s", self.challenger_error)
            self._rebuild_router()
            return None
        self.challenger = served
        s = served.scorer
        log.info("challenger %s v%s (%s) in %s mode", s.name, s.version, s.sha256[:12],
                 policy.mode)
        self._rebuild_router()
        return served

    def set_challenger(self, policy: ChallengerPolicy) -> dict[str, Any]:
        """Replace the policy (admin), load its challenger, clear an old rollback record."""
        with self._lock:
            self.policy = policy
            try:
                self._rollback_file().unlink()
            except OSError:
                pass
            self.load_challenger()
        return self.challenger_status()

    @property
    def ready(self) -> bool:
        """A champion is serving and the configured challenger (if any) was tried."""
        return self.current is not None and (self.policy.mode == "off"
                                             or self.challenger_tried.is_set())

    def challenger_status(self) -> dict[str, Any]:
        """Mode, share, versions, counts, rollback reason and load error of the challenger."""
        router = self.router
        out: dict[str, Any] = router.status() if router is not None else {
            "mode": self.policy.mode, "share": self.policy.share,
            "champion_version": self.current.scorer.version if self.current else None,
            "challenger_version": self.policy.version, "counts": {},
            "rollback_reason": self.policy.rollback_reason}
        out["active"] = router is not None and self.policy.mode != "off"
        out["error"] = self.challenger_error
        return out

    # -- loading -----
    def load_initial(self) -> None:
        """First load: the local dir, or the verified cached champion then the registry.
        Never raises."""
        try:
            if self.model_dir is not None:
                self.swap(Served.load(self.model_dir, settings=self.settings))
                self.load_challenger()
                return
            self._load_trusted_cache()
            if self.current is not None:  # serve the cached pair before asking the registry
                self.load_challenger()
            self._poll_once()
            if not self.challenger_tried.is_set():
                self.load_challenger()
        except Exception as exc:  # keep the process up; /ready says why it is not ready
            self.challenger_tried.set()
            self.last_error = said(exc)
            log.warning("model not loaded: %s", self.last_error)

    def _load_trusted_cache(self) -> None:
        """Serve the version this service (or its peers on the same store) served last, from
        the cache, when its files match the record the store keeps: a start that does not wait
        for the registry. Anything else waits for the registry."""
        assert self.model_name is not None
        if self.records is None:
            return
        try:
            known = self.records.recall_served(self.model_name)
        except Exception as exc:  # the store is down: the registry decides
            log.warning("no record of the last served version (%s)", type(exc).__name__)
            return
        if known is None:
            return
        version, record = known
        path = self.settings.serving_cache / self.model_name / str(version)
        if not path.is_dir():
            return
        problems = record.problems(path)
        try:
            if problems:
                raise ModelLoadError("; ".join(problems[:3]))
            self.swap(Served.load(path, settings=self.settings, version=version, record=record,
                                  expected_sha256=record.sha256 or None))
        except LoanriskError as exc:
            self.last_error = public_text(
                f"the cached copy of v{version} fails verification ({exc}); not served, waiting "
                "for the registry to repair it")
            log.warning("cached champion v%s refused: %s", version, self.last_error)

    def _load_registered(self, reg: Registry, version: int, *, role: str = "champion"
                         ) -> Served:
        """A registered version, verified against the registry's record (cache repaired)."""
        assert self.model_name is not None
        info = reg.info(self.model_name, version)
        path = reg.download(self.model_name, version)
        return Served.load(path, settings=self.settings, expected_sha256=info.sha256 or None,
                           version=version, role=role, record=info.record)

    def _serving_now(self) -> str:
        """"still serving v3", or "nothing is served" (for log lines and /ready)."""
        cur = self.current
        return f"still serving v{cur.scorer.version}" if cur else "nothing is served"

    def _no_champion(self, reg: Registry) -> str:
        """Why there is nothing to serve: a name the registry does not know (a typo?) or a
        model with no champion yet, and what to do about it."""
        known = reg.list_models()
        if self.model_name not in known:
            return (f"registry reports no model named {self.model_name!r} (known: "
                    f"{', '.join(known) or 'none'}); /ready stays 503 until `loanrisk learn` "
                    "registers one and a version is promoted")
        return (f"registry reports no champion for {self.model_name!r}; promote a version with "
                f"`loanrisk promote {self.model_name} VERSION`")

    def check_registry(self) -> bool:
        """Ask the registry for the champion; load and swap it if it moved. True if swapped.

        A refused model (hash mismatch, golden check) is logged and remembered; the old model keeps
        serving. Registry errors propagate to the caller (the poller logs and carries on).
        """
        if not self.registry_mode:
            return False
        from loanrisk.registry import Registry

        assert self.model_name is not None
        with self._lock:
            reg = Registry(self.settings)
            info = reg.champion(self.model_name)
            if info is None:  # the registry answered: no such model, or no champion yet
                error = self._no_champion(reg)
                if error != self.last_error:
                    log.warning("registry check failed, %s: %s", self._serving_now(), error)
                self.last_error = error
                return False
            cur = self.current
            if cur is not None and cur.scorer.version == info.version \
                    and cur.scorer.sha256 == info.sha256:
                self.last_error = None  # the registry answers and agrees with what is served
                return False
            refused_at = self.refused.get((info.version, info.sha256))
            if refused_at is not None and time.monotonic() - refused_at < REFUSAL_RETRY_SECONDS:
                return False
            try:
                served = self._load_registered(reg, info.version)
            except ModelLoadError as exc:
                self.refused[(info.version, info.sha256)] = time.monotonic()
                error = public_text(f"champion v{info.version} refused: {exc}; "
                                    f"{self._serving_now()}")
                if error != self.last_error:
                    log.warning("refused %s v%s, %s: %s", self.model_name, info.version,
                                self._serving_now(), exc)
                self.last_error = error
                return False
            self.swap(served)
            self.last_error = None
            self._remember(info.version, info.record)
            return True

    def _remember(self, version: int, record: ArtifactRecord) -> None:
        if self.records is None or self.model_name is None:
            return
        try:
            self.records.remember_served(self.model_name, version, record)
        except Exception as exc:  # the store is down: the next start waits for the registry
            log.warning("cannot record the served version in the store (%s)",
                        type(exc).__name__)

    def reload(self) -> Served | None:
        """Reload now (admin): re-check the registry (refused versions are tried again), or
        re-read the local directory."""
        if self.registry_mode:
            self.refused.clear()
            self.check_registry()
        elif self.model_dir is not None:
            with self._lock:
                self.swap(Served.load(self.model_dir, settings=self.settings))
        return self.current

    # -- background -----
    def start(self) -> None:
        """Load in a background thread, then poll the registry every ``poll_seconds``."""
        self._thread = threading.Thread(target=self._run, name="loanrisk-model", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.load_initial()
        while self.registry_mode and not self._stop.wait(self.settings.poll_seconds):
            self._poll_once()

    def _poll_once(self) -> None:
        try:
            self.check_registry()
        except Exception as exc:  # tracking server down, network...: keep serving
            from loanrisk.registry import redact

            why = redact(str(exc).splitlines()[0][:200]) if str(exc) else type(exc).__name__
            self.last_error = public_text(f"registry unreachable ({why}); "
                                          f"{self._serving_now()}")
            log.warning("registry check failed, %s: %s", self._serving_now(),
                        type(exc).__name__)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling (the loaded model stays)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

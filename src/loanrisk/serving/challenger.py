"""Shadow and canary: a challenger version next to the champion (pure logic, no HTTP, no DB).

* **shadow**: the challenger scores every application; its result is returned separately (to be
  stored in ``challenger_decisions``), never to the client.
* **canary**: a sticky share of applicants gets the challenger's decision. Assignment is
  ``sha256(applicant_id or application id) -> [0, 1) < share``, the same on every process and
  restart (Python's ``hash()`` is salted per process and is never used). The champion still
  scores canary applications: its decision is kept as the counterfactual (role ``champion``) and
  served instead whenever the challenger fails.
* **guardrails** (canary): over a rolling window of canary applications, the challenger's error
  rate, its decline rate minus the champion's on the same applications, and its p95 scoring
  latency. A broken guardrail rolls the canary back at once: the policy's mode becomes ``off``.

The service builds one :class:`ChallengerRouter` per (champion, challenger) pair and calls
:meth:`ChallengerRouter.route` for each request, then stores ``Routed.served`` in
``applications`` and ``Routed.extra`` with :func:`loanrisk.store.challenger.challenger_rows`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from loanrisk.errors import LoanriskError

if TYPE_CHECKING:
    from loanrisk.config import Settings
    from loanrisk.scoring.scorer import Decision

Mode = Literal["off", "shadow", "canary"]
MODES: tuple[str, ...] = ("off", "shadow", "canary")


class ScorerLike(Protocol):
    """What the router needs of a scorer (loanrisk.scoring.scorer.Scorer fits)."""

    version: int | None
    sha256: str

    def score(self, records: list[dict[str, Any]]) -> list[Decision]: ...


@dataclass(frozen=True)
class Guardrails:
    """Limits a canary must keep; checked once ``min_requests`` canary scorings are seen."""

    max_error_rate: float = 0.02
    max_decline_delta: float = 0.10  # challenger decline rate - champion's, same applications
    max_latency_ms: float = 250.0  # p95 of the challenger's scoring calls
    min_requests: int = 50
    window: int = 1000


@dataclass
class ChallengerPolicy:
    """Which challenger runs, how (shadow / canary / off), on what share, with what limits."""

    mode: Mode = "off"
    share: float = 0.1
    version: int | None = None
    guardrails: Guardrails = field(default_factory=Guardrails)
    directory: Path | None = None  # a local model version directory instead of a version
    rollback_reason: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise LoanriskError(f"challenger mode {self.mode!r}: use one of {', '.join(MODES)}")
        if not 0.0 <= self.share <= 1.0:
            raise LoanriskError(f"challenger share {self.share}: use a number from 0 to 1 "
                                "(0.1 = 10% of applicants)")
        if self.mode != "off" and self.version is None and self.directory is None:
            raise LoanriskError(f"challenger mode {self.mode}: say which version "
                                "(LOANRISK_CHALLENGER_VERSION, serve --challenger-version) or "
                                "directory (LOANRISK_CHALLENGER_DIR, serve --challenger-dir)")

    @classmethod
    def from_settings(cls, settings: Settings) -> ChallengerPolicy:
        """The policy configured by LOANRISK_CHALLENGER_MODE / _SHARE / _VERSION."""
        return cls(mode=settings.challenger_mode, share=settings.challenger_share,  # type: ignore[arg-type]
                   version=settings.challenger_version, directory=settings.challenger_dir)


def bucket(key: str) -> float:
    """A stable number in [0, 1) for a key: the first 8 bytes of its SHA-256."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assignment_key(*, applicant_id: str | None, application_id: str) -> str:
    """Sticky per applicant when the lender sends ``applicant_id``, else per application."""
    return f"applicant:{applicant_id}" if applicant_id else f"application:{application_id}"


def in_canary(policy: ChallengerPolicy, key: str) -> bool:
    """Whether the application with this assignment key gets the challenger's decision."""
    return policy.mode == "canary" and bucket(key) < policy.share


def is_adverse(d: Decision) -> bool:
    """A decline (binary), or a high risk tier (grades)."""
    if d.decision in ("approve", "decline"):
        return d.decision == "decline"
    return d.risk_tier == "high"


@dataclass
class ChallengerResult:
    """One row for ``challenger_decisions`` (role shadow | canary | champion)."""

    role: str
    model_version: int | None
    model_sha256: str
    decision: Decision | None
    error: str | None = None
    latency_ms: float | None = None


@dataclass
class Routed:
    """One application's outcome: what the client gets, and what is stored beside it."""

    served: Decision
    served_by: str  # "champion" | "canary" (the value for applications.served_by)
    served_version: int | None
    served_sha256: str
    extra: list[ChallengerResult] = field(default_factory=list)


class ChallengerRouter:
    """Routes applications between a champion and a challenger under a policy. Thread-safe."""

    def __init__(self, policy: ChallengerPolicy, *, champion: ScorerLike,
                 challenger: ScorerLike | None,
                 on_rollback: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.policy = policy
        self.champion = champion
        self.challenger = challenger
        self.on_rollback = on_rollback
        self._clock = clock
        self._lock = threading.Lock()
        size = policy.guardrails.window
        self._errors: deque[bool] = deque(maxlen=size)
        self._latency: deque[float] = deque(maxlen=size)
        self._declines: deque[tuple[bool, bool]] = deque(maxlen=size)  # (champion, challenger)
        self.counts = {"champion": 0, "shadow": 0, "canary": 0, "errors": 0}

    def _challenge(self, records: list[dict[str, Any]]) -> tuple[list[Decision] | None,
                                                                 str | None, float]:
        assert self.challenger is not None
        t0 = self._clock()
        try:
            out = self.challenger.score(records)
            err = None
        except Exception as exc:  # any failure of the challenger must not reach the client
            out, err = None, f"{type(exc).__name__}: {exc}"[:500]
        return out, err, (self._clock() - t0) * 1000.0 / max(len(records), 1)

    def route(self, records: list[dict[str, Any]], *, keys: list[str]) -> list[Routed]:
        """Score ``records`` (validated attribute dicts) and decide what each client gets.

        ``keys``: one :func:`assignment_key` per record. The champion's errors propagate (the
        request fails as it would without a challenger); the challenger's never do.
        """
        champ = self.champion.score(records)
        mode, chall = self.policy.mode, self.challenger
        out = [Routed(d, "champion", self.champion.version, self.champion.sha256) for d in champ]
        if mode == "off" or chall is None or not records:
            self._count("champion", len(records))
            return out
        picked = (list(range(len(records))) if mode == "shadow"
                  else [i for i, k in enumerate(keys) if in_canary(self.policy, k)])
        if not picked:
            self._count("champion", len(records))
            return out
        decisions, err, ms = self._challenge([records[i] for i in picked])
        role = "shadow" if mode == "shadow" else "canary"
        for j, i in enumerate(picked):
            mine = None if decisions is None else decisions[j]
            out[i].extra.append(ChallengerResult(role, chall.version, chall.sha256, mine, err, ms))
            if role == "canary":
                out[i].extra.append(ChallengerResult("champion", self.champion.version,
                                                     self.champion.sha256, champ[i]))
                if mine is not None:
                    out[i].served, out[i].served_by = mine, "canary"
                    out[i].served_version, out[i].served_sha256 = chall.version, chall.sha256
        self._record(role, [champ[i] for i in picked], decisions, err, ms)
        return out

    def _count(self, what: str, n: int) -> None:
        with self._lock:
            self.counts[what] += n

    def _record(self, role: str, champ: list[Decision], chall: list[Decision] | None,
                err: str | None, ms: float) -> None:
        with self._lock:
            self.counts[role] += len(champ)
            self.counts["errors"] += len(champ) if err else 0
            if role != "canary":
                return
            for k, c in enumerate(champ):
                self._errors.append(err is not None)
                self._latency.append(ms)
                if chall is not None:
                    self._declines.append((is_adverse(c), is_adverse(chall[k])))
            broken = self._broken()
        if broken:
            self.rollback(broken)

    def _broken(self) -> str | None:
        """The first broken guardrail, in words, or None (caller holds the lock)."""
        g = self.policy.guardrails
        n = len(self._errors)
        if n < g.min_requests:
            return None
        rate = sum(self._errors) / n
        if rate > g.max_error_rate:
            return f"challenger error rate {rate:.1%} > {g.max_error_rate:.1%} over {n} scorings"
        if len(self._declines) >= g.min_requests:
            champ = sum(c for c, _ in self._declines) / len(self._declines)
            mine = sum(m for _, m in self._declines) / len(self._declines)
            if mine - champ > g.max_decline_delta:
                return (f"challenger declines {mine:.1%} vs the champion's {champ:.1%} on "
                        f"the same {len(self._declines)} applications "
                        f"(limit +{g.max_decline_delta:.0%})")
        lat = sorted(self._latency)
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
        if p95 > g.max_latency_ms:
            return f"challenger p95 latency {p95:.0f} ms > {g.max_latency_ms:.0f} ms"
        return None

    def rollback(self, reason: str) -> None:
        """Turn the canary off (every application is the champion's again) and say why."""
        with self._lock:
            if self.policy.mode == "off":
                return
            self.policy.mode = "off"
            self.policy.rollback_reason = reason
        if self.on_rollback is not None:
            self.on_rollback(reason)

    def status(self) -> dict[str, Any]:
        """Mode, share, versions, counts and the rollback reason (for /ready or admin)."""
        with self._lock:
            return {"mode": self.policy.mode, "share": self.policy.share,
                    "champion_version": self.champion.version,
                    "challenger_version": self.challenger.version if self.challenger else None,
                    "counts": dict(self.counts), "rollback_reason": self.policy.rollback_reason}

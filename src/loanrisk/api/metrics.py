"""Prometheus metrics of one app instance (its own registry, so several apps can coexist).

Under `serve --workers N` (``PROMETHEUS_MULTIPROC_DIR`` set before prometheus_client is imported)
every worker writes its counters to files in that directory and ``/metrics``, whichever worker
answers it, adds them up over all workers (prometheus_client's multiprocess mode); the model-info
gauge keeps one series per live worker (``pid`` label).
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from loanrisk.serving import Served

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess() -> bool:
    """Whether this process is one of several workers sharing their metrics through files."""
    return bool(os.environ.get(MULTIPROC_ENV))

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Requests and latency by route and status, decisions by class and tier, model in use."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.collectors: list[Any] = []  # custom collectors (drift): computed by each worker
        self.requests = Counter("loanrisk_requests_total", "HTTP requests by route and status.",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("loanrisk_request_seconds", "HTTP request latency (seconds).",
                                 ["route", "method", "status"], buckets=BUCKETS,
                                 registry=self.registry)
        self.decisions = Counter("loanrisk_decisions_total", "Decisions by class and risk tier.",
                                 ["endpoint", "decision", "tier"], registry=self.registry)
        self.model_info = Gauge("loanrisk_model_info", "The model version in use (value 1).",
                                ["name", "version", "sha256", "model"], registry=self.registry,
                                multiprocess_mode="liveall")
        self._info_labels: tuple[str, ...] | None = None
        self.swaps = Counter("loanrisk_model_swaps_total", "Model versions swapped in.",
                             registry=self.registry)
        self.challenger = Counter("loanrisk_challenger_scored_total",
                                  "Challenger scorings by role (shadow, canary, champion "
                                  "counterfactual) and status (ok, error).",
                                  ["role", "status"], registry=self.registry)
        self.rollbacks = Counter("loanrisk_canary_rollbacks_total",
                                 "Canaries rolled back by a broken guardrail.",
                                 registry=self.registry)
        self.rate_limit_fallbacks = Counter(
            "loanrisk_rate_limit_fallbacks_total",
            "Requests limited by this process's own bucket because the shared rate-limit store "
            "(LOANRISK_RATE_LIMIT_URL) could not be reached.", registry=self.registry)

    def challenged(self, results: list[Any]) -> None:
        """Count one application's challenger results (serving.challenger.ChallengerResult)."""
        for r in results:
            self.challenger.labels(r.role, "error" if r.error else "ok").inc()

    def rolled_back(self, _reason: str) -> None:
        """Count one canary rollback."""
        self.rollbacks.inc()

    def on_swap(self, served: Served) -> None:
        """Point the model-info gauge at the newly served version."""
        s = served.scorer
        if multiprocess():  # a worker's file keeps the old series (clear() cannot): 0 it
            if self._info_labels is not None:
                self.model_info.labels(*self._info_labels).set(0)
        else:
            self.model_info.clear()
        self._info_labels = (s.name, str(s.version), s.sha256, s.model_kind)
        self.model_info.labels(*self._info_labels).set(1)
        self.swaps.inc()

    def add_collector(self, collector: Any) -> None:
        """Register a custom collector (it answers from this process in either mode)."""
        self.registry.register(collector)
        self.collectors.append(collector)

    def exposition(self) -> bytes:
        """The Prometheus text of /metrics: this app's registry, or every worker's values."""
        if not multiprocess():
            return bytes(generate_latest(self.registry))
        from prometheus_client import multiprocess as mp

        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)
        for collector in self.collectors:
            registry.register(collector)
        return bytes(generate_latest(registry))

    @staticmethod
    def worker_exited() -> None:
        """Drop this worker's live series (multiprocess mode only)."""
        if multiprocess():
            from prometheus_client import multiprocess as mp

            mp.mark_process_dead(os.getpid())

    def decided(self, endpoint: str, decision: str, tier: str) -> None:
        """Count one decision."""
        self.decisions.labels(endpoint, decision, tier).inc()


class MetricsMiddleware:
    """Pure ASGI middleware (cheap): times every HTTP request, labelled by route template."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def _send(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            labels = (path, scope.get("method", ""), str(status[0]))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - start)

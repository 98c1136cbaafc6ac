"""Drift gauges in the service: the newest drift report of the served model, for Prometheus.

Where the figures come from: ``loanrisk monitor`` (from cron, a timer or by hand) writes
``reports/monitor/<model>/<stamp>/report.json`` under the loanrisk home; the service exports the
newest one for the model it serves. With ``LOANRISK_DRIFT_SECONDS`` > 0 the service also runs
that computation itself, in a background thread, over the last ``LOANRISK_DRIFT_WINDOW`` of
stored applications (sampled as ``loanrisk monitor`` samples), so the gauges stay fresh without a
scheduler. Gauges (one sample each per attribute; ``__score__`` is the predicted probability):

* ``loanrisk_drift_psi{attribute}``: population stability index against the training reference;
* ``loanrisk_drift_level``: 0 ok, 1 watch, 2 alert (the worst attribute);
* ``loanrisk_drift_report_timestamp_seconds``: when that report was written.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from loanrisk.config import Settings
from loanrisk.serving import ModelHolder

log = logging.getLogger(__name__)
LEVELS = {"ok": 0, "watch": 1, "alert": 2}


class DriftGauges(Collector):
    """A Prometheus collector reading the newest drift report of the served model."""

    def __init__(self, holder: ModelHolder, settings: Settings) -> None:
        self.holder = holder
        self.settings = settings
        self._cache: tuple[Path, float, dict[str, Any]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _model(self) -> str | None:
        cur = self.holder.current
        return cur.scorer.name if cur is not None else self.holder.model_name

    def latest(self) -> tuple[Path, dict[str, Any]] | None:
        """(path, report) of the newest report.json for the served model, or None."""
        name = self._model()
        if not name:
            return None
        base = self.settings.reports_dir / "monitor" / name
        try:
            paths = sorted(base.glob("*/report.json"))
        except OSError:
            return None
        if not paths:
            return None
        path = paths[-1]
        try:
            mtime = path.stat().st_mtime
            if self._cache is not None and self._cache[:2] == (path, mtime):
                return path, self._cache[2]
            report = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("drift report unreadable: %s", type(exc).__name__)
            return None
        self._cache = (path, mtime, report)
        return path, report

    def collect(self) -> Iterator[GaugeMetricFamily]:
        psi = GaugeMetricFamily("loanrisk_drift_psi", "Population stability index of each "
                                "attribute (and __score__) against the training reference.",
                                labels=["attribute"])
        level = GaugeMetricFamily("loanrisk_drift_level", "Worst drift level: 0 ok, 1 watch, "
                                  "2 alert.")
        stamp = GaugeMetricFamily("loanrisk_drift_report_timestamp_seconds",
                                  "When the drift report behind these gauges was written.")
        found = self.latest()
        if found is not None:
            path, report = found
            for name, attr in sorted((report.get("attributes") or {}).items()):
                psi.add_metric([name], float(attr.get("psi", 0.0)))
            level.add_metric([], LEVELS.get(str(report.get("level")), 0))
            stamp.add_metric([], self._cache[1] if self._cache else path.stat().st_mtime)
        yield from (psi, level, stamp)

    # -- background computation -----
    def start(self) -> None:
        """Recompute drift every ``drift_seconds`` (no thread when it is 0)."""
        if self.settings.drift_seconds <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="loanrisk-drift", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.drift_seconds):
            self.refresh()

    def refresh(self) -> dict[str, Any] | None:
        """Compute drift now over the configured window (the served version's reference)."""
        from loanrisk.errors import LoanriskError
        from loanrisk.watch.monitor import monitor

        cur = self.holder.current
        if cur is None:
            return None
        s = cur.scorer
        try:
            report = monitor(model=s.name, since=self.settings.drift_window, version=s.version,
                             manifest=s.manifest, settings=self.settings)
        except LoanriskError as exc:  # no applications in the window yet, no reference...
            log.info("drift not computed: %s", exc)
            return None
        except Exception as exc:  # never take the service down for a report
            log.warning("drift computation failed: %s", type(exc).__name__)
            return None
        return report.to_dict()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

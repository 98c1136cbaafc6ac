"""Where a long `learn` run is, and what each stage cost: one progress bar over the stages,
named after the stage at work, and each stage's wall time and peak resident memory.

Peak memory per stage comes from the kernel's high-water mark (``VmHWM`` in
``/proc/self/status``), reset at the start of each stage by writing ``5`` to
``/proc/self/clear_refs`` (Linux 4.0 and later). Where that is not possible, the figure is the
process's peak so far (``getrusage``), which is an upper bound, and the record says so. The reset
also resets what ``getrusage``/``wait4`` report for the process: the run's peak is the largest
stage peak (:meth:`StageLog.peak_rss_mib`, ``peak_rss_mib`` in the summary).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class StageRecord:
    """One stage: its name, wall seconds, peak RSS in MiB during it, and whether that peak is
    the stage's own (``True``) or the process's peak so far (an upper bound)."""

    name: str
    seconds: float
    peak_rss_mib: float | None
    own_peak: bool


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process; False where it cannot."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _peak_so_far_kib() -> int | None:
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


class StageLog:
    """Times the stages of one run; shows them on one bar (``progress``) as they go.

    ``total`` is the number of stages expected, for the bar; a run may add stages beyond it (the
    bar then grows)."""

    def __init__(self, *, total: int, progress: bool, label: str = "learn") -> None:
        self.records: list[StageRecord] = []
        self._label = label
        self._bar: Any = None
        if progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, unit="stage", desc=label, leave=False, disable=None,
                             bar_format="{desc}: {n_fmt}/{total_fmt} stages {bar} "
                                        "[{elapsed}<{remaining}]")

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name`` (and name it on the bar while it runs)."""
        if self._bar is not None:
            if self._bar.n >= self._bar.total:
                self._bar.total = self._bar.n + 1
            self._bar.set_description_str(f"{self._label}: {name}")
        own = _reset_peak()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - t0
            kib = _status_kib("VmHWM") if own else None
            if kib is None:
                own, kib = False, _peak_so_far_kib()
            rec = StageRecord(name, round(seconds, 3),
                              round(kib / 1024, 1) if kib is not None else None, own)
            self.records.append(rec)
            log.info("stage %s: %.2f s, peak RSS %s MiB", name, seconds, rec.peak_rss_mib)
            if self._bar is not None:
                self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def as_dicts(self) -> list[dict[str, Any]]:
        """The records, for the summary JSON and the report."""
        return [asdict(r) for r in self.records]

    def peak_rss_mib(self) -> float | None:
        """The largest stage peak (the run's peak, where each stage's own peak was read)."""
        peaks = [r.peak_rss_mib for r in self.records if r.peak_rss_mib is not None]
        return max(peaks) if peaks else None


def stages_markdown(stages: list[dict[str, Any]] | None) -> list[str]:
    """The report's table of stages: seconds and peak RSS each."""
    if not stages:
        return []
    total = sum(s["seconds"] for s in stages)
    lines = ["## Where the time went", "",
             f"{len(stages)} stages, {total:.1f} s in all; peak resident memory per stage "
             "(the kernel's high-water mark, reset at each stage).", "",
             "| stage | seconds | share | peak RSS MiB |", "|---|---:|---:|---:|"]
    for s in stages:
        peak = "" if s["peak_rss_mib"] is None else f"{s['peak_rss_mib']:.0f}"
        if s["peak_rss_mib"] is not None and not s["own_peak"]:
            peak += " (process peak so far)"
        share = s["seconds"] / total if total else 0.0
        lines.append(f"| {s['name']} | {s['seconds']:.2f} | {share:.0%} | {peak} |")
    return [*lines, ""]

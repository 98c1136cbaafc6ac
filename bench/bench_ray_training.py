"""Repeated splits on Ray vs in this process (`evaluate --backend ray`); writes its section of
bench/RESULTS.md.

Runs `loanrisk evaluate` (every family, untuned, 5 splits by default) on a bundled dataset twice
in one process, the peers side by side: the splits one after another here (local), and the splits
after the first as Ray tasks on a local Ray (start-up included). Checks that every per-split
metric is the same on both.

    python bench/bench_ray_training.py [--dataset lending-club-grades] [--repeats 5] [--no-write]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from datetime import date
from pathlib import Path

from _results import cpu_name, write_section

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Measure both backends, compare their figures, write the RESULTS.md section."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="lending-club-grades")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    os.environ["LOANRISK_HOME"] = tempfile.mkdtemp(prefix="loanrisk-bench-ray-")
    from loanrisk.learn.pipeline import LearnOptions, learn

    base = LearnOptions(dataset=args.dataset, repeats=args.repeats, register=False,
                        promote=False, progress=False, use_tuned=False)
    seconds, stats = {}, {}
    for backend in ("local", "ray"):
        t0 = time.perf_counter()
        stats[backend] = learn(dataclasses.replace(base, backend=backend)).repeats
        seconds[backend] = time.perf_counter() - t0
    same = stats["local"].per_seed == stats["ray"].per_seed
    n_values = sum(len(rows) * len(rows[0]) for rows in stats["local"].per_seed.values())
    cpu = cpu_name()
    text = "\n".join([
        "## Repeated splits on Ray (`bench/bench_ray_training.py`)", "",
        f"- Date: {date.today().isoformat()}; machine: `nproc` {os.cpu_count()}, {cpu}, shared "
        "with other jobs; Ray on this machine only (`ray.init()` in the process).",
        f"- `evaluate --dataset {args.dataset} --repeats {args.repeats}` (majority, linear, mlp, "
        "gbdt, ensemble; untuned), both in one process, one after the other.", "",
        "| backend | seconds |", "|---|---:|",
        f"| local (the splits one after another) | {seconds['local']:.1f} |",
        f"| ray (splits 2..{args.repeats} as tasks; Ray start-up included) | "
        f"{seconds['ray']:.1f} |", "",
        f"Per-split metrics identical on both: {'yes' if same else 'NO'} ({n_values} values). "
        "Each task asks Ray for as many CPUs as this process's torch threads, so on 2 cores the "
        "tasks run one at a time and Ray adds its start-up; with a cluster the splits run side "
        "by side.", ""])
    print(text)
    if not args.no_write:
        write_section("ray-training", text)

if __name__ == "__main__":
    main()

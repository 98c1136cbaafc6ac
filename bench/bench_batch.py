"""Batch scoring throughput (`loanrisk score`); writes its section of bench/RESULTS.md.

Scores the bundled good/bad table, repeated to ``--rows`` rows, with a model version directory
(validation + graph + thresholds + reasons for every row), on each backend, beside the peer: the
same scorer called one application at a time (what a loop over the service's scorer would do).

    python bench/bench_batch.py --model-dir DIR [--rows 50000] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from _results import write_section

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model-dir", type=Path, required=True, help="a lending-club-default version")
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    import pandas as pd

    from loanrisk.datasets import read_for_scoring
    from loanrisk.schema import Schema
    from loanrisk.serving.batch import _files, score_chunk, score_table

    work = Path(tempfile.mkdtemp(prefix="loanrisk-bench-batch-"))
    src = pd.read_csv(ROOT / "src/loanrisk/data/lending_club.csv.gz")
    reps = -(-args.rows // len(src))
    table = pd.concat([src] * reps, ignore_index=True).head(args.rows)
    data = work / "apps.parquet"
    table.to_parquet(data, index=False)

    results: list[dict[str, Any]] = []
    for backend, workers in (("local", 1), ("local", 2), ("ray", 1)):
        try:
            rep = score_table(data=data, out=work / f"{backend}{workers}.parquet",
                              model_dir=args.model_dir, backend=backend, workers=workers,
                              chunk_rows=5000, progress=False)
        except Exception as exc:  # ray not installed
            print(f"{backend}: skipped ({exc})")
            continue
        label = (f"{backend}, {workers} process(es)" if backend == "local" else
                 f"ray (local cluster, {os.cpu_count()} CPUs), start-up included")
        results.append({"how": label, "rows": rep.rows, "seconds": rep.seconds,
                        "rps": rep.rows_per_second})
    # peer: one application at a time through the same validation + scorer
    schema = Schema.load(args.model_dir / "schema.json")
    df = read_for_scoring(data, schema).head(5000)
    files = _files(args.model_dir)
    cols = {c: df[c].tolist() for c in df.columns}
    score_chunk(files, None, 0, {c: v[:10] for c, v in cols.items()})  # load once
    t = time.perf_counter()
    for i in range(len(df)):
        score_chunk(files, None, i, {c: v[i:i + 1] for c, v in cols.items()})
    sec = time.perf_counter() - t
    results.append({"how": "peer: one application per call (same scorer)", "rows": len(df),
                    "seconds": round(sec, 3), "rps": len(df) / sec})

    lines = ["## Batch scoring (`bench/bench_batch.py`)", "",
             f"- Date: {date.today().isoformat()}; `nproc` {os.cpu_count()}, shared machine; "
             f"model: {args.model_dir.name} directory of lending-club-default (gbdt, 22 "
             "features); every row validated, scored and given reasons.", "",
             "| how | rows | seconds | rows/s |", "|---|---:|---:|---:|"]
    lines += [f"| {r['how']} | {r['rows']:,} | {r['seconds']:.2f} | {r['rps']:,.0f} |"
              for r in results]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section("batch", text)


if __name__ == "__main__":
    main()

"""How `loanrisk learn` and `loanrisk score` scale with the size of the book.

    python bench/bench_learn_scale.py [--rows 10000,100000,400000,1000000] [--work DIR]
        [--models majority,linear,mlp,gbdt,ensemble] [--score-rows 1000000] [--no-write]

For each size, a table of that many rows of the grade schema is made from the bundled data
(bench/make_loans.py: resampled, mixed within class and perturbed), then `loanrisk learn` runs on
it in a fresh process and home (every default model, registered in a local MLflow registry),
writing each stage's wall time and peak resident memory (the kernel's high-water mark, reset at
each stage) to its summary. The process's own peak RSS comes from ``wait4``. Each stage's growth
is the slope of log(time) on log(rows) over the sizes of 100,000 rows and up (1 = linear).

Then `loanrisk score` streams the largest table through the champion it registered (one
process, chunks of 5,000 rows), its peak RSS from ``wait4`` and its rows/s beside the in-process
figure of the same run: the same champion scoring 20,000 of those rows as one batch in this
process (``serving.batch.score_chunk``: validation, graph, thresholds, reasons).

Writes bench/scale.json (every figure), bench/learn_scale.png (time per stage against rows) and
the "Scaling" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from _results import cpu_name, write_section
from make_loans import make_table, schema_path

HERE = Path(__file__).resolve().parent
LOANRISK = Path(sys.executable).with_name("loanrisk")


def run(cmd: list[str], *, env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run ``cmd``; (wall seconds, peak RSS MiB of the process from wait4). Exits on failure."""
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}); see {log}")
    return wall, usage.ru_maxrss / 1024


def learn_once(rows: int, work: Path, models: str) -> dict[str, Any]:
    table = work / f"loans-{rows}.parquet"
    if not table.exists() or not schema_path(table).exists():
        print(f"making {rows:,} rows -> {table}", flush=True)
        make_table("lending-club-grades", rows, table, seed=rows)
    home = work / f"home-{rows}"
    env = {**os.environ, "LOANRISK_HOME": str(home), "MLFLOW_TRACKING_URI": "",
           "LOANRISK_ENCRYPTION_KEYS": os.environ.get("LOANRISK_ENCRYPTION_KEYS", "")}
    env = {k: v for k, v in env.items() if v != ""}
    summary = work / f"summary-{rows}.json"
    print(f"learn on {rows:,} rows ...", flush=True)
    wall, rss = run([str(LOANRISK), "-v", "learn", "--data", str(table), "--schema",
                     str(schema_path(table)), "--name", "scale", "--models", models,
                     "--summary-json", str(summary), "-q"], env=env,
                    log=work / f"learn-{rows}.log")
    s = json.loads(summary.read_text())
    # resetting the kernel's mark at each stage resets what wait4 reports too: the run's peak is
    # the largest stage peak (or wait4's figure where that is larger)
    rss = max(rss, s.get("peak_rss_mib") or 0.0)
    print(f"  {wall:,.0f} s, peak RSS {rss:,.0f} MiB, champion {s['champion']['model']}",
          flush=True)
    return {"rows": rows, "wall_s": round(wall, 1), "peak_rss_mib": round(rss),
            "stages": s["stages"], "champion": s["champion"]["model"],
            "metrics": {m: v.get(s["primary_metric"]) for m, v in s["models"].items()},
            "primary_metric": s["primary_metric"], "checked_rows": s.get("checked_rows"),
            "home": str(home), "table": str(table)}


def score_once(run_: dict[str, Any], work: Path) -> dict[str, Any]:
    """`loanrisk score` over the run's table with its champion; and the in-process peer."""
    env = {**os.environ, "LOANRISK_HOME": run_["home"]}
    env.pop("MLFLOW_TRACKING_URI", None)
    out = work / "scored.parquet"
    print(f"score {run_['rows']:,} rows ...", flush=True)
    wall, rss = run([str(LOANRISK), "score", run_["table"], "-o", str(out), "--model", "scale",
                     "-q"], env=env, log=work / "score.log")
    log = (work / "score.log").read_text()
    peer = _in_process(run_, n=20_000)
    import pyarrow.parquet as pq

    scored = pq.ParquetFile(out).metadata.num_rows
    return {"rows": run_["rows"], "scored": scored, "wall_s": round(wall, 1),
            "rows_per_s": round(run_["rows"] / wall), "peak_rss_mib": round(rss),
            "in_process_rows_per_s": peer, "log": log.strip().splitlines()[0][:300]}


def _in_process(run_: dict[str, Any], *, n: int) -> float:
    """Rows/s of the same champion scoring ``n`` rows as one in-process batch."""
    os.environ["LOANRISK_HOME"] = run_["home"]
    import pyarrow.parquet as pq

    from loanrisk.config import get_settings
    from loanrisk.datasets import read_for_scoring
    from loanrisk.schema import Schema
    from loanrisk.serving.batch import _files, resolve_model, score_chunk

    get_settings.cache_clear()  # LOANRISK_HOME changed above
    model_dir, version = resolve_model(model="scale", version=None, model_dir=None,
                                       settings=get_settings())
    schema = Schema.load(model_dir / "schema.json")
    head = Path(run_["table"]).with_suffix(".head.parquet")
    pq.write_table(pq.ParquetFile(run_["table"]).read_row_group(0).slice(0, n), head)
    df = read_for_scoring(head, schema)
    files = _files(model_dir)
    features = json.loads(files["manifest.json"])["features"]
    cols = {c: df[c].tolist() for c in features if c in df.columns}
    score_chunk(files, version, 0, {c: v[:50] for c, v in cols.items()})  # load once
    t0 = time.perf_counter()
    rows, rejected = score_chunk(files, version, 0, cols)
    return round((len(rows) + len({r["row"] for r in rejected})) / (time.perf_counter() - t0))


def growth(runs: list[dict[str, Any]], *, floor: int = 100_000) -> dict[str, float]:
    """Each stage's fitted exponent: slope of log seconds on log rows, sizes >= ``floor``."""
    big = [r for r in runs if r["rows"] >= floor]
    out: dict[str, float] = {}
    if len(big) < 2:
        return out
    names = [s["name"] for s in big[-1]["stages"]]
    for name in [*names, "total"]:
        pts = []
        for r in big:
            secs = (r["wall_s"] if name == "total" else
                    next((s["seconds"] for s in r["stages"] if s["name"] == name), None))
            if secs is not None and secs > 0:
                pts.append((math.log(r["rows"]), math.log(secs)))
        if len(pts) >= 2:
            mx = sum(p[0] for p in pts) / len(pts)
            my = sum(p[1] for p in pts) / len(pts)
            sxx = sum((p[0] - mx) ** 2 for p in pts)
            out[name] = round(sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx, 2)
    return out


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    rows = [r["rows"] for r in runs]
    names = [s["name"] for s in runs[-1]["stages"]]
    top = sorted(names, key=lambda n: -next(s["seconds"] for s in runs[-1]["stages"]
                                               if s["name"] == n))[:8]
    for name in top:
        secs = [next((s["seconds"] for s in r["stages"] if s["name"] == name), float("nan"))
                for r in runs]
        ax.plot(rows, secs, marker="o", label=name)
    ax.plot(rows, [r["wall_s"] for r in runs], marker="s", color="black", lw=2, label="total")
    lo = runs[0]
    ax.plot(rows, [lo["wall_s"] * r / lo["rows"] for r in rows], ls=":", color="grey",
            label="linear from the smallest")
    ax.set(xscale="log", yscale="log", xlabel="rows in the table", ylabel="seconds",
           title="loanrisk learn: time per stage (the 8 longest at the largest size)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(runs: list[dict[str, Any]], slopes: dict[str, float],
             score: dict[str, Any] | None, models: str) -> str:
    sizes = [r["rows"] for r in runs]
    head = "| stage | " + " | ".join(f"{n:,} rows s (MiB)" for n in sizes) + " | exponent |"
    lines = [
        "## Scaling: learn and score on a full book (issue 17, `bench/bench_learn_scale.py`)",
        "",
        f"{date.today().isoformat()}, {cpu_name()}, 2 cores shared with other work of the "
        f"session. Tables of the grade schema made by `bench/make_loans.py` (rows drawn from the "
        f"bundled 10,000, mixed within class and perturbed); `loanrisk learn --models {models}` "
        "in a fresh process and home for each size, registered in a local MLflow. Each cell: "
        "the stage's seconds and (peak RSS during it, MiB). Exponent: slope of log seconds on "
        "log rows from 100,000 rows up (1 = linear).", "",
        head, "|---|" + "---:|" * (len(sizes) + 1)]
    for name in [s["name"] for s in runs[-1]["stages"]]:
        cells = []
        for r in runs:
            s = next((x for x in r["stages"] if x["name"] == name), None)
            cells.append("" if s is None else f"{s['seconds']:.1f} ({s['peak_rss_mib']:.0f})")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {slopes.get(name, '')} |")
    lines.append("| **whole run** (wall, process peak RSS) | " + " | ".join(
        f"**{r['wall_s']:,.0f} ({r['peak_rss_mib']:,})**" for r in runs)
        + f" | {slopes.get('total', '')} |")
    big = runs[-1]
    lines += ["", f"Largest: {big['rows']:,} rows, learned in {big['wall_s'] / 60:.1f} min, "
              f"peak RSS {big['peak_rss_mib'] / 1024:.2f} GiB; champion {big['champion']}; "
              f"{big['primary_metric']} per model: "
              + ", ".join(f"{m} {v:.4f}" for m, v in big["metrics"].items() if v is not None)
              + ".", "", "![learn time per stage against rows](learn_scale.png)", ""]
    if score:
        lines += [f"`loanrisk score` over the {score['rows']:,}-row table with that champion "
                  f"(one process, chunks of 5,000 rows, Parquet out): {score['wall_s']:,.0f} s, "
                  f"**{score['rows_per_s']:,} rows/s**, peak RSS **{score['peak_rss_mib']:,} "
                  f"MiB**; the same champion scoring 20,000 of its rows as one in-process "
                  f"batch in the same run: {score['in_process_rows_per_s']:,} rows/s.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="10000,100000,400000,1000000")
    ap.add_argument("--models", default="majority,linear,mlp,gbdt,ensemble")
    ap.add_argument("--work", type=Path, default=Path("/tmp/loanrisk-scale"))
    ap.add_argument("--no-score", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other sizes' runs (and the score run) of bench/scale.json: "
                         "rerun only the sizes given, e.g. after a disturbed measurement")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    sizes = sorted(int(x) for x in args.rows.split(","))
    raw = HERE / "scale.json"
    old = json.loads(raw.read_text()) if args.merge and raw.exists() else {}
    runs = [learn_once(n, args.work, args.models) for n in sizes]
    kept = [r for r in old.get("runs", []) if r["rows"] not in sizes]
    for r in kept:  # the run's peak is the largest stage peak (see learn_once)
        r["peak_rss_mib"] = round(max([r["peak_rss_mib"]] + [
            st["peak_rss_mib"] for st in r["stages"] if st["peak_rss_mib"] is not None]))
    runs = sorted(kept + runs, key=lambda r: r["rows"])
    slopes = growth(runs)
    score = (old.get("score") if args.no_score else
             score_once(max(runs, key=lambda r: r["rows"]), args.work))
    doc = {"date": date.today().isoformat(), "cpu": cpu_name(), "models": args.models,
           "runs": runs, "exponents": slopes, "score": score}
    print(json.dumps({"exponents": slopes, "score": score}, indent=1))
    if not args.no_write:
        raw.write_text(json.dumps(doc, indent=1))
        plot(runs, HERE / "learn_scale.png")
        write_section("scaling", markdown(runs, slopes, score, args.models))


if __name__ == "__main__":
    main()

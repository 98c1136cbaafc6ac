"""Benchmark: `loanrisk monitor` over 1,000,000 stored applications (SQLite).

    python bench/bench_monitor.py [--rows 1000000] [--keep DIR]

Trains a small real model version (lending-club-default, gbdt on 1,500 rows) in a scratch
loanrisk home, stores ``--rows`` applications drawn with replacement from the bundled table
(the newest 60% with annual income +30%, so there is drift to find) with their real
probabilities, then times:

* ``loanrisk monitor --since 7d`` as a user runs it (a new process: start-up, registry, SQL
  sample of 200,000 rows, JSON parse, PSI, report and plot);
* the same call in-process, three times (median);
* the peer: the same in-process call without sampling (every row in the window).

Figures go into bench/RESULTS.md between the ``monitor`` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from _results import cpu_name, write_section

ROOT = Path(__file__).resolve().parents[1]
NAME = "bench-monitor"


def build(home: Path, rows: int) -> tuple[str, float]:
    """A champion and ``rows`` stored applications; (database URL, seconds to load)."""
    from loanrisk.config import get_settings
    from loanrisk.datasets import load_bundled
    from loanrisk.learn.pipeline import LearnOptions, learn
    from loanrisk.registry import Registry
    from loanrisk.scoring.scorer import Scorer
    from loanrisk.store import Store

    res = learn(LearnOptions(dataset="lending-club-default", name=NAME, sample=1500,
                             models=("majority", "gbdt"), progress=False))
    assert res.version is not None
    v = res.version.version
    scorer = Scorer.load(Registry().download(NAME, v), version=v)
    df, _ = load_bundled("lending-club-default")
    shifted = df.copy()
    shifted["annual_inc"] = shifted["annual_inc"] * 1.3
    texts, probas = [], []
    for table in (df, shifted):  # one JSON text per distinct row, reused by reference
        recs = [{k: (None if (isinstance(x, float) and np.isnan(x)) else x)
                 for k, x in r.items()} for r in table[scorer.features].to_dict("records")]
        texts.append([json.dumps(r) for r in recs])
        p = scorer.predict_proba(recs)
        probas.append([json.dumps(dict(zip(scorer.classes, map(float, row), strict=True)))
                       for row in p])
    url = get_settings().resolved_database_url
    store = Store(url)
    _, key = store.create_key(channel="web")
    store.close()
    path = url.split("///", 1)[1]
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(df), rows)
    now = datetime.now(UTC).replace(tzinfo=None)
    t0 = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")  # loading only; the measured reads are unaffected
    sql = ("INSERT INTO applications (id, created_at, channel, api_key_id, request_hash, "
           "attributes, decision, probabilities, risk_score, risk_tier, reasons, model_name, "
           "model_version, model_sha256, served_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
    chunk = 50_000
    for lo in range(0, rows, chunk):
        batch = []
        for i in range(lo, min(rows, lo + chunk)):
            k, side = int(pick[i]), int(i >= rows * 0.4)
            created = now - timedelta(seconds=(rows - i) * 6 * 86400 / rows)
            batch.append((uuid.uuid4().hex, created.strftime("%Y-%m-%d %H:%M:%S.%f"), "web",
                          key.id.hex, "h" * 64, texts[side][k], "approve", probas[side][k],
                          0.0, "low", "[]", NAME, v, scorer.sha256, "champion"))
        con.executemany(sql, batch)
        con.commit()
    con.close()
    return url, time.perf_counter() - t0


def timed_monitor(max_rows: int | None) -> tuple[float, object]:
    from loanrisk.config import get_settings
    from loanrisk.watch.monitor import monitor

    t0 = time.perf_counter()
    report = monitor(model=NAME, since="7d", max_rows=max_rows, settings=get_settings())
    return time.perf_counter() - t0, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="Stored applications.")
    ap.add_argument("--keep", type=Path, default=None, help="Scratch home to keep (default: "
                    "a temporary directory, removed).")
    args = ap.parse_args()
    scratch = tempfile.TemporaryDirectory() if args.keep is None else None
    home = args.keep or Path(scratch.name)  # type: ignore[union-attr]
    os.environ["LOANRISK_HOME"] = str(home)
    url, load_s = build(home, args.rows)
    size_mb = Path(url.split("///", 1)[1]).stat().st_size / 1e6
    t0 = time.perf_counter()
    cli = subprocess.run([str(Path(sys.executable).parent / "loanrisk"), "monitor", "--model", NAME,
                          "--since", "7d", "--json"], capture_output=True, text=True,
                         env={**os.environ, "LOANRISK_HOME": str(home)}, check=False)
    cli_s = time.perf_counter() - t0
    if cli.returncode != 0:
        raise SystemExit(cli.stderr)
    cli_report = json.loads(cli.stdout)
    sampled = [timed_monitor(None) for _ in range(3)]
    full_s, full = timed_monitor(10**12)
    med = statistics.median(s for s, _ in sampled)
    rep = sampled[0][1]
    top = sorted(rep.attributes.items(), key=lambda kv: -kv[1].psi)[:3]  # type: ignore[attr-defined]
    ftop = full.attributes["annual_inc"].psi  # type: ignore[attr-defined]
    cpu = cpu_name()
    text = f"""## drift monitor over 1,000,000 stored applications (`bench/bench_monitor.py`)

`python bench/bench_monitor.py` stores {args.rows:,} applications (SQLite, {size_mb:,.0f} MB;
rows drawn with replacement from the bundled default data, the newest 60% with annual income
+30%) decided by a real gbdt version, then runs `loanrisk monitor --since 7d`: a SQL Bernoulli
sample capped at 200,000 rows (`random()` filter + LIMIT, no sort), only the manifest's
attributes and the worst-class probability extracted by the database (`json_extract`), PSI
with `np.searchsorted` + `np.bincount` per attribute.

- Date: {datetime.now(UTC).date()}
- Machine: `nproc` {os.cpu_count()}, CPU "{cpu}", shared with other jobs.
- Loading the rows (executemany, not measured): {load_s:.1f} s.

| run | rows compared | seconds |
|---|---:|---:|
| `loanrisk monitor --since 7d` (new process, end to end) | {cli_report['rows']:,} | {cli_s:.2f} |
| `monitor()` in-process, sampled (median of 3) | {rep.rows:,} | {med:.2f} |
| peer: `monitor()` in-process, every row (no sampling) | {full.rows:,} | {full_s:.2f} |

Found: level **{rep.level}**; top PSI {", ".join(f"{k} {v.psi:.3f}" for k, v in top)}
(unsampled annual_inc: {ftop:.3f}). Target: under 10 s on 2 cores for the command.
{"Met." if cli_s < 10 else "Not met."}
"""
    write_section("monitor", text)
    print(text)
    if scratch is not None:
        scratch.cleanup()


if __name__ == "__main__":
    main()

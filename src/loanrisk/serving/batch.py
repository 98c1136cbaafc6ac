"""Batch scoring: a table of applications -> decisions, tiers, probabilities and reasons.

`loanrisk score FILE -o OUT` scores a CSV, CSV.gz or Parquet table with a model version (the
champion by default) exactly as the service would: the same schema validation, the same ONNX
graph, the same thresholds and reasons. Rows that do not fit the schema are not dropped silently:
they go to ``<OUT stem>.rejected.csv`` with the row number, the field and why.

Backends (what runs the chunks of rows):

* ``local`` (default): this process, or ``--workers N`` processes on this machine;
* ``ray``: a Ray cluster (``ray.init(address=...)``; ``RAY_ADDRESS`` or ``--ray-address``,
  a local one-machine cluster when neither is set). Each Ray task loads the version once from
  the files it is sent (graph, schema, manifest: no registry access needed on the workers).
  Needs ``pip install 'loanrisk[scale]'``.

The output (Parquet, or CSV by extension) holds the row number, the ``--id-column`` if given,
decision, risk_score, risk_tier, one ``p_<class>`` per class, reasons (joined with ``"; "``) and
model name, version and SHA-256.
"""

from __future__ import annotations

import decimal
import math
import numbers
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from loanrisk.config import Settings, get_settings
from loanrisk.errors import LoanriskError
from loanrisk.serving.decide import decide

BACKENDS = ("local", "ray")
_CACHE: dict[str, Any] = {}  # per worker process: model files digest -> Served


@dataclass
class BatchReport:
    """What `loanrisk score` did."""

    model: str
    version: int | None
    rows: int
    scored: int
    rejected: int
    decisions: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    backend: str = "local"
    output: str = ""
    rejected_file: str | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def resolve_model(*, model: str | None, version: int | None, model_dir: Path | None,
                  settings: Settings) -> tuple[Path, int | None]:
    """The local version directory to score with (a directory, or the registry's copy)."""
    if model_dir is not None:
        if not (Path(model_dir) / "model.onnx").exists():
            raise LoanriskError(f"{model_dir}: not a model version directory (no model.onnx)")
        return Path(model_dir), version
    if model is None:
        raise LoanriskError("which model? pass --model NAME (see `loanrisk models list`) or "
                            "--model-dir PATH")
    from loanrisk.registry import Registry

    return Registry(settings).version_dir(model, version)


def _files(model_dir: Path) -> dict[str, bytes]:
    return {n: (model_dir / n).read_bytes() for n in ("model.onnx", "schema.json",
                                                      "manifest.json")}


def _served(files: dict[str, bytes], version: int | None) -> Any:
    """A Served built from the version's files, once per process (verified as the service does)."""
    import hashlib
    import tempfile

    from loanrisk.serving import Served

    key = hashlib.sha256(files["model.onnx"]).hexdigest() + f":{version}"
    if key not in _CACHE:
        import shutil

        tmp = Path(tempfile.mkdtemp(prefix="loanrisk-batch-"))
        try:
            for name, blob in files.items():
                (tmp / name).write_bytes(blob)
            _CACHE[key] = Served.load(tmp, settings=get_settings(), version=version)
        finally:  # the session holds the graph in memory: the files are no longer needed
            shutil.rmtree(tmp, ignore_errors=True)
    return _CACHE[key]


def _cell(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v.item() if hasattr(v, "item") else v


def _number(v: Any) -> Any:
    """A numeric attribute's cell: a file has no types, so "72000" is read as the number 72000
    (the HTTP API, whose clients send JSON numbers, refuses strings); anything else unchanged,
    for the validator to name."""
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return v
    if isinstance(v, (numbers.Real, decimal.Decimal)) and not isinstance(v, bool):
        return float(v)  # Parquet decimals too (the validator takes JSON numbers only)
    return v


def score_chunk(files: dict[str, bytes], version: int | None, start: int,
                columns: dict[str, list[Any]]) -> tuple[list[dict[str, Any]],
                                                        list[dict[str, Any]]]:
    """Validate and score one chunk (rows ``start``..): (output rows, rejected rows)."""
    served = _served(files, version)
    s = served.scorer
    n = len(next(iter(columns.values()))) if columns else 0
    numeric = [f for f in s.features if s.inputs[f] != "string"]
    valid, where, rejected = [], [], []
    for i in range(n):
        rec = {f: _cell(columns[f][i]) for f in s.features if f in columns}
        for f in numeric:
            if f in rec:
                rec[f] = _number(rec[f])
        obj, errors = served.validator.validate(rec)
        if errors:
            rejected += [{"row": start + i, "field": e.get("field"),
                          "error": "not a number" if e.get("type") == "float_type"
                          else e.get("msg")} for e in errors]
            continue
        assert obj is not None
        valid.append(obj.model_dump())
        where.append(start + i)
    out = []
    for row, d in zip(where, (r.served for r in decide(served, valid)), strict=True):
        rec = {"row": row, "decision": d.decision, "risk_score": d.risk_score,
               "risk_tier": d.risk_tier}
        rec.update({f"p_{c}": p for c, p in d.probabilities.items()})
        rec.update({"reasons": "; ".join(d.reasons), "model_name": s.name,
                    "model_version": s.version, "model_sha256": s.sha256})
        out.append(rec)
    return out, rejected


def _chunks(df: pd.DataFrame, features: list[str], size: int
            ) -> Iterator[tuple[int, dict[str, list[Any]]]]:
    cols = [c for c in features if c in df.columns]
    for start in range(0, len(df), size):
        part = df.iloc[start:start + size]
        yield start, {c: part[c].tolist() for c in cols}


def _run_local(files: dict[str, bytes], version: int | None, chunks: list[Any], workers: int,
               tick: Callable[[int], None]) -> Iterator[tuple[list[Any], list[Any]]]:
    if workers <= 1:
        for start, cols in chunks:
            res = score_chunk(files, version, start, cols)
            tick(len(res[0]) + len({r["row"] for r in res[1]}))
            yield res
        return
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(score_chunk, files, version, start, cols)
                   for start, cols in chunks]
        for fut in futures:
            res = fut.result()
            tick(len(res[0]) + len({r["row"] for r in res[1]}))
            yield res


def _run_ray(files: dict[str, bytes], version: int | None, chunks: list[Any],
             address: str | None, tick: Callable[[int], None]
             ) -> Iterator[tuple[list[Any], list[Any]]]:
    from loanrisk.cluster import start_ray

    started = start_ray(address)
    import ray

    try:
        task = ray.remote(score_chunk)
        ref = ray.put(files)
        pending = [task.remote(ref, version, start, cols) for start, cols in chunks]
        for res in ray.get(pending):  # in order: the output keeps the input's row order
            tick(len(res[0]) + len({r["row"] for r in res[1]}))
            yield res
    finally:
        if started:
            ray.shutdown()


def score_table(*, data: Path, out: Path, model: str | None = None, version: int | None = None,
                model_dir: Path | None = None, id_column: str | None = None,
                chunk_rows: int = 5000, workers: int = 1, backend: str = "local",
                ray_address: str | None = None, progress: bool = True,
                settings: Settings | None = None) -> BatchReport:
    """Score every row of ``data`` and write ``out``; rejected rows to ``*.rejected.csv``."""
    import json

    from loanrisk.datasets import read_for_scoring
    from loanrisk.schema import Schema

    settings = settings or get_settings()
    if backend not in BACKENDS:
        raise LoanriskError(f"--backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if chunk_rows < 1 or workers < 1:
        raise LoanriskError("--chunk-rows and --workers must be at least 1")
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise LoanriskError(f"{out}: write .parquet or .csv")
    t0 = time.perf_counter()
    model_path, version = resolve_model(model=model, version=version, model_dir=model_dir,
                                        settings=settings)
    manifest = json.loads((model_path / "manifest.json").read_text())
    schema = Schema.load(model_path / "schema.json")
    df = read_for_scoring(data, schema).reset_index(drop=True)
    if id_column is not None and id_column not in df.columns:
        raise LoanriskError(f"{data}: no column {id_column!r} (--id-column); columns: "
                            f"{', '.join(map(str, df.columns[:20]))}")
    missing = [f for f in manifest["features"] if f not in df.columns]
    required = set(manifest["features"]) - set(manifest.get("nullable", manifest["features"]))
    if [f for f in missing if f in required]:
        raise LoanriskError(f"{data}: the model needs column(s) "
                            f"{', '.join(f for f in missing if f in required)}")
    files = _files(model_path)
    if model_dir is None and model is not None and version is not None:
        from loanrisk.registry import Registry

        record = Registry(settings).info(model, version).record  # the bytes read are checked
        for name, blob in files.items():
            record.check_bytes(name, blob, label=f"{model} v{version}")
    chunks = list(_chunks(df, manifest["features"], chunk_rows))
    bar = _bar(len(df), progress)
    try:
        results = list(_run_ray(files, version, chunks, ray_address, bar.update)
                       if backend == "ray" else
                       _run_local(files, version, chunks, workers, bar.update))
    finally:
        bar.close()
    rows = [r for res in results for r in res[0]]
    rejected = [r for res in results for r in res[1]]
    frame = pd.DataFrame(rows)
    if id_column is not None and not frame.empty:
        frame.insert(1, id_column, df[id_column].to_numpy()[frame["row"].to_numpy()])
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    rej_path = None
    if rejected:
        rej_path = out.with_name(out.stem + ".rejected.csv")
        pd.DataFrame(rejected).to_csv(rej_path, index=False)
    return BatchReport(
        model=str(manifest.get("name") or schema.name), version=version, rows=len(df),
        scored=len(frame), rejected=len({r["row"] for r in rejected}),
        decisions=frame["decision"].value_counts().to_dict() if len(frame) else {},
        tiers=frame["risk_tier"].value_counts().to_dict() if len(frame) else {},
        seconds=round(time.perf_counter() - t0, 3), backend=backend, output=str(out),
        rejected_file=str(rej_path) if rej_path else None)


class _NoBar:
    def update(self, _n: int) -> None:
        return None

    def close(self) -> None:
        return None


def _bar(total: int, progress: bool) -> Any:
    if not progress:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # serving-only install: no progress bar
        return _NoBar()
    return tqdm(total=total, unit="row", desc="scoring", disable=None, leave=False)

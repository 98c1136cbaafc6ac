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
import itertools
import math
import numbers
import time
from collections import Counter, deque
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
                columns: dict[str, list[Any]], id_column: str | None = None,
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Validate and score one chunk (rows ``start``..): (output rows, rejected rows). The
    ``id_column``'s values, when given in ``columns``, ride along into the output rows."""
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
        rec = {"row": row}
        if id_column is not None:
            rec[id_column] = _cell(columns[id_column][row - start])
        rec.update({"decision": d.decision, "risk_score": d.risk_score,
                    "risk_tier": d.risk_tier})
        rec.update({f"p_{c}": p for c, p in d.probabilities.items()})
        rec.update({"reasons": "; ".join(d.reasons), "model_name": s.name,
                    "model_version": s.version, "model_sha256": s.sha256})
        out.append(rec)
    return out, rejected


Chunk = tuple[int, dict[str, list[Any]]]
Result = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def _chunks(frames: Iterator[pd.DataFrame], columns: list[str]) -> Iterator[Chunk]:
    """(first row number, {column: values}) for each frame read, numbered across the file."""
    start = 0
    for part in frames:
        yield start, {c: part[c].tolist() for c in columns if c in part.columns}
        start += len(part)


def _in_order(submit: Callable[[Chunk], Any], result: Callable[[Any], Result],
              chunks: Iterator[Chunk], in_flight: int) -> Iterator[Result]:
    """Results in the chunks' order, with at most ``in_flight`` chunks read and not yet
    written (memory stays bounded whatever the table's size)."""
    pending: deque[Any] = deque()
    for chunk in chunks:
        pending.append(submit(chunk))
        if len(pending) >= in_flight:
            yield result(pending.popleft())
    while pending:
        yield result(pending.popleft())


def _run_local(files: dict[str, bytes], version: int | None, chunks: Iterator[Chunk],
               workers: int, id_column: str | None) -> Iterator[Result]:
    if workers <= 1:
        for start, cols in chunks:
            yield score_chunk(files, version, start, cols, id_column)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from _in_order(
            lambda c: pool.submit(score_chunk, files, version, c[0], c[1], id_column),
            lambda fut: fut.result(), chunks, in_flight=2 * workers)


def _run_ray(files: dict[str, bytes], version: int | None, chunks: Iterator[Chunk],
             address: str | None, id_column: str | None) -> Iterator[Result]:
    from loanrisk.cluster import start_ray

    started = start_ray(address)
    import ray

    try:
        task = ray.remote(score_chunk)
        ref = ray.put(files)
        slots = max(2, 2 * int(ray.available_resources().get("CPU", 1)))
        yield from _in_order(lambda c: task.remote(ref, version, c[0], c[1], id_column),
                             ray.get, chunks, in_flight=slots)
    finally:
        if started:
            ray.shutdown()


class _Sink:
    """The output file (Parquet or CSV) and the rejected rows' CSV, written chunk by chunk."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.rejected_path = out.with_name(out.stem + ".rejected.csv")
        self.scored = 0
        self.rejected_rows = 0
        self.decisions: Counter[str] = Counter()
        self.tiers: Counter[str] = Counter()
        self._parquet: Any = None
        self._csv_started = False
        self._rejected_started = False
        out.parent.mkdir(parents=True, exist_ok=True)
        for stale in (out, self.rejected_path):  # a file left by an earlier run is replaced
            stale.unlink(missing_ok=True)

    def write(self, rows: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> None:
        if rows:
            frame = pd.DataFrame(rows)
            self.scored += len(frame)
            self.decisions.update(frame["decision"].astype(str))
            self.tiers.update(frame["risk_tier"].astype(str))
            self._write_frame(frame)
        if rejected:
            self.rejected_rows += len({r["row"] for r in rejected})
            pd.DataFrame(rejected).to_csv(self.rejected_path, mode="a", index=False,
                                          header=not self._rejected_started)
            self._rejected_started = True

    def _write_frame(self, frame: pd.DataFrame) -> None:
        if self.out.suffix.lower() == ".csv":
            frame.to_csv(self.out, mode="a", index=False, header=not self._csv_started)
            self._csv_started = True
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.out, table.schema)
        else:  # a column all-null in one chunk (e.g. an id) takes the file's type
            table = table.cast(self._parquet.schema)
        self._parquet.write_table(table)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        elif not self._csv_started:  # nothing scored: an empty output still says so
            empty = pd.DataFrame()
            (empty.to_csv(self.out, index=False) if self.out.suffix.lower() == ".csv"
             else empty.to_parquet(self.out, index=False))


def score_table(*, data: Path, out: Path, model: str | None = None, version: int | None = None,
                model_dir: Path | None = None, id_column: str | None = None,
                chunk_rows: int = 5000, workers: int = 1, backend: str = "local",
                ray_address: str | None = None, progress: bool = True,
                settings: Settings | None = None) -> BatchReport:
    """Score every row of ``data`` and write ``out``; rejected rows to ``*.rejected.csv``.

    The table is read, scored and written chunk by chunk (``chunk_rows``), with a bounded
    number of chunks in flight, so memory does not grow with the table."""
    import json

    from loanrisk.datasets import iter_for_scoring
    from loanrisk.schema import Schema

    settings = settings or get_settings()
    if backend not in BACKENDS:
        raise LoanriskError(f"--backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if chunk_rows < 1 or workers < 1:
        raise LoanriskError("--chunk-rows and --workers must be at least 1")
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise LoanriskError(f"{out}: write .parquet or .csv")
    if out.resolve() == Path(data).resolve():
        raise LoanriskError(f"{out}: the output would overwrite the input; choose another path")
    t0 = time.perf_counter()
    model_path, version = resolve_model(model=model, version=version, model_dir=model_dir,
                                        settings=settings)
    manifest = json.loads((model_path / "manifest.json").read_text())
    schema = Schema.load(model_path / "schema.json")
    frames = iter_for_scoring(data, schema, chunk_rows=chunk_rows,
                              keep_as_text=(id_column,) if id_column else ())
    first = next(frames)
    _check_columns(first, data=data, id_column=id_column, manifest=manifest)
    files = _files(model_path)
    if model_dir is None and model is not None and version is not None:
        from loanrisk.registry import Registry

        record = Registry(settings).info(model, version).record  # the bytes read are checked
        for name, blob in files.items():
            record.check_bytes(name, blob, label=f"{model} v{version}")
    rows = 0
    bar = _bar(_row_count(Path(data)), progress)

    def read() -> Iterator[pd.DataFrame]:
        nonlocal rows
        for part in itertools.chain([first], frames):
            rows += len(part)
            bar.update(len(part))
            yield part

    columns = [*manifest["features"], *([id_column] if id_column else [])]
    chunks = _chunks(read(), list(dict.fromkeys(columns)))
    sink = _Sink(out)
    try:
        results = (_run_ray(files, version, chunks, ray_address, id_column)
                   if backend == "ray" else
                   _run_local(files, version, chunks, workers, id_column))
        for scored, rejected in results:
            sink.write(scored, rejected)
    finally:
        sink.close()
        bar.close()
    return BatchReport(
        model=str(manifest.get("name") or schema.name), version=version, rows=rows,
        scored=sink.scored, rejected=sink.rejected_rows,
        decisions=dict(sink.decisions), tiers=dict(sink.tiers),
        seconds=round(time.perf_counter() - t0, 3), backend=backend, output=str(out),
        rejected_file=str(sink.rejected_path) if sink.rejected_rows else None)


def _check_columns(first: pd.DataFrame, *, data: Path, id_column: str | None,
                   manifest: dict[str, Any]) -> None:
    """Refuse, before scoring anything, a table without the id column or a required feature."""
    if id_column is not None and id_column not in first.columns:
        raise LoanriskError(f"{data}: no column {id_column!r} (--id-column); columns: "
                            f"{', '.join(map(str, first.columns[:20]))}")
    missing = [f for f in manifest["features"] if f not in first.columns]
    required = set(manifest["features"]) - set(manifest.get("nullable", manifest["features"]))
    if [f for f in missing if f in required]:
        raise LoanriskError(f"{data}: the model needs column(s) "
                            f"{', '.join(f for f in missing if f in required)}")


def _row_count(path: Path) -> int | None:
    """The table's rows when its file says so without reading it (Parquet), for the bar."""
    if path.suffix.lower() not in (".parquet", ".pq"):
        return None
    try:
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:  # noqa: BLE001 - the bar only; reading reports a broken file properly
        return None


class _NoBar:
    def update(self, _n: int) -> None:
        return None

    def close(self) -> None:
        return None


def _bar(total: int | None, progress: bool) -> Any:
    if not progress:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # serving-only install: no progress bar
        return _NoBar()
    return tqdm(total=total, unit="row", desc="scoring", disable=None, leave=False)

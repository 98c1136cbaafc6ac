"""Reading loan tables: the bundled Lending Club samples, or a user's CSV / CSV.gz / Parquet file.

Tables are read so that they fit their schema: columns of categorical, text and identifier
attributes (and the target) as strings with missing cells kept as NaN; numeric and binary columns
as float64 (cells that are not numbers raise a DataError naming the attribute and the rows).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, Any

import pandas as pd

from loanrisk.errors import DataError, LoanriskError
from loanrisk.schema import Schema, label_of
from loanrisk.schema.checks import numeric_values

PACKAGE_DATA = "loanrisk"  # files live in src/loanrisk/data/
STRING_TYPES = frozenset({"categorical", "text", "identifier"})


@dataclass(frozen=True)
class BundledDataset:
    """A dataset shipped inside the package."""

    name: str
    data_file: str  # under loanrisk/data/
    schema_file: str
    target: str
    rows: int
    description: str
    source: str


BUNDLED: dict[str, BundledDataset] = {
    "lending-club-grades": BundledDataset(
        name="lending-club-grades", data_file="loans_full_schema.csv.gz",
        schema_file="loans_full_schema.schema.json", target="grade", rows=10_000,
        description="Lending Club loans, Jan-Mar 2018: grade A-G from applicant and bureau data",
        source="R package openintro, dataset loans_full_schema (Lending Club public loan data)"),
    "lending-club-default": BundledDataset(
        name="lending-club-default", data_file="lending_club.csv.gz",
        schema_file="lending_club.schema.json", target="Class", rows=9_857,
        description="Lending Club loans, Q1 2016: good / bad (about 5% bad)",
        source="R package modeldata (MIT), dataset lending_club (Lending Club public loan data)"),
}


def list_bundled() -> list[BundledDataset]:
    """The bundled datasets, in a stable order."""
    return [BUNDLED[k] for k in sorted(BUNDLED)]


def _data_file(name: str) -> Any:
    return resources.files(PACKAGE_DATA).joinpath("data", name)


def load_bundled(name: str) -> tuple[pd.DataFrame, Schema]:
    """The table and schema of a bundled dataset; LoanriskError listing the valid names."""
    if name not in BUNDLED:
        raise LoanriskError(f"no bundled dataset {name!r}; choose one of "
                            f"{', '.join(sorted(BUNDLED))}")
    ds = BUNDLED[name]
    schema_res = _data_file(ds.schema_file)
    schema = Schema.from_dict(_json(schema_res.read_text(encoding="utf-8"), ds.schema_file),
                              source=f"loanrisk/data/{ds.schema_file}")
    with _data_file(ds.data_file).open("rb") as fh:
        df = _read(fh, kind="csv.gz", where=f"loanrisk/data/{ds.data_file}", schema=schema)
    return fit_to_schema(df, schema, where=f"loanrisk/data/{ds.data_file}"), schema


def _json(text: str, where: str) -> Any:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise LoanriskError(f"{where}: broken bundled schema ({e}); reinstall loanrisk") from None


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv.gz", ".csv.gzip")):
        return "csv.gz"
    if name.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    raise DataError(f"{path}: unknown file type; loanrisk reads .csv, .csv.gz and .parquet")


def _string_columns(schema: Schema | None) -> dict[str, Any]:
    if schema is None:
        return {}
    cols = {a.name: str for a in schema.attributes if a.type in STRING_TYPES}
    cols[schema.target] = str
    return cols


def _read(src: str | Path | IO[bytes], *, kind: str, where: str,
          schema: Schema | None) -> pd.DataFrame:
    """Read a table; DataError naming ``where`` when it cannot be read."""
    try:
        if kind == "parquet":
            return pd.read_parquet(src)
        sep = "\t" if where.lower().endswith(".tsv") else ","
        return pd.read_csv(src, dtype=_string_columns(schema), sep=sep,  # type: ignore[arg-type]
                           compression="gzip" if kind == "csv.gz" else "infer",
                           low_memory=False)
    except FileNotFoundError:
        raise DataError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{where}: is a directory, not a table file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{where}: the file is empty; it needs a header line and rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{where}: cannot read it as {kind} ({first}); check the file is a "
                        "UTF-8 CSV with a header line, gzip-compressed for .csv.gz, or Parquet"
                        ) from None
    except Exception as e:  # pyarrow raises its own error types for broken Parquet files
        if type(e).__module__.startswith("pyarrow"):
            raise DataError(f"{where}: cannot read it as Parquet ({e})") from None
        raise


def read_upload(fh: IO[bytes], name: str) -> pd.DataFrame:
    """A table from an open file (an upload) whose type its ``name`` tells; DataError naming it
    when it cannot be read."""
    return _read(fh, kind=_kind(Path(name)), where=name, schema=None)


def read_any(path: str | Path) -> pd.DataFrame:
    """A table without a schema (for `loanrisk schema infer`): pandas' own type guesses."""
    p = Path(path)
    return _read(p, kind=_kind(p), where=str(p), schema=None)


def fit_to_schema(df: pd.DataFrame, schema: Schema, *, where: str) -> pd.DataFrame:
    """String attributes as str (NaN kept), numeric/binary attributes as float64. DataError
    naming ``where``, the attribute and rows for cells that are not numbers or columns missing."""
    if df.columns.duplicated().any():
        dup = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise DataError(f"{where}: column(s) {', '.join(map(repr, dup))} appear more than once")
    out = df.copy()
    try:
        for a in schema.attributes:
            if a.name not in out.columns:
                continue
            if a.type in STRING_TYPES or (a.type == "binary" and a.categories is not None):
                out[a.name] = _as_str(out[a.name])
            elif a.type in ("numeric", "binary"):
                out[a.name] = numeric_values(out[a.name], name=a.name)
        if schema.target in out.columns:
            out[schema.target] = _as_str(out[schema.target])
        schema.validate_frame(out, require_target=False)
    except DataError as e:
        raise DataError(f"{where}: {e}") from None
    return out


def _as_str(s: pd.Series) -> pd.Series:
    """Non-missing cells as label strings (``3.0`` -> ``"3"``); missing stays NaN."""
    if pd.api.types.is_string_dtype(s) and not pd.api.types.is_object_dtype(s):
        return s  # pandas' own string dtype (missing is already NaN)
    return s.map(lambda v: v if pd.isna(v) else label_of(v))


def load_table(path: str | Path, schema: Schema) -> pd.DataFrame:
    """Read a CSV, CSV.gz or Parquet table and fit it to ``schema`` (see :func:`fit_to_schema`).
    DataError naming the path when the file is missing, unreadable, or does not fit."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    df = _read(p, kind=_kind(p), where=str(p), schema=schema)
    return fit_to_schema(df, schema, where=str(p))


def read_for_scoring(path: str | Path, schema: Schema) -> pd.DataFrame:
    """Read a table of applications to score (`loanrisk score`): string attributes as labels,
    other cells as read. Each row is then validated on its own, so a bad cell rejects its row,
    not the file. DataError naming the path when the file is missing or unreadable."""
    parts = list(iter_for_scoring(path, schema, chunk_rows=1_000_000))
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def iter_for_scoring(path: str | Path, schema: Schema, *, chunk_rows: int,
                     keep_as_text: tuple[str, ...] = ()) -> Iterator[pd.DataFrame]:
    """:func:`read_for_scoring` in chunks of at most ``chunk_rows`` rows, read as they are used
    (Parquet by row batches, CSV by ``chunksize``), so a table of any size is scored in bounded
    memory. At least one frame is yielded (an empty one for a file with a header only).
    ``keep_as_text``: further columns read as text from a CSV (an id keeps its leading zeros)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    kind = _kind(p)
    where = str(p)
    if kind == "parquet":
        frames = _parquet_chunks(p, chunk_rows, where)
    else:
        dtypes = {**_string_columns(schema), **{c: str for c in keep_as_text}}
        frames = _csv_chunks(p, kind, chunk_rows, where, dtypes)
    first = True
    for df in frames:
        if first and df.columns.duplicated().any():
            dup = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
            raise DataError(f"{p}: column(s) {', '.join(map(repr, dup))} appear more than once")
        first = False
        for a in schema.attributes:
            if a.name in df.columns and (a.type in STRING_TYPES or
                                         (a.type == "binary" and a.categories is not None)):
                df[a.name] = _as_str(df[a.name])
        yield df


def _parquet_chunks(p: Path, chunk_rows: int, where: str) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(p)
        empty = True
        for batch in pf.iter_batches(batch_size=chunk_rows):
            empty = False
            yield batch.to_pandas()
        if empty:
            yield pf.schema_arrow.empty_table().to_pandas()
    except Exception as e:  # pyarrow raises its own error types for broken Parquet files
        if type(e).__module__.startswith("pyarrow") or isinstance(e, OSError):
            raise DataError(f"{where}: cannot read it as Parquet ({e})") from None
        raise


def _csv_chunks(p: Path, kind: str, chunk_rows: int, where: str,
                dtypes: dict[str, Any]) -> Iterator[pd.DataFrame]:
    sep = "\t" if where.lower().endswith(".tsv") else ","
    try:
        reader = pd.read_csv(p, dtype=dtypes, sep=sep,  # type: ignore[arg-type]
                             compression="gzip" if kind == "csv.gz" else "infer",
                             chunksize=chunk_rows, low_memory=False)
        with reader:
            yield from reader
    except pd.errors.EmptyDataError:
        raise DataError(f"{where}: the file is empty; it needs a header line and rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{where}: cannot read it as {kind} ({first}); check the file is a "
                        "UTF-8 CSV with a header line, gzip-compressed for .csv.gz") from None

"""Does a table fit its schema? Column presence, numbers that parse, bounds, known categories.

Row numbers in messages count data rows from 1, as a user sees them in a spreadsheet; in a CSV with
a header line, data row ``i`` is line ``i + 1`` of the file, and messages say both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from loanrisk.errors import DataError
from loanrisk.schema.attribute import is_missing, label_of

if TYPE_CHECKING:
    from loanrisk.schema.attribute import Attribute
    from loanrisk.schema.types import Schema


def describe_rows(positions: np.ndarray, values: np.ndarray, *, limit: int = 5) -> str:
    """'row 17 (line 18 of the file) holds 'x', ...' for the first bad positions (0-based in,
    1-based data rows out; the header is line 1)."""
    parts = []
    for pos in positions[:limit]:
        v = values[pos]
        shown = ("a missing value" if is_missing(v)
                 else repr(v if isinstance(v, str) else label_of(v)))
        parts.append(f"row {pos + 1} (line {pos + 2} of the file) holds {shown}")
    more = f" and {positions.size - limit} more rows" if positions.size > limit else ""
    return ", ".join(parts) + more


def numeric_values(series: pd.Series, *, name: str) -> pd.Series:
    """``series`` as float64; DataError naming the attribute and the first rows that are not
    numbers (blank cells and NA markers count as missing, not as errors)."""
    if pd.api.types.is_bool_dtype(series):
        return series.astype("float64")
    if pd.api.types.is_numeric_dtype(series):
        return series.astype("float64")
    text = series.astype(object).where(series.notna(), None)
    stripped = text.map(lambda v: v.strip() if isinstance(v, str) else v)
    stripped = stripped.where(stripped != "", None)
    coerced = pd.to_numeric(stripped, errors="coerce").astype("float64")
    bad = np.flatnonzero(stripped.notna().to_numpy() & coerced.isna().to_numpy())
    if bad.size:
        raise DataError(f"attribute {name!r} must be numeric but "
                        f"{describe_rows(bad, series.to_numpy(dtype=object))}; fix those cells, "
                        "leave them empty for missing, or declare the attribute categorical")
    return coerced


def labels(series: pd.Series) -> np.ndarray:
    """Non-missing cells as label strings (``3.0`` -> ``"3"``), missing as None (object array)."""
    values = series.to_numpy(dtype=object)
    mask = series.isna().to_numpy()
    return np.array([None if m else label_of(v) for v, m in zip(values, mask, strict=True)],
                    dtype=object)


def _attribute_problem(attr: Attribute, series: pd.Series) -> str | None:
    """The first thing wrong with one column, or None."""
    raw = series.to_numpy(dtype=object)
    if attr.type == "numeric" or (attr.type == "binary" and attr.categories is None):
        try:
            x = numeric_values(series, name=attr.name)
        except DataError as e:
            return str(e)
        arr = x.to_numpy()
        if attr.minimum is not None:
            low = np.flatnonzero(arr < attr.minimum)
            if low.size:
                return (f"attribute {attr.name!r} must be at least {attr.minimum} but "
                        f"{describe_rows(low, raw)}")
        if attr.maximum is not None:
            high = np.flatnonzero(arr > attr.maximum)
            if high.size:
                return (f"attribute {attr.name!r} must be at most {attr.maximum} but "
                        f"{describe_rows(high, raw)}")
        if attr.type == "binary":
            distinct = np.unique(arr[~np.isnan(arr)])
            if distinct.size > 2:
                return (f"binary attribute {attr.name!r} holds {distinct.size} distinct values "
                        f"(e.g. {', '.join(label_of(v) for v in distinct[:4])}); declare it "
                        "numeric or categorical")
        return None
    if attr.type in ("categorical", "binary") and attr.categories is not None:
        lab = labels(series)
        allowed = set(attr.categories)
        bad = np.flatnonzero([v is not None and v not in allowed for v in lab])
        if bad.size:
            return (f"attribute {attr.name!r}: {describe_rows(bad, raw)}, not one of its "
                    f"categories {list(attr.categories)}; fix the cells or add the values to "
                    "'categories' in the schema")
    return None


def validate_frame(schema: Schema, df: pd.DataFrame, *, allow_leaky: bool = False,
                   require_target: bool = True) -> None:
    """See :meth:`loanrisk.schema.Schema.validate_frame`. Reports every bad attribute at once."""
    needed = [a.name for a in schema.feature_attributes(allow_leaky=allow_leaky)]
    if require_target:
        needed.append(schema.target)
    have = ", ".join(map(str, list(df.columns)[:30]))
    if require_target and schema.target not in df.columns:
        raise DataError(f"the table has no target column {schema.target!r} (schema "
                        f"{schema.name!r}, \"target\"); its columns are: {have}. Set \"target\" "
                        "in the schema to the column holding the outcome, or rename that column")
    absent = [n for n in needed if n not in df.columns]
    if absent:
        raise DataError(f"the table lacks column(s) {', '.join(map(repr, absent))} that schema "
                        f"{schema.name!r} needs; its columns are: {have}. Rename the columns, or "
                        "mark the attributes post_decision/excluded in the schema")
    problems = [p for a in schema.attributes if a.name in df.columns
                and (p := _attribute_problem(a, df[a.name])) is not None]
    if schema.target in df.columns and schema.classes:
        lab = labels(df[schema.target])
        known = set(schema.classes)
        bad = np.flatnonzero([v is not None and v not in known for v in lab])
        if bad.size:
            problems.append(
                f"target {schema.target!r}: "
                f"{describe_rows(bad, df[schema.target].to_numpy(dtype=object))}, not one of "
                f"the classes {schema.classes}; fix or drop those rows, or add the class")
    if problems:
        head = f"the table does not fit schema {schema.name!r}:"
        raise DataError(head + "".join(f"\n  - {p}" for p in problems))

"""What a model version carries besides its graph.

Reference values, ranges, drift bins, golden rows and the hashes of the rows it learned from.

Everything here is JSON (no pickle, the row hashes aside: a parquet file), computed from the
training split only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

N_DRIFT_BINS = 10


def _json_value(v: Any) -> Any:
    """A cell as a JSON-safe value (NaN and missing become None)."""
    if v is None:
        return None
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if pd.isna(v):
        return None
    return v


def records(df: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts over the given attribute names."""
    return [{n: _json_value(r[n]) for n in names} for _, r in df[names].iterrows()]


def numeric_drift_bins(values: pd.Series) -> dict[str, Any]:
    """Decile edges from training values and the training share in each bin (+ missing)."""
    x = pd.to_numeric(values, errors="coerce")
    finite = x.dropna().to_numpy(dtype=float)
    if finite.size == 0:
        return {"kind": "numeric", "edges": [], "shares": [], "missing": 1.0}
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, N_DRIFT_BINS + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)
    n = len(x)
    return {
        "kind": "numeric",
        "edges": [float(e) for e in edges],
        "shares": [float(c) / n for c in counts],
        "missing": float(x.isna().mean()),
    }


def categorical_drift_bins(values: pd.Series, *, top: int = 20) -> dict[str, Any]:
    """Training share per category (top categories; the rest as ``__other__``) + missing."""
    s = values.astype(object)
    n = len(s)
    missing = float((s.isna() | (s.astype(str) == "")).mean())
    vc = s.dropna().astype(str).value_counts()
    vc = vc[vc.index != ""]
    head = vc.head(top)
    shares = {str(k): float(v) / n for k, v in head.items()}
    rest = float(vc.iloc[top:].sum()) / n if len(vc) > top else 0.0
    return {"kind": "categorical", "shares": shares, "other": rest, "missing": missing}


def reference_values(df: pd.DataFrame, inputs: dict[str, str]) -> dict[str, Any]:
    """Per attribute a typical value used for reasons: the median, or the most common category;
    missing (None) when most rows lack the attribute (joint income on individual applications:
    an individual applicant is then typical there, not pushed toward a joint applicant's value).
    """
    typical = typical_values(df, inputs)
    out: dict[str, Any] = {}
    for name, kind in inputs.items():
        col = df[name]
        missing = col.isna() | (col.astype(str).str.strip() == "") if kind == "string" \
            else pd.to_numeric(col, errors="coerce").isna()
        if len(col) and missing.mean() > 0.5:
            out[name] = None
        elif kind == "string":
            vc = col.dropna().astype(str).value_counts()
            out[name] = str(vc.index[0]) if len(vc) else ""
        else:
            out[name] = typical.get(name)
    return out


def typical_values(df: pd.DataFrame, inputs: dict[str, str]) -> dict[str, float]:
    """The median of the values present, per numeric attribute: what a reason's "high" or "low"
    is measured against where the reference itself is missing."""
    out: dict[str, float] = {}
    for name, kind in inputs.items():
        if kind != "string":
            med = pd.to_numeric(df[name], errors="coerce").median()
            if not pd.isna(med):
                out[name] = float(med)
    return out


def ranges(df: pd.DataFrame, inputs: dict[str, str]) -> dict[str, list[float]]:
    """Observed [min, max] of each numeric attribute on the training split."""
    out: dict[str, list[float]] = {}
    for name, kind in inputs.items():
        if kind != "string":
            x = pd.to_numeric(df[name], errors="coerce").dropna()
            if len(x):
                out[name] = [float(x.min()), float(x.max())]
    return out


def categories(df: pd.DataFrame, inputs: dict[str, str]) -> dict[str, list[str]]:
    """Categories seen in training for each string attribute (sorted)."""
    return {
        name: sorted({str(v) for v in df[name].dropna() if str(v) != ""})
        for name, kind in inputs.items()
        if kind == "string"
    }


def missing_seen(df: pd.DataFrame, inputs: dict[str, str]) -> list[str]:
    """Attributes with missing values in the data: these may be null in an application."""
    return [name for name in inputs if df[name].isna().any()]


def drift_reference(df: pd.DataFrame, inputs: dict[str, str], score: np.ndarray) -> dict[str, Any]:
    """Training-time distributions for population-stability monitoring (attributes and score)."""
    ref: dict[str, Any] = {}
    for name, kind in inputs.items():
        col = df[name]
        ref[name] = categorical_drift_bins(col) if kind == "string" else numeric_drift_bins(col)
    ref["__score__"] = numeric_drift_bins(pd.Series(score))
    return ref


TRAIN_ROWS_FILE = "train_rows.parquet"
Y_COLUMN = "__y__"  # the encoded target in a version's eval.parquet (and its row hashes)


def _canonical(col: pd.Series) -> pd.Series:
    """A column in a form that hashes the same whatever its source (CSV, store, parquet)."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return pd.to_numeric(col, errors="coerce").astype("float64").round(9)
    return col.astype("string").fillna("")


def row_hashes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One uint64 per row over ``columns`` (sorted; values canonicalised), for overlap checks."""
    canon = pd.DataFrame({c: _canonical(frame[c]).reset_index(drop=True)
                          for c in sorted(columns)})
    return pd.util.hash_pandas_object(canon, index=False).to_numpy(np.uint64)

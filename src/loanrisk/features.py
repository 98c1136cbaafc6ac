"""Preprocessing fitted on the training rows only, as numpy maths AND as the same ONNX nodes.

Output columns, in this order (``feature_names_``):
  1. one per numeric attribute (numeric, and binary with numeric values): missing -> train median,
     clipped at the train 0.5/99.5 percentiles (binaries are never clipped), then scaled;
  2. one missing indicator (1.0/0.0) per numeric attribute that had missing values in train;
  3. per categorical attribute (categorical, and binary with string values such as "yes"/"no"):
     one-hot over the categories seen at least ``min_category_count`` times in train, then an
     "other" column for rare and unseen values. Missing ("" or NaN) is the category "__missing__"
     when that is frequent enough in train, else it falls into "other".
Both paths compute in float32 with the same operations in the same order, so the numpy matrix
and the ONNX "features" output are equal bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loanrisk.errors import DataError

if TYPE_CHECKING:
    import onnx

    from loanrisk.schema import Attribute

MISSING = "__missing__"
OTHER = "__other__"
SCALINGS = ("standard", "robust", "none")
FLOAT, STRING = "float", "string"


def _str(v: Any) -> str:
    """One raw value as the string the graph sees ("" for missing; 3.0 -> "3")."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return ""
    if isinstance(v, float | np.floating) and math.isfinite(v) and float(v).is_integer():
        return str(int(v))
    return str(v)


def as_strings(col: pd.Series) -> np.ndarray:
    """A column as an object array of str, "" for missing."""
    return np.array([_str(v) for v in col.to_numpy(dtype=object)], dtype=object)


def as_float32(col: pd.Series) -> np.ndarray:
    """A column as float32, NaN for missing or non-numeric values."""
    if pd.api.types.is_bool_dtype(col):
        col = col.astype(float)
    num = pd.to_numeric(col, errors="coerce")
    return np.asarray(num.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float32)


def _numeric_values(col: pd.Series) -> bool:
    """Whether a column's non-missing values are all numbers (or booleans)."""
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        return True
    present = col.dropna()
    return bool(pd.to_numeric(present.astype(str), errors="coerce").notna().all())


def input_type(attr: Attribute, col: pd.Series | None = None) -> str:
    """"string" for categoricals and text-valued binaries, else "float".

    A binary's declared ``categories`` decide; without them the (training) column does.
    """
    if attr.type == "categorical":
        return STRING
    if attr.type == "binary":
        cats = getattr(attr, "categories", None)
        if cats is not None:
            return FLOAT if _numeric_values(pd.Series(list(cats), dtype=object)) else STRING
        if col is not None and not _numeric_values(col):
            return STRING
    return FLOAT


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    if name not in df.columns:
        raise DataError(f"attribute {name!r} is missing from the table; add the column "
                        "(empty values are allowed) or remove the attribute from the schema")
    return df[name]


class Preprocessor:
    """Imputation, clipping, scaling and one-hot encoding learned from training rows."""

    def __init__(self, attributes: Sequence[Attribute], *, min_category_count: int = 10,
                 scaling: str = "standard") -> None:
        if scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, not {scaling!r}")
        self.attributes = list(attributes)
        self.min_category_count = min_category_count
        self.scaling = scaling

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame) -> Preprocessor:
        """Learn every statistic from ``df`` (the training rows only); returns self.

        Raises DataError when an attribute's column is absent or ``df`` has no rows.
        """
        if len(df) == 0:
            raise DataError("cannot fit preprocessing on an empty training table")
        self.input_types_: dict[str, str] = {}
        self.numeric_: list[dict[str, Any]] = []
        self.categorical_: list[dict[str, Any]] = []
        for attr in self.attributes:
            if attr.type not in ("numeric", "binary", "categorical"):
                raise ValueError(f"attribute {attr.name!r} of type {attr.type} is not a feature")
            col = _column(df, attr.name)
            kind = input_type(attr, col)
            self.input_types_[attr.name] = kind
            if kind == FLOAT:
                self.numeric_.append(self._fit_numeric(attr.name, col, attr.type == "binary"))
            else:
                self.categorical_.append(self._fit_categorical(attr.name, col))
        self._set_names()
        return self

    def _fit_numeric(self, name: str, col: pd.Series, binary: bool) -> dict[str, Any]:
        x = as_float32(col).astype(np.float64)
        present = x[~np.isnan(x)]
        median = float(np.float32(np.median(present))) if present.size else 0.0
        lo = hi = None
        if present.size and not binary:
            lo = float(np.float32(np.percentile(present, 0.5)))
            hi = float(np.float32(np.percentile(present, 99.5)))
        st = {"name": name, "median": median, "lo": lo, "hi": hi,
              "indicator": bool(present.size < x.size), "center": 0.0, "scale": 1.0}
        # the scaling statistics are those of the imputed, clipped training column
        xc = self._impute_clip(x.astype(np.float32)[:, None], [st]).astype(np.float64)[:, 0]
        if self.scaling == "standard":
            center, scale = float(np.mean(xc)), float(np.std(xc))
        elif self.scaling == "robust":
            q25, center, q75 = (float(q) for q in np.percentile(xc, [25, 50, 75]))
            scale = q75 - q25
        else:
            center, scale = 0.0, 1.0
        st["center"] = float(np.float32(center))
        st["scale"] = float(np.float32(scale)) if np.float32(scale) > 0 else 1.0
        return st

    def _fit_categorical(self, name: str, col: pd.Series) -> dict[str, Any]:
        vals = as_strings(col)
        vals[vals == ""] = MISSING
        counts = pd.Series(vals).value_counts()
        kept = sorted(str(c) for c, n in counts.items() if n >= self.min_category_count)
        return {"name": name, "categories": kept}

    def _set_names(self) -> None:
        names, sources = [], []
        for st in self.numeric_:
            names.append(st["name"])
            sources.append(st["name"])
        for st in self.numeric_:
            if st["indicator"]:
                names.append(f"{st['name']}{MISSING}")
                sources.append(st["name"])
        for st in self.categorical_:
            for cat in [*st["categories"], OTHER]:
                names.append(f"{st['name']}={cat}")
                sources.append(st["name"])
        self.feature_names_: list[str] = names
        self.feature_sources_: list[str] = sources  # the attribute behind each output column
        self.n_features_out_: int = len(names)
        if not names:
            raise DataError("no feature columns: the schema has no numeric, binary or "
                            "categorical attribute to learn from")

    # ---- numpy path ----------------------------------------------------------------------
    @staticmethod
    def _vec(stats: list[dict[str, Any]], key: str, default: float) -> np.ndarray:
        vals = [default if st[key] is None else st[key] for st in stats]
        return np.asarray(vals, dtype=np.float32)[None, :]

    def _impute_clip(self, x: np.ndarray, stats: list[dict[str, Any]]) -> np.ndarray:
        x = np.where(np.isnan(x), self._vec(stats, "median", 0.0), x)
        x = np.maximum(x, self._vec(stats, "lo", -np.inf))
        return np.minimum(x, self._vec(stats, "hi", np.inf))

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """The feature matrix, float32 of shape (len(df), n_features_out_).

        Raises DataError naming an attribute whose column is absent.
        """
        n = len(df)
        blocks: list[np.ndarray] = []
        if self.numeric_:
            x = np.column_stack([as_float32(_column(df, st["name"])) for st in self.numeric_])
            x = x.reshape(n, len(self.numeric_)).astype(np.float32)
            miss = np.isnan(x)
            z = self._impute_clip(x, self.numeric_)
            z = (z - self._vec(self.numeric_, "center", 0.0)) / self._vec(
                self.numeric_, "scale", 1.0)
            blocks.append(z)
            idx = [i for i, st in enumerate(self.numeric_) if st["indicator"]]
            blocks.append(miss[:, idx].astype(np.float32))
        for st in self.categorical_:
            vals = as_strings(_column(df, st["name"]))
            lookup = self._lookup(st)
            codes = np.array([lookup.get(v, len(st["categories"])) for v in vals], dtype=np.int64)
            blocks.append((codes[:, None] == np.arange(len(st["categories"]) + 1)[None, :])
                          .astype(np.float32))
        return np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float32)

    @staticmethod
    def _lookup(st: dict[str, Any]) -> dict[str, int]:
        """Category string -> column index; missing ("") goes with "__missing__" when kept."""
        lookup = {c: i for i, c in enumerate(st["categories"])}
        if MISSING in lookup:
            lookup[""] = lookup[MISSING]
        return lookup

    def onnx_feed(self, df: pd.DataFrame) -> dict[str, np.ndarray]:
        """The ONNX input feed for ``df`` (see :func:`frame_to_onnx_feed`)."""
        return frame_to_onnx_feed(df, self.input_types_)

    # ---- ONNX path -----------------------------------------------------------------------
    def onnx_inputs(self) -> list[onnx.ValueInfoProto]:
        """One graph input per raw attribute: float [N,1] or string [N,1]."""
        from onnx import TensorProto

        from loanrisk.onnx_utils import tensor_input

        return [tensor_input(name, TensorProto.FLOAT if kind == FLOAT else TensorProto.STRING, 1)
                for name, kind in self.input_types_.items()]

    def onnx_graph(self) -> onnx.ModelProto:
        """Raw attribute inputs -> "features" float [N, n_features_out_], same maths as numpy."""
        from onnx import TensorProto, helper

        from loanrisk.onnx_utils import FEATURES, ML_DOMAIN, const, float_input, make_model

        nodes: list[Any] = []
        inits: list[Any] = []
        blocks: list[str] = []
        if self.numeric_:
            inits += [const("num_median", self._vec(self.numeric_, "median", 0.0)),
                      const("num_lo", self._vec(self.numeric_, "lo", -np.inf)),
                      const("num_hi", self._vec(self.numeric_, "hi", np.inf)),
                      const("num_center", self._vec(self.numeric_, "center", 0.0)),
                      const("num_scale", self._vec(self.numeric_, "scale", 1.0))]
            names = [st["name"] for st in self.numeric_]
            nodes += [
                helper.make_node("Concat", names, ["num_x"], axis=1),
                helper.make_node("IsNaN", ["num_x"], ["num_miss"]),
                helper.make_node("Where", ["num_miss", "num_median", "num_x"], ["num_imp"]),
                helper.make_node("Max", ["num_imp", "num_lo"], ["num_lo_clip"]),
                helper.make_node("Min", ["num_lo_clip", "num_hi"], ["num_clip"]),
                helper.make_node("Sub", ["num_clip", "num_center"], ["num_centered"]),
                helper.make_node("Div", ["num_centered", "num_scale"], ["num_z"]),
            ]
            blocks.append("num_z")
            idx = [i for i, st in enumerate(self.numeric_) if st["indicator"]]
            if idx:
                inits.append(const("num_ind_idx", idx, np.int64))
                nodes += [helper.make_node("Cast", ["num_miss"], ["num_missf"],
                                           to=TensorProto.FLOAT),
                          helper.make_node("Gather", ["num_missf", "num_ind_idx"], ["num_ind"],
                                           axis=1)]
                blocks.append("num_ind")
        for j, st in enumerate(self.categorical_):
            lookup = self._lookup(st)  # holds "" and "__missing__" when missing is kept
            n_cols = len(st["categories"]) + 1
            lookup = lookup or {MISSING: n_cols - 1}  # all rare: every value is "other"
            keys = list(lookup)
            inits.append(const(f"cat{j}_range", np.arange(n_cols)[None, :], np.int64))
            nodes += [
                helper.make_node("LabelEncoder", [st["name"]], [f"cat{j}_code"],
                                 domain=ML_DOMAIN, keys_strings=keys,
                                 values_int64s=[lookup[c] for c in keys],
                                 default_int64=n_cols - 1),
                helper.make_node("Equal", [f"cat{j}_code", f"cat{j}_range"], [f"cat{j}_eq"]),
                helper.make_node("Cast", [f"cat{j}_eq"], [f"cat{j}_onehot"],
                                 to=TensorProto.FLOAT),
            ]
            blocks.append(f"cat{j}_onehot")
        nodes.append(helper.make_node("Concat", blocks, [FEATURES], axis=1))
        return make_model(nodes, name="preprocessing", inputs=self.onnx_inputs(),
                          outputs=[float_input(FEATURES, self.n_features_out_)],
                          initializers=inits, doc="loanrisk preprocessing")

    # ---- state ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The fitted state as plain JSON-able data (no pickle)."""
        return {"format": 1, "min_category_count": self.min_category_count,
                "scaling": self.scaling,
                "attributes": [{"name": a.name, "type": a.type} for a in self.attributes],
                "input_types": dict(self.input_types_),
                "numeric": [dict(st) for st in self.numeric_],
                "categorical": [{"name": st["name"], "categories": list(st["categories"])}
                                for st in self.categorical_]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessor:
        """Rebuild a fitted Preprocessor from :meth:`to_dict` output."""
        from loanrisk.schema import Attribute

        attrs = [Attribute(name=a["name"], type=a["type"]) for a in d["attributes"]]
        pre = cls(attrs, min_category_count=int(d["min_category_count"]), scaling=d["scaling"])
        pre.input_types_ = dict(d["input_types"])
        pre.numeric_ = [dict(st) for st in d["numeric"]]
        pre.categorical_ = [dict(st) for st in d["categorical"]]
        pre._set_names()
        return pre


def frame_to_onnx_feed(df: pd.DataFrame, attributes: Sequence[Attribute] | Mapping[str, str],
                       ) -> dict[str, np.ndarray]:
    """The ONNX feed for a frame of raw attributes: float32 [n,1] (NaN for missing) or str [n,1]
    ("" for missing; numbers as str(), 3.0 as "3").

    ``attributes`` is either the Attribute list or a mapping name -> "float"|"string" (exact; use
    ``Preprocessor.input_types_`` or the graph's own input types). Raises DataError when a
    column is absent.
    """
    if isinstance(attributes, Mapping):
        kinds = dict(attributes)
    else:
        kinds = {a.name: input_type(a, df[a.name] if a.name in df.columns else None)
                 for a in attributes}
    feed: dict[str, np.ndarray] = {}
    for name, kind in kinds.items():
        col = _column(df, name)
        vals = as_strings(col) if kind == STRING else as_float32(col)
        feed[name] = vals.reshape(-1, 1)
    return feed

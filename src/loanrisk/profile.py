"""Statistics per attribute, association with the target, and the leakage check.

Association with the target (cheap, no model): for a binary target, numeric attributes get the
ROC-AUC of the raw value for the adverse class (0.5 = none; below 0.5 = higher values go with the
good class); for a multiclass target (classes ordered best -> worst), numeric attributes get the
Spearman correlation with the class index. Categorical attributes get Cramér's V (0 = none, 1 =
the category decides the class).

The leakage check asks how well one attribute *alone* predicts the target: a single-attribute
decision tree, 3-fold cross-validated (accuracy for multiclass, ROC-AUC for binary).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loanrisk.schema import Attribute, Schema

QUANTILES = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95,
             "p99": 0.99}
TOP_CATEGORIES = 10


# the leakage check's rows at most (a seeded, stratified sample beyond)
LEAKAGE_MAX_ROWS = 200_000

@dataclass
class AttributeProfile:
    """Statistics of one attribute. Numeric fields are None for non-numeric attributes."""

    name: str
    type: str
    count: int  # non-missing cells
    missing_share: float
    distinct: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    p01: float | None = None
    p05: float | None = None
    p25: float | None = None
    p50: float | None = None
    p75: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    top: list[dict[str, Any]] = field(default_factory=list)  # [{"value", "count", "share"}]
    association: float | None = None
    association_metric: str | None = None  # "roc_auc" | "spearman" | "cramers_v"
    iv: float | None = None  # information value against "bad" (see information_value)
    iv_band: str | None = None  # useless | weak | medium | strong | suspicious


@dataclass
class Profile:
    """The profile of a table: target class counts and one AttributeProfile per attribute."""

    name: str
    rows: int
    target: str
    task: str
    class_counts: dict[str, int]
    attributes: list[AttributeProfile]
    seconds: float = 0.0

    def attribute(self, name: str) -> AttributeProfile:
        """The profile of one attribute (KeyError-free: LookupError naming it)."""
        for a in self.attributes:
            if a.name == name:
                return a
        raise LookupError(f"no attribute {name!r} in the profile")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (NaN and infinities become None)."""
        return _clean(asdict(self))


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _rank(x: np.ndarray) -> np.ndarray:
    return pd.Series(x).rank(method="average").to_numpy()


def auc_of(x: np.ndarray, positive: np.ndarray) -> float | None:
    """ROC-AUC of score ``x`` for boolean ``positive`` (Mann-Whitney U); None if one-sided."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    r = _rank(x)
    return float((r[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman rank correlation; None when either side is constant."""
    rx, ry = _rank(x), _rank(y)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def cramers_v(codes: np.ndarray, y: np.ndarray, n_classes: int) -> float | None:
    """Cramér's V between category codes (0..k-1) and class indices."""
    k = int(codes.max()) + 1 if codes.size else 0
    if k < 2 or n_classes < 2:
        return None
    table = np.bincount(codes * n_classes + y, minlength=k * n_classes).reshape(k, n_classes)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if min(table.shape) < 2:
        return None
    n = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return math.sqrt(chi2 / (n * (min(table.shape) - 1)))


def _numeric_profile(ap: AttributeProfile, x: np.ndarray) -> None:
    finite = x[~np.isnan(x)]
    if finite.size == 0:
        return
    qs = np.quantile(finite, list(QUANTILES.values()))
    ap.mean, ap.std = float(finite.mean()), float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    ap.min, ap.max = float(finite.min()), float(finite.max())
    for key, q in zip(QUANTILES, qs, strict=True):
        setattr(ap, key, float(q))


def _top(s: pd.Series, n_rows: int) -> list[dict[str, Any]]:
    vc = s.value_counts(dropna=True).head(TOP_CATEGORIES)
    return [{"value": str(v), "count": int(c), "share": float(c) / n_rows if n_rows else 0.0}
            for v, c in vc.items()]


def category_codes(s: pd.Series) -> np.ndarray:
    """Ordinal codes of a categorical column in sorted-label order; missing is its own code."""
    codes, _ = pd.factorize(s.astype(object).where(s.notna(), None).map(
        lambda v: v if v is None else str(v)), sort=True, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    return np.where(codes < 0, codes.max(initial=-1) + 1, codes)


def numeric_array(s: pd.Series) -> np.ndarray:
    """A column as float64 (cells that are not numbers become NaN)."""
    return np.asarray(pd.to_numeric(s, errors="coerce"), dtype=np.float64)


def _association(attr: Attribute, s: pd.Series, y: np.ndarray | None, mask: np.ndarray,
                 n_classes: int, binary: bool) -> tuple[float | None, str | None]:
    if y is None or attr.type in ("text", "identifier"):
        return None, None
    if attr.type == "categorical" or (attr.type == "binary" and attr.categories is not None):
        return cramers_v(category_codes(s)[mask], y, n_classes), "cramers_v"
    x = numeric_array(s)[mask]
    ok = ~np.isnan(x)
    if ok.sum() < 2:
        return None, None
    if binary:
        return auc_of(x[ok], y[ok] == 1), "roc_auc"
    return spearman(x[ok], y[ok]), "spearman"


def profile(df: pd.DataFrame, schema: Schema) -> Profile:
    """Statistics of every schema attribute present in ``df``, and of the target's classes.
    Rows whose target is missing or unknown are left out of the associations only."""
    start = time.perf_counter()
    n = len(df)
    y: np.ndarray | None = None
    mask = np.ones(n, dtype=bool)
    class_counts: dict[str, int] = {}
    if schema.target in df.columns and schema.classes:
        from loanrisk.schema.checks import labels

        index = {c: i for i, c in enumerate(schema.classes)}
        codes = np.array([index.get(v, -1) if v is not None else -1
                          for v in labels(df[schema.target])], dtype=np.int64)
        mask = codes >= 0
        y = codes[mask]
        class_counts = {c: int((y == i).sum()) for i, c in enumerate(schema.classes)}
    out = []
    for attr in schema.attributes:
        if attr.name not in df.columns:
            continue
        s = df[attr.name]
        missing = int(s.isna().sum())
        ap = AttributeProfile(name=attr.name, type=attr.type, count=n - missing,
                              missing_share=missing / n if n else 0.0, distinct=int(s.nunique()))
        if attr.type == "numeric" or (attr.type == "binary" and attr.categories is None):
            _numeric_profile(ap, numeric_array(s))
        elif attr.type != "identifier":
            ap.top = _top(s, n)
        ap.association, ap.association_metric = _association(
            attr, s, y, mask, len(schema.classes), schema.task == "binary")
        if y is not None and attr.type in ("numeric", "binary", "categorical"):
            numeric = attr.type == "numeric" or (attr.type == "binary"
                                                 and attr.categories is None)
            ap.iv = information_value(s[mask], bad_of(y, len(schema.classes)), numeric=numeric)
            ap.iv_band = iv_band(ap.iv)
        out.append(ap)
    return Profile(name=schema.name, rows=n, target=schema.target, task=schema.task,
                   class_counts=class_counts, attributes=out,
                   seconds=time.perf_counter() - start)


# --- information value -----------------------------------------------------------------------
IV_BANDS = ((0.02, "useless"), (0.1, "weak"), (0.3, "medium"), (0.5, "strong"))


def iv_band(iv: float | None) -> str | None:
    """useless < 0.02 <= weak < 0.1 <= medium < 0.3 <= strong <= 0.5 < suspicious."""
    if iv is None:
        return None
    return next((band for top, band in IV_BANDS if iv < top or (band == "strong" and iv <= top)),
                "suspicious")


def bad_of(y: np.ndarray, n_classes: int) -> np.ndarray:
    """The "bad" indicator IV is measured against: the adverse class (binary), else the classes
    from the one nearest the mean class index onwards (as the scorecard's WoE)."""
    cut = 1 if n_classes <= 2 else int(np.clip(round(float(y.mean())), 1, n_classes - 1))
    return (y >= cut).astype(np.int64)


def information_value(s: pd.Series, bad: np.ndarray, *, numeric: bool,
                      bins: int = 10) -> float | None:
    """IV = sum over bins of (good% - bad%) * ln(good% / bad%): numeric values in (at most)
    ``bins`` equal-frequency bins, categories as they are, missing values as their own bin; half
    a row added to every cell so an empty one stays finite. None without both outcomes."""
    if bad.size == 0 or bad.min() == bad.max():
        return None
    if numeric:
        codes = pd.qcut(pd.to_numeric(s, errors="coerce"), q=bins, labels=False,
                        duplicates="drop")
        codes = codes.fillna(-1).to_numpy(dtype=np.int64)
    else:
        codes = category_codes(s)
    _, inv = np.unique(codes, return_inverse=True)
    b = np.bincount(inv, weights=bad).astype(float) + 0.5
    g = np.bincount(inv, weights=1 - bad).astype(float) + 0.5
    gp, bp = g / g.sum(), b / b.sum()
    return round(float(np.sum((gp - bp) * np.log(gp / bp))), 6)


# --- leakage -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Leak:
    """An attribute that alone predicts the target (almost) perfectly."""

    attribute: str
    score: float
    metric: str  # "accuracy" (multiclass) | "roc_auc" (binary), 3-fold cross-validated
    target: str = "the target"

    @property
    def explanation(self) -> str:
        """Plain words for reports and errors."""
        how = (f"{self.score:.2%} accuracy" if self.metric == "accuracy"
               else f"ROC-AUC {self.score:.3f}")
        return (f"{self.attribute} alone predicts {self.target} with {how}: it is most likely "
                "set from the target or known only after the decision, so figures using it "
                "are not honest")


def leakage_check(df: pd.DataFrame, schema: Schema, *,
                  attributes: Sequence[Attribute | str] | None = None,
                  threshold: float = 0.98, seed: int = 42,
                  max_rows: int = LEAKAGE_MAX_ROWS) -> list[Leak]:
    """Attributes whose single-attribute decision tree (at most 64 leaves; categoricals
    ordinal-encoded, missing as its own value) scores at least ``threshold`` in 3-fold
    stratified cross-validation: accuracy for multiclass, ROC-AUC for binary. Sorted by score,
    highest first. ``attributes`` defaults to every candidate feature, post-decision included.

    On a table of more than ``max_rows`` rows the check runs on a seeded sample of that many
    rows (stratified by class): a 64-leaf tree's score is settled long before that, and the
    check's time stays bounded on a full book (see :func:`leakage_rows`)."""
    from sklearn.model_selection import StratifiedKFold

    from loanrisk.schema.checks import labels

    if attributes is None:
        attributes = schema.feature_attributes(allow_leaky=True)
    attrs = [schema.attribute(a) if isinstance(a, str) else a for a in attributes]
    index = {c: i for i, c in enumerate(schema.classes)}
    codes = np.array([index.get(v, -1) if v is not None else -1
                      for v in labels(df[schema.target])], dtype=np.int64)
    keep = codes >= 0
    if keep.sum() > max_rows:
        keep = _sample_mask(codes, keep, max_rows, seed)
    y = codes[keep]
    counts = np.bincount(y, minlength=len(schema.classes))
    n_splits = min(3, int(counts[counts > 0].min()) if counts.any() else 0)
    if n_splits < 2 or (counts > 0).sum() < 2:
        return []
    folds = list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(
        np.zeros(y.size), y))
    binary = schema.task == "binary"
    leaks = []
    for attr in attrs:
        if attr.name not in df.columns:
            continue
        score = _single_attribute_score(_encode_one(attr, df[attr.name])[keep], y, folds,
                                        binary=binary, seed=seed)
        if score >= threshold:
            leaks.append(Leak(attr.name, score, "roc_auc" if binary else "accuracy",
                              target=schema.target))
    return sorted(leaks, key=lambda lk: -lk.score)


def leakage_rows(n: int, max_rows: int = LEAKAGE_MAX_ROWS) -> int:
    """How many of ``n`` rows the leakage check looks at (stated in the report)."""
    return min(n, max_rows)


def _sample_mask(codes: np.ndarray, keep: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` of the ``keep`` rows, stratified by class code, as a mask (order kept)."""
    from sklearn.model_selection import train_test_split

    idx = np.flatnonzero(keep)
    chosen, _ = train_test_split(idx, train_size=size, random_state=seed, stratify=codes[idx])
    mask = np.zeros(codes.size, dtype=bool)
    mask[chosen] = True
    return mask


def _encode_one(attr: Attribute, s: pd.Series) -> np.ndarray:
    """One attribute as a float column for a tree; missing numbers go below the minimum."""
    if attr.type in ("numeric",) or (attr.type == "binary" and attr.categories is None):
        x = numeric_array(s)
        if np.isnan(x).all():
            return np.zeros(x.size)
        return np.where(np.isnan(x), np.nanmin(x) - 1.0, x)
    return category_codes(s).astype(np.float64)


def _single_attribute_score(x: np.ndarray, y: np.ndarray, folds: list[Any], *, binary: bool,
                            seed: int) -> float:
    from sklearn.metrics import roc_auc_score
    from sklearn.tree import DecisionTreeClassifier

    scores = []
    X = x.reshape(-1, 1)
    for train, test in folds:
        tree = DecisionTreeClassifier(max_leaf_nodes=64, random_state=seed).fit(X[train], y[train])
        if binary:
            scores.append(roc_auc_score(y[test], tree.predict_proba(X[test])[:, 1]))
        else:
            scores.append(float((tree.predict(X[test]) == y[test]).mean()))
    return float(np.mean(scores))

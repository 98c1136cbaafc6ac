"""The credit-risk scorecard: attributes binned by weight of evidence (WoE), a logistic regression
on the WoE values, scaled to points ("600 points at 50:1 odds, 20 points to double the odds").

**Binning: scikit-learn, not OptBinning.** OptBinning 1.0 would install OR-Tools and CVXPY here
and downgrade protobuf 7 to 6, which onnx, onnxruntime and MLflow share; scikit-learn is already a
training dependency. The penalised fit (the default, below) cuts fine quantile bins; the classic
fit bins each numeric attribute by a small ``DecisionTreeClassifier`` on the
"bad" indicator (``max_bins`` leaves, at least ``min_bin_share`` of the rows per bin), with
``monotonic_cst`` where the schema marks the attribute ``monotone``: the tree's bad rate then
never moves against the declared direction, and the WoE values are made monotone by an isotonic
fit over the bins (weighted by their counts) to remove what the smoothing could bend.

**On the model's input.** Like every family, the scorecard receives the preprocessed matrix
(:mod:`loanrisk.features`): numeric values imputed, clipped and scaled — a monotone affine map of
the raw value, so bin edges on those columns are bin edges on the raw values (the points table
shows them in raw units) — then missing indicators, then one-hot columns. Missing values are their
own bin: a row whose indicator is 1 takes the attribute's "missing" WoE, whatever its imputed
value. A categorical attribute's bins are its one-hot columns (rare and unseen values share
"other"; a frequent "missing" is its own category).

**Grades: ordinal, not one-vs-rest.** For an ordered target (classes best to worst) the model is a
proportional-odds (cumulative logit) regression: one score ``s`` per applicant and K-1 ordered
cut points, P(class <= k) = sigmoid(theta_k - s). One score gives one points table and one set of
reasons, and the expected grade rises with ``s``, so monotone bins stay monotone through the
model; one-vs-rest would give K unrelated scorecards whose softmax can move risk either way. WoE
and bins use the dichotomy "class >= cut" with the cut nearest the mean class (for a binary
target: the adverse class).

**Two fits.** ``method="penalised"`` (the default, :mod:`loanrisk.models.scorecard_fit`): fine
quantile bins whose points are fitted jointly with a smoothness penalty; over ``evaluate``'s five
splits it ranks as well as a tuned logistic regression, where the classic fit ranks about 0.008
ROC-AUC lower. ``method="woe"``: the classic scorecard described above, a regression on WoE whose
coefficients are constrained to be >= 0 (higher WoE, lower risk), so no attribute's points run
against its own univariate evidence. Either way each bin shows its univariate WoE in the points
table, and the bins' values (WoE x coefficient, or the penalised fit's values) make the points.
The ONNX graph bins with the same float32 comparisons and computes the score and probabilities
in double, as numpy does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from loanrisk.errors import DataError
from loanrisk.models.scorecard_link import choose_C, fit_link, thetas

MISSING_SUFFIX = "__missing__"


def _expit(z: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return np.asarray(expit(z), dtype=np.float64)


class _Attr:
    """The bins of one attribute: numeric (edges + optional missing bin) or one-hot columns."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.value_col: int | None = None
        self.missing_col: int | None = None
        self.onehot: list[tuple[int, str]] = []  # (column, category)
        self.center, self.scale = 0.0, 1.0
        self.edges = np.zeros(0, dtype=np.float32)
        self.woe = np.zeros(0)  # numeric: one per bin; categorical: one per one-hot column
        self.woe_missing = 0.0
        self.counts = np.zeros(0)
        self.count_missing = 0
        self.weight = 0.0
        # the univariate WoE of each bin, for the points table, when ``woe`` holds fitted values
        self.info_woe: np.ndarray | None = None
        self.info_woe_missing = 0.0

    def missing(self, X: np.ndarray) -> np.ndarray:
        """The rows of X whose value of this attribute is missing (its indicator is 1)."""
        if self.missing_col is None:
            return np.zeros(len(X), dtype=bool)
        return np.asarray(X[:, self.missing_col] > 0.5)


class ScorecardModel:
    """WoE bins per attribute, then a (cumulative) logistic regression on WoE, as points."""

    name = "scorecard"

    def __init__(self, *, seed: int = 0, task: str = "binary",
                 columns: list[dict[str, Any]] | None = None, monotone: list[int] | None = None,
                 method: str = "penalised", max_bins: int | None = None,
                 min_bin_share: float | None = None, C: float | None = None,
                 cv_folds: int = 5, free_unmarked: bool = False, smoothness: float = 0.3,
                 category_penalty: float = 3.0,
                 smoothing: float = 20.0, pdo: float = 20.0, base_points: float = 600.0,
                 base_odds: float = 50.0) -> None:
        if method not in ("penalised", "woe"):
            raise ValueError(f"scorecard method {method!r}: use 'penalised' or 'woe'")
        self.seed = seed
        self.task = task
        self.columns = columns  # [{"name", "source", "center", "scale"}] per feature column
        self.monotone = list(monotone) if monotone is not None else None
        self.method = method
        penalised = method == "penalised"
        self.max_bins = max_bins if max_bins is not None else (20 if penalised else 10)
        self.min_bin_share = (min_bin_share if min_bin_share is not None
                              else (0.02 if penalised else 0.03))
        self.smoothness = smoothness
        self.category_penalty = category_penalty
        self.C = C
        self.cv_folds = cv_folds
        self.free_unmarked = free_unmarked
        self.cv_scores_: dict[float, float] = {}
        self.smoothing = smoothing
        self.pdo = pdo
        self.base_points = base_points
        self.base_odds = base_odds
        self.history_: dict[str, list[float]] | None = None

    # ---- binning ----------------------------------------------------------------------------
    def _attributes(self, n_cols: int) -> list[_Attr]:
        cols = self.columns or [{"name": f"x{i}", "source": f"x{i}"} for i in range(n_cols)]
        if len(cols) != n_cols:
            raise ValueError(f"columns describes {len(cols)} columns for {n_cols} features")
        attrs: dict[str, _Attr] = {}
        for i, c in enumerate(cols):
            a = attrs.setdefault(c["source"], _Attr(c["source"]))
            if c["name"] == c["source"]:
                a.value_col = i
                a.center, a.scale = float(c.get("center", 0.0)), float(c.get("scale", 1.0))
            elif c["name"] == c["source"] + MISSING_SUFFIX:
                a.missing_col = i
            else:
                a.onehot.append((i, c["name"].split("=", 1)[-1]))
        return list(attrs.values())

    def _woe(self, good: np.ndarray, bad: np.ndarray) -> np.ndarray:
        # ``smoothing`` rows at the overall bad rate join every bin: a thin bin's WoE shrinks to 0
        a = self.smoothing / (self.n_good_ + self.n_bad_)
        g, b = good + a * self.n_good_, bad + a * self.n_bad_
        return np.log((g / g.sum()) / (b / b.sum()))

    def _bin_woe(self, a: _Attr, X: np.ndarray, bad: np.ndarray, miss: np.ndarray) -> np.ndarray:
        """Set ``a``'s bin counts (its edges set) and return each bin's WoE, the missing bin
        last."""
        assert a.value_col is not None
        idx = (X[~miss, a.value_col][:, None] > a.edges[None, :]).sum(axis=1)
        nb = len(a.edges) + 1
        bad_n = np.bincount(idx, weights=bad[~miss], minlength=nb)
        a.counts = np.bincount(idx, minlength=nb).astype(float)
        a.count_missing = int(miss.sum())
        mb = float(bad[miss].sum())
        return self._woe(np.append(a.counts - bad_n, a.count_missing - mb), np.append(bad_n, mb))

    def _fit_numeric(self, a: _Attr, X: np.ndarray, bad: np.ndarray, sign: int) -> None:
        from sklearn.isotonic import IsotonicRegression
        from sklearn.tree import DecisionTreeClassifier

        assert a.value_col is not None
        miss = a.missing(X)
        x, b = X[~miss, a.value_col], bad[~miss]
        edges = np.zeros(0, dtype=np.float32)
        if x.size and np.unique(x).size > 1 and np.unique(b).size > 1:
            tree = DecisionTreeClassifier(
                max_leaf_nodes=max(2, self.max_bins),
                min_samples_leaf=max(1, int(self.min_bin_share * len(X))),
                monotonic_cst=[sign] if sign else None, random_state=self.seed)
            tree.fit(x[:, None], b)
            thr = tree.tree_.threshold[tree.tree_.feature >= 0]
            edges = np.unique(np.asarray(thr, dtype=np.float32))
        a.edges = edges
        woe_all = self._bin_woe(a, X, bad, miss)
        nb = len(edges) + 1
        woe, a.woe_missing = woe_all[:-1], float(woe_all[-1]) if a.count_missing else 0.0
        if sign and nb > 1:  # more of a +1 attribute never lowers risk: WoE never rises
            iso = IsotonicRegression(increasing=sign < 0)
            woe = iso.fit_transform(np.arange(nb), woe, sample_weight=np.maximum(a.counts, 1e-9))
        a.woe = np.asarray(woe, dtype=np.float64)

    def _fit_categorical(self, a: _Attr, X: np.ndarray, bad: np.ndarray) -> None:
        cols = [c for c, _ in a.onehot]
        onehot = X[:, cols] > 0.5
        a.counts = onehot.sum(axis=0).astype(float)
        bad_n = (onehot & (bad[:, None] > 0)).sum(axis=0).astype(float)
        a.woe = self._woe(a.counts - bad_n, bad_n)

    def _bin_all(self, X: np.ndarray, bad: np.ndarray, signs: list[int]) -> list[_Attr]:
        """Every attribute's bins and WoE, learned from the rows ``X`` with labels ``bad``."""
        self.n_bad_ = float(bad.sum())
        self.n_good_ = float(len(bad) - self.n_bad_)
        attrs = self._attributes(X.shape[1])
        for a in attrs:
            if a.value_col is not None:
                self._fit_numeric(a, X, bad, int(signs[a.value_col]))
            else:
                self._fit_categorical(a, X, bad)
        return attrs

    def _woe_matrix(self, X: np.ndarray, attrs: list[_Attr] | None = None) -> np.ndarray:
        """(n, n_attributes) WoE of each row's bin, float64 — what the graph computes."""
        X = np.asarray(X, dtype=np.float32)
        attrs = self.attrs_ if attrs is None else attrs
        out = np.zeros((len(X), len(attrs)))
        for j, a in enumerate(attrs):
            if a.value_col is not None:
                idx = (X[:, a.value_col][:, None] > a.edges[None, :]).sum(axis=1)
                w = a.woe[idx]
                if a.missing_col is not None:
                    w = np.where(X[:, a.missing_col] > 0.5, a.woe_missing, w)
            else:
                w = X[:, [c for c, _ in a.onehot]].astype(np.float64) @ a.woe
            out[:, j] = w
        return out

    # ---- fitting ----------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, *, X_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None, n_classes: int | None = None) -> ScorecardModel:
        """Bin every attribute, then fit the regression on WoE; returns self.

        Raises DataError when the training labels hold a single class.
        """
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.int64)
        self.n_classes_ = k = int(n_classes if n_classes is not None else y.max() + 1)
        if np.unique(y).size < 2:
            raise DataError("the training rows hold a single class; a classifier needs two")
        self.cut_ = int(np.clip(round(float(y.mean())), 1, k - 1)) if k > 2 else 1
        bad = (y >= self.cut_).astype(np.float64)
        signs = self.monotone or [0] * X.shape[1]
        if self.method == "penalised":
            return self._fit_penalised(X, y, bad, signs)
        # the regression learns from out-of-fold WoE: a row's WoE never saw its own label, so
        # the weights do not trust bins that merely memorised the training rows
        folds = self._folds(y, bad)
        W = np.zeros((len(X), len(self._attributes(X.shape[1]))))
        for fit_idx, out_idx in folds:
            W[out_idx] = self._woe_matrix(X[out_idx],
                                          self._bin_all(X[fit_idx], bad[fit_idx], signs))
        self.attrs_ = self._bin_all(X, bad, signs)
        if not folds:
            W = self._woe_matrix(X)
        n_a = W.shape[1]
        lower = self._lower_bounds(signs)
        C = self.C
        if C is None:  # the penalty by K-fold CV on the training rows' out-of-fold WoE
            C, self.cv_scores_ = (choose_C(W, y, k, lower=lower, folds=folds) if folds
                                  else (1.0, {}))
        self.C_ = float(C)
        params = fit_link(W, y, k, C=self.C_, lower=lower)
        self.coef_ = np.asarray(params[:n_a], dtype=np.float64)
        self.theta_ = thetas(params, n_a)
        for a, w in zip(self.attrs_, self.coef_, strict=True):
            a.weight = float(w)
        self.classes_ = np.arange(k, dtype=np.int64)
        return self

    def _fit_penalised(self, X: np.ndarray, y: np.ndarray, bad: np.ndarray,
                       signs: list[int]) -> ScorecardModel:
        """Fine bins with their WoE (shown in the points table), then every bin's value by the
        penalised regression (:mod:`loanrisk.models.scorecard_fit`)."""
        from loanrisk.models.scorecard_fit import fine_edges, fit_penalised

        k = self.n_classes_
        self.n_bad_ = float(bad.sum())
        self.n_good_ = float(len(bad) - self.n_bad_)
        attrs = self._attributes(X.shape[1])
        sign_of: dict[str, int] = {}
        for a in attrs:
            if a.value_col is None:
                self._fit_categorical(a, X, bad)
                a.info_woe = a.woe.copy()
                sign_of[a.name] = 0
                continue
            sign_of[a.name] = int(signs[a.value_col])
            miss = a.missing(X)
            a.edges = fine_edges(X[~miss, a.value_col], self.max_bins, self.min_bin_share)
            woe = self._bin_woe(a, X, bad, miss)
            a.info_woe = woe[:-1]
            a.info_woe_missing = float(woe[-1]) if a.count_missing else 0.0
        theta, self.C_, self.cv_scores_ = fit_penalised(
            X, y, k, attrs=attrs, signs=sign_of, smoothness=self.smoothness, C=self.C,
            folds=self._folds(y, bad), seed=self.seed, category_penalty=self.category_penalty)
        self.attrs_ = attrs
        # each numeric attribute's values centred on its training mean (the cut points take the
        # difference): its points then read as above or below a typical applicant's
        num = [j for j, a in enumerate(attrs) if a.value_col is not None]
        if num:
            means = self._woe_matrix(X)[:, num].mean(axis=0)
            for j, m in zip(num, means, strict=True):
                attrs[j].woe = attrs[j].woe - m
                attrs[j].woe_missing -= float(m)
            theta = theta + float(means.sum())
        self.theta_ = theta
        self.coef_ = np.ones(len(attrs))
        self.classes_ = np.arange(k, dtype=np.int64)
        return self

    def _folds(self, y: np.ndarray, bad: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """``cv_folds`` stratified folds of the training rows (by class); none when there are
        too few rows, or a fold would lack a class of the WoE's good/bad split."""
        if self.cv_folds < 2 or len(y) < 10 * self.cv_folds:
            return []
        from sklearn.model_selection import StratifiedKFold

        strat = y if np.bincount(y).min(initial=len(y)) >= self.cv_folds else bad
        try:
            folds = list(StratifiedKFold(self.cv_folds, shuffle=True, random_state=self.seed)
                         .split(np.zeros(len(y)), strat))
        except ValueError:
            return []
        ok = all(np.unique(bad[f]).size == 2 for f, _ in folds)
        return [(np.asarray(f), np.asarray(o)) for f, o in folds] if ok else []

    def _lower_bounds(self, signs: list[int]) -> list[float | None]:
        """Per attribute, the lower bound of its weight: 0 (points never run against the
        attribute's own WoE) for every attribute, or with ``free_unmarked`` only for the
        attributes the schema marks monotone (their bins then stay monotone through the model)."""
        attrs = self._attributes(len(signs))
        return [0.0 if not self.free_unmarked or (a.value_col is not None and signs[a.value_col])
                else None for a in attrs]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities (n, n_classes) in float64: cumulative sigmoids, differenced."""
        s = self._score(np.asarray(X, dtype=np.float32))
        F = _expit(self.theta_[None, :] - s)
        n = len(F)
        return np.hstack([F, np.ones((n, 1))]) - np.hstack([np.zeros((n, 1)), F])

    def _score(self, X: np.ndarray) -> np.ndarray:
        """The risk score s (n, 1), summed as the graph sums it."""
        num = [j for j, a in enumerate(self.attrs_) if a.value_col is not None]
        W = self._woe_matrix(X)
        s = np.zeros((len(X), 1))
        if num:
            s = W[:, num] @ (-self.coef_[num])[:, None]
        cat = self._cat_weights(X.shape[1])
        if cat is not None:
            s = s + np.asarray(X, dtype=np.float64) @ cat
        return s

    def _cat_weights(self, n_features: int) -> np.ndarray | None:
        from loanrisk.models.scorecard_export import cat_weights

        return cat_weights(self, n_features)

    # ---- export (loanrisk.models.scorecard_export) --------------------------------------------
    def to_onnx(self, n_features: int) -> onnx.ModelProto:
        """Graph "features" [N,F] -> "probabilities" [N,C]: bin lookups, score, cumulative logit."""
        from loanrisk.models.scorecard_export import to_onnx

        return to_onnx(self, n_features)

    def points_table(self) -> dict[str, Any]:
        """The scorecard: per attribute and bin, its WoE and points (and the scaling used)."""
        from loanrisk.models.scorecard_export import points_table

        return points_table(self)

    def params(self) -> dict[str, Any]:
        """Hyperparameters, for MLflow."""
        return {"seed": self.seed, "method": self.method, "max_bins": self.max_bins,
                "min_bin_share": self.min_bin_share, "smoothness": self.smoothness,
                "category_penalty": self.category_penalty,
                "C": self.C if self.C is not None else f"cv:{getattr(self, 'C_', '')}",
                "free_unmarked": self.free_unmarked, "cv_folds": self.cv_folds,
                "smoothing": self.smoothing,
                "pdo": self.pdo, "base_points": self.base_points, "base_odds": self.base_odds,
                "link": "cumulative logit"}

"""The scorecard's default fit (:mod:`loanrisk.models.scorecard`, ``method="penalised"``): fine
bins, each with its own points, fitted jointly by a penalised (cumulative) logistic regression.

A classic scorecard steps each numeric attribute through 5-10 coarse bins and lets one
coefficient per attribute scale their univariate WoE. On the bundled tables that loses about
0.008 ROC-AUC to a tuned logistic regression on the continuous values: coarse steps throw away
the rank within a bin, and one coefficient cannot reshape an attribute's bins once the others are
in the model. Here:

- **Fine bins**: each numeric attribute's quantile bins (at most ``max_bins``, each holding at
  least ``min_share`` of the attribute's non-missing rows); no label is used, so nothing leaks
  between the regression's folds. Missing values are their own bin, fitted as a shift from the
  bin of the value the preprocessor imputes (the median): the penalty pulls "missing" towards a
  typical applicant, as the peer's missing indicator does. A categorical attribute's bins are
  its one-hot columns.
- **One value per bin**, fitted jointly: a numeric attribute's bins are coded "thermometer"
  style, so a coefficient is the slope (per unit of the scaled value) between the centres (the
  median values) of two neighbouring bins; a bin's value is the sum of the slopes below it.
- **Penalty**: ``smoothness`` x the spread of an attribute's slopes around their mean (bins pulled
  towards a straight line in the value, which the peer logistic regression is), plus a small ridge
  on the slopes, an L2 on the missing bins and ``category_penalty`` x an L2 on the categorical
  levels; one strength C for all, chosen by K-fold CV on the training rows
  (:func:`loanrisk.models.scorecard_link.choose_C`). A level's value moves the score of its rows
  outright, where a slope only tilts a line between neighbouring bins, and the tables' many-level
  attributes (state: 50, sub-grade: 35) hold few rows per level: at the slopes' strength their
  levels overfit (over the default table's five splits, ROC-AUC 0.7469 at 0.3x, 0.7510 at 1x,
  0.7520 at 3x, 0.7519 at 5x, 0.7515 at 10x), hence 3 by default (tunable).
- **Monotone where the schema says so**: the slopes of a marked attribute are bounded at 0 on
  the side the schema allows, so its points never move against the declared direction.

The result is a plain points table (attribute, bin, points): each bin's value, in ln odds
(good:bad), is what :mod:`loanrisk.models.scorecard_export` scales to points, with weight 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from loanrisk.models.scorecard_link import choose_C, fit_link, thetas

if TYPE_CHECKING:
    from loanrisk.models.scorecard import _Attr

PENALISED_C_GRID = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.3, 1.0)
SLOPE_RIDGE = 0.05  # the ridge on each slope, relative to the smoothness penalty's scale
CATEGORY_PENALTY = 3.0  # the L2 on a categorical level, relative to the missing bins'
CV_ROWS = 100_000  # C is chosen on at most this many training rows (seeded), fitted on all


def fine_edges(x: np.ndarray, max_bins: int, min_share: float) -> np.ndarray:
    """Quantile edges (float32, increasing) of the values ``x``, at most ``max_bins`` bins,
    every bin holding at least ``min_share`` of the rows; bin i holds edges[i-1] < x <= edges[i]."""
    x = np.sort(np.asarray(x, dtype=np.float32))
    if x.size < 2 or x[0] == x[-1] or max_bins < 2:
        return np.zeros(0, dtype=np.float32)
    qs = np.unique(np.quantile(x, np.linspace(0, 1, max_bins + 1)[1:-1]).astype(np.float32))
    need = max(1.0, min_share * x.size)
    keep: list[float] = []
    below = 0  # rows at or below the last kept edge
    for q in qs:
        upto = int(np.searchsorted(x, q, side="right"))
        if upto - below >= need and x.size - upto >= need:
            keep.append(float(q))
            below = upto
    return np.asarray(keep, dtype=np.float32)


def centres(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The median value of each bin (len(edges) + 1); an empty bin takes its edge."""
    idx = (x[:, None] > edges[None, :]).sum(axis=1)
    out = np.zeros(len(edges) + 1)
    for b in range(len(out)):
        sel = x[idx == b]
        out[b] = float(np.median(sel)) if sel.size else float(edges[min(b, len(edges) - 1)])
    return out


class Design:
    """The regression's columns for a list of attributes (their bins already set)."""

    def __init__(self, attrs: list[_Attr], gaps: dict[str, np.ndarray],
                 imputed: dict[str, np.float32], signs: dict[str, int],
                 smoothness: float, category_penalty: float = CATEGORY_PENALTY) -> None:
        self.attrs, self.gaps, self.signs = attrs, gaps, signs
        self.imputed = imputed  # the value a missing row carries, per attribute with missing
        blocks: list[np.ndarray] = []
        self.lower: list[float | None] = []
        for a in attrs:
            if a.value_col is not None:
                m = len(a.edges)
                if m:
                    blocks.append(smoothness * (np.eye(m) - np.ones((m, m)) / m)
                                  + SLOPE_RIDGE * np.eye(m))
                    self.lower += [0.0 if signs[a.name] else None] * m
                if a.missing_col is not None:
                    blocks.append(np.eye(1))
                    self.lower.append(None)
            else:
                blocks.append(category_penalty * np.eye(len(a.onehot)))
                self.lower += [None] * len(a.onehot)
        n = sum(len(b) for b in blocks)
        self.penalty = np.zeros((n, n))
        i = 0
        for b in blocks:
            self.penalty[i:i + len(b), i:i + len(b)] = b
            i += len(b)

    def _flip(self, a: _Attr) -> float:
        # the score falls (risk rises) with a +1 attribute: its slopes, bounded at 0, enter negated
        return -1.0 if self.signs[a.name] > 0 else 1.0

    def matrix(self, X: np.ndarray) -> np.ndarray:
        """(n, columns) float64: thermometer columns scaled by the gaps between bin centres,
        missing indicators, one-hot columns."""
        cols: list[np.ndarray] = []
        for a in self.attrs:
            if a.value_col is not None:
                x = X[:, a.value_col]
                flip = self._flip(a)
                # a missing row keeps its imputed value's bins: its own coefficient, pulled to 0
                # by the penalty, is then how far missing lies from the imputed (median) value
                cols += [(x > e) * (g * flip)
                         for e, g in zip(a.edges, self.gaps[a.name], strict=True)]
                if a.missing_col is not None:
                    cols.append(a.missing(X).astype(np.float64))
            else:
                cols += [X[:, c].astype(np.float64) for c, _ in a.onehot]
        return np.column_stack(cols) if cols else np.zeros((len(X), 0))

    def bin_values(self, params: np.ndarray) -> None:
        """Each attribute's bin values (``a.woe``, ``a.woe_missing``, in ln odds good:bad)
        from the fitted coefficients; every attribute's weight is 1."""
        i = 0
        for a in self.attrs:
            if a.value_col is not None:
                m = len(a.edges)
                steps = params[i:i + m] * self.gaps[a.name] * self._flip(a)
                a.woe = np.concatenate([[0.0], np.cumsum(steps)])
                i += m
                a.woe_missing = 0.0
                if a.missing_col is not None:
                    imputed = (self.imputed[a.name] > a.edges).sum()
                    a.woe_missing = float(a.woe[imputed] + params[i])
                    i += 1
            else:
                a.woe = np.asarray(params[i:i + len(a.onehot)], dtype=np.float64)
                i += len(a.onehot)
            a.weight = 1.0


def fit_penalised(X: np.ndarray, y: np.ndarray, k: int, *, attrs: list[_Attr],
                  signs: dict[str, int], smoothness: float, C: float | None,
                  folds: list[tuple[np.ndarray, np.ndarray]], seed: int,
                  category_penalty: float = CATEGORY_PENALTY,
                  ) -> tuple[np.ndarray, float, dict[float, float]]:
    """Fit the bins' values of ``attrs`` (edges set) on X (float32), y (class indices):
    returns the cut points theta, the C used and every tried C's held-out log loss."""
    gaps: dict[str, np.ndarray] = {}
    imputed: dict[str, np.float32] = {}
    for a in attrs:
        if a.value_col is None:
            continue
        miss = a.missing(X)
        gaps[a.name] = np.maximum(np.diff(centres(X[~miss, a.value_col], a.edges)), 1e-3)
        if a.missing_col is not None:  # the preprocessor imputes one value: its training median
            imputed[a.name] = (X[miss, a.value_col][0] if miss.any()
                               else np.float32(np.median(X[:, a.value_col])))
    design = Design(attrs, gaps, imputed, signs, smoothness, category_penalty)
    D = design.matrix(X)
    scores: dict[float, float] = {}
    if C is None and not folds:
        C = 0.03
    elif C is None:
        D_cv, y_cv = D, y
        if len(y) > CV_ROWS:  # choose on a seeded sample; the fit uses every row
            keep = np.sort(np.random.default_rng(seed).choice(len(y), CV_ROWS, replace=False))
            pos = np.full(len(y), -1)
            pos[keep] = np.arange(CV_ROWS)
            folds = [(pos[f][pos[f] >= 0], pos[o][pos[o] >= 0]) for f, o in folds]
            D_cv, y_cv = D[keep], y[keep]
        C, scores = choose_C(D_cv, y_cv, k, lower=design.lower, folds=folds,
                             grid=PENALISED_C_GRID, penalty=design.penalty, start=0.0)
    params = fit_link(D, y, k, C=C, lower=design.lower, penalty=design.penalty, start=0.0)
    design.bin_values(params)
    theta = thetas(params, D.shape[1])
    return theta, float(C), scores

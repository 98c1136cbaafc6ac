"""The scorecard's regression on WoE (loanrisk.models.scorecard_link): the cumulative logit's
gradient, the penalty chosen by cross-validation, and the sign bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loanrisk.models import make_model
from loanrisk.models.scorecard_link import C_GRID, choose_C, fit_link, neg_log_lik, thetas


def _woe(n: int = 800, k: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, 3))
    latent = -(1.0 * W[:, 0] + 0.5 * W[:, 1]) + rng.logistic(size=n)  # higher WoE, lower risk
    cuts = np.quantile(latent, np.linspace(0, 1, k + 1)[1:-1])
    return W, np.searchsorted(cuts, latent).astype(np.int64)


@pytest.mark.parametrize("k", [2, 4])
def test_gradient_matches_finite_differences(k: int) -> None:
    W, y = _woe(200, k)
    params = np.concatenate([[0.3, -0.2, 0.1], [0.1], np.full(k - 2, -0.5)])
    _, grad = neg_log_lik(params, W, y, k, 0.7)
    eps = 1e-6
    for i in range(len(params)):
        up, down = params.copy(), params.copy()
        up[i] += eps
        down[i] -= eps
        num = (neg_log_lik(up, W, y, k, 0.7)[0] - neg_log_lik(down, W, y, k, 0.7)[0]) / (2 * eps)
        assert grad[i] == pytest.approx(num, rel=1e-4, abs=1e-4)


def test_fit_recovers_weights_and_bounds_hold() -> None:
    W, y = _woe(4000)
    free = fit_link(W, y, 2, C=math.inf, lower=[None] * 3)
    assert free[:3] == pytest.approx([1.0, 0.5, 0.0], abs=0.12)
    W2 = W.copy()
    W2[:, 2] = -W[:, 0] + 0.1 * W[:, 2]  # evidence against its own WoE once W0 is in
    bounded = fit_link(W2, y, 2, C=math.inf, lower=[0.0] * 3)
    assert bounded[:3].min() >= 0.0
    assert fit_link(W2, y, 2, C=math.inf, lower=[None] * 3)[2] < -0.1
    assert np.all(np.diff(thetas(fit_link(*_woe(800, 4), 4, C=1.0, lower=[0.0] * 3), 3)) > 0)


def test_choose_C_scores_every_value_and_prefers_strong_penalty_on_noise() -> None:
    rng = np.random.default_rng(1)
    W, y = rng.normal(size=(300, 3)), rng.integers(0, 2, 300)  # WoE that carries nothing
    folds = [(np.setdiff1d(np.arange(300), o), o) for o in np.array_split(np.arange(300), 5)]
    best, scores = choose_C(W, y, 2, lower=[None] * 3, folds=folds)
    assert set(scores) == set(C_GRID) and best == min(scores, key=lambda c: scores[c])
    assert best <= 0.1
    W, y = _woe(1500)
    folds = [(np.setdiff1d(np.arange(1500), o), o) for o in np.array_split(np.arange(1500), 5)]
    assert choose_C(W, y, 2, lower=[0.0] * 3, folds=folds)[0] >= 0.1


COLUMNS = [{"name": "income", "source": "income"}, {"name": "dti", "source": "dti"},
           {"name": "income__missing__", "source": "income"},
           {"name": "home=own", "source": "home"}, {"name": "home=rent", "source": "home"},
           {"name": "home=__other__", "source": "home"}]


def test_scorecard_tunes_C_unless_given_and_frees_unmarked_on_request() -> None:
    rng = np.random.default_rng(0)
    income, dti, home = rng.normal(size=1500), rng.normal(size=1500), rng.integers(0, 3, 1500)
    X = np.column_stack([income, dti, np.zeros(1500), home == 0, home == 1, home == 2])
    X = X.astype(np.float32)
    y = (-income + 0.5 * (home == 1) + rng.logistic(size=1500) > 1.5).astype(np.int64)
    from loanrisk.models.scorecard_fit import PENALISED_C_GRID

    penalised = make_model("scorecard", seed=0, task="binary", columns=COLUMNS,
                           monotone=[-1, 0, 0, 0, 0, 0]).fit(X, y, n_classes=2)
    assert penalised.C_ in PENALISED_C_GRID
    assert set(penalised.cv_scores_) == set(PENALISED_C_GRID)
    tuned = make_model("scorecard", seed=0, task="binary", columns=COLUMNS, method="woe",
                       monotone=[-1, 0, 0, 0, 0, 0]).fit(X, y, n_classes=2)
    assert tuned.C_ in C_GRID and set(tuned.cv_scores_) == set(C_GRID)
    assert tuned.params()["C"] == f"cv:{tuned.C_}"
    fixed = make_model("scorecard", seed=0, task="binary", columns=COLUMNS,
                       monotone=[-1, 0, 0, 0, 0, 0], C=2.0, method="woe").fit(X, y, n_classes=2)
    assert fixed.C_ == 2.0 and not fixed.cv_scores_
    free = make_model("scorecard", seed=0, task="binary", columns=COLUMNS,
                      monotone=[-1, 0, 0, 0, 0, 0], free_unmarked=True)
    # income is marked monotone: bounded at 0; dti and home are free
    assert free._lower_bounds([-1, 0, 0, 0, 0, 0]) == [0.0, None, None]
    assert min(tuned.coef_) >= 0.0

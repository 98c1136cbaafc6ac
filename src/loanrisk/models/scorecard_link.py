"""The scorecard's regression on WoE (:mod:`loanrisk.models.scorecard`): a cumulative-logit
(proportional-odds) model, which for two classes is the plain logistic regression, with an L2
penalty whose strength is chosen by K-fold cross-validation on the training rows.

One score per applicant, ``s = -W @ w``, and K-1 ordered cut points: P(class <= k) =
sigmoid(theta_k - s). ``lower`` bounds each weight from below (0: the attribute's points never
run against its own WoE; None: free). ``penalty`` is the quadratic form of the penalty (0.5 / C *
w' P w; the identity, a plain L2, when None): the penalised fit of fine bins
(:mod:`loanrisk.models.scorecard_fit`) penalises how much neighbouring bins' slopes differ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 10.0)  # searched when the model's C is None


def _expit(z: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return np.asarray(expit(z), dtype=np.float64)


def thetas(params: np.ndarray, n_a: int) -> np.ndarray:
    """The K-1 increasing cut points from the parameters (first cut, then log gaps)."""
    d = params[n_a + 1:]
    return float(params[n_a]) + np.concatenate([[0.0], np.cumsum(np.exp(d))])


def neg_log_lik(params: np.ndarray, W: np.ndarray, y: np.ndarray, k: int,
                C: float, penalty: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Penalised negative log-likelihood and its gradient (``C`` = inf: no penalty)."""
    n_a = W.shape[1]
    w, d = params[:n_a], params[n_a + 1:]
    theta = thetas(params, n_a)
    rows = np.arange(len(y))
    s = -W @ w
    F = _expit(theta[None, :] - s[:, None])  # (n, k-1)
    dF = F * (1 - F)
    zero, one = np.zeros((len(s), 1)), np.ones((len(s), 1))
    Fe, dFe = np.hstack([zero, F, one]), np.hstack([zero, dF, zero])
    p = np.maximum(Fe[rows, y + 1] - Fe[rows, y], 1e-300)
    g_hi, g_lo = dFe[rows, y + 1] / p, dFe[rows, y] / p
    pen = 0.0 if math.isinf(C) else 0.5 / C
    Pw = w if penalty is None else penalty @ w
    loss = -float(np.log(p).sum()) + pen * float(w @ Pw)
    ds = -(g_lo - g_hi)  # d(-log p)/ds
    gw = -(W.T @ ds) + 2 * pen * Pw
    onehot_y = np.eye(k)[y]
    # d(-log p)/d theta_j: -(1/p) dF_j [j == y] + (1/p) dF_j [j == y - 1]
    gt = -(onehot_y[:, :k - 1] * dF).T @ (1 / p) + (onehot_y[:, 1:] * dF).T @ (1 / p)
    gd = np.array([gt[j:].sum() * math.exp(d[j - 1]) for j in range(1, k - 1)])
    return loss, np.concatenate([gw, [gt.sum()], gd])


def fit_link(W: np.ndarray, y: np.ndarray, k: int, *, C: float,
             lower: Sequence[float | None], penalty: np.ndarray | None = None,
             start: float = 0.5) -> np.ndarray:
    """Parameters (weights, first cut, log gaps) minimising the penalised loss (L-BFGS-B),
    starting from every weight at ``start``."""
    from scipy.optimize import minimize

    n_a = W.shape[1]
    x0 = np.concatenate([np.full(n_a, start), [0.0], np.zeros(k - 2)])
    bounds = [(lo, None) for lo in lower] + [(None, None)] + [(-30.0, 10.0)] * (k - 2)
    res = minimize(neg_log_lik, x0, args=(W, y, k, C, penalty), jac=True, method="L-BFGS-B",
                   bounds=bounds, options={"maxiter": 1000 if penalty is not None else 500})
    return np.asarray(res.x, dtype=np.float64)


def choose_C(W: np.ndarray, y: np.ndarray, k: int, *, lower: Sequence[float | None],
             folds: list[tuple[np.ndarray, np.ndarray]], grid: Sequence[float] = C_GRID,
             penalty: np.ndarray | None = None,
             start: float = 0.5) -> tuple[float, dict[float, float]]:
    """The C of ``grid`` with the lowest held-out log loss over ``folds`` (train, held-out row
    positions of the training rows), and every C's mean held-out log loss per row."""
    scores: dict[float, float] = {}
    for C in grid:
        total = 0.0
        for fit_idx, out_idx in folds:
            params = fit_link(W[fit_idx], y[fit_idx], k, C=C, lower=lower, penalty=penalty,
                              start=start)
            total += neg_log_lik(params, W[out_idx], y[out_idx], k, math.inf)[0]
        scores[float(C)] = total / len(y)
    best = min(scores, key=lambda c: (scores[c], -c))
    return best, scores

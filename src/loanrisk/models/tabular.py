"""The "tabular" mlp design: piecewise-linear encoding of numeric columns and a seed ensemble.

Gorishniy et al. (2022), "On Embeddings for Numerical Features in Tabular Deep Learning": a
numeric value x with bin edges b_0 < ... < b_T becomes T numbers
``clip((x - b_{t-1}) / (b_t - b_{t-1}), 0, 1)`` (piecewise-linear encoding, PLE). Bins come from
training quantiles, or are target-aware: the split points of a small decision tree on that one
column (``bins="tree"``, the paper's PLE-T), each split snapped to the two observed values around
it so that the bin between them turns its column from 0 to 1 within the split. The network then
sees the preprocessed features followed by the PLE columns. Several reference networks (MLPModel,
seeds seed, seed + 1, ...) are trained on the encoded features and their probabilities averaged.

ONNX: Gather (one copy of each numeric column per bin) -> Sub -> Div -> Clip -> Concat with the
features, then every member network inlined, then their mean: still one graph, same float32 maths
as ``encode``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from loanrisk.errors import DataError


def fit_edges(x: np.ndarray, y: np.ndarray, *, n_bins: int, method: str,
              seed: int) -> np.ndarray:
    """Sorted unique bin edges (float32) for one column: min, inner cut points, max."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if method == "quantile":
        inner = np.quantile(x, np.linspace(0, 1, n_bins + 1)[1:-1])
    elif method == "tree":
        from sklearn.tree import DecisionTreeClassifier

        tree = DecisionTreeClassifier(max_leaf_nodes=n_bins, random_state=seed,
                                      min_samples_leaf=max(2, len(x) // 1000))
        tree.fit(x[:, None], y)
        cuts = tree.tree_.threshold[tree.tree_.feature >= 0]
        # snap each split to the observed values on either side of it: the bin between them
        # is narrow, so its PLE column is a step 0 -> 1 exactly where the tree splits
        values = np.unique(x)
        at = np.searchsorted(values, cuts, side="right")
        inner = np.concatenate([values[np.clip(at - 1, 0, len(values) - 1)],
                                values[np.clip(at, 0, len(values) - 1)]])
    else:
        raise ValueError(f"bins must be 'quantile' or 'tree', not {method!r}")
    edges = np.unique(np.concatenate([[lo], inner, [hi]]).astype(np.float32))
    return edges[(edges >= np.float32(lo)) & (edges <= np.float32(hi))]


class TabularMLPModel:
    """PLE-encoded numeric columns + the raw features -> ``members`` MLPModels, averaged.

    Defaults measured on the bundled data (5 splits, eval ROC-AUC; bench/RESULTS.md): tree bins
    beat quantile bins, 8 bins beat 16 and 32 on grades, 5 members beat 3 and 1, keeping the raw
    features matters (0.706 without), label smoothing 0.1 hurt badly (0.705 vs 0.763).
    """

    name = "mlp"

    def __init__(self, *, seed: int = 42, task: str = "multiclass", n_bins: int = 8,
                 bins: str = "tree", members: int = 5, keep_raw: bool = True,
                 **mlp: Any) -> None:
        if bins not in ("quantile", "tree"):
            raise ValueError(f"bins must be 'quantile' or 'tree', not {bins!r}")
        if members < 1 or n_bins < 2:
            raise ValueError(f"need members >= 1 and n_bins >= 2, not {members}, {n_bins}")
        self.seed = seed
        self.task = task
        self.n_bins = n_bins
        self.bins = bins
        self.members = members
        self.keep_raw = keep_raw
        self.mlp = dict(mlp)
        self.history_: dict[str, list[float]] | None = None

    # ---- encoding ------------------------------------------------------------------------
    def _fit_encoding(self, X: np.ndarray, y: np.ndarray) -> None:
        cols, lefts, widths = [], [], []
        for j in range(X.shape[1]):
            if np.unique(X[:, j]).size < 3:  # indicators, one-hot and binaries stay as they are
                continue
            edges = fit_edges(X[:, j].astype(np.float64), y, n_bins=self.n_bins,
                              method=self.bins, seed=self.seed)
            if edges.size < 2:
                continue
            cols += [j] * (edges.size - 1)
            lefts += edges[:-1].tolist()
            widths += (edges[1:] - edges[:-1]).tolist()
        self.ple_cols_ = np.asarray(cols, dtype=np.int64)
        self.ple_left_ = np.asarray(lefts, dtype=np.float32)[None, :]
        self.ple_width_ = np.asarray(widths, dtype=np.float32)[None, :]
        self.n_raw_ = X.shape[1]

    def encode(self, X: np.ndarray) -> np.ndarray:
        """float32 (n, F + n_ple) or (n, n_ple): the features and their PLE columns."""
        X = np.asarray(X, dtype=np.float32)
        ple = np.clip((X[:, self.ple_cols_] - self.ple_left_) / self.ple_width_,
                      np.float32(0), np.float32(1))
        blocks = [X, ple] if self.keep_raw else [ple]
        return np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float32)

    # ---- the contract --------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, *, X_val: np.ndarray, y_val: np.ndarray,
            n_classes: int) -> TabularMLPModel:
        """Fit the bins on X, then ``members`` networks on the encoded rows; returns self."""
        from loanrisk.models.mlp import MLPModel

        y = np.asarray(y, dtype=np.int64)
        if np.unique(y).size < 2:
            raise DataError("the training rows hold a single class; a classifier needs two")
        self.n_classes_ = int(n_classes)
        self._fit_encoding(np.asarray(X, dtype=np.float32), y)
        E, E_val = self.encode(X), self.encode(X_val)
        hook = self.mlp.pop("on_epoch", None)  # tuning reports the first member's epochs
        self.nets_ = [MLPModel(seed=self.seed + i, task=self.task,
                               on_epoch=hook if i == 0 else None, **self.mlp)
                      .fit(E, y, X_val=E_val, y_val=y_val, n_classes=n_classes)
                      for i in range(self.members)]
        self.history_ = self.nets_[0].history_
        self.n_encoded_ = E.shape[1]
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The members' mean probability, float64 (n, n_classes)."""
        E = self.encode(X)
        w = np.float64(np.float32(1.0 / len(self.nets_)))
        return sum(w * net.predict_proba(E) for net in self.nets_)  # type: ignore[return-value]

    def to_onnx(self, n_features: int) -> onnx.ModelProto:
        """Graph "features" [N,F] -> PLE -> members -> mean "probabilities" [N,C]."""
        from onnx import helper

        from loanrisk.models.compose import average_nodes
        from loanrisk.onnx_utils import FEATURES, PROBABILITIES, const, float_input, make_model

        if n_features != self.n_raw_:
            raise ValueError(f"the model takes {self.n_raw_} features, not {n_features}")
        inits = [const("ple_cols", self.ple_cols_, np.int64), const("ple_left", self.ple_left_),
                 const("ple_width", self.ple_width_), const("zero", 0.0), const("one", 1.0)]
        nodes = [helper.make_node("Gather", [FEATURES, "ple_cols"], ["ple_x"], axis=1),
                 helper.make_node("Sub", ["ple_x", "ple_left"], ["ple_d"]),
                 helper.make_node("Div", ["ple_d", "ple_width"], ["ple_r"]),
                 helper.make_node("Clip", ["ple_r", "zero", "one"], ["ple"])]
        parts = [FEATURES, "ple"] if self.keep_raw else ["ple"]
        nodes.append(helper.make_node("Concat", parts, ["encoded"], axis=1))
        w = 1.0 / len(self.nets_)
        n2, i2 = average_nodes(self.nets_, [w] * len(self.nets_), n_features=self.n_encoded_,
                               feed="encoded", out=PROBABILITIES)
        return make_model(nodes + n2, name="mlp_tabular",
                          inputs=[float_input(FEATURES, n_features)],
                          outputs=[float_input(PROBABILITIES, self.n_classes_)],
                          initializers=inits + i2,
                          doc=f"PLE ({self.bins} bins, {self.n_bins}) + {len(self.nets_)} MLPs")

    def params(self) -> dict[str, Any]:
        """The design's own parameters and the members' MLPConfig, for MLflow."""
        net = self.nets_[0].params() if hasattr(self, "nets_") else dict(self.mlp)
        return {"design": "tabular", "n_bins": self.n_bins, "bins": self.bins,
                "members": self.members, "keep_raw": self.keep_raw, **net}
